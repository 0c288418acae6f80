/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/hex.h"
#include "cloister/macro.h"

static const char hexdigits[] = "0123456789abcdef";

int hex_encode(const void *data, size_t size, char **ret)
{
        const uint8_t *p = data;
        char *s;

        if (size > (SIZE_MAX - 1) / 2)
                return -ENOMEM;
        s = malloc(size * 2 + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < size; i++) {
                s[2 * i] = hexdigits[p[i] >> 4];
                s[2 * i + 1] = hexdigits[p[i] & 15];
        }
        s[size * 2] = 0;
        *ret = s;
        return 0;
}

void hex_encode_buf(const void *data, size_t size, char *buf, size_t bufsize)
{
        const uint8_t *p = data;
        size_t i, o = 0;

        if (bufsize == 0)
                return;
        for (i = 0; i < size && o + 2 < bufsize; i++) {
                buf[o++] = hexdigits[p[i] >> 4];
                buf[o++] = hexdigits[p[i] & 15];
        }
        if (i < size && bufsize >= 4)
                o = MIN(o, bufsize - 4), memcpy(buf + o, "...", 3), o += 3;
        buf[o] = 0;
}

int hex_digit_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int hex_decode_into(const char *s, size_t n, uint8_t *out)
{
        for (size_t i = 0; i < n; i++) {
                int hi = hex_digit_value(s[2 * i]), lo = hex_digit_value(s[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EBADMSG;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}

int hex_decode(const char *s, uint8_t **ret, size_t *ret_size)
{
        size_t len = strlen(s);
        _cleanup_(freep) uint8_t *out = NULL;
        int r;

        if (len % 2 != 0)
                return -EBADMSG;
        out = malloc(len / 2 + 1);
        if (!out)
                return -ENOMEM;
        r = hex_decode_into(s, len / 2, out);
        if (r < 0)
                return r;
        *ret_size = len / 2;
        *ret = TAKE_PTR(out);
        return 0;
}

int hex_decode_exact(const char *s, void *buf, size_t size)
{
        if (strlen(s) != size * 2)
                return -EBADMSG;
        return hex_decode_into(s, size, buf);
}
