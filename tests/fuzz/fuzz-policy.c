/* SPDX-License-Identifier: Apache-2.0 */
/* The attestation policy parser (JSON schema, PCR keys, base64/PEM members, measurement sets)
 * and the cluster check of what it parsed. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        diag_clear(&d);
        if (attest_policy_parse(data, size, "fuzz", &p, &d) < 0)
                return 0;
        /* What a join service asks of a parsed policy (measurement sets included). */
        diag_clear(&d);
        (void) attest_policy_check_cluster(p, "fuzz", &d);
        return 0;
}
