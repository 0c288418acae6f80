/* SPDX-License-Identifier: Apache-2.0 */
/* PE/COFF Authenticode over hostile executables. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/pe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t digest[PE_DIGEST_MAX];
        size_t n;

        (void) pe_authenticode(data, size, "SHA256", digest, &n, NULL);
        return 0;
}
