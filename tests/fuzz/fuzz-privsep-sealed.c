/* SPDX-License-Identifier: Apache-2.0 */
/* Sealed answers (atls_context_unseal()): a joining node opens what the join service's network
 * process relays, which may be the attacker's. Input: the sealed bytes. Nothing the fuzzer makes
 * can open (it would need the ECDH secret of a key generated here): an opening is a bug. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/atls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int never(void *userdata, const uint8_t *evidence, size_t size,
                 const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        return -EPERM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static AtlsContext *client;
        Secret *plain = NULL;

        if (!client) {
                AtlsVerifier v = { .variant = ATTEST_VARIANT_QEMU_VTPM, .verify = never };
                if (atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &client) < 0)
                        return 0;
        }
        assert(atls_context_unseal(client, "join", data, size, &plain) < 0);
        assert(!plain);
        return 0;
}
