/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel PCS collateral documents: TCB info v3 ("Get TDX TCB Info", /tdx/certification/v4/tcb)
 * and QE identity v2 ("Get TDX QE Identity", /tdx/certification/v4/qe/identity). Both come as
 * {"<name>": {...}, "signature": "<hex r ‖ s>"} where the signature covers the exact bytes of the
 * inner object as served. Those bytes are located by a bounded scan of the raw document, and it
 * is that span (not the whole document) that is parsed for the values used: what is evaluated is
 * exactly what was signed.
 */
#include <stdio.h>
#include <string.h>

#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/timestamp.h"
#include "tdx-internal.h"

typedef struct Scan {
        const uint8_t *p;
        size_t n, pos;
} Scan;

static void skip_ws(Scan *s)
{
        while (s->pos < s->n && (s->p[s->pos] == ' ' || s->p[s->pos] == '\t' ||
                                 s->p[s->pos] == '\n' || s->p[s->pos] == '\r'))
                s->pos++;
}

/* A string starting at pos (the opening quote); pos ends after the closing quote. */
static int skip_string(Scan *s)
{
        if (s->pos >= s->n || s->p[s->pos] != '"')
                return -EBADMSG;
        for (s->pos++; s->pos < s->n; s->pos++) {
                if (s->p[s->pos] == '\\') {
                        s->pos++;
                        continue;
                }
                if (s->p[s->pos] == '"') {
                        s->pos++;
                        return 0;
                }
        }
        return -EBADMSG;
}

/* One value of any kind. Nesting is counted, not recursed into; the full syntax check is
 * jansson's, on the whole document and again on the span. */
static int skip_value(Scan *s)
{
        size_t depth = 0;

        if (s->pos >= s->n)
                return -EBADMSG;
        if (s->p[s->pos] == '"')
                return skip_string(s);
        if (s->p[s->pos] != '{' && s->p[s->pos] != '[') {
                size_t start = s->pos;
                while (s->pos < s->n && !strchr(",}] \t\r\n", s->p[s->pos]) && s->p[s->pos] != 0)
                        s->pos++;
                return s->pos > start ? 0 : -EBADMSG;
        }
        while (s->pos < s->n) {
                uint8_t c = s->p[s->pos];
                if (c == '"') {
                        if (skip_string(s) < 0)
                                return -EBADMSG;
                        continue;
                }
                if (c == '{' || c == '[')
                        depth++;
                else if (c == '}' || c == ']') {
                        if (depth == 0)
                                return -EBADMSG;
                        if (--depth == 0) {
                                s->pos++;
                                return 0;
                        }
                }
                s->pos++;
        }
        return -EBADMSG;
}

int tdx_json_member_span(const uint8_t *data, size_t size, const char *key, const uint8_t **ret,
                         size_t *ret_size)
{
        Scan s = { data, size, 0 };
        size_t klen = strlen(key);
        const uint8_t *found = NULL;
        size_t found_size = 0;

        skip_ws(&s);
        if (s.pos >= s.n || s.p[s.pos] != '{')
                return -EBADMSG;
        s.pos++;
        skip_ws(&s);
        if (s.pos < s.n && s.p[s.pos] == '}')
                return -EBADMSG;
        for (;;) {
                size_t kstart, kend, vstart;

                skip_ws(&s);
                kstart = s.pos;
                if (skip_string(&s) < 0)
                        return -EBADMSG;
                kend = s.pos;
                skip_ws(&s);
                if (s.pos >= s.n || s.p[s.pos] != ':')
                        return -EBADMSG;
                s.pos++;
                skip_ws(&s);
                vstart = s.pos;
                if (skip_value(&s) < 0)
                        return -EBADMSG;
                /* The key as written, quotes included: an escaped spelling of the same key is
                 * not this key here, and jansson would call it a duplicate (refused). */
                if (kend - kstart == klen + 2 && memcmp(s.p + kstart + 1, key, klen) == 0) {
                        if (found)
                                return -EBADMSG;
                        found = s.p + vstart;
                        found_size = s.pos - vstart;
                }
                skip_ws(&s);
                if (s.pos >= s.n)
                        return -EBADMSG;
                if (s.p[s.pos] == '}') {
                        s.pos++;
                        break;
                }
                if (s.p[s.pos] != ',')
                        return -EBADMSG;
                s.pos++;
        }
        skip_ws(&s);
        if (s.pos != s.n || !found)
                return -EBADMSG;
        *ret = found;
        *ret_size = found_size;
        return 0;
}

static int schema_error(Diag *d, const char *check)
{
        char msg[DIAG_MESSAGE_MAX];

        (void) snprintf(msg, sizeof(msg), "%s", d ? d->message : "");
        return diag_fail(d, -EBADMSG, check, -1, "%s", msg);
}

static int get_time(const JsonCtx *ctx, const json_t *o, const char *key, time_t *ret)
{
        const char *s;
        int r = json_get_string(ctx, o, key, true, &s);

        if (r < 0)
                return r;
        if (timestamp_parse_utc(s, ret) < 0)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.%s: '%s' is not a UTC time YYYY-MM-DDTHH:MM:SSZ",
                                 ctx->source, ctx->path, key, s);
        return 0;
}

static int get_status(const JsonCtx *ctx, const json_t *o, unsigned *ret)
{
        const char *s;
        int r = json_get_string(ctx, o, "tcbStatus", true, &s);

        if (r < 0)
                return r;
        if (tdx_tcb_status_from_string(s, ret) < 0)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.tcbStatus: unknown status '%s'", ctx->source, ctx->path,
                                 s);
        return 0;
}

static int get_advisories(const JsonCtx *ctx, const json_t *o, TdxAdvisoryPool *pool,
                          TdxAdvisoryRef *ret)
{
        json_t *a = NULL, *v;
        size_t i;
        int r = json_get_array(ctx, o, "advisoryIDs", false, &a);

        *ret = (TdxAdvisoryRef){ .first = (uint16_t) pool->n };
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (json_array_size(a) > TDX_ADVISORIES_MAX)
                return diag_fail(ctx->diag, -EMSGSIZE, "json-schema", -1,
                                 "%s: %s.advisoryIDs: more than %d entries", ctx->source, ctx->path,
                                 TDX_ADVISORIES_MAX);
        if (pool->n + json_array_size(a) > TDX_ADVISORY_POOL_MAX)
                return diag_fail(ctx->diag, -EMSGSIZE, "json-schema", -1,
                                 "%s: more than %d advisory IDs in one document", ctx->source,
                                 TDX_ADVISORY_POOL_MAX);
        json_array_foreach (a, i, v) {
                const char *s = json_string_value(v);
                if (!s || strlen(s) == 0 || strlen(s) >= TDX_ADVISORY_ID_MAX ||
                    strlen(s) != json_string_length(v))
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.advisoryIDs.%zu: expected an advisory ID",
                                         ctx->source, ctx->path, i);
                (void) snprintf(pool->id[pool->n++], TDX_ADVISORY_ID_MAX, "%s", s);
                ret->n++;
        }
        return 0;
}

/* "tcb": {"isvsvn": N} levels of a TDX module identity or of the QE identity. */
static int parse_isv_levels(const JsonCtx *ctx, const json_t *o, TdxIsvLevel *levels, unsigned *n,
                            TdxAdvisoryPool *pool)
{
        json_t *a, *lv;
        size_t i;
        char path[256];
        int r = json_get_array(ctx, o, "tcbLevels", true, &a);

        if (r < 0)
                return r;
        if (json_array_size(a) == 0 || json_array_size(a) > TDX_ISV_LEVELS_MAX)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.tcbLevels: 1..%d levels expected", ctx->source, ctx->path,
                                 TDX_ISV_LEVELS_MAX);
        *n = 0;
        json_array_foreach (a, i, lv) {
                TdxIsvLevel *l = &levels[(*n)++];
                JsonCtx c;
                json_t *tcb;
                int64_t v;

                (void) snprintf(path, sizeof(path), "%s.tcbLevels.%zu", ctx->path, i);
                c = (JsonCtx){ ctx->source, path, ctx->diag };
                if ((r = json_expect_object(&c, lv)) < 0 ||
                    (r = json_get_object(&c, lv, "tcb", true, &tcb)) < 0 ||
                    (r = json_get_int(&c, tcb, "isvsvn", true, 0, 65535, &v)) < 0 ||
                    (r = get_time(&c, lv, "tcbDate", &l->tcb_date)) < 0 ||
                    (r = get_status(&c, lv, &l->status)) < 0 ||
                    (r = get_advisories(&c, lv, pool, &l->advisories)) < 0)
                        return r;
                l->isvsvn = (uint16_t) v;
        }
        return 0;
}

static int get_u64_hex(const JsonCtx *ctx, const json_t *o, const char *key, uint64_t *ret)
{
        uint8_t b[8];
        int r = json_get_hex_exact(ctx, o, key, true, b, 8);

        if (r < 0)
                return r;
        /* The bytes as they sit in the quote, which holds the field little-endian. */
        *ret = 0;
        for (int i = 7; i >= 0; i--)
                *ret = *ret << 8 | b[i];
        return 0;
}

static int parse_module(const JsonCtx *ctx, const json_t *o, TdxModuleIdentity *m, bool with_levels,
                        TdxAdvisoryPool *pool)
{
        const char *id;
        int r;

        if ((r = json_get_hex_exact(ctx, o, "mrsigner", true, m->mrsigner, 48)) < 0 ||
            (r = get_u64_hex(ctx, o, "attributes", &m->attributes)) < 0 ||
            (r = get_u64_hex(ctx, o, "attributesMask", &m->attributes_mask)) < 0)
                return r;
        if (!with_levels)
                return 0;
        if ((r = json_get_string(ctx, o, "id", true, &id)) < 0)
                return r;
        if (strlen(id) >= sizeof(m->id))
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1, "%s: %s.id: too long",
                                 ctx->source, ctx->path);
        (void) snprintf(m->id, sizeof(m->id), "%s", id);
        return parse_isv_levels(ctx, o, m->levels, &m->n_levels, pool);
}

static int get_components(const JsonCtx *ctx, const json_t *o, const char *key, uint8_t out[16])
{
        json_t *a, *c;
        size_t i;
        int r = json_get_array(ctx, o, key, true, &a);

        if (r < 0)
                return r;
        if (json_array_size(a) != 16)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.%s: 16 components expected", ctx->source, ctx->path, key);
        json_array_foreach (a, i, c) {
                int64_t v;
                if ((r = json_expect_object(ctx, c)) < 0 ||
                    (r = json_get_int(ctx, c, "svn", true, 0, 255, &v)) < 0)
                        return r;
                out[i] = (uint8_t) v;
        }
        return 0;
}

static int parse_tcb_levels(const JsonCtx *ctx, const json_t *o, TdxTcbInfo *t)
{
        json_t *a, *lv;
        size_t i;
        char path[256];
        int r = json_get_array(ctx, o, "tcbLevels", true, &a);

        if (r < 0)
                return r;
        if (json_array_size(a) == 0 || json_array_size(a) > TDX_TCB_LEVELS_MAX)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .tcbLevels: 1..%d levels expected", ctx->source,
                                 TDX_TCB_LEVELS_MAX);
        json_array_foreach (a, i, lv) {
                TdxTcbLevel *l = &t->levels[t->n_levels++];
                json_t *tcb;
                JsonCtx c;
                int64_t v;

                (void) snprintf(path, sizeof(path), ".tcbLevels.%zu", i);
                c = (JsonCtx){ ctx->source, path, ctx->diag };
                if ((r = json_expect_object(&c, lv)) < 0 ||
                    (r = json_get_object(&c, lv, "tcb", true, &tcb)) < 0 ||
                    (r = get_components(&c, tcb, "sgxtcbcomponents", l->sgx_svn)) < 0 ||
                    (r = get_components(&c, tcb, "tdxtcbcomponents", l->tdx_svn)) < 0 ||
                    (r = json_get_int(&c, tcb, "pcesvn", true, 0, 65535, &v)) < 0 ||
                    (r = get_time(&c, lv, "tcbDate", &l->tcb_date)) < 0 ||
                    (r = get_status(&c, lv, &l->status)) < 0 ||
                    (r = get_advisories(&c, lv, &t->pool, &l->advisories)) < 0)
                        return r;
                l->pcesvn = (uint16_t) v;
        }
        return 0;
}

/* The PCS envelope: exactly {name, "signature"}; returns the inner span parsed. */
static int parse_envelope(const uint8_t *data, size_t size, const char *name, const char *source,
                          const char *check, json_t **ret_inner, const uint8_t **ret_span,
                          size_t *ret_span_size, uint8_t sig[64], Diag *d)
{
        static const char *const keys_tcb[] = { "tcbInfo", "signature", NULL }, *const keys_qe[] = {
                "enclaveIdentity", "signature", NULL
        };
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { source, "", d };
        const uint8_t *span;
        size_t span_size;
        int r;

        if (size > TDX_COLLATERAL_FILE_MAX)
                return diag_fail(d, -EMSGSIZE, check, -1, "%s: more than %u bytes", source,
                                 TDX_COLLATERAL_FILE_MAX);
        r = json_parse_buffer(data, size, source, &doc, d);
        if (r < 0)
                return schema_error(d, check);
        if (json_check_keys(&ctx, doc, strcmp(name, "tcbInfo") == 0 ? keys_tcb : keys_qe) < 0 ||
            json_get_hex_exact(&ctx, doc, "signature", true, sig, 64) < 0)
                return schema_error(d, check);
        if (tdx_json_member_span(data, size, name, &span, &span_size) < 0)
                return diag_fail(d, -EBADMSG, check, -1, "%s: no single .%s object", source, name);
        r = json_parse_buffer(span, span_size, source, ret_inner, d);
        if (r < 0 || !json_is_object(*ret_inner)) {
                if (r >= 0)
                        json_decref(*ret_inner);
                return diag_fail(d, -EBADMSG, check, -1, "%s: .%s is not an object", source, name);
        }
        *ret_span = span;
        *ret_span_size = span_size;
        return 0;
}

int tdx_tcb_info_parse(const uint8_t *data, size_t size, TdxTcbInfo **ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_(freep) TdxTcbInfo *t = calloc(1, sizeof(*t));
        JsonCtx ctx = { "tcb_info.json", ".tcbInfo", d };
        json_t *m, *ids, *id;
        const char *s;
        int64_t v;
        size_t i;
        int r;

        if (!t)
                return -ENOMEM;
        r = parse_envelope(data, size, "tcbInfo", "tcb_info.json", "tdx-tcb-info-format", &o,
                           &t->signed_data, &t->signed_size, t->signature, d);
        if (r < 0)
                return r;
        if (json_get_string(&ctx, o, "id", true, &s) < 0)
                return schema_error(d, "tdx-tcb-info-format");
        if (strcmp(s, "TDX") != 0)
                return diag_fail(d, -EBADMSG, "tdx-tcb-info-format", -1,
                                 "tcb_info.json: id '%s' is not TDX (SGX TCB info given?)", s);
        if (json_get_int(&ctx, o, "version", true, 0, 100, &v) < 0)
                return schema_error(d, "tdx-tcb-info-format");
        if (v != 3)
                return diag_fail(d, -EBADMSG, "tdx-tcb-info-format", -1,
                                 "tcb_info.json: version %d, only version 3 is known", (int) v);
        if (get_time(&ctx, o, "issueDate", &t->issue_date) < 0 ||
            get_time(&ctx, o, "nextUpdate", &t->next_update) < 0 ||
            json_get_hex_exact(&ctx, o, "fmspc", true, t->fmspc, 6) < 0 ||
            json_get_hex_exact(&ctx, o, "pceId", true, t->pce_id, 2) < 0 ||
            json_get_int(&ctx, o, "tcbEvaluationDataNumber", true, 0, UINT32_MAX, &v) < 0)
                return schema_error(d, "tdx-tcb-info-format");
        t->tcb_eval_number = (unsigned) v;
        if (json_get_int(&ctx, o, "tcbType", true, 0, 0, &v) < 0)
                return schema_error(d, "tdx-tcb-info-format");
        {
                char p[64];
                JsonCtx c = json_ctx_child(&ctx, "tdxModule", p, sizeof(p));
                if (json_get_object(&ctx, o, "tdxModule", true, &m) < 0 ||
                    parse_module(&c, m, &t->module, false, &t->pool) < 0)
                        return schema_error(d, "tdx-tcb-info-format");
        }
        r = json_get_array(&ctx, o, "tdxModuleIdentities", false, &ids);
        if (r < 0 && r != -ENOENT)
                return schema_error(d, "tdx-tcb-info-format");
        if (r >= 0) {
                if (json_array_size(ids) > TDX_MODULE_IDENTITIES_MAX)
                        return diag_fail(d, -EMSGSIZE, "tdx-tcb-info-format", -1,
                                         "tcb_info.json: more than %d TDX module identities",
                                         TDX_MODULE_IDENTITIES_MAX);
                json_array_foreach (ids, i, id) {
                        char p[64];
                        JsonCtx c;

                        (void) snprintf(p, sizeof(p), ".tcbInfo.tdxModuleIdentities.%zu", i);
                        c = (JsonCtx){ ctx.source, p, d };
                        if (json_expect_object(&c, id) < 0 ||
                            parse_module(&c, id, &t->identities[t->n_identities++], true,
                                         &t->pool) < 0)
                                return schema_error(d, "tdx-tcb-info-format");
                }
        }
        if (parse_tcb_levels(&ctx, o, t) < 0)
                return schema_error(d, "tdx-tcb-info-format");
        *ret = TAKE_PTR(t);
        return 0;
}

int tdx_qe_identity_parse(const uint8_t *data, size_t size, TdxQeIdentity **ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_(freep) TdxQeIdentity *q = calloc(1, sizeof(*q));
        JsonCtx ctx = { "qe_identity.json", ".enclaveIdentity", d };
        uint8_t b[4];
        const char *s;
        int64_t v;
        int r;

        if (!q)
                return -ENOMEM;
        r = parse_envelope(data, size, "enclaveIdentity", "qe_identity.json",
                           "tdx-qe-identity-format", &o, &q->signed_data, &q->signed_size,
                           q->signature, d);
        if (r < 0)
                return r;
        if (json_get_string(&ctx, o, "id", true, &s) < 0)
                return schema_error(d, "tdx-qe-identity-format");
        if (strcmp(s, "TD_QE") != 0)
                return diag_fail(d, -EBADMSG, "tdx-qe-identity-format", -1,
                                 "qe_identity.json: id '%s' is not TD_QE (an SGX QE identity?)", s);
        if (json_get_int(&ctx, o, "version", true, 0, 100, &v) < 0)
                return schema_error(d, "tdx-qe-identity-format");
        if (v != 2)
                return diag_fail(d, -EBADMSG, "tdx-qe-identity-format", -1,
                                 "qe_identity.json: version %d, only version 2 is known", (int) v);
        if (get_time(&ctx, o, "issueDate", &q->issue_date) < 0 ||
            get_time(&ctx, o, "nextUpdate", &q->next_update) < 0 ||
            json_get_int(&ctx, o, "tcbEvaluationDataNumber", true, 0, UINT32_MAX, &v) < 0)
                return schema_error(d, "tdx-qe-identity-format");
        q->tcb_eval_number = (unsigned) v;
        /* miscselect: the 32-bit value, hex, most significant byte first. */
        if (json_get_hex_exact(&ctx, o, "miscselect", true, b, 4) < 0)
                return schema_error(d, "tdx-qe-identity-format");
        q->miscselect = (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
        if (json_get_hex_exact(&ctx, o, "miscselectMask", true, b, 4) < 0)
                return schema_error(d, "tdx-qe-identity-format");
        q->miscselect_mask =
                (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
        if (json_get_hex_exact(&ctx, o, "attributes", true, q->attributes, 16) < 0 ||
            json_get_hex_exact(&ctx, o, "attributesMask", true, q->attributes_mask, 16) < 0 ||
            json_get_hex_exact(&ctx, o, "mrsigner", true, q->mrsigner, 32) < 0 ||
            json_get_int(&ctx, o, "isvprodid", true, 0, 65535, &v) < 0)
                return schema_error(d, "tdx-qe-identity-format");
        q->isvprodid = (uint16_t) v;
        if (parse_isv_levels(&ctx, o, q->levels, &q->n_levels, &q->pool) < 0)
                return schema_error(d, "tdx-qe-identity-format");
        *ret = TAKE_PTR(q);
        return 0;
}
