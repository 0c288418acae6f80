/* SPDX-License-Identifier: Apache-2.0 */
/* Report bundles (docs/bundle.md, "Report bundles"): what `cloister attestation verify-report
 * ... --bundle OUT` verified, kept, and `cloister verify --bundle IN` verifying it again offline
 * with the same code. The report was not made for a nonce this CLI chose: the bundle records its
 * REPORT_DATA as found and who chose it ("not recorded"), and nothing here ever claims more. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-json.h"
#include "cli-report-bundle.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/log.h"
#include "cloister/timestamp.h"

/* --- recording ------------------------------------------------------------------------------ */

int cli_report_record_check(json_t *record, const char *name, bool ok, const char *expected,
                            const char *actual, const char *detail)
{
        json_t *c = json_pack(
                "{s:s,s:s,s:s?,s:s?,s:s?}", "name", name ?: "", "result", ok ? "pass" : "fail",
                "expected", expected && *expected ? expected : NULL, "actual",
                actual && *actual ? actual : NULL, "detail", detail && *detail ? detail : NULL);

        if (!c || json_array_append_new(record, c) < 0)
                return -ENOMEM;
        return 0;
}

int cli_report_bundle_write(const char *path, const char *type, time_t at,
                            const uint8_t report_data[static 64], const char *policy_source,
                            const CliReportInput *inputs, size_t n_inputs, const json_t *record,
                            bool pass)
{
        _cleanup_(bundle_freep) Bundle *b = bundle_new();
        _cleanup_(json_decrefp) json_t *meta = NULL;
        _cleanup_(freep) char *meta_text = NULL, *text = NULL;
        json_t *listed = json_array();
        char when[TIMESTAMP_UTC_SIZE], rd[2 * 64 + 1];
        size_t size;
        int r;

        if (!b || !listed || timestamp_format_utc(at, when) < 0) {
                json_decref(listed);
                return log_oom();
        }
        hex_encode_buf(report_data, 64, rd, sizeof(rd));
        meta = json_pack("{s:s,s:s,s:s,s:s,s:I,s:{s:s,s:s},s:s?,s:o,s:s,s:O}", "kind",
                         BUNDLE_REPORT_KIND, "type", type, "recordedBy",
                         "cloister attestation verify-report", "time", when, "timeEpoch",
                         (json_int_t) at, "binding", "reportData", rd, "chosenBy",
                         BUNDLE_REPORT_CHOSEN_BY, "policy", policy_source, "inputs", listed,
                         "verdict", pass ? "pass" : "fail", "checks", record);
        if (!meta)
                return log_oom();
        for (size_t i = 0; i < n_inputs; i++) {
                /* An input verify-report was not given (no CRL, no event log) is not listed. */
                if (!inputs[i].data)
                        continue;
                if (json_array_append_new(listed,
                                          json_pack("{s:s,s:s}", "entry", inputs[i].entry, "origin",
                                                    inputs[i].origin ?: "given")) < 0)
                        return log_oom();
                r = bundle_add(b, inputs[i].entry, inputs[i].data, inputs[i].size);
                if (r < 0)
                        return log_error_errno(r, "Cannot keep %s in the bundle: %m",
                                               inputs[i].entry);
        }
        if (json_dump_compact(meta, &meta_text) < 0 ||
            bundle_add(b, "bundle.json", meta_text, strlen(meta_text)) < 0 ||
            bundle_serialize(b, &text, &size) < 0)
                return log_oom();
        r = write_file_atomic(path, text, size, 0644, WRITE_FILE_EXCLUSIVE);
        if (r == -EEXIST)
                return log_error_errno(r,
                                       "%s already exists: a bundle is never overwritten; give "
                                       "--bundle another file name.",
                                       path);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write the bundle: %m", path);
        log_info("Bundle written to %s (%zu entries, %zu bytes): 'cloister verify --bundle %s' "
                 "verifies it again, offline.",
                 path, bundle_count(b), size, path);
        return 0;
}

/* --- reading -------------------------------------------------------------------------------- */

int cli_report_meta_check(CliBundle *b, Diag *d)
{
        BundleReportRecord rec;
        int r;

        r = bundle_report_record_check(b->bundle, b->meta, &rec, d);
        if (r < 0)
                return r;
        b->kind = BUNDLE_REPORT_KIND;
        b->at = rec.at;
        (void) snprintf(b->at_text, sizeof(b->at_text), "%s", rec.at_text);
        return 0;
}

static bool has(const CliBundle *b, const char *name)
{
        const uint8_t *p;
        size_t n;

        return bundle_get(b->bundle, name, &p, &n) >= 0;
}

/* --- verify --bundle ------------------------------------------------------------------------ */

static const uint8_t *entry(const CliBundle *b, const char *name, size_t *ret_size)
{
        const uint8_t *p = NULL;

        *ret_size = 0;
        if (bundle_get(b->bundle, name, &p, ret_size) < 0)
                return NULL;
        return p;
}

/* The policy's bytes: --policy FILE's, or the bundle's own (or none). */
static int policy_bytes(const CliBundle *b, const char *policy_path, uint8_t **buf,
                        const uint8_t **ret, size_t *ret_size, const char **ret_source)
{
        int r;

        if (policy_path) {
                r = read_full_file(policy_path, JSON_FILE_SIZE_MAX, buf, ret_size);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read: %m", policy_path);
                *ret = *buf;
                *ret_source = policy_path;
                return 0;
        }
        *ret = entry(b, "policy.json", ret_size);
        *ret_source = *ret ? "the bundle's policy.json" : NULL;
        return 0;
}

static int replay_snp(const CliBundle *b, const char *policy_path, time_t at, OutputFormat output,
                      bool quiet, const json_t *extra, json_t *record, const uint8_t rd[static 64])
{
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(snp_trust_freep) SnpTrust *trust = NULL;
        _cleanup_(freep) uint8_t *buf = NULL;
        const uint8_t *raw, *vcek, *chain, *crl, *pb;
        size_t rn, vn, cn, crln, pn;
        const char *source;
        SnpReport rep;
        Diag d;
        int r;

        raw = entry(b, "snp/report", &rn);
        vcek = entry(b, "snp/vcek", &vn);
        chain = entry(b, "snp/chain", &cn);
        crl = entry(b, "snp/crl", &crln);
        r = policy_bytes(b, policy_path, &buf, &pb, &pn, &source);
        if (r < 0)
                return r;
        if (pb && (r = cli_snp_report_policy(pb, pn, source, &pol)) < 0)
                return r;
        r = cli_snp_report_trust(pol, source, crl, crln, "the bundle's snp/crl", &trust);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = snp_report_parse(raw, rn, &rep, &d);
        if (r < 0)
                return log_error_errno(
                        r,
                        "Refused: the bundle's snp/report: %s (verify-report keeps only reports it "
                        "could read: the bundle was changed; use an unaltered copy of it)",
                        d.message);
        if (memcmp(rep.report_data, rd, 64) != 0)
                return log_error_errno(-EBADMSG,
                                       "Refused: bundle.json records a REPORT_DATA the report "
                                       "does not hold (binding.reportData was edited): use an "
                                       "unaltered copy of the bundle.");
        /* As verify-report given a VCEK and a chain: Milan until the chain says otherwise. */
        return cli_snp_report_verify(&rep, raw, rn, vcek, vn, chain, cn, trust, pol,
                                     SNP_PRODUCT_MILAN, at, output, quiet, extra, record);
}

static int collateral_copy(const CliBundle *b, TdxCollateral **ret)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c = NULL;
        struct {
                const char *name;
                uint8_t **data;
                size_t *size;
        } parts[7];
        size_t n = 0;

        if (!has(b, "tdx/collateral/tcb_info.json")) {
                *ret = NULL; /* verified with --no-collateral */
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
#define PART(file, field)                                                                          \
        parts[n++] = (typeof(parts[0])){ "tdx/collateral/" file, &c->field, &c->field##_size }
        PART("tcb_info.json", tcb_info);
        PART("tcb_info_issuer_chain.pem", tcb_info_chain);
        PART("qe_identity.json", qe_identity);
        PART("qe_identity_issuer_chain.pem", qe_identity_chain);
        PART("pck_crl.der", pck_crl);
        PART("pck_crl_issuer_chain.pem", pck_crl_chain);
        PART("root_ca_crl.der", root_crl);
#undef PART
        for (size_t i = 0; i < n; i++) {
                size_t size;
                const uint8_t *p = entry(b, parts[i].name, &size);
                if (!p)
                        continue; /* a missing required part fails the verification, named */
                *parts[i].data = malloc(size ?: 1);
                if (!*parts[i].data)
                        return -ENOMEM;
                memcpy(*parts[i].data, p, size);
                *parts[i].size = size;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static int replay_tdx(const CliBundle *b, const char *policy_path, time_t at, OutputFormat output,
                      bool quiet, const json_t *extra, json_t *record, const uint8_t rd[static 64])
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *col = NULL;
        _cleanup_(freep) uint8_t *buf = NULL;
        CliTdxReportInputs in = { .at = at };
        const uint8_t *pb;
        size_t pn;
        TdxPolicy pol;
        TdxQuote q;
        Diag d;
        int r;

        in.raw = entry(b, "tdx/quote", &in.raw_size);
        in.log = entry(b, "tdx/event-log", &in.log_size);
        in.table = entry(b, "tdx/ccel-table", &in.table_size);
        r = policy_bytes(b, policy_path, &buf, &pb, &pn, &in.policy_source);
        if (r < 0)
                return r;
        tdx_policy_defaults(&pol);
        if (pb && (r = cli_tdx_report_policy(pb, pn, in.policy_source, &pol)) < 0)
                return r;
        r = collateral_copy(b, &col);
        if (r < 0)
                return log_oom();
        in.collateral = col;
        diag_clear(&d);
        r = tdx_quote_parse(in.raw, in.raw_size, &q, &d);
        if (r < 0)
                return log_error_errno(r,
                                       "Refused: the bundle's tdx/quote: %s [check %s] "
                                       "(verify-report keeps only quotes it could read: the bundle "
                                       "was changed; use an unaltered copy of it)",
                                       d.message, d.check);
        if (memcmp(q.report_data, rd, 64) != 0)
                return log_error_errno(-EBADMSG,
                                       "Refused: bundle.json records a REPORT_DATA the quote "
                                       "does not hold (binding.reportData was edited): use an "
                                       "unaltered copy of the bundle.");
        return cli_tdx_report_verify(&in, &q, &pol, output, quiet, extra, record);
}

/* Verified again at the recorded time against the recorded policy, every check must come out
 * as recorded: otherwise the record was edited (or another verifier judges differently), and
 * the bundle is not what it says. Returns the first difference, or NULL. */
static const char *record_differs(const json_t *recorded, const json_t *again, char *buf,
                                  size_t size)
{
        size_t n = json_array_size(recorded), m = json_array_size(again);

        for (size_t i = 0; i < n || i < m; i++) {
                const json_t *a = json_array_get(recorded, i), *c = json_array_get(again, i);
                const char *an = json_string_value(json_object_get(a, "name")),
                           *ar = json_string_value(json_object_get(a, "result")),
                           *cn = json_string_value(json_object_get(c, "name")),
                           *cr = json_string_value(json_object_get(c, "result"));
                if (an && cn && strcmp(an, cn) == 0 && strcmp(ar, cr) == 0)
                        continue;
                const char *detail = json_string_value(json_object_get(c, "detail"));
                (void) snprintf(buf, size,
                                "the bundle records check %zu as %s %s; verified again it is "
                                "%s %s%s%s%s",
                                i + 1, an ?: "(none)", ar ?: "", cn ?: "(none)", cr ?: "",
                                detail ? " (" : "", detail ?: "", detail ? ")" : "");
                return buf;
        }
        return NULL;
}

static int replay(const CliBundle *b, const BundleReportRecord *rec, const char *policy_path,
                  time_t at, OutputFormat output, bool quiet, const json_t *extra, json_t *record)
{
        if (strcmp(rec->type, "snp") == 0)
                return replay_snp(b, policy_path, at, output, quiet, extra, record,
                                  rec->report_data);
        return replay_tdx(b, policy_path, at, output, quiet, extra, record, rec->report_data);
}

int cli_verify_report_bundle(const CliBundle *b, const char *path, const char *policy_path,
                             time_t at, OutputFormat output)
{
        _cleanup_(json_decrefp) json_t *extra = NULL, *again = json_array();
        char when[TIMESTAMP_UTC_SIZE] = "", diff[768], policy_desc[320], rd[2 * 64 + 1];
        BundleReportRecord rec;
        Diag d;
        int r;

        if (!again)
                return log_oom();
        diag_clear(&d);
        r = bundle_report_record_check(b->bundle, b->meta, &rec, &d); /* as cli_bundle_load() */
        if (r < 0)
                return log_error_errno(r, "%s: refused: %s.", path, d.message);
        hex_encode_buf(rec.report_data, sizeof(rec.report_data), rd, sizeof(rd));
        if (at == 0)
                at = rec.at;
        (void) timestamp_format_utc(at, when);
        if (policy_path)
                (void) snprintf(policy_desc, sizeof(policy_desc), "%s", policy_path);
        else if (rec.policy)
                (void) snprintf(policy_desc, sizeof(policy_desc),
                                "the bundle's policy (given as %s)", rec.policy);
        else
                (void) snprintf(policy_desc, sizeof(policy_desc), "%s",
                                strcmp(rec.type, "snp") == 0 ? "no policy (authenticity only)"
                                                             : "the default TDX policy");
        extra = json_pack("{s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}}", "bundle", "file", path, "kind",
                          BUNDLE_REPORT_KIND, "recorded", rec.at_text, "verifiedAt", when, "policy",
                          policy_desc, "reportData", rd, "chosenBy", BUNDLE_REPORT_CHOSEN_BY,
                          "freshness",
                          "not provable: an imported report, nobody recorded who chose its "
                          "REPORT_DATA");
        if (!extra)
                return log_oom();
        /* Where the recorded verification is repeated exactly, the record is held to it first,
         * before anything is printed: another time or another policy may judge otherwise,
         * rightly, but the same verification may not. */
        if (!policy_path && at == rec.at) {
                r = replay(b, &rec, NULL, at, output, true, NULL, again);
                if (r < 0 && r != -EKEYREJECTED)
                        return r;
                if (record_differs(rec.checks, again, diff, sizeof(diff)))
                        return log_error_errno(-EBADMSG,
                                               "%s: refused: %s. The bundle was changed "
                                               "after it was written (or this verifier judges "
                                               "differently): use an unaltered copy of it.",
                                               path, diff);
                /* The verification printed is then a fresh one, as verify-report's is: nothing
                 * taken from the verified-chain caches this pass filled. */
                snp_chain_cache_flush();
                tdx_cache_flush();
        }
        if (output != OUTPUT_JSON)
                printf("report bundle recorded %s by cloister attestation verify-report --type "
                       "%s, verified offline at %s against %s\n"
                       "binding: REPORT_DATA %s as found; chosen by: " BUNDLE_REPORT_CHOSEN_BY "\n"
                       "freshness: not provable: nobody recorded who chose REPORT_DATA, so this "
                       "report may be a replay of an old one\n\n",
                       rec.at_text, rec.type, when, policy_desc, rd);
        return replay(b, &rec, policy_path, at, output, false, extra, NULL);
}
