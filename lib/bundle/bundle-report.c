/* SPDX-License-Identifier: Apache-2.0 */
/* The record of a report bundle (cloister/bundle-report.h, docs/bundle.md): bundle.json of
 * "kind": "report" against its schema and the bundle's entries. Fuzzed by
 * tests/fuzz/fuzz-bundle.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloister/bundle-report.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/timestamp.h"

/* The entries a report bundle of each type may hold, besides bundle.json; the first ones are
 * required. */
static const char *const snp_entries[] = { "snp/report", "snp/vcek",    "snp/chain",
                                           "snp/crl",    "policy.json", NULL };
static const size_t snp_required = 3;
static const char *const tdx_entries[] = { "tdx/quote",
                                           "tdx/collateral/tcb_info.json",
                                           "tdx/collateral/tcb_info_issuer_chain.pem",
                                           "tdx/collateral/qe_identity.json",
                                           "tdx/collateral/qe_identity_issuer_chain.pem",
                                           "tdx/collateral/pck_crl.der",
                                           "tdx/collateral/pck_crl_issuer_chain.pem",
                                           "tdx/collateral/root_ca_crl.der",
                                           "tdx/event-log",
                                           "tdx/ccel-table",
                                           "policy.json",
                                           NULL };
static const size_t tdx_required = 1;

#define record_fail(d, ...) diag_fail(d, -EBADMSG, "bundle-record", -1, __VA_ARGS__)

static bool name_in(const char *name, const char *const *names)
{
        for (size_t i = 0; names[i]; i++)
                if (strcmp(name, names[i]) == 0)
                        return true;
        return false;
}

static bool has(const Bundle *b, const char *name)
{
        const uint8_t *p;
        size_t n;

        return bundle_get(b, name, &p, &n) >= 0;
}

bool bundle_report_is(const json_t *meta)
{
        const char *kind = json_string_value(json_object_get(meta, "kind"));
        return kind && strcmp(kind, BUNDLE_REPORT_KIND) == 0;
}

static int check_binding(const json_t *binding, BundleReportRecord *rec, Diag *d)
{
        static const char *const keys[] = { "reportData", "chosenBy", NULL };
        JsonCtx c = { .source = "bundle.json", .path = ".binding", .diag = d };
        const char *rd, *chosen;
        char lower[2 * 64 + 1];
        int r;

        if ((r = json_check_keys(&c, binding, keys)) < 0 ||
            (r = json_get_string(&c, binding, "reportData", true, &rd)) < 0 ||
            (r = json_get_string(&c, binding, "chosenBy", true, &chosen)) < 0)
                return r;
        if (strlen(rd) != 2 * 64 || hex_decode_exact(rd, rec->report_data, 64) < 0)
                return record_fail(d, "bundle.json: binding.reportData is not 128 hex digits");
        hex_encode_buf(rec->report_data, 64, lower, sizeof(lower));
        if (strcmp(lower, rd) != 0)
                return record_fail(d, "bundle.json: binding.reportData is not lowercase hex");
        /* A report bundle that claimed a chooser would claim a freshness nothing in it shows. */
        if (strcmp(chosen, BUNDLE_REPORT_CHOSEN_BY) != 0)
                return record_fail(d,
                                   "bundle.json: binding.chosenBy says \"%.64s\"; a report "
                                   "bundle can only say \"" BUNDLE_REPORT_CHOSEN_BY "\"",
                                   chosen);
        return 0;
}

/* Every entry listed in inputs once, every input one of this type's, no entry unlisted. */
static int check_inputs(const Bundle *b, const json_t *inputs, const char *const *allowed,
                        size_t required, Diag *d)
{
        static const char *const keys[] = { "entry", "origin", NULL };
        const json_t *x;
        size_t i;
        int r;

        json_array_foreach (inputs, i, x) {
                JsonCtx c = { .source = "bundle.json", .path = ".inputs[]", .diag = d };
                const char *entry, *origin;

                if ((r = json_check_keys(&c, x, keys)) < 0 ||
                    (r = json_get_string(&c, x, "entry", true, &entry)) < 0 ||
                    (r = json_get_string(&c, x, "origin", true, &origin)) < 0)
                        return r;
                if (!name_in(entry, allowed))
                        return record_fail(d,
                                           "bundle.json: input '%.128s' is not one this type of "
                                           "report bundle holds",
                                           entry);
                if (!has(b, entry))
                        return record_fail(d, "bundle.json: input '%.128s' is not in the bundle",
                                           entry);
                for (size_t k = 0; k < i; k++) {
                        const char *e = json_string_value(
                                json_object_get(json_array_get(inputs, k), "entry"));
                        if (e && strcmp(e, entry) == 0)
                                return record_fail(d, "bundle.json: input '%.128s' is listed twice",
                                                   entry);
                }
        }
        if (json_array_size(inputs) + 1 != bundle_count(b))
                return record_fail(d, "bundle.json: the bundle holds entries its inputs do not "
                                      "list");
        for (i = 0; i < required; i++)
                if (!has(b, allowed[i]))
                        return record_fail(d, "the bundle holds no '%s'", allowed[i]);
        return 0;
}

static int check_checks(const json_t *checks, bool pass, Diag *d)
{
        static const char *const keys[] = {
                "name", "result", "expected", "actual", "detail", NULL
        };
        size_t i, n_failed = 0;
        const json_t *x;
        int r;

        json_array_foreach (checks, i, x) {
                JsonCtx c = { .source = "bundle.json", .path = ".checks[]", .diag = d };
                const char *name, *result;

                if ((r = json_check_keys(&c, x, keys)) < 0 ||
                    (r = json_get_string(&c, x, "name", true, &name)) < 0 ||
                    (r = json_get_string(&c, x, "result", true, &result)) < 0)
                        return r;
                for (size_t k = 2; k < 5; k++) {
                        const json_t *v = json_object_get(x, keys[k]);
                        if (v && !json_is_string(v) && !json_is_null(v))
                                return record_fail(d,
                                                   "bundle.json: a check's %s is neither a "
                                                   "string nor null",
                                                   keys[k]);
                }
                if (strcmp(result, "pass") != 0 && strcmp(result, "fail") != 0)
                        return record_fail(d,
                                           "bundle.json: a check's result \"%.16s\" is neither "
                                           "pass nor fail",
                                           result);
                n_failed += strcmp(result, "fail") == 0;
        }
        if (json_array_size(checks) == 0 || (n_failed == 0) != pass)
                return record_fail(d, "bundle.json: the verdict %s is not what its checks say",
                                   pass ? "pass" : "fail");
        return 0;
}

int bundle_report_record_check(const Bundle *b, const json_t *meta, BundleReportRecord *ret,
                               Diag *d)
{
        static const char *const keys[] = { "kind",      "type",    "recordedBy", "time",
                                            "timeEpoch", "binding", "policy",     "inputs",
                                            "verdict",   "checks",  NULL };
        JsonCtx ctx = { .source = "bundle.json", .path = "", .diag = d };
        BundleReportRecord rec = {};
        const char *kind, *when, *verdict, *by;
        const char *const *allowed;
        json_t *binding, *inputs, *checks, *policy;
        size_t required;
        int64_t epoch;
        int r;

        if ((r = json_check_keys(&ctx, meta, keys)) < 0 ||
            (r = json_get_string(&ctx, meta, "kind", true, &kind)) < 0 ||
            (r = json_get_string(&ctx, meta, "type", true, &rec.type)) < 0 ||
            (r = json_get_string(&ctx, meta, "recordedBy", true, &by)) < 0 ||
            (r = json_get_string(&ctx, meta, "time", true, &when)) < 0 ||
            (r = json_get_int(&ctx, meta, "timeEpoch", true, 1, INT32_MAX * 4LL, &epoch)) < 0 ||
            (r = json_get_object(&ctx, meta, "binding", true, &binding)) < 0 ||
            (r = json_get_array(&ctx, meta, "inputs", true, &inputs)) < 0 ||
            (r = json_get_string(&ctx, meta, "verdict", true, &verdict)) < 0 ||
            (r = json_get_array(&ctx, meta, "checks", true, &checks)) < 0)
                return r;
        if (strcmp(kind, BUNDLE_REPORT_KIND) != 0)
                return record_fail(d, "bundle.json: kind \"%.32s\" is not a report's", kind);
        if (strcmp(rec.type, "snp") == 0)
                allowed = snp_entries, required = snp_required;
        else if (strcmp(rec.type, "tdx") == 0)
                allowed = tdx_entries, required = tdx_required;
        else
                return record_fail(d, "bundle.json: a report of type \"%.16s\" (snp or tdx)",
                                   rec.type);
        if (timestamp_parse_utc(when, &rec.at) < 0 || rec.at != (time_t) epoch ||
            strlen(when) >= sizeof(rec.at_text))
                return record_fail(d, "bundle.json: the verification time %.40s is malformed",
                                   when);
        memcpy(rec.at_text, when, strlen(when) + 1);
        if (strcmp(verdict, "pass") != 0 && strcmp(verdict, "fail") != 0)
                return record_fail(d, "bundle.json: verdict \"%.16s\" is neither pass nor fail",
                                   verdict);
        rec.pass = strcmp(verdict, "pass") == 0;
        r = check_binding(binding, &rec, d);
        if (r < 0)
                return r;

        /* The policy: named exactly when its bytes are in the bundle. */
        policy = json_object_get(meta, "policy");
        if (!json_is_null(policy) && !json_is_string(policy))
                return record_fail(d, "bundle.json: policy is neither a name nor null");
        if (json_is_string(policy) != has(b, "policy.json"))
                return record_fail(d, "bundle.json: policy %s",
                                   json_is_string(policy) ? "is named but not in the bundle"
                                                          : "is in the bundle but not named");
        rec.policy = json_string_value(policy);

        r = check_inputs(b, inputs, allowed, required, d);
        if (r < 0)
                return r;
        r = check_checks(checks, rec.pass, d);
        if (r < 0)
                return r;
        rec.checks = checks;
        *ret = rec;
        return 0;
}
