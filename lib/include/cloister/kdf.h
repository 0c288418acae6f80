/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Key derivation, normative spec in docs/key-derivation.md. Everything derives from the owner's
 * 32-byte master secret and 32-byte salt with HKDF-SHA-256 (RFC 5869) and an info string naming
 * the purpose.
 */

#include <stdint.h>

#include "cloister/secret.h"

#define MASTER_SECRET_SIZE      32
#define MASTER_SALT_SIZE        32
#define MEASUREMENT_SALT_SIZE   32
#define DISK_KEY_SIZE           32
#define MEASUREMENT_SECRET_SIZE 32
#define CLUSTER_ID_SIZE         32

#define KDF_INFO_DISK_PREFIX        "cloister/v1/disk/"
#define KDF_INFO_MEASUREMENT_SECRET "cloister/v1/measurement-secret"
#define KDF_INFO_CLUSTER_ID         "cloister/v1/cluster-id"

/* HKDF-SHA-256 extract-and-expand; out_size 1..255*32. */
int kdf_hkdf_sha256(const Secret *ikm, const uint8_t *salt, size_t salt_size, const char *info,
                    size_t out_size, Secret **ret);

/* true if s is a canonical LUKS UUID (8-4-4-4-12 hex digits, either case). */
bool kdf_uuid_is_valid(const char *s);

/* A disk's UUID as records, etcd keys and the owner's signatures name it: ASCII letters
 * lowercased (the disk key's derivation does the same), copied into ret and truncated to
 * size - 1 bytes as snprintf() does; NULL is "". Returns ret. */
char *kdf_uuid_lower(const char *uuid, char *ret, size_t size);

/* Disk key for the LUKS2 volume with this UUID; the UUID is lowercased before use. */
int kdf_disk_key(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                 const char *luks_uuid, Secret **ret);
int kdf_measurement_secret(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                           Secret **ret);
/* The cluster ID is public: it is extended into PCR 15 and shown by `cloister verify`. */
int kdf_cluster_id(const Secret *measurement_secret,
                   const uint8_t measurement_salt[static MEASUREMENT_SALT_SIZE],
                   uint8_t ret[static CLUSTER_ID_SIZE]);
/* The digest extended into PCR 15: SHA-256(cluster ID). */
void kdf_pcr15_event_digest(const uint8_t cluster_id[static CLUSTER_ID_SIZE],
                            uint8_t ret[static 32]);
/* PCR 15 after that one extend from its reset value (32 zero bytes):
 * SHA-256(0^32 || SHA-256(cluster ID)). */
void kdf_pcr15_expected(const uint8_t cluster_id[static CLUSTER_ID_SIZE], uint8_t ret[static 32]);
