/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd's JSON gateway answers, parsed as untrusted bytes. The schema is etcd's (rpc.proto,
 * marshalled by grpc-gateway's jsonpb with OrigName): int64 fields are decimal strings, bytes
 * are base64, fields at their zero value are left out. Unknown fields are ignored (a newer etcd
 * may add some); every field we read is typed, bounded and checked against what a correct etcd
 * could answer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/base64.h"
#include "cloister/etcd.h"
#include "cloister/json.h"
#include "cloister/macro.h"

void etcd_range_done(EtcdRange *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_kvs; i++) {
                free(r->kvs[i].key);
                free(r->kvs[i].value);
        }
        free(r->kvs);
        *r = (EtcdRange){};
}

void etcd_txn_result_done(EtcdTxnResult *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < ETCD_TXN_OPS_MAX; i++)
                etcd_range_done(&t->ranges[i]);
        *t = (EtcdTxnResult){};
}

/* An int64 as jsonpb writes it: a decimal string without sign or leading zeros; absent means
 * 0 unless required. Bounded to [0, INT64_MAX]. */
static int get_i64(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                   int64_t *ret)
{
        const char *s;
        uint64_t v = 0;
        size_t n;
        int r;

        r = json_get_string(ctx, o, key, required, &s);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        n = strlen(s);
        if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
                return diag_fail(ctx->diag, -EBADMSG, "etcd-integer", -1,
                                 "%s: %s.%s: not a decimal int64", ctx->source, ctx->path ?: "",
                                 key);
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return diag_fail(ctx->diag, -EBADMSG, "etcd-integer", -1,
                                         "%s: %s.%s: not a decimal int64", ctx->source,
                                         ctx->path ?: "", key);
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v > (uint64_t) INT64_MAX)
                return diag_fail(ctx->diag, -EBADMSG, "etcd-integer", -1, "%s: %s.%s: beyond int64",
                                 ctx->source, ctx->path ?: "", key);
        *ret = (int64_t) v;
        return 0;
}

/* The header every answer carries: its revision, never behind what this client saw. */
static int parse_header(const JsonCtx *ctx, const json_t *o, bool required, int64_t min_revision,
                        int64_t *ret_revision)
{
        char buf[64];
        JsonCtx hctx = json_ctx_child(ctx, "header", buf, sizeof(buf));
        json_t *h = NULL;
        int64_t rev;
        int r;

        r = json_get_object(ctx, o, "header", required, &h);
        if (r == -ENOENT) {
                *ret_revision = 0;
                return 0;
        }
        if (r < 0)
                return r;
        r = get_i64(&hctx, h, "revision", true, &rev);
        if (r < 0)
                return r;
        if (rev <= 0)
                return diag_fail(ctx->diag, -EPROTO, "etcd-revision", -1,
                                 "%s: header revision %" PRId64 " is not positive", ctx->source,
                                 rev);
        if (rev < min_revision)
                return diag_fail(ctx->diag, -EPROTO, "etcd-revision", -1,
                                 "%s: etcd answered at revision %" PRId64
                                 ", older than revision %" PRId64
                                 " already seen: a member behind the cluster or a replayed answer",
                                 ctx->source, rev, min_revision);
        *ret_revision = rev;
        return 0;
}

static bool key_ok(const uint8_t *k, size_t n)
{
        size_t p = strlen(ETCD_KEY_PREFIX);

        if (n < p || n > ETCD_KEY_MAX || memcmp(k, ETCD_KEY_PREFIX, p) != 0)
                return false;
        return memchr(k, 0, n) == NULL;
}

static int parse_kv(const JsonCtx *ctx, const json_t *o, int64_t revision, EtcdKv *ret)
{
        _cleanup_(freep) uint8_t *key = NULL, *value = NULL;
        size_t key_size = 0, value_size = 0;
        EtcdKv kv = {};
        int r;

        r = json_expect_object(ctx, o);
        if (r < 0)
                return r;
        r = json_get_base64(ctx, o, "key", true, ETCD_KEY_MAX, &key, &key_size);
        if (r < 0)
                return r;
        if (!key_ok(key, key_size))
                return diag_fail(ctx->diag, -EBADMSG, "etcd-key", -1,
                                 "%s: %s: a key outside " ETCD_KEY_PREFIX " or with a NUL byte",
                                 ctx->source, ctx->path);
        r = json_get_base64(ctx, o, "value", false, ETCD_VALUE_MAX, &value, &value_size);
        if (r < 0 && r != -ENOENT)
                return r;
        r = get_i64(ctx, o, "create_revision", true, &kv.create_revision);
        if (r >= 0)
                r = get_i64(ctx, o, "mod_revision", true, &kv.mod_revision);
        if (r >= 0)
                r = get_i64(ctx, o, "version", true, &kv.version);
        if (r < 0)
                return r;
        /* A key that exists was created, modified at or after that, at or before the answer's
         * revision, and has a version. */
        if (kv.create_revision <= 0 || kv.mod_revision < kv.create_revision ||
            kv.mod_revision > revision || kv.version <= 0)
                return diag_fail(ctx->diag, -EPROTO, "etcd-kv-revisions", -1,
                                 "%s: %s: revisions out of order (create %" PRId64 ", mod %" PRId64
                                 ", version %" PRId64 ", answer at %" PRId64 ")",
                                 ctx->source, ctx->path, kv.create_revision, kv.mod_revision,
                                 kv.version, revision);
        kv.key = malloc(key_size + 1);
        if (!kv.key)
                return -ENOMEM;
        memcpy(kv.key, key, key_size);
        kv.key[key_size] = 0;
        kv.value = TAKE_PTR(value);
        kv.value_size = value_size;
        *ret = kv;
        return 0;
}

static int parse_range_body(const JsonCtx *ctx, const json_t *o, const char *key,
                            const char *range_end, size_t limit, int64_t revision, EtcdRange *ret)
{
        EtcdRange rg = { .revision = revision };
        json_t *kvs = NULL, *item;
        bool more = false;
        size_t i;
        int r;

        r = json_expect_object(ctx, o);
        if (r < 0)
                return r;
        r = json_get_array(ctx, o, "kvs", false, &kvs);
        if (r < 0 && r != -ENOENT)
                return r;
        r = json_get_bool(ctx, o, "more", false, &more);
        if (r < 0 && r != -ENOENT)
                return r;
        r = get_i64(ctx, o, "count", false, &rg.count);
        if (r < 0)
                return r;
        rg.more = more;
        if (kvs && json_array_size(kvs) > 0) {
                size_t n = json_array_size(kvs);

                if (n > ETCD_RANGE_KVS_MAX || (limit > 0 && n > limit) || (!range_end && n > 1))
                        return diag_fail(ctx->diag, -EPROTO, "etcd-range-size", -1,
                                         "%s: %zu key-values, more than asked for", ctx->source, n);
                rg.kvs = calloc(n, sizeof(EtcdKv));
                if (!rg.kvs)
                        return -ENOMEM;
        }
        json_array_foreach (kvs, i, item) {
                char buf[32];
                JsonCtx ictx = { .source = ctx->source, .path = buf, .diag = ctx->diag };
                EtcdKv *kv = &rg.kvs[i];

                (void) snprintf(buf, sizeof(buf), ".kvs[%zu]", i);
                r = parse_kv(&ictx, item, revision, kv);
                if (r < 0) {
                        etcd_range_done(&rg);
                        return r;
                }
                rg.n_kvs = i + 1;
                /* Inside the range asked for, ascending, each key once. */
                if (range_end ? strcmp(kv->key, key) < 0 || strcmp(kv->key, range_end) >= 0
                              : strcmp(kv->key, key) != 0) {
                        etcd_range_done(&rg);
                        return diag_fail(ctx->diag, -EPROTO, "etcd-range-key", (int) i,
                                         "%s: %s: a key outside the range asked for", ctx->source,
                                         buf);
                }
                if (i > 0 && strcmp(rg.kvs[i - 1].key, kv->key) >= 0) {
                        etcd_range_done(&rg);
                        return diag_fail(ctx->diag, -EPROTO, "etcd-range-order", (int) i,
                                         "%s: %s: keys not in ascending order", ctx->source, buf);
                }
        }
        if (rg.count < (int64_t) rg.n_kvs ||
            (!more && limit == 0 && rg.count != (int64_t) rg.n_kvs)) {
                etcd_range_done(&rg);
                return diag_fail(ctx->diag, -EPROTO, "etcd-range-count", -1,
                                 "%s: count %" PRId64 " disagrees with %zu key-values", ctx->source,
                                 rg.count, rg.n_kvs);
        }
        *ret = rg;
        return 0;
}

static int parse_document(const void *data, size_t size, const char *source, json_t **ret, Diag *d)
{
        if (size > ETCD_RESPONSE_MAX)
                return diag_fail(d, -EMSGSIZE, "etcd-response-size", -1,
                                 "%s: answer of %zu bytes, over the limit of %u", source, size,
                                 ETCD_RESPONSE_MAX);
        if (size == 0)
                return diag_fail(d, -EBADMSG, "json-syntax", -1, "%s: empty answer", source);
        return json_parse_buffer(data, size, source, ret, d);
}

int etcd_parse_range(const void *data, size_t size, const char *key, const char *range_end,
                     size_t limit, int64_t min_revision, EtcdRange *ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { .source = "etcd range answer", .path = "", .diag = d };
        int64_t rev;
        int r;

        r = parse_document(data, size, ctx.source, &doc, d);
        if (r >= 0)
                r = json_expect_object(&ctx, doc);
        if (r >= 0)
                r = parse_header(&ctx, doc, true, min_revision, &rev);
        if (r >= 0)
                r = parse_range_body(&ctx, doc, key, range_end, limit, rev, ret);
        return r;
}

int etcd_parse_put(const void *data, size_t size, int64_t min_revision, int64_t *ret_revision,
                   Diag *d)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { .source = "etcd put answer", .path = "", .diag = d };
        int64_t rev;
        int r;

        r = parse_document(data, size, ctx.source, &doc, d);
        if (r >= 0)
                r = json_expect_object(&ctx, doc);
        if (r >= 0)
                r = parse_header(&ctx, doc, true, min_revision, &rev);
        if (r < 0)
                return r;
        *ret_revision = rev;
        return 0;
}

static const char *const op_response_names[_ETCD_OP_TYPE_MAX] = {
        [ETCD_OP_RANGE] = "response_range",
        [ETCD_OP_PUT] = "response_put",
        [ETCD_OP_DELETE] = "response_delete_range",
};

int etcd_parse_txn(const void *data, size_t size, const EtcdOp *success, size_t n_success,
                   const EtcdOp *failure, size_t n_failure, int64_t min_revision,
                   EtcdTxnResult *ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { .source = "etcd txn answer", .path = "", .diag = d };
        EtcdTxnResult t = {};
        const EtcdOp *ops;
        json_t *responses = NULL, *item;
        bool succeeded = false;
        size_t n_ops, i;
        int r;

        if (n_success > ETCD_TXN_OPS_MAX || n_failure > ETCD_TXN_OPS_MAX)
                return -EINVAL;
        r = parse_document(data, size, ctx.source, &doc, d);
        if (r >= 0)
                r = json_expect_object(&ctx, doc);
        if (r >= 0)
                r = parse_header(&ctx, doc, true, min_revision, &t.revision);
        if (r >= 0) {
                r = json_get_bool(&ctx, doc, "succeeded", false, &succeeded);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0) {
                r = json_get_array(&ctx, doc, "responses", false, &responses);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r < 0)
                return r;
        ops = succeeded ? success : failure;
        n_ops = succeeded ? n_success : n_failure;
        if (json_array_size(responses) != n_ops)
                return diag_fail(d, -EPROTO, "etcd-txn-responses", -1,
                                 "%s: %zu responses for the %zu operations of the %s branch",
                                 ctx.source, json_array_size(responses), n_ops,
                                 succeeded ? "success" : "failure");
        t.succeeded = succeeded;
        json_array_foreach (responses, i, item) {
                const char *want = op_response_names[ops[i].type];
                char buf[64];
                JsonCtx ictx = { .source = ctx.source, .path = buf, .diag = d };
                json_t *inner = NULL;
                int64_t inner_rev = 0;

                (void) snprintf(buf, sizeof(buf), ".responses[%zu]", i);
                r = json_expect_object(&ictx, item);
                if (r >= 0 && json_object_size(item) != 1)
                        r = diag_fail(d, -EPROTO, "etcd-txn-response-type", (int) i,
                                      "%s: %s: not exactly one response", ctx.source, buf);
                if (r >= 0) {
                        r = json_get_object(&ictx, item, want, false, &inner);
                        if (r == -ENOENT)
                                r = diag_fail(d, -EPROTO, "etcd-txn-response-type", (int) i,
                                              "%s: %s: not the %s its operation calls for",
                                              ctx.source, buf, want);
                }
                /* An inner header, where etcd writes one, is at most the transaction's. */
                if (r >= 0) {
                        char ibuf[96];
                        JsonCtx cctx = json_ctx_child(&ictx, want, ibuf, sizeof(ibuf));
                        r = parse_header(&cctx, inner, false, 0, &inner_rev);
                        if (r >= 0 && inner_rev > t.revision)
                                r = diag_fail(d, -EPROTO, "etcd-revision", (int) i,
                                              "%s: %s: a revision after the transaction's",
                                              ctx.source, buf);
                        if (r >= 0 && ops[i].type == ETCD_OP_RANGE)
                                r = parse_range_body(&cctx, inner, ops[i].key, ops[i].range_end, 0,
                                                     t.revision, &t.ranges[i]);
                }
                if (r < 0) {
                        etcd_txn_result_done(&t);
                        return r;
                }
        }
        t.n_ops = n_ops;
        *ret = t;
        return 0;
}

int etcd_parse_error(const void *data, size_t size, long status, Diag *d)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { .source = "etcd error answer", .path = "", .diag = NULL };
        char text[160] = "";
        const char *msg = NULL;
        Diag ignored;
        size_t o = 0;

        ctx.diag = &ignored;
        diag_clear(&ignored);
        if (size <= ETCD_RESPONSE_MAX && size > 0 &&
            json_parse_buffer(data, size, ctx.source, &doc, &ignored) >= 0 && json_is_object(doc)) {
                if (json_get_string(&ctx, doc, "error", false, &msg) < 0)
                        msg = NULL;
                if (!msg && json_get_string(&ctx, doc, "message", false, &msg) < 0)
                        msg = NULL;
        }
        /* etcd's words, printable ASCII only, bounded: they reach logs and users. */
        for (const char *p = msg; p && *p && o < sizeof(text) - 1; p++)
                text[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        text[o] = 0;
        return diag_fail(d, status == 404 ? -ENOTSUP : -EPROTO, "etcd-error", -1,
                         "etcd refused the request (HTTP %ld): %s", status,
                         text[0] ? text : "no reason given");
}
