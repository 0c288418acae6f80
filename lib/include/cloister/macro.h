/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Ownership idioms shared by all of libcloister (after systemd's macro.h):
 * _cleanup_(fn) runs fn(&var) when var leaves scope; TAKE_PTR() hands ownership out.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define _cleanup_(f)         __attribute__((cleanup(f)))
#define _unused_             __attribute__((unused))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _nonnull_(...)       __attribute__((nonnull(__VA_ARGS__)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _taken_ = (p);                                                       \
                (p) = NULL;                                                                        \
                _taken_;                                                                           \
        })

#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -EBADF;                                                                     \
                _fd_;                                                                              \
        })

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Defines fnp(T **p) { fn(*p); } for use with _cleanup_. fn must accept NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p)                                                        \
        {                                                                                          \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

static inline void freep(void *p)
{
        free(*(void **) p);
}

void closep(int *fd);
void fclosep(void *f); /* FILE ** */

static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}
