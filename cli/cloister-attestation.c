/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli-json.h"
#include "cli.h"
#include "cloister/attest.h"
#include "cloister/base64.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/tpm-device.h"
#include "cloister/tpm-quote.h"

static const char *arg_evidence, *arg_policy, *arg_binding;
static bool arg_no_binding;
static time_t arg_at;

int cli_parse_time(const char *s, time_t *ret)
{
        struct tm tm = {};
        const char *end;

        /* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC. */
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end) {
                memset(&tm, 0, sizeof(tm));
                end = strptime(s, "%Y-%m-%d", &tm);
                if (!end || *end)
                        return -EINVAL;
        }
        *ret = timegm(&tm);
        return 0;
}

static int parse_verify_options(int argc, char *argv[], CliOptions *o)
{
        enum { ARG_AT = 0x100, ARG_NO_BINDING };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "evidence", required_argument, NULL, 'e' },
                { "policy", required_argument, NULL, 'p' },
                { "binding", required_argument, NULL, 'b' },
                { "no-binding", no_argument, NULL, ARG_NO_BINDING },
                { "at", required_argument, NULL, ARG_AT },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "he:p:b:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister attestation verify --evidence FILE --policy FILE\n"
                               "                                   --binding HEX|--no-binding "
                               "[--at TIME] [-o text|json]\n\n"
                               "Verifies a stored evidence document against a policy, offline.\n"
                               "Prints every check and every PCR (expected vs actual, enforced or\n"
                               "warn-only).\n\n"
                               "  --binding HEX  the 32-byte digest the evidence must be bound to\n"
                               "                 (the quote's qualifying data, the SNP report's\n"
                               "                 REPORT_DATA): proves the document was made for\n"
                               "                 this verifier's nonce, not replayed\n"
                               "  --no-binding   inspect the document only: freshness is NOT\n"
                               "                 checked (anyone may be replaying it), and the\n"
                               "                 verdict says so\n"
                               "  --at TIME      verification time for certificates, YYYY-MM-DD "
                               "or\n"
                               "                 YYYY-MM-DDTHH:MM:SSZ (default: now)\n\n"
                               "Exit status: 0 if every enforced check passes and the evidence\n"
                               "is bound to --binding (with --no-binding: every enforced check\n"
                               "but freshness); 1 otherwise, and always 1 without one of\n"
                               "--binding or --no-binding (freshness not checked: no pass).\n"
                               "With -o json, \"freshness\" is \"checked\" or \"not-checked\"\n"
                               "(schema: docs/evidence-format.md).\n");
                        return 0;
                case 'e':
                        arg_evidence = optarg;
                        break;
                case 'p':
                        arg_policy = optarg;
                        break;
                case 'b':
                        arg_binding = optarg;
                        break;
                case ARG_NO_BINDING:
                        arg_no_binding = true;
                        break;
                case ARG_AT:
                        if (cli_parse_at_option(optarg, &arg_at) < 0)
                                return -EUSAGE;
                        break;
                case 'o':
                        if (cli_parse_output_option(optarg, &o->output) < 0)
                                return -EUSAGE;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "Unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (!arg_evidence || !arg_policy)
                return log_error_errno(-EUSAGE,
                                       "Both --evidence and --policy are required. See --help.");
        if (arg_binding && arg_no_binding)
                return log_error_errno(-EUSAGE,
                                       "--binding and --no-binding exclude each other. See "
                                       "--help.");
        return 1;
}

static const char *status_label(CheckStatus s)
{
        switch (s) {
        case CHECK_PASS:
                return "PASS";
        case CHECK_FAIL:
                return "FAIL";
        case CHECK_WARN:
                return "WARN";
        case CHECK_SKIPPED:
                return "SKIP";
        case CHECK_PENDING:
                return "PEND";
        default:
                return "????";
        }
}

static const char *freshness_reason(CliFreshness f)
{
        return f == CLI_FRESHNESS_OFFLINE ? "--no-binding" : "no --binding given";
}

void cli_print_report_text(const AttestReport *rep, int verdict, const Diag *d,
                           CliFreshness freshness)
{
        for (size_t i = 0; i < rep->n_checks; i++) {
                const CheckResult *c = &rep->checks[i];
                char name[DIAG_CHECK_MAX + 16];

                if (c->index >= 0)
                        (void) snprintf(name, sizeof(name), "%s[%d]", c->name, c->index);
                else
                        (void) snprintf(name, sizeof(name), "%s", c->name);
                printf("%s  %-26s %s%s\n", status_label(c->status), name, c->detail,
                       c->enforced ? "" : " (warn-only)");
                if (c->expected[0] || c->actual[0])
                        printf("      expected %s\n      actual   %s\n", c->expected, c->actual);
        }
        printf("\n");
        if (freshness != CLI_FRESHNESS_CHECKED)
                printf("Freshness: NOT checked (%s): the evidence's binding to a verifier's "
                       "nonce was not compared; anyone may be replaying it\n",
                       freshness_reason(freshness));
        if (verdict < 0)
                printf("Verdict: FAIL: %s\n", d->message);
        else if (verdict > 0)
                printf("Verdict: INCOMPLETE: the attestation key is not yet proven to be in the "
                       "certified TPM (credential activation needs the live TPM)\n");
        else if (freshness != CLI_FRESHNESS_CHECKED)
                /* Never a bare PASS for a document that may be a replay. */
                printf("Verdict: PASS (freshness not checked: %s)\n", freshness_reason(freshness));
        else
                printf("Verdict: PASS\n");
}

int cli_print_report_json(const AttestReport *rep, int verdict, const Diag *d,
                          CliFreshness freshness)
{
        _cleanup_(json_decrefp) json_t *doc =
                cli_report_json("cloister attestation verify", rep, verdict, d, freshness);

        if (!doc || result_print(doc) < 0)
                return log_oom();
        return 0;
}

static int attestation_verify_verb(int argc, char *argv[], void *userdata)
{
        CliOptions *o = userdata;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        uint8_t binding[ATTEST_BINDING_SIZE];
        CliFreshness freshness;
        AttestReport rep = {};
        size_t size;
        Diag d;
        int r, verdict;

        r = parse_verify_options(argc, argv, o);
        if (r <= 0)
                return r;

        diag_clear(&d);
        if (arg_binding && hex_decode_exact(arg_binding, binding, sizeof(binding)) < 0)
                return log_error_errno(-EUSAGE, "--binding: expected 64 hex digits.");
        r = attest_policy_load(arg_policy, &p, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        r = read_full_file(arg_evidence, EVIDENCE_SIZE_MAX, &data, &size);
        if (r == -EMSGSIZE)
                return log_error_errno(r, "%s: larger than the evidence limit of %u bytes.",
                                       arg_evidence, EVIDENCE_SIZE_MAX);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", arg_evidence);
        r = evidence_parse(data, size, &e, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s", arg_evidence, d.message);
        freshness = arg_binding      ? CLI_FRESHNESS_CHECKED
                    : arg_no_binding ? CLI_FRESHNESS_OFFLINE
                                     : CLI_FRESHNESS_NO_BINDING;
        if (freshness == CLI_FRESHNESS_OFFLINE)
                log_warning("--no-binding: the evidence's freshness is NOT checked: anyone may be "
                            "replaying it.");

        verdict = attest_verify(e, p, arg_binding ? binding : NULL, arg_at, &rep, &d);
        /* Without a binding a stored document proves nothing about when, or for whom, it was
         * made: a replay passes every other check. That is a pass only when asked for. */
        if (verdict == 0 && freshness == CLI_FRESHNESS_NO_BINDING)
                verdict = diag_fail(&d, -EPERM, "freshness", -1,
                                    "freshness NOT checked: no --binding given, so this document "
                                    "may be a replay (give the expected --binding HEX, or "
                                    "--no-binding to inspect it offline only)");
        if (o->output == OUTPUT_JSON)
                r = cli_print_report_json(&rep, verdict, &d, freshness);
        else
                cli_print_report_text(&rep, verdict, &d, freshness);
        attest_report_done(&rep);
        if (r < 0)
                return r;
        if (freshness == CLI_FRESHNESS_NO_BINDING)
                log_error("%s: freshness NOT checked (no --binding): give --binding HEX, or "
                          "--no-binding to inspect the document offline.",
                          arg_evidence);
        /* ek-cert trust verified offline is incomplete: not a pass. */
        return verdict < 0 ? verdict : verdict > 0 ? -EPERM : 0;
}

static int parse_pcr_list(const char *s, uint32_t *ret)
{
        uint32_t mask = 0;
        char *end;

        /* "0-15", "0,4,7", "0-7,14" */
        while (*s) {
                unsigned long a = strtoul(s, &end, 10), b;

                if (end == s || a > 23)
                        return -EINVAL;
                b = a;
                s = end;
                if (*s == '-') {
                        b = strtoul(s + 1, &end, 10);
                        if (end == s + 1 || b > 23 || b < a)
                                return -EINVAL;
                        s = end;
                }
                for (unsigned long i = a; i <= b; i++)
                        mask |= 1U << i;
                if (*s == ',')
                        s++;
                else if (*s)
                        return -EINVAL;
        }
        if (mask == 0)
                return -EINVAL;
        *ret = mask;
        return 0;
}

static int attestation_issue_verb(int argc, char *argv[], void *userdata)
{
        enum { ARG_EK = 0x100, ARG_EVENT_LOG, ARG_TCTI };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "tcti", required_argument, NULL, ARG_TCTI },
                { "binding", required_argument, NULL, 'b' },
                { "pcrs", required_argument, NULL, 'p' },
                { "event-log", required_argument, NULL, ARG_EVENT_LOG },
                { "ek", no_argument, NULL, ARG_EK },
                { "output-file", required_argument, NULL, 'f' },
                {},
        };
        _cleanup_(tpm_device_closep) TpmDevice *tpm = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) char *doc = NULL;
        uint8_t binding[ATTEST_BINDING_SIZE];
        const char *tcti = NULL, *file = NULL, *bhex = NULL;
        VtpmIssueConfig cfg;
        size_t size;
        Diag d;
        int c, r;

        vtpm_issue_config_defaults(&cfg);
        optind = 0;
        while ((c = getopt_long(argc, argv, "hb:p:f:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister attestation issue --binding HEX [--tcti CONF]\n"
                               "                                  [--pcrs 0-15] [--event-log PATH] "
                               "[--ek] [--output-file FILE]\n\n"
                               "Quotes this machine's TPM and writes a qemu-vtpm evidence "
                               "document\n"
                               "(for inspection and tests; nodes attest inside aTLS).\n\n"
                               "  --binding HEX     32 bytes the quote's qualifying data carries\n"
                               "  --tcti CONF       device:/dev/tpmrm0 (default, or\n"
                               "                    $CLOISTER_TPM_TCTI), swtpm:path=SOCKET\n"
                               "  --pcrs LIST       PCRs to quote, e.g. 0-15 (default) or 0,4,7-9\n"
                               "  --event-log PATH  boot event log (default: the kernel's;\n"
                               "                    '' for none)\n"
                               "  --ek              include the EK certificate and EK public\n");
                        return 0;
                case ARG_TCTI:
                        tcti = optarg;
                        break;
                case 'b':
                        bhex = optarg;
                        break;
                case 'p':
                        if (parse_pcr_list(optarg, &cfg.pcr_mask) < 0)
                                return log_error_errno(-EUSAGE,
                                                       "--pcrs '%s': use indexes 0-23 like "
                                                       "0-15 or 0,4,7.",
                                                       optarg);
                        break;
                case ARG_EVENT_LOG:
                        cfg.event_log = optarg;
                        break;
                case ARG_EK:
                        cfg.include_ek = true;
                        break;
                case 'f':
                        file = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "Unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (!bhex || hex_decode_exact(bhex, binding, sizeof(binding)) < 0)
                return log_error_errno(-EUSAGE, "--binding: 64 hex digits are required.");

        r = tpm_device_open(tcti, &tpm);
        if (r < 0)
                return log_error_errno(r,
                                       "Cannot open the TPM '%s': %s. Check --tcti or "
                                       "$CLOISTER_TPM_TCTI.",
                                       tcti ?: getenv("CLOISTER_TPM_TCTI") ?: TPM_DEVICE_TCTI_DEFAULT,
                                       tpm_device_open_explain(r));
        diag_clear(&d);
        r = attest_vtpm_issue(tpm, &cfg, binding, &e, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        r = evidence_serialize(e, &doc, &size);
        if (r < 0)
                return log_error_errno(r, "Cannot serialise the evidence: %m");
        if (file) {
                r = write_file_atomic(file, doc, size, 0644, 0);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot write: %m", file);
        } else
                printf("%s\n", doc);
        return 0;
}

static int attestation_show_verb(int argc, char *argv[], void *userdata)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        TpmQuoteInfo q;
        TpmPublic ak;
        size_t size;
        Diag d;
        int r;

        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf("Usage: cloister attestation show FILE\n\nPrints an evidence document "
                       "decoded. It verifies nothing: use 'attestation verify' for that.\n");
                return 0;
        }
        if (argc != 2)
                return log_error_errno(-EUSAGE, "attestation show: give one FILE. See --help.");
        if (argv[1][0] == '-' && argv[1][1])
                return log_error_errno(
                        -EUSAGE, "attestation show: unknown option '%s'. See --help.", argv[1]);
        r = read_full_file(argv[1], EVIDENCE_SIZE_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", argv[1]);
        diag_clear(&d);
        r = evidence_parse(data, size, &e, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s", argv[1], d.message);

        printf("evidence version %u, variant %s (NOT verified)\n", e->version,
               attest_variant_to_string(e->variant));
        if (e->has_tpm) {
                const EvidenceTpm *t = &e->tpm;
                char hex[2 * TPM_DIGEST_MAX + 1];

                if (tpm_public_parse(t->ak_public.data, t->ak_public.size, &ak, &d) >= 0) {
                        printf("AK: %s, attributes 0x%08x\n",
                               ak.type == TPM_ALG_ECC ? "ECC" : "RSA", ak.attributes);
                        tpm_public_done(&ak);
                } else
                        printf("AK: unparsable (%s)\n", d.message);
                if (tpm_quote_parse(t->quote.data, t->quote.size, &q, &d) >= 0) {
                        hex_encode_buf(q.extra_data, q.extra_data_size, hex, sizeof(hex));
                        printf("quote: qualifying data %s\n", hex);
                        printf("       clock %llu ms, resets %u, restarts %u, firmware 0x%016llx\n",
                               (unsigned long long) q.clock, q.reset_count, q.restart_count,
                               (unsigned long long) q.firmware_version);
                } else
                        printf("quote: unparsable (%s)\n", d.message);
                for (int i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                        if (!(t->pcr_mask & (1U << i)))
                                continue;
                        hex_encode_buf(t->pcrs[i], EVIDENCE_PCR_SIZE, hex, sizeof(hex));
                        printf("PCR %2d: %s\n", i, hex);
                }
                printf("event log: %zu bytes\nEK certificate: %s\n", t->event_log.size,
                       t->ek_certificate.data ? "present" : "absent");
        }
        if (e->has_snp)
                printf("SNP report: %zu bytes\n", e->snp.report.size);
        return 0;
}

int cli_evidence_load_ak(const char *path, Evidence **ret_evidence, char **ret_ak_public)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) char *spki64 = NULL;
        unsigned char *der = NULL;
        TpmPublic ak;
        size_t size;
        Diag d;
        int n, r;

        r = read_full_file(path, EVIDENCE_SIZE_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", path);
        diag_clear(&d);
        r = evidence_parse(data, size, &e, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s", path, d.message);
        if (e->variant != ATTEST_VARIANT_QEMU_VTPM)
                return log_error_errno(-EINVAL, "%s: only qemu-vtpm evidence is supported.", path);
        r = tpm_public_parse(e->tpm.ak_public.data, e->tpm.ak_public.size, &ak, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s", path, d.message);
        n = i2d_PUBKEY(ak.key, &der);
        tpm_public_done(&ak);
        if (n <= 0 || base64_encode(der, (size_t) n, &spki64) < 0) {
                OPENSSL_free(der);
                return log_oom();
        }
        OPENSSL_free(der);
        *ret_evidence = TAKE_PTR(e);
        *ret_ak_public = TAKE_PTR(spki64);
        return 0;
}

/* Trust on first use: a policy that pins the AK and expects the PCRs of a given evidence. Only
 * for machines the owner controls (local clusters); it says so. */
static int attestation_policy_verb(int argc, char *argv[], void *userdata)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) char *spki64 = NULL, *text = NULL;
        _cleanup_(json_decrefp) json_t *root = NULL, *ms = NULL;
        int r;

        bool force = false;

        /* --force anywhere: overwrite an existing OUTPUT. */
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--force") == 0) {
                        force = true;
                        memmove(argv + i, argv + i + 1, (size_t) (argc - i) * sizeof(char *));
                        argc--;
                        break;
                }
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf("Usage: cloister attestation policy EVIDENCE [OUTPUT [--force]]\n\n"
                       "Writes a qemu-vtpm policy that pins the evidence's attestation key and\n"
                       "expects its current PCR values (trust on first use: only for machines you\n"
                       "control, such as a local cluster). An existing OUTPUT (a trust anchor) is\n"
                       "never replaced without --force.\n");
                return 0;
        }
        for (int i = 1; i < argc; i++)
                if (argv[i][0] == '-' && argv[i][1])
                        return log_error_errno(-EUSAGE,
                                               "attestation policy: unknown option '%s'. See "
                                               "--help.",
                                               argv[i]);
        if (argc < 2 || argc > 3)
                return log_error_errno(-EUSAGE,
                                       "attestation policy: give EVIDENCE [OUTPUT]. See --help.");

        r = cli_evidence_load_ak(argv[1], &e, &spki64);
        if (r < 0 || !e)
                return r < 0 ? r : -EINVAL;
        ms = json_object();
        for (int i = 0; ms && i < EVIDENCE_PCR_COUNT; i++) {
                char key[4], hex[2 * EVIDENCE_PCR_SIZE + 1];
                if (!(e->tpm.pcr_mask & (1U << i)))
                        continue;
                (void) snprintf(key, sizeof(key), "%d", i);
                hex_encode_buf(e->tpm.pcrs[i], EVIDENCE_PCR_SIZE, hex, sizeof(hex));
                (void) json_object_set_new(ms, key, json_pack("{s:s}", "expected", hex));
        }
        root = ms ? json_pack("{s:i,s:s,s:O,s:{s:s,s:s}}", "version", 1, "variant", "qemu-vtpm",
                              "measurements", ms, "akTrust", "mode", "pinned", "akPublic", spki64)
                  : NULL;
        if (!root || json_dump_pretty(root, &text) < 0)
                return log_oom();
        log_warning("Trust on first use: this policy accepts exactly what %s shows now.", argv[1]);
        if (argc == 3) {
                r = write_file_atomic(argv[2], text, strlen(text), 0644,
                                      force ? 0 : WRITE_FILE_EXCLUSIVE);
                if (r == -EEXIST)
                        return log_error_errno(r,
                                               "%s already exists: refusing to overwrite a policy "
                                               "(a trust anchor) (--force replaces it).",
                                               argv[2]);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot write: %m", argv[2]);
        } else
                printf("%s\n", text);
        return 0;
}

int verb_attestation(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "verify", 0, VERB_ANY, attestation_verify_verb,
                  "verify a stored evidence document against a policy" },
                { "show", 0, VERB_ANY, attestation_show_verb,
                  "print an evidence document decoded" },
                { "issue", 0, VERB_ANY, attestation_issue_verb,
                  "quote this machine's TPM into an evidence document" },
                { "policy", 0, VERB_ANY, attestation_policy_verb,
                  "a pinned policy from evidence (trust on first use, local clusters)" },
                { "verify-report", 0, VERB_ANY, verb_verify_report,
                  "verify a raw SEV-SNP report offline, printing every field" },
                { "sim-tdx-root", 0, VERB_ANY, verb_attestation_sim_tdx_root,
                  "SIMULATED TDX platform root and its policy (local clusters)" },
                {},
        };

        return verbs_dispatch("cloister attestation", argc - 1, argv + 1, verbs, userdata);
}
