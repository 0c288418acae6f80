/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cloister/log.h"
#include "cloister/secret.h"

struct Secret {
        size_t size;
        size_t mapped; /* bytes mapped, a multiple of the page size */
        uint8_t *data;
};

void explicit_wipe(void *p, size_t n)
{
        if (p && n > 0)
                OPENSSL_cleanse(p, n);
}

bool memeq_consttime(const void *a, const void *b, size_t n)
{
        return CRYPTO_memcmp(a, b, n) == 0;
}

int secret_new(size_t size, Secret **ret)
{
        long page = sysconf(_SC_PAGESIZE);
        _cleanup_(secret_freep) Secret *s = NULL;

        if (size == 0 || size > SECRET_SIZE_MAX)
                return -EINVAL;
        if (page <= 0)
                page = 4096;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;

        /* A private anonymous mapping: its own pages, so locking and wiping cover nothing else. */
        s->mapped = (size + (size_t) page - 1) / (size_t) page * (size_t) page;
        s->data = mmap(NULL, s->mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s->data == MAP_FAILED) {
                s->data = NULL;
                return -ENOMEM;
        }
        if (mlock(s->data, s->mapped) < 0) {
                int r = negative_errno();
                log_debug_errno(r, "mlock of %zu bytes failed (RLIMIT_MEMLOCK?): %m", s->mapped);
                return -ENOMEM;
        }
        (void) madvise(s->data, s->mapped, MADV_DONTDUMP);
        (void) madvise(s->data, s->mapped, MADV_WIPEONFORK);
        s->size = size;

        *ret = TAKE_PTR(s);
        return 0;
}

int secret_new_random(size_t size, Secret **ret)
{
        _cleanup_(secret_freep) Secret *s = NULL;
        int r;

        r = secret_new(size, &s);
        if (r < 0)
                return r;
        if (RAND_priv_bytes(s->data, (int) size) != 1)
                return -EIO;
        *ret = TAKE_PTR(s);
        return 0;
}

int secret_new_from(const void *data, size_t size, Secret **ret)
{
        _cleanup_(secret_freep) Secret *s = NULL;
        int r;

        r = secret_new(size, &s);
        if (r < 0)
                return r;
        memcpy(s->data, data, size);
        *ret = TAKE_PTR(s);
        return 0;
}

Secret *secret_free(Secret *s)
{
        if (!s)
                return NULL;
        if (s->data) {
                OPENSSL_cleanse(s->data, s->mapped);
                (void) munlock(s->data, s->mapped);
                (void) munmap(s->data, s->mapped);
        }
        free(s);
        return NULL;
}

uint8_t *secret_data(Secret *s)
{
        return s->data;
}

const uint8_t *secret_data_const(const Secret *s)
{
        return s->data;
}

size_t secret_size(const Secret *s)
{
        return s->size;
}

bool secret_equal(const Secret *a, const Secret *b)
{
        if (!a || !b || a->size != b->size)
                return false;
        return CRYPTO_memcmp(a->data, b->data, a->size) == 0;
}
