/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "cloister/http-response.h"
#include "cloister/reader.h"

/* The next line of the header block, without its CRLF (RFC 9112 section 2.2: CRLF ends a line;
 * a bare CR or LF, or a NUL, is refused). */
static int next_line(Reader *r, const char **ret, size_t *ret_size)
{
        const uint8_t *p = r->data + r->pos;
        size_t left = reader_remaining(r);

        for (size_t i = 0; i < left; i++) {
                if (p[i] == '\0' || (p[i] == '\n'))
                        return -EBADMSG;
                if (p[i] == '\r') {
                        if (i + 1 >= left || p[i + 1] != '\n')
                                return -EBADMSG;
                        *ret = (const char *) p;
                        *ret_size = i;
                        return reader_skip(r, i + 2);
                }
        }
        return -EBADMSG;
}

/* "HTTP/1.1 NNN reason" (RFC 9112 section 4). */
static int parse_status_line(const char *s, size_t n, unsigned *ret)
{
        unsigned v = 0;

        if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
            (n > 12 && s[12] != ' '))
                return -EBADMSG;
        for (size_t i = 9; i < 12; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v < 100 || v > 599)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* A field line "Name: value"; for Content-Length the decimal value (at most 9 digits: far above
 * HTTP_RESPONSE_MAX, never overflowing). 1 if it was Content-Length, 0 for another field. */
static int parse_field(const char *s, size_t n, size_t *ret_length, int *ret_chunked)
{
        const char *colon = memchr(s, ':', n), *v;
        size_t name_len, vn;
        size_t len = 0;

        if (!colon || colon == s)
                return -EBADMSG;
        name_len = (size_t) (colon - s);
        for (size_t i = 0; i < name_len; i++)
                if (s[i] <= ' ' || s[i] >= 0x7f)
                        return -EBADMSG; /* no whitespace before the colon, no folding */
        v = colon + 1;
        vn = n - name_len - 1;
        while (vn > 0 && (*v == ' ' || *v == '\t'))
                v++, vn--;
        while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                vn--;
        if (name_len == 17 && strncasecmp(s, "Transfer-Encoding", 17) == 0) {
                *ret_chunked = 1;
                return 0;
        }
        if (name_len != 14 || strncasecmp(s, "Content-Length", 14) != 0)
                return 0;
        if (vn == 0 || vn > 9)
                return -EBADMSG;
        for (size_t i = 0; i < vn; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return -EBADMSG;
                len = len * 10 + (size_t) (v[i] - '0');
        }
        *ret_length = len;
        return 1;
}

int http_response_parse(const uint8_t *buf, size_t size, HttpResponse *ret)
{
        Reader r = reader_init(buf, size);
        size_t length = 0, n;
        bool have_length = false;
        int chunked = 0;
        const char *line;
        unsigned status;
        int k;

        if (size > HTTP_RESPONSE_MAX)
                return -EMSGSIZE;
        k = next_line(&r, &line, &n);
        if (k < 0)
                return k;
        k = parse_status_line(line, n, &status);
        if (k < 0)
                return k;
        for (;;) {
                if (reader_offset(&r) > HTTP_HEADERS_MAX)
                        return -EMSGSIZE;
                k = next_line(&r, &line, &n);
                if (k < 0)
                        return k;
                if (n == 0)
                        break; /* the empty line: the body follows */
                k = parse_field(line, n, &length, &chunked);
                if (k < 0)
                        return k;
                if (k == 1) {
                        if (have_length)
                                return -EBADMSG; /* a repeated Content-Length */
                        have_length = true;
                }
        }
        if (reader_offset(&r) > HTTP_HEADERS_MAX)
                return -EMSGSIZE;
        if (chunked || !have_length || length != reader_remaining(&r))
                return -EBADMSG;
        *ret = (HttpResponse){
                .status = status,
                .body = buf + reader_offset(&r),
                .body_size = length,
        };
        return 0;
}
