/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/timestamp.h"
#include "tdx-internal.h"

void tdx_policy_defaults(TdxPolicy *p)
{
        /* Refuse by default: no debug TD, SEPT #VE disabled, collateral required and UpToDate
         * only; measurements any until the policy pins them. */
        *p = (TdxPolicy){
                .require_sept_ve_disable = true,
                .accepted_tcb = TDX_TCB_UP_TO_DATE,
                .require_collateral = true,
        };
}

/* ---- policy file ------------------------------------------------------------------------------
 */

static int get_values(const JsonCtx *ctx, const json_t *o, const char *key, TdxPolicyValues *ret)
{
        json_t *a = NULL, *v;
        size_t i;
        int r = json_get_array(ctx, o, key, false, &a);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (json_array_size(a) == 0 || json_array_size(a) > TDX_POLICY_VALUES_MAX)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.%s: 1..%d values of 96 hex digits expected", ctx->source,
                                 ctx->path, key, TDX_POLICY_VALUES_MAX);
        json_array_foreach (a, i, v) {
                const char *s = json_string_value(v);
                if (!s || hex_decode_exact(s, ret->v[i], 48) < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.%s.%zu: expected 96 hex digits (48 bytes)",
                                         ctx->source, ctx->path, key, i);
        }
        ret->n = json_array_size(a);
        return 0;
}

int tdx_policy_from_json(const JsonCtx *ctx, const json_t *o, TdxPolicy *ret)
{
        static const char *const keys[] = {
                "mrTd",
                "rtmr0",
                "rtmr1",
                "rtmr2",
                "rtmr3",
                "mrSeam",
                "mrSignerSeam",
                "mrConfigId",
                "mrOwner",
                "mrOwnerConfig",
                "mrServiceTd",
                "xfam",
                "allowDebug",
                "allowMigratable",
                "requireSeptVeDisable",
                "azureParavisor",
                "acceptedTcbStatuses",
                "minTcbEvaluationDataNumber",
                "allowedAdvisoryIds",
                "requireCollateral",
                "trustedRoot",
                NULL,
        };
        TdxPolicy p;
        json_t *a;
        const char *s;
        int64_t v;
        size_t i;
        int r;

        tdx_policy_defaults(&p);
        if ((r = json_check_keys(ctx, o, keys)) < 0)
                return r;
        {
                static const char *const names[] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };
                if ((r = get_values(ctx, o, "mrTd", &p.mr_td)) < 0 ||
                    (r = get_values(ctx, o, "mrSeam", &p.mr_seam)) < 0 ||
                    (r = get_values(ctx, o, "mrSignerSeam", &p.mr_signer_seam)) < 0 ||
                    (r = get_values(ctx, o, "mrConfigId", &p.mr_config_id)) < 0 ||
                    (r = get_values(ctx, o, "mrOwner", &p.mr_owner)) < 0 ||
                    (r = get_values(ctx, o, "mrOwnerConfig", &p.mr_owner_config)) < 0 ||
                    (r = get_values(ctx, o, "mrServiceTd", &p.mr_service_td)) < 0)
                        return r;
                for (int k = 0; k < 4; k++)
                        if ((r = get_values(ctx, o, names[k], &p.rtmr[k])) < 0)
                                return r;
        }
        r = json_get_string(ctx, o, "xfam", false, &s);
        if (r >= 0) {
                uint8_t b[8];
                /* 16 hex digits: the 64-bit value, as verify-report prints it (0x optional). */
                if (strncmp(s, "0x", 2) == 0)
                        s += 2;
                if (hex_decode_exact(s, b, 8) < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.xfam: expected 16 hex digits (0x optional)",
                                         ctx->source, ctx->path);
                p.check_xfam = true;
                for (int k = 0; k < 8; k++)
                        p.xfam = p.xfam << 8 | b[k];
        } else if (r != -ENOENT)
                return r;
        if (((r = json_get_bool(ctx, o, "allowDebug", false, &p.allow_debug)) < 0 &&
             r != -ENOENT) ||
            ((r = json_get_bool(ctx, o, "allowMigratable", false, &p.allow_migratable)) < 0 &&
             r != -ENOENT) ||
            ((r = json_get_bool(ctx, o, "requireSeptVeDisable", false,
                                &p.require_sept_ve_disable)) < 0 &&
             r != -ENOENT) ||
            ((r = json_get_bool(ctx, o, "azureParavisor", false, &p.azure_paravisor)) < 0 &&
             r != -ENOENT) ||
            ((r = json_get_bool(ctx, o, "requireCollateral", false, &p.require_collateral)) < 0 &&
             r != -ENOENT))
                return r;
        r = json_get_string(ctx, o, "trustedRoot", false, &s);
        if (r >= 0) {
                uint8_t fp[32];
                if (strlen(s) >= sizeof(p.trusted_root_pem) || tdx_pem_sha256(s, fp) < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.trustedRoot: expected one PEM certificate (the "
                                         "sim-tdx simulator's root)",
                                         ctx->source, ctx->path);
                (void) snprintf(p.trusted_root_pem, sizeof(p.trusted_root_pem), "%s", s);
        } else if (r != -ENOENT)
                return r;
        r = json_get_int(ctx, o, "minTcbEvaluationDataNumber", false, 0, UINT32_MAX, &v);
        if (r >= 0)
                p.min_tcb_eval_number = (unsigned) v;
        else if (r != -ENOENT)
                return r;
        r = json_get_array(ctx, o, "acceptedTcbStatuses", false, &a);
        if (r >= 0) {
                json_t *e;
                p.accepted_tcb = 0;
                json_array_foreach (a, i, e) {
                        unsigned st;
                        const char *n = json_string_value(e);
                        if (!n || tdx_tcb_status_from_string(n, &st) < 0 || (st & TDX_TCB_REVOKED))
                                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                                 "%s: %s.acceptedTcbStatuses.%zu: one of "
                                                 "UpToDate, SWHardeningNeeded, "
                                                 "ConfigurationNeeded, "
                                                 "ConfigurationAndSWHardeningNeeded, OutOfDate, "
                                                 "OutOfDateConfigurationNeeded (never Revoked)",
                                                 ctx->source, ctx->path, i);
                        p.accepted_tcb |= st;
                }
        } else if (r != -ENOENT)
                return r;
        r = json_get_array(ctx, o, "allowedAdvisoryIds", false, &a);
        if (r >= 0) {
                json_t *e;
                if (json_array_size(a) > TDX_ADVISORIES_MAX)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.allowedAdvisoryIds: at most %d", ctx->source,
                                         ctx->path, TDX_ADVISORIES_MAX);
                p.check_advisories = true;
                json_array_foreach (a, i, e) {
                        const char *n = json_string_value(e);
                        if (!n || strlen(n) == 0 || strlen(n) >= TDX_ADVISORY_ID_MAX)
                                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                                 "%s: %s.allowedAdvisoryIds.%zu: an advisory ID "
                                                 "such as INTEL-SA-00960",
                                                 ctx->source, ctx->path, i);
                        (void) snprintf(p.allowed_advisories.id[p.allowed_advisories.n++],
                                        TDX_ADVISORY_ID_MAX, "%s", n);
                }
        } else if (r != -ENOENT)
                return r;
        *ret = p;
        return 0;
}

static int policy_from_document(const json_t *j, const char *path, TdxPolicy *ret, Diag *d)
{
        static const char *const keys[] = { "version", "variant", "tdx", NULL };
        JsonCtx ctx = { path, "", d };
        char buf[64];
        const char *variant;
        json_t *o;
        int64_t v;
        int r;

        if ((r = json_check_keys(&ctx, j, keys)) < 0 ||
            (r = json_get_int(&ctx, j, "version", true, 1, 1, &v)) < 0 ||
            (r = json_get_string(&ctx, j, "variant", true, &variant)) < 0)
                return r;
        if (strcmp(variant, "tdx") != 0)
                return diag_fail(d, -EBADMSG, "json-schema", -1,
                                 "%s: .variant '%s': a TDX policy has variant \"tdx\"", path,
                                 variant);
        if ((r = json_get_object(&ctx, j, "tdx", true, &o)) < 0)
                return r;
        {
                JsonCtx c = json_ctx_child(&ctx, "tdx", buf, sizeof(buf));
                return tdx_policy_from_json(&c, o, ret);
        }
}

int tdx_policy_load(const char *path, TdxPolicy *ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r;

        r = json_parse_file(path, JSON_FILE_SIZE_MAX, &j, d);
        if (r < 0)
                return r;
        return policy_from_document(j, path, ret, d);
}

int tdx_policy_parse(const uint8_t *data, size_t size, const char *source, TdxPolicy *ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r;

        r = json_parse_buffer(data, size, source, &j, d);
        if (r < 0)
                return r;
        return policy_from_document(j, source, ret, d);
}

/* ---- checks -----------------------------------------------------------------------------------
 */

typedef struct Checker {
        TdxCheckFunc cb;
        void *userdata;
        Diag *d;
        int result;
} Checker;

static void check(Checker *c, const char *name, bool ok, int error, const char *expected,
                  const char *actual, const char *detail)
{
        if (c->cb)
                c->cb(c->userdata, name, ok, expected, actual, detail);
        if (ok || c->result < 0)
                return;
        c->result = error;
        (void) diag_fail(c->d, error, name, -1, "%s", detail);
        diag_set_values(c->d, expected, actual);
}

static void check_values(Checker *c, const char *name, const char *what,
                         const TdxPolicyValues *allowed, const uint8_t actual[48])
{
        char e[DIAG_VALUE_MAX], a[DIAG_VALUE_MAX], detail[128];
        bool ok = false;

        if (allowed->n == 0)
                return;
        for (size_t i = 0; i < allowed->n && !ok; i++)
                ok = CRYPTO_memcmp(allowed->v[i], actual, 48) == 0;
        hex_encode_buf(allowed->v[0], 48, e, sizeof(e));
        if (allowed->n > 1) {
                size_t n = strlen(e);
                (void) snprintf(e + n, sizeof(e) - n, " (or %zu more)", allowed->n - 1);
        }
        hex_encode_buf(actual, 48, a, sizeof(a));
        (void) snprintf(detail, sizeof(detail), "%s %s the policy", what,
                        ok ? "matches" : "differs from");
        check(c, name, ok, -EPERM, e, a, detail);
}

static void status_list(unsigned accepted, char *buf, size_t size)
{
        static const struct {
                unsigned bit;
                const char *name;
        } bits[] = {
                { TDX_TCB_SW_HARDENING_NEEDED, "SWHardeningNeeded" },
                { TDX_TCB_CONFIGURATION_NEEDED, "ConfigurationNeeded" },
                { TDX_TCB_OUT_OF_DATE, "OutOfDate" },
        };
        size_t n;

        (void) snprintf(buf, size, "UpToDate");
        for (size_t i = 0; i < ELEMENTSOF(bits); i++)
                if (accepted & bits[i].bit) {
                        n = strlen(buf);
                        (void) snprintf(buf + n, size - n, ", %s", bits[i].name);
                }
}

int tdx_check_policy(const TdxQuote *q, const TdxVerification *v, const TdxPolicy *p,
                     const uint8_t *report_data, TdxCheckFunc cb, void *userdata, Diag *d)
{
        Checker c = { cb, userdata, d, 0 };
        bool debug = q->td_attributes & TDX_TD_ATTR_DEBUG,
             sept = q->td_attributes & TDX_TD_ATTR_SEPT_VE_DISABLE;
        char e[DIAG_VALUE_MAX], a[DIAG_VALUE_MAX], detail[256];

        check(&c, "tdx-debug", !debug || p->allow_debug, -EPERM, p->allow_debug ? "any" : "0",
              debug ? "1" : "0",
              debug ? "the TD is a debug TD (the host can read and change its memory)"
                    : "not a debug TD");
        {
                bool migratable = q->td_attributes & TDX_TD_ATTR_MIGRATABLE;
                uint64_t reserved = q->td_attributes & TDX_TD_ATTR_TUD_RESERVED;
                (void) snprintf(a, sizeof(a), "0x%016llx", (unsigned long long) reserved);
                check(&c, "tdx-attributes-reserved", reserved == 0, -EPERM, "0x0000000000000000", a,
                      reserved ? "reserved TD attribute bits (1-7) are set"
                               : "no reserved TD attribute bit is set");
                check(&c, "tdx-migratable", !migratable || p->allow_migratable, -EPERM,
                      p->allow_migratable ? "any" : "0", migratable ? "1" : "0",
                      migratable ? "the TD is MIGRATABLE: its state can be exported to a "
                                   "migration TD bound later (allowMigratable to accept it)"
                                 : "not migratable");
        }
        if (p->require_sept_ve_disable)
                check(&c, "tdx-sept-ve-disable", sept || p->azure_paravisor, -EPERM, "1",
                      sept ? "1" : "0",
                      sept ? "SEPT_VE_DISABLE set: the host cannot inject #VE on private pages"
                      : p->azure_paravisor
                              ? "SEPT_VE_DISABLE clear: accepted for the Azure paravisor's TD "
                                "(azureParavisor), which handles #VE itself"
                              : "SEPT_VE_DISABLE is clear: the guest takes #VE on pending "
                                "private pages, which the host controls (set azureParavisor "
                                "only for Azure's paravisor)");
        if (p->check_xfam) {
                (void) snprintf(e, sizeof(e), "0x%016llx", (unsigned long long) p->xfam);
                (void) snprintf(a, sizeof(a), "0x%016llx", (unsigned long long) q->xfam);
                check(&c, "tdx-xfam", q->xfam == p->xfam, -EPERM, e, a,
                      "XFAM (the extended CPU features the TD may use)");
        }
        check_values(&c, "tdx-mrtd", "MRTD (the TD's initial contents: firmware)", &p->mr_td,
                     q->mr_td);
        for (int i = 0; i < 4; i++) {
                static const char *const names[] = { "tdx-rtmr0", "tdx-rtmr1", "tdx-rtmr2",
                                                     "tdx-rtmr3" },
                                         *const whats[] = { "RTMR0", "RTMR1", "RTMR2", "RTMR3" };
                check_values(&c, names[i], whats[i], &p->rtmr[i], q->rtmr[i]);
        }
        check_values(&c, "tdx-mrseam", "MRSEAM (the TDX module)", &p->mr_seam, q->mr_seam);
        check_values(&c, "tdx-mrsignerseam", "MRSIGNERSEAM", &p->mr_signer_seam, q->mr_signer_seam);
        check_values(&c, "tdx-mrconfigid", "MRCONFIGID", &p->mr_config_id, q->mr_config_id);
        check_values(&c, "tdx-mrowner", "MROWNER", &p->mr_owner, q->mr_owner);
        check_values(&c, "tdx-mrownerconfig", "MROWNERCONFIG", &p->mr_owner_config,
                     q->mr_owner_config);
        if (p->mr_service_td.n > 0)
                check_values(&c, "tdx-mrservicetd", "MRSERVICETD", &p->mr_service_td,
                             q->mr_service_td);
        else {
                static const uint8_t zero[48];
                bool none = memcmp(q->mr_service_td, zero, 48) == 0;
                hex_encode_buf(q->mr_service_td, 48, a, sizeof(a));
                check(&c, "tdx-mrservicetd", none, -EPERM, "0 (no service TD)", a,
                      none ? "no service TD is bound to the TD"
                           : "a service TD is bound to the TD and the policy names none "
                             "(mrServiceTd)");
        }

        /* TCB: from the collateral's evaluation. */
        status_list(p->accepted_tcb, e, sizeof(e));
        if (!v || !v->collateral) {
                if (p->require_collateral)
                        check(&c, "tdx-tcb-status", false, -EPERM, e, "unknown",
                              "no collateral was given, so the TCB status is unknown (pass "
                              "--collateral DIR, or set requireCollateral false to skip it)");
                else
                        check(&c, "tdx-tcb-status", true, 0, e, "unknown",
                              "TCB status NOT checked: requireCollateral is false");
        } else {
                unsigned st = v->tcb.status;
                bool ok = !(st & TDX_TCB_TERMINAL) && (st & ~p->accepted_tcb) == 0;
                char date[TIMESTAMP_UTC_SIZE] = "?";
                (void) timestamp_format_utc(v->tcb.platform_tcb_date, date);
                (void) snprintf(detail, sizeof(detail),
                                "TCB status %s (platform level %d of %s, TDX module %s, QE %s)%s",
                                tdx_tcb_status_to_string(st), v->tcb.platform_level, date,
                                tdx_tcb_status_to_string(v->tcb.module_status),
                                tdx_tcb_status_to_string(v->tcb.qe_status),
                                ok ? ""
                                   : ": accept it only deliberately, with the policy's "
                                     "acceptedTcbStatuses");
                check(&c, "tdx-tcb-status", ok, -EPERM, e, tdx_tcb_status_to_string(st), detail);
                {
                        unsigned n = MIN(v->tcb.tcb_eval_number, v->tcb.qe_tcb_eval_number);
                        (void) snprintf(e, sizeof(e), ">= %u", p->min_tcb_eval_number);
                        (void) snprintf(a, sizeof(a), "%u", n);
                        check(&c, "tdx-tcb-eval-number", n >= p->min_tcb_eval_number, -EPERM, e, a,
                              "TCB evaluation data number of the TCB info and QE identity (a "
                              "lower one is older collateral, from before a TCB recovery)");
                }
                if (p->check_advisories) {
                        const char *bad = NULL;
                        for (unsigned i = 0; i < v->tcb.advisories.n && !bad; i++) {
                                bool found = false;
                                for (unsigned k = 0; k < p->allowed_advisories.n && !found; k++)
                                        found = strcmp(v->tcb.advisories.id[i],
                                                       p->allowed_advisories.id[k]) == 0;
                                if (!found)
                                        bad = v->tcb.advisories.id[i];
                        }
                        (void) snprintf(detail, sizeof(detail),
                                        bad ? "advisory %s applies to this platform and is not "
                                              "in allowedAdvisoryIds"
                                            : "every advisory%s is allowed",
                                        bad ?: "");
                        check(&c, "tdx-advisories", !bad, -EPERM, "allowedAdvisoryIds", bad ?: "",
                              detail);
                }
        }
        if (report_data) {
                bool ok = CRYPTO_memcmp(report_data, q->report_data, 64) == 0;
                hex_encode_buf(report_data, 64, e, sizeof(e));
                hex_encode_buf(q->report_data, 64, a, sizeof(a));
                check(&c, "tdx-report-data", ok, -ESTALE, e, a,
                      ok ? "REPORTDATA is the expected binding"
                         : "REPORTDATA is not the expected binding (replayed or relayed quote)");
        }
        return c.result;
}
