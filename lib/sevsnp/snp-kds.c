/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/log.h"
#include "cloister/rpc-cache.h"
#include "cloister/snp-kds.h"

#define KDS_RESPONSE_MAX (64U * 1024U)

static unsigned requests;

unsigned snp_kds_requests(void)
{
        return __atomic_load_n(&requests, __ATOMIC_RELAXED);
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

static int cached_or_fetch(const SnpKdsConfig *c, const char *rel, const char *url, uint8_t **ret,
                           size_t *ret_size, Diag *d)
{
        /* The shared vendor-service cache (lib/rpc/rpc-cache.c); KDS allows ~1 request per 10 s. */
        RpcCacheConfig rc = {
                .service = "snp-kds",
                .cache_dir = c->cache_dir,
                .offline = c->offline,
                .timeout_ms = c->timeout_ms,
                .retries = c->retries,
                .backoff_ms = c->backoff_ms,
                .retry_after_max = 120,
                .max_size = KDS_RESPONSE_MAX,
                .requests = &requests,
                .offline_hint = "pass the certificate",
        };
        return rpc_cache_get(&rc, url, rel, NULL, 0, ret, ret_size, d);
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
