/* SPDX-License-Identifier: Apache-2.0 */
/* `cloister config fetch-measurements`: a published, signed measurements file into the PCR
 * expectations of a cluster configuration (docs/config.md). The phases: check the options and
 * the configuration, fetch the file and its signature, verify the signature over the exact
 * bytes, only then parse them, refuse a rollback (an older measurementsVersion than the one
 * recorded), update attestation.measurements and measurementsSource, write the file atomically. */
#include <assert.h>
#include <getopt.h>
#include <inttypes.h>
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
#include "cloister/snp-measurements.h"

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
                return log_error_errno(-EUSAGE, "%s: longer than %u characters.", option,
                                       FETCH_URL_MAX);
        for (const char *p = url; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return log_error_errno(-EUSAGE,
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
                -EUSAGE,
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
                return log_error_errno(-EUSAGE,
                                       "'%s': a file:// URL names an absolute path on this "
                                       "machine: file:///PATH (no host, or localhost).",
                                       url);
        if (strpbrk(p, "?#"))
                return log_error_errno(-EUSAGE,
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
                        return log_error_errno(-EUSAGE,
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

/* sev-snp (gcp, aws): the file's snp.launchMeasurements for the provider's VMM replace the
 * policy's; a null snp.measurements (the placeholder config generate writes) goes. */
static int update_snp(json_t *att, const SnpLaunchEntry *e, size_t n, const char *vmm,
                      bool *ret_changed)
{
        _cleanup_(json_decrefp) json_t *list = snp_launch_entries_to_json(e, n);
        json_t *snp = json_object_get(att, "snp"), *old;
        bool changed;
        char hex[2 * 48 + 1], params[96];

        if (!list)
                return log_oom();
        if (!json_is_object(snp))
                return log_error_errno(-EBADMSG, "attestation.snp: not an object.");
        old = json_object_get(snp, "launchMeasurements");
        changed = !old || !json_equal(old, list);
        printf("  snp.launchMeasurements: %zu for vmm %s%s\n", n, vmm,
               changed ? "" : " (unchanged)");
        for (size_t i = 0; i < n; i++) {
                hex_encode_buf(e[i].measurement, 48, hex, sizeof(hex));
                snp_launch_entry_describe(&e[i], params, sizeof(params));
                printf("    %s  %s\n", hex, params);
        }
        if (json_object_set(snp, "launchMeasurements", list) < 0)
                return log_oom();
        if (json_is_null(json_object_get(snp, "measurements"))) {
                (void) json_object_del(snp, "measurements");
                changed = true;
        }
        *ret_changed = changed;
        return 0;
}

/* tdx: the file's predicted RTMRs (its "tdx" section) into attestation.tdx's rtmrN lists. The
 * owner's mrTd and rtmr0 (the platform's) stay. */
static int update_tdx(json_t *att, const MeasurementsFile *m, bool *ret_changed)
{
        json_t *tdx = json_object_get(att, "tdx");
        _cleanup_(json_decrefp) json_t *before = NULL;
        char hex[2 * 48 + 1];

        if (!json_is_object(tdx))
                return log_error_errno(-EBADMSG, "attestation.tdx: not an object.");
        before = json_deep_copy(tdx);
        if (!before || measurements_file_tdx_policy_json(m, tdx) < 0)
                return log_oom();
        *ret_changed = !json_equal(before, tdx);
        printf("  tdx RTMRs%s:\n", *ret_changed ? "" : " (unchanged)");
        for (int i = 0; i < 4; i++)
                if (m->tdx_rtmr_present[i]) {
                        hex_encode_buf(m->tdx_rtmr[i], 48, hex, sizeof(hex));
                        printf("    rtmr%d  %s\n", i, hex);
                }
        return 0;
}

/* "image 'NAME' VERSION (KIND), measurements version N, created T". */
static void describe_file(const MeasurementsFile *m, char *buf, size_t size)
{
        (void) snprintf(buf, size, "image '%s' %s%s, measurements version %" PRId64 ", created %s",
                        m->image, m->image_version, measurements_image_kind_note(m->image_kind),
                        m->measurements_version, m->created);
        printable_ascii(buf);
}

static void describe_source(const CliMeasurementsSource *s, char *buf, size_t size)
{
        (void) snprintf(buf, size, "image '%s' %s%s, created %s, from %s", s->image,
                        s->image_version,
                        measurements_image_kind_note((MeasurementsImageKind) s->image_kind),
                        s->created, s->source);
        printable_ascii(buf);
}

/* The PCRs (except 15, never taken) the file marks warnOnly, as "4, 9"; "" if none. */
static void warn_only_pcrs(const MeasurementsFile *m, char *buf, size_t size)
{
        size_t n = 0;

        buf[0] = '\0';
        for (unsigned i = 0; i < EVIDENCE_PCR_COUNT; i++)
                if (i != PCR_CLUSTER && m->pcrs[i].present && m->pcrs[i].warn_only && n < size)
                        n += (size_t) snprintf(buf + n, size - n, "%s%u", n ? ", " : "", i);
}

/* Rollback protection (docs/config.md): the file must carry a measurementsVersion, and one not
 * lower than the configuration's record, nor equal to it with other bytes, unless
 * allow_downgrade. *ret_downgrade: whether allow_downgrade was needed. Logs one line. */
static int check_version(const char *url, const char *config_path, const MeasurementsFile *m,
                         const CliMeasurementsSource *old, bool allow_downgrade,
                         bool *ret_downgrade)
{
        char was[1024], hex_old[65], hex_new[65];

        *ret_downgrade = false;
        if (m->format_version < 2)
                return log_error_errno(
                        -EPROTONOSUPPORT,
                        "%s: refused: a format-1 measurements file, without measurementsVersion: "
                        "nothing tells it from an older file signed with the same key. Ask its "
                        "publisher for a format-2 file ('cloister-measure image IMAGE -o json "
                        "--measurements-version N', signed again with 'cloister-measure sign'; "
                        "docs/measured-boot.md). Nothing was changed.",
                        url);
        if (!old->present)
                return 0;
        describe_source(old, was, sizeof(was));
        if (m->measurements_version < old->version) {
                if (!allow_downgrade)
                        return log_error_errno(
                                -EPERM,
                                "%s: refused: measurements version %" PRId64
                                " is older than version %" PRId64
                                ", which %s already holds (%s): an older signed file can bring "
                                "back an image since found vulnerable. If you mean to go back "
                                "to it, run again with --allow-downgrade. Nothing was changed.",
                                url, m->measurements_version, old->version, config_path, was);
                *ret_downgrade = true;
                return 0;
        }
        if (m->measurements_version == old->version &&
            memcmp(m->sha256, old->sha256, sizeof(m->sha256)) != 0) {
                hex_encode_buf(old->sha256, sizeof(old->sha256), hex_old, sizeof(hex_old));
                hex_encode_buf(m->sha256, sizeof(m->sha256), hex_new, sizeof(hex_new));
                if (!allow_downgrade)
                        return log_error_errno(
                                -EPERM,
                                "%s: refused: measurements version %" PRId64
                                " is the version %s already holds (%s), but this file is another "
                                "one (SHA-256 %s, recorded %s): the publisher's key signed two "
                                "different files with one version. Ask the publisher which one "
                                "is right; --allow-downgrade takes this one knowingly. Nothing "
                                "was changed.",
                                url, m->measurements_version, config_path, was, hex_new, hex_old);
                *ret_downgrade = true;
        }
        return 0;
}

static void help(void)
{
        printf("Usage: cloister config fetch-measurements --url URL --pubkey PUB.pem\n"
               "         [--signature-url URL] [--config FILE] [--timeout SEC]\n"
               "         [--allow-downgrade] [--allow-warn-only]\n"
               "       cloister config fetch-measurements --url URL --insecure-no-signature "
               "[...]\n\n"
               "Downloads a measurements file (what 'cloister-measure image IMAGE -o json'\n"
               "prints, signed with 'cloister-measure sign'), verifies its signature with\n"
               "PUB.pem, and writes the PCRs it predicts (4, 9, 11 and those it predicts zero)\n"
               "into attestation.measurements of the configuration, atomically, mode 0600.\n"
               "PCR 15 is never taken from the file (the cluster sets it). It records the\n"
               "file's measurementsVersion, image, imageVersion, created and SHA-256 in\n"
               "measurementsSource; no other field changes. Prints each PCR, old -> new, and\n"
               "where the values came from. For a gcp or aws configuration (sev-snp), the\n"
               "file's snp.launchMeasurements for the provider's VMM (gce, ec2) replace\n"
               "attestation.snp.launchMeasurements instead ('cloister-measure snp-launch\n"
               "--add-to' computed them from the firmware). For a tdx attestation policy,\n"
               "the file's tdx RTMRs (rtmr1..3, predicted by 'cloister-measure image')\n"
               "replace attestation.tdx.rtmr1..3; mrTd and rtmr0 (the platform's) stay.\n\n"
               "Refused, after the signature is checked, nothing changed:\n"
               "  - a file without measurementsVersion (format 1): ask its publisher for a\n"
               "    format-2 one;\n"
               "  - a measurementsVersion lower than the one recorded, or the same with other\n"
               "    bytes (a rollback, or a key that signed two files with one version);\n"
               "  - a file marking PCRs warnOnly (a node whose PCR differs would be accepted).\n\n"
               "  --url URL              https://HOST/PATH or file:///ABSOLUTE/PATH (plain\n"
               "                         http:// is refused)\n"
               "  --signature-url URL    the detached signature (default URL.sig)\n"
               "  --pubkey PUB.pem       the ECDSA P-256 public key the publisher signs with\n"
               "  --config FILE          the configuration to update "
               "(default " CLI_CONFIG_FILE_DEFAULT ");\n"
               "                         qemu-vtpm or azure-sev-snp (PCRs), sev-snp on\n"
               "                         gcp or aws (launch measurements), or tdx (RTMRs)\n"
               "  --timeout SEC          for each download (default 30)\n"
               "  --allow-downgrade      take a file older than the recorded one, or another\n"
               "                         file with the recorded version, knowingly (warns)\n"
               "  --allow-warn-only      take warnOnly PCRs from the file (warns, listing them)\n"
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
                ARG_ALLOW_DOWNGRADE,
                ARG_ALLOW_WARN_ONLY,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "url", required_argument, NULL, ARG_URL },
                { "signature-url", required_argument, NULL, ARG_SIGNATURE_URL },
                { "pubkey", required_argument, NULL, ARG_PUBKEY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "insecure-no-signature", no_argument, NULL, ARG_INSECURE },
                { "allow-downgrade", no_argument, NULL, ARG_ALLOW_DOWNGRADE },
                { "allow-warn-only", no_argument, NULL, ARG_ALLOW_WARN_ONLY },
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
        json_t *att, *ms = NULL;
        const char *snp_vmm = NULL;
        _cleanup_(freep) SnpLaunchEntry *snp_entries = NULL;
        size_t n_snp = 0;
        size_t size = 0, sig_size = 0, pub_size = 0;
        bool insecure = false, changed = false, incomplete, allow_downgrade = false, tdx = false,
             allow_warn_only = false, downgrade = false;
        char what[1024], was[1024], warn_only[EVIDENCE_PCR_COUNT * 4];
        json_t *record, *old_record;
        int64_t old_version;
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
                case ARG_ALLOW_DOWNGRADE:
                        allow_downgrade = true;
                        break;
                case ARG_ALLOW_WARN_ONLY:
                        allow_warn_only = true;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "Unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (!url)
                return log_error_errno(-EUSAGE,
                                       "config fetch-measurements: --url URL is required. See "
                                       "--help.");
        if (insecure && (pubkey || sig_url))
                return log_error_errno(-EUSAGE,
                                       "--insecure-no-signature checks no signature: it cannot "
                                       "go with --pubkey or --signature-url.");
        if (!insecure && !pubkey)
                return log_error_errno(-EUSAGE,
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
        if (variant == ATTEST_VARIANT_SEV_SNP)
                snp_vmm = cli_provider_snp_vmm(
                        json_string_value(json_object_get(config.json, "provider")));
        if ((variant == ATTEST_VARIANT_SEV_SNP && !snp_vmm) || variant == ATTEST_VARIANT_SIM_SNP)
                return log_error_errno(-EINVAL,
                                       "%s: attestation variant %s has no PCRs: its nodes are "
                                       "checked by their SEV-SNP launch measurement "
                                       "(attestation.snp.measurements), not by a measurements "
                                       "file.",
                                       config_path, variant_name);
        tdx = variant == ATTEST_VARIANT_TDX;
        if (!snp_vmm && !tdx && variant != ATTEST_VARIANT_QEMU_VTPM &&
            variant != ATTEST_VARIANT_AZURE_SEV_SNP && variant != ATTEST_VARIANT_AZURE_TDX)
                return log_error_errno(-EINVAL,
                                       "%s: attestation variant %s: its boot is not what "
                                       "'cloister-measure' predicts (qemu-vtpm, azure-sev-snp, "
                                       "azure-tdx and tdx only).",
                                       config_path, variant_name ?: "(none)");
        if (!snp_vmm && !tdx)
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

        if (snp_vmm) {
                /* sev-snp: the file's launch measurements for this provider's VMM (its PCRs,
                 * if any, are for the vTPM variants). */
                diag_clear(&d);
                r = measurements_file_parse(data, size, url, &m, &d);
                if (r < 0)
                        return log_error_errno(r, "%s", d.message);
                snp_entries = calloc(SNP_POLICY_LAUNCH_MAX, sizeof(*snp_entries));
                if (!snp_entries)
                        return log_oom();
                for (size_t i = 0; i < m->n_snp_launch; i++)
                        if (strcmp(m->snp_launch[i].vmm, snp_vmm) == 0)
                                snp_entries[n_snp++] = m->snp_launch[i];
                if (n_snp == 0)
                        return log_error_errno(-ENODATA,
                                               "%s: attestation variant sev-snp has no PCRs: its "
                                               "nodes are checked by their SEV-SNP launch "
                                               "measurement, and %s has none for vmm %s (%zu for "
                                               "others): add them with 'cloister-measure "
                                               "snp-launch --vmm %s --add-to FILE' and sign it "
                                               "again. Nothing was changed.",
                                               config_path, url, snp_vmm, m->n_snp_launch, snp_vmm);
        } else if (tdx) {
                /* tdx: the image's predicted RTMRs (docs/tdx.md, "RTMR prediction"). */
                diag_clear(&d);
                r = measurements_file_parse(data, size, url, &m, &d);
                if (r < 0)
                        return log_error_errno(r, "%s", d.message);
                if (!m->tdx_rtmr_present[0] && !m->tdx_rtmr_present[1] && !m->tdx_rtmr_present[2] &&
                    !m->tdx_rtmr_present[3])
                        return log_error_errno(-ENODATA,
                                               "%s: attestation variant tdx checks RTMRs, and %s "
                                               "has none (no \"tdx\" section): make it with "
                                               "'cloister-measure image DISK.raw -o json' and "
                                               "sign it again. Nothing was changed.",
                                               config_path, url);
        } else {
                r = cli_measurements_parse(data, size, url, &m);
                if (r < 0)
                        return r;
        }
        r = check_version(url, config_path, m, &config.measurements_source, allow_downgrade,
                          &downgrade);
        if (r < 0)
                return r;
        warn_only[0] = 0;
        if (!snp_vmm && !tdx)
                warn_only_pcrs(m, warn_only, sizeof(warn_only));
        if (warn_only[0] && !allow_warn_only)
                return log_error_errno(-EPERM,
                                       "%s: refused: the file marks PCR %s warnOnly: a node whose "
                                       "value differs would be accepted with a warning, so the "
                                       "image is not checked there. 'cloister-measure' never "
                                       "writes warnOnly; if the publisher meant it, run again "
                                       "with --allow-warn-only. Nothing was changed.",
                                       url, warn_only);

        if (!ms && !snp_vmm && !tdx) {
                ms = json_object();
                if (!ms || json_object_set_new(att, "measurements", ms) < 0)
                        return log_oom();
        }
        describe_file(m, what, sizeof(what));
        printf("%s: measurements from %s (%s%s):\n  %s\n", config_path, url,
               insecure ? "SIGNATURE NOT CHECKED" : "signature verified with ",
               insecure ? "" : pubkey, what);
        if (config.measurements_source.present) {
                describe_source(&config.measurements_source, was, sizeof(was));
                printf("  measurements version: %" PRId64 " -> %" PRId64 " (recorded: %s)\n",
                       config.measurements_source.version, m->measurements_version, was);
        } else
                printf("  measurements version: none recorded -> %" PRId64 "\n",
                       m->measurements_version);
        if (m->image_kind == MEASUREMENTS_IMAGE_KIND_TEST)
                log_warning("TEST IMAGE: %s describes a test image (the kubeadm test double, no "
                            "Kubernetes): a cluster of it serves no workloads. Not for "
                            "production: build a cloud image (image/README.md, 'Kubernetes').",
                            url);
        if (config.measurements_source.present &&
            strcmp(config.measurements_source.image, m->image) != 0)
                log_warning("%s: the image name changes from '%s' to '%s': make sure this file "
                            "is for the image your cluster runs.",
                            url, config.measurements_source.image, m->image);
        if (downgrade)
                log_warning("DOWNGRADE: --allow-downgrade: %s takes measurements version %" PRId64
                            " from %s in place of version %" PRId64
                            "%s: nodes booted from the image it describes are trusted, with "
                            "whatever flaw was fixed after it. Only if you mean to go back.",
                            config_path, m->measurements_version, url,
                            config.measurements_source.version,
                            m->measurements_version == config.measurements_source.version
                                    ? " (the same version, another file)"
                                    : "");
        if (warn_only[0])
                log_warning("WARN-ONLY: --allow-warn-only: %s takes PCR %s as warnOnly from %s: "
                            "a node whose value differs there is accepted with a warning.",
                            config_path, warn_only, url);
        r = snp_vmm ? update_snp(att, snp_entries, n_snp, snp_vmm, &changed)
            : tdx   ? update_tdx(att, m, &changed)
                    : update_pcrs(ms, m, &changed);
        if (r < 0)
                return r;
        record = cli_measurements_source_json(m, url, !insecure);
        if (!record)
                return log_oom();
        old_record = json_object_get(config.json, "measurementsSource");
        if (!old_record || !json_equal(old_record, record))
                changed = true;
        old_version = config.measurements_source.version;
        /* Replacing the record frees the strings config.measurements_source points to. */
        config.measurements_source = (CliMeasurementsSource){};
        if (json_object_set_new(config.json, "measurementsSource", record) < 0)
                return log_oom();

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
        if (downgrade && changed)
                log_warning("DOWNGRADE: %s now expects measurements version %" PRId64
                            ", older than or in place of version %" PRId64 ".",
                            config_path, m->measurements_version, old_version);
        return 0;
}
