/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/log.h"
#include "cloister/rpc.h"
#include "cloister/snp-kds.h"

#define KDS_RESPONSE_MAX (64U * 1024U)

static unsigned requests;
static pthread_mutex_t requests_lock = PTHREAD_MUTEX_INITIALIZER;

unsigned snp_kds_requests(void)
{
        unsigned n;
        (void) pthread_mutex_lock(&requests_lock);
        n = requests;
        (void) pthread_mutex_unlock(&requests_lock);
        return n;
}

void snp_kds_config_defaults(SnpKdsConfig *c)
{
        *c = (SnpKdsConfig){
                .base_url = SNP_KDS_URL_DEFAULT,
                .timeout_ms = 20000,
                .retries = 3,
                .backoff_ms = 10000,
        };
}

static int fetch(const SnpKdsConfig *c, const char *url, uint8_t **ret, size_t *ret_size, Diag *d)
{
        for (unsigned attempt = 0;; attempt++) {
                uint8_t *data = NULL;
                size_t size = 0;
                long status = 0;
                Diag sub;
                int r;

                diag_clear(&sub);
                r = rpc_http_get(url, KDS_RESPONSE_MAX, c->timeout_ms, &data, &size, &status, &sub);
                (void) pthread_mutex_lock(&requests_lock);
                requests++;
                (void) pthread_mutex_unlock(&requests_lock);
                if (r == -EMSGSIZE) {
                        *d = sub;
                        return r;
                }
                if (r >= 0 && status == 200 && size > 0) {
                        *ret = data;
                        *ret_size = size;
                        return 0;
                }
                free(data);
                /* 404 is final (no such chip/TCB); 429 (rate limit), 5xx and transport errors
                 * are retried with a doubling backoff. */
                bool retry = r < 0 || status == 429 || status >= 500;
                if (!retry || attempt >= c->retries)
                        return diag_fail(d, r < 0 ? r : -ENOENT, "snp-kds", -1, "%s: %s", url,
                                         r < 0           ? sub.message
                                         : status == 404 ? "HTTP 404 (unknown chip ID or TCB)"
                                         : status == 429 ? "HTTP 429 (rate limited; retry later)"
                                                         : "HTTP error");
                unsigned ms = c->backoff_ms << MIN(attempt, 4U);
                struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
                log_debug("snp-kds: %s: %s, retrying in %u ms", url,
                          status == 429 ? "rate limited" : "failed", ms);
                (void) nanosleep(&ts, NULL);
        }
}

static int cached_or_fetch(const SnpKdsConfig *c, const char *rel, const char *url, uint8_t **ret,
                           size_t *ret_size, Diag *d)
{
        _cleanup_(freep) char *path = NULL, *dir = NULL;
        int r;

        if (c->cache_dir) {
                if (asprintf(&path, "%s/%s", c->cache_dir, rel) < 0)
                        return -ENOMEM;
                r = read_full_file(path, KDS_RESPONSE_MAX, ret, ret_size);
                if (r >= 0)
                        return 0;
                if (r != -ENOENT)
                        log_debug("snp-kds: cache %s unreadable: %s", path, strerror(-r));
        }
        if (c->offline)
                return diag_fail(d, -ENOENT, "snp-kds", -1,
                                 "offline and %s is not in the cache%s%s: fetch it once online or "
                                 "pass the certificate",
                                 rel, c->cache_dir ? " " : "", c->cache_dir ?: "");
        r = fetch(c, url, ret, ret_size, d);
        if (r < 0 || !path)
                return r;
        /* Cache: <dir>/<product>/... created as needed; a failure to cache is not fatal. */
        dir = strdup(path);
        if (dir) {
                /* mkdir -p of every parent, the cache directory's own parents included. */
                for (char *s = dir + 1; (s = strchr(s, '/')); s++) {
                        *s = 0;
                        (void) mkdir(dir, 0755);
                        *s = '/';
                }
        }
        if (write_file_atomic(path, *ret, *ret_size, 0644, 0) < 0)
                log_debug("snp-kds: cannot cache %s", path);
        return 0;
}

int snp_kds_get_vcek(const SnpKdsConfig *c, SnpProduct product, const SnpReport *report,
                     uint8_t **ret, size_t *ret_size, Diag *d)
{
        _cleanup_(freep) char *url = NULL, *rel = NULL;
        const char *p = snp_product_to_string(product);
        SnpTcb t = snp_tcb_decode(report->reported_tcb_raw, product);
        char hwid[129];
        int n;

        if (!p)
                return -EINVAL;
        if (report->mask_chip_key || report->signing_key != 0)
                return diag_fail(
                        d, -EINVAL, "snp-kds", -1,
                        "only VCEK-signed reports with an unmasked chip ID can be fetched");
        /* KDS: /vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=.. (Turin: the
         * hwid is the first 8 bytes of CHIP_ID and fmcSPL is added). */
        hex_encode_buf(report->chip_id, product == SNP_PRODUCT_TURIN ? 8 : 64, hwid, sizeof(hwid));
        if (product == SNP_PRODUCT_TURIN)
                n = asprintf(&url,
                             "%s/vcek/v1/%s/%s?fmcSPL=%u&blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
                             c->base_url, p, hwid, t.fmc, t.bootloader, t.tee, t.snp, t.microcode);
        else
                n = asprintf(&url, "%s/vcek/v1/%s/%s?blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
                             c->base_url, p, hwid, t.bootloader, t.tee, t.snp, t.microcode);
        if (n < 0 || asprintf(&rel, "%s/vcek-%s-%016llx.der", p, hwid,
                              (unsigned long long) report->reported_tcb_raw) < 0)
                return -ENOMEM;
        return cached_or_fetch(c, rel, url, ret, ret_size, d);
}

int snp_kds_get_chain(const SnpKdsConfig *c, SnpProduct product, bool vlek, uint8_t **ret,
                      size_t *ret_size, Diag *d)
{
        _cleanup_(freep) char *url = NULL, *rel = NULL;
        const char *p = snp_product_to_string(product), *kind = vlek ? "vlek" : "vcek";

        if (!p)
                return -EINVAL;
        if (asprintf(&url, "%s/%s/v1/%s/cert_chain", c->base_url, kind, p) < 0 ||
            asprintf(&rel, "%s/%s-cert_chain.pem", p, kind) < 0)
                return -ENOMEM;
        return cached_or_fetch(c, rel, url, ret, ret_size, d);
}
