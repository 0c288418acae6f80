/* SPDX-License-Identifier: Apache-2.0 */
/* The attestation policy parser (JSON schema, PCR keys, base64/PEM members). */
#include <stddef.h>
#include <stdint.h>

#include "cloister/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        diag_clear(&d);
        (void) attest_policy_parse(data, size, "fuzz", &p, &d);
        return 0;
}
