/* SPDX-License-Identifier: Apache-2.0 */
/* cloister attestation verify-report --type tdx: a TDX quote verified offline, every field and
 * every check printed (docs/tdx.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli-report-bundle.h"
#include "cli.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"

typedef struct Printer {
        OutputFormat output;
        json_t *doc; /* -o json: the result document the checks go into */
        unsigned failed;
        char first[DIAG_MESSAGE_MAX]; /* "check: detail" of the first failure */
        Diag first_diag;              /* the same, for the JSON verdict */
        json_t *record;               /* --bundle: every check, kept (or NULL) */
        bool quiet;                   /* only record: print nothing */
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
        printf("%s  %-26s %s\n", ok ? "PASS" : "FAIL", name, detail ?: "");
        if (!ok && (expected || actual))
                printf("      expected %s\n      actual   %s\n", expected ?: "", actual ?: "");
}

typedef struct Field {
        const char *name;
        const void *data;
        size_t size;
} Field;

static void fields_of(const TdxQuote *q, Field *f, size_t *n)
{
        size_t k = 0;
        static const char *const rtmr[] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };

        f[k++] = (Field){ "qeVendorId", q->qe_vendor_id, 16 };
        f[k++] = (Field){ "userData", q->user_data, 20 };
        f[k++] = (Field){ "teeTcbSvn", q->tee_tcb_svn, 16 };
        f[k++] = (Field){ "mrSeam", q->mr_seam, 48 };
        f[k++] = (Field){ "mrSignerSeam", q->mr_signer_seam, 48 };
        f[k++] = (Field){ "mrTd", q->mr_td, 48 };
        f[k++] = (Field){ "mrConfigId", q->mr_config_id, 48 };
        f[k++] = (Field){ "mrOwner", q->mr_owner, 48 };
        f[k++] = (Field){ "mrOwnerConfig", q->mr_owner_config, 48 };
        for (int i = 0; i < 4; i++)
                f[k++] = (Field){ rtmr[i], q->rtmr[i], 48 };
        f[k++] = (Field){ "reportData", q->report_data, 64 };
        if (q->body_type == 3) {
                f[k++] = (Field){ "teeTcbSvn2", q->tee_tcb_svn2, 16 };
                f[k++] = (Field){ "mrServiceTd", q->mr_service_td, 48 };
        }
        f[k++] = (Field){ "qeMrEnclave", q->qe_report.mrenclave, 32 };
        f[k++] = (Field){ "qeMrSigner", q->qe_report.mrsigner, 32 };
        f[k++] = (Field){ "qeAttributes", q->qe_report.attributes, 16 };
        f[k++] = (Field){ "qeCpuSvn", q->qe_report.cpusvn, 16 };
        f[k++] = (Field){ "attestationKey", q->attestation_key, 64 };
        *n = k;
}

static void td_attributes(uint64_t a, char *buf, size_t size)
{
        (void) snprintf(buf, size, "0x%016llx%s%s%s%s%s%s", (unsigned long long) a,
                        a & TDX_TD_ATTR_DEBUG ? " DEBUG" : "",
                        a & TDX_TD_ATTR_SEPT_VE_DISABLE ? " SEPT_VE_DISABLE" : "",
                        a & TDX_TD_ATTR_MIGRATABLE ? " MIGRATABLE" : "",
                        a & TDX_TD_ATTR_PKS ? " PKS" : "", a & TDX_TD_ATTR_KL ? " KL" : "",
                        a & TDX_TD_ATTR_PERFMON ? " PERFMON" : "");
}

static void print_quote_text(const TdxQuote *q, const TdxVerification *v, bool verified)
{
        Field f[32];
        size_t n;
        char buf[160], hex[2 * 64 + 1];

        printf("Intel TDX quote\n");
        printf("  %-20s %u (%s body)\n", "version", q->version,
               q->body_type == 3 ? "TD 1.5" : "TD 1.0");
        printf("  %-20s 0x%x (TDX), attestation key type %u (ECDSA P-256)\n", "TEE type",
               q->tee_type, q->att_key_type);
        td_attributes(q->td_attributes, buf, sizeof(buf));
        printf("  %-20s %s\n", "TD attributes", buf);
        printf("  %-20s 0x%016llx\n", "XFAM", (unsigned long long) q->xfam);
        printf("  %-20s 0x%016llx\n", "SEAM attributes", (unsigned long long) q->seam_attributes);
        printf("  %-20s module version %u, ISV SVN %u\n", "TDX module", q->tee_tcb_svn[1],
               q->tee_tcb_svn[0]);
        fields_of(q, f, &n);
        for (size_t i = 0; i < n; i++) {
                hex_encode_buf(f[i].data, f[i].size, hex, sizeof(hex));
                printf("  %-20s %s\n", f[i].name, hex);
        }
        printf("  %-20s ISVPRODID %u, ISVSVN %u\n", "QE", q->qe_report.isvprodid,
               q->qe_report.isvsvn);
        printf("  %-20s %zu bytes after the signature data (tolerated)\n", "trailing", q->trailing);
        if (verified) {
                char fmspc[13], pceid[5], cpusvn[33];
                hex_encode_buf(v->pck.fmspc, 6, fmspc, sizeof(fmspc));
                hex_encode_buf(v->pck.pce_id, 2, pceid, sizeof(pceid));
                hex_encode_buf(v->pck.cpusvn, 16, cpusvn, sizeof(cpusvn));
                printf("  %-20s FMSPC %s, PCE ID %s, PCE SVN %u, CPU SVN %s, issuer %s\n",
                       "PCK certificate", fmspc, pceid, v->pck.pcesvn, cpusvn, v->pck_ca);
        }
}

static void print_tcb_text(const TdxVerification *v)
{
        char date[TIMESTAMP_UTC_SIZE];

        printf("\nTCB (Intel collateral)\n");
        printf("  %-20s %s\n", "status", tdx_tcb_status_to_string(v->tcb.status));
        (void) timestamp_format_utc(v->tcb.platform_tcb_date, date);
        printf("  %-20s %d: %s, tcbDate %s\n", "platform level", v->tcb.platform_level,
               tdx_tcb_status_to_string(v->tcb.platform_status), date);
        printf("  %-20s %s: %s\n", "TDX module", v->tcb.module_id[0] ? v->tcb.module_id : "base",
               tdx_tcb_status_to_string(v->tcb.module_status));
        printf("  %-20s level %d: %s\n", "QE", v->tcb.qe_level,
               tdx_tcb_status_to_string(v->tcb.qe_status));
        printf("  %-20s TCB info %u, QE identity %u\n", "evaluation data", v->tcb.tcb_eval_number,
               v->tcb.qe_tcb_eval_number);
        printf("  %-20s", "advisories");
        if (v->tcb.advisories.n == 0)
                printf(" none");
        for (unsigned i = 0; i < v->tcb.advisories.n; i++)
                printf("%s %s", i ? "," : "", v->tcb.advisories.id[i]);
        printf("\n");
        (void) timestamp_format_utc(v->collateral_expiry, date);
        printf("  %-20s %s (earliest nextUpdate or signer expiry)\n", "collateral valid to", date);
}

static json_t *quote_json(const TdxQuote *q, const TdxVerification *v, bool verified)
{
        json_t *o = json_object();
        Field f[32];
        size_t n;
        char buf[160];

        if (!o)
                return NULL;
        (void) json_object_set_new(o, "version", json_integer(q->version));
        (void) json_object_set_new(o, "bodyType", json_integer(q->body_type));
        (void) snprintf(buf, sizeof(buf), "0x%016llx", (unsigned long long) q->td_attributes);
        (void) json_object_set_new(o, "tdAttributes", json_string(buf));
        (void) snprintf(buf, sizeof(buf), "0x%016llx", (unsigned long long) q->xfam);
        (void) json_object_set_new(o, "xfam", json_string(buf));
        (void) snprintf(buf, sizeof(buf), "0x%016llx", (unsigned long long) q->seam_attributes);
        (void) json_object_set_new(o, "seamAttributes", json_string(buf));
        (void) json_object_set_new(o, "qeIsvProdId", json_integer(q->qe_report.isvprodid));
        (void) json_object_set_new(o, "qeIsvSvn", json_integer(q->qe_report.isvsvn));
        (void) json_object_set_new(o, "trailingBytes", json_integer((json_int_t) q->trailing));
        fields_of(q, f, &n);
        for (size_t i = 0; i < n; i++) {
                char *hex = NULL;
                if (hex_encode(f[i].data, f[i].size, &hex) >= 0)
                        (void) json_object_set_new(o, f[i].name, json_string(hex));
                free(hex);
        }
        if (verified) {
                char fmspc[13], pceid[5], cpusvn[33];
                hex_encode_buf(v->pck.fmspc, 6, fmspc, sizeof(fmspc));
                hex_encode_buf(v->pck.pce_id, 2, pceid, sizeof(pceid));
                hex_encode_buf(v->pck.cpusvn, 16, cpusvn, sizeof(cpusvn));
                (void) json_object_set_new(o, "pck",
                                           json_pack("{s:s,s:s,s:i,s:s,s:s}", "fmspc", fmspc,
                                                     "pceId", pceid, "pceSvn", v->pck.pcesvn,
                                                     "cpuSvn", cpusvn, "issuer", v->pck_ca));
        }
        return o;
}

static json_t *tcb_json(const TdxVerification *v)
{
        json_t *adv = json_array();
        char date[TIMESTAMP_UTC_SIZE], expiry[TIMESTAMP_UTC_SIZE];

        for (unsigned i = 0; adv && i < v->tcb.advisories.n; i++)
                (void) json_array_append_new(adv, json_string(v->tcb.advisories.id[i]));
        (void) timestamp_format_utc(v->tcb.platform_tcb_date, date);
        (void) timestamp_format_utc(v->collateral_expiry, expiry);
        return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:o,s:s}", "status",
                         tdx_tcb_status_to_string(v->tcb.status), "platformLevel",
                         v->tcb.platform_level, "platformStatus",
                         tdx_tcb_status_to_string(v->tcb.platform_status), "tcbDate", date,
                         "tdxModule", v->tcb.module_id[0] ? v->tcb.module_id : "base",
                         "tdxModuleStatus", tdx_tcb_status_to_string(v->tcb.module_status),
                         "qeStatus", tdx_tcb_status_to_string(v->tcb.qe_status),
                         "tcbEvaluationDataNumber", (json_int_t) v->tcb.tcb_eval_number,
                         "qeTcbEvaluationDataNumber", (json_int_t) v->tcb.qe_tcb_eval_number,
                         "advisoryIds", adv, "collateralValidTo", expiry);
}

static int help(void)
{
        printf("Usage: cloister attestation verify-report --type tdx --quote FILE\n"
               "         [--collateral DIR] [--policy FILE] [--at TIME]\n"
               "         [--event-log LOG [--ccel-table T]] [-o text|json]\n\n"
               "Verifies an Intel TDX quote (version 4 or 5) offline and prints every field\n"
               "and every check: the quote's signature by its attestation key, the QE report\n"
               "signed by the PCK certificate and binding that key, the PCK chain to the\n"
               "Intel SGX Root CA (pinned by fingerprint), and with --collateral the TCB\n"
               "info, QE identity and CRLs, their signers and windows at the verification\n"
               "time, and Intel's TCB evaluation (status, level, advisories).\n\n"
               "Exit status 0 only if the quote passes the policy; without --policy the\n"
               "default one applies: no debug TD, SEPT_VE_DISABLE set, collateral given and\n"
               "the TCB UpToDate (docs/tdx.md has the policy format).\n\n"
               "  --quote FILE       the raw quote (trailing bytes after it are tolerated)\n"
               "  --collateral DIR   tcb_info.json, tcb_info_issuer_chain.pem,\n"
               "                     qe_identity.json, qe_identity_issuer_chain.pem,\n"
               "                     pck_crl.der, root_ca_crl.der (as Intel PCS serves them)\n"
               "                     Without it the collateral of the quote's FMSPC is taken\n"
               "                     from the cache, or fetched once and cached:\n"
               "  --pcs-url URL      Intel PCS or PCCS, ending in /tdx/certification/v4\n"
               "                     (default " TDX_PCS_URL_DEFAULT ")\n"
               "  --cache-dir DIR    (default $XDG_CACHE_HOME/cloister/tdx)\n"
               "  --offline          use only the cache; a cached item past its nextUpdate\n"
               "                     is reported stale and fails\n"
               "  --no-collateral    verify authenticity only (fails the default policy)\n"
               "  --policy FILE      {\"version\": 1, \"variant\": \"tdx\", \"tdx\": {...}}\n"
               "  --at TIME          verification time, YYYY-MM-DD[THH:MM:SSZ] (default now):\n"
               "                     certificates, CRLs and collateral windows are judged then\n"
               "  --event-log LOG    the CCEL event log (the ACPI CCEL table's log area,\n"
               "                     /sys/firmware/acpi/tables/data/CCEL): replayed to the\n"
               "                     quote's RTMR0-3\n"
               "  --ccel-table T     the CCEL ACPI table (/sys/firmware/acpi/tables/CCEL)\n"
               "  --bundle OUT       also keep the quote, the collateral and event log\n"
               "                     used, the policy, the time and every check in an\n"
               "                     evidence bundle (docs/bundle.md) that 'cloister verify\n"
               "                     --bundle OUT' verifies again offline\n"
               "  -o json            one JSON object\n");
        return 0;
}

int cli_tdx_report_policy(const uint8_t *data, size_t size, const char *source, TdxPolicy *ret)
{
        Diag d;
        int r;

        diag_clear(&d);
        tdx_policy_defaults(ret);
        r = tdx_policy_parse(data, size, source, ret, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        return 0;
}

int cli_tdx_report_verify(const CliTdxReportInputs *in, const TdxQuote *q, const TdxPolicy *pol,
                          OutputFormat output, bool quiet, const json_t *extra, json_t *record)
{
        Printer pr = { .output = output, .record = record, .quiet = quiet };
        TdxVerifyOptions opts = { .at = in->at };
        TdxVerification v = {};
        Diag d;
        int r;

        diag_clear(&d);
        diag_clear(&pr.first_diag);
        if (!quiet && pr.output == OUTPUT_JSON &&
            (!(pr.doc = result_new("cloister attestation verify-report")) ||
             json_object_set_new(pr.doc, "type", json_string("tdx")) < 0 ||
             json_object_set_new(pr.doc, "checks", json_array()) < 0))
                return log_oom();
        if (!quiet && pr.output == OUTPUT_TEXT) {
                if (pol->mr_td.n == 0)
                        printf("Note: %s does not pin mrTd: any firmware (which can reach any "
                               "RTMR values itself) in an authentic TD passes the measurement "
                               "checks.\n\n",
                               in->policy_source ? "the policy" : "the default policy");
                printf("Checks\n");
        }
        r = tdx_verify_quote(q, in->raw, in->raw_size, in->collateral, &opts, &v, print_check, &pr,
                             &d);
        if (r == -EINVAL && quiet)
                return r;
        if (r == -EINVAL) {
                json_decref(pr.doc); /* an error document instead (cli-json.c) */
                return log_error_errno(r, "%s", d.message);
        }
        if (r >= 0 && in->log) {
                TdxRtmrs t;
                char detail[128];
                int k = tdx_ccel_check(q, in->table, in->table_size, in->log, in->log_size, &t, &d);
                if (k < 0)
                        print_check(&pr, d.check, false, d.expected, d.actual, d.message);
                else {
                        (void) snprintf(detail, sizeof(detail),
                                        "%zu events replay to RTMR0-3 of the quote (SHA-384)",
                                        t.n_events);
                        print_check(&pr, "tdx-rtmr-replay", true, NULL, NULL, detail);
                }
        }
        if (r >= 0)
                (void) tdx_check_policy(q, &v, pol, NULL, print_check, &pr, NULL);
        if (quiet)
                return pr.failed ? -EKEYREJECTED : 0;
        if (pr.output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc = TAKE_PTR(pr.doc);
                if (json_object_set_new(doc, "quote", quote_json(q, &v, r >= 0)) < 0 ||
                    (r >= 0 && v.collateral && json_object_set_new(doc, "tcb", tcb_json(&v)) < 0) ||
                    (in->pcs &&
                     json_object_set_new(
                             doc, "collateralSource",
                             json_pack("{s:s,s:s,s:i,s:i,s:o}", "fmspc", in->pcs->fmspc, "pckCa",
                                       in->pcs->ca, "fetched", (int) in->pcs->fetched, "stale",
                                       (int) in->pcs->stale, "staleNote",
                                       in->pcs->stale_note[0] ? json_string(in->pcs->stale_note)
                                                              : json_null())) < 0) ||
                    (extra && json_object_update(doc, (json_t *) extra) < 0) ||
                    /* A stored quote: REPORTDATA is printed, never compared with a nonce. */
                    result_set_verdict(doc, pr.failed ? "fail" : "pass",
                                       pr.failed ? pr.first : NULL, &pr.first_diag,
                                       "not-checked") < 0 ||
                    result_print(doc) < 0)
                        return log_oom();
        } else {
                printf("\n");
                print_quote_text(q, &v, r >= 0);
                if (r >= 0 && v.collateral)
                        print_tcb_text(&v);
                if (in->pcs)
                        printf("\nCollateral: FMSPC %s, PCK CA %s: %s%s%s\n", in->pcs->fmspc,
                               in->pcs->ca,
                               in->pcs->fetched ? "fetched and cached" : "from the cache",
                               in->pcs->stale ? "; STALE: " : "", in->pcs->stale_note);
                printf("\nFreshness: NOT checked (a stored quote: REPORTDATA is printed, not "
                       "compared)\n");
                if (pr.failed)
                        printf("Verdict: FAIL: %s\n", pr.first);
                else
                        printf("Verdict: PASS\n");
        }
        return pr.failed ? -EKEYREJECTED : 0;
}

/* --bundle OUT: every input the verification used, as the bundle's entries (docs/bundle.md). */
static int tdx_report_bundle(const char *path, const CliTdxReportInputs *in, const TdxQuote *q,
                             const char *collateral_origin, const char *quote, const char *logf,
                             const char *tablef, const uint8_t *policy, size_t policy_size,
                             const json_t *record, bool pass)
{
        const TdxCollateral *c = in->collateral;
        CliReportInput e[12];
        size_t n = 0;

        e[n++] = (CliReportInput){ "tdx/quote", in->raw, in->raw_size, quote };
        if (c) {
                const CliReportInput col[] = {
                        { "tdx/collateral/tcb_info.json", c->tcb_info, c->tcb_info_size },
                        { "tdx/collateral/tcb_info_issuer_chain.pem", c->tcb_info_chain,
                          c->tcb_info_chain_size },
                        { "tdx/collateral/qe_identity.json", c->qe_identity, c->qe_identity_size },
                        { "tdx/collateral/qe_identity_issuer_chain.pem", c->qe_identity_chain,
                          c->qe_identity_chain_size },
                        { "tdx/collateral/pck_crl.der", c->pck_crl, c->pck_crl_size },
                        { "tdx/collateral/pck_crl_issuer_chain.pem", c->pck_crl_chain,
                          c->pck_crl_chain_size },
                        { "tdx/collateral/root_ca_crl.der", c->root_crl, c->root_crl_size },
                };
                for (size_t i = 0; i < ELEMENTSOF(col); i++)
                        if (col[i].data) {
                                e[n] = col[i];
                                e[n++].origin = collateral_origin;
                        }
        }
        if (in->log)
                e[n++] = (CliReportInput){ "tdx/event-log", in->log, in->log_size, logf };
        if (in->table)
                e[n++] = (CliReportInput){ "tdx/ccel-table", in->table, in->table_size, tablef };
        if (policy)
                e[n++] = (CliReportInput){ "policy.json", policy, policy_size, in->policy_source };
        return cli_report_bundle_write(path, "tdx", in->at, q->report_data, in->policy_source, e, n,
                                       record, pass);
}

int verify_report_tdx(int argc, char *argv[], CliOptions *o)
{
        enum {
                ARG_AT = 0x100,
                ARG_TYPE,
                ARG_COLLATERAL,
                ARG_LOG,
                ARG_TABLE,
                ARG_PCS,
                ARG_CACHE,
                ARG_OFFLINE,
                ARG_NONE,
                ARG_BUNDLE
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "type", required_argument, NULL, ARG_TYPE },
                { "quote", required_argument, NULL, 'q' },
                { "collateral", required_argument, NULL, ARG_COLLATERAL },
                { "policy", required_argument, NULL, 'p' },
                { "at", required_argument, NULL, ARG_AT },
                { "output", required_argument, NULL, 'o' },
                { "event-log", required_argument, NULL, ARG_LOG },
                { "ccel-table", required_argument, NULL, ARG_TABLE },
                { "pcs-url", required_argument, NULL, ARG_PCS },
                { "cache-dir", required_argument, NULL, ARG_CACHE },
                { "offline", no_argument, NULL, ARG_OFFLINE },
                { "no-collateral", no_argument, NULL, ARG_NONE },
                { "bundle", required_argument, NULL, ARG_BUNDLE },
                {},
        };
        const char *quote = NULL, *coldir = NULL, *policy = NULL, *logf = NULL, *tablef = NULL,
                   *bundle = NULL;
        _cleanup_(freep) uint8_t *raw = NULL, *log = NULL, *table = NULL, *polb = NULL;
        size_t logn = 0, tablen = 0, poln = 0;
        _cleanup_(tdx_collateral_freep) TdxCollateral *col = NULL;
        _cleanup_(json_decrefp) json_t *record = NULL;
        _cleanup_(freep) char *default_cache = NULL;
        TdxVerifyOptions opts = {};
        CliTdxReportInputs in;
        char origin[512];
        TdxPcsConfig pcs;
        TdxPcsResult pres = {};
        bool no_collateral = false;
        TdxPolicy pol;
        TdxQuote q;
        size_t n;
        Diag d;
        int c, r, k;

        tdx_pcs_config_defaults(&pcs);
        if (cli_user_cache_dir("tdx", &default_cache) < 0)
                return -ENOMEM;
        pcs.cache_dir = default_cache;
        optind = 0;
        while ((c = getopt_long(argc, argv, "hq:p:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        return help();
                case ARG_TYPE:
                        break; /* "tdx": the caller dispatched on it */
                case 'q':
                        quote = optarg;
                        break;
                case ARG_COLLATERAL:
                        coldir = optarg;
                        break;
                case 'p':
                        policy = optarg;
                        break;
                case ARG_LOG:
                        logf = optarg;
                        break;
                case ARG_TABLE:
                        tablef = optarg;
                        break;
                case ARG_PCS:
                        pcs.base_url = optarg;
                        break;
                case ARG_CACHE:
                        pcs.cache_dir = optarg;
                        break;
                case ARG_OFFLINE:
                        pcs.offline = true;
                        break;
                case ARG_NONE:
                        no_collateral = true;
                        break;
                case ARG_BUNDLE:
                        bundle = optarg;
                        break;
                case ARG_AT:
                        if (cli_parse_at_option(optarg, &opts.at) < 0)
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
        if (optind < argc || !quote)
                return log_error_errno(-EUSAGE, "--quote FILE is required. See --type tdx --help.");

        diag_clear(&d);
        tdx_policy_defaults(&pol);
        if (bundle && access(bundle, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s already exists: a bundle is never overwritten; give "
                                       "--bundle another file name.",
                                       bundle);
        if (policy) {
                /* Read once: the bytes judged are the bytes a bundle keeps. */
                r = read_full_file(policy, JSON_FILE_SIZE_MAX, &polb, &poln);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read: %m", policy);
                r = cli_tdx_report_policy(polb, poln, policy, &pol);
                if (r < 0)
                        return r;
        }
        r = read_full_file(quote, TDX_QUOTE_SIZE_MAX, &raw, &n);
        if (r == -EMSGSIZE)
                return log_error_errno(r, "%s: larger than %u bytes: not a TDX quote.", quote,
                                       TDX_QUOTE_SIZE_MAX);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", quote);
        if (tablef && !logf)
                return log_error_errno(-EUSAGE, "--ccel-table needs --event-log LOG.");
        if (logf && (r = read_full_file(logf, TDX_CCEL_LOG_MAX, &log, &logn)) < 0)
                return log_error_errno(r, "%s: cannot read: %m", logf);
        if (tablef && (r = read_full_file(tablef, 4096, &table, &tablen)) < 0)
                return log_error_errno(r, "%s: cannot read: %m", tablef);
        if (coldir && (r = tdx_collateral_load_dir(coldir, &col, &d)) < 0)
                return log_error_errno(r, "%s", d.message);
        r = tdx_quote_parse(raw, n, &q, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s [check %s]", quote, d.message, d.check);
        if (coldir && no_collateral)
                return log_error_errno(-EUSAGE, "--collateral and --no-collateral exclude each "
                                                "other.");
        if (!coldir && !no_collateral) {
                /* From the cache, or Intel PCS / a PCCS; verified below exactly as files. */
                r = tdx_pcs_collateral(&pcs, &q, opts.at, &col, &pres, &d);
                if (r < 0)
                        return log_error_errno(r, "TDX collateral: %s", d.message);
                if (pres.stale)
                        log_notice("TDX collateral for FMSPC %s is STALE: %s", pres.fmspc,
                                   pres.stale_note);
        }
        if (bundle) {
                if (opts.at == 0)
                        opts.at = time(NULL); /* a bundle says when: "now" is this second */
                record = json_array();
                if (!record)
                        return log_oom();
        }
        in = (CliTdxReportInputs){
                .raw = raw,
                .raw_size = n,
                .collateral = col,
                .log = log,
                .log_size = logn,
                .table = table,
                .table_size = tablen,
                .policy_source = policy,
                .pcs = !coldir && col ? &pres : NULL,
                .at = opts.at,
        };
        r = cli_tdx_report_verify(&in, &q, &pol, o->output, false, NULL, record);
        if (r == -EINVAL || !bundle)
                return r;
        (void) snprintf(origin, sizeof(origin), "Intel PCS %s (or the cache %s)", pcs.base_url,
                        pcs.cache_dir ?: "(none)");
        k = tdx_report_bundle(bundle, &in, &q, coldir ?: origin, quote, logf, tablef, polb, poln,
                              record, r >= 0);
        return k < 0 ? k : r;
}
