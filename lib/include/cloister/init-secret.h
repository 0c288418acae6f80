/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The init secret: 32 random bytes the owner's CLI holds; a node accepts the first init request
 * only with it. The node learns only a slow hash of it, from its instance metadata:
 *     scrypt$<log2 N>$<r>$<p>$<salt, 32 hex>$<hash, 64 hex>
 * (RFC 7914 scrypt, 32-byte output). Verification recomputes it and compares in constant time.
 * The cost comes from metadata (host-controlled), so it is bounded: log2 N 14..17, r 1..8,
 * p 1..2.
 * Metadata is host-controlled, so this keeps other parties on the network from racing the owner
 * to init a node; a host that swaps the hash can init the node itself, which leaks none of the
 * owner's secrets and shows as a foreign cluster ID in PCR 15 (docs/threat-model.md).
 */

#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/secret.h"

#define INIT_SECRET_SIZE      32
#define INIT_SECRET_HASH_MAX  160
#define INIT_SECRET_LOG2N     15 /* 32 MiB, ~0.1 s here */
#define INIT_SECRET_LOG2N_MIN 14
#define INIT_SECRET_LOG2N_MAX 20
#define INIT_SECRET_R         8
#define INIT_SECRET_P         1

/* Hashes secret with a fresh random salt and the default cost into out. */
int init_secret_hash(const Secret *secret, char out[static INIT_SECRET_HASH_MAX]);
/* -EBADMSG if encoded is not a hash this version accepts (format, cost bounds). */
int init_secret_hash_check(const char *encoded, Diag *d);
/* 0 if secret matches encoded, -EKEYREJECTED if not, -EBADMSG if encoded is malformed. */
int init_secret_verify(const Secret *secret, const char *encoded, Diag *d);

#define INIT_SECRET_FILE_DEFAULT "cloister-init-secret"

/* The owner's file: the secret in base64 on one line, mode 0600; never overwritten (-EEXIST). */
int init_secret_generate_file(const char *path, Secret **ret);
int init_secret_load(const char *path, Secret **ret, Diag *d);
