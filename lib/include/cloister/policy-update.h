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

/*
 * The owner's removal of a member (docs/membership.md, "Removing a member"): the same key as a
 * policy update, over another message, so that one cannot stand for the other:
 *
 *   msg = "nr1." hex(clusterId) "." lowercase(diskUuid) "." akDigest "." admitted "." NAME
 *   authenticator = hex(HMAC-SHA-256(K, msg))
 *
 * It names the member as the membership records it (its disk, attestation key and admission
 * time): a removal made for one admission cannot remove the node admitted under that name
 * later. Every field before NAME is free of dots, so the message reads one way only.
 */
#define NODE_REMOVAL_PREFIX "nr1."

typedef struct NodeRemoval {
        const char *name;      /* 1..63 bytes, no NUL */
        const char *disk_uuid; /* as recorded; lowercased into the message */
        const char *ak_digest; /* 64 lowercase hex digits, or "" (a variant without one) */
        const char *admitted;  /* YYYY-MM-DDTHH:MM:SSZ, as recorded */
} NodeRemoval;

/* The authenticator of (cluster ID, the member as recorded) into ret; -EINVAL for a field of
 * the wrong form (a dot or control character before NAME, an empty or too long name). */
int node_removal_authenticate(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                              const uint8_t cluster_id[static CLUSTER_ID_SIZE],
                              const NodeRemoval *rm, char ret[static POLICY_UPDATE_AUTH_SIZE]);
/* 0 if authenticator is the owner's for (cluster ID, rm); -EBADMSG if it is not 64 lowercase hex
 * digits or a field is malformed, -EKEYREJECTED if it was made with another key or for another
 * member, admission or cluster. d says which. */
int node_removal_check(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                       const uint8_t cluster_id[static CLUSTER_ID_SIZE], const NodeRemoval *rm,
                       const char *authenticator, Diag *d);

/*
 * The version record a join service keeps next to its policy file (STATE_DIR/policy-version.json,
 * mode 0600): {"version": N, "policyDigest": HEX, "policy": TEXT}, the policy pushed as version
 * N. It is the commit point of an update: written (fsync, rename) before the policy file, so a
 * stop between the two leaves a record whose policy is put in force at the next start.
 */
#define POLICY_UPDATE_RECORD_FILE "policy-version.json"

typedef struct PolicyUpdateRecord {
        int64_t version; /* 0: none stored (the policy of the init, never pushed) */
        char digest[65]; /* SHA-256 of text, hex */
        char *text;      /* the policy document, NUL-terminated; NULL with version 0 */
        size_t size;
} PolicyUpdateRecord;

void policy_update_record_done(PolicyUpdateRecord *rec);
/* The record in dir; version 0 if there is none. -EBADMSG for a damaged one (keys, types, a
 * version out of range, or a policy that does not have the recorded digest). */
int policy_update_record_load(const char *dir, PolicyUpdateRecord *ret, Diag *d);
/* Replaces the record in dir atomically (fsync'ed) with (version, text). */
int policy_update_record_write(const char *dir, int64_t version, const char *text, size_t size,
                               Diag *d);
