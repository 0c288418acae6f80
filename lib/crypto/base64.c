/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/evp.h>
#include <string.h>

#include "cloister/base64.h"

int base64_encode(const void *data, size_t size, char **ret)
{
        char *out;

        if (size > (size_t) INT32_MAX / 2)
                return -EMSGSIZE;
        out = malloc((size + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        (void) EVP_EncodeBlock((unsigned char *) out, data, (int) size);
        *ret = out;
        return 0;
}

static bool is_b64(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

/* Returns the decoded length or -EBADMSG. EVP_DecodeBlock itself is lenient (whitespace, no
 * padding accounting), so the shape is checked here first. */
static int base64_check(const char *s, size_t len)
{
        size_t pad = 0;

        if (len % 4 != 0 || len > (size_t) INT32_MAX)
                return -EBADMSG;
        if (len >= 1 && s[len - 1] == '=')
                pad++;
        if (len >= 2 && s[len - 2] == '=')
                pad++;
        for (size_t i = 0; i < len - pad; i++)
                if (!is_b64(s[i]))
                        return -EBADMSG;
        return (int) (len / 4 * 3 - pad);
}

static int base64_decode_into(const char *s, size_t len, uint8_t *out, size_t outsize)
{
        int n = base64_check(s, len);
        int k;

        if (n < 0)
                return n;
        if ((size_t) n > outsize)
                return -EBADMSG;
        if (len == 0)
                return 0;
        k = EVP_DecodeBlock(out, (const unsigned char *) s, (int) len);
        if (k < 0 || k < n)
                return -EBADMSG;
        return n;
}

int base64_decode(const char *s, uint8_t **ret, size_t *ret_size)
{
        size_t len = strlen(s);
        uint8_t *out;
        int n;

        out = malloc(len / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        n = base64_decode_into(s, len, out, len / 4 * 3 + 3);
        if (n < 0) {
                explicit_wipe(out, len / 4 * 3 + 3);
                free(out);
                return n;
        }
        *ret = out;
        *ret_size = (size_t) n;
        return 0;
}

int base64_decode_secret(const char *s, size_t size, Secret **ret)
{
        _cleanup_(secret_freep) Secret *sec = NULL;
        size_t len = strlen(s);
        int n, r;

        /* Size check before decoding: nothing of a wrong-length input touches memory. */
        n = base64_check(s, len);
        if (n < 0)
                return n;
        if ((size_t) n != size)
                return -EBADMSG;
        /* EVP_DecodeBlock writes whole 3-byte groups, padding included. */
        r = secret_new(len / 4 * 3, &sec);
        if (r < 0)
                return r;
        n = base64_decode_into(s, len, secret_data(sec), len / 4 * 3);
        if (n < 0)
                return n;
        r = secret_new_from(secret_data(sec), size, ret);
        return r;
}
