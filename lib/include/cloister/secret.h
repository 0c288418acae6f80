/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Secret memory: a buffer that is locked in RAM (mlock, excluded from core dumps), wiped with
 * OPENSSL_cleanse and freed in one call. The type is opaque so it cannot reach a printf-style
 * function (and so the logger) by mistake.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/macro.h"

typedef struct Secret Secret;

/* Largest secret we allocate: keys, not files. */
#define SECRET_SIZE_MAX (64U * 1024U)

/* Zero-filled secret of size bytes (1..SECRET_SIZE_MAX). -ENOMEM if it cannot be locked. */
int secret_new(size_t size, Secret **ret);
/* size bytes from the OpenSSL CSPRNG. */
int secret_new_random(size_t size, Secret **ret);
/* Copies size bytes from data; the caller still wipes its own copy. */
int secret_new_from(const void *data, size_t size, Secret **ret);
Secret *secret_free(Secret *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Secret *, secret_free);

uint8_t *secret_data(Secret *s);
const uint8_t *secret_data_const(const Secret *s);
size_t secret_size(const Secret *s);

/* Constant-time in the contents (not in the sizes, which are public). */
bool secret_equal(const Secret *a, const Secret *b);
bool memeq_consttime(const void *a, const void *b, size_t n);

/* Wipes a plain buffer (for fixed-size key material on the stack). */
void explicit_wipe(void *p, size_t n);

/* Cleanup for stack arrays holding key material: _cleanup_(wipe_32) uint8_t k[32]; */
static inline void wipe_32(uint8_t (*p)[32])
{
        explicit_wipe(*p, 32);
}
static inline void wipe_64(uint8_t (*p)[64])
{
        explicit_wipe(*p, 64);
}
