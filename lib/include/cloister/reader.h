/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The one bounds-checked cursor through which attacker-controlled binary formats are read
 * (SNP reports, TPM structures, event logs, PE files, RPC frames). A short read returns -EBADMSG
 * and does not advance; reader_expect_end() turns trailing data into an error.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Reader {
        const uint8_t *data;
        size_t size;
        size_t pos;
} Reader;

static inline Reader reader_init(const void *data, size_t size)
{
        return (Reader){ .data = data, .size = size, .pos = 0 };
}

static inline size_t reader_remaining(const Reader *r)
{
        return r->size - r->pos;
}

static inline size_t reader_offset(const Reader *r)
{
        return r->pos;
}

int reader_u8(Reader *r, uint8_t *ret);
int reader_u16le(Reader *r, uint16_t *ret);
int reader_u32le(Reader *r, uint32_t *ret);
int reader_u64le(Reader *r, uint64_t *ret);
int reader_u16be(Reader *r, uint16_t *ret);
int reader_u32be(Reader *r, uint32_t *ret);
int reader_u64be(Reader *r, uint64_t *ret);
/* Points *ret at the next n bytes (no copy). */
int reader_bytes(Reader *r, size_t n, const uint8_t **ret);
/* Copies the next n bytes. */
int reader_copy(Reader *r, void *buf, size_t n);
int reader_skip(Reader *r, size_t n);
/* A sub-reader over the next n bytes; the parent advances past them. */
int reader_sub(Reader *r, size_t n, Reader *ret);
/* Big-endian u16 length followed by that many bytes (TPM2B_*). */
int reader_tpm2b(Reader *r, const uint8_t **ret, uint16_t *ret_size);
/* -EBADMSG if any bytes remain. */
int reader_expect_end(const Reader *r);
/* true if the n bytes at the cursor are all zero (n must be available). */
bool reader_peek_zero(const Reader *r, size_t n);
