/* SPDX-License-Identifier: Apache-2.0 */
/* The nonces a monitor issues for its network process's handshakes (privsep.h): a bounded table,
 * each nonce good once and for a limited time. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/privsep.h"

static uint64_t monotonic_ms(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

int privsep_nonces_init(PrivsepNonces *t, size_t n, unsigned ttl_sec)
{
        if (n == 0 || ttl_sec == 0)
                return -EINVAL;
        *t = (PrivsepNonces){ .n = n, .ttl_ms = (uint64_t) ttl_sec * 1000U, .now = monotonic_ms };
        t->entries = calloc(n, sizeof(*t->entries));
        if (!t->entries)
                return -ENOMEM;
        (void) pthread_mutex_init(&t->lock, NULL);
        return 0;
}

void privsep_nonces_done(PrivsepNonces *t)
{
        if (!t->entries)
                return;
        free(t->entries);
        t->entries = NULL;
        (void) pthread_mutex_destroy(&t->lock);
}

int privsep_nonce_issue(PrivsepNonces *t, uint8_t ret[static PRIVSEP_NONCE_SIZE])
{
        PrivsepNonce *slot;
        uint64_t now;

        if (!t->entries || RAND_bytes(ret, PRIVSEP_NONCE_SIZE) != 1)
                return -EIO;
        (void) pthread_mutex_lock(&t->lock);
        now = t->now();
        /* A slot never used, used up or expired; when every nonce is still good, the oldest
         * goes (its handshake is the likeliest to be abandoned). */
        slot = &t->entries[0];
        for (size_t i = 0; i < t->n; i++) {
                PrivsepNonce *e = &t->entries[i];

                if (e->state != PRIVSEP_NONCE_ISSUED || now - e->issued_ms >= t->ttl_ms) {
                        slot = e;
                        break;
                }
                if (e->issued_ms < slot->issued_ms)
                        slot = e;
        }
        memcpy(slot->nonce, ret, PRIVSEP_NONCE_SIZE);
        slot->issued_ms = now;
        slot->state = PRIVSEP_NONCE_ISSUED;
        (void) pthread_mutex_unlock(&t->lock);
        return 0;
}

int privsep_nonce_consume(PrivsepNonces *t, const uint8_t nonce[static PRIVSEP_NONCE_SIZE])
{
        int r = -ENOENT;
        uint64_t now;

        if (!t->entries)
                return -ENOENT;
        (void) pthread_mutex_lock(&t->lock);
        now = t->now();
        for (size_t i = 0; i < t->n; i++) {
                PrivsepNonce *e = &t->entries[i];

                if (e->state == PRIVSEP_NONCE_FREE ||
                    CRYPTO_memcmp(e->nonce, nonce, PRIVSEP_NONCE_SIZE) != 0)
                        continue;
                if (e->state == PRIVSEP_NONCE_USED)
                        r = -EALREADY;
                else if (now - e->issued_ms >= t->ttl_ms)
                        r = -ETIME;
                else
                        r = 0;
                /* Good once: whatever the verdict, it is spent. */
                e->state = PRIVSEP_NONCE_USED;
                break;
        }
        (void) pthread_mutex_unlock(&t->lock);
        return r;
}
