/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cloister/fileio.h"
#include "cloister/log.h"
#include "cloister/rpc-cache.h"
#include "cloister/rpc.h"

#define CACHE_HEADERS_MAX 4

uint64_t rpc_cache_now_ms(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

int rpc_retry_after_parse(const char *value, unsigned *ret)
{
        unsigned long v = 0;

        /* RFC 9110: delta-seconds (an HTTP date is not honoured: the backoff applies). */
        if (!value || !*value || strlen(value) > 9)
                return -EINVAL;
        for (const char *p = value; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (*p - '0');
        }
        *ret = (unsigned) v;
        return 0;
}

void rpc_cache_headers_free(RpcCacheHeader *h, size_t n_h)
{
        for (size_t i = 0; h && i < n_h; i++) {
                free(h[i].value);
                h[i].value = NULL;
                h[i].size = 0;
        }
}

static int cache_path(const RpcCacheConfig *c, const char *rel, char **ret)
{
        return asprintf(ret, "%s/%s", c->cache_dir, rel) < 0 ? -ENOMEM : 0;
}

int rpc_cache_read(const RpcCacheConfig *c, const char *rel, RpcCacheHeader *h, size_t n_h,
                   uint8_t **ret, size_t *ret_size)
{
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!c->cache_dir)
                return -ENOENT;
        if ((r = cache_path(c, rel, &path)) < 0)
                return r;
        r = read_full_file(path, c->max_size, ret, ret_size);
        if (r < 0) {
                if (r != -ENOENT)
                        log_debug("%s: cache %s unreadable: %s", c->service, path, strerror(-r));
                return -ENOENT;
        }
        for (size_t i = 0; i < n_h; i++) {
                _cleanup_(freep) char *hp = NULL;
                if ((r = cache_path(c, h[i].rel, &hp)) < 0 ||
                    (r = read_full_file(hp, RPC_HTTP_HEADER_MAX, &h[i].value, &h[i].size)) < 0) {
                        rpc_cache_headers_free(h, n_h);
                        free(*ret);
                        *ret = NULL;
                        return r == -ENOMEM ? r : -ENOENT;
                }
        }
        return 0;
}

static int cache_write(const RpcCacheConfig *c, const char *rel, const void *data, size_t size)
{
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!c->cache_dir)
                return -EINVAL;
        if ((r = cache_path(c, rel, &path)) < 0)
                return r;
        /* mkdir -p of every parent, the cache directory's own parents included. */
        for (char *s = path + 1; (s = strchr(s, '/')); s++) {
                *s = 0;
                (void) mkdir(path, 0755);
                *s = '/';
        }
        r = write_file_atomic(path, data, size, 0644, 0);
        if (r < 0)
                log_debug("%s: cannot cache %s: %s", c->service, path, strerror(-r));
        return r;
}

static void cache_store(const RpcCacheConfig *c, const char *rel, const void *data, size_t size)
{
        /* A failure to cache is not fatal. */
        (void) cache_write(c, rel, data, size);
}

int rpc_cache_put(const RpcCacheConfig *c, const char *rel, const RpcCacheHeader *h, size_t n_h,
                  const void *data, size_t size)
{
        int r;

        /* Headers first: a body present means a whole entry, as after a fetch. */
        for (size_t i = 0; i < n_h; i++)
                if ((r = cache_write(c, h[i].rel, h[i].value, h[i].size)) < 0)
                        return r;
        return cache_write(c, rel, data, size);
}

static const char *status_text(long status)
{
        switch (status) {
        case 404:
                return "HTTP 404 (not known to the service)";
        case 429:
                return "HTTP 429 (rate limited; retry later)";
        default:
                return status >= 500 ? "HTTP server error (the service is unavailable; retry "
                                       "later)"
                                     : "HTTP error";
        }
}

int rpc_cache_fetch(const RpcCacheConfig *c, const char *url, const char *rel, RpcCacheHeader *h,
                    size_t n_h, uint8_t **ret, size_t *ret_size, Diag *d)
{
        RpcHttpHeader want[1 + 2 * CACHE_HEADERS_MAX];
        size_t n_want = 0;

        if (n_h > CACHE_HEADERS_MAX)
                return -EINVAL;
        want[n_want++] = (RpcHttpHeader){ .name = "Retry-After" };
        for (size_t i = 0; i < n_h; i++) {
                want[n_want++] = (RpcHttpHeader){ .name = h[i].name };
                if (h[i].alt_name)
                        want[n_want++] = (RpcHttpHeader){ .name = h[i].alt_name };
        }
        for (unsigned attempt = 0;; attempt++) {
                uint8_t *data = NULL;
                size_t size = 0;
                long status = 0;
                unsigned wait_s = 0;
                bool has_wait;
                unsigned timeout_ms = c->timeout_ms;
                Diag sub;
                int r;

                diag_clear(&sub);
                if (c->deadline_ms) {
                        uint64_t now = rpc_cache_now_ms();
                        if (now >= c->deadline_ms)
                                return diag_fail(d, -ETIMEDOUT, c->service, -1,
                                                 "%s: not tried: the time allowed for this "
                                                 "lookup ran out; retry later or check the URL",
                                                 url);
                        timeout_ms = (unsigned) MIN((uint64_t) timeout_ms, c->deadline_ms - now);
                }
                r = rpc_http_get_headers(url, c->max_size, timeout_ms, want, n_want, &data, &size,
                                         &status, &sub);
                if (c->requests)
                        (void) __atomic_fetch_add(c->requests, 1, __ATOMIC_RELAXED);
                if (r == -EMSGSIZE || r == -EBADMSG || r == -ENOMEM) {
                        rpc_http_headers_free(want, n_want);
                        *d = sub;
                        return r;
                }
                if (r >= 0 && status == 200 && size > 0) {
                        size_t k = 1;
                        for (size_t i = 0; i < n_h; i++, k++) {
                                char *v = want[k].value;
                                if (h[i].alt_name && !v)
                                        v = want[k + 1].value;
                                if (h[i].alt_name)
                                        k++;
                                if (!v || !*v) {
                                        rpc_http_headers_free(want, n_want);
                                        rpc_cache_headers_free(h, n_h);
                                        free(data);
                                        return diag_fail(d, -EBADMSG, c->service, -1,
                                                         "%s: the answer lacks the %s header: "
                                                         "not a PCS/PCCS of this API version? "
                                                         "check the URL",
                                                         url, h[i].name);
                                }
                                h[i].value = (uint8_t *) strdup(v);
                                if (!h[i].value) {
                                        rpc_http_headers_free(want, n_want);
                                        rpc_cache_headers_free(h, n_h);
                                        free(data);
                                        return -ENOMEM;
                                }
                                h[i].size = strlen(v);
                        }
                        rpc_http_headers_free(want, n_want);
                        for (size_t i = 0; i < n_h; i++)
                                cache_store(c, h[i].rel, h[i].value, h[i].size);
                        cache_store(c, rel, data, size);
                        *ret = data;
                        *ret_size = size;
                        return 0;
                }
                free(data);
                has_wait = rpc_retry_after_parse(want[0].value, &wait_s) >= 0;
                rpc_http_headers_free(want, n_want);
                /* 404 and other 4xx are final; 429 (rate limit), 5xx and transport errors are
                 * retried with a doubling backoff, or after the server's Retry-After. */
                bool retry = r < 0 || status == 429 || status >= 500;
                if (retry && has_wait && wait_s > c->retry_after_max)
                        return diag_fail(d, -EBUSY, c->service, -1,
                                         "%s: %s; the service asks to wait %u s: try again then",
                                         url, status_text(status), wait_s);
                unsigned ms = has_wait ? wait_s * 1000U : c->backoff_ms << MIN(attempt, 4U);
                /* No retry that would end past the deadline: reported now, not waited for. */
                bool late = c->deadline_ms && rpc_cache_now_ms() + ms >= c->deadline_ms;
                if (!retry || attempt >= c->retries || late)
                        /* A transport failure's message names the URL already. */
                        return diag_fail(d, r < 0 ? r : -ENOENT, c->service, -1, "%s%s%s%s",
                                         r < 0 ? "" : url, r < 0 ? "" : ": ",
                                         r < 0 ? sub.message : status_text(status),
                                         !retry ? ""
                                         : late ? " (no time left to retry within this "
                                                  "lookup's bound; retry later)"
                                                : " (after retries)");
                struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
                log_debug("%s: %s: %s, retrying in %u ms", c->service, url,
                          status == 429 ? "rate limited" : "failed", ms);
                (void) nanosleep(&ts, NULL);
        }
}

int rpc_cache_get(const RpcCacheConfig *c, const char *url, const char *rel, RpcCacheHeader *h,
                  size_t n_h, uint8_t **ret, size_t *ret_size, Diag *d)
{
        int r = rpc_cache_read(c, rel, h, n_h, ret, ret_size);

        if (r != -ENOENT)
                return r;
        if (c->offline)
                return diag_fail(d, -ENOENT, c->service, -1,
                                 "offline and %s is not in the cache%s%s: fetch it once online "
                                 "or %s",
                                 rel, c->cache_dir ? " " : "", c->cache_dir ?: "",
                                 c->offline_hint ?: "give the file");
        return rpc_cache_fetch(c, url, rel, h, n_h, ret, ret_size, d);
}
