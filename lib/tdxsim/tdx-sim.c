/* SPDX-License-Identifier: Apache-2.0 */
/* sim-tdx: see lib/include/cloister/tdx-sim.h. Layouts follow lib/tdx (docs/tdx.md). */
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/tdx-sim.h"
#include "cloister/timestamp.h"

#define SIM_BUF_MAX (12U * 1024U)

typedef struct Buf {
        uint8_t b[SIM_BUF_MAX];
        size_t n;
        bool overflow;
} Buf;

struct TdxSimulator {
        TdxSimConfig config;
        EVP_PKEY *root_key, *ca_key, *pck_key, *tcb_key, *ak;
        X509 *root, *ca, *pck, *tcb_signer;
        uint8_t ak_xy[64];
        Buf chain_pem; /* PCK, CA, root */
        TdxCollateral col;
};

static const uint8_t sim_fmspc[6] = { 0x5e, 0x51, 0x70, 0x00, 0x00, 0x00 };
static const char sim_qe_mrsigner[] =
        "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5";

static void put(Buf *b, const void *p, size_t n)
{
        if (b->overflow || n > sizeof(b->b) - b->n) {
                b->overflow = true;
                return;
        }
        memcpy(b->b + b->n, p, n);
        b->n += n;
}

static void put_le(Buf *b, uint64_t v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint8_t c = (uint8_t) (v >> (8 * i));
                put(b, &c, 1);
        }
}

/* DER TLV with a short, 0x81 or 0x82 length. */
static void tlv(Buf *out, uint8_t tag, const Buf *content)
{
        uint8_t h[4] = { tag };
        size_t hn;

        if (content->n < 0x80)
                h[1] = (uint8_t) content->n, hn = 2;
        else if (content->n < 0x100)
                h[1] = 0x81, h[2] = (uint8_t) content->n, hn = 3;
        else
                h[1] = 0x82, h[2] = (uint8_t) (content->n >> 8), h[3] = (uint8_t) content->n,
                hn = 4;
        put(out, h, hn);
        put(out, content->b, content->n);
        out->overflow |= content->overflow;
}

static void sgx_oid(Buf *out, uint8_t a, uint8_t b)
{
        static const uint8_t base[] = { 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01 };
        Buf c = {};

        put(&c, base, sizeof(base));
        put(&c, &a, 1);
        if (b)
                put(&c, &b, 1);
        tlv(out, 0x06, &c);
}

static void der_uint(Buf *out, uint8_t tag, unsigned v)
{
        Buf c = {};
        uint8_t b[3] = { 0, (uint8_t) (v >> 8), (uint8_t) v };
        size_t skip = v < 0x80 ? 2 : (v < 0x8000 ? 1 : 0);

        if (v >= 0x80 && v < 0x100)
                b[1] = 0;
        put(&c, b + skip, 3 - skip);
        tlv(out, tag, &c);
}

static void octets(Buf *out, const void *p, size_t n)
{
        Buf c = {};
        put(&c, p, n);
        tlv(out, 0x04, &c);
}

/* The SGX extension (Intel SGX PCK Certificate and CRL Profile): PPID, TCB (components 1..16,
 * PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type. Components 1-2 at 5, PCE SVN 11. */
static void sgx_extension(Buf *ext)
{
        static const uint8_t cpusvn[16] = { 5, 5 }, ppid[16] = { 0x51 }, pceid[2] = {};
        Buf seq = {}, tcb = {}, item;

        item = (Buf){};
        sgx_oid(&item, 1, 0);
        octets(&item, ppid, 16);
        tlv(&seq, 0x30, &item);
        for (uint8_t k = 1; k <= 18; k++) {
                item = (Buf){};
                sgx_oid(&item, 2, k);
                if (k <= 16)
                        der_uint(&item, 0x02, k <= 2 ? 5 : 0);
                else if (k == 17)
                        der_uint(&item, 0x02, 11);
                else
                        octets(&item, cpusvn, 16);
                tlv(&tcb, 0x30, &item);
        }
        item = (Buf){};
        sgx_oid(&item, 2, 0);
        tlv(&item, 0x30, &tcb);
        tlv(&seq, 0x30, &item);
        item = (Buf){};
        sgx_oid(&item, 3, 0);
        octets(&item, pceid, 2);
        tlv(&seq, 0x30, &item);
        item = (Buf){};
        sgx_oid(&item, 4, 0);
        octets(&item, sim_fmspc, 6);
        tlv(&seq, 0x30, &item);
        item = (Buf){};
        sgx_oid(&item, 5, 0);
        der_uint(&item, 0x0a, 0);
        tlv(&seq, 0x30, &item);
        tlv(ext, 0x30, &seq);
}

static int raw_sign(EVP_PKEY *key, const uint8_t *data, size_t n, uint8_t out[64])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char der[128];
        const unsigned char *p = der;
        size_t dn = sizeof(der);
        ECDSA_SIG *sig = NULL;
        int ok;

        ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(md, der, &dn, data, n) == 1 &&
             (sig = d2i_ECDSA_SIG(NULL, &p, (long) dn)) &&
             BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32;
        ECDSA_SIG_free(sig);
        return ok ? 0 : crypto_log_errors(-EIO, "sim-tdx: sign");
}

static X509 *mkcert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial,
                    time_t now, const Buf *sgx_ext)
{
        X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();
        bool ok = x && name && X509_set_version(x, 2) == 1 &&
                  ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
                  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn,
                                             -1, -1, 0) == 1 &&
                  X509_set_subject_name(x, name) == 1 &&
                  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1 &&
                  X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now) &&
                  X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, &now) &&
                  X509_set_pubkey(x, key) == 1;

        X509_NAME_free(name);
        if (ok && sgx_ext) {
                ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
                ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
                X509_EXTENSION *e = NULL;

                ok = obj && v && ASN1_OCTET_STRING_set(v, sgx_ext->b, (int) sgx_ext->n) == 1 &&
                     (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, v)) &&
                     X509_add_ext(x, e, -1) == 1;
                X509_EXTENSION_free(e);
                ASN1_OCTET_STRING_free(v);
                ASN1_OBJECT_free(obj);
        }
        if (!ok || X509_sign(x, issuer_key, EVP_sha256()) <= 0) {
                X509_free(x);
                (void) crypto_log_errors(-EIO, "sim-tdx: certificate");
                return NULL;
        }
        return x;
}

static int pem_append(Buf *b, X509 *x)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *p;
        long n;

        if (!bio || PEM_write_bio_X509(bio, x) != 1) {
                BIO_free(bio);
                return crypto_log_errors(-EIO, "sim-tdx: PEM");
        }
        n = BIO_get_mem_data(bio, &p);
        put(b, p, (size_t) n);
        BIO_free(bio);
        return b->overflow ? -ENOBUFS : 0;
}

static int copy_out(const Buf *b, uint8_t **ret, size_t *ret_size)
{
        uint8_t *p = malloc(b->n + 1);

        if (!p)
                return -ENOMEM;
        memcpy(p, b->b, b->n);
        p[b->n] = 0;
        *ret = p;
        *ret_size = b->n;
        return 0;
}

static int crl(X509 *issuer, EVP_PKEY *key, time_t now, uint8_t **ret, size_t *ret_size)
{
        X509_CRL *c = X509_CRL_new();
        ASN1_TIME *t = ASN1_TIME_new();
        unsigned char *der = NULL;
        int n = -1;

        if (c && t && X509_CRL_set_version(c, 1) == 1 &&
            X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer)) == 1 &&
            X509_time_adj_ex(t, -1, 0, &now) && X509_CRL_set1_lastUpdate(c, t) == 1 &&
            X509_time_adj_ex(t, 30, 0, &now) && X509_CRL_set1_nextUpdate(c, t) == 1 &&
            X509_CRL_sign(c, key, EVP_sha256()) > 0)
                n = i2d_X509_CRL(c, &der);
        X509_CRL_free(c);
        ASN1_TIME_free(t);
        if (n <= 0)
                return crypto_log_errors(-EIO, "sim-tdx: CRL");
        *ret = malloc((size_t) n);
        if (!*ret) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(*ret, der, (size_t) n);
        *ret_size = (size_t) n;
        OPENSSL_free(der);
        return 0;
}

/* {"<name>": inner, "signature": hex} with the signature over inner's exact bytes. */
static int signed_doc(EVP_PKEY *key, const char *name, const char *inner, uint8_t **ret,
                      size_t *ret_size)
{
        uint8_t sig[64];
        char hex[129], *doc = NULL;
        int r = raw_sign(key, (const uint8_t *) inner, strlen(inner), sig);

        if (r < 0)
                return r;
        hex_encode_buf(sig, 64, hex, sizeof(hex));
        if (asprintf(&doc, "{\"%s\":%s,\"signature\":\"%s\"}", name, inner, hex) < 0)
                return -ENOMEM;
        *ret = (uint8_t *) doc;
        *ret_size = strlen(doc);
        return 0;
}

static int make_collateral(TdxSimulator *s, time_t now)
{
        static const char comps_sgx[] =
                "[{\"svn\":5},{\"svn\":5},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0}]";
        static const char comps_tdx[] =
                "[{\"svn\":0},{\"svn\":0},{\"svn\":7},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0}]";
        char issue[TIMESTAMP_UTC_SIZE], next[TIMESTAMP_UTC_SIZE], fmspc[13], zeros[97];
        _cleanup_(freep) char *tcb = NULL, *qe = NULL;
        Buf chain = {};
        int r;

        if (timestamp_format_utc(now - 86400, issue) < 0 ||
            timestamp_format_utc(now + 30 * 86400, next) < 0)
                return -ERANGE;
        hex_encode_buf(sim_fmspc, 6, fmspc, sizeof(fmspc));
        memset(zeros, '0', 96);
        zeros[96] = 0;
        if (asprintf(&tcb,
                     "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                     "\"fmspc\":\"%s\",\"pceId\":\"0000\",\"tcbType\":0,"
                     "\"tcbEvaluationDataNumber\":17,\"tdxModule\":{\"mrsigner\":\"%s\","
                     "\"attributes\":\"0000000000000000\",\"attributesMask\":"
                     "\"FFFFFFFFFFFFFFFF\"},\"tdxModuleIdentities\":[{\"id\":\"TDX_01\","
                     "\"mrsigner\":\"%s\",\"attributes\":\"0000000000000000\","
                     "\"attributesMask\":\"FFFFFFFFFFFFFFFF\",\"tcbLevels\":[{\"tcb\":"
                     "{\"isvsvn\":4},\"tcbDate\":\"%s\",\"tcbStatus\":\"UpToDate\"}]}],"
                     "\"tcbLevels\":[{\"tcb\":{\"sgxtcbcomponents\":%s,\"pcesvn\":11,"
                     "\"tdxtcbcomponents\":%s},\"tcbDate\":\"%s\",\"tcbStatus\":\"UpToDate\"}]}",
                     issue, next, fmspc, zeros, zeros, issue, comps_sgx, comps_tdx, issue) < 0 ||
            asprintf(&qe,
                     "{\"id\":\"TD_QE\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                     "\"tcbEvaluationDataNumber\":17,\"miscselect\":\"00000000\","
                     "\"miscselectMask\":\"FFFFFFFF\",\"attributes\":"
                     "\"11000000000000000000000000000000\",\"attributesMask\":"
                     "\"FBFFFFFFFFFFFFFF0000000000000000\",\"mrsigner\":\"%s\",\"isvprodid\":2,"
                     "\"tcbLevels\":[{\"tcb\":{\"isvsvn\":4},\"tcbDate\":\"%s\",\"tcbStatus\":"
                     "\"UpToDate\"}]}",
                     issue, next, sim_qe_mrsigner, issue) < 0)
                return -ENOMEM;
        if ((r = signed_doc(s->tcb_key, "tcbInfo", tcb, &s->col.tcb_info, &s->col.tcb_info_size)) <
                    0 ||
            (r = signed_doc(s->tcb_key, "enclaveIdentity", qe, &s->col.qe_identity,
                            &s->col.qe_identity_size)) < 0)
                return r;
        if ((r = pem_append(&chain, s->tcb_signer)) < 0 || (r = pem_append(&chain, s->root)) < 0 ||
            (r = copy_out(&chain, &s->col.tcb_info_chain, &s->col.tcb_info_chain_size)) < 0 ||
            (r = copy_out(&chain, &s->col.qe_identity_chain, &s->col.qe_identity_chain_size)) < 0)
                return r;
        if ((r = crl(s->ca, s->ca_key, now, &s->col.pck_crl, &s->col.pck_crl_size)) < 0 ||
            (r = crl(s->root, s->root_key, now, &s->col.root_crl, &s->col.root_crl_size)) < 0)
                return r;
        return 0;
}

void tdx_sim_config_defaults(TdxSimConfig *c)
{
        *c = (TdxSimConfig){ .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE, .xfam = 0xe7 };
}

TdxSimulator *tdx_sim_free(TdxSimulator *s)
{
        if (!s)
                return NULL;
        EVP_PKEY_free(s->root_key), EVP_PKEY_free(s->ca_key), EVP_PKEY_free(s->pck_key);
        EVP_PKEY_free(s->tcb_key), EVP_PKEY_free(s->ak);
        X509_free(s->root), X509_free(s->ca), X509_free(s->pck), X509_free(s->tcb_signer);
        free(s->col.tcb_info), free(s->col.tcb_info_chain), free(s->col.qe_identity);
        free(s->col.qe_identity_chain), free(s->col.pck_crl), free(s->col.root_crl);
        free(s);
        return NULL;
}

/* A root made by tdx_sim_root_export(): the root certificate and its P-256 key, optionally
 * followed by the PCK Platform CA's certificate (issued by that root) and its key: one CA for
 * every simulated platform under the root, as Intel has one, so that one PCK CRL (one cache
 * entry per FMSPC and CA) serves them all. */
static int load_root(TdxSimulator *s, const char *pem)
{
        BIO *bio = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *pub;
        int ok;

        if (!bio)
                return -ENOMEM;
        s->root = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        s->ca = s->root ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        (void) BIO_reset(bio);
        s->root_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        s->ca_key = s->root_key && s->ca ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        ERR_clear_error();
        if (!s->root || !s->root_key || !s->ca != !s->ca_key)
                return -EBADMSG;
        pub = X509_get0_pubkey(s->root);
        ok = pub && EVP_PKEY_eq(pub, s->root_key) == 1 && EVP_PKEY_is_a(s->root_key, "EC");
        if (ok && s->ca) {
                pub = X509_get0_pubkey(s->ca);
                ok = pub && EVP_PKEY_eq(pub, s->ca_key) == 1 && EVP_PKEY_is_a(s->ca_key, "EC") &&
                     X509_verify(s->ca, s->root_key) == 1;
                ERR_clear_error();
        }
        return ok ? 0 : -EBADMSG;
}

int tdx_sim_new(const TdxSimConfig *config, TdxSimulator **ret)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *s = calloc(1, sizeof(*s));
        time_t now = time(NULL);
        uint8_t point[65];
        size_t pn = sizeof(point);
        Buf ext = {};
        int r;

        if (!s)
                return -ENOMEM;
        if (config)
                s->config = *config;
        else
                tdx_sim_config_defaults(&s->config);
        if (s->config.root_pem) {
                r = load_root(s, s->config.root_pem);
                if (r < 0)
                        return r;
                s->config.root_pem = NULL; /* the caller's; not kept */
        }
        EVP_PKEY **keys[] = { &s->root_key, &s->ca_key, &s->pck_key, &s->tcb_key, &s->ak };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (!*keys[i] && !(*keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
                        return crypto_log_errors(-EIO, "sim-tdx: key generation");
        if (EVP_PKEY_get_octet_string_param(s->ak, "pub", point, sizeof(point), &pn) != 1 ||
            pn != 65)
                return crypto_log_errors(-EIO, "sim-tdx: attestation key");
        memcpy(s->ak_xy, point + 1, 64);
        sgx_extension(&ext);
        if (ext.overflow)
                return -ENOBUFS;
        if (!s->root)
                s->root = mkcert("sim-tdx SGX Root CA (simulated, not Intel)", s->root_key, NULL,
                                 s->root_key, 1, now, NULL);
        if (!s->ca)
                s->ca = s->root ? mkcert("Intel SGX PCK Platform CA", s->ca_key, s->root,
                                         s->root_key, 2, now, NULL)
                                : NULL;
        s->pck = s->ca ? mkcert("Intel SGX PCK Certificate", s->pck_key, s->ca, s->ca_key, 3, now,
                                &ext)
                       : NULL;
        s->tcb_signer = s->root ? mkcert("Intel SGX TCB Signing", s->tcb_key, s->root, s->root_key,
                                         4, now, NULL)
                                : NULL;
        if (!s->root || !s->ca || !s->pck || !s->tcb_signer)
                return -EIO;
        if ((r = pem_append(&s->chain_pem, s->pck)) < 0 ||
            (r = pem_append(&s->chain_pem, s->ca)) < 0 ||
            (r = pem_append(&s->chain_pem, s->root)) < 0)
                return r;
        r = make_collateral(s, now);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int tdx_sim_quote(TdxSimulator *s, const uint8_t report_data[static 64], uint8_t **ret,
                  size_t *ret_size)
{
        static const uint8_t intel_qe_vendor[16] = {
                0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07
        };
        static const uint8_t auth[32] = { 0x5a };
        static const uint8_t tee_tcb_svn[16] = { 4, 1, 7 }; /* module TDX_01, ISV SVN 4 */
        const TdxSimConfig *c = &s->config;
        _cleanup_(freep) Buf *q = calloc(1, sizeof(Buf)), *sig = calloc(1, sizeof(Buf)),
                             *cert = calloc(1, sizeof(Buf));
        uint8_t qe[TDX_QE_REPORT_SIZE] = {}, sigbuf[64], mrsigner[32];
        int r;

        if (!q || !sig || !cert)
                return -ENOMEM;
        /* Header (version 4, ECDSA-256, TDX), TD 1.0 body. */
        put_le(q, 4, 2), put_le(q, TDX_ATT_KEY_ECDSA256, 2), put_le(q, TDX_TEE_TYPE, 4);
        put_le(q, 0, 4);
        put(q, intel_qe_vendor, 16);
        put(q, (uint8_t[20]){}, 20);
        put(q, tee_tcb_svn, 16);
        put(q, (uint8_t[48]){ 0x5e }, 48); /* MRSEAM */
        put(q, (uint8_t[48]){}, 48);       /* MRSIGNERSEAM: Intel's module (zero) */
        put_le(q, 0, 8);                   /* SEAMATTRIBUTES */
        put_le(q, c->td_attributes, 8);
        put_le(q, c->xfam, 8);
        put(q, c->mr_td, 48);
        put(q, c->mr_config_id, 48);
        put(q, (uint8_t[48]){}, 48); /* MROWNER */
        put(q, (uint8_t[48]){}, 48); /* MROWNERCONFIG */
        for (int i = 0; i < 4; i++)
                put(q, c->rtmr[i], 48);
        put(q, report_data, 64);

        /* QE report: ATTRIBUTES, MRSIGNER, ISVPRODID 2, ISVSVN 4, REPORTDATA = SHA-256(AK ‖
         * auth) ‖ 0. */
        qe[48] = 0x11;
        if (hex_decode_exact(sim_qe_mrsigner, mrsigner, 32) < 0)
                return -EINVAL;
        memcpy(qe + 128, mrsigner, 32);
        qe[256] = 2, qe[258] = 4;
        {
                const IoVec parts[] = { { s->ak_xy, 64 }, { auth, sizeof(auth) } };
                r = crypto_digest("SHA256", parts, ELEMENTSOF(parts), qe + 320, 32);
                if (r < 0)
                        return r;
        }
        put(cert, qe, sizeof(qe));
        if ((r = raw_sign(s->pck_key, qe, sizeof(qe), sigbuf)) < 0)
                return r;
        put(cert, sigbuf, 64);
        put_le(cert, sizeof(auth), 2);
        put(cert, auth, sizeof(auth));
        put_le(cert, 5, 2);
        put_le(cert, s->chain_pem.n, 4);
        put(cert, s->chain_pem.b, s->chain_pem.n);

        if ((r = raw_sign(s->ak, q->b, q->n, sigbuf)) < 0)
                return r;
        put(sig, sigbuf, 64);
        put(sig, s->ak_xy, 64);
        put_le(sig, 6, 2);
        put_le(sig, cert->n, 4);
        put(sig, cert->b, cert->n);
        put_le(q, sig->n, 4);
        put(q, sig->b, sig->n);
        if (q->overflow || sig->overflow || cert->overflow)
                return -ENOBUFS;
        return copy_out(q, ret, ret_size);
}

int tdx_sim_collateral(TdxSimulator *s, TdxCollateral *ret)
{
        *ret = s->col;
        return 0;
}

int tdx_sim_root_pem(TdxSimulator *s, char **ret)
{
        Buf *b = calloc(1, sizeof(Buf));
        size_t n;
        int r;

        if (!b)
                return -ENOMEM;
        r = pem_append(b, s->root);
        if (r >= 0)
                r = copy_out(b, (uint8_t **) ret, &n);
        free(b);
        return r;
}

int tdx_sim_root_export(TdxSimulator *s, char **ret)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *p, *out;
        long n;

        if (!bio || PEM_write_bio_X509(bio, s->root) != 1 ||
            PEM_write_bio_PrivateKey(bio, s->root_key, NULL, NULL, 0, NULL, NULL) != 1 ||
            PEM_write_bio_X509(bio, s->ca) != 1 ||
            PEM_write_bio_PrivateKey(bio, s->ca_key, NULL, NULL, 0, NULL, NULL) != 1) {
                BIO_free(bio);
                return crypto_log_errors(-EIO, "sim-tdx: root export");
        }
        n = BIO_get_mem_data(bio, &p);
        out = n > 0 ? strndup(p, (size_t) n) : NULL;
        BIO_free_all(bio);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}
