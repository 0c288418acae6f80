/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli-report-bundle.h"
#include "cli.h"
#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/sev-snp.h"
#include "cloister/snp-kds.h"

typedef struct Printer {
        OutputFormat output;
        json_t *doc; /* -o json: the result document the checks go into */
        unsigned failed;
        char first[512]; /* the first failing check, for the verdict line */
        Diag first_diag; /* the same, for the JSON verdict */
        json_t *record;  /* --bundle: every check, kept (or NULL) */
        bool quiet;      /* only record: print nothing */
} Printer;

static void print_check(void *userdata, const char *name, bool ok, const char *expected,
                        const char *actual, const char *detail)
{
        Printer *p = userdata;

        if (!ok && p->failed++ == 0) {
                (void) snprintf(p->first, sizeof(p->first), "%s: %s", name, detail ?: "");
                (void) diag_fail(&p->first_diag, -EKEYREJECTED, name, -1, "%s", p->first);
                diag_set_values(&p->first_diag, expected, actual);
        }
        if (p->record && cli_report_record_check(p->record, name, ok, expected, actual, detail) < 0)
                (void) log_oom();
        if (p->quiet)
                return;
        if (p->output == OUTPUT_JSON) {
                if (result_add_check(p->doc, name, -1, ok ? "pass" : "fail", true, expected, actual,
                                     detail) < 0)
                        (void) log_oom();
                return;
        }
        printf("%s  %-22s %s\n", ok ? "PASS" : "FAIL", name, detail ?: "");
        /* Only where the check compares values: a validity window or a signature has none. */
        if (!ok && ((expected && *expected) || (actual && *actual)))
                printf("      expected %s\n      actual   %s\n", expected ?: "", actual ?: "");
}

static void hexline(const char *label, const uint8_t *p, size_t n)
{
        char hex[2 * 64 + 1];
        hex_encode_buf(p, n, hex, sizeof(hex));
        printf("  %-20s %s\n", label, hex);
}

static void print_tcb(const char *label, uint64_t raw, SnpProduct product)
{
        SnpTcb t = snp_tcb_decode(raw, product);
        printf("  %-20s bootloader %u, TEE %u, SNP %u, microcode %u", label, t.bootloader, t.tee,
               t.snp, t.microcode);
        if (product == SNP_PRODUCT_TURIN)
                printf(", FMC %u", t.fmc);
        printf(" (0x%016llx)\n", (unsigned long long) raw);
}

static void print_report(const SnpReport *r, SnpProduct product)
{
        printf("SEV-SNP attestation report\n");
        printf("  %-20s %u\n", "version", r->version);
        printf("  %-20s 0x%llx (ABI %llu.%llu%s%s%s%s)\n", "guest policy",
               (unsigned long long) r->policy, (unsigned long long) ((r->policy >> 8) & 0xff),
               (unsigned long long) (r->policy & 0xff), r->policy & SNP_POLICY_SMT ? ", SMT" : "",
               r->policy & SNP_POLICY_MIGRATE_MA ? ", MIGRATION AGENT" : "",
               r->policy & SNP_POLICY_DEBUG ? ", DEBUG ALLOWED" : "",
               r->policy & SNP_POLICY_SINGLE_SOCKET ? ", single socket" : "");
        printf("  %-20s %u\n  %-20s %u\n", "guest SVN", r->guest_svn, "VMPL", r->vmpl);
        printf("  %-20s %s%s%s\n", "signed by",
               r->signing_key == 0   ? "VCEK"
               : r->signing_key == 1 ? "VLEK"
                                     : "nobody",
               r->author_key_en ? ", author key" : "", r->mask_chip_key ? ", chip ID masked" : "");
        printf("  %-20s 0x%llx\n", "platform info", (unsigned long long) r->platform_info);
        hexline("measurement", r->measurement, 48);
        hexline("report data", r->report_data, 64);
        hexline("host data", r->host_data, 32);
        hexline("ID key digest", r->id_key_digest, 48);
        hexline("author key digest", r->author_key_digest, 48);
        hexline("family ID", r->family_id, 16);
        hexline("image ID", r->image_id, 16);
        hexline("report ID", r->report_id, 32);
        hexline("chip ID", r->chip_id, 64);
        print_tcb("current TCB", r->current_tcb_raw, product);
        print_tcb("reported TCB", r->reported_tcb_raw, product);
        print_tcb("committed TCB", r->committed_tcb_raw, product);
        print_tcb("launch TCB", r->launch_tcb_raw, product);
        printf("  %-20s %u.%u build %u\n", "firmware", r->current_major, r->current_minor,
               r->current_build);
        if (r->version >= 3)
                printf("  %-20s family 0x%x, model 0x%x, stepping 0x%x\n", "CPUID", r->cpuid_fam,
                       r->cpuid_mod, r->cpuid_step);
}

int cli_snp_report_policy(const uint8_t *data, size_t size, const char *source, AttestPolicy **ret)
{
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        Diag d;
        int r;

        diag_clear(&d);
        r = attest_policy_parse(data, size, source, &pol, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (pol->variant != ATTEST_VARIANT_SEV_SNP && pol->variant != ATTEST_VARIANT_SIM_SNP &&
            pol->variant != ATTEST_VARIANT_AZURE_SEV_SNP)
                return log_error_errno(-EINVAL,
                                       "%s is a policy for variant %s, not for SEV-SNP: "
                                       "--type snp needs one whose variant is sev-snp, "
                                       "azure-sev-snp or sim-snp.",
                                       source, attest_variant_to_string(pol->variant));
        *ret = TAKE_PTR(pol);
        return 0;
}

int cli_snp_report_trust(const AttestPolicy *pol, const char *policy_source, const uint8_t *crl,
                         size_t crl_size, const char *crl_source, SnpTrust **ret)
{
        _cleanup_(snp_trust_freep) SnpTrust *trust = NULL;
        int r;

        r = snp_trust_new(true, &trust);
        if (r < 0)
                return log_error_errno(r, "Cannot load the built-in AMD roots: %m");
        if (pol && pol->snp_trusted_arks.data &&
            snp_trust_add_ark_pem(trust, (const char *) pol->snp_trusted_arks.data,
                                  pol->snp_trusted_arks.size) < 0)
                return log_error_errno(-EINVAL, "%s: .snp.trustedArks holds no valid ARK.",
                                       policy_source);
        if (crl && (r = snp_trust_set_crl(trust, crl, crl_size, true)) < 0)
                return log_error_errno(r, "%s: not a readable CRL: %m", crl_source);
        *ret = TAKE_PTR(trust);
        return 0;
}

int cli_snp_report_verify(const SnpReport *rep, const uint8_t *raw, size_t rn, const uint8_t *vb,
                          size_t vn, const uint8_t *cb, size_t cn, const SnpTrust *trust,
                          const AttestPolicy *pol, SnpProduct product, time_t at,
                          OutputFormat output, bool quiet, const json_t *extra, json_t *record)
{
        Printer pr = { .output = output, .record = record, .quiet = quiet };
        Diag d;
        int r;

        diag_clear(&d);
        diag_clear(&pr.first_diag);
        if (!quiet && pr.output == OUTPUT_JSON &&
            (!(pr.doc = result_new("cloister attestation verify-report")) ||
             json_object_set_new(pr.doc, "type", json_string("snp")) < 0 ||
             json_object_set_new(pr.doc, "checks", json_array()) < 0))
                return log_oom();

        r = snp_verify_report(rep, raw, rn, vb, vn, cb, cn, trust, at, &product, &d);
        if (!quiet && pr.output == OUTPUT_TEXT)
                print_report(rep, product);
        if (!quiet && pr.output == OUTPUT_TEXT)
                printf("\nChecks\n");
        if (r < 0)
                print_check(&pr, d.check, false, d.expected, d.actual, d.message);
        else {
                char detail[128];
                (void) snprintf(detail, sizeof(detail),
                                "signature, chain to the %s ARK, VCEK extensions",
                                snp_product_to_string(product));
                print_check(&pr, "snp-authenticity", true, NULL, NULL, detail);
                if (pol)
                        (void) snp_check_policy(rep, product, &pol->snp, NULL, print_check, &pr,
                                                NULL);
        }
        if (quiet)
                return pr.failed ? -EKEYREJECTED : 0;
        if (pr.output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc = TAKE_PTR(pr.doc);
                const char *prod = snp_product_to_string(product);
                /* A stored report: REPORT_DATA is printed, never compared with a nonce. */
                if (json_object_set_new(doc, "report",
                                        json_pack("{s:i,s:o}", "version", (int) rep->version,
                                                  "product",
                                                  prod ? json_string(prod) : json_null())) < 0 ||
                    (extra && json_object_update(doc, (json_t *) extra) < 0) ||
                    result_set_verdict(doc, pr.failed ? "fail" : "pass",
                                       pr.failed ? pr.first : NULL, &pr.first_diag,
                                       "not-checked") < 0 ||
                    result_print(doc) < 0)
                        return log_oom();
        } else if (pr.failed)
                printf("\nVerdict: FAIL: %s\n", pr.first);
        else
                printf("\nVerdict: PASS\n");
        return pr.failed ? -EKEYREJECTED : 0;
}

int verb_verify_report(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_AT = 0x100,
                ARG_CRL,
                ARG_TYPE,
                ARG_KDS,
                ARG_CACHE,
                ARG_OFFLINE,
                ARG_PRODUCT,
                ARG_BUNDLE
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "type", required_argument, NULL, ARG_TYPE },
                { "report", required_argument, NULL, 'r' },
                { "vcek", required_argument, NULL, 'v' },
                { "chain", required_argument, NULL, 'c' },
                { "policy", required_argument, NULL, 'p' },
                { "crl", required_argument, NULL, ARG_CRL },
                { "at", required_argument, NULL, ARG_AT },
                { "output", required_argument, NULL, 'o' },
                { "kds-url", required_argument, NULL, ARG_KDS },
                { "cache-dir", required_argument, NULL, ARG_CACHE },
                { "offline", no_argument, NULL, ARG_OFFLINE },
                { "product", required_argument, NULL, ARG_PRODUCT },
                { "bundle", required_argument, NULL, ARG_BUNDLE },
                {},
        };
        CliOptions *o = userdata;
        _cleanup_(freep) char *default_cache = NULL;
        const char *product_arg = NULL;
        SnpKdsConfig kds;
        const char *report = NULL, *vcek = NULL, *chain = NULL, *policy = NULL, *crl = NULL;
        _cleanup_(freep) uint8_t *raw = NULL, *vb = NULL, *cb = NULL, *crlb = NULL, *polb = NULL;
        _cleanup_(json_decrefp) json_t *record = NULL;
        const char *bundle = NULL;
        char kds_origin[512];
        _cleanup_(snp_trust_freep) SnpTrust *trust = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        size_t rn, vn = 0, cn = 0, crln = 0, poln = 0;
        SnpProduct product = SNP_PRODUCT_MILAN;
        time_t at = 0;
        SnpReport rep;
        Diag d;
        int c, r;

        for (int i = 1; i < argc; i++)
                if ((strcmp(argv[i], "--type") == 0 && i + 1 < argc &&
                     strcmp(argv[i + 1], "tdx") == 0) ||
                    strcmp(argv[i], "--type=tdx") == 0)
                        return verify_report_tdx(argc, argv, o);
        snp_kds_config_defaults(&kds);
        if (cli_user_cache_dir("snp", &default_cache) < 0)
                return -ENOMEM;
        kds.cache_dir = default_cache;
        optind = 0;
        while ((c = getopt_long(argc, argv, "hr:v:c:p:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister attestation verify-report --type snp --report "
                               "FILE\n"
                               "         [--vcek FILE] [--chain FILE] [--policy FILE] [--crl "
                               "FILE]\n"
                               "         [--at TIME] [-o text|json]\n\n"
                               "Verifies a raw SEV-SNP attestation report offline and prints "
                               "every\n"
                               "field and every check. Without --policy only authenticity is\n"
                               "checked: the signature, the chain to a built-in AMD ARK (or one\n"
                               "the policy names), and the VCEK's extensions against the "
                               "report.\n\n"
                               "  --vcek FILE   VCEK or VLEK, DER or PEM\n"
                               "  --chain FILE  ASK/ASVK + ARK bundle, either order, PEM or DER\n"
                               "  --crl FILE    AMD's CRL for the ARK (must be fresh at --at)\n"
                               "  --at TIME     verification time, YYYY-MM-DD[THH:MM:SSZ]\n"
                               "  --bundle OUT  also keep the report, the certificates and CRL\n"
                               "                used, the policy, the time and every check in an\n"
                               "                evidence bundle (docs/bundle.md) that 'cloister\n"
                               "                verify --bundle OUT' verifies again offline\n"
                               "Without --vcek/--chain the certificates are fetched from AMD's "
                               "KDS\n"
                               "once and cached:\n"
                               "  --kds-url URL     KDS base URL (default " SNP_KDS_URL_DEFAULT
                               ")\n"
                               "  --cache-dir DIR   (default $XDG_CACHE_HOME/cloister/snp)\n"
                               "  --offline         use only the cache\n"
                               "  --product NAME    Milan|Genoa|Turin, for version-2 reports\n\n"
                               "Intel TDX quotes: --type tdx --help.\n");
                        return 0;
                case ARG_TYPE:
                        if (strcmp(optarg, "snp") != 0)
                                return log_error_errno(-EUSAGE, "--type '%s': use snp or tdx.",
                                                       optarg);
                        break;
                case 'r':
                        report = optarg;
                        break;
                case 'v':
                        vcek = optarg;
                        break;
                case 'c':
                        chain = optarg;
                        break;
                case 'p':
                        policy = optarg;
                        break;
                case ARG_CRL:
                        crl = optarg;
                        break;
                case ARG_KDS:
                        kds.base_url = optarg;
                        break;
                case ARG_CACHE:
                        kds.cache_dir = optarg;
                        break;
                case ARG_OFFLINE:
                        kds.offline = true;
                        break;
                case ARG_PRODUCT:
                        product_arg = optarg;
                        break;
                case ARG_BUNDLE:
                        bundle = optarg;
                        break;
                case ARG_AT:
                        if (cli_parse_at_option(optarg, &at) < 0)
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
        if (optind < argc || !report)
                return log_error_errno(-EUSAGE, "--report FILE is required. See --help.");
        if (bundle && access(bundle, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s already exists: a bundle is never overwritten; give "
                                       "--bundle another file name.",
                                       bundle);

        r = read_full_file(report, 64 * 1024, &raw, &rn);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", report);
        if (vcek && (r = read_full_file(vcek, SNP_CHAIN_MAX, &vb, &vn)) < 0)
                return log_error_errno(r, "%s: cannot read: %m", vcek);
        if (chain && (r = read_full_file(chain, SNP_CHAIN_MAX, &cb, &cn)) < 0)
                return log_error_errno(r, "%s: cannot read: %m", chain);
        diag_clear(&d);
        if (policy) {
                r = read_full_file(policy, ATTEST_POLICY_SIZE_MAX, &polb, &poln);
                if (r == -EMSGSIZE)
                        return log_error_errno(r, "%s: larger than %u bytes.", policy,
                                               ATTEST_POLICY_SIZE_MAX);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read: %m", policy);
                r = cli_snp_report_policy(polb, poln, policy, &pol);
                if (r < 0)
                        return r;
        }
        if (crl) {
                r = read_full_file(crl, SNP_CHAIN_MAX, &crlb, &crln);
                if (r < 0)
                        return log_error_errno(r, "%s: not a readable CRL: %m", crl);
        }
        r = cli_snp_report_trust(pol, policy, crlb, crln, crl, &trust);
        if (r < 0)
                return r;

        r = snp_report_parse(raw, rn, &rep, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s", report, d.message);
        if (!vb || !cb) {
                if (product_arg) {
                        product = _SNP_PRODUCT_INVALID;
                        for (int i = 0; i < _SNP_PRODUCT_MAX; i++)
                                if (strcasecmp(product_arg, snp_product_to_string(i)) == 0)
                                        product = (SnpProduct) i;
                        if (product < 0)
                                return log_error_errno(-EUSAGE,
                                                       "--product '%s': use Milan, Genoa or Turin.",
                                                       product_arg);
                } else if (snp_report_product(&rep, &product) < 0)
                        return log_error_errno(-EINVAL,
                                               "Cannot tell the processor from a version-%u "
                                               "report: pass --product or --vcek/--chain.",
                                               rep.version);
                (void) snprintf(kds_origin, sizeof(kds_origin), "AMD KDS %s (or the cache %s)",
                                kds.base_url, kds.cache_dir ?: "(none)");
                if (!vb && (r = snp_kds_get_vcek(&kds, product, &rep, &vb, &vn, &d)) < 0)
                        return log_error_errno(r, "Cannot get the VCEK: %s", d.message);
                if (!cb &&
                    (r = snp_kds_get_chain(&kds, product, rep.signing_key == 1, &cb, &cn, &d)) < 0)
                        return log_error_errno(r, "Cannot get the certificate chain: %s",
                                               d.message);
        }
        if (bundle) {
                if (at == 0)
                        at = time(NULL); /* a bundle says when: "now" is this second */
                record = json_array();
                if (!record)
                        return log_oom();
        }
        r = cli_snp_report_verify(&rep, raw, rn, vb, vn, cb, cn, trust, pol, product, at, o->output,
                                  false, NULL, record);
        if (bundle) {
                CliReportInput in[5];
                size_t n = 0;
                int k;

                in[n++] = (CliReportInput){ "snp/report", raw, rn, report };
                in[n++] = (CliReportInput){ "snp/vcek", vb, vn, vcek ?: kds_origin };
                in[n++] = (CliReportInput){ "snp/chain", cb, cn, chain ?: kds_origin };
                if (crl)
                        in[n++] = (CliReportInput){ "snp/crl", crlb, crln, crl };
                if (policy)
                        in[n++] = (CliReportInput){ "policy.json", polb, poln, policy };
                k = cli_report_bundle_write(bundle, "snp", at, rep.report_data, policy, in, n,
                                            record, r >= 0);
                if (k < 0)
                        return k;
        }
        return r;
}
