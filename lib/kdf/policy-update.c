/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/kdf.h"
#include "cloister/policy-update.h"

int policy_update_key(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                      Secret **ret)
{
        return kdf_hkdf_sha256(master, salt, MASTER_SALT_SIZE, KDF_INFO_POLICY_UPDATE, 32, ret);
}

/* hex(HMAC-SHA-256(K, msg)), K the owner's key: every owner-authenticated request (a policy
 * update, a member's removal) is one message under it, told apart by its prefix. */
static int owner_mac(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                     const char *msg, char ret[static POLICY_UPDATE_AUTH_SIZE])
{
        _cleanup_(secret_freep) Secret *key = NULL;
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_size = 0;
        int r;

        r = policy_update_key(master, salt, &key);
        if (r < 0)
                return r;
        /* RFC 2104 HMAC with SHA-256. */
        if (!HMAC(EVP_sha256(), secret_data_const(key), (int) secret_size(key),
                  (const unsigned char *) msg, strlen(msg), mac, &mac_size) ||
            mac_size != SHA256_DIGEST_SIZE)
                return crypto_log_errors(-EIO, "HMAC-SHA-256");
        hex_encode_buf(mac, SHA256_DIGEST_SIZE, ret, POLICY_UPDATE_AUTH_SIZE);
        explicit_wipe(mac, sizeof(mac));
        return 0;
}

int policy_update_authenticate(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                               const uint8_t cluster_id[static CLUSTER_ID_SIZE], int64_t version,
                               const void *policy, size_t policy_size,
                               char ret[static POLICY_UPDATE_AUTH_SIZE])
{
        /* "pu1." + 64 hex + "." + up to 16 digits + "." + 64 hex + NUL */
        char msg[sizeof(POLICY_UPDATE_PREFIX) + 64 + 1 + 20 + 1 + 64 + 1];
        char cid_hex[2 * CLUSTER_ID_SIZE + 1], digest_hex[2 * SHA256_DIGEST_SIZE + 1];
        uint8_t digest[SHA256_DIGEST_SIZE];

        if (version < 1 || version > POLICY_UPDATE_VERSION_MAX || (!policy && policy_size > 0))
                return -EINVAL;
        crypto_sha256(policy ?: "", policy_size, digest);
        hex_encode_buf(cluster_id, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        hex_encode_buf(digest, sizeof(digest), digest_hex, sizeof(digest_hex));
        (void) snprintf(msg, sizeof(msg), "%s%s.%" PRId64 ".%s", POLICY_UPDATE_PREFIX, cid_hex,
                        version, digest_hex);
        return owner_mac(master, salt, msg, ret);
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

/* A field of the removal message before the name: printable ASCII without a dot (so the message
 * reads one way only), at most max bytes; empty only where allowed. */
static bool removal_field_ok(const char *s, size_t max, bool may_be_empty)
{
        size_t n = s ? strlen(s) : 0;

        if (!s || n > max || (n == 0 && !may_be_empty))
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '.')
                        return false;
        return true;
}

int node_removal_authenticate(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                              const uint8_t cluster_id[static CLUSTER_ID_SIZE],
                              const NodeRemoval *rm, char ret[static POLICY_UPDATE_AUTH_SIZE])
{
        /* "nr1." + 64 hex + "." + uuid (40) + "." + 64 hex + "." + time (32) + "." + name (63) */
        char msg[sizeof(NODE_REMOVAL_PREFIX) + 64 + 1 + 40 + 1 + 64 + 1 + 32 + 1 + 63 + 1];
        char cid_hex[2 * CLUSTER_ID_SIZE + 1], uuid[41];
        size_t name_size = rm && rm->name ? strlen(rm->name) : 0;

        if (!rm || !removal_field_ok(rm->disk_uuid, 40, false) ||
            !removal_field_ok(rm->ak_digest, 64, true) ||
            !removal_field_ok(rm->admitted, 32, false) || name_size == 0 || name_size > 63)
                return -EINVAL;
        for (size_t i = 0; i < name_size; i++)
                if ((unsigned char) rm->name[i] < ' ' || rm->name[i] == 0x7f)
                        return -EINVAL;
        (void) kdf_uuid_lower(rm->disk_uuid, uuid, sizeof(uuid));
        hex_encode_buf(cluster_id, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        (void) snprintf(msg, sizeof(msg), "%s%s.%s.%s.%s.%s", NODE_REMOVAL_PREFIX, cid_hex, uuid,
                        rm->ak_digest, rm->admitted, rm->name);
        return owner_mac(master, salt, msg, ret);
}

int node_removal_check(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                       const uint8_t cluster_id[static CLUSTER_ID_SIZE], const NodeRemoval *rm,
                       const char *authenticator, Diag *d)
{
        char expected[POLICY_UPDATE_AUTH_SIZE];
        bool same;
        int r;

        if (!authenticator || strspn(authenticator, "0123456789abcdef") != 64 ||
            authenticator[64] != '\0')
                return diag_fail(d, -EBADMSG, "removal-authenticator", -1,
                                 "the removal's authenticator is not 64 lowercase hex digits");
        r = node_removal_authenticate(master, salt, cluster_id, rm, expected);
        if (r == -EINVAL)
                return diag_fail(d, -EBADMSG, "removal-member", -1,
                                 "the removal names a member in a form no record has (name, disk "
                                 "UUID, attestation-key digest or admission time)");
        if (r < 0)
                return diag_fail(d, r, "removal-authenticator", -1, "key derivation failed");
        same = memeq_consttime(authenticator, expected, 64);
        explicit_wipe(expected, sizeof(expected));
        if (!same)
                return diag_fail(d, -EKEYREJECTED, "removal-authenticator", -1,
                                 "the removal is not authenticated by this cluster's owner (made "
                                 "with another master secret, for another cluster, or for another "
                                 "member or admission)");
        return 0;
}
