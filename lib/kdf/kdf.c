/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/kdf.h"

int kdf_hkdf_sha256(const Secret *ikm, const uint8_t *salt, size_t salt_size, const char *info,
                    size_t out_size, Secret **ret)
{
        _cleanup_(EVP_KDF_freep) EVP_KDF *kdf = NULL;
        _cleanup_(EVP_KDF_CTX_freep) EVP_KDF_CTX *ctx = NULL;
        _cleanup_(secret_freep) Secret *out = NULL;
        OSSL_PARAM params[5], *p = params;
        int r;

        if (!ikm || !info || out_size == 0 || out_size > 255 * SHA256_DIGEST_SIZE)
                return -EINVAL;

        r = secret_new(out_size, &out);
        if (r < 0)
                return r;

        kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        if (!kdf)
                return crypto_log_errors(-EOPNOTSUPP, "HKDF");
        ctx = EVP_KDF_CTX_new(kdf);
        if (!ctx)
                return crypto_log_errors(-ENOMEM, "HKDF");

        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                 (void *) secret_data_const(ikm), secret_size(ikm));
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_size);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, strlen(info));
        *p = OSSL_PARAM_construct_end();

        if (EVP_KDF_derive(ctx, secret_data(out), out_size, params) != 1)
                return crypto_log_errors(-EIO, "HKDF derive");

        *ret = TAKE_PTR(out);
        return 0;
}

bool kdf_uuid_is_valid(const char *s)
{
        static const size_t dashes[] = { 8, 13, 18, 23 };
        size_t d = 0;

        if (!s || strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (d < ELEMENTSOF(dashes) && i == dashes[d]) {
                        if (s[i] != '-')
                                return false;
                        d++;
                } else if (!isxdigit((unsigned char) s[i]))
                        return false;
        }
        return true;
}

char *kdf_uuid_lower(const char *uuid, char *ret, size_t size)
{
        assert(ret && size > 0);
        (void) snprintf(ret, size, "%s", uuid ?: "");
        for (char *p = ret; *p; p++)
                *p = (char) (*p >= 'A' && *p <= 'Z' ? *p + ('a' - 'A') : *p);
        return ret;
}

int kdf_disk_key(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                 const char *luks_uuid, Secret **ret)
{
        char info[sizeof(KDF_INFO_DISK_PREFIX) + 36];

        if (!kdf_uuid_is_valid(luks_uuid))
                return -EINVAL;
        (void) snprintf(info, sizeof(info), "%s%s", KDF_INFO_DISK_PREFIX, luks_uuid);
        for (char *c = info + strlen(KDF_INFO_DISK_PREFIX); *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return kdf_hkdf_sha256(master, salt, MASTER_SALT_SIZE, info, DISK_KEY_SIZE, ret);
}

int kdf_measurement_secret(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                           Secret **ret)
{
        return kdf_hkdf_sha256(master, salt, MASTER_SALT_SIZE, KDF_INFO_MEASUREMENT_SECRET,
                               MEASUREMENT_SECRET_SIZE, ret);
}

int kdf_cluster_id(const Secret *measurement_secret,
                   const uint8_t measurement_salt[static MEASUREMENT_SALT_SIZE],
                   uint8_t ret[static CLUSTER_ID_SIZE])
{
        _cleanup_(secret_freep) Secret *id = NULL;
        int r;

        r = kdf_hkdf_sha256(measurement_secret, measurement_salt, MEASUREMENT_SALT_SIZE,
                            KDF_INFO_CLUSTER_ID, CLUSTER_ID_SIZE, &id);
        if (r < 0)
                return r;
        memcpy(ret, secret_data(id), CLUSTER_ID_SIZE);
        return 0;
}

void kdf_pcr15_event_digest(const uint8_t cluster_id[static CLUSTER_ID_SIZE],
                            uint8_t ret[static 32])
{
        crypto_sha256(cluster_id, CLUSTER_ID_SIZE, ret);
}

void kdf_pcr15_expected(const uint8_t cluster_id[static CLUSTER_ID_SIZE], uint8_t ret[static 32])
{
        uint8_t buf[64] = {};

        /* TPM2_PCR_Extend: new = H(old || digest), PCR 15 resets to zeros (PC Client PFP 3.3.4). */
        kdf_pcr15_event_digest(cluster_id, buf + 32);
        crypto_sha256(buf, sizeof(buf), ret);
}
