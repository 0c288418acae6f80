/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/reader.h"
#include "cloister/tpm-quote.h"

/* Limits on peer-controlled sizes (the TPM's own maxima, Part 2 tables 80, 159, 163). */
#define TPM_RSA_KEY_BYTES_MAX 512 /* 4096-bit modulus */
#define TPM_ECC_COORD_MAX     66
#define TPM_AUTH_POLICY_MAX   64

const char *tpm_hash_name(uint16_t alg)
{
        switch (alg) {
        case TPM_ALG_SHA1:
                return "SHA1";
        case TPM_ALG_SHA256:
                return "SHA256";
        case TPM_ALG_SHA384:
                return "SHA384";
        case TPM_ALG_SHA512:
                return "SHA512";
        default:
                return NULL;
        }
}

size_t tpm_hash_size(uint16_t alg)
{
        switch (alg) {
        case TPM_ALG_SHA1:
                return 20;
        case TPM_ALG_SHA256:
                return 32;
        case TPM_ALG_SHA384:
                return 48;
        case TPM_ALG_SHA512:
                return 64;
        default:
                return 0;
        }
}

static int bad(Diag *d, const char *what, const char *field, size_t offset)
{
        (void) diag_fail(d, -EBADMSG, what, -1, "%s: malformed or truncated %s at byte %zu", what,
                         field, offset);
        return -EBADMSG;
}

/* TPMT_SYM_DEF_OBJECT (Part 2, 11.1.7) */
static int read_symmetric(Reader *r, TpmPublic *p)
{
        if (reader_u16be(r, &p->symmetric) < 0)
                return -EBADMSG;
        if (p->symmetric == TPM_ALG_NULL)
                return 0;
        if (reader_u16be(r, &p->sym_bits) < 0 || reader_u16be(r, &p->sym_mode) < 0)
                return -EBADMSG;
        return 0;
}

/* TPMT_{RSA,ECC}_SCHEME: TPMU_ASYM_SCHEME holds a hash for every scheme except NULL and RSAES;
 * ECDAA adds a count (Part 2, 11.2.3). */
static int read_scheme(Reader *r, uint16_t *scheme, uint16_t *hash)
{
        uint16_t count;

        if (reader_u16be(r, scheme) < 0)
                return -EBADMSG;
        *hash = TPM_ALG_NULL;
        if (*scheme == TPM_ALG_NULL || *scheme == TPM_ALG_RSAES)
                return 0;
        if (reader_u16be(r, hash) < 0)
                return -EBADMSG;
        if (*scheme == TPM_ALG_ECDAA && reader_u16be(r, &count) < 0)
                return -EBADMSG;
        return 0;
}

static int rsa_key(const uint8_t *n, size_t n_size, uint32_t exponent, EVP_PKEY **ret)
{
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx =
                EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        OSSL_PARAM *params = NULL;
        BIGNUM *bn = BN_bin2bn(n, (int) n_size, NULL), *be = BN_new();
        int r = -EIO;

        if (!bld || !ctx || !bn || !be || BN_set_word(be, exponent ?: 65537) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
                goto finish;
        params = OSSL_PARAM_BLD_to_param(bld);
        if (!params || EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) != 1)
                goto finish;
        r = 0;
finish:
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn);
        BN_free(be);
        return r < 0 ? crypto_log_errors(r, "TPM RSA key") : 0;
}

static int ecc_key(uint16_t curve, const uint8_t *x, size_t xs, const uint8_t *y, size_t ys,
                   EVP_PKEY **ret)
{
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx =
                EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        uint8_t point[1 + 2 * 48] = { 0x04 };
        const char *group;
        size_t field;
        OSSL_PARAM params[3];

        switch (curve) {
        case TPM_ECC_NIST_P256:
                group = "prime256v1", field = 32;
                break;
        case TPM_ECC_NIST_P384:
                group = "secp384r1", field = 48;
                break;
        default:
                return -EOPNOTSUPP;
        }
        if (xs > field || ys > field)
                return -EBADMSG;
        /* TPM2B coordinates may be shorter than the field: left-pad with zeros. */
        memcpy(point + 1 + (field - xs), x, xs);
        memcpy(point + 1 + field + (field - ys), y, ys);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) group, 0);
        params[1] =
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * field);
        params[2] = OSSL_PARAM_construct_end();
        if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) != 1)
                return crypto_log_errors(-EBADMSG, "TPM ECC key");
        return 0;
}

void tpm_public_done(TpmPublic *p)
{
        if (!p)
                return;
        EVP_PKEY_free(p->key);
        *p = (TpmPublic){};
}

int tpm_public_parse(const uint8_t *data, size_t size, TpmPublic *ret, Diag *d)
{
        Reader r = reader_init(data, size);
        TpmPublic p = {};
        const uint8_t *policy, *n, *x, *y;
        uint16_t policy_size, n_size, xs, ys, kdf, kdf_hash;
        uint32_t exponent;
        size_t hs;
        int k;

        if (reader_u16be(&r, &p.type) < 0 || reader_u16be(&r, &p.name_alg) < 0 ||
            reader_u32be(&r, &p.attributes) < 0)
                return bad(d, "tpm-public", "header", reader_offset(&r));
        if (reader_tpm2b(&r, &policy, &policy_size) < 0 || policy_size > TPM_AUTH_POLICY_MAX)
                return bad(d, "tpm-public", "authPolicy", reader_offset(&r));
        hs = tpm_hash_size(p.name_alg);
        if (hs == 0)
                return diag_fail(d, -EOPNOTSUPP, "tpm-public", -1,
                                 "tpm-public: unsupported name algorithm 0x%04x", p.name_alg);
        if (read_symmetric(&r, &p) < 0 || read_scheme(&r, &p.scheme, &p.scheme_hash) < 0)
                return bad(d, "tpm-public", "parameters", reader_offset(&r));

        switch (p.type) {
        case TPM_ALG_RSA:
                if (reader_u16be(&r, &p.key_bits) < 0 || reader_u32be(&r, &exponent) < 0 ||
                    reader_tpm2b(&r, &n, &n_size) < 0)
                        return bad(d, "tpm-public", "RSA parameters", reader_offset(&r));
                if (n_size == 0 || n_size > TPM_RSA_KEY_BYTES_MAX ||
                    (size_t) n_size * 8 != p.key_bits || p.key_bits < 2048)
                        return diag_fail(d, -EBADMSG, "tpm-public", -1,
                                         "tpm-public: RSA modulus of %u bytes for %u key bits "
                                         "(at least 2048 bits required)",
                                         n_size, p.key_bits);
                k = rsa_key(n, n_size, exponent, &p.key);
                break;
        case TPM_ALG_ECC:
                if (reader_u16be(&r, &p.curve) < 0 || reader_u16be(&r, &kdf) < 0 ||
                    (kdf != TPM_ALG_NULL && reader_u16be(&r, &kdf_hash) < 0) ||
                    reader_tpm2b(&r, &x, &xs) < 0 || reader_tpm2b(&r, &y, &ys) < 0)
                        return bad(d, "tpm-public", "ECC parameters", reader_offset(&r));
                if (xs > TPM_ECC_COORD_MAX || ys > TPM_ECC_COORD_MAX)
                        return bad(d, "tpm-public", "ECC point", reader_offset(&r));
                k = ecc_key(p.curve, x, xs, y, ys, &p.key);
                break;
        default:
                return diag_fail(d, -EOPNOTSUPP, "tpm-public", -1,
                                 "tpm-public: unsupported key type 0x%04x", p.type);
        }
        if (k < 0) {
                tpm_public_done(&p);
                return diag_fail(d, k, "tpm-public", -1, "tpm-public: unusable public key");
        }
        if (reader_expect_end(&r) < 0) {
                tpm_public_done(&p);
                return diag_fail(d, -EBADMSG, "tpm-public", -1, "tpm-public: %zu trailing bytes",
                                 reader_remaining(&r));
        }

        /* Name = nameAlg || H_nameAlg(TPMT_PUBLIC) (Part 1, 16 "Names"). */
        p.name[0] = (uint8_t) (p.name_alg >> 8);
        p.name[1] = (uint8_t) p.name_alg;
        const IoVec part = { data, size };
        if (crypto_digest(tpm_hash_name(p.name_alg), &part, 1, p.name + 2, hs) < 0) {
                tpm_public_done(&p);
                return -EIO;
        }
        p.name_size = 2 + hs;
        *ret = p;
        return 0;
}

int tpm_public_check_attestation_key(const TpmPublic *ak, Diag *d)
{
        const uint32_t need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                              TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_RESTRICTED |
                              TPMA_OBJECT_SIGN;
        char want[16], got[16];

        if ((ak->attributes & need) == need && !(ak->attributes & TPMA_OBJECT_DECRYPT))
                return 0;
        (void) snprintf(want, sizeof(want), "0x%08x", need);
        (void) snprintf(got, sizeof(got), "0x%08x", ak->attributes);
        (void) diag_fail(d, -EPERM, "ak-attributes", -1,
                         "the attestation key is not a restricted signing key generated in a TPM "
                         "(fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign; no "
                         "decrypt)");
        diag_set_values(d, want, got);
        return -EPERM;
}

void tpm_signature_done(TpmSignature *s)
{
        if (!s)
                return;
        free(s->sig);
        *s = (TpmSignature){};
}

int tpm_signature_parse(const uint8_t *data, size_t size, TpmSignature *ret, Diag *d)
{
        Reader r = reader_init(data, size);
        TpmSignature s = {};
        const uint8_t *a, *b;
        uint16_t as, bs;

        if (reader_u16be(&r, &s.alg) < 0 || reader_u16be(&r, &s.hash) < 0)
                return bad(d, "tpm-signature", "header", reader_offset(&r));
        if (!tpm_hash_name(s.hash))
                return diag_fail(d, -EOPNOTSUPP, "tpm-signature", -1,
                                 "tpm-signature: unsupported hash 0x%04x", s.hash);
        switch (s.alg) {
        case TPM_ALG_RSASSA:
        case TPM_ALG_RSAPSS:
                if (reader_tpm2b(&r, &a, &as) < 0 || as == 0 || as > TPM_RSA_KEY_BYTES_MAX)
                        return bad(d, "tpm-signature", "RSA signature", reader_offset(&r));
                s.sig = malloc(as);
                if (!s.sig)
                        return -ENOMEM;
                memcpy(s.sig, a, as);
                s.sig_size = as;
                break;
        case TPM_ALG_ECDSA: {
                ECDSA_SIG *es;
                BIGNUM *br, *bsn;
                unsigned char *der = NULL;
                int n;

                if (reader_tpm2b(&r, &a, &as) < 0 || reader_tpm2b(&r, &b, &bs) < 0 || as == 0 ||
                    bs == 0 || as > TPM_ECC_COORD_MAX || bs > TPM_ECC_COORD_MAX)
                        return bad(d, "tpm-signature", "ECDSA signature", reader_offset(&r));
                es = ECDSA_SIG_new();
                br = BN_bin2bn(a, as, NULL);
                bsn = BN_bin2bn(b, bs, NULL);
                if (!es || !br || !bsn || ECDSA_SIG_set0(es, br, bsn) != 1) {
                        ECDSA_SIG_free(es);
                        BN_free(br);
                        BN_free(bsn);
                        return -ENOMEM;
                }
                n = i2d_ECDSA_SIG(es, &der);
                ECDSA_SIG_free(es);
                if (n <= 0)
                        return -ENOMEM;
                s.sig = malloc((size_t) n);
                if (s.sig)
                        memcpy(s.sig, der, (size_t) n);
                OPENSSL_free(der);
                if (!s.sig)
                        return -ENOMEM;
                s.sig_size = (size_t) n;
                break;
        }
        default:
                return diag_fail(d, -EOPNOTSUPP, "tpm-signature", -1,
                                 "tpm-signature: unsupported signature algorithm 0x%04x", s.alg);
        }
        if (reader_expect_end(&r) < 0) {
                tpm_signature_done(&s);
                return diag_fail(d, -EBADMSG, "tpm-signature", -1,
                                 "tpm-signature: %zu trailing bytes", reader_remaining(&r));
        }
        *ret = s;
        return 0;
}

int tpm_quote_parse(const uint8_t *data, size_t size, TpmQuoteInfo *ret, Diag *d)
{
        Reader r = reader_init(data, size);
        TpmQuoteInfo q = {};
        const uint8_t *p;
        uint16_t type, n;
        uint32_t magic, count;
        uint8_t safe;

        if (reader_u32be(&r, &magic) < 0 || reader_u16be(&r, &type) < 0)
                return bad(d, "quote-format", "header", reader_offset(&r));
        if (magic != TPM_GENERATED_VALUE)
                return diag_fail(d, -EBADMSG, "quote-format", -1,
                                 "quote: magic 0x%08x is not TPM_GENERATED_VALUE: not made by a "
                                 "TPM",
                                 magic);
        if (type != TPM_ST_ATTEST_QUOTE)
                return diag_fail(d, -EBADMSG, "quote-format", -1,
                                 "quote: attestation type 0x%04x is not a quote", type);
        if (reader_tpm2b(&r, &p, &n) < 0 || n > sizeof(q.signer))
                return bad(d, "quote-format", "qualifiedSigner", reader_offset(&r));
        memcpy(q.signer, p, n);
        q.signer_size = n;
        if (reader_tpm2b(&r, &p, &n) < 0 || n > sizeof(q.extra_data))
                return bad(d, "quote-format", "extraData", reader_offset(&r));
        memcpy(q.extra_data, p, n);
        q.extra_data_size = n;
        if (reader_u64be(&r, &q.clock) < 0 || reader_u32be(&r, &q.reset_count) < 0 ||
            reader_u32be(&r, &q.restart_count) < 0 || reader_u8(&r, &safe) < 0 ||
            reader_u64be(&r, &q.firmware_version) < 0)
                return bad(d, "quote-format", "clockInfo", reader_offset(&r));
        if (safe > 1)
                return bad(d, "quote-format", "clockInfo.safe", reader_offset(&r));
        q.safe = safe;
        if (reader_u32be(&r, &count) < 0 || count == 0 || count > TPM_PCR_SELECTIONS_MAX)
                return bad(d, "quote-format", "pcrSelect count", reader_offset(&r));
        for (uint32_t i = 0; i < count; i++) {
                uint8_t sz;
                const uint8_t *bits;

                if (reader_u16be(&r, &q.selections[i].hash) < 0 || reader_u8(&r, &sz) < 0 ||
                    sz < 3 || sz > 4 || reader_bytes(&r, sz, &bits) < 0)
                        return bad(d, "quote-format", "pcrSelect", reader_offset(&r));
                if (sz == 4 && bits[3] != 0)
                        return bad(d, "quote-format", "pcrSelect (PCR above 23)",
                                   reader_offset(&r));
                q.selections[i].mask =
                        (uint32_t) bits[0] | (uint32_t) bits[1] << 8 | (uint32_t) bits[2] << 16;
        }
        q.n_selections = count;
        if (reader_tpm2b(&r, &p, &n) < 0 || n > sizeof(q.pcr_digest))
                return bad(d, "quote-format", "pcrDigest", reader_offset(&r));
        memcpy(q.pcr_digest, p, n);
        q.pcr_digest_size = n;
        if (reader_expect_end(&r) < 0)
                return diag_fail(d, -EBADMSG, "quote-format", -1, "quote: %zu trailing bytes",
                                 reader_remaining(&r));
        *ret = q;
        return 0;
}

int tpm_quote_verify_signature(const TpmPublic *ak, const uint8_t *attest, size_t attest_size,
                               const TpmSignature *sig, Diag *d)
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        const char *hash = tpm_hash_name(sig->hash);
        bool key_ok;

        /* The signature scheme must fit the key, and a key with a fixed scheme signs only with
         * it (Part 1, 18.3). */
        key_ok = (ak->type == TPM_ALG_RSA &&
                  (sig->alg == TPM_ALG_RSASSA || sig->alg == TPM_ALG_RSAPSS)) ||
                 (ak->type == TPM_ALG_ECC && sig->alg == TPM_ALG_ECDSA);
        if (!key_ok || (ak->scheme != TPM_ALG_NULL &&
                        (ak->scheme != sig->alg || ak->scheme_hash != sig->hash)))
                return diag_fail(d, -EKEYREJECTED, "quote-signature", -1,
                                 "the quote's signature scheme 0x%04x/0x%04x does not match the "
                                 "attestation key",
                                 sig->alg, sig->hash);
        if (!md || !hash)
                return -ENOMEM;
        if (EVP_DigestVerifyInit_ex(md, &pctx, hash, NULL, NULL, ak->key, NULL) != 1)
                return crypto_log_errors(-EIO, "quote verify init");
        if (sig->alg == TPM_ALG_RSAPSS &&
            (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1))
                return crypto_log_errors(-EIO, "quote verify PSS");
        if (EVP_DigestVerify(md, sig->sig, sig->sig_size, attest, attest_size) != 1) {
                (void) crypto_log_errors(0, "quote verify");
                return diag_fail(d, -EKEYREJECTED, "quote-signature", -1,
                                 "the quote's signature does not verify with the attestation key");
        }
        return 0;
}

int tpm_pcr_digest(const TpmQuoteInfo *q, const uint8_t pcrs[TPM_PCR_MAX][TPM_DIGEST_MAX],
                   uint16_t digest_alg, uint8_t ret[static TPM_DIGEST_MAX], size_t *ret_size)
{
        IoVec parts[TPM_PCR_MAX];
        size_t n = 0, bank_size, out_size;

        if (q->n_selections != 1)
                return -EOPNOTSUPP;
        bank_size = tpm_hash_size(q->selections[0].hash);
        out_size = tpm_hash_size(digest_alg);
        if (bank_size == 0 || out_size == 0)
                return -EOPNOTSUPP;
        /* TPM2_Quote: the signing scheme's hash over the selected PCR values concatenated in
         * selection order (Part 3, 18.4; ascending PCR index, Part 1, 17.6.3). */
        for (int i = 0; i < TPM_PCR_MAX; i++)
                if (q->selections[0].mask & (1U << i))
                        parts[n++] = (IoVec){ pcrs[i], bank_size };
        if (crypto_digest(tpm_hash_name(digest_alg), parts, n, ret, out_size) < 0)
                return -EIO;
        *ret_size = out_size;
        return 0;
}
