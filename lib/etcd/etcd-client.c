/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd client's transport: one HTTPS POST per call to the JSON gateway of one endpoint,
 * mutual TLS (the client certificate, etcd's CA, the server's name checked), a bounded answer,
 * a timeout per attempt (rpc_mtls_post(): libcurl is lib/rpc's), and the next endpoint when one
 * does not answer; the answers go to etcd-response.c.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/base64.h"
#include "cloister/etcd.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/rpc.h"

struct EtcdClient {
        char *endpoints[ETCD_ENDPOINTS_MAX];
        size_t n_endpoints;
        char *cert, *key, *ca;
        unsigned connect_timeout_ms, total_timeout_ms, rounds;
        pthread_mutex_t lock; /* revision, preferred */
        int64_t revision;     /* the highest seen: an answer older than this is refused */
        size_t preferred;     /* the endpoint that answered last */
};

EtcdClient *etcd_client_free(EtcdClient *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_endpoints; i++)
                free(c->endpoints[i]);
        free(c->cert);
        free(c->key);
        free(c->ca);
        (void) pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

/* https://HOST:PORT, nothing after the port: the gateway's paths are ours to add. */
static bool endpoint_ok(const char *s, size_t n)
{
        const char *p = s + strlen("https://"), *colon = NULL;

        if (n <= strlen("https://") || n > 255 || strncmp(s, "https://", 8) != 0)
                return false;
        for (const char *q = p; q < s + n; q++) {
                if (*q == ':')
                        colon = q;
                else if (!(*q == '.' || *q == '-' || *q == '[' || *q == ']' ||
                           (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') ||
                           (*q >= 'A' && *q <= 'Z')))
                        return false;
        }
        if (!colon || colon == p || colon + 1 == s + n || s + n - colon - 1 > 5)
                return false;
        for (const char *q = colon + 1; q < s + n; q++)
                if (*q < '0' || *q > '9')
                        return false;
        return true;
}

int etcd_client_new(const EtcdConfig *config, EtcdClient **ret, Diag *d)
{
        _cleanup_(etcd_client_freep) EtcdClient *c = NULL;
        const char *p;

        if (!config->endpoints || !config->endpoints[0])
                return diag_fail(d, -EINVAL, "etcd-config", -1,
                                 "no etcd endpoints: give --etcd-endpoints https://HOST:PORT,...");
        if (!config->cert || !config->key || !config->ca)
                return diag_fail(d, -EINVAL, "etcd-config", -1,
                                 "etcd needs a client certificate, its key and the etcd CA "
                                 "(--etcd-cert, --etcd-key, --etcd-ca): there is no plaintext "
                                 "or anonymous mode");
        for (const char *f[] = { config->cert, config->key, config->ca }, **q = f; q < f + 3; q++)
                if (access(*q, R_OK) < 0)
                        return diag_fail(d, -errno, "etcd-config", -1, "%s: cannot read: %m", *q);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        (void) pthread_mutex_init(&c->lock, NULL);
        p = config->endpoints;
        while (*p) {
                size_t n = strcspn(p, ",");

                if (!endpoint_ok(p, n))
                        return diag_fail(d, -EINVAL, "etcd-config", -1,
                                         "etcd endpoint '%.*s' is not https://HOST:PORT",
                                         (int) MIN(n, (size_t) 255), p);
                if (c->n_endpoints >= ETCD_ENDPOINTS_MAX)
                        return diag_fail(d, -E2BIG, "etcd-config", -1,
                                         "more than %u etcd endpoints", ETCD_ENDPOINTS_MAX);
                c->endpoints[c->n_endpoints] = strndup(p, n);
                if (!c->endpoints[c->n_endpoints])
                        return -ENOMEM;
                c->n_endpoints++;
                p += n;
                if (*p == ',')
                        p++;
        }
        c->cert = strdup(config->cert);
        c->key = strdup(config->key);
        c->ca = strdup(config->ca);
        if (!c->cert || !c->key || !c->ca)
                return -ENOMEM;
        c->connect_timeout_ms = config->connect_timeout_ms ?: 2000;
        c->total_timeout_ms = config->total_timeout_ms ?: 5000;
        c->rounds = config->rounds ?: 2;
        *ret = TAKE_PTR(c);
        return 0;
}

int64_t etcd_client_revision(const EtcdClient *c)
{
        int64_t r;

        (void) pthread_mutex_lock((pthread_mutex_t *) &c->lock);
        r = c->revision;
        (void) pthread_mutex_unlock((pthread_mutex_t *) &c->lock);
        return r;
}

static void client_saw(EtcdClient *c, int64_t revision, size_t endpoint)
{
        (void) pthread_mutex_lock(&c->lock);
        if (revision > c->revision)
                c->revision = revision;
        c->preferred = endpoint;
        (void) pthread_mutex_unlock(&c->lock);
}

typedef int (*ParseFn)(void *userdata, const void *data, size_t size, int64_t min_revision,
                       int64_t *ret_revision, Diag *d);

/*
 * Sends json to every endpoint in turn, starting with the last that answered, for c->rounds
 * rounds. idempotent: a request that may have reached etcd without an answer is sent again
 * elsewhere (reads); otherwise only one that never left (no connection). An error status from
 * etcd (no leader, request timed out) counts as no answer for reads.
 */
static int call(EtcdClient *c, const char *path, const char *json, bool idempotent, ParseFn parse,
                void *userdata, Diag *d)
{
        size_t start, n = c->n_endpoints;
        Diag last;
        int r = -EIO;

        diag_clear(&last);
        (void) pthread_mutex_lock(&c->lock);
        start = c->preferred;
        (void) pthread_mutex_unlock(&c->lock);
        for (unsigned round = 0; round < c->rounds; round++)
                for (size_t k = 0; k < n; k++) {
                        size_t e = (start + k) % n;
                        RpcMtlsConfig tls = { .cert = c->cert,
                                              .key = c->key,
                                              .ca = c->ca,
                                              .connect_timeout_ms = c->connect_timeout_ms,
                                              .total_timeout_ms = c->total_timeout_ms,
                                              .max_response = ETCD_RESPONSE_MAX };
                        _cleanup_(freep) char *url = NULL, *body = NULL;
                        size_t size = 0;
                        long status = 0;
                        int64_t rev = 0;
                        RpcSent sent;

                        if (asprintf(&url, "%s%s", c->endpoints[e], path) < 0)
                                return -ENOMEM;
                        diag_clear(&last);
                        r = rpc_mtls_post(&tls, url, json, &body, &size, &status, &sent, &last);
                        if (r >= 0 && status == 200) {
                                r = parse(userdata, body, size, etcd_client_revision(c), &rev,
                                          &last);
                                if (r >= 0) {
                                        client_saw(c, rev, e);
                                        return r;
                                }
                                /* A malformed or impossible answer: never retried, refused. */
                                if (d)
                                        *d = last;
                                return r;
                        }
                        if (r >= 0) {
                                r = etcd_parse_error(body, size, status, &last);
                                log_debug("etcd: %s: %s", url, last.message);
                                if (!idempotent || status < 500) {
                                        if (d)
                                                *d = last;
                                        return r;
                                }
                                continue;
                        }
                        if (sent == RPC_SENT_LOCAL || (sent == RPC_SENT_UNKNOWN && !idempotent)) {
                                if (d)
                                        *d = last;
                                /* A write that may have been applied: its outcome is unknown. */
                                return sent == RPC_SENT_UNKNOWN ? -ETIMEDOUT : r;
                        }
                        log_debug("etcd: %s", last.message);
                }
        return diag_fail(d, -EHOSTUNREACH, "etcd-unreachable", -1,
                         "no etcd member answered (%zu endpoint%s tried %u times; last: %s): "
                         "etcd is down or has lost its quorum",
                         n, n == 1 ? "" : "s", c->rounds, last.message[0] ? last.message : "-");
}

static bool key_arg_ok(const char *key)
{
        return key && strncmp(key, ETCD_KEY_PREFIX, strlen(ETCD_KEY_PREFIX)) == 0 &&
               strlen(key) <= ETCD_KEY_MAX;
}

static int set_b64(json_t *o, const char *name, const void *data, size_t size)
{
        _cleanup_(freep) char *b64 = NULL;
        int r = base64_encode(data, size, &b64);

        if (r < 0)
                return r;
        return json_object_set_new(o, name, json_string(b64)) < 0 ? -ENOMEM : 0;
}

char *etcd_prefix_end(const char *prefix)
{
        size_t n = strlen(prefix);
        char *end = strdup(prefix);

        /* The last byte that is not 0xff, plus one, and nothing after it (etcd's clientv3). */
        while (end && n > 0) {
                if ((unsigned char) end[n - 1] < 0xff) {
                        end[n - 1]++;
                        end[n] = 0;
                        return end;
                }
                n--;
        }
        free(end);
        return NULL;
}

typedef struct RangeCall {
        const char *key, *range_end;
        size_t limit;
        EtcdRange *ret;
} RangeCall;

static int range_parse(void *userdata, const void *data, size_t size, int64_t min_revision,
                       int64_t *ret_revision, Diag *d)
{
        RangeCall *rc = userdata;
        int r = etcd_parse_range(data, size, rc->key, rc->range_end, rc->limit, min_revision,
                                 rc->ret, d);

        if (r >= 0)
                *ret_revision = rc->ret->revision;
        return r;
}

static int range_request(const char *key, const char *range_end, size_t limit, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *o = json_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = set_b64(o, "key", key, strlen(key));
        if (r >= 0 && range_end)
                r = set_b64(o, "range_end", range_end, strlen(range_end));
        if (r >= 0 && limit > 0) {
                char n[24];
                (void) snprintf(n, sizeof(n), "%zu", limit);
                r = json_object_set_new(o, "limit", json_string(n)) < 0 ? -ENOMEM : 0;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int etcd_range(EtcdClient *c, const char *key, const char *range_end, size_t limit, EtcdRange *ret,
               Diag *d)
{
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_(freep) char *text = NULL;
        RangeCall rc = { .key = key, .range_end = range_end, .limit = limit, .ret = ret };
        int r;

        if (!c)
                return diag_fail(d, -ENOTCONN, "etcd", -1, "no etcd client (no --etcd-endpoints)");
        if (!key_arg_ok(key) || (range_end && strlen(range_end) > ETCD_KEY_MAX))
                return diag_fail(d, -EINVAL, "etcd-key", -1, "key outside " ETCD_KEY_PREFIX);
        r = range_request(key, range_end, limit, &req);
        if (r >= 0)
                r = json_dump_compact(req, &text);
        if (r < 0)
                return r;
        return call(c, "/v3/kv/range", text, true, range_parse, &rc, d);
}

size_t etcd_client_n_endpoints(const EtcdClient *c)
{
        return c ? c->n_endpoints : 0;
}

const char *etcd_client_endpoint(const EtcdClient *c, size_t i)
{
        return c && i < c->n_endpoints ? c->endpoints[i] : NULL;
}

int etcd_endpoint_check(EtcdClient *c, size_t i, const char *key, unsigned timeout_ms, Diag *d)
{
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_(freep) char *text = NULL, *url = NULL, *body = NULL;
        EtcdRange rg = {};
        RangeCall rc = { .key = key, .ret = &rg };
        size_t size = 0;
        long status = 0;
        int64_t rev = 0;
        RpcSent sent;
        int r;

        if (!c || i >= c->n_endpoints)
                return diag_fail(d, -EINVAL, "etcd", -1, "no such etcd endpoint");
        if (!key_arg_ok(key))
                return diag_fail(d, -EINVAL, "etcd-key", -1, "key outside " ETCD_KEY_PREFIX);
        RpcMtlsConfig tls = { .cert = c->cert,
                              .key = c->key,
                              .ca = c->ca,
                              .connect_timeout_ms = MIN(c->connect_timeout_ms, timeout_ms),
                              .total_timeout_ms = timeout_ms,
                              .max_response = ETCD_RESPONSE_MAX };
        r = range_request(key, NULL, 0, &req);
        if (r >= 0)
                r = json_dump_compact(req, &text);
        if (r >= 0 && asprintf(&url, "%s/v3/kv/range", c->endpoints[i]) < 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        /* Once, at this endpoint alone: a linearizable read is answered only by a member that is
         * up and part of a quorum. */
        r = rpc_mtls_post(&tls, url, text, &body, &size, &status, &sent, d);
        if (r < 0)
                return r;
        if (status != 200)
                return etcd_parse_error(body, size, status, d);
        r = range_parse(&rc, body, size, etcd_client_revision(c), &rev, d);
        etcd_range_done(&rg);
        if (r < 0)
                return r;
        client_saw(c, rev, i);
        return 0;
}

static int put_parse(void *userdata, const void *data, size_t size, int64_t min_revision,
                     int64_t *ret_revision, Diag *d)
{
        int r = etcd_parse_put(data, size, min_revision, ret_revision, d);

        if (r >= 0 && userdata)
                *(int64_t *) userdata = *ret_revision;
        return r;
}

int etcd_put(EtcdClient *c, const char *key, const void *value, size_t size, int64_t *ret_revision,
             Diag *d)
{
        _cleanup_(json_decrefp) json_t *req = json_object();
        _cleanup_(freep) char *text = NULL;
        int r;

        if (!key_arg_ok(key) || size > ETCD_VALUE_MAX)
                return diag_fail(d, -EINVAL, "etcd-key", -1,
                                 "key outside " ETCD_KEY_PREFIX " or value too large");
        if (!req)
                return -ENOMEM;
        r = set_b64(req, "key", key, strlen(key));
        if (r >= 0)
                r = set_b64(req, "value", value, size);
        if (r >= 0)
                r = json_dump_compact(req, &text);
        if (r < 0)
                return r;
        return call(c, "/v3/kv/put", text, false, put_parse, ret_revision, d);
}

static const char *const compare_targets[_ETCD_COMPARE_TARGET_MAX] = {
        [ETCD_COMPARE_CREATE] = "CREATE",
        [ETCD_COMPARE_MOD] = "MOD",
        [ETCD_COMPARE_VERSION] = "VERSION",
        [ETCD_COMPARE_VALUE] = "VALUE",
};
static const char *const compare_fields[_ETCD_COMPARE_TARGET_MAX] = {
        [ETCD_COMPARE_CREATE] = "create_revision",
        [ETCD_COMPARE_MOD] = "mod_revision",
        [ETCD_COMPARE_VERSION] = "version",
        [ETCD_COMPARE_VALUE] = "value",
};
static const char *const compare_results[_ETCD_COMPARE_RESULT_MAX] = {
        [ETCD_EQUAL] = "EQUAL",
        [ETCD_NOT_EQUAL] = "NOT_EQUAL",
        [ETCD_GREATER] = "GREATER",
        [ETCD_LESS] = "LESS",
};

static int ops_json(const EtcdOp *ops, size_t n, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *a = json_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *inner = NULL, *o;
                const char *name;
                int r;

                if (!key_arg_ok(ops[i].key) || ops[i].type >= _ETCD_OP_TYPE_MAX ||
                    ops[i].value_size > ETCD_VALUE_MAX)
                        return -EINVAL;
                if (ops[i].type == ETCD_OP_RANGE) {
                        r = range_request(ops[i].key, ops[i].range_end, 0, &inner);
                        name = "request_range";
                } else {
                        inner = json_object();
                        r = inner ? set_b64(inner, "key", ops[i].key, strlen(ops[i].key)) : -ENOMEM;
                        if (r >= 0 && ops[i].type == ETCD_OP_PUT)
                                r = set_b64(inner, "value", ops[i].value ?: "", ops[i].value_size);
                        name = ops[i].type == ETCD_OP_PUT ? "request_put" : "request_delete_range";
                }
                if (r < 0) {
                        json_decref(inner);
                        return r;
                }
                o = json_pack("{s:o}", name, inner);
                if (!o || json_array_append_new(a, o) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

typedef struct TxnCall {
        const EtcdOp *success, *failure;
        size_t n_success, n_failure;
        EtcdTxnResult *ret;
} TxnCall;

static int txn_parse(void *userdata, const void *data, size_t size, int64_t min_revision,
                     int64_t *ret_revision, Diag *d)
{
        TxnCall *tc = userdata;
        int r = etcd_parse_txn(data, size, tc->success, tc->n_success, tc->failure, tc->n_failure,
                               min_revision, tc->ret, d);

        if (r >= 0)
                *ret_revision = tc->ret->revision;
        return r;
}

int etcd_txn(EtcdClient *c, const EtcdCompare *cmp, size_t n_cmp, const EtcdOp *success,
             size_t n_success, const EtcdOp *failure, size_t n_failure, EtcdTxnResult *ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *req = NULL, *compares = json_array();
        _cleanup_(freep) char *text = NULL;
        json_t *s = NULL, *f = NULL;
        TxnCall tc = { success, failure, n_success, n_failure, ret };
        int r;

        if (!c)
                return diag_fail(d, -ENOTCONN, "etcd", -1, "no etcd client (no --etcd-endpoints)");
        if (!compares)
                return -ENOMEM;
        if (n_success > ETCD_TXN_OPS_MAX || n_failure > ETCD_TXN_OPS_MAX ||
            n_cmp > ETCD_TXN_OPS_MAX)
                return diag_fail(d, -EINVAL, "etcd-txn", -1, "too many operations");
        for (size_t i = 0; i < n_cmp; i++) {
                json_t *o;
                char num[24];

                if (!key_arg_ok(cmp[i].key) || cmp[i].target >= _ETCD_COMPARE_TARGET_MAX ||
                    cmp[i].result >= _ETCD_COMPARE_RESULT_MAX || cmp[i].number < 0)
                        return diag_fail(d, -EINVAL, "etcd-key", -1,
                                         "a compare outside " ETCD_KEY_PREFIX " or malformed");
                o = json_object();
                if (!o || json_array_append_new(compares, o) < 0)
                        return -ENOMEM;
                r = set_b64(o, "key", cmp[i].key, strlen(cmp[i].key));
                if (r >= 0 && json_object_set_new(o, "target",
                                                  json_string(compare_targets[cmp[i].target])) < 0)
                        r = -ENOMEM;
                if (r >= 0 && json_object_set_new(o, "result",
                                                  json_string(compare_results[cmp[i].result])) < 0)
                        r = -ENOMEM;
                if (r >= 0 && cmp[i].target == ETCD_COMPARE_VALUE)
                        r = set_b64(o, "value", cmp[i].value ?: "", cmp[i].value_size);
                else if (r >= 0) {
                        (void) snprintf(num, sizeof(num), "%" PRId64, cmp[i].number);
                        r = json_object_set_new(o, compare_fields[cmp[i].target],
                                                json_string(num)) < 0
                                    ? -ENOMEM
                                    : 0;
                }
                if (r < 0)
                        return r;
        }
        r = ops_json(success, n_success, &s);
        if (r >= 0)
                r = ops_json(failure, n_failure, &f);
        if (r < 0) {
                json_decref(s);
                return r == -EINVAL
                               ? diag_fail(d, r, "etcd-key", -1,
                                           "an operation outside " ETCD_KEY_PREFIX " or malformed")
                               : r;
        }
        req = json_pack("{s:O,s:o,s:o}", "compare", compares, "success", s, "failure", f);
        if (!req)
                return -ENOMEM;
        r = json_dump_compact(req, &text);
        if (r < 0)
                return r;
        return call(c, "/v3/kv/txn", text, false, txn_parse, &tc, d);
}
