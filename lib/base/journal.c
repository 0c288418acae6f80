/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service manager's two datagram protocols, without libsystemd (which costs every program
 * about half a millisecond of start-up in libraries it pulls in: tests/bench/bench-snp-launch.c).
 *
 * Journal (systemd's "Native Journal Protocol"): one datagram per record to
 * /run/systemd/journal/socket, each field "KEY=value\n", or, for a value holding a newline,
 * "KEY\n" + its length as 64-bit little endian + the value + "\n".
 * Notify (sd_notify(3)): one datagram with the state to the socket $NOTIFY_SOCKET names, a path or,
 * starting with '@', an abstract name.
 */
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cloister/journal.h"

static int cached_fd = -1;

/* One socket for the process, made on first use by whichever thread gets there first. */
static int journal_socket(void)
{
        int fd = __atomic_load_n(&cached_fd, __ATOMIC_ACQUIRE), expected = -1;

        if (fd >= 0)
                return fd;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (!__atomic_compare_exchange_n(&cached_fd, &expected, fd, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
                (void) close(fd);
                return expected;
        }
        return fd;
}

int journal_socket_fd(void)
{
        return __atomic_load_n(&cached_fd, __ATOMIC_ACQUIRE);
}

static int socket_address(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
        size_t n = strlen(path);

        if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof(sa->sun_path))
                return -EINVAL;
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, n);
        if (path[0] == '@')
                sa->sun_path[0] = 0; /* abstract: the name is exactly n bytes, no NUL */
        else
                n++;
        *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
}

/* Appends one field; false when it does not fit. */
static bool put_field(JournalRecord *rec, const char *key, const char *value, size_t size)
{
        size_t k = strlen(key), need;
        uint64_t le = htole64((uint64_t) size);

        if (!memchr(value, '\n', size)) {
                need = k + 1 + size + 1;
                if (need > sizeof(rec->buf) - rec->size)
                        return false;
                memcpy(rec->buf + rec->size, key, k);
                rec->buf[rec->size + k] = '=';
                memcpy(rec->buf + rec->size + k + 1, value, size);
        } else {
                need = k + 1 + sizeof(le) + size + 1;
                if (need > sizeof(rec->buf) - rec->size)
                        return false;
                memcpy(rec->buf + rec->size, key, k);
                rec->buf[rec->size + k] = '\n';
                memcpy(rec->buf + rec->size + k + 1, &le, sizeof(le));
                memcpy(rec->buf + rec->size + k + 1 + sizeof(le), value, size);
        }
        rec->buf[rec->size + need - 1] = '\n';
        rec->size += need;
        return true;
}

bool journal_record_add(JournalRecord *rec, const char *key, const char *value)
{
        if (!rec->ok)
                return false;
        rec->ok = put_field(rec, key, value, strlen(value));
        return rec->ok;
}

bool journal_record_addf(JournalRecord *rec, const char *key, const char *format, ...)
{
        char value[256];
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(value, sizeof(value), format, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(value))
                rec->ok = false;
        return rec->ok && journal_record_add(rec, key, value);
}

int journal_record_send(const JournalRecord *rec, const char *socket_path)
{
        struct sockaddr_un sa;
        socklen_t len;
        int fd, r;

        if (!rec->ok)
                return -EMSGSIZE;
        r = socket_address(socket_path, &sa, &len);
        if (r < 0)
                return r;
        fd = journal_socket();
        if (fd < 0)
                return fd;
        if (sendto(fd, rec->buf, rec->size, MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        return 0;
}

int service_manager_notify(const char *state)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa;
        socklen_t len;
        int fd, r = 0;

        if (!path || !*path)
                return 0;
        if (socket_address(path, &sa, &len) < 0)
                return -EINVAL;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0)
                r = -errno;
        (void) close(fd);
        return r < 0 ? r : 1;
}
