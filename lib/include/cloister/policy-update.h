/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Owner-authenticated policy updates (docs/policy-update.md, normative derivation in
 * docs/key-derivation.md): only the holder of the cluster's master secret can change what its
 * join services admit. The owner's CLI authenticates the whole policy document, a version that
 * only grows and the cluster ID with a key derived from the master secret:
 *
 *   K   = HKDF(master, salt, "cloister/v1/policy-update", 32)
 *   msg = "pu1." hex(clusterId) "." VERSION "." hex(SHA-256(policy bytes))
 *   authenticator = hex(HMAC-SHA-256(K, msg))
 *
 * VERSION is decimal without sign or leading zero, 1..POLICY_UPDATE_VERSION_MAX. A join service,
 * which holds the master secret too, recomputes it and compares in constant time.
 */

#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/kdf.h"
#include "cloister/secret.h"

#define KDF_INFO_POLICY_UPDATE "cloister/v1/policy-update"
#define POLICY_UPDATE_PREFIX   "pu1."
/* 2^53 - 1: exact as a JSON number in every implementation. */
#define POLICY_UPDATE_VERSION_MAX INT64_C(9007199254740991)
#define POLICY_UPDATE_AUTH_SIZE   65 /* 64 lowercase hex digits and a NUL */

/* The key (secret): HKDF(master, salt, KDF_INFO_POLICY_UPDATE, 32). */
int policy_update_key(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                      Secret **ret);
/* The authenticator of (cluster ID, version, policy bytes) into ret; -EINVAL for a version
 * outside 1..POLICY_UPDATE_VERSION_MAX. */
int policy_update_authenticate(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                               const uint8_t cluster_id[static CLUSTER_ID_SIZE], int64_t version,
                               const void *policy, size_t policy_size,
                               char ret[static POLICY_UPDATE_AUTH_SIZE]);
/* 0 if authenticator is the one for (cluster ID, version, policy); -EBADMSG if it is not 64
 * lowercase hex digits or the version is out of range, -EKEYREJECTED if it was made with another
 * key or over anything else (another document, version or cluster). d says which. */
int policy_update_check(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                        const uint8_t cluster_id[static CLUSTER_ID_SIZE], int64_t version,
                        const void *policy, size_t policy_size, const char *authenticator, Diag *d);
/* A version as it travels between the monitor and its network process: decimal, no sign, no
 * leading zero, 1..POLICY_UPDATE_VERSION_MAX. -EBADMSG otherwise. */
int policy_update_version_parse(const char *s, int64_t *ret);
