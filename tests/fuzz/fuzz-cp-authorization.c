/* SPDX-License-Identifier: Apache-2.0 */
/* The control-plane authorization check: the token comes from a joining node's request (and
 * before that from host-controlled metadata). Input: the token bytes; a fixed master secret and
 * name. Any outcome but a crash is fine; a success for an input not made with the key is a bug
 * (the PRF check failing open), asserted here. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloister/cp-authorization.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t key[32] = { 1, 2, 3 }, salt[32] = { 4, 5, 6 };
        _cleanup_(secret_freep) Secret *master = NULL;
        char token[CP_AUTHORIZATION_MAX + 8], made[CP_AUTHORIZATION_MAX];
        Diag d;

        if (size >= sizeof(token) || secret_new_from(key, sizeof(key), &master) < 0)
                return 0;
        memcpy(token, data, size);
        token[size] = '\0';
        diag_clear(&d);
        if (cp_authorization_check(master, salt, token, "cp-2", 1000, &d) == 0) {
                /* Only the genuine token for cp-2 can pass: it is the one make() gives. */
                const char *p = token + strlen("cpa1.cp-2."), *dot = strchr(p, '.');
                long long not_after = 0;
                assert(dot);
                for (; p < dot; p++)
                        not_after = not_after * 10 + (*p - '0');
                assert(cp_authorization_make(master, salt, "cp-2", (time_t) not_after, made) == 0);
                assert(strcmp(made, token) == 0);
        }
        return 0;
}
