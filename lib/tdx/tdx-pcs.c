/* SPDX-License-Identifier: Apache-2.0 */
/* TDX collateral from Intel PCS v4 or a PCCS, through the shared vendor-service cache
 * (lib/rpc/rpc-cache.c, also used for AMD's KDS). Fetched bytes get no trust: the caller verifies
 * them exactly as files. */
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "cloister/hex.h"
#include "cloister/log.h"
#include "cloister/rpc-cache.h"
#include "cloister/rpc.h"
#include "tdx-internal.h"

#define PCS_TDX_SUFFIX "/tdx/certification/v4"

bool tdx_pcs_url_ok(const char *url)
{
        size_t n = strlen(url), k = strlen(PCS_TDX_SUFFIX);

        return n >= k && strcmp(url + n - k, PCS_TDX_SUFFIX) == 0;
}

static unsigned requests;

unsigned tdx_pcs_requests(void)
{
        return __atomic_load_n(&requests, __ATOMIC_RELAXED);
}

void tdx_pcs_config_defaults(TdxPcsConfig *c)
{
        *c = (TdxPcsConfig){
                .base_url = TDX_PCS_URL_DEFAULT,
                .timeout_ms = 20000,
                .retries = 3,
                .backoff_ms = 2000,
        };
}

int tdx_url_decode(const uint8_t *in, size_t size, size_t max, uint8_t **ret, size_t *ret_size)
{
        _cleanup_(freep) uint8_t *out = malloc(size + 1);
        size_t n = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < size; i++) {
                uint8_t b = in[i];
                if (b == '%') {
                        int hi = i + 2 < size ? hex_digit_value((char) in[i + 1]) : -1;
                        int lo = i + 2 < size ? hex_digit_value((char) in[i + 2]) : -1;
                        if (hi < 0 || lo < 0)
                                return -EBADMSG;
                        b = (uint8_t) (hi << 4 | lo);
                        i += 2;
                }
                if (b == 0)
                        return -EBADMSG;
                if (n >= max)
                        return -EMSGSIZE;
                out[n++] = b;
        }
        out[n] = 0;
        *ret = TAKE_PTR(out);
        *ret_size = n;
        return 0;
}

/* nextUpdate of a cached item, 0 if it cannot be told (then it is refreshed when online). */
static time_t next_update(int kind, const uint8_t *data, size_t size)
{
        time_t t = 0;

        if (kind == 0 || kind == 1) {
                void *p = NULL;
                Diag d;
                diag_clear(&d);
                if (kind == 0 && tdx_tcb_info_parse(data, size, (TdxTcbInfo **) &p, &d) >= 0)
                        t = ((TdxTcbInfo *) p)->next_update;
                else if (kind == 1 &&
                         tdx_qe_identity_parse(data, size, (TdxQeIdentity **) &p, &d) >= 0)
                        t = ((TdxQeIdentity *) p)->next_update;
                free(p);
                return t;
        }
        const unsigned char *p = data;
        X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long) size);
        const ASN1_TIME *nu = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
        struct tm tm;
        if (nu && ASN1_TIME_to_tm(nu, &tm) == 1)
                t = timegm(&tm);
        X509_CRL_free(crl);
        return t;
}

typedef struct Item {
        const char *what, *url, *rel;
        int kind; /* 0 TCB info, 1 QE identity, 2 CRL */
        RpcCacheHeader chain;
        bool has_chain;
        uint8_t **data, **chain_out;
        size_t *size, *chain_size;
} Item;

static void note(TdxPcsResult *res, const char *what, const char *where, time_t nu, const char *why)
{
        char when[32] = "?";
        struct tm tm;
        size_t n = strlen(res->stale_note);

        if (nu && gmtime_r(&nu, &tm))
                (void) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        (void) snprintf(res->stale_note + n, sizeof(res->stale_note) - n,
                        "%s%s %s is past its nextUpdate %s: %s", n ? "; " : "", what, where, when,
                        why);
}

static int get_item(const RpcCacheConfig *rc, Item *it, time_t at, TdxPcsResult *res, Diag *d)
{
        RpcCacheHeader *h = it->has_chain ? &it->chain : NULL;
        size_t nh = it->has_chain ? 1 : 0, size = 0;
        uint8_t *data = NULL;
        time_t nu = 0;
        int r;

        r = rpc_cache_read(rc, it->rel, h, nh, &data, &size);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                nu = next_update(it->kind, data, size);
                if (nu > at)
                        goto take; /* fresh at the verification time */
                if (rc->offline) {
                        res->stale++;
                        note(res, it->what, "in the cache", nu,
                             "offline: run without --offline to refresh it, or give --collateral "
                             "DIR");
                        goto take;
                }
        } else if (rc->offline)
                return diag_fail(d, -ENOENT, "tdx-pcs", -1,
                                 "offline and the %s is not in the cache %s: run once online "
                                 "(without --offline) to fetch it, or give --collateral DIR",
                                 it->what, rc->cache_dir ?: "(no --cache-dir)");
        {
                uint8_t *fresh = NULL;
                size_t fn = 0;
                Diag sub;

                diag_clear(&sub);
                if (data)
                        rpc_cache_headers_free(h, nh);
                if (data && res->refresh_failed)
                        /* One unreachable service costs one round of retries, not one per item. */
                        r = diag_fail(&sub, -EAGAIN, "tdx-pcs", -1,
                                      "not tried: the service failed the previous request");
                else
                        r = rpc_cache_fetch(rc, it->url, it->rel, h, nh, &fresh, &fn, &sub);
                res->fetched += r >= 0;
                res->refresh_failed |= r < 0 && data;
                if (r < 0 && !data) {
                        *d = sub;
                        return r;
                }
                if (r < 0) {
                        /* The stale copy stays, reported: the verification fails it as stale. */
                        res->stale++;
                        char why[DIAG_MESSAGE_MAX + 64];
                        (void) snprintf(why, sizeof(why),
                                        "the refresh failed (%s); retry later or give "
                                        "--collateral DIR",
                                        sub.message);
                        note(res, it->what, "in the cache", nu, why);
                        if (nh && rpc_cache_read(rc, it->rel, h, nh, &fresh, &fn) < 0)
                                return diag_fail(d, -ENOENT, "tdx-pcs", -1, "%s", sub.message);
                        free(fresh);
                        goto take;
                }
                free(data);
                data = fresh;
                size = fn;
                nu = next_update(it->kind, data, size);
                if (nu && nu <= at) {
                        res->stale++;
                        note(res, it->what, "from the service", nu,
                             "the service has nothing newer: check its URL and that a PCCS is "
                             "refreshed from Intel");
                }
        }
take:
        *it->data = data;
        *it->size = size;
        if (it->has_chain) {
                int k = tdx_url_decode(it->chain.value, it->chain.size, RPC_HTTP_HEADER_MAX,
                                       it->chain_out, it->chain_size);
                rpc_cache_headers_free(h, nh);
                if (k < 0)
                        return diag_fail(d, k, "tdx-pcs-issuer-chain", -1,
                                         "the %s's issuer chain header (%s) is not URL-encoded "
                                         "PEM",
                                         it->what, it->chain.name);
        }
        return 0;
}

int tdx_pcs_platform(const TdxQuote *q, TdxPcsResult *res, Diag *d)
{
        STACK_OF(X509) *sk = NULL;
        const ASN1_OCTET_STRING *e;
        TdxPckExtensions ext;
        char cn[64];
        int r = 0;

        if (tdx_load_pem_certs(q->pck_chain, q->pck_chain_size, 3, &sk) < 0 || !sk ||
            sk_X509_num(sk) < 1)
                r = -EBADMSG;
        else if (!(e = tdx_sgx_extension(sk_X509_value(sk, 0))) ||
                 tdx_pck_extensions_parse(e->data, (size_t) e->length, &ext) < 0)
                r = -EBADMSG;
        else {
                hex_encode_buf(ext.fmspc, 6, res->fmspc, sizeof(res->fmspc));
                (void) tdx_cert_cn(sk_X509_value(sk, 0), true, cn, sizeof(cn));
                if (strstr(cn, "Processor"))
                        (void) snprintf(res->ca, sizeof(res->ca), "processor");
                else if (strstr(cn, "Platform"))
                        (void) snprintf(res->ca, sizeof(res->ca), "platform");
                else
                        r = -EBADMSG;
        }
        sk_X509_pop_free(sk, X509_free);
        if (r < 0)
                return diag_fail(d, r, "tdx-pcs", -1,
                                 "the quote's PCK certificate names no FMSPC or PCK CA (Processor "
                                 "or Platform): its collateral cannot be looked up; give "
                                 "--collateral DIR");
        return 0;
}

bool tdx_pcs_key_ok(const char *fmspc, const char *ca)
{
        if (!fmspc || strlen(fmspc) != 12 || !ca ||
            (strcmp(ca, "processor") != 0 && strcmp(ca, "platform") != 0))
                return false;
        for (size_t i = 0; i < 12; i++)
                if (!((fmspc[i] >= '0' && fmspc[i] <= '9') || (fmspc[i] >= 'a' && fmspc[i] <= 'f')))
                        return false;
        return true;
}

int tdx_pcs_collateral(const TdxPcsConfig *c, const TdxQuote *q, time_t at, TdxCollateral **ret,
                       TdxPcsResult *res, Diag *d)
{
        TdxPcsResult p = {};
        int r;

        *res = (TdxPcsResult){};
        if ((r = tdx_pcs_platform(q, &p, d)) < 0)
                return r;
        return tdx_pcs_collateral_for(c, p.fmspc, p.ca, at, ret, res, d);
}

int tdx_pcs_collateral_for(const TdxPcsConfig *c, const char *fmspc, const char *ca, time_t at,
                           TdxCollateral **ret, TdxPcsResult *res, Diag *d)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *col = calloc(1, sizeof(*col));
        _cleanup_(freep) char *sgx = NULL, *u_tcb = NULL, *u_qe = NULL, *u_crl = NULL,
                              *u_root = NULL, *r_tcb = NULL, *r_tcbc = NULL, *r_crl = NULL,
                              *r_crlc = NULL, *w_tcb = NULL;
        size_t bn = strlen(c->base_url), sn = strlen(PCS_TDX_SUFFIX);
        int r;

        *res = (TdxPcsResult){};
        if (!col)
                return -ENOMEM;
        if (bn < sn || strcmp(c->base_url + bn - sn, PCS_TDX_SUFFIX) != 0)
                return diag_fail(d, -EINVAL, "tdx-pcs", -1,
                                 "--pcs-url %s: give the TDX base URL of Intel PCS or a PCCS, "
                                 "ending in " PCS_TDX_SUFFIX " (default " TDX_PCS_URL_DEFAULT ")",
                                 c->base_url);
        /* The key names cache files: only the forms a PCK certificate yields. */
        if (!tdx_pcs_key_ok(fmspc, ca))
                return diag_fail(d, -EINVAL, "tdx-pcs", -1,
                                 "FMSPC %.16s / PCK CA %.16s: not 12 lowercase hex digits and "
                                 "processor or platform",
                                 fmspc ?: "", ca ?: "");
        (void) snprintf(res->fmspc, sizeof(res->fmspc), "%s", fmspc);
        (void) snprintf(res->ca, sizeof(res->ca), "%s", ca);
        if (at == 0)
                at = time(NULL);
        if (asprintf(&sgx, "%.*s/sgx/certification/v4", (int) (bn - sn), c->base_url) < 0 ||
            asprintf(&u_tcb, "%s/tcb?fmspc=%s", c->base_url, res->fmspc) < 0 ||
            asprintf(&u_qe, "%s/qe/identity", c->base_url) < 0 ||
            asprintf(&u_crl, "%s/pckcrl?ca=%s&encoding=der", sgx, res->ca) < 0 ||
            asprintf(&r_tcb, "fmspc-%s/tcb_info.json", res->fmspc) < 0 ||
            asprintf(&w_tcb, "TCB info for FMSPC %s", res->fmspc) < 0 ||
            asprintf(&r_tcbc, "fmspc-%s/tcb_info_issuer_chain.hdr", res->fmspc) < 0 ||
            asprintf(&r_crl, "pck_crl-%s.der", res->ca) < 0 ||
            asprintf(&r_crlc, "pck_crl-%s_issuer_chain.hdr", res->ca) < 0)
                return -ENOMEM;
        if (c->root_crl_url)
                u_root = strdup(c->root_crl_url);
        else if (strcmp(c->base_url, TDX_PCS_URL_DEFAULT) == 0)
                u_root = strdup(TDX_ROOT_CRL_URL_DEFAULT);
        else if (asprintf(&u_root, "%s/rootcacrl", sgx) < 0)
                u_root = NULL;
        if (!u_root)
                return -ENOMEM;

        RpcCacheConfig rc = {
                .service = "tdx-pcs",
                .cache_dir = c->cache_dir,
                .offline = c->offline,
                .timeout_ms = c->timeout_ms,
                .retries = c->retries,
                .backoff_ms = c->backoff_ms,
                .retry_after_max = 60,
                .max_size = TDX_COLLATERAL_FILE_MAX,
                .requests = &requests,
                .deadline_ms = c->budget_ms ? rpc_cache_now_ms() + c->budget_ms : 0,
        };
        Item items[] = {
                { w_tcb,
                  u_tcb,
                  r_tcb,
                  0,
                  { "TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain", r_tcbc },
                  true,
                  &col->tcb_info,
                  &col->tcb_info_chain,
                  &col->tcb_info_size,
                  &col->tcb_info_chain_size },
                { "TD QE identity",
                  u_qe,
                  "qe_identity.json",
                  1,
                  { "SGX-Enclave-Identity-Issuer-Chain", "TDX-Enclave-Identity-Issuer-Chain",
                    "qe_identity_issuer_chain.hdr" },
                  true,
                  &col->qe_identity,
                  &col->qe_identity_chain,
                  &col->qe_identity_size,
                  &col->qe_identity_chain_size },
                { "PCK CRL",
                  u_crl,
                  r_crl,
                  2,
                  { "SGX-PCK-CRL-Issuer-Chain", NULL, r_crlc },
                  true,
                  &col->pck_crl,
                  &col->pck_crl_chain,
                  &col->pck_crl_size,
                  &col->pck_crl_chain_size },
                { "root CA CRL",
                  u_root,
                  "root_ca_crl.der",
                  2,
                  {},
                  false,
                  &col->root_crl,
                  NULL,
                  &col->root_crl_size,
                  NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(items); i++)
                if ((r = get_item(&rc, &items[i], at, res, d)) < 0)
                        return r;
        *ret = TAKE_PTR(col);
        return 0;
}

int tdx_pcs_cache_put(const char *cache_dir, const char *fmspc, const char *ca,
                      const TdxCollateral *col)
{
        _cleanup_(freep) char *r_tcb = NULL, *r_tcbc = NULL, *r_crl = NULL, *r_crlc = NULL;
        RpcCacheConfig rc = { .service = "tdx-pcs", .cache_dir = cache_dir };
        /* Stored as a PCS serves them (the chains as header values: PEM has no '%' to decode). */
        RpcCacheHeader tcbc = { .rel = NULL,
                                .value = col->tcb_info_chain,
                                .size = col->tcb_info_chain_size },
                       qec = { .rel = "qe_identity_issuer_chain.hdr",
                               .value = col->qe_identity_chain,
                               .size = col->qe_identity_chain_size },
                       crlc = { .rel = NULL,
                                .value = col->pck_crl_chain ?: (uint8_t *) "",
                                .size = col->pck_crl_chain ? col->pck_crl_chain_size : 0 };
        int r;

        if (!cache_dir || !tdx_pcs_key_ok(fmspc, ca) || !col->tcb_info || !col->tcb_info_chain ||
            !col->qe_identity || !col->qe_identity_chain || !col->pck_crl || !col->root_crl)
                return -EINVAL;
        if (asprintf(&r_tcb, "fmspc-%s/tcb_info.json", fmspc) < 0 ||
            asprintf(&r_tcbc, "fmspc-%s/tcb_info_issuer_chain.hdr", fmspc) < 0 ||
            asprintf(&r_crl, "pck_crl-%s.der", ca) < 0 ||
            asprintf(&r_crlc, "pck_crl-%s_issuer_chain.hdr", ca) < 0)
                return -ENOMEM;
        tcbc.rel = r_tcbc;
        crlc.rel = r_crlc;
        if ((r = rpc_cache_put(&rc, r_tcb, &tcbc, 1, col->tcb_info, col->tcb_info_size)) < 0 ||
            (r = rpc_cache_put(&rc, "qe_identity.json", &qec, 1, col->qe_identity,
                               col->qe_identity_size)) < 0 ||
            (r = rpc_cache_put(&rc, r_crl, &crlc, 1, col->pck_crl, col->pck_crl_size)) < 0 ||
            (r = rpc_cache_put(&rc, "root_ca_crl.der", NULL, 0, col->root_crl,
                               col->root_crl_size)) < 0)
                return r;
        return 0;
}
