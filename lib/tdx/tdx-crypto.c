/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "tdx-internal.h"

bool tdx_ecdsa_verify(EVP_PKEY *key, const uint8_t *data, size_t size, const uint8_t sig[64])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        ECDSA_SIG *s = ECDSA_SIG_new();
        BIGNUM *br = BN_bin2bn(sig, 32, NULL), *bs = BN_bin2bn(sig + 32, 32, NULL);
        unsigned char *der = NULL;
        bool ok = false;
        int n;

        if (!md || !s || !br || !bs || ECDSA_SIG_set0(s, br, bs) != 1) {
                BN_free(br);
                BN_free(bs);
                ECDSA_SIG_free(s);
                ERR_clear_error();
                return false;
        }
        n = i2d_ECDSA_SIG(s, &der);
        ECDSA_SIG_free(s);
        if (n > 0)
                ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
                     EVP_DigestVerify(md, der, (size_t) n, data, size) == 1;
        OPENSSL_free(der);
        ERR_clear_error();
        return ok;
}

int tdx_p256_key(const uint8_t xy[64], EVP_PKEY **ret)
{
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx =
                EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        uint8_t point[65];
        EVP_PKEY *k = NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) "prime256v1",
                                                 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
                OSSL_PARAM_construct_end(),
        };

        point[0] = 0x04; /* uncompressed (SEC 1, 2.3.3) */
        memcpy(point + 1, xy, 64);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                ERR_clear_error();
                return -EBADMSG;
        }
        /* On the curve (the quick check: a full check multiplies by the order, as costly as a
         * verification, and is not needed for a prime-order curve). */
        {
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
                if (!c || EVP_PKEY_public_check_quick(c) != 1) {
                        EVP_PKEY_free(k);
                        ERR_clear_error();
                        return -EBADMSG;
                }
        }
        *ret = k;
        return 0;
}

int tdx_pem_sha256(const char *pem, uint8_t out[static 32])
{
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

        BIO_free(b);
        ERR_clear_error();
        if (!x)
                return -EBADMSG;
        tdx_cert_sha256(x, out);
        X509_free(x);
        return 0;
}

void tdx_cert_sha256(X509 *x, uint8_t out[static 32])
{
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);

        memset(out, 0, 32);
        if (n > 0)
                crypto_sha256(der, (size_t) n, out);
        OPENSSL_free(der);
}

static bool blank(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i] != ' ' && p[i] != '\n' && p[i] != '\r' && p[i] != '\t' && p[i] != 0)
                        return false;
        return true;
}

int tdx_load_pem_certs(const uint8_t *data, size_t size, size_t max, STACK_OF(X509) * *ret)
{
        static const char begin[] = "-----BEGIN CERTIFICATE-----",
                          end[] = "-----END CERTIFICATE-----";
        STACK_OF(X509) *sk = sk_X509_new_null();
        size_t pos = 0;

        if (!sk)
                return -ENOMEM;
        while (pos < size && !blank(data + pos, size - pos)) {
                const uint8_t *b = memmem(data + pos, size - pos, begin, strlen(begin)), *e;
                size_t stop;
                BIO *bio;
                X509 *x;

                if (!b || !blank(data + pos, (size_t) (b - (data + pos))))
                        goto fail;
                e = memmem(b, size - (size_t) (b - data), end, strlen(end));
                if (!e)
                        goto fail;
                stop = (size_t) (e - data) + strlen(end);
                if ((size_t) sk_X509_num(sk) >= max || stop - (size_t) (b - data) > INT32_MAX)
                        goto fail;
                bio = BIO_new_mem_buf(b, (int) (stop - (size_t) (b - data)));
                x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
                BIO_free(bio);
                if (!x)
                        goto fail;
                if (sk_X509_push(sk, x) <= 0) {
                        X509_free(x);
                        goto fail;
                }
                pos = stop;
        }
        ERR_clear_error();
        if (sk_X509_num(sk) == 0)
                goto fail;
        *ret = sk;
        return 0;
fail:
        sk_X509_pop_free(sk, X509_free);
        ERR_clear_error();
        return -EBADMSG;
}

const char *tdx_cert_cn(X509 *x, bool issuer, char *buf, size_t size)
{
        X509_NAME *n = issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x);

        if (X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int) size) < 0)
                (void) snprintf(buf, size, "?");
        ERR_clear_error();
        return buf;
}

bool tdx_cert_valid_at(X509 *x, time_t at)
{
        return X509_cmp_time(X509_get0_notBefore(x), &at) < 0 &&
               X509_cmp_time(X509_get0_notAfter(x), &at) > 0;
}

int tdx_der_tlv(Reader *r, uint8_t *ret_tag, Reader *ret_content)
{
        Reader save = *r;
        uint8_t tag, l;
        size_t len;

        if (reader_u8(r, &tag) < 0 || reader_u8(r, &l) < 0)
                goto fail;
        if ((tag & 0x1f) == 0x1f) /* multi-byte tags: none in the structures read here */
                goto fail;
        if (l < 0x80)
                len = l;
        else if (l == 0x81 || l == 0x82) {
                uint8_t b1, b2 = 0;
                if (reader_u8(r, &b1) < 0 || (l == 0x82 && reader_u8(r, &b2) < 0))
                        goto fail;
                len = l == 0x81 ? b1 : ((size_t) b1 << 8 | b2);
                /* DER: the shortest form */
                if ((l == 0x81 && len < 0x80) || (l == 0x82 && len < 0x100))
                        goto fail;
        } else
                goto fail;
        if (reader_sub(r, len, ret_content) < 0)
                goto fail;
        *ret_tag = tag;
        return 0;
fail:
        *r = save;
        return -EBADMSG;
}
