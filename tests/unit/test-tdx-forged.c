/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX verification against quotes and collateral made here, under a test root CA: what the
 * recorded Intel data cannot show (a revoked PCK, a CRL by the wrong key, another platform's TCB
 * info, a module mismatch, TCB levels of every status). Everything is signed as Intel's
 * infrastructure signs it; only the root differs, and the verifier is told to trust it (the
 * built-in Intel root refuses it).
 */
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#include "helpers/unit.h"

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"

typedef struct Buf {
        uint8_t b[16384];
        size_t n;
} Buf;

static void put(Buf *b, const void *p, size_t n)
{
        assert_true(b->n + n <= sizeof(b->b));
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

/* DER: tag, short or 0x82 length, content. */
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
}

static void sgx_oid(Buf *out, const uint8_t *arcs, size_t n)
{
        static const uint8_t base[] = { 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01 };
        Buf c = {};
        put(&c, base, sizeof(base));
        put(&c, arcs, n);
        tlv(out, 0x06, &c);
}

static void der_small_int(Buf *out, uint8_t tag, unsigned v)
{
        Buf c = {};
        uint8_t b[3] = { 0, (uint8_t) (v >> 8), (uint8_t) v };
        size_t skip = v < 0x80 ? 2 : v < 0x100 ? 1 : v < 0x8000 ? 1 : 0;

        if (v >= 0x80 && v < 0x100)
                b[1] = 0, b[2] = (uint8_t) v; /* 0x00 then the byte: stays positive */
        put(&c, b + skip, 3 - skip);
        tlv(out, tag, &c);
}

typedef struct Forge {
        /* knobs, set before forge_build() */
        uint8_t tee_tcb_svn[16];
        uint8_t pck_svn[16];
        uint16_t pcesvn;
        uint16_t qe_isvsvn;
        uint8_t fmspc[6];
        uint8_t mr_signer_seam[48];
        uint64_t td_attributes;
        const char *tcb_fmspc; /* the TCB info's, hex */
        const char *platform_levels, *module_levels, *qe_levels, *qe_mrsigner;
        uint64_t seam_attributes;
        uint16_t qe_isvprodid;
        uint8_t qe_attributes0;
        uint32_t qe_miscselect;
        bool revoke_pck, revoke_ca, pck_crl_other_key, tcb_signer_untrusted, bad_qe_binding,
                bad_qe_signature, root_crl_other_key, revoke_tcb_signer, qe_signer_untrusted;
        /* results */
        EVP_PKEY *root_key, *ca_key, *pck_key, *tcb_key, *ak, *other_key;
        X509 *root, *ca, *pck, *tcb_signer;
        char *root_pem;
        uint8_t root_fp[32];
        Buf quote;
        TdxCollateral col;
        time_t at;
} Forge;

static EVP_PKEY *keygen(void)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(k);
        return k;
}

static void raw_sign(EVP_PKEY *key, const uint8_t *data, size_t n, uint8_t out[64])
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char der[128];
        const unsigned char *p = der;
        size_t dn = sizeof(der);
        ECDSA_SIG *sig;

        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_DigestSign(md, der, &dn, data, n), 1);
        sig = d2i_ECDSA_SIG(NULL, &p, (long) dn);
        assert_non_null(sig);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32), 32);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32), 32);
        ECDSA_SIG_free(sig);
        EVP_MD_CTX_free(md);
}

static X509 *mkcert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial,
                    const Buf *sgx_ext)
{
        X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();

        assert_int_equal(X509_set_version(x, 2), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *) cn, -1, -1, 0),
                         1);
        assert_int_equal(X509_set_subject_name(x, name), 1);
        assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
        X509_NAME_free(name);
        assert_non_null(ASN1_TIME_set_string(X509_getm_notBefore(x), "20200101000000Z"));
        assert_non_null(ASN1_TIME_set_string(X509_getm_notAfter(x), "20400101000000Z"));
        assert_int_equal(X509_set_pubkey(x, key), 1);
        if (sgx_ext) {
                ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
                ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
                X509_EXTENSION *e;

                assert_int_equal(ASN1_OCTET_STRING_set(v, sgx_ext->b, (int) sgx_ext->n), 1);
                e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, v);
                assert_int_equal(X509_add_ext(x, e, -1), 1);
                X509_EXTENSION_free(e);
                ASN1_OCTET_STRING_free(v);
                ASN1_OBJECT_free(obj);
        }
        assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
        return x;
}

static void pem_append(Buf *b, X509 *x)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *p;
        long n;

        assert_int_equal(PEM_write_bio_X509(bio, x), 1);
        n = BIO_get_mem_data(bio, &p);
        put(b, p, (size_t) n);
        BIO_free(bio);
}

static uint8_t *crl_der(X509 *issuer, EVP_PKEY *key, X509 *revoked, size_t *ret_size)
{
        X509_CRL *crl = X509_CRL_new();
        ASN1_TIME *t = ASN1_TIME_new();
        unsigned char *der = NULL;
        uint8_t *copy;
        int n;

        assert_int_equal(X509_CRL_set_version(crl, 1), 1);
        assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
        assert_non_null(ASN1_TIME_set_string(t, "20291201000000Z"));
        assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
        assert_non_null(ASN1_TIME_set_string(t, "20300201000000Z"));
        assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
        if (revoked) {
                X509_REVOKED *r = X509_REVOKED_new();
                assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)),
                                 1);
                assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
                assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
        }
        assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
        n = i2d_X509_CRL(crl, &der);
        copy = malloc((size_t) n);
        memcpy(copy, der, (size_t) n);
        *ret_size = (size_t) n;
        OPENSSL_free(der);
        ASN1_TIME_free(t);
        X509_CRL_free(crl);
        return copy;
}

static const char zeros96[] = "00000000000000000000000000000000000000000000000000000000000000000000"
                              "0000000000000000000000000000";

static void forge_init(Forge *f)
{
        *f = (Forge){
                .pcesvn = 11,
                .qe_isvsvn = 4,
                .qe_isvprodid = 2,
                .qe_attributes0 = 0x11,
                .fmspc = { 0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00 },
                .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE,
                .tcb_fmspc = "00906ED50000",
                /* newest first, as Intel sorts them */
                .platform_levels =
                        "{\"tcb\":{\"sgxtcbcomponents\":[{\"svn\":5},{\"svn\":5},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0}],\"pcesvn\":11,\"tdxtcbcomponents\":[{\"svn\":5},{\"svn\":1},"
                        "{\"svn\":7},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0}]},\"tcbDate\":\"2029-01-01T00:00:00Z\","
                        "\"tcbStatus\":\"UpToDate\"},"
                        "{\"tcb\":{\"sgxtcbcomponents\":[{\"svn\":3},{\"svn\":3},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0}],\"pcesvn\":11,\"tdxtcbcomponents\":[{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":5},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0}]},\"tcbDate\":\"2028-01-01T00:00:00Z\","
                        "\"tcbStatus\":\"ConfigurationNeeded\",\"advisoryIDs\":[\"INTEL-SA-00001\"]"
                        "},"
                        "{\"tcb\":{\"sgxtcbcomponents\":[{\"svn\":2},{\"svn\":2},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0}],\"pcesvn\":11,\"tdxtcbcomponents\":[{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},"
                        "{\"svn\":0},{\"svn\":0}]},\"tcbDate\":\"2027-01-01T00:00:00Z\","
                        "\"tcbStatus\":\"Revoked\",\"advisoryIDs\":[\"INTEL-SA-00002\"]}",
                .module_levels = "{\"tcb\":{\"isvsvn\":4},\"tcbDate\":\"2029-01-01T00:00:00Z\","
                                 "\"tcbStatus\":\"UpToDate\"},{\"tcb\":{\"isvsvn\":2},\"tcbDate\":"
                                 "\"2028-01-01T00:00:00Z\",\"tcbStatus\":\"OutOfDate\","
                                 "\"advisoryIDs\":[\"INTEL-SA-00003\"]}",
                .qe_levels = "{\"tcb\":{\"isvsvn\":4},\"tcbDate\":\"2029-01-01T00:00:00Z\","
                             "\"tcbStatus\":\"UpToDate\"},{\"tcb\":{\"isvsvn\":2},\"tcbDate\":"
                             "\"2028-01-01T00:00:00Z\",\"tcbStatus\":\"OutOfDate\"}",
                .qe_mrsigner = "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5",
        };
        /* Module TDX_01, ISV SVN 6; TDX component 2 at 7. */
        f->tee_tcb_svn[0] = 6, f->tee_tcb_svn[1] = 1, f->tee_tcb_svn[2] = 7;
        f->pck_svn[0] = 5, f->pck_svn[1] = 5;
        f->at = 1893456000; /* 2030-01-01T00:00:00Z */
}

static char *signed_doc(const char *name, const char *inner, EVP_PKEY *key)
{
        uint8_t sig[64];
        char hex[129], *doc;

        raw_sign(key, (const uint8_t *) inner, strlen(inner), sig);
        hex_encode_buf(sig, 64, hex, sizeof(hex));
        assert_true(asprintf(&doc, "{\"%s\":%s,\"signature\":\"%s\"}", name, inner, hex) > 0);
        return doc;
}

static void forge_build(Forge *f)
{
        Buf ext = {}, tcbseq = {}, item = {}, c = {}, pem = {}, cert = {}, sigdata = {};
        uint8_t qe[384] = {}, h[32], ak_xy[64], point[65];
        size_t pn = sizeof(point);
        char *inner;

        f->root_key = keygen(), f->ca_key = keygen(), f->pck_key = keygen();
        f->tcb_key = keygen(), f->ak = keygen(), f->other_key = keygen();

        /* SGX extension: PPID, TCB (16 components, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type. */
        {
                uint8_t a1[] = { 1 }, a2[] = { 2 }, a3[] = { 3 }, a4[] = { 4 }, a5[] = { 5 };
                uint8_t ppid[16] = { 1 }, pceid[2] = {};
                Buf v;

                item = (Buf){}, v = (Buf){};
                sgx_oid(&item, a1, 1);
                put(&v, ppid, 16);
                tlv(&item, 0x04, &v);
                tlv(&ext, 0x30, &item);
                for (uint8_t k = 1; k <= 18; k++) {
                        uint8_t arcs[] = { 2, k };
                        item = (Buf){};
                        sgx_oid(&item, arcs, 2);
                        if (k <= 16)
                                der_small_int(&item, 0x02, f->pck_svn[k - 1]);
                        else if (k == 17)
                                der_small_int(&item, 0x02, f->pcesvn);
                        else {
                                v = (Buf){};
                                put(&v, f->pck_svn, 16);
                                tlv(&item, 0x04, &v);
                        }
                        tlv(&tcbseq, 0x30, &item);
                }
                item = (Buf){};
                sgx_oid(&item, a2, 1);
                tlv(&item, 0x30, &tcbseq);
                tlv(&ext, 0x30, &item);
                item = (Buf){}, v = (Buf){};
                sgx_oid(&item, a3, 1);
                put(&v, pceid, 2);
                tlv(&item, 0x04, &v);
                tlv(&ext, 0x30, &item);
                item = (Buf){}, v = (Buf){};
                sgx_oid(&item, a4, 1);
                put(&v, f->fmspc, 6);
                tlv(&item, 0x04, &v);
                tlv(&ext, 0x30, &item);
                item = (Buf){};
                sgx_oid(&item, a5, 1);
                der_small_int(&item, 0x0a, 0);
                tlv(&ext, 0x30, &item);
                c = ext, ext = (Buf){};
                tlv(&ext, 0x30, &c);
        }
        f->root = mkcert("Test SGX Root CA", f->root_key, NULL, f->root_key, 1, NULL);
        f->ca = mkcert("Intel SGX PCK Platform CA", f->ca_key, f->root, f->root_key, 2, NULL);
        f->pck = mkcert("Intel SGX PCK Certificate", f->pck_key, f->ca, f->ca_key, 3, &ext);
        f->tcb_signer = mkcert("Intel SGX TCB Signing", f->tcb_key, f->root,
                               f->tcb_signer_untrusted ? f->other_key : f->root_key, 4, NULL);
        {
                unsigned char *der = NULL;
                int n = i2d_X509(f->root, &der);
                crypto_sha256(der, (size_t) n, f->root_fp);
                OPENSSL_free(der);
        }
        pem = (Buf){};
        pem_append(&pem, f->root);
        f->root_pem = strndup((char *) pem.b, pem.n);

        /* The quote: header, TD 1.0 body, then the signature data. */
        assert_int_equal(EVP_PKEY_get_octet_string_param(f->ak, "pub", point, sizeof(point), &pn),
                         1);
        memcpy(ak_xy, point + 1, 64);
        f->quote = (Buf){};
        put_le(&f->quote, 4, 2), put_le(&f->quote, 2, 2), put_le(&f->quote, 0x81, 4);
        put_le(&f->quote, 0, 4);
        put(&f->quote, "\x93\x9a\x72\x33\xf7\x9c\x4c\xa9\x94\x0a\x0d\xb3\x95\x7f\x06\x07", 16);
        put(&f->quote, "user-data-user-data!", 20);
        put(&f->quote, f->tee_tcb_svn, 16);
        put(&f->quote, (uint8_t[48]){ 0x11 }, 48); /* MRSEAM */
        put(&f->quote, f->mr_signer_seam, 48);
        put_le(&f->quote, f->seam_attributes, 8);
        put_le(&f->quote, f->td_attributes, 8);
        put_le(&f->quote, 0xe7, 8);
        for (int i = 0; i < 4 + 4; i++) /* MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0-3 */
                put(&f->quote, (uint8_t[48]){ (uint8_t) (0x20 + i) }, 48);
        put(&f->quote, (uint8_t[64]){ 0x99 }, 64);
        assert_int_equal(f->quote.n, 632);

        /* QE report: ISVPRODID 2, ISVSVN, MRSIGNER; REPORTDATA = SHA-256(AK ‖ auth) ‖ 0. */
        {
                uint8_t auth[32];
                memset(auth, 0xAA, sizeof(auth));
                hex_decode_exact(f->qe_mrsigner, qe + 128, 32);
                qe[256] = (uint8_t) f->qe_isvprodid, qe[257] = (uint8_t) (f->qe_isvprodid >> 8);
                memcpy(qe + 16, &f->qe_miscselect, 4); /* little-endian host */
                qe[258] = (uint8_t) f->qe_isvsvn, qe[259] = (uint8_t) (f->qe_isvsvn >> 8);
                qe[48] = f->qe_attributes0; /* ATTRIBUTES as the TD QE has them: 0x11 */
                {
                        const IoVec parts[] = { { ak_xy, 64 }, { auth, 32 } };
                        assert_int_equal(crypto_digest("SHA256", parts, 2, h, 32), 0);
                }
                memcpy(qe + 320, h, 32);
                if (f->bad_qe_binding)
                        qe[320] ^= 1;
                pem = (Buf){};
                pem_append(&pem, f->pck);
                pem_append(&pem, f->ca);
                pem_append(&pem, f->root);
                cert = (Buf){};
                put(&cert, qe, 384);
                {
                        uint8_t s[64];
                        raw_sign(f->pck_key, qe, 384, s);
                        if (f->bad_qe_signature)
                                s[10] ^= 1;
                        put(&cert, s, 64);
                }
                put_le(&cert, 32, 2);
                put(&cert, auth, 32);
                put_le(&cert, 5, 2);
                put_le(&cert, pem.n, 4);
                put(&cert, pem.b, pem.n);
        }
        {
                uint8_t s[64];
                raw_sign(f->ak, f->quote.b, 632, s);
                put(&sigdata, s, 64);
        }
        put(&sigdata, ak_xy, 64);
        put_le(&sigdata, 6, 2);
        put_le(&sigdata, cert.n, 4);
        put(&sigdata, cert.b, cert.n);
        put_le(&f->quote, sigdata.n, 4);
        put(&f->quote, sigdata.b, sigdata.n);

        /* Collateral. */
        assert_true(asprintf(&inner,
                             "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"2029-12-01T00:00:00Z\","
                             "\"nextUpdate\":\"2030-02-01T00:00:00Z\",\"fmspc\":\"%s\","
                             "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":18,"
                             "\"tdxModule\":{\"mrsigner\":\"%s\",\"attributes\":"
                             "\"0000000000000000\",\"attributesMask\":\"FFFFFFFFFFFFFFFF\"},"
                             "\"tdxModuleIdentities\":[{\"id\":\"TDX_01\",\"mrsigner\":\"%s\","
                             "\"attributes\":\"0000000000000000\",\"attributesMask\":"
                             "\"FFFFFFFFFFFFFFFF\",\"tcbLevels\":[%s]}],\"tcbLevels\":[%s]}",
                             f->tcb_fmspc, zeros96, zeros96, f->module_levels,
                             f->platform_levels) > 0);
        f->col.tcb_info = (uint8_t *) signed_doc("tcbInfo", inner, f->tcb_key);
        f->col.tcb_info_size = strlen((char *) f->col.tcb_info);
        free(inner);
        assert_true(asprintf(&inner,
                             "{\"id\":\"TD_QE\",\"version\":2,\"issueDate\":"
                             "\"2029-12-01T00:00:00Z\",\"nextUpdate\":\"2030-02-01T00:00:00Z\","
                             "\"tcbEvaluationDataNumber\":18,\"miscselect\":\"00000000\","
                             "\"miscselectMask\":\"FFFFFFFF\",\"attributes\":"
                             "\"11000000000000000000000000000000\",\"attributesMask\":"
                             "\"FBFFFFFFFFFFFFFF0000000000000000\",\"mrsigner\":"
                             "\"DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5\","
                             "\"isvprodid\":2,\"tcbLevels\":[%s]}",
                             f->qe_levels) > 0);
        f->col.qe_identity = (uint8_t *) signed_doc("enclaveIdentity", inner, f->tcb_key);
        f->col.qe_identity_size = strlen((char *) f->col.qe_identity);
        free(inner);
        pem = (Buf){};
        pem_append(&pem, f->tcb_signer);
        pem_append(&pem, f->root);
        f->col.tcb_info_chain = (uint8_t *) strndup((char *) pem.b, pem.n);
        f->col.tcb_info_chain_size = pem.n;
        if (f->qe_signer_untrusted) {
                /* The same subject and key as the TCB info's signer, another issuer's signature:
                 * only a check of the QE identity's own chain refuses it. */
                X509 *qs =
                        mkcert("Intel SGX TCB Signing", f->tcb_key, f->root, f->other_key, 5, NULL);
                pem = (Buf){};
                pem_append(&pem, qs);
                pem_append(&pem, f->root);
                X509_free(qs);
        }
        f->col.qe_identity_chain = (uint8_t *) strndup((char *) pem.b, pem.n);
        f->col.qe_identity_chain_size = pem.n;
        f->col.pck_crl = crl_der(f->ca, f->pck_crl_other_key ? f->other_key : f->ca_key,
                                 f->revoke_pck ? f->pck : NULL, &f->col.pck_crl_size);
        f->col.root_crl = crl_der(f->root, f->root_crl_other_key ? f->other_key : f->root_key,
                                  f->revoke_ca           ? f->ca
                                  : f->revoke_tcb_signer ? f->tcb_signer
                                                         : NULL,
                                  &f->col.root_crl_size);
}

static void forge_free(Forge *f)
{
        EVP_PKEY *keys[] = { f->root_key, f->ca_key, f->pck_key, f->tcb_key, f->ak, f->other_key };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                EVP_PKEY_free(keys[i]);
        X509_free(f->root), X509_free(f->ca), X509_free(f->pck), X509_free(f->tcb_signer);
        free(f->root_pem);
        free(f->col.tcb_info), free(f->col.tcb_info_chain), free(f->col.qe_identity);
        free(f->col.qe_identity_chain), free(f->col.pck_crl), free(f->col.root_crl);
}

static int forge_verify(Forge *f, TdxVerification *v, Diag *d)
{
        TdxVerifyOptions o = { .at = f->at, .root_pem = f->root_pem, .root_sha256 = f->root_fp };
        TdxQuote q;
        int r;

        diag_clear(d);
        r = tdx_quote_parse(f->quote.b, f->quote.n, &q, d);
        if (r < 0)
                return r;
        return tdx_verify_quote(&q, f->quote.b, f->quote.n, &f->col, &o, v, NULL, NULL, d);
}

/* Builds with the knobs set by setup, verifies, and checks the outcome. */
#define EXPECT(setup, error, check_name)                                                           \
        do {                                                                                       \
                Forge f;                                                                           \
                TdxVerification v;                                                                 \
                Diag d;                                                                            \
                int r_;                                                                            \
                forge_init(&f);                                                                    \
                setup;                                                                             \
                forge_build(&f);                                                                   \
                r_ = forge_verify(&f, &v, &d);                                                     \
                if (r_ != (error) || ((error) < 0 && strcmp(d.check, check_name) != 0))            \
                        fail_msg("%s: got %d [%s] %s, expected %d [%s]", #setup, r_, d.check,      \
                                 d.message, error, check_name);                                    \
                forge_free(&f);                                                                    \
        } while (0)

/* Without collateral (its sender decides whether to include it), against a policy that does not
 * require it: the QE must still be Intel's production TD QE on a production module (a host
 * that launches its own "QE" could otherwise certify any key; an attack review showed it). */
static void expect_without_collateral(void (*setup)(Forge *f), int error, const char *check_name)
{
        Forge f;
        TdxVerification v;
        TdxVerifyOptions o;
        TdxQuote q;
        Diag d;
        int r;

        forge_init(&f);
        setup(&f);
        forge_build(&f);
        o = (TdxVerifyOptions){ .at = f.at, .root_pem = f.root_pem, .root_sha256 = f.root_fp };
        diag_clear(&d);
        assert_int_equal(tdx_quote_parse(f.quote.b, f.quote.n, &q, &d), 0);
        r = tdx_verify_quote(&q, f.quote.b, f.quote.n, NULL, &o, &v, NULL, NULL, &d);
        if (r != error || (error < 0 && strcmp(d.check, check_name) != 0))
                fail_msg("got %d [%s] %s, expected %d [%s]", r, d.check, d.message, error,
                         check_name);
        forge_free(&f);
}

static void genuine(Forge *f)
{
}
static void other_signer(Forge *f)
{
        f->qe_mrsigner = "00"
                         "9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5";
}
static void other_product(Forge *f)
{
        f->qe_isvprodid = 1;
}
static void debug_qe(Forge *f)
{
        f->qe_attributes0 = 0x13; /* DEBUG among the flags */
}
static void debug_module(Forge *f)
{
        f->seam_attributes = 1;
}

static void test_tdx_without_collateral_the_qe_must_still_be_intels_production_td_qe(void **state)
{
        expect_without_collateral(genuine, 0, "");
        expect_without_collateral(other_signer, -EKEYREJECTED, "tdx-qe-intel");
        expect_without_collateral(other_product, -EKEYREJECTED, "tdx-qe-intel");
        expect_without_collateral(debug_qe, -EKEYREJECTED, "tdx-qe-intel");
        expect_without_collateral(debug_module, -EKEYREJECTED, "tdx-seam-attributes");
}

/* A migratable TD, or one with reserved attribute bits, is refused by default. */
static void test_tdx_policy_refuses_migratable_and_reserved_attributes_by_default(void **state)
{
        static const struct {
                uint64_t attributes;
                bool allow_migratable;
                int error;
                const char *check;
        } cases[] = {
                { TDX_TD_ATTR_SEPT_VE_DISABLE, false, 0, "" },
                { TDX_TD_ATTR_SEPT_VE_DISABLE | TDX_TD_ATTR_MIGRATABLE, false, -EPERM,
                  "tdx-migratable" },
                { TDX_TD_ATTR_SEPT_VE_DISABLE | TDX_TD_ATTR_MIGRATABLE, true, 0, "" },
                { TDX_TD_ATTR_SEPT_VE_DISABLE | 0xf0, false, -EPERM, "tdx-attributes-reserved" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Forge f;
                TdxVerification v;
                TdxVerifyOptions o;
                TdxPolicy p;
                TdxQuote q;
                Diag d;
                int r;

                forge_init(&f);
                f.td_attributes = cases[i].attributes;
                forge_build(&f);
                o = (TdxVerifyOptions){ .at = f.at,
                                        .root_pem = f.root_pem,
                                        .root_sha256 = f.root_fp };
                diag_clear(&d);
                assert_int_equal(tdx_quote_parse(f.quote.b, f.quote.n, &q, &d), 0);
                assert_int_equal(
                        tdx_verify_quote(&q, f.quote.b, f.quote.n, &f.col, &o, &v, NULL, NULL, &d),
                        0);
                tdx_policy_defaults(&p);
                p.allow_migratable = cases[i].allow_migratable;
                p.require_collateral = false;
                r = tdx_check_policy(&q, &v, &p, NULL, NULL, NULL, &d);
                if (r != cases[i].error || (r < 0 && strcmp(d.check, cases[i].check) != 0))
                        fail_msg("case %zu: got %d [%s] %s", i, r, d.check, d.message);
                forge_free(&f);
        }
}

static void test_tdx_forged_chain_verifies_only_under_its_own_root(void **state)
{
        Forge f;
        TdxVerification v;
        TdxVerifyOptions intel = { .at = 1893456000 };
        TdxQuote q;
        Diag d;

        forge_init(&f);
        forge_build(&f);
        if (forge_verify(&f, &v, &d) < 0)
                fail_msg("%s [%s]", d.message, d.check);
        assert_true(v.collateral);
        assert_int_equal(v.tcb.status, TDX_TCB_UP_TO_DATE);
        assert_int_equal(v.tcb.platform_level, 0);
        assert_int_equal(v.tcb.tcb_eval_number, 18);
        /* The built-in Intel root does not anchor it. */
        assert_int_equal(tdx_quote_parse(f.quote.b, f.quote.n, &q, &d), 0);
        assert_int_equal(
                tdx_verify_quote(&q, f.quote.b, f.quote.n, &f.col, &intel, &v, NULL, NULL, &d),
                -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-pck-root");
        forge_free(&f);
}

static void test_tdx_revoked_pck_or_pck_ca_is_refused(void **state)
{
        EXPECT(f.revoke_pck = true, -EKEYREJECTED, "tdx-pck-revoked");
        EXPECT(f.revoke_ca = true, -EKEYREJECTED, "tdx-pck-revoked");
}

static void test_tdx_pck_crl_signed_by_another_key_is_refused(void **state)
{
        EXPECT(f.pck_crl_other_key = true, -EKEYREJECTED, "tdx-pck-crl");
}

static void test_tdx_tcb_signer_not_chained_to_the_root_is_refused(void **state)
{
        EXPECT(f.tcb_signer_untrusted = true, -EKEYREJECTED, "tdx-tcb-info-chain");
}

static void test_tdx_qe_identity_signer_not_chained_to_the_root_is_refused_beside_a_good_tcb_signer(
        void **state)
{
        EXPECT(f.qe_signer_untrusted = true, -EKEYREJECTED, "tdx-qe-identity-chain");
}

static void test_tdx_tcb_signer_revoked_by_the_root_crl_is_refused(void **state)
{
        EXPECT(f.revoke_tcb_signer = true, -EKEYREJECTED, "tdx-tcb-info-chain");
}

static void test_tdx_root_crl_signed_by_another_key_is_refused(void **state)
{
        EXPECT(f.root_crl_other_key = true, -EKEYREJECTED, "tdx-root-crl");
}

static void test_tdx_tcb_info_of_another_platform_is_refused(void **state)
{
        EXPECT(f.tcb_fmspc = "00906ED50001", -EKEYREJECTED, "tdx-tcb-info-fmspc");
}

static void test_tdx_qe_report_not_binding_the_attestation_key_is_refused(void **state)
{
        EXPECT(f.bad_qe_binding = true, -EKEYREJECTED, "tdx-qe-report-data");
}

static void test_tdx_qe_report_not_signed_by_the_pck_is_refused(void **state)
{
        EXPECT(f.bad_qe_signature = true, -EKEYREJECTED, "tdx-qe-report-signature");
}

static void test_tdx_qe_with_other_identity_fields_is_refused(void **state)
{
        EXPECT(f.qe_isvprodid = 1, -EKEYREJECTED, "tdx-qe-identity");
        EXPECT(f.qe_attributes0 = 0x13, -EKEYREJECTED, "tdx-qe-identity");
        EXPECT(f.qe_miscselect = 1, -EKEYREJECTED, "tdx-qe-identity");
        EXPECT(f.qe_isvsvn = 1, -EPERM, "tdx-qe-level"); /* below every QE level */
}

static void test_tdx_qe_of_another_signer_is_refused(void **state)
{
        EXPECT(f.qe_mrsigner = "00"
                               "9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5",
               -EKEYREJECTED, "tdx-qe-identity");
}

static void test_tdx_module_without_identity_or_signer_is_a_mismatch(void **state)
{
        EXPECT(f.tee_tcb_svn[1] = 2, -EPERM, "tdx-module-identity"); /* no TDX_02 */
        EXPECT(f.mr_signer_seam[0] = 1, -EPERM, "tdx-module-identity");
        EXPECT(f.seam_attributes = 1, -EPERM, "tdx-module-identity");
        EXPECT(f.tee_tcb_svn[0] = 1, -EPERM, "tdx-module-level"); /* below isvsvn 2 */
}

static void test_tdx_platform_below_every_level_is_not_supported(void **state)
{
        EXPECT(f.pck_svn[0] = 1, -EPERM, "tdx-tcb-level");
        EXPECT(f.pcesvn = 10, -EPERM, "tdx-tcb-level");
}

static void test_tdx_revoked_level_is_terminal(void **state)
{
        EXPECT((f.pck_svn[0] = 2, f.pck_svn[1] = 2), -EPERM, "tdx-tcb-status");
}

/* Each case: knobs → final status, platform level. */
static void test_tdx_tcb_statuses_converge_as_intel_does(void **state)
{
        static const struct {
                const char *what;
                int comp0, svn0, qe, module, version, level;
                unsigned status;
        } cases[] = {
                /* platform UpToDate, module and QE UpToDate */
                { "all up to date", 6, 5, 4, 6, 1, 0, TDX_TCB_UP_TO_DATE },
                /* platform ConfigurationNeeded stays when module and QE are UpToDate */
                { "platform config needed", 6, 3, 4, 6, 1, 1, TDX_TCB_CONFIGURATION_NEEDED },
                /* module OutOfDate: converged, not replaced */
                { "module out of date", 6, 5, 4, 3, 1, 0, TDX_TCB_OUT_OF_DATE },
                { "module out of date, platform config", 6, 3, 4, 3, 1, 1,
                  TDX_TCB_OUT_OF_DATE | TDX_TCB_CONFIGURATION_NEEDED },
                /* QE OutOfDate */
                { "qe out of date", 6, 5, 3, 6, 1, 0, TDX_TCB_OUT_OF_DATE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Forge f;
                TdxVerification v;
                Diag d;
                int r;

                forge_init(&f);
                f.pck_svn[0] = f.pck_svn[1] = (uint8_t) cases[i].svn0;
                f.qe_isvsvn = (uint16_t) cases[i].qe;
                f.tee_tcb_svn[0] = (uint8_t) cases[i].module;
                f.tee_tcb_svn[1] = (uint8_t) cases[i].version;
                forge_build(&f);
                r = forge_verify(&f, &v, &d);
                if (r < 0)
                        fail_msg("%s: %s", cases[i].what, d.message);
                if (v.tcb.status != cases[i].status || v.tcb.platform_level != cases[i].level)
                        fail_msg("%s: status %s level %d", cases[i].what,
                                 tdx_tcb_status_to_string(v.tcb.status), v.tcb.platform_level);
                forge_free(&f);
        }
}

static void test_tdx_components_0_and_1_count_only_without_a_module_version(void **state)
{
        Forge f;
        TdxVerification v;
        Diag d;

        /* Version 0: the base tdxModule, TDX components from 0; component 0 at 4 < 5 drops the
         * platform to level 1 (ConfigurationNeeded, advisory INTEL-SA-00001). */
        forge_init(&f);
        f.tee_tcb_svn[1] = 0;
        f.tee_tcb_svn[0] = 4;
        forge_build(&f);
        if (forge_verify(&f, &v, &d) < 0)
                fail_msg("%s", d.message);
        assert_int_equal(v.tcb.platform_level, 1);
        assert_int_equal(v.tcb.status, TDX_TCB_CONFIGURATION_NEEDED);
        assert_string_equal(v.tcb.module_id, "");
        assert_int_equal(v.tcb.advisories.n, 1);
        assert_string_equal(v.tcb.advisories.id[0], "INTEL-SA-00001");
        forge_free(&f);
        /* Version 1 with the same component 0: skipped, level 0. */
        forge_init(&f);
        f.tee_tcb_svn[1] = 1;
        f.tee_tcb_svn[0] = 4;
        forge_build(&f);
        if (forge_verify(&f, &v, &d) < 0)
                fail_msg("%s", d.message);
        assert_int_equal(v.tcb.platform_level, 0);
        assert_int_equal(v.tcb.status, TDX_TCB_UP_TO_DATE);
        forge_free(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tdx_forged_chain_verifies_only_under_its_own_root),
                cmocka_unit_test(test_tdx_revoked_pck_or_pck_ca_is_refused),
                cmocka_unit_test(test_tdx_pck_crl_signed_by_another_key_is_refused),
                cmocka_unit_test(test_tdx_tcb_signer_not_chained_to_the_root_is_refused),
                cmocka_unit_test(test_tdx_tcb_signer_revoked_by_the_root_crl_is_refused),
                cmocka_unit_test(
                        test_tdx_qe_identity_signer_not_chained_to_the_root_is_refused_beside_a_good_tcb_signer),
                cmocka_unit_test(test_tdx_root_crl_signed_by_another_key_is_refused),
                cmocka_unit_test(test_tdx_qe_with_other_identity_fields_is_refused),
                cmocka_unit_test(test_tdx_tcb_info_of_another_platform_is_refused),
                cmocka_unit_test(test_tdx_qe_report_not_binding_the_attestation_key_is_refused),
                cmocka_unit_test(test_tdx_qe_report_not_signed_by_the_pck_is_refused),
                cmocka_unit_test(test_tdx_qe_of_another_signer_is_refused),
                cmocka_unit_test(test_tdx_module_without_identity_or_signer_is_a_mismatch),
                cmocka_unit_test(test_tdx_platform_below_every_level_is_not_supported),
                cmocka_unit_test(test_tdx_revoked_level_is_terminal),
                cmocka_unit_test(test_tdx_tcb_statuses_converge_as_intel_does),
                cmocka_unit_test(test_tdx_components_0_and_1_count_only_without_a_module_version),
                cmocka_unit_test(
                        test_tdx_without_collateral_the_qe_must_still_be_intels_production_td_qe),
                cmocka_unit_test(
                        test_tdx_policy_refuses_migratable_and_reserved_attributes_by_default),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
