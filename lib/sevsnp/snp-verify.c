/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "snp-internal.h"

#define SNP_ARKS_MAX         16
#define SNP_CHAIN_CACHE_SIZE 16

/*
 * Verified chains, process-wide: (SHA-256 of VCEK bytes ‖ chain bytes) → the ARK that anchored
 * it and the parsed VCEK. A hit skips certificate parsing and the two RSA-PSS verifications;
 * everything that depends on the verification time, the trust set, the CRL or the report is
 * checked again on every call.
 */
typedef struct ChainCacheEntry {
        bool used;
        uint8_t key[32];
        uint8_t ark_fp[32];
        X509 *vcek, *ask, *ark;
        unsigned long last_use;
} ChainCacheEntry;

static ChainCacheEntry chain_cache[SNP_CHAIN_CACHE_SIZE];
static unsigned long chain_cache_clock;
static pthread_mutex_t chain_cache_lock = PTHREAD_MUTEX_INITIALIZER;

struct SnpTrust {
        X509 *arks[SNP_ARKS_MAX];
        uint8_t ark_fp[SNP_ARKS_MAX][32];
        bool builtin[SNP_ARKS_MAX];
        size_t n_arks;
        X509_CRL *crl;
        bool crl_require_fresh;
};

/* Certificates from PEM (any number) or one DER certificate. */
static int load_certs(const uint8_t *data, size_t size, STACK_OF(X509) * *ret)
{
        STACK_OF(X509) *sk = sk_X509_new_null();
        BIO *b;

        if (!sk || size > SNP_CHAIN_MAX || size > INT32_MAX)
                goto fail;
        b = BIO_new_mem_buf(data, (int) size);
        if (!b)
                goto fail;
        for (;;) {
                X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
                if (!x)
                        break;
                if (sk_X509_push(sk, x) <= 0) {
                        X509_free(x);
                        break;
                }
        }
        BIO_free(b);
        ERR_clear_error();
        if (sk_X509_num(sk) == 0) {
                const unsigned char *p = data;
                X509 *x = d2i_X509(NULL, &p, (long) size);
                if (!x || p != data + size || sk_X509_push(sk, x) <= 0) {
                        X509_free(x);
                        goto fail;
                }
        }
        *ret = sk;
        return 0;
fail:
        sk_X509_pop_free(sk, X509_free);
        ERR_clear_error();
        return -EBADMSG;
}

static void ark_fingerprint(X509 *x, uint8_t out[static 32])
{
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);

        memset(out, 0, 32);
        if (n > 0)
                crypto_sha256(der, (size_t) n, out);
        OPENSSL_free(der);
}

static void cache_key(const uint8_t *vcek, size_t vn, const uint8_t *chain, size_t cn,
                      uint8_t out[static 32])
{
        uint8_t len[16];
        for (int i = 0; i < 8; i++)
                len[i] = (uint8_t) ((uint64_t) vn >> (8 * i)),
                len[8 + i] = (uint8_t) ((uint64_t) cn >> (8 * i));
        const IoVec parts[] = { { len, sizeof(len) }, { vcek, vn }, { chain, cn } };
        (void) crypto_digest("SHA256", parts, ELEMENTSOF(parts), out, 32);
}

/* On a hit, takes references to the cached certificates if their ARK is trusted by t. */
static bool cache_lookup(const uint8_t key[static 32], const SnpTrust *t, X509 **vcek, X509 **ask,
                         X509 **ark)
{
        bool hit = false;

        (void) pthread_mutex_lock(&chain_cache_lock);
        for (size_t i = 0; i < SNP_CHAIN_CACHE_SIZE && !hit; i++) {
                ChainCacheEntry *e = &chain_cache[i];
                if (!e->used || memcmp(e->key, key, 32) != 0)
                        continue;
                for (size_t j = 0; j < t->n_arks; j++)
                        if (memcmp(t->ark_fp[j], e->ark_fp, 32) == 0) {
                                hit = true;
                                X509_up_ref(e->vcek), X509_up_ref(e->ask);
                                *vcek = e->vcek, *ask = e->ask, *ark = t->arks[j];
                                e->last_use = ++chain_cache_clock;
                                break;
                        }
        }
        (void) pthread_mutex_unlock(&chain_cache_lock);
        return hit;
}

static void cache_store(const uint8_t key[static 32], X509 *vcek, X509 *ask, X509 *ark)
{
        ChainCacheEntry *victim = &chain_cache[0];

        (void) pthread_mutex_lock(&chain_cache_lock);
        for (size_t i = 0; i < SNP_CHAIN_CACHE_SIZE; i++) {
                if (!chain_cache[i].used) {
                        victim = &chain_cache[i];
                        break;
                }
                if (chain_cache[i].last_use < victim->last_use)
                        victim = &chain_cache[i];
        }
        X509_free(victim->vcek);
        X509_free(victim->ask);
        X509_up_ref(vcek), X509_up_ref(ask);
        *victim = (ChainCacheEntry){
                .used = true, .vcek = vcek, .ask = ask, .last_use = ++chain_cache_clock
        };
        memcpy(victim->key, key, 32);
        ark_fingerprint(ark, victim->ark_fp);
        (void) pthread_mutex_unlock(&chain_cache_lock);
}

void snp_chain_cache_flush(void)
{
        (void) pthread_mutex_lock(&chain_cache_lock);
        for (size_t i = 0; i < SNP_CHAIN_CACHE_SIZE; i++) {
                X509_free(chain_cache[i].vcek);
                X509_free(chain_cache[i].ask);
                chain_cache[i] = (ChainCacheEntry){};
        }
        (void) pthread_mutex_unlock(&chain_cache_lock);
}

__attribute__((destructor)) static void chain_cache_at_exit(void)
{
        snp_chain_cache_flush();
}

int snp_trust_new(bool builtin_roots, SnpTrust **ret)
{
        SnpTrust *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        for (const SnpBuiltinRoot *r = snp_builtin_roots; builtin_roots && r->product; r++) {
                BIO *b = BIO_new_mem_buf(r->pem, -1);
                X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

                BIO_free(b);
                if (!x || t->n_arks >= SNP_ARKS_MAX) {
                        X509_free(x);
                        snp_trust_free(t);
                        return -EIO;
                }
                t->builtin[t->n_arks] = true;
                ark_fingerprint(x, t->ark_fp[t->n_arks]);
                t->arks[t->n_arks++] = x;
        }
        *ret = t;
        return 0;
}

SnpTrust *snp_trust_free(SnpTrust *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_arks; i++)
                X509_free(t->arks[i]);
        X509_CRL_free(t->crl);
        free(t);
        return NULL;
}

/* Trusted ARKs from policies, parsed and self-signature-checked once per distinct PEM text: a
 * verifier reads the same policy for every handshake, and this parse cost a fifth of an SNP
 * verification (make bench). Keyed by SHA-256 of the PEM; holds references. */
#define ARK_PEM_CACHE_SIZE 4
typedef struct ArkPemCacheEntry {
        bool used;
        uint8_t key[32];
        unsigned n;
        X509 *arks[SNP_ARKS_MAX];
} ArkPemCacheEntry;
static ArkPemCacheEntry ark_pem_cache[ARK_PEM_CACHE_SIZE];
static unsigned ark_pem_cache_next;
static pthread_mutex_t ark_pem_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool trust_add(SnpTrust *t, X509 *x)
{
        if (t->n_arks >= SNP_ARKS_MAX)
                return false;
        ark_fingerprint(x, t->ark_fp[t->n_arks]);
        t->arks[t->n_arks++] = x;
        return true;
}

static bool ark_pem_cache_lookup(SnpTrust *t, const uint8_t key[static 32])
{
        bool hit = false;

        (void) pthread_mutex_lock(&ark_pem_cache_lock);
        for (unsigned i = 0; i < ARK_PEM_CACHE_SIZE && !hit; i++) {
                ArkPemCacheEntry *e = &ark_pem_cache[i];
                if (!e->used || memcmp(e->key, key, 32) != 0 || t->n_arks + e->n > SNP_ARKS_MAX)
                        continue;
                for (unsigned k = 0; k < e->n; k++)
                        if (X509_up_ref(e->arks[k]) == 1 && !trust_add(t, e->arks[k]))
                                X509_free(e->arks[k]);
                hit = true;
        }
        (void) pthread_mutex_unlock(&ark_pem_cache_lock);
        return hit;
}

static void ark_pem_cache_store(const uint8_t key[static 32], X509 *const *arks, unsigned n)
{
        ArkPemCacheEntry *e;

        (void) pthread_mutex_lock(&ark_pem_cache_lock);
        e = &ark_pem_cache[ark_pem_cache_next++ % ARK_PEM_CACHE_SIZE];
        for (unsigned k = 0; k < e->n; k++)
                X509_free(e->arks[k]);
        *e = (ArkPemCacheEntry){ .used = true, .n = 0 };
        memcpy(e->key, key, 32);
        for (unsigned k = 0; k < n; k++)
                if (X509_up_ref(arks[k]) == 1)
                        e->arks[e->n++] = arks[k];
        (void) pthread_mutex_unlock(&ark_pem_cache_lock);
}

__attribute__((destructor)) static void ark_pem_cache_at_exit(void)
{
        for (unsigned i = 0; i < ARK_PEM_CACHE_SIZE; i++) {
                for (unsigned k = 0; k < ark_pem_cache[i].n; k++)
                        X509_free(ark_pem_cache[i].arks[k]);
                ark_pem_cache[i] = (ArkPemCacheEntry){};
        }
}

int snp_trust_add_ark_pem(SnpTrust *t, const char *pem, size_t size)
{
        STACK_OF(X509) *sk = NULL;
        uint8_t key[32];
        unsigned first = t->n_arks;
        int r;

        if (crypto_digest("SHA256", &(IoVec){ pem, size }, 1, key, sizeof(key)) < 0)
                return -EIO;
        if (ark_pem_cache_lookup(t, key))
                return 0;
        r = load_certs((const uint8_t *) pem, size, &sk);
        if (r < 0)
                return r;
        while (sk_X509_num(sk) > 0) {
                X509 *x = sk_X509_shift(sk);
                /* An ARK is self-signed. */
                if (X509_verify(x, X509_get0_pubkey(x)) != 1 || !trust_add(t, x)) {
                        X509_free(x);
                        r = -EBADMSG;
                }
        }
        sk_X509_free(sk);
        ERR_clear_error();
        if (r == 0)
                ark_pem_cache_store(key, t->arks + first, t->n_arks - first);
        return r;
}

int snp_trust_set_crl(SnpTrust *t, const uint8_t *data, size_t size, bool require_fresh)
{
        BIO *b = BIO_new_mem_buf(data, (int) size);
        X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;

        BIO_free(b);
        if (!crl) {
                const unsigned char *p = data;
                crl = d2i_X509_CRL(NULL, &p, (long) size);
        }
        ERR_clear_error();
        if (!crl)
                return -EBADMSG;
        X509_CRL_free(t->crl);
        t->crl = crl;
        t->crl_require_fresh = require_fresh;
        return 0;
}

static bool valid_at(X509 *x, time_t at)
{
        return X509_cmp_time(X509_get0_notBefore(x), &at) < 0 &&
               X509_cmp_time(X509_get0_notAfter(x), &at) > 0;
}

static const char *cn_of(X509 *x, char *buf, size_t size)
{
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int) size) <
            0)
                (void) snprintf(buf, size, "?");
        return buf;
}

/* The value of an AMD VCEK extension (AMD "Versioned Chip Endorsement Key" spec, table 8). */
static const ASN1_OCTET_STRING *ext_value(X509 *x, const char *oid)
{
        ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
        int idx = obj ? X509_get_ext_by_OBJ(x, obj, -1) : -1;

        ASN1_OBJECT_free(obj);
        return idx < 0 ? NULL : X509_EXTENSION_get_data(X509_get_ext(x, idx));
}

/* A DER INTEGER 0..255 inside an extension value. */
static int ext_int(X509 *x, const char *oid, uint8_t *ret)
{
        const ASN1_OCTET_STRING *v = ext_value(x, oid);
        const unsigned char *p;
        ASN1_INTEGER *i;
        long n;

        if (!v)
                return -ENOENT;
        p = v->data;
        i = d2i_ASN1_INTEGER(NULL, &p, v->length);
        if (!i || p != v->data + v->length) {
                ASN1_INTEGER_free(i);
                return -EBADMSG;
        }
        n = ASN1_INTEGER_get(i);
        ASN1_INTEGER_free(i);
        if (n < 0 || n > 255)
                return -EBADMSG;
        *ret = (uint8_t) n;
        return 0;
}

static int product_of(X509 *vcek, SnpProduct *ret)
{
        const ASN1_OCTET_STRING *v = ext_value(vcek, "1.3.6.1.4.1.3704.1.2");
        const unsigned char *p;
        ASN1_IA5STRING *s;
        char name[32] = "";
        int r = -EBADMSG;

        if (!v) {
                /* VLEKs name no product; the chain above them does (SEV-VLEK-<product>). */
                return -ENOENT;
        }
        p = v->data;
        s = d2i_ASN1_IA5STRING(NULL, &p, v->length);
        if (s && s->length > 0 && (size_t) s->length < sizeof(name)) {
                memcpy(name, s->data, (size_t) s->length);
                for (int i = 0; i < _SNP_PRODUCT_MAX; i++) {
                        const char *pn = snp_product_to_string(i);
                        /* "Milan-B0", "Genoa", ... : the product, optionally a stepping. */
                        if (strncmp(name, pn, strlen(pn)) == 0 &&
                            (name[strlen(pn)] == 0 || name[strlen(pn)] == '-')) {
                                *ret = (SnpProduct) i;
                                r = 0;
                        }
                }
        }
        ASN1_IA5STRING_free(s);
        return r;
}

static int product_from_issuer(X509 *ask, SnpProduct *ret)
{
        char cn[64];

        cn_of(ask, cn, sizeof(cn));
        for (int i = 0; i < _SNP_PRODUCT_MAX; i++)
                if (strstr(cn, snp_product_to_string(i))) {
                        *ret = (SnpProduct) i;
                        return 0;
                }
        return -ENOENT;
}

static int check_tcb_ext(X509 *cert, const char *oid, const char *name, uint8_t reported, Diag *d)
{
        uint8_t v;
        char e[8], a[8];
        int r = ext_int(cert, oid, &v);

        if (r < 0)
                return diag_fail(d, -EKEYREJECTED, "snp-vcek-tcb", -1,
                                 "the VCEK lacks its %s SPL extension", name);
        if (v == reported)
                return 0;
        (void) diag_fail(d, -EKEYREJECTED, "snp-vcek-tcb", -1,
                         "the report's reported TCB %s SPL differs from the VCEK's", name);
        (void) snprintf(e, sizeof(e), "%u", v);
        (void) snprintf(a, sizeof(a), "%u", reported);
        diag_set_values(d, e, a);
        return -EKEYREJECTED;
}

static int verify_signature(const uint8_t *raw, EVP_PKEY *key, const SnpReport *r, Diag *d)
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t be[72];
        BIGNUM *br, *bs;
        ECDSA_SIG *sig = ECDSA_SIG_new();
        unsigned char *der = NULL;
        int n, ok;

        /* r and s are 72-byte little-endian integers (ABI, "ECDSA P-384 with SHA-384"). */
        for (int i = 0; i < 72; i++)
                be[i] = r->signature_r[71 - i];
        br = BN_bin2bn(be, 72, NULL);
        for (int i = 0; i < 72; i++)
                be[i] = r->signature_s[71 - i];
        bs = BN_bin2bn(be, 72, NULL);
        if (!md || !sig || !br || !bs || ECDSA_SIG_set0(sig, br, bs) != 1) {
                BN_free(br);
                BN_free(bs);
                ECDSA_SIG_free(sig);
                return -ENOMEM;
        }
        n = i2d_ECDSA_SIG(sig, &der);
        ECDSA_SIG_free(sig);
        if (n <= 0)
                return -ENOMEM;
        ok = EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key) == 1 &&
             EVP_DigestVerify(md, der, (size_t) n, raw, SNP_SIGNED_SIZE) == 1;
        OPENSSL_free(der);
        ERR_clear_error();
        if (!ok)
                return diag_fail(d, -EKEYREJECTED, "snp-signature", -1,
                                 "the report's signature does not verify with the VCEK/VLEK");
        return 0;
}

int snp_verify_report(const SnpReport *report, const uint8_t *raw, size_t raw_size,
                      const uint8_t *vcek_data, size_t vcek_size, const uint8_t *chain,
                      size_t chain_size, const SnpTrust *trust, time_t at, SnpProduct *ret_product,
                      Diag *d)
{
        STACK_OF(X509) *vsk = NULL, *csk = NULL;
        X509 *vcek = NULL, *ask = NULL, *ark = NULL, *cached_vcek = NULL, *cached_ask = NULL;
        SnpProduct product = _SNP_PRODUCT_INVALID;
        uint8_t key[32];
        bool is_vlek;
        char cn[64];
        int r;

        if (raw_size != SNP_REPORT_SIZE)
                return diag_fail(d, -EBADMSG, "snp-report-format", -1, "SNP report size");
        if (at == 0)
                at = time(NULL);
        if (report->signing_key == 7)
                return diag_fail(d, -EKEYREJECTED, "snp-signer", -1,
                                 "the report is unsigned (signing key: none)");
        if (vcek_data && chain) {
                cache_key(vcek_data, vcek_size, chain, chain_size, key);
                if (cache_lookup(key, trust, &cached_vcek, &cached_ask, &ark)) {
                        vcek = cached_vcek;
                        ask = cached_ask;
                        goto chain_verified;
                }
        }
        if (!vcek_data || load_certs(vcek_data, vcek_size, &vsk) < 0 || sk_X509_num(vsk) != 1) {
                r = diag_fail(d, -EBADMSG, "snp-vcek", -1,
                              "no VCEK/VLEK certificate (DER or PEM) was given");
                goto finish;
        }
        vcek = sk_X509_value(vsk, 0);
        if (!chain || load_certs(chain, chain_size, &csk) < 0) {
                r = diag_fail(d, -EBADMSG, "snp-chain", -1,
                              "no ASK/ASVK chain (PEM or DER) was given");
                goto finish;
        }

        /* The ASK/ASVK: the chain certificate that issued the VCEK (the ARK in the chain, if
         * any, is ignored: only trusted ARKs count). */
        for (int i = 0; i < sk_X509_num(csk); i++) {
                X509 *x = sk_X509_value(csk, i);
                if (X509_check_issued(x, vcek) == X509_V_OK &&
                    X509_verify(vcek, X509_get0_pubkey(x)) == 1) {
                        ask = x;
                        break;
                }
        }
        ERR_clear_error();
        if (!ask) {
                r = diag_fail(d, -EKEYREJECTED, "snp-chain", -1,
                              "no certificate in the chain signed the VCEK/VLEK (%s)",
                              cn_of(vcek, cn, sizeof(cn)));
                goto finish;
        }
        for (size_t i = 0; i < trust->n_arks; i++)
                if (X509_check_issued(trust->arks[i], ask) == X509_V_OK &&
                    X509_verify(ask, X509_get0_pubkey(trust->arks[i])) == 1) {
                        ark = trust->arks[i];
                        break;
                }
        ERR_clear_error();
        if (!ark) {
                r = diag_fail(d, -EKEYREJECTED, "snp-ark", -1,
                              "the ASK/ASVK (%s) is not signed by a trusted ARK",
                              cn_of(ask, cn, sizeof(cn)));
                goto finish;
        }
        cache_store(key, vcek, ask, ark);
chain_verified:
        if (!valid_at(ark, at) || !valid_at(ask, at) || !valid_at(vcek, at)) {
                X509 *bad = !valid_at(vcek, at) ? vcek : !valid_at(ask, at) ? ask : ark;
                r = diag_fail(d, -EKEYREJECTED, "snp-validity", -1,
                              "%s is not valid at the verification time (expired or not yet "
                              "valid; use --at for recorded evidence)",
                              cn_of(bad, cn, sizeof(cn)));
                goto finish;
        }
        if (trust->crl) {
                X509_REVOKED *rev = NULL;

                if (X509_CRL_verify(trust->crl, X509_get0_pubkey(ark)) != 1) {
                        ERR_clear_error();
                        r = diag_fail(d, -EKEYREJECTED, "snp-crl", -1,
                                      "the CRL is not signed by the chain's ARK");
                        goto finish;
                }
                if (trust->crl_require_fresh && X509_CRL_get0_nextUpdate(trust->crl) &&
                    X509_cmp_time(X509_CRL_get0_nextUpdate(trust->crl), &at) < 0) {
                        r = diag_fail(d, -EKEYREJECTED, "snp-crl", -1,
                                      "the CRL is stale (past its nextUpdate at the "
                                      "verification time)");
                        goto finish;
                }
                if (X509_CRL_get0_by_serial(trust->crl, &rev, X509_get0_serialNumber(ask)) == 1) {
                        r = diag_fail(d, -EKEYREJECTED, "snp-crl", -1,
                                      "the ASK/ASVK %s is revoked by AMD's CRL",
                                      cn_of(ask, cn, sizeof(cn)));
                        goto finish;
                }
        }

        /* VCEK vs VLEK: the report says which signed it; a VCEK carries the chip ID, a VLEK
         * does not. */
        is_vlek = ext_value(vcek, "1.3.6.1.4.1.3704.1.4") == NULL;
        if (is_vlek != (report->signing_key == 1)) {
                r = diag_fail(d, -EKEYREJECTED, "snp-signer", -1,
                              "the report names a %s but the certificate is a %s",
                              report->signing_key == 1 ? "VLEK" : "VCEK",
                              is_vlek ? "VLEK" : "VCEK");
                goto finish;
        }
        r = product_of(vcek, &product);
        if (r == -ENOENT)
                r = product_from_issuer(ask, &product);
        if (r < 0) {
                r = diag_fail(d, -EKEYREJECTED, "snp-product", -1,
                              "cannot tell the processor product from the certificates");
                goto finish;
        }
        {
                SnpTcb t = snp_tcb_decode(report->reported_tcb_raw, product);
                r = check_tcb_ext(vcek, "1.3.6.1.4.1.3704.1.3.1", "bootloader", t.bootloader, d);
                if (r >= 0)
                        r = check_tcb_ext(vcek, "1.3.6.1.4.1.3704.1.3.2", "TEE", t.tee, d);
                if (r >= 0)
                        r = check_tcb_ext(vcek, "1.3.6.1.4.1.3704.1.3.3", "SNP", t.snp, d);
                if (r >= 0)
                        r = check_tcb_ext(vcek, "1.3.6.1.4.1.3704.1.3.8", "microcode", t.microcode,
                                          d);
                if (r >= 0 && product == SNP_PRODUCT_TURIN)
                        r = check_tcb_ext(vcek, "1.3.6.1.4.1.3704.1.3.9", "FMC", t.fmc, d);
                if (r < 0)
                        goto finish;
        }
        if (!is_vlek) {
                const ASN1_OCTET_STRING *hw = ext_value(vcek, "1.3.6.1.4.1.3704.1.4");
                if (report->mask_chip_key || !hw || hw->length != 64 ||
                    memcmp(hw->data, report->chip_id, 64) != 0) {
                        r = diag_fail(d, -EKEYREJECTED, "snp-chip-id", -1,
                                      "the report's chip ID is not the VCEK's hardware ID");
                        if (hw)
                                diag_set_values_hex(d, hw->data, (size_t) hw->length,
                                                    report->chip_id, 64);
                        goto finish;
                }
        }
        r = verify_signature(raw, X509_get0_pubkey(vcek), report, d);
        if (r >= 0 && ret_product)
                *ret_product = product;
finish:
        X509_free(cached_vcek);
        X509_free(cached_ask);
        sk_X509_pop_free(vsk, X509_free);
        sk_X509_pop_free(csk, X509_free);
        ERR_clear_error();
        return r;
}
