/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "cloister/reader.h"

int reader_bytes(Reader *r, size_t n, const uint8_t **ret)
{
        if (n > reader_remaining(r))
                return -EBADMSG;
        if (ret)
                *ret = r->data + r->pos;
        r->pos += n;
        return 0;
}

int reader_copy(Reader *r, void *buf, size_t n)
{
        const uint8_t *p;
        int k = reader_bytes(r, n, &p);

        if (k < 0)
                return k;
        if (n > 0)
                memcpy(buf, p, n);
        return 0;
}

int reader_skip(Reader *r, size_t n)
{
        return reader_bytes(r, n, NULL);
}

int reader_sub(Reader *r, size_t n, Reader *ret)
{
        const uint8_t *p;
        int k = reader_bytes(r, n, &p);

        if (k < 0)
                return k;
        *ret = reader_init(p, n);
        return 0;
}

static int reader_uint(Reader *r, size_t n, bool little, uint64_t *ret)
{
        const uint8_t *p;
        uint64_t v = 0;
        int k = reader_bytes(r, n, &p);

        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++)
                v |= (uint64_t) p[little ? i : n - 1 - i] << (8 * i);
        *ret = v;
        return 0;
}

#define DEFINE_READER_UINT(name, type, n, little)                                                  \
        int name(Reader *r, type *ret)                                                             \
        {                                                                                          \
                uint64_t v;                                                                        \
                int k = reader_uint(r, n, little, &v);                                             \
                if (k < 0)                                                                         \
                        return k;                                                                  \
                *ret = (type) v;                                                                   \
                return 0;                                                                          \
        }

DEFINE_READER_UINT(reader_u8, uint8_t, 1, true)
DEFINE_READER_UINT(reader_u16le, uint16_t, 2, true)
DEFINE_READER_UINT(reader_u32le, uint32_t, 4, true)
DEFINE_READER_UINT(reader_u64le, uint64_t, 8, true)
DEFINE_READER_UINT(reader_u16be, uint16_t, 2, false)
DEFINE_READER_UINT(reader_u32be, uint32_t, 4, false)
DEFINE_READER_UINT(reader_u64be, uint64_t, 8, false)

int reader_tpm2b(Reader *r, const uint8_t **ret, uint16_t *ret_size)
{
        Reader save = *r;
        uint16_t n;
        int k;

        k = reader_u16be(r, &n);
        if (k < 0)
                return k;
        k = reader_bytes(r, n, ret);
        if (k < 0) {
                *r = save;
                return k;
        }
        *ret_size = n;
        return 0;
}

int reader_expect_end(const Reader *r)
{
        return reader_remaining(r) == 0 ? 0 : -EBADMSG;
}

bool reader_peek_zero(const Reader *r, size_t n)
{
        if (n > reader_remaining(r))
                return false;
        for (size_t i = 0; i < n; i++)
                if (r->data[r->pos + i] != 0)
                        return false;
        return true;
}
