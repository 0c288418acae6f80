/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A small etcd v3 client over etcd's JSON gateway (grpc-gateway: POST /v3/kv/range,
 * /v3/kv/put, /v3/kv/txn; bytes as base64, 64-bit integers as decimal strings), with mutual TLS
 * (a client certificate, the cluster's etcd CA) through lib/rpc's rpc_mtls_post(). The join
 * services keep the cluster's one membership and audit chain here (docs/membership.md).
 *
 * Every key lives under ETCD_KEY_PREFIX: a request for another key is refused (-EINVAL) before
 * anything is sent, and an answer naming another key is refused as malformed.
 *
 * etcd's answers are untrusted bytes: they are bounded (ETCD_RESPONSE_MAX), parsed through the
 * json module's typed getters, and checked for what etcd guarantees: a header revision that
 * never goes back (linearizable reads from any member), keys inside the range asked for, in
 * strictly ascending order, no more than the limit, create_revision <= mod_revision <= the
 * header's revision, one response per operation of the branch the transaction took, each of
 * the operation's type. What breaks any of it is -EBADMSG (malformed) or -EPROTO (impossible
 * for a correct etcd), with the check named in the Diag.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define ETCD_KEY_PREFIX "/cloister/v1/"
/* Limits of the parser, declared next to it (etcd-response.c). */
#define ETCD_RESPONSE_MAX  (4U * 1024U * 1024U) /* bytes of one HTTP answer */
#define ETCD_KEY_MAX       512U                 /* bytes of a key, decoded */
#define ETCD_VALUE_MAX     (64U * 1024U)        /* bytes of a value, decoded */
#define ETCD_RANGE_KVS_MAX 100000U              /* key-values in one range answer */
#define ETCD_TXN_OPS_MAX   16U                  /* operations in one branch of a transaction */
#define ETCD_ENDPOINTS_MAX 16U

typedef struct EtcdClient EtcdClient;

typedef struct EtcdConfig {
        const char *endpoints; /* comma-separated https://HOST:PORT */
        const char *cert;      /* client certificate (PEM) */
        const char *key;       /* its private key (PEM): a credential, see docs/membership.md */
        const char *ca;        /* the etcd cluster's CA (PEM) */
        unsigned connect_timeout_ms; /* 0: 2000 */
        unsigned total_timeout_ms;   /* per attempt; 0: 5000 */
        unsigned rounds;             /* times every endpoint is tried before giving up; 0: 2 */
} EtcdConfig;

/* Checks the configuration (endpoints well-formed, files readable); sends nothing. */
int etcd_client_new(const EtcdConfig *config, EtcdClient **ret, Diag *d);
EtcdClient *etcd_client_free(EtcdClient *c);
static inline void etcd_client_freep(EtcdClient **c)
{
        etcd_client_free(*c);
}

typedef struct EtcdKv {
        char *key; /* NUL-terminated (keys with a NUL byte are refused) */
        uint8_t *value;
        size_t value_size;
        int64_t create_revision, mod_revision, version;
} EtcdKv;

typedef struct EtcdRange {
        int64_t revision; /* the store's revision when the range was read */
        EtcdKv *kvs;
        size_t n_kvs;
        int64_t count; /* keys in the range (more than n_kvs when limited) */
        bool more;
} EtcdRange;

void etcd_range_done(EtcdRange *r);

typedef enum EtcdCompareTarget {
        ETCD_COMPARE_CREATE, /* create_revision: 0 for a key that does not exist */
        ETCD_COMPARE_MOD,    /* mod_revision */
        ETCD_COMPARE_VERSION,
        ETCD_COMPARE_VALUE,
        _ETCD_COMPARE_TARGET_MAX,
} EtcdCompareTarget;

typedef enum EtcdCompareResult {
        ETCD_EQUAL,
        ETCD_NOT_EQUAL,
        ETCD_GREATER,
        ETCD_LESS,
        _ETCD_COMPARE_RESULT_MAX,
} EtcdCompareResult;

typedef struct EtcdCompare {
        const char *key;
        EtcdCompareTarget target;
        EtcdCompareResult result;
        int64_t number;    /* CREATE, MOD, VERSION */
        const void *value; /* VALUE */
        size_t value_size;
} EtcdCompare;

typedef enum EtcdOpType {
        ETCD_OP_RANGE,  /* key, or [key, range_end) if range_end */
        ETCD_OP_PUT,    /* key = value */
        ETCD_OP_DELETE, /* key */
        _ETCD_OP_TYPE_MAX,
} EtcdOpType;

typedef struct EtcdOp {
        EtcdOpType type;
        const char *key;
        const char *range_end; /* RANGE only; NULL: the key alone */
        const void *value;     /* PUT */
        size_t value_size;
} EtcdOp;

typedef struct EtcdTxnResult {
        bool succeeded;
        int64_t revision;
        /* One per operation of the branch taken: ranges[i] is filled for a RANGE op, empty
         * otherwise. */
        EtcdRange ranges[ETCD_TXN_OPS_MAX];
        size_t n_ops;
} EtcdTxnResult;

void etcd_txn_result_done(EtcdTxnResult *t);

/* The key after every key that starts with prefix (etcd's range_end for a prefix); NULL on
 * -ENOMEM or a prefix of 0xff bytes only. */
char *etcd_prefix_end(const char *prefix);

/* Reads key (range_end NULL) or [key, range_end), ascending by key, at most limit (0: no
 * limit) key-values. Linearizable. */
int etcd_range(EtcdClient *c, const char *key, const char *range_end, size_t limit, EtcdRange *ret,
               Diag *d);
int etcd_put(EtcdClient *c, const char *key, const void *value, size_t size, int64_t *ret_revision,
             Diag *d);
/* If every compare holds, the success ops, else the failure ops, atomically. */
int etcd_txn(EtcdClient *c, const EtcdCompare *cmp, size_t n_cmp, const EtcdOp *success,
             size_t n_success, const EtcdOp *failure, size_t n_failure, EtcdTxnResult *ret,
             Diag *d);
/* The endpoints as configured, in order. */
size_t etcd_client_n_endpoints(const EtcdClient *c);
const char *etcd_client_endpoint(const EtcdClient *c, size_t i);
/* Health of endpoint i as this client sees it: one linearizable read of key there alone, once,
 * within timeout_ms; 0 if it answered (the member is up and part of a quorum), -errno (d says
 * why: no connection, a timeout, etcd's error) otherwise. The answer is checked as any other. */
int etcd_endpoint_check(EtcdClient *c, size_t i, const char *key, unsigned timeout_ms, Diag *d);
/* The highest revision this client has seen in an answer. */
int64_t etcd_client_revision(const EtcdClient *c);

/*
 * The parsers, on their own (tests/fuzz/fuzz-etcd-response.c). min_revision: an answer older
 * than this is refused (-EPROTO). A range answer is checked against the range asked for
 * (range_end NULL: exactly key) and the limit (0: none).
 */
int etcd_parse_range(const void *data, size_t size, const char *key, const char *range_end,
                     size_t limit, int64_t min_revision, EtcdRange *ret, Diag *d);
int etcd_parse_put(const void *data, size_t size, int64_t min_revision, int64_t *ret_revision,
                   Diag *d);
int etcd_parse_txn(const void *data, size_t size, const EtcdOp *success, size_t n_success,
                   const EtcdOp *failure, size_t n_failure, int64_t min_revision,
                   EtcdTxnResult *ret, Diag *d);
/* An error answer ({"error", "code", "message"}): its message, in d, for the HTTP status. */
int etcd_parse_error(const void *data, size_t size, long status, Diag *d);
