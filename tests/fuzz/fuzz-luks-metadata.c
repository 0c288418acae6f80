/* SPDX-License-Identifier: Apache-2.0 */
/* The LUKS2 metadata profile checks, on arbitrary JSON (libcryptsetup parses the binary header
 * and its checksums; a hostile host controls everything it then hands us). */
#include <stddef.h>
#include <stdint.h>

#include "cloister/luks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        LuksState st;

        (void) luks_validate_metadata_json((const char *) data, size, &st, NULL);
        return 0;
}
