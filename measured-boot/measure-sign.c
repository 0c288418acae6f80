/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cloister/fileio.h"
#include "cloister/json-result.h"
#include "cloister/log.h"
#include "cloister/measurements.h"
#include "measure.h"

static int load(const char *path, size_t max, uint8_t **ret, size_t *size)
{
        int r = read_full_file(path, max, ret, size);
        if (r == -EMSGSIZE)
                (void) log_error_errno(r, "%s: larger than %zu bytes.", path, max);
        else if (r < 0)
                (void) log_error_errno(r, "%s: cannot read: %m", path);
        return r;
}

/* The file must be a valid measurements file before it is signed or trusted. */
static int check_format(const char *path, const uint8_t *data, size_t size, MeasurementsFile **ret)
{
        Diag d;
        int r;

        diag_clear(&d);
        r = measurements_file_parse(data, size, path, ret, &d);
        if (r < 0)
                (void) log_error_errno(r, "%s", d.message);
        return r;
}

/* "image 'NAME' VERSION (KIND), measurements version N, created T" of a format-2 file. */
static void describe(const MeasurementsFile *m, char *buf, size_t size)
{
        (void) snprintf(buf, size, "image '%s' %s%s, measurements version %" PRId64 ", created %s",
                        m->image, m->image_version, measurements_image_kind_note(m->image_kind),
                        m->measurements_version, m->created);
        for (char *p = buf; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = '?';
}

static const char *const format1_hint =
        "format 1, without measurementsVersion: nothing tells it from an older file signed with "
        "the same key, and 'cloister config fetch-measurements' refuses it. Make it again with "
        "'cloister-measure image IMAGE -o json --measurements-version N' (format 2, "
        "docs/measured-boot.md)";

int verb_sign(int argc, char *argv[], void *userdata)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "key", required_argument, NULL, 'k' },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        _cleanup_(freep) uint8_t *data = NULL, *key = NULL, *sig = NULL;
        _cleanup_(freep) char *out_default = NULL;
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        const char *keyfile = NULL, *out = NULL;
        char what[512];
        size_t size, ks, sn;
        Diag d;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hk:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister-measure sign --key KEY.pem FILE [--output SIG]\n\n"
                               "Signs a measurements file (ECDSA P-256, detached DER signature,\n"
                               "default FILE.sig). The file is validated first; format 1 (no\n"
                               "measurementsVersion, docs/measured-boot.md) is refused.\n");
                        return 0;
                case 'k':
                        keyfile = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (argc - optind != 1 || !keyfile)
                return log_error_errno(-EUSAGE, "sign: --key KEY.pem and one FILE are required.");
        if ((r = load(argv[optind], MEASUREMENTS_FILE_SIZE_MAX, &data, &size)) < 0 ||
            (r = check_format(argv[optind], data, size, &m)) < 0)
                return r;
        if (m->format_version < 2)
                return log_error_errno(-EPROTONOSUPPORT, "%s: refused: %s.", argv[optind],
                                       format1_hint);
        r = load(keyfile, 64 * 1024, &key, &ks);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = measurements_sign(data, size, key, ks, &sig, &sn, &d);
        explicit_wipe(key, ks);
        if (r < 0)
                return log_error_errno(r, "%s: %s", keyfile, d.message);
        if (!out) {
                if (asprintf(&out_default, "%s.sig", argv[optind]) < 0)
                        return log_oom();
                out = out_default;
        }
        r = write_file_atomic(out, sig, sn, 0644, 0);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write: %m", out);
        describe(m, what, sizeof(what));
        printf("Signed %s (%s): %s\n", argv[optind], what, out);
        return 0;
}

/* verify -o json: the signature and format checks, the verdict, the file's identity. */
static int print_verify_json(const char *file, bool signature_ok, const Diag *d,
                             const MeasurementsFile *m)
{
        _cleanup_(json_decrefp) json_t *doc = result_new("cloister-measure verify");
        char what[512] = "";

        if (m)
                describe(m, what, sizeof(what));
        if (!doc || json_object_set_new(doc, "file", json_string(file)) < 0 ||
            result_add_check(doc, "measurements-signature", -1, signature_ok ? "pass" : "fail",
                             true, NULL, NULL,
                             signature_ok ? "ECDSA P-256 over the file's exact bytes"
                                          : d->message) < 0 ||
            (signature_ok && m &&
             result_add_check(doc, "measurements-format", -1,
                              m->format_version >= 2 ? "pass" : "warn", false, "2",
                              m->format_version >= 2 ? "2" : "1",
                              m->format_version >= 2 ? what : format1_hint) < 0) ||
            result_set_verdict(doc, signature_ok ? "pass" : "fail",
                               signature_ok ? NULL : d->message, signature_ok ? NULL : d, NULL) < 0)
                return log_oom();
        if (m && m->format_version >= 2 &&
            json_object_set_new(
                    doc, "measurements",
                    json_pack("{s:i,s:I,s:s,s:s,s:s,s:o}", "formatVersion", (int) m->format_version,
                              "measurementsVersion", (json_int_t) m->measurements_version, "image",
                              m->image, "imageVersion", m->image_version, "created", m->created,
                              "imageKind",
                              m->image_kind ? json_string(measurements_image_kind_to_string(
                                                      m->image_kind))
                                            : json_null())) < 0)
                return log_oom();
        return result_print(doc) < 0 ? log_oom() : 0;
}

int verb_verify(int argc, char *argv[], void *userdata)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "pubkey", required_argument, NULL, 'p' },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        _cleanup_(freep) uint8_t *data = NULL, *pub = NULL, *sig = NULL;
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        const char *pubfile = NULL;
        char what[512];
        size_t size, ps, sn;
        Diag d;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hp:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister-measure verify --pubkey PUB.pem FILE SIG "
                               "[-o text|json]\n");
                        return 0;
                case 'p':
                        pubfile = optarg;
                        break;
                case 'o':
                        arg_output = output_format_from_string(optarg);
                        if (arg_output < 0)
                                return log_error_errno(-EUSAGE, "-o '%s': use text or json.",
                                                       optarg);
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (argc - optind != 2 || !pubfile)
                return log_error_errno(-EUSAGE,
                                       "verify: --pubkey PUB.pem, FILE and SIG are required.");
        if ((r = load(argv[optind], MEASUREMENTS_FILE_SIZE_MAX, &data, &size)) < 0 ||
            (r = load(argv[optind + 1], MEASUREMENTS_SIGNATURE_MAX, &sig, &sn)) < 0 ||
            (r = load(pubfile, 64 * 1024, &pub, &ps)) < 0)
                return r;
        diag_clear(&d);
        r = measurements_verify(data, size, sig, sn, pub, ps, &d);
        if (r < 0 && arg_output == OUTPUT_JSON && r != -ENOMEM)
                (void) print_verify_json(argv[optind], false, &d, NULL);
        if (r < 0)
                return log_error_errno(r, "%s: %s", argv[optind], d.message);
        r = check_format(argv[optind], data, size, &m);
        if (r < 0)
                return r;
        if (arg_output == OUTPUT_JSON) {
                r = print_verify_json(argv[optind], true, &d, m);
                if (r < 0)
                        return r;
                if (m->format_version < 2)
                        log_warning("%s: %s.", argv[optind], format1_hint);
                return 0;
        }
        if (m->format_version < 2) {
                printf("%s: signature valid (format 1)\n", argv[optind]);
                log_warning("%s: %s.", argv[optind], format1_hint);
                return 0;
        }
        describe(m, what, sizeof(what));
        printf("%s: signature valid (%s)\n", argv[optind], what);
        return 0;
}
