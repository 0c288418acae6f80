/* SPDX-License-Identifier: Apache-2.0 */
/* etcd's JSON gateway answers (lib/etcd/etcd-response.c): the range, put, transaction and error
 * parsers on the same bytes, with a range, limit and transaction shape taken from the first
 * byte. Whatever they accept must hold what the parser promises: keys in the range asked for,
 * ascending, under the prefix, revisions in order. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_range(const EtcdRange *r, const char *key, const char *end)
{
        for (size_t i = 0; i < r->n_kvs; i++) {
                const EtcdKv *kv = &r->kvs[i];
                if (strncmp(kv->key, ETCD_KEY_PREFIX, strlen(ETCD_KEY_PREFIX)) != 0)
                        abort();
                if (end ? strcmp(kv->key, key) < 0 || strcmp(kv->key, end) >= 0
                        : strcmp(kv->key, key) != 0)
                        abort();
                if (i > 0 && strcmp(r->kvs[i - 1].key, kv->key) >= 0)
                        abort();
                if (kv->create_revision <= 0 || kv->mod_revision < kv->create_revision ||
                    kv->mod_revision > r->revision)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const EtcdOp ops[] = {
                { .type = ETCD_OP_RANGE, .key = "/cloister/v1/a" },
                { .type = ETCD_OP_PUT, .key = "/cloister/v1/b", .value = "v", .value_size = 1 },
                { .type = ETCD_OP_RANGE, .key = "/cloister/v1/", .range_end = "/cloister/v10" },
                { .type = ETCD_OP_DELETE, .key = "/cloister/v1/c" },
        };
        uint8_t shape = size > 0 ? data[0] : 0;
        const char *key = shape & 1 ? "/cloister/v1/" : "/cloister/v1/a";
        const char *end = shape & 1 ? "/cloister/v10" : NULL;
        size_t limit = (shape >> 1) & 3;
        EtcdRange r = {};
        EtcdTxnResult t = {};
        int64_t rev = 0;
        Diag d;

        if (size > 0) {
                data++;
                size--;
        }
        diag_clear(&d);
        if (etcd_parse_range(data, size, key, end, limit, shape >> 6, &r, &d) >= 0) {
                check_range(&r, key, end);
                if (limit > 0 && r.n_kvs > limit)
                        abort();
                etcd_range_done(&r);
        }
        diag_clear(&d);
        (void) etcd_parse_put(data, size, 0, &rev, &d);
        diag_clear(&d);
        if (etcd_parse_txn(data, size, ops, 1 + (shape >> 3) % 4, ops + 2, 2, 0, &t, &d) >= 0) {
                const EtcdOp *branch = t.succeeded ? ops : ops + 2;
                for (size_t i = 0; i < t.n_ops; i++)
                        if (branch[i].type == ETCD_OP_RANGE)
                                check_range(&t.ranges[i], branch[i].key, branch[i].range_end);
                etcd_txn_result_done(&t);
        }
        diag_clear(&d);
        (void) etcd_parse_error(data, size, 500, &d);
        return 0;
}
