/* SPDX-License-Identifier: Apache-2.0 */
/* Sealed answers: bytes for one attested peer only (atls.h). */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/atls.h"
#include "cloister/crypto.h"
#include "cloister/kdf.h"
#include "cloister/reader.h"

#include "atls-internal.h"

#define SEAL_MAGIC      "CSL1"
#define SEAL_POINT_SIZE 65 /* uncompressed P-256 point: 0x04 || X || Y */
#define SEAL_IV_SIZE    12
#define SEAL_TAG_SIZE   16
#define SEAL_LABEL_MAX  32

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);

static bool label_ok(const char *label)
{
        size_t n = label ? strlen(label) : 0;

        return n > 0 && n <= SEAL_LABEL_MAX && strspn(label, "abcdefghijklmnopqrstuvwxyz-") == n;
}

static bool key_is_p256(EVP_PKEY *k)
{
        char group[32] = "";

        return EVP_PKEY_is_a(k, "EC") &&
               EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                              NULL) == 1 &&
               strcmp(group, "prime256v1") == 0;
}

/* The AES key: HKDF-SHA-256(ECDH x, salt = point || SHA-256(recipient SPKI),
 * info = "cloister/v1/sealed/" label). */
static int seal_key(EVP_PKEY *mine, EVP_PKEY *theirs, const uint8_t point[static SEAL_POINT_SIZE],
                    const uint8_t *spki, size_t spki_size, const char *label, Secret **ret)
{
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_(secret_freep) Secret *shared = NULL;
        uint8_t salt[SEAL_POINT_SIZE + 32];
        char info[64];
        size_t n = 0;

        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
        if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, theirs) != 1 ||
            EVP_PKEY_derive(ctx, NULL, &n) != 1 || n != 32)
                return crypto_log_errors(-EIO, "sealed answer: ECDH");
        if (secret_new(n, &shared) < 0)
                return -ENOMEM;
        if (EVP_PKEY_derive(ctx, secret_data(shared), &n) != 1 || n != 32)
                return crypto_log_errors(-EIO, "sealed answer: ECDH");
        memcpy(salt, point, SEAL_POINT_SIZE);
        crypto_sha256(spki, spki_size, salt + SEAL_POINT_SIZE);
        (void) snprintf(info, sizeof(info), "cloister/v1/sealed/%s", label);
        return kdf_hkdf_sha256(shared, salt, sizeof(salt), info, 32, ret);
}

static int aad_of(const uint8_t point[static SEAL_POINT_SIZE], const char *label,
                  uint8_t ret[static 4 + SEAL_POINT_SIZE + SEAL_LABEL_MAX], size_t *ret_size)
{
        size_t n = strlen(label);

        memcpy(ret, SEAL_MAGIC, 4);
        memcpy(ret + 4, point, SEAL_POINT_SIZE);
        memcpy(ret + 4 + SEAL_POINT_SIZE, label, n);
        *ret_size = 4 + SEAL_POINT_SIZE + n;
        return 0;
}

int atls_seal(const uint8_t *spki, size_t spki_size, const char *label, const void *plain,
              size_t plain_size, uint8_t **ret, size_t *ret_size)
{
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *theirs = NULL, *eph = NULL;
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *cc = NULL;
        _cleanup_(secret_freep) Secret *key = NULL;
        _cleanup_(freep) uint8_t *out = NULL;
        uint8_t point[SEAL_POINT_SIZE], aad[4 + SEAL_POINT_SIZE + SEAL_LABEL_MAX];
        const unsigned char *p = spki;
        size_t n = 0, aad_size, total;
        int len = 0, fin = 0, r;

        if (!label_ok(label) || !spki || spki_size == 0 || spki_size > 4096 ||
            plain_size > ATLS_SEALED_MAX - ATLS_SEALED_OVERHEAD)
                return -EINVAL;
        theirs = d2i_PUBKEY(NULL, &p, (long) spki_size);
        if (!theirs || p != spki + spki_size || !key_is_p256(theirs))
                return -EBADMSG;
        eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!eph ||
            EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                            sizeof(point), &n) != 1 ||
            n != SEAL_POINT_SIZE || point[0] != 0x04)
                return crypto_log_errors(-EIO, "sealed answer: ephemeral key");
        r = seal_key(eph, theirs, point, spki, spki_size, label, &key);
        if (r < 0)
                return r;
        total = ATLS_SEALED_OVERHEAD + plain_size;
        out = malloc(total);
        if (!out)
                return -ENOMEM;
        memcpy(out, SEAL_MAGIC, 4);
        memcpy(out + 4, point, SEAL_POINT_SIZE);
        if (RAND_bytes(out + 4 + SEAL_POINT_SIZE, SEAL_IV_SIZE) != 1)
                return -EIO;
        (void) aad_of(point, label, aad, &aad_size);
        cc = EVP_CIPHER_CTX_new();
        if (!cc ||
            EVP_EncryptInit_ex(cc, EVP_aes_256_gcm(), NULL, secret_data(key),
                               out + 4 + SEAL_POINT_SIZE) != 1 ||
            EVP_EncryptUpdate(cc, NULL, &len, aad, (int) aad_size) != 1 ||
            EVP_EncryptUpdate(cc, out + 4 + SEAL_POINT_SIZE + SEAL_IV_SIZE, &len, plain,
                              (int) plain_size) != 1 ||
            EVP_EncryptFinal_ex(cc, out + 4 + SEAL_POINT_SIZE + SEAL_IV_SIZE + len, &fin) != 1 ||
            (size_t) (len + fin) != plain_size ||
            EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_SIZE,
                                out + total - SEAL_TAG_SIZE) != 1)
                return crypto_log_errors(-EIO, "sealed answer: AES-GCM");
        *ret = TAKE_PTR(out);
        *ret_size = total;
        return 0;
}

int atls_unseal_with_key(EVP_PKEY *key, const uint8_t *spki, size_t spki_size, const char *label,
                         const uint8_t *sealed, size_t size, Secret **ret)
{
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *pctx = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *eph = NULL;
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *cc = NULL;
        _cleanup_(secret_freep) Secret *aes = NULL, *plain = NULL;
        const uint8_t *magic, *point, *iv, *ct, *tag;
        uint8_t aad[4 + SEAL_POINT_SIZE + SEAL_LABEL_MAX], point_copy[SEAL_POINT_SIZE];
        size_t aad_size, ct_size;
        Reader rd = reader_init(sealed, size);
        int len = 0, fin = 0, r;

        if (!label_ok(label))
                return -EINVAL;
        if (size < ATLS_SEALED_OVERHEAD || size > ATLS_SEALED_MAX)
                return -EBADMSG;
        ct_size = size - ATLS_SEALED_OVERHEAD;
        if (reader_bytes(&rd, 4, &magic) < 0 || reader_bytes(&rd, SEAL_POINT_SIZE, &point) < 0 ||
            reader_bytes(&rd, SEAL_IV_SIZE, &iv) < 0 || reader_bytes(&rd, ct_size, &ct) < 0 ||
            reader_bytes(&rd, SEAL_TAG_SIZE, &tag) < 0 || reader_expect_end(&rd) < 0)
                return -EBADMSG;
        if (memcmp(magic, SEAL_MAGIC, 4) != 0 || point[0] != 0x04)
                return -EBADMSG;
        memcpy(point_copy, point, sizeof(point_copy));
        {
                OSSL_PARAM params[] = {
                        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                         (char *) "prime256v1", 0),
                        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point_copy,
                                                          sizeof(point_copy)),
                        OSSL_PARAM_construct_end(),
                };
                pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                /* fromdata checks that the point is on the curve. */
                if (!pctx || EVP_PKEY_fromdata_init(pctx) != 1 ||
                    EVP_PKEY_fromdata(pctx, &eph, EVP_PKEY_PUBLIC_KEY, params) != 1)
                        return -EBADMSG;
        }
        r = seal_key(key, eph, point, spki, spki_size, label, &aes);
        if (r < 0)
                return -EBADMSG;
        r = secret_new(ct_size ?: 1, &plain);
        if (r < 0)
                return r;
        (void) aad_of(point, label, aad, &aad_size);
        cc = EVP_CIPHER_CTX_new();
        if (!cc || EVP_DecryptInit_ex(cc, EVP_aes_256_gcm(), NULL, secret_data(aes), iv) != 1 ||
            EVP_DecryptUpdate(cc, NULL, &len, aad, (int) aad_size) != 1 ||
            EVP_DecryptUpdate(cc, secret_data(plain), &len, ct, (int) ct_size) != 1 ||
            EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_SIZE, (void *) tag) != 1)
                return -EIO;
        /* The tag decides: another key, label or any altered byte fails here. */
        if (EVP_DecryptFinal_ex(cc, secret_data(plain) + len, &fin) != 1 ||
            (size_t) (len + fin) != ct_size)
                return -EBADMSG;
        if (ct_size == 0)
                return -EBADMSG; /* never sealed: an answer has content */
        {
                Secret *exact = NULL;
                r = secret_new_from(secret_data(plain), ct_size, &exact);
                if (r < 0)
                        return r;
                *ret = exact;
        }
        return 0;
}
