/* SPDX-License-Identifier: Apache-2.0 */
/* Intel PCS QE identity (the signed-span scan and the schema). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cloister/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        TdxQeIdentity *q = NULL;
        const uint8_t *span;
        size_t n;

        (void) tdx_json_member_span(data, size, "enclaveIdentity", &span, &n);
        if (tdx_qe_identity_parse(data, size, &q, NULL) < 0)
                return 0;
        free(q);
        return 0;
}
