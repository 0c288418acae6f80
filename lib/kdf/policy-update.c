/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/policy-update.h"

int policy_update_key(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                      Secret **ret)
{
        return kdf_hkdf_sha256(master, salt, MASTER_SALT_SIZE, KDF_INFO_POLICY_UPDATE, 32, ret);
}

int policy_update_authenticate(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                               const uint8_t cluster_id[static CLUSTER_ID_SIZE], int64_t version,
                               const void *policy, size_t policy_size,
                               char ret[static POLICY_UPDATE_AUTH_SIZE])
{
        /* "pu1." + 64 hex + "." + up to 16 digits + "." + 64 hex + NUL */
        char msg[sizeof(POLICY_UPDATE_PREFIX) + 64 + 1 + 20 + 1 + 64 + 1];
        char cid_hex[2 * CLUSTER_ID_SIZE + 1], digest_hex[2 * SHA256_DIGEST_SIZE + 1];
        _cleanup_(secret_freep) Secret *key = NULL;
        uint8_t digest[SHA256_DIGEST_SIZE], mac[EVP_MAX_MD_SIZE];
        unsigned mac_size = 0;
        int r;

        if (version < 1 || version > POLICY_UPDATE_VERSION_MAX || (!policy && policy_size > 0))
                return -EINVAL;
        r = policy_update_key(master, salt, &key);
        if (r < 0)
                return r;
        crypto_sha256(policy ?: "", policy_size, digest);
        hex_encode_buf(cluster_id, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        hex_encode_buf(digest, sizeof(digest), digest_hex, sizeof(digest_hex));
        (void) snprintf(msg, sizeof(msg), "%s%s.%" PRId64 ".%s", POLICY_UPDATE_PREFIX, cid_hex,
                        version, digest_hex);
        /* RFC 2104 HMAC with SHA-256. */
        if (!HMAC(EVP_sha256(), secret_data_const(key), (int) secret_size(key),
                  (const unsigned char *) msg, strlen(msg), mac, &mac_size) ||
            mac_size != SHA256_DIGEST_SIZE)
                return crypto_log_errors(-EIO, "HMAC-SHA-256");
        hex_encode_buf(mac, SHA256_DIGEST_SIZE, ret, POLICY_UPDATE_AUTH_SIZE);
        explicit_wipe(mac, sizeof(mac));
        return 0;
}

int policy_update_check(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                        const uint8_t cluster_id[static CLUSTER_ID_SIZE], int64_t version,
                        const void *policy, size_t policy_size, const char *authenticator, Diag *d)
{
        char expected[POLICY_UPDATE_AUTH_SIZE];
        bool same;
        int r;

        if (!authenticator || strlen(authenticator) != 64 ||
            strspn(authenticator, "0123456789abcdef") != 64)
                return diag_fail(d, -EBADMSG, "policy-authenticator", -1,
                                 "the policy update's authenticator is not 64 lowercase hex "
                                 "digits");
        if (version < 1 || version > POLICY_UPDATE_VERSION_MAX)
                return diag_fail(d, -EBADMSG, "policy-version", -1,
                                 "the policy version must be 1 to %" PRId64,
                                 POLICY_UPDATE_VERSION_MAX);
        r = policy_update_authenticate(master, salt, cluster_id, version, policy, policy_size,
                                       expected);
        if (r < 0)
                return diag_fail(d, r, "policy-authenticator", -1, "key derivation failed");
        same = memeq_consttime(expected, authenticator, 64);
        explicit_wipe(expected, sizeof(expected));
        if (!same)
                return diag_fail(d, -EKEYREJECTED, "policy-authenticator", -1,
                                 "the policy update is not authenticated by this cluster's owner "
                                 "(made with another master secret, for another cluster, or "
                                 "over another document or version)");
        return 0;
}

int policy_update_version_parse(const char *s, int64_t *ret)
{
        size_t n = s ? strlen(s) : 0;
        int64_t v = 0;

        if (n == 0 || n > 16 || s[0] == '0' || strspn(s, "0123456789") != n)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (s[i] - '0'); /* at most 16 digits: no overflow */
        if (v > POLICY_UPDATE_VERSION_MAX)
                return -EBADMSG;
        *ret = v;
        return 0;
}
