/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cloister/privsep.h"
#include "cloister/reader.h"
#include "cloister/secret.h"

int privsep_parse(const uint8_t *buf, size_t size, const PrivsepSpec *specs, size_t n_specs,
                  PrivsepMsg *ret)
{
        Reader r = reader_init(buf, size);
        const PrivsepSpec *spec = NULL;
        PrivsepMsg m = {};
        uint32_t status;
        uint8_t op;

        if (size > PRIVSEP_MSG_MAX || reader_u8(&r, &op) < 0 || reader_u32le(&r, &status) < 0 ||
            reader_u8(&r, &m.n_fields) < 0)
                return -EBADMSG;
        for (size_t i = 0; i < n_specs; i++)
                if (specs[i].op == (op & ~PRIVSEP_REPLY))
                        spec = &specs[i];
        if (!spec)
                return -EBADMSG;
        /* A request carries no status: only the monitor's answers do. */
        if (!(op & PRIVSEP_REPLY) && status != 0)
                return -EBADMSG;
        if (m.n_fields != spec->n_fields)
                return -EBADMSG;
        for (size_t i = 0; i < m.n_fields; i++) {
                const PrivsepFieldSpec *f = &spec->fields[i];
                uint32_t n;

                if (reader_u32le(&r, &n) < 0 || n < f->min || n > f->max ||
                    reader_bytes(&r, n, &m.fields[i].data) < 0)
                        return -EBADMSG;
                m.fields[i].size = n;
                if (f->text &&
                    (n == 0 || m.fields[i].data[n - 1] != 0 || memchr(m.fields[i].data, 0, n - 1)))
                        return -EBADMSG;
        }
        if (reader_expect_end(&r) < 0)
                return -EBADMSG;
        m.op = op;
        m.status = (int32_t) status;
        *ret = m;
        return 0;
}

static void buf_reserve(PrivsepBuf *b, size_t more)
{
        uint8_t *n;
        size_t want;

        if (b->error < 0)
                return;
        if (more > PRIVSEP_MSG_MAX || b->size + more > PRIVSEP_MSG_MAX + 4) {
                b->error = -EMSGSIZE;
                return;
        }
        if (b->size + more <= b->allocated)
                return;
        want = (b->size + more) * 2;
        /* Not realloc(): the old buffer may hold secrets and must be wiped. */
        n = malloc(want);
        if (!n) {
                b->error = -ENOMEM;
                return;
        }
        if (b->data) {
                memcpy(n, b->data, b->size);
                explicit_wipe(b->data, b->allocated);
                free(b->data);
        }
        b->data = n;
        b->allocated = want;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

void privsep_buf_begin(PrivsepBuf *b, uint8_t op, int32_t status)
{
        *b = (PrivsepBuf){};
        buf_reserve(b, 4 + 1 + 4 + 1);
        if (b->error < 0)
                return;
        put_u32le(b->data, 0); /* the length, when sent */
        b->data[4] = op;
        put_u32le(b->data + 5, (uint32_t) status);
        b->data[9] = 0;
        b->size = 10;
}

void privsep_buf_add(PrivsepBuf *b, const void *data, size_t size)
{
        buf_reserve(b, 4 + size);
        if (b->error < 0)
                return;
        if (b->data[9] == PRIVSEP_FIELDS_MAX) {
                b->error = -E2BIG;
                return;
        }
        put_u32le(b->data + b->size, (uint32_t) size);
        if (size > 0)
                memcpy(b->data + b->size + 4, data, size);
        b->size += 4 + size;
        b->data[9]++;
}

void privsep_buf_add_text(PrivsepBuf *b, const char *s)
{
        privsep_buf_add(b, s ?: "", strlen(s ?: "") + 1);
}

void privsep_buf_done(PrivsepBuf *b)
{
        if (b->data)
                explicit_wipe(b->data, b->allocated);
        free(b->data);
        *b = (PrivsepBuf){};
}

int privsep_send(int fd, PrivsepBuf *b)
{
        size_t done = 0;

        if (b->error < 0)
                return b->error;
        if (b->size - 4 > PRIVSEP_MSG_MAX)
                return -EMSGSIZE;
        put_u32le(b->data, (uint32_t) (b->size - 4));
        while (done < b->size) {
                ssize_t k = send(fd, b->data + done, b->size - done, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return errno == EPIPE ? -ECONNRESET : -errno;
                done += (size_t) k;
        }
        return 0;
}

static int read_full(int fd, void *buf, size_t n)
{
        size_t got = 0;

        while (got < n) {
                ssize_t k = read(fd, (uint8_t *) buf + got, n - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ECONNRESET;
                got += (size_t) k;
        }
        return 0;
}

int privsep_recv(int fd, uint8_t **ret, size_t *ret_size)
{
        uint8_t len[4], *buf;
        uint32_t n;
        int r;

        r = read_full(fd, len, sizeof(len));
        if (r < 0)
                return r;
        n = (uint32_t) len[0] | (uint32_t) len[1] << 8 | (uint32_t) len[2] << 16 |
            (uint32_t) len[3] << 24;
        if (n > PRIVSEP_MSG_MAX)
                return -EMSGSIZE;
        buf = malloc(n ?: 1);
        if (!buf)
                return -ENOMEM;
        r = read_full(fd, buf, n);
        if (r < 0) {
                privsep_wipe_free(buf, n);
                return r;
        }
        *ret = buf;
        *ret_size = n;
        return 0;
}

void privsep_wipe_free(uint8_t *buf, size_t size)
{
        if (buf)
                explicit_wipe(buf, size);
        free(buf);
}
