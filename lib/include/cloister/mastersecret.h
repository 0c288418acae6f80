/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The owner's master secret file, cloister-mastersecret.json:
 *   {"version": 1, "key": "<base64, 32 bytes>", "salt": "<base64, 32 bytes>"}
 * Created 0600 and never overwritten; loaded strictly (no unknown keys, exact sizes, 64 KiB cap).
 */

#include "cloister/diag.h"
#include "cloister/kdf.h"
#include "cloister/secret.h"

#define MASTER_SECRET_FILE_DEFAULT  "cloister-mastersecret.json"
#define MASTER_SECRET_FILE_SIZE_MAX (64U * 1024U)
#define MASTER_SECRET_FILE_VERSION  1

typedef struct MasterSecret {
        Secret *key;
        uint8_t salt[MASTER_SALT_SIZE];
} MasterSecret;

MasterSecret *master_secret_free(MasterSecret *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(MasterSecret *, master_secret_free);

/* Fresh key and salt from the CSPRNG. */
int master_secret_generate(MasterSecret **ret);
/* Writes m to path with mode 0600; -EEXIST (never overwrites) if path exists. */
int master_secret_write(const MasterSecret *m, const char *path, Diag *d);
int master_secret_load(const char *path, MasterSecret **ret, Diag *d);
/* The same from memory; source names the input in error messages. */
int master_secret_parse(const void *data, size_t size, const char *source, MasterSecret **ret,
                        Diag *d);
