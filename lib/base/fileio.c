/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/fileio.h"
#include "cloister/macro.h"
#include "cloister/secret.h"

void closep(int *fd)
{
        if (*fd >= 0)
                (void) close(*fd);
        *fd = -EBADF;
}

void fclosep(void *f)
{
        FILE **p = f;
        if (*p)
                (void) fclose(*p);
}

int read_full_file(const char *path, size_t max_size, uint8_t **ret, size_t *ret_size)
{
        _cleanup_(closep) int fd = -EBADF;
        uint8_t *buf = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;
        int r = 0;

        if (strcmp(path, "-") == 0)
                fd = dup(STDIN_FILENO);
        else
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max_size)
                return -EMSGSIZE;

        /* Files may hold keys (key files, stdin): every buffer given up on the way (growth,
         * errors) is wiped first, never left to realloc() or free() as it is. */
        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        size_t want = allocated == 0 ? 4096 : allocated * 2;
                        uint8_t *p;

                        if (allocated > max_size) {
                                r = -EMSGSIZE;
                                goto fail;
                        }
                        want = MIN(want, max_size + 1);
                        p = malloc(want + 1);
                        if (!p) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if (buf) {
                                memcpy(p, buf, size);
                                explicit_wipe(buf, allocated + 1);
                                free(buf);
                        }
                        buf = p;
                        allocated = want;
                }
                n = read(fd, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max_size) {
                        r = -EMSGSIZE;
                        goto fail;
                }
        }
        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = 0;
        *ret = buf;
        *ret_size = size;
        return 0;
fail:
        if (buf) {
                explicit_wipe(buf, allocated + 1);
                free(buf);
        }
        return r;
}

static int loop_write(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
                      WriteFileFlags flags)
{
        _cleanup_(freep) char *tmp = NULL, *dircopy = NULL;
        _cleanup_(closep) int fd = -EBADF;
        int r;

        if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0) {
                r = negative_errno();
                goto fail;
        }
        r = loop_write(fd, data, size);
        if (r < 0)
                goto fail;
        if ((flags & WRITE_FILE_SYNC) && fsync(fd) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (flags & WRITE_FILE_EXCLUSIVE) {
                if (link(tmp, path) < 0) {
                        r = negative_errno();
                        goto fail;
                }
                (void) unlink(tmp);
        } else if (rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (flags & WRITE_FILE_SYNC) {
                _cleanup_(closep) int dfd = -EBADF;
                dircopy = strdup(path);
                if (!dircopy)
                        return -ENOMEM;
                dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void) fsync(dfd);
        }
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}
