/* SPDX-License-Identifier: Apache-2.0 */
/* `cloister config fetch-measurements`: a published, signed measurements file into the PCR
 * expectations of a cluster configuration (docs/config.md). The phases: check the options and
 * the configuration, fetch the file and its signature, verify the signature over the exact
 * bytes, only then parse them, update attestation.measurements, write the file atomically. */
#include <assert.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/measurements.h"
#include "cloister/rpc.h"

/* A URL longer than this is a mistake, not a location. */
#define FETCH_URL_MAX 4096
/* What a PEM public key may take; a P-256 one is 178 bytes. */
#define FETCH_PUBKEY_SIZE_MAX    (64U * 1024U)
#define FETCH_TIMEOUT_MS_DEFAULT 30000U
/* Cloister extends the cluster ID into it at join: the cluster sets it, not the image. */
#define PCR_CLUSTER 15

typedef enum UrlKind {
        URL_FILE,
        URL_HTTPS,
} UrlKind;

static const char *const signature_hint =
        "is the file signed? 'cloister-measure sign --key KEY.pem FILE' writes FILE.sig, to be "
        "published next to FILE; give --signature-url if it lives elsewhere";

/* The image name comes from the file: printable ASCII only reaches the terminal. */
static void printable_ascii(char *s)
{
        for (; *s; s++)
                if (*s < ' ' || *s > '~')
                        *s = '?';
}

static bool has_prefix_nocase(const char *s, const char *prefix)
{
        return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Only https:// (authenticated transport) and file:// (a local file). */
static int url_check(const char *option, const char *url, UrlKind *ret)
{
        if (strlen(url) > FETCH_URL_MAX)
                return log_error_errno(-EINVAL, "%s: longer than %u characters.", option,
                                       FETCH_URL_MAX);
        for (const char *p = url; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return log_error_errno(-EINVAL,
                                               "%s '%s': a URL holds no spaces or control "
                                               "characters (encode them as %%XX).",
                                               option, url);
        if (has_prefix_nocase(url, "https://")) {
                *ret = URL_HTTPS;
                return 0;
        }
        if (has_prefix_nocase(url, "file://")) {
                *ret = URL_FILE;
                return 0;
        }
        if (has_prefix_nocase(url, "http://"))
                return log_error_errno(-EPERM,
                                       "%s '%s': plain http:// is refused: anyone on the path can "
                                       "read and change what it carries, and block updates. Use "
                                       "https:// or file://.",
                                       option, url);
        if (strstr(url, "://"))
                return log_error_errno(-EPROTONOSUPPORT,
                                       "%s '%s': unsupported scheme: use https:// or file://.",
                                       option, url);
        return log_error_errno(
                -EINVAL,
                "%s '%s': not a URL: use https://HOST/PATH, or file:///ABSOLUTE/PATH "
                "for a local file.",
                option, url);
}

/* RFC 8089: file:///PATH or file://localhost/PATH, percent-encoded; no other host. */
static int file_url_to_path(const char *url, char **ret)
{
        const char *p = url + strlen("file://");
        _cleanup_(freep) char *path = NULL;
        size_t n = 0;

        if (has_prefix_nocase(p, "localhost/"))
                p += strlen("localhost");
        if (*p != '/')
                return log_error_errno(-EINVAL,
                                       "'%s': a file:// URL names an absolute path on this "
                                       "machine: file:///PATH (no host, or localhost).",
                                       url);
        if (strpbrk(p, "?#"))
                return log_error_errno(-EINVAL,
                                       "'%s': a file:// URL has no query or fragment: encode '?' "
                                       "as %%3F and '#' as %%23.",
                                       url);
        path = malloc(strlen(p) + 1);
        if (!path)
                return log_oom();
        for (; *p; p++) {
                if (*p != '%') {
                        path[n++] = *p;
                        continue;
                }
                int hi = hex_digit_value(p[1]), lo = hi < 0 ? -1 : hex_digit_value(p[2]);
                if (lo < 0 || (hi == 0 && lo == 0))
                        return log_error_errno(-EINVAL,
                                               "'%s': '%%' must start an escape %%XX of a byte "
                                               "other than 0.",
                                               url);
                path[n++] = (char) (hi << 4 | lo);
                p += 2;
        }
        path[n] = 0;
        *ret = TAKE_PTR(path);
        return 0;
}

/* At most max bytes from url into *ret (never NULL on success; may be empty). what names the
 * file in messages, hint says what to do if it cannot be had. Logs one line on failure. */
static int fetch(const char *what, const char *url, UrlKind kind, size_t max, unsigned timeout_ms,
                 const char *hint, uint8_t **ret, size_t *ret_size)
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size = 0;
        int r;

        if (kind == URL_FILE) {
                _cleanup_(freep) char *path = NULL;
                struct stat st;

                r = file_url_to_path(url, &path);
                if (r < 0)
                        return r;
                assert(path);
                /* Not a FIFO or a device: reading one could block, or never end. */
                if (stat(path, &st) < 0)
                        return log_error_errno(negative_errno(), "%s: cannot read the %s: %m; %s.",
                                               url, what, hint);
                if (!S_ISREG(st.st_mode))
                        return log_error_errno(-EINVAL, "%s: the %s is not a regular file; %s.",
                                               url, what, hint);
                r = read_full_file(path, max, &data, &size);
                if (r == -EMSGSIZE)
                        return log_error_errno(r, "%s: the %s is larger than %zu bytes: refused.",
                                               url, what, max);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read the %s: %m; %s.", url, what,
                                               hint);
        } else {
                long status = 0;
                Diag d;

                diag_clear(&d);
                /* No redirects followed, the system's CA store, no proxy (rpc_http_get()). */
                r = rpc_http_get(url, max, timeout_ms, &data, &size, &status, &d);
                if (r == -EMSGSIZE)
                        return log_error_errno(r, "%s: the %s is larger than %zu bytes: refused.",
                                               url, what, max);
                if (r < 0 && !diag_failed(&d))
                        return log_error_errno(r, "%s: cannot download the %s: %m", url, what);
                if (r < 0)
                        return log_error_errno(r, "Cannot download the %s: %s; %s.", what,
                                               d.message, hint);
                if (status >= 300 && status < 400)
                        return log_error_errno(-EPROTO,
                                               "%s: HTTP status %ld: redirects are not followed: "
                                               "give the URL it redirects to.",
                                               url, status);
                if (status != 200)
                        return log_error_errno(-EPROTO, "%s: HTTP status %ld for the %s; %s.", url,
                                               status, what, hint);
                if (!data) {
                        data = malloc(1);
                        if (!data)
                                return log_oom();
                        size = 0;
                }
        }
        *ret = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}

/* The old value of one PCR expectation, for the report: "absent", "null" or its hex; true in
 * *ret_same if it already holds expected and warn_only. */
static const char *old_value(const json_t *entry, const uint8_t *expected, bool warn_only,
                             bool *ret_same)
{
        const json_t *e = json_object_get(entry, "expected"),
                     *w = json_object_get(entry, "warnOnly");
        uint8_t old[EVIDENCE_PCR_SIZE];

        *ret_same = false;
        if (!entry)
                return "(absent)";
        if (json_is_null(e))
                return "null";
        if (!json_is_string(e))
                return "(not a hex string)";
        *ret_same = hex_decode_exact(json_string_value(e), old, sizeof(old)) >= 0 &&
                    memcmp(old, expected, sizeof(old)) == 0 &&
                    (w ? json_is_true(w) : false) == warn_only;
        return json_string_value(e);
}

/* Sets every PCR the file predicts except PCR 15 in ms, printing each, "PCR N: old -> new",
 * and the ones it keeps. *ret_changed: whether anything differs. */
static int update_pcrs(json_t *ms, const MeasurementsFile *m, bool *ret_changed)
{
        bool changed = false;
        int r;

        for (unsigned i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                char key[4], hex[2 * EVIDENCE_PCR_SIZE + 1];
                _cleanup_(freep) char *old = NULL;
                json_t *entry;
                bool same;

                (void) snprintf(key, sizeof(key), "%u", i);
                entry = json_object_get(ms, key);
                if (!m->pcrs[i].present || i == PCR_CLUSTER) {
                        if (entry)
                                printf("  PCR %u: kept (%s)\n", i,
                                       i == PCR_CLUSTER ? "the cluster sets it, not the image"
                                                        : "not in the file");
                        continue;
                }
                old = strdup(old_value(entry, m->pcrs[i].expected, m->pcrs[i].warn_only, &same));
                if (!old)
                        return log_oom();
                hex_encode_buf(m->pcrs[i].expected, EVIDENCE_PCR_SIZE, hex, sizeof(hex));
                if (same) {
                        printf("  PCR %u: %s (unchanged)\n", i, hex);
                        continue;
                }
                r = cli_measurements_set_pcr(ms, i, m->pcrs[i].expected, m->pcrs[i].warn_only);
                if (r < 0)
                        return log_oom();
                printf("  PCR %u: %s -> %s%s\n", i, old, hex,
                       m->pcrs[i].warn_only ? " (warnOnly)" : "");
                changed = true;
        }
        *ret_changed = changed;
        return 0;
}

static void help(void)
{
        printf("Usage: cloister config fetch-measurements --url URL --pubkey PUB.pem\n"
               "         [--signature-url URL] [--config FILE] [--timeout SEC]\n"
               "       cloister config fetch-measurements --url URL --insecure-no-signature "
               "[...]\n\n"
               "Downloads a measurements file (what 'cloister-measure image IMAGE -o json'\n"
               "prints, signed with 'cloister-measure sign'), verifies its signature with\n"
               "PUB.pem, and writes the PCRs it predicts (4, 9, 11 and those it predicts zero)\n"
               "into attestation.measurements of the configuration, atomically, mode 0600.\n"
               "PCR 15 is never taken from the file (the cluster sets it), and no other field\n"
               "changes. Prints each PCR, old -> new, and where the values came from.\n\n"
               "  --url URL              https://HOST/PATH or file:///ABSOLUTE/PATH (plain\n"
               "                         http:// is refused)\n"
               "  --signature-url URL    the detached signature (default URL.sig)\n"
               "  --pubkey PUB.pem       the ECDSA P-256 public key the publisher signs with\n"
               "  --config FILE          the configuration to update "
               "(default " CLI_CONFIG_FILE_DEFAULT ");\n"
               "                         its variant must have PCRs: qemu-vtpm or azure-sev-snp\n"
               "  --timeout SEC          for each download (default 30)\n"
               "  --insecure-no-signature\n"
               "                         INSECURE, for development: take the file without any\n"
               "                         signature; whoever can change it picks the images\n"
               "                         your cluster trusts\n\n"
               "The file is at most %u bytes, its signature %u. Example, for the local\n"
               "image build (its key is a development key, for local clusters only):\n"
               "  cloister config fetch-measurements \\\n"
               "      --url file://$PWD/build/image/measurements.json \\\n"
               "      --pubkey build/image/measurements-DEVELOPMENT-ONLY.pub.pem\n"
               "See docs/config.md.\n",
               MEASUREMENTS_FILE_SIZE_MAX, MEASUREMENTS_SIGNATURE_MAX);
}

int verb_config_fetch_measurements(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_URL = 0x100,
                ARG_SIGNATURE_URL,
                ARG_PUBKEY,
                ARG_CONFIG,
                ARG_TIMEOUT,
                ARG_INSECURE,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "url", required_argument, NULL, ARG_URL },
                { "signature-url", required_argument, NULL, ARG_SIGNATURE_URL },
                { "pubkey", required_argument, NULL, ARG_PUBKEY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "insecure-no-signature", no_argument, NULL, ARG_INSECURE },
                {},
        };
        const char *url = NULL, *sig_url = NULL, *pubkey = NULL,
                   *config_path = CLI_CONFIG_FILE_DEFAULT, *variant_name;
        _cleanup_(freep) uint8_t *data = NULL, *sig = NULL, *pub = NULL;
        _cleanup_(freep) char *sig_url_default = NULL, *text = NULL, *doc = NULL, *policy = NULL;
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(cli_config_done) CliConfig config = {};
        RpcClientConfig rc;
        UrlKind kind = URL_FILE, sig_kind = URL_FILE;
        AttestVariant variant;
        json_t *att, *ms;
        size_t size = 0, sig_size = 0, pub_size = 0;
        bool insecure = false, changed = false, incomplete;
        Diag d;
        int c, r;

        rpc_client_config_defaults(&rc);
        rc.total_timeout_ms = FETCH_TIMEOUT_MS_DEFAULT;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_URL:
                        url = optarg;
                        break;
                case ARG_SIGNATURE_URL:
                        sig_url = optarg;
                        break;
                case ARG_PUBKEY:
                        pubkey = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_TIMEOUT:
                        r = cli_parse_timeout(optarg, &rc);
                        if (r < 0)
                                return r;
                        break;
                case ARG_INSECURE:
                        insecure = true;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (!url)
                return log_error_errno(-EINVAL,
                                       "config fetch-measurements: --url URL is required. See "
                                       "--help.");
        if (insecure && (pubkey || sig_url))
                return log_error_errno(-EINVAL,
                                       "--insecure-no-signature checks no signature: it cannot "
                                       "go with --pubkey or --signature-url.");
        if (!insecure && !pubkey)
                return log_error_errno(-EINVAL,
                                       "config fetch-measurements: --pubkey PUB.pem is required: "
                                       "the key the measurements file is signed with. See "
                                       "--help.");
        r = url_check("--url", url, &kind);
        if (r < 0)
                return r;
        if (!insecure) {
                if (!sig_url) {
                        if (asprintf(&sig_url_default, "%s.sig", url) < 0)
                                return log_oom();
                        sig_url = sig_url_default;
                }
                r = url_check("--signature-url", sig_url, &sig_kind);
                if (r < 0)
                        return r;
        }

        /* The configuration first: nothing is fetched for a file that cannot take the result. */
        r = cli_config_load_unset(config_path, &config);
        if (r < 0)
                return r;
        att = json_object_get(config.json, "attestation");
        variant_name = json_string_value(json_object_get(att, "variant"));
        variant = variant_name ? attest_variant_from_string(variant_name) : _ATTEST_VARIANT_INVALID;
        if (variant == ATTEST_VARIANT_SEV_SNP || variant == ATTEST_VARIANT_SIM_SNP)
                return log_error_errno(-EINVAL,
                                       "%s: attestation variant %s has no PCRs: its nodes are "
                                       "checked by their SEV-SNP launch measurement "
                                       "(attestation.snp.measurements), not by a measurements "
                                       "file.",
                                       config_path, variant_name);
        if (variant != ATTEST_VARIANT_QEMU_VTPM && variant != ATTEST_VARIANT_AZURE_SEV_SNP)
                return log_error_errno(-EINVAL,
                                       "%s: attestation variant %s: its boot is not what "
                                       "'cloister-measure' predicts (qemu-vtpm and azure-sev-snp "
                                       "only).",
                                       config_path, variant_name ?: "(none)");
        ms = json_object_get(att, "measurements");
        if (ms && !json_is_object(ms))
                return log_error_errno(-EBADMSG, "%s: attestation.measurements: not an object.",
                                       config_path);

        if (!insecure) {
                r = read_full_file(pubkey, FETCH_PUBKEY_SIZE_MAX, &pub, &pub_size);
                if (r == -EMSGSIZE)
                        return log_error_errno(r, "%s: larger than %u bytes: not a public key.",
                                               pubkey, FETCH_PUBKEY_SIZE_MAX);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read the public key: %m", pubkey);
        } else
                log_warning("INSECURE: --insecure-no-signature: the measurements from %s are "
                            "taken without checking any signature: whoever can change that file, "
                            "or the way it comes here, decides which images %s trusts. For "
                            "development only, never for a cluster that matters.",
                            url, config_path);

        r = fetch("measurements file", url, kind, MEASUREMENTS_FILE_SIZE_MAX, rc.total_timeout_ms,
                  "check the URL, or build and publish the image's measurements first", &data,
                  &size);
        if (r < 0)
                return r;
        if (!insecure) {
                r = fetch("signature", sig_url, sig_kind, MEASUREMENTS_SIGNATURE_MAX,
                          rc.total_timeout_ms, signature_hint, &sig, &sig_size);
                if (r < 0)
                        return r;
                /* Over the exact bytes, before anything of them is parsed. */
                diag_clear(&d);
                r = measurements_verify(data, size, sig, sig_size, pub, pub_size, &d);
                if (r < 0)
                        return log_error_errno(r,
                                               "%s: refused: check '%s' failed: %s (signature %s, "
                                               "public key %s). Nothing was changed.",
                                               url, d.check, d.message, sig_url, pubkey);
        }

        r = cli_measurements_parse(data, size, url, &m);
        if (r < 0)
                return r;

        if (!ms) {
                ms = json_object();
                if (!ms || json_object_set_new(att, "measurements", ms) < 0)
                        return log_oom();
        }
        printable_ascii(m->image);
        printf("%s: measurements of image '%s' from %s (%s%s):\n", config_path, m->image, url,
               insecure ? "SIGNATURE NOT CHECKED" : "signature verified with ",
               insecure ? "" : pubkey);
        r = update_pcrs(ms, m, &changed);
        if (r < 0)
                return r;

        /* The result must still load as a policy; a value still unset elsewhere is fine. */
        if (json_dump_compact(att, &policy) < 0)
                return log_oom();
        diag_clear(&d);
        r = attest_policy_parse(policy, strlen(policy), config.policy_source, &pol, &d);
        if (r < 0 && r != -ENODATA)
                return log_error_errno(r, "%s. %s not written.", d.message, config_path);
        incomplete = r == -ENODATA;

        if (changed) {
                if (json_dump_pretty(config.json, &text) < 0 || asprintf(&doc, "%s\n", text) < 0)
                        return log_oom();
                r = write_file_atomic(config_path, doc, strlen(doc), 0600, WRITE_FILE_SYNC);
                if (r < 0)
                        return log_error_errno(r, "Cannot write %s: %m", config_path);
                printf("Wrote %s.\n", config_path);
        } else
                printf("%s already holds these values: not written.\n", config_path);
        if (incomplete)
                printf("Still not set: %s\n", d.message);
        if (insecure)
                log_warning("INSECURE: %s now expects measurements whose signature was not "
                            "checked.",
                            config_path);
        return 0;
}
