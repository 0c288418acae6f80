/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A cached GET of self-authenticating data from a vendor's certificate service (AMD KDS, Intel
 * PCS/PCCS): an on-disk cache so a verifier fetches each item at most once (a join never waits on
 * the vendor once warm), retries on 429 / 5xx / transport errors with a doubling backoff or the
 * server's Retry-After, and an offline mode that uses the cache only. What is fetched must be
 * verified by the caller exactly as a file given by hand: the cache adds no trust and needs no
 * integrity of its own. Entries are written atomically; response headers a caller keeps (issuer
 * chains) are stored next to the body, before it, so a body present means a whole entry.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

typedef struct RpcCacheConfig {
        const char *service;   /* "snp-kds", "tdx-pcs": names the check in errors and logs */
        const char *cache_dir; /* NULL: no cache */
        bool offline;          /* cache only, never the network */
        unsigned timeout_ms;
        unsigned retries;         /* on HTTP 429 / 5xx / transport errors */
        unsigned backoff_ms;      /* first wait; doubles (Retry-After, if sent, wins) */
        unsigned retry_after_max; /* seconds: a longer Retry-After is reported, not waited */
        size_t max_size;          /* of a body */
        unsigned *requests;       /* counts network requests (atomically); may be NULL */
        const char *offline_hint; /* next step when offline and not cached */
        /* CLOCK_MONOTONIC ms (rpc_cache_now_ms()): no request or wait goes past it, each is cut
         * to it (a verifier on a join's path never waits on a slow service unbounded); 0: none */
        uint64_t deadline_ms;
} RpcCacheConfig;

uint64_t rpc_cache_now_ms(void);

/* A response header kept with the body: stored in the cache as file rel (raw value). */
typedef struct RpcCacheHeader {
        const char *name;
        const char *alt_name; /* accepted instead of name; may be NULL */
        const char *rel;
        uint8_t *value; /* out: NUL-terminated */
        size_t size;
} RpcCacheHeader;

/* The Retry-After delay in seconds (delta-seconds form only), -EINVAL otherwise. */
int rpc_retry_after_parse(const char *value, unsigned *ret);

/* The cached entry rel (and its headers): 0, -ENOENT if not (wholly) cached. */
int rpc_cache_read(const RpcCacheConfig *c, const char *rel, RpcCacheHeader *h, size_t n_h,
                   uint8_t **ret, size_t *ret_size);
/* Fetched from url (with retries), then cached as rel: every header in h required. */
int rpc_cache_fetch(const RpcCacheConfig *c, const char *url, const char *rel, RpcCacheHeader *h,
                    size_t n_h, uint8_t **ret, size_t *ret_size, Diag *d);
/* Cached, else (unless offline) fetched and cached. */
int rpc_cache_get(const RpcCacheConfig *c, const char *url, const char *rel, RpcCacheHeader *h,
                  size_t n_h, uint8_t **ret, size_t *ret_size, Diag *d);
/* Stores data as rel with its headers (each h[i].value, raw) as a fetch would have: for a source
 * that is not a service (a simulator's collateral). 0 or -errno. */
int rpc_cache_put(const RpcCacheConfig *c, const char *rel, const RpcCacheHeader *h, size_t n_h,
                  const void *data, size_t size);
void rpc_cache_headers_free(RpcCacheHeader *h, size_t n_h);
