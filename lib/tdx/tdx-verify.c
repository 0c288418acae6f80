/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/timestamp.h"
#include "tdx-internal.h"

/* Intel's QE vendor ID (DCAP Quote Library API, "Quote Header"). */
static const uint8_t intel_qe_vendor_id[16] = { 0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                                0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07 };

typedef struct Ctx {
        TdxCheckFunc cb;
        void *userdata;
        Diag *d;
        time_t at;
        X509 *root;
        STACK_OF(X509) * chain; /* PCK, its CA, the root as the quote carries it */
        X509_CRL *root_crl;
        uint8_t root_fp[32];
        uint8_t chain_key[32];
        bool chain_cached; /* the chain and its extensions came from the cache */
        TdxPckExtensions cached_ext;
} Ctx;

/*
 * Verified material, process-wide, keyed by SHA-256 of the pinned root's fingerprint and the
 * exact bytes verified: a PCK chain (its signatures and SGX extension), and a collateral set (the
 * root CA CRL's, TCB info's and QE identity's signatures, their signers' signatures by the root,
 * and the PCK CRL's signature by the PCK CA it names). A hit skips parsing and those
 * verifications only: validity at the verification time, revocation, windows, platform match,
 * QE identity and TCB evaluation run on every call. A join service verifies the same platforms'
 * chains and one collateral set per FMSPC over and over (make bench).
 */
#define TDX_CACHE_SIZE 16

typedef struct ChainEntry {
        bool used;
        uint8_t key[32];
        unsigned long last_use;
        X509 *pck, *ca;
        TdxPckExtensions ext;
} ChainEntry;

typedef struct CollateralEntry {
        bool used;
        uint8_t key[32];
        unsigned long last_use;
        TdxTcbInfo *tcb;
        TdxQeIdentity *qe;
        X509 *tcb_signer, *qe_signer;
        X509_CRL *root_crl, *pck_crl;
        uint8_t pck_crl_ca_fp[32]; /* the PCK CA whose key verified the PCK CRL */
} CollateralEntry;

static ChainEntry chain_cache[TDX_CACHE_SIZE];
static CollateralEntry collateral_cache[TDX_CACHE_SIZE];
static unsigned long cache_clock;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void chain_entry_clear(ChainEntry *e)
{
        X509_free(e->pck);
        X509_free(e->ca);
        *e = (ChainEntry){};
}

static void collateral_entry_clear(CollateralEntry *e)
{
        free(e->tcb);
        free(e->qe);
        X509_free(e->tcb_signer);
        X509_free(e->qe_signer);
        X509_CRL_free(e->root_crl);
        X509_CRL_free(e->pck_crl);
        *e = (CollateralEntry){};
}

void tdx_cache_flush(void)
{
        (void) pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < TDX_CACHE_SIZE; i++) {
                chain_entry_clear(&chain_cache[i]);
                collateral_entry_clear(&collateral_cache[i]);
        }
        (void) pthread_mutex_unlock(&cache_lock);
}

__attribute__((destructor)) static void cache_at_exit(void)
{
        tdx_cache_flush();
}

/* SHA-256(root fingerprint ‖ for each part: its 8-byte length ‖ its bytes). */
static void cache_key(const uint8_t root_fp[32], const IoVec *parts, size_t n, uint8_t out[32])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned len = 32;

        memset(out, 0, 32);
        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
                return;
        (void) EVP_DigestUpdate(md, root_fp, 32);
        for (size_t i = 0; i < n; i++) {
                uint8_t l[8];
                for (int k = 0; k < 8; k++)
                        l[k] = (uint8_t) ((uint64_t) parts[i].size >> (8 * k));
                (void) EVP_DigestUpdate(md, l, 8);
                if (parts[i].size > 0)
                        (void) EVP_DigestUpdate(md, parts[i].data, parts[i].size);
        }
        (void) EVP_DigestFinal_ex(md, out, &len);
}

static bool chain_cache_lookup(Ctx *c)
{
        bool hit = false;

        (void) pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < TDX_CACHE_SIZE && !hit; i++) {
                ChainEntry *e = &chain_cache[i];
                STACK_OF(X509) * sk;

                if (!e->used || memcmp(e->key, c->chain_key, 32) != 0)
                        continue;
                sk = sk_X509_new_null();
                if (!sk || sk_X509_push(sk, e->pck) <= 0 || sk_X509_push(sk, e->ca) <= 0) {
                        sk_X509_free(sk);
                        break;
                }
                X509_up_ref(e->pck), X509_up_ref(e->ca);
                c->chain = sk;
                c->cached_ext = e->ext;
                c->chain_cached = hit = true;
                e->last_use = ++cache_clock;
        }
        (void) pthread_mutex_unlock(&cache_lock);
        return hit;
}

static void *cache_victim(void *entries, size_t entry_size)
{
        uint8_t *base = entries;
        void *victim = base;

        for (size_t i = 0; i < TDX_CACHE_SIZE; i++) {
                ChainEntry *e = (ChainEntry *) (base + i * entry_size); /* common prefix */
                if (!e->used)
                        return e;
                if (e->last_use < ((ChainEntry *) victim)->last_use)
                        victim = e;
        }
        return victim;
}

static void chain_cache_store(const Ctx *c, const TdxPckExtensions *ext)
{
        ChainEntry *e;

        (void) pthread_mutex_lock(&cache_lock);
        e = cache_victim(chain_cache, sizeof(ChainEntry));
        chain_entry_clear(e);
        e->pck = sk_X509_value(c->chain, 0);
        e->ca = sk_X509_value(c->chain, 1);
        X509_up_ref(e->pck), X509_up_ref(e->ca);
        memcpy(e->key, c->chain_key, 32);
        e->ext = *ext;
        e->used = true;
        e->last_use = ++cache_clock;
        (void) pthread_mutex_unlock(&cache_lock);
}

/* A passed check: reported. A failed one: reported, recorded in d, its errno returned. */
static int pass(Ctx *c, const char *name, const char *detail)
{
        if (c->cb)
                c->cb(c->userdata, name, true, NULL, NULL, detail);
        return 0;
}

static int fail(Ctx *c, int error, const char *name, const char *expected, const char *actual,
                const char *format, ...) _printf_(6, 7);
static int fail(Ctx *c, int error, const char *name, const char *expected, const char *actual,
                const char *format, ...)
{
        char msg[DIAG_MESSAGE_MAX];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        if (c->cb)
                c->cb(c->userdata, name, false, expected, actual, msg);
        (void) diag_fail(c->d, error, name, -1, "%s", msg);
        diag_set_values(c->d, expected, actual);
        return error;
}

static const char *fmt_time(time_t t, char buf[static TIMESTAMP_UTC_SIZE])
{
        if (timestamp_format_utc(t, buf) < 0)
                (void) snprintf(buf, TIMESTAMP_UTC_SIZE, "(out of range)");
        return buf;
}

static const char *asn1_time(const ASN1_TIME *t, char *buf, size_t size)
{
        struct tm tm;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1 ||
            strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void) snprintf(buf, size, "?");
        return buf;
}

/* The built-in root, parsed and checked once per process (it is the same on every call). */
static X509 *builtin_root;
static pthread_once_t builtin_root_once = PTHREAD_ONCE_INIT;

static X509 *parse_root(const char *pem, const uint8_t want[32])
{
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        uint8_t fp[32];

        BIO_free(b);
        if (x) {
                tdx_cert_sha256(x, fp);
                if (memcmp(fp, want, 32) != 0 || X509_verify(x, X509_get0_pubkey(x)) != 1) {
                        X509_free(x);
                        x = NULL;
                }
        }
        ERR_clear_error();
        return x;
}

static void builtin_root_init(void)
{
        builtin_root = parse_root(tdx_intel_root_pem, tdx_intel_root_sha256);
}

__attribute__((destructor)) static void builtin_root_at_exit(void)
{
        X509_free(builtin_root);
        builtin_root = NULL;
}

static int load_root(const TdxVerifyOptions *o, X509 **ret, Diag *d)
{
        X509 *x;

        if (o && (o->root_pem || o->root_sha256)) {
                x = o->root_pem && o->root_sha256 ? parse_root(o->root_pem, o->root_sha256) : NULL;
        } else {
                (void) pthread_once(&builtin_root_once, builtin_root_init);
                x = builtin_root;
                if (x && X509_up_ref(x) != 1)
                        x = NULL;
        }
        if (!x)
                return diag_fail(d, -EINVAL, "tdx-root", -1,
                                 "the trusted root is not a PEM certificate with the pinned "
                                 "fingerprint");
        *ret = x;
        return 0;
}

/* issuer signed subject: names chain and the signature verifies. */
static bool signed_by(X509 *subject, X509 *issuer)
{
        bool ok = X509_check_issued(issuer, subject) == X509_V_OK &&
                  X509_verify(subject, X509_get0_pubkey(issuer)) == 1;
        ERR_clear_error();
        return ok;
}

const ASN1_OCTET_STRING *tdx_sgx_extension(X509 *x)
{
        ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        int idx = obj ? X509_get_ext_by_OBJ(x, obj, -1) : -1;

        ASN1_OBJECT_free(obj);
        ERR_clear_error();
        /* One SGX extension only: a second one could say something else. */
        if (idx < 0 ||
            X509_get_ext_by_OBJ(x, X509_EXTENSION_get_object(X509_get_ext(x, idx)), idx) >= 0)
                return NULL;
        return X509_EXTENSION_get_data(X509_get_ext(x, idx));
}

static int verify_pck_chain(Ctx *c, const TdxQuote *q, TdxVerification *v)
{
        X509 *pck, *ca, *qroot;
        uint8_t fp[32], want[32];
        char cn[64], ex[DIAG_VALUE_MAX], ac[DIAG_VALUE_MAX];

        cache_key(c->root_fp, &(IoVec){ q->pck_chain, q->pck_chain_size }, 1, c->chain_key);
        if (chain_cache_lookup(c)) {
                pck = sk_X509_value(c->chain, 0);
                ca = sk_X509_value(c->chain, 1);
                goto authentic;
        }
        if (tdx_load_pem_certs(q->pck_chain, q->pck_chain_size, 3, &c->chain) < 0 ||
            sk_X509_num(c->chain) != 3)
                return fail(c, -EBADMSG, "tdx-pck-chain", "3 PEM certificates", NULL,
                            "the quote's PCK certificate chain is unparsable (expected exactly "
                            "three PEM certificates: PCK, PCK CA, root)");
        pck = sk_X509_value(c->chain, 0);
        ca = sk_X509_value(c->chain, 1);
        qroot = sk_X509_value(c->chain, 2);

        /* The root the quote carries must be the pinned one, byte for byte. */
        tdx_cert_sha256(qroot, fp);
        tdx_cert_sha256(c->root, want);
        if (memcmp(fp, want, 32) != 0) {
                hex_encode_buf(want, 32, ex, sizeof(ex));
                hex_encode_buf(fp, 32, ac, sizeof(ac));
                return fail(c, -EKEYREJECTED, "tdx-pck-root", ex, ac,
                            "the chain's root certificate (%s) is not the pinned %s: its "
                            "fingerprint or signature differs",
                            tdx_cert_cn(qroot, false, cn, sizeof(cn)),
                            tdx_cert_cn(c->root, false, ex, sizeof(ex)));
        }
        if (!signed_by(ca, c->root))
                return fail(c, -EKEYREJECTED, "tdx-pck-intermediate", NULL, NULL,
                            "the PCK CA certificate (%s) is not signed by the root: its "
                            "signature is invalid",
                            tdx_cert_cn(ca, false, cn, sizeof(cn)));
        if (!signed_by(pck, ca))
                return fail(c, -EKEYREJECTED, "tdx-pck-signature", NULL, NULL,
                            "the PCK certificate (%s) is not signed by the PCK CA: its signature "
                            "is invalid",
                            tdx_cert_cn(pck, false, cn, sizeof(cn)));
authentic : {
        X509 *certs[] = { pck, ca, c->root };
        for (size_t i = 0; i < ELEMENTSOF(certs); i++)
                if (!tdx_cert_valid_at(certs[i], c->at)) {
                        char from[32], to[32], at[TIMESTAMP_UTC_SIZE];
                        (void) snprintf(
                                ex, sizeof(ex), "%s .. %s",
                                asn1_time(X509_get0_notBefore(certs[i]), from, sizeof(from)),
                                asn1_time(X509_get0_notAfter(certs[i]), to, sizeof(to)));
                        return fail(c, -EKEYREJECTED, "tdx-pck-validity", ex, fmt_time(c->at, at),
                                    "%s is not valid at the verification time (expired "
                                    "or not yet valid; use --at for recorded evidence)",
                                    tdx_cert_cn(certs[i], false, cn, sizeof(cn)));
                }
}
        /* Names: a PCK certificate issued by a PCK Platform or Processor CA. */
        tdx_cert_cn(pck, false, cn, sizeof(cn));
        if (strcmp(cn, "Intel SGX PCK Certificate") != 0)
                return fail(c, -EKEYREJECTED, "tdx-pck-signature", "Intel SGX PCK Certificate", cn,
                            "the leaf certificate is not a PCK certificate");
        tdx_cert_cn(ca, false, v->pck_ca, sizeof(v->pck_ca));
        if (strcmp(v->pck_ca, "Intel SGX PCK Platform CA") != 0 &&
            strcmp(v->pck_ca, "Intel SGX PCK Processor CA") != 0)
                return fail(c, -EKEYREJECTED, "tdx-pck-intermediate",
                            "Intel SGX PCK Platform CA or Processor CA", v->pck_ca,
                            "the PCK's issuer is not a PCK CA");
        {
                const ASN1_TIME *a = X509_get0_notAfter(pck), *b = X509_get0_notAfter(ca);
                struct tm tm;
                const ASN1_TIME *first = ASN1_TIME_compare(a, b) <= 0 ? a : b;
                if (ASN1_TIME_to_tm(first, &tm) == 1)
                        v->pck_not_after = timegm(&tm);
        }
        (void) snprintf(ex, sizeof(ex), "PCK → %s → %s, valid at the verification time", v->pck_ca,
                        tdx_cert_cn(c->root, false, cn, sizeof(cn)));
        return pass(c, "tdx-pck-chain", ex);
}

static int verify_pck_extensions(Ctx *c, TdxVerification *v)
{
        X509 *pck = sk_X509_value(c->chain, 0);
        const ASN1_OCTET_STRING *e = c->chain_cached ? NULL : tdx_sgx_extension(pck);
        char detail[128], fmspc[13], pceid[5];

        if (c->chain_cached)
                v->pck = c->cached_ext;
        else if (!e || tdx_pck_extensions_parse(e->data, (size_t) e->length, &v->pck) < 0)
                return fail(c, -EKEYREJECTED, "tdx-pck-extensions", NULL, NULL,
                            "the PCK certificate has no single well-formed SGX extension "
                            "(FMSPC, PCE ID, CPU SVN, PCE SVN, TCB components)");
        hex_encode_buf(v->pck.fmspc, 6, fmspc, sizeof(fmspc));
        hex_encode_buf(v->pck.pce_id, 2, pceid, sizeof(pceid));
        (void) snprintf(detail, sizeof(detail), "FMSPC %s, PCE ID %s, PCE SVN %u", fmspc, pceid,
                        v->pck.pcesvn);
        return pass(c, "tdx-pck-extensions", detail);
}

static int verify_quote_signatures(Ctx *c, const TdxQuote *q, const uint8_t *raw, size_t raw_size)
{
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ak = NULL;
        X509 *pck = sk_X509_value(c->chain, 0);
        uint8_t h[32], zero[32] = {};

        if (!tdx_ecdsa_verify(X509_get0_pubkey(pck), q->qe_report_raw, TDX_QE_REPORT_SIZE,
                              q->qe_report_signature))
                return fail(c, -EKEYREJECTED, "tdx-qe-report-signature", NULL, NULL,
                            "the QE report's signature does not verify with the PCK "
                            "certificate's key");
        (void) pass(c, "tdx-qe-report-signature", "the QE report is signed by the PCK key");

        /* QE REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes. */
        {
                const IoVec parts[] = { { q->attestation_key, 64 },
                                        { q->qe_auth_data, q->qe_auth_size } };
                if (crypto_digest("SHA256", parts, ELEMENTSOF(parts), h, sizeof(h)) < 0)
                        return -ENOMEM;
        }
        if (CRYPTO_memcmp(h, q->qe_report.report_data, 32) != 0 ||
            memcmp(q->qe_report.report_data + 32, zero, 32) != 0) {
                char ex[DIAG_VALUE_MAX], ac[DIAG_VALUE_MAX];
                hex_encode_buf(h, 32, ex, sizeof(ex));
                hex_encode_buf(q->qe_report.report_data, 64, ac, sizeof(ac));
                return fail(c, -EKEYREJECTED, "tdx-qe-report-data", ex, ac,
                            "the QE report does not bind the attestation key: its REPORTDATA "
                            "is not SHA-256(attestation key ‖ QE auth data) followed by zeros");
        }
        (void) pass(c, "tdx-qe-report-data", "the QE report binds the attestation key");

        if (memcmp(q->qe_vendor_id, intel_qe_vendor_id, 16) != 0) {
                char ex[33], ac[33];
                hex_encode_buf(intel_qe_vendor_id, 16, ex, sizeof(ex));
                hex_encode_buf(q->qe_vendor_id, 16, ac, sizeof(ac));
                return fail(c, -EKEYREJECTED, "tdx-qe-vendor", ex, ac,
                            "the quote was not made by Intel's quoting enclave");
        }
        if (q->signed_size > raw_size || tdx_p256_key(q->attestation_key, &ak) < 0 ||
            !tdx_ecdsa_verify(ak, raw, q->signed_size, q->signature))
                return fail(c, -EKEYREJECTED, "tdx-quote-signature", NULL, NULL,
                            "the quote's signature over its header and TD body does not verify "
                            "with the attestation key (the quote was altered)");
        return pass(c, "tdx-quote-signature",
                    "header and TD body signed by the attestation key (ECDSA P-256)");
}

/* ---- collateral ------------------------------------------------------------------------------ */

static int load_crl(const uint8_t *data, size_t size, X509_CRL **ret)
{
        const unsigned char *p = data;
        X509_CRL *crl;
        BIO *b;

        if (size == 0 || size > TDX_COLLATERAL_FILE_MAX)
                return -EBADMSG;
        crl = d2i_X509_CRL(NULL, &p, (long) size);
        if (crl && p != data + size) {
                X509_CRL_free(crl);
                crl = NULL;
        }
        if (!crl) {
                /* PCS served PEM once and DER now (intel/confidential-computing.tee.dcap#161). */
                b = BIO_new_mem_buf(data, (int) size);
                crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
                BIO_free(b);
        }
        ERR_clear_error();
        if (!crl)
                return -EBADMSG;
        *ret = crl;
        return 0;
}

/* thisUpdate <= at <= nextUpdate. */
static int crl_window(Ctx *c, X509_CRL *crl, const char *what)
{
        const ASN1_TIME *last = X509_CRL_get0_lastUpdate(crl),
                        *next = X509_CRL_get0_nextUpdate(crl);
        char a[32], b[32], ex[DIAG_VALUE_MAX], at[TIMESTAMP_UTC_SIZE];

        if (last && next && X509_cmp_time(last, &c->at) <= 0 && X509_cmp_time(next, &c->at) >= 0)
                return 0;
        (void) snprintf(ex, sizeof(ex), "%s .. %s", asn1_time(last, a, sizeof(a)),
                        asn1_time(next, b, sizeof(b)));
        return fail(c, -ESTALE, "tdx-collateral-stale", ex, fmt_time(c->at, at),
                    "the %s is stale: the verification time is outside its thisUpdate .. "
                    "nextUpdate window (fetch fresh collateral, or verify at a time inside it "
                    "with --at)",
                    what);
}

static bool revoked(X509_CRL *crl, X509 *x)
{
        X509_REVOKED *rev = NULL;
        return X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(x)) == 1;
}

/* a and b are the same certificate, byte for byte (DER). */
static bool same_cert(X509 *a, X509 *b)
{
        unsigned char *da = NULL, *db = NULL;
        int na = i2d_X509(a, &da), nb = i2d_X509(b, &db);
        bool same = na > 0 && na == nb && memcmp(da, db, (size_t) na) == 0;

        OPENSSL_free(da);
        OPENSSL_free(db);
        return same;
}

/* The signer of a collateral document: the first certificate of its issuer chain, signed by the
 * pinned root, valid at the verification time, not revoked by the root CA CRL. verified: a
 * signer whose root signature was checked in this call (the TCB info's; Intel signs the QE
 * identity with the same certificate), or NULL: the same bytes need not be checked twice. */
static int load_signer(Ctx *c, const uint8_t *pem, size_t size, const char *what, const char *check,
                       X509 *verified, X509 **ret)
{
        STACK_OF(X509) *sk = NULL;
        X509 *s;

        if (!pem || tdx_load_pem_certs(pem, size, 4, &sk) < 0)
                return fail(c, -EBADMSG, check, NULL, NULL,
                            "the %s issuer chain is missing or not PEM", what);
        s = sk_X509_shift(sk);
        sk_X509_pop_free(sk, X509_free);
        if (!s || !((verified && same_cert(s, verified)) || signed_by(s, c->root))) {
                X509_free(s);
                return fail(c, -EKEYREJECTED, check, NULL, NULL,
                            "the %s signing certificate is not signed by the pinned root", what);
        }
        *ret = s;
        return 0;
}

/* The signer at the verification time: valid, not revoked by the root CA CRL. */
static int signer_at_time(Ctx *c, X509 *s, const char *what, const char *check)
{
        char cn[64], from[32], to[32], ex[DIAG_VALUE_MAX], at[TIMESTAMP_UTC_SIZE];

        if (!tdx_cert_valid_at(s, c->at)) {
                (void) snprintf(ex, sizeof(ex), "%s .. %s",
                                asn1_time(X509_get0_notBefore(s), from, sizeof(from)),
                                asn1_time(X509_get0_notAfter(s), to, sizeof(to)));
                tdx_cert_cn(s, false, cn, sizeof(cn));
                return fail(c, -EKEYREJECTED, check, ex, fmt_time(c->at, at),
                            "the %s signing certificate (%s) is not valid at the verification "
                            "time",
                            what, cn);
        }
        if (revoked(c->root_crl, s))
                return fail(c, -EKEYREJECTED, check, NULL, NULL,
                            "the %s signing certificate is revoked by the root CA CRL", what);
        return 0;
}

static int doc_window(Ctx *c, time_t issue, time_t next, const char *what)
{
        char a[TIMESTAMP_UTC_SIZE], b[TIMESTAMP_UTC_SIZE], at[TIMESTAMP_UTC_SIZE],
                ex[DIAG_VALUE_MAX];

        if (issue <= c->at && c->at <= next)
                return 0;
        (void) snprintf(ex, sizeof(ex), "%s .. %s", fmt_time(issue, a), fmt_time(next, b));
        return fail(c, -ESTALE, "tdx-collateral-stale", ex, fmt_time(c->at, at),
                    "the %s is stale: the verification time is outside its issueDate .. "
                    "nextUpdate window (fetch fresh collateral, or verify at a time inside it "
                    "with --at)",
                    what);
}

/* Intel's TD quoting enclave, checked on every quote, collateral or not (test roots and the
 * simulator make their QE reports look like Intel's): the
 * host decides which enclaves launch (Flexible Launch Control), so without this a host-made
 * "QE" the PCE certified could sign any TD body. Values from Intel's TD_QE identity
 * (testdata: qe_identity.json); and a production TDX module (SEAMATTRIBUTES 0). */
static const uint8_t intel_td_qe_mrsigner[32] = {
        0xdc, 0x9e, 0x2a, 0x7c, 0x6f, 0x94, 0x8f, 0x17, 0x47, 0x4e, 0x34,
        0xa7, 0xfc, 0x43, 0xed, 0x03, 0x0f, 0x7c, 0x15, 0x63, 0xf1, 0xba,
        0xbd, 0xdf, 0x63, 0x40, 0xc8, 0x2e, 0x0e, 0x54, 0xa8, 0xc5,
};
#define INTEL_TD_QE_ISVPRODID 2
#define SGX_ATTR_DEBUG        0x02 /* ATTRIBUTES.FLAGS bit 1 */

static int check_intel_td_qe(Ctx *c, const TdxQuote *q)
{
        const TdxQeReport *r = &q->qe_report;
        char ex[DIAG_VALUE_MAX], ac[DIAG_VALUE_MAX];

        if (memcmp(r->mrsigner, intel_td_qe_mrsigner, 32) != 0 ||
            r->isvprodid != INTEL_TD_QE_ISVPRODID || (r->attributes[0] & SGX_ATTR_DEBUG)) {
                hex_encode_buf(intel_td_qe_mrsigner, 32, ex, sizeof(ex));
                (void) snprintf(ex + strlen(ex), sizeof(ex) - strlen(ex), " prod %d, not debug",
                                INTEL_TD_QE_ISVPRODID);
                hex_encode_buf(r->mrsigner, 32, ac, sizeof(ac));
                (void) snprintf(ac + strlen(ac), sizeof(ac) - strlen(ac), " prod %u%s",
                                (unsigned) r->isvprodid,
                                (r->attributes[0] & SGX_ATTR_DEBUG) ? ", debug" : "");
                return fail(c, -EKEYREJECTED, "tdx-qe-intel", ex, ac,
                            "the quoting enclave is not Intel's production TD QE (its signer, "
                            "product ID or debug flag)");
        }
        if (q->seam_attributes != 0) {
                (void) snprintf(ac, sizeof(ac), "0x%016llx",
                                (unsigned long long) q->seam_attributes);
                return fail(c, -EKEYREJECTED, "tdx-seam-attributes", "0x0000000000000000", ac,
                            "the TDX module runs with SEAMATTRIBUTES set (a debug module)");
        }
        (void) pass(c, "tdx-qe-intel",
                    "quoted by Intel's production TD quoting enclave on a production TDX module");
        return 0;
}

static int check_qe_identity(Ctx *c, const TdxQuote *q, const TdxQeIdentity *id)
{
        const TdxQeReport *r = &q->qe_report;
        char ex[DIAG_VALUE_MAX], ac[DIAG_VALUE_MAX];
        bool attr_ok = true;

        if ((r->miscselect & id->miscselect_mask) != (id->miscselect & id->miscselect_mask)) {
                (void) snprintf(ex, sizeof(ex), "0x%08x", id->miscselect);
                (void) snprintf(ac, sizeof(ac), "0x%08x", r->miscselect);
                return fail(c, -EKEYREJECTED, "tdx-qe-identity", ex, ac,
                            "the QE's MISCSELECT under the mask differs from the QE identity's");
        }
        for (int i = 0; i < 16; i++)
                attr_ok &= (r->attributes[i] & id->attributes_mask[i]) ==
                           (id->attributes[i] & id->attributes_mask[i]);
        if (!attr_ok) {
                hex_encode_buf(id->attributes, 16, ex, sizeof(ex));
                hex_encode_buf(r->attributes, 16, ac, sizeof(ac));
                return fail(c, -EKEYREJECTED, "tdx-qe-identity", ex, ac,
                            "the QE's ATTRIBUTES under the mask differ from the QE identity's");
        }
        if (memcmp(r->mrsigner, id->mrsigner, 32) != 0) {
                hex_encode_buf(id->mrsigner, 32, ex, sizeof(ex));
                hex_encode_buf(r->mrsigner, 32, ac, sizeof(ac));
                return fail(c, -EKEYREJECTED, "tdx-qe-identity", ex, ac,
                            "the QE's MRSIGNER is not Intel's TD QE signer");
        }
        if (r->isvprodid != id->isvprodid) {
                (void) snprintf(ex, sizeof(ex), "%u", id->isvprodid);
                (void) snprintf(ac, sizeof(ac), "%u", r->isvprodid);
                return fail(c, -EKEYREJECTED, "tdx-qe-identity", ex, ac,
                            "the QE's ISVPRODID is not the TD QE's");
        }
        return pass(c, "tdx-qe-identity", "MISCSELECT, ATTRIBUTES, MRSIGNER, ISVPRODID");
}

static void earliest(time_t *e, time_t t)
{
        if (t > 0 && (*e == 0 || t < *e))
                *e = t;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
        struct tm tm;
        return t && ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

static bool collateral_cache_lookup(const uint8_t key[32], TdxTcbInfo **tcb, TdxQeIdentity **qe,
                                    X509 **tcb_signer, X509 **qe_signer, X509_CRL **root_crl,
                                    X509_CRL **pck_crl, uint8_t ca_fp[32])
{
        bool hit = false;

        (void) pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < TDX_CACHE_SIZE && !hit; i++) {
                CollateralEntry *e = &collateral_cache[i];
                if (!e->used || memcmp(e->key, key, 32) != 0)
                        continue;
                *tcb = malloc(sizeof(**tcb));
                *qe = malloc(sizeof(**qe));
                if (!*tcb || !*qe) {
                        free(*tcb), free(*qe);
                        *tcb = NULL, *qe = NULL;
                        break;
                }
                **tcb = *e->tcb;
                **qe = *e->qe;
                X509_up_ref(e->tcb_signer), X509_up_ref(e->qe_signer);
                X509_CRL_up_ref(e->root_crl), X509_CRL_up_ref(e->pck_crl);
                *tcb_signer = e->tcb_signer, *qe_signer = e->qe_signer;
                *root_crl = e->root_crl, *pck_crl = e->pck_crl;
                memcpy(ca_fp, e->pck_crl_ca_fp, 32);
                e->last_use = ++cache_clock;
                hit = true;
        }
        (void) pthread_mutex_unlock(&cache_lock);
        return hit;
}

static void collateral_cache_store(const uint8_t key[32], const TdxTcbInfo *tcb,
                                   const TdxQeIdentity *qe, X509 *tcb_signer, X509 *qe_signer,
                                   X509_CRL *root_crl, X509_CRL *pck_crl, const uint8_t ca_fp[32])
{
        TdxTcbInfo *t = malloc(sizeof(*t));
        TdxQeIdentity *i = malloc(sizeof(*i));
        CollateralEntry *e;

        if (!t || !i) {
                free(t), free(i);
                return;
        }
        *t = *tcb, *i = *qe;
        /* The signed bytes belong to the caller's buffer: not kept. */
        t->signed_data = NULL, i->signed_data = NULL;
        (void) pthread_mutex_lock(&cache_lock);
        e = cache_victim(collateral_cache, sizeof(CollateralEntry));
        collateral_entry_clear(e);
        X509_up_ref(tcb_signer), X509_up_ref(qe_signer);
        X509_CRL_up_ref(root_crl), X509_CRL_up_ref(pck_crl);
        *e = (CollateralEntry){ .used = true,
                                .tcb = t,
                                .qe = i,
                                .tcb_signer = tcb_signer,
                                .qe_signer = qe_signer,
                                .root_crl = root_crl,
                                .pck_crl = pck_crl,
                                .last_use = ++cache_clock };
        memcpy(e->key, key, 32);
        memcpy(e->pck_crl_ca_fp, ca_fp, 32);
        (void) pthread_mutex_unlock(&cache_lock);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_CRL *, X509_CRL_free);

static int verify_collateral(Ctx *c, const TdxQuote *q, const TdxCollateral *col,
                             TdxVerification *v)
{
        _cleanup_(freep) TdxTcbInfo *tcb = NULL;
        _cleanup_(freep) TdxQeIdentity *qe = NULL;
        _cleanup_(X509_freep) X509 *tcb_signer = NULL, *qe_signer = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *pck_crl = NULL;
        X509 *pck = sk_X509_value(c->chain, 0), *ca = sk_X509_value(c->chain, 1);
        char ex[DIAG_VALUE_MAX], ac[DIAG_VALUE_MAX], detail[256];
        uint8_t key[32], ca_fp[32], verified_ca_fp[32] = {};
        bool cached;
        int r;

        if (!col->tcb_info || !col->qe_identity || !col->pck_crl || !col->root_crl)
                return fail(c, -EBADMSG, "tdx-collateral", NULL, NULL,
                            "incomplete collateral: TCB info, QE identity, PCK CRL and root CA "
                            "CRL are all required");
        {
                const IoVec parts[] = {
                        { col->tcb_info, col->tcb_info_size },
                        { col->tcb_info_chain, col->tcb_info_chain_size },
                        { col->qe_identity, col->qe_identity_size },
                        { col->qe_identity_chain, col->qe_identity_chain_size },
                        { col->pck_crl, col->pck_crl_size },
                        { col->root_crl, col->root_crl_size },
                };
                cache_key(c->root_fp, parts, ELEMENTSOF(parts), key);
        }
        tdx_cert_sha256(ca, ca_fp);
        cached = collateral_cache_lookup(key, &tcb, &qe, &tcb_signer, &qe_signer, &c->root_crl,
                                         &pck_crl, verified_ca_fp);
        if (cached) {
                r = signer_at_time(c, tcb_signer, "TCB info", "tdx-tcb-info-chain");
                if (r >= 0)
                        r = signer_at_time(c, qe_signer, "QE identity", "tdx-qe-identity-chain");
                if (r < 0)
                        return r;
                (void) pass(c, "tdx-tcb-info-signature",
                            "TCB info signed by Intel SGX TCB Signing, chained to the root "
                            "(verified earlier, cached)");
                (void) pass(c, "tdx-qe-identity-signature",
                            "QE identity signed by Intel SGX TCB Signing, chained to the root "
                            "(verified earlier, cached)");
                goto pck_crl_check;
        }

        /* Root CA CRL: signed by the pinned root. */
        if (load_crl(col->root_crl, col->root_crl_size, &c->root_crl) < 0)
                return fail(c, -EBADMSG, "tdx-root-crl", NULL, NULL,
                            "root_ca_crl.der is not a CRL (DER or PEM)");
        if (X509_NAME_cmp(X509_CRL_get_issuer(c->root_crl), X509_get_subject_name(c->root)) != 0 ||
            X509_CRL_verify(c->root_crl, X509_get0_pubkey(c->root)) != 1) {
                ERR_clear_error();
                return fail(c, -EKEYREJECTED, "tdx-root-crl", NULL, NULL,
                            "the root CA CRL is not signed by the pinned root");
        }

        /* TCB info and QE identity: parsed, signer chain at the verification time, signature
         * over the exact signed bytes. */
        r = tdx_tcb_info_parse(col->tcb_info, col->tcb_info_size, &tcb, c->d);
        if (r < 0) {
                if (c->cb)
                        c->cb(c->userdata, c->d->check, false, NULL, NULL, c->d->message);
                return r;
        }
        r = load_signer(c, col->tcb_info_chain, col->tcb_info_chain_size, "TCB info",
                        "tdx-tcb-info-chain", NULL, &tcb_signer);
        if (r >= 0)
                r = signer_at_time(c, tcb_signer, "TCB info", "tdx-tcb-info-chain");
        if (r < 0)
                return r;
        if (!tdx_ecdsa_verify(X509_get0_pubkey(tcb_signer), tcb->signed_data, tcb->signed_size,
                              tcb->signature))
                return fail(c, -EKEYREJECTED, "tdx-tcb-info-signature", NULL, NULL,
                            "the TCB info's signature does not verify over its tcbInfo bytes "
                            "(altered or re-serialised)");
        (void) pass(c, "tdx-tcb-info-signature",
                    "TCB info signed by Intel SGX TCB Signing, chained to the root");

        r = tdx_qe_identity_parse(col->qe_identity, col->qe_identity_size, &qe, c->d);
        if (r < 0) {
                if (c->cb)
                        c->cb(c->userdata, c->d->check, false, NULL, NULL, c->d->message);
                return r;
        }
        r = load_signer(c, col->qe_identity_chain, col->qe_identity_chain_size, "QE identity",
                        "tdx-qe-identity-chain", tcb_signer, &qe_signer);
        if (r >= 0)
                r = signer_at_time(c, qe_signer, "QE identity", "tdx-qe-identity-chain");
        if (r < 0)
                return r;
        if (!tdx_ecdsa_verify(X509_get0_pubkey(qe_signer), qe->signed_data, qe->signed_size,
                              qe->signature))
                return fail(c, -EKEYREJECTED, "tdx-qe-identity-signature", NULL, NULL,
                            "the QE identity's signature does not verify over its "
                            "enclaveIdentity bytes (altered or re-serialised)");
        (void) pass(c, "tdx-qe-identity-signature",
                    "QE identity signed by Intel SGX TCB Signing, chained to the root");

        if (load_crl(col->pck_crl, col->pck_crl_size, &pck_crl) < 0)
                return fail(c, -EBADMSG, "tdx-pck-crl", NULL, NULL,
                            "pck_crl.der is not a CRL (DER or PEM)");

pck_crl_check:
        /* PCK CRL: issued by the PCK's own issuer, signed with its key. */
        if (X509_NAME_cmp(X509_CRL_get_issuer(pck_crl), X509_get_issuer_name(pck)) != 0) {
                char *e = X509_NAME_oneline(X509_get_issuer_name(pck), NULL, 0),
                     *a = X509_NAME_oneline(X509_CRL_get_issuer(pck_crl), NULL, 0);
                (void) snprintf(ex, sizeof(ex), "%s", e ?: "?");
                (void) snprintf(ac, sizeof(ac), "%s", a ?: "?");
                OPENSSL_free(e);
                OPENSSL_free(a);
                return fail(c, -EKEYREJECTED, "tdx-pck-crl-issuer", ex, ac,
                            "the PCK CRL is not issued by the PCK's issuer (a Processor CA CRL "
                            "for a Platform CA PCK, or the reverse?)");
        }
        /* Verified with this very CA's key before (cached), or now. */
        if (memcmp(verified_ca_fp, ca_fp, 32) != 0) {
                if (X509_CRL_verify(pck_crl, X509_get0_pubkey(ca)) != 1) {
                        ERR_clear_error();
                        return fail(c, -EKEYREJECTED, "tdx-pck-crl", NULL, NULL,
                                    "the PCK CRL's signature does not verify with the PCK CA's "
                                    "key");
                }
                if (!cached)
                        collateral_cache_store(key, tcb, qe, tcb_signer, qe_signer, c->root_crl,
                                               pck_crl, ca_fp);
        }
        if (revoked(pck_crl, pck)) {
                char *serial = NULL;
                BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(pck), NULL);
                serial = bn ? BN_bn2hex(bn) : NULL;
                (void) snprintf(ac, sizeof(ac), "serial %s", serial ?: "?");
                OPENSSL_free(serial);
                BN_free(bn);
                return fail(c, -EKEYREJECTED, "tdx-pck-revoked", "not revoked", ac,
                            "the PCK certificate is revoked by the PCK CRL");
        }
        if (revoked(c->root_crl, ca))
                return fail(c, -EKEYREJECTED, "tdx-pck-revoked", "not revoked", "revoked",
                            "the PCK CA certificate is revoked by the root CA CRL");
        (void) pass(c, "tdx-crl",
                    "PCK CRL (by the PCK's issuer) and root CA CRL verify; nothing revoked");

        /* Windows: after authenticity, so a forgery is never reported as mere staleness. */
        r = crl_window(c, c->root_crl, "root CA CRL");
        if (r >= 0)
                r = crl_window(c, pck_crl, "PCK CRL");
        earliest(&v->collateral_expiry, asn1_to_time(X509_CRL_get0_nextUpdate(pck_crl)));
        earliest(&v->collateral_expiry, asn1_to_time(X509_CRL_get0_nextUpdate(c->root_crl)));
        if (r >= 0)
                r = doc_window(c, tcb->issue_date, tcb->next_update, "TCB info");
        if (r >= 0)
                r = doc_window(c, qe->issue_date, qe->next_update, "QE identity");
        if (r < 0)
                return r;
        earliest(&v->collateral_expiry, tcb->next_update);
        earliest(&v->collateral_expiry, qe->next_update);
        earliest(&v->collateral_expiry, asn1_to_time(X509_get0_notAfter(tcb_signer)));
        earliest(&v->collateral_expiry, asn1_to_time(X509_get0_notAfter(qe_signer)));
        (void) pass(c, "tdx-collateral-fresh",
                    "every CRL, the TCB info and the QE identity are inside their windows");

        /* The TCB info is the platform's. */
        if (memcmp(tcb->fmspc, v->pck.fmspc, 6) != 0 ||
            memcmp(tcb->pce_id, v->pck.pce_id, 2) != 0) {
                char e1[13], a1[13], e2[5], a2[5];
                hex_encode_buf(tcb->fmspc, 6, e1, sizeof(e1));
                hex_encode_buf(v->pck.fmspc, 6, a1, sizeof(a1));
                hex_encode_buf(tcb->pce_id, 2, e2, sizeof(e2));
                hex_encode_buf(v->pck.pce_id, 2, a2, sizeof(a2));
                (void) snprintf(ex, sizeof(ex), "FMSPC %s, PCE ID %s", e1, e2);
                (void) snprintf(ac, sizeof(ac), "FMSPC %s, PCE ID %s", a1, a2);
                return fail(c, -EKEYREJECTED, "tdx-tcb-info-fmspc", ex, ac,
                            "the TCB info is for another platform than the PCK certificate's");
        }
        r = check_qe_identity(c, q, qe);
        if (r < 0)
                return r;

        r = tdx_evaluate_tcb(q, &v->pck, tcb, qe, &v->tcb, c->d);
        if (r < 0) {
                if (c->cb)
                        c->cb(c->userdata, c->d->check, false, c->d->expected, c->d->actual,
                              c->d->message);
                return r;
        }
        (void) snprintf(detail, sizeof(detail),
                        "%s (platform level %d %s, TDX module %s %s, QE %s; TCB evaluation data "
                        "number %u)",
                        tdx_tcb_status_to_string(v->tcb.status), v->tcb.platform_level,
                        tdx_tcb_status_to_string(v->tcb.platform_status),
                        v->tcb.module_id[0] ? v->tcb.module_id : "base",
                        tdx_tcb_status_to_string(v->tcb.module_status),
                        tdx_tcb_status_to_string(v->tcb.qe_status), v->tcb.tcb_eval_number);
        v->collateral = true;
        return pass(c, "tdx-tcb-evaluation", detail);
}

int tdx_verify_quote(const TdxQuote *q, const uint8_t *raw, size_t raw_size,
                     const TdxCollateral *collateral, const TdxVerifyOptions *opts,
                     TdxVerification *ret, TdxCheckFunc cb, void *userdata, Diag *d)
{
        Diag local = {};
        Ctx c = { .cb = cb, .userdata = userdata, .d = d ?: &local };
        TdxVerification v = {};
        int r;

        c.at = opts && opts->at ? opts->at : time(NULL);
        r = load_root(opts, &c.root, c.d);
        if (r < 0)
                return r;
        tdx_cert_sha256(c.root, c.root_fp);
        r = verify_pck_chain(&c, q, &v);
        if (r >= 0)
                r = verify_pck_extensions(&c, &v);
        if (r >= 0 && !c.chain_cached)
                chain_cache_store(&c, &v.pck);
        if (r >= 0)
                r = verify_quote_signatures(&c, q, raw, raw_size);
        if (r >= 0 && collateral)
                r = verify_collateral(&c, q, collateral, &v);
        /* After the collateral's QE identity (which names the finer failures), and without it. */
        if (r >= 0)
                r = check_intel_td_qe(&c, q);
        X509_free(c.root);
        sk_X509_pop_free(c.chain, X509_free);
        X509_CRL_free(c.root_crl);
        ERR_clear_error();
        if (r >= 0 && ret)
                *ret = v;
        return r;
}
