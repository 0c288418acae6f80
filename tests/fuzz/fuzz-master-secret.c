/* SPDX-License-Identifier: Apache-2.0 */
/* The master-secret file parser and, through it, the JSON layer (syntax, depth, duplicate keys,
 * typed getters, strict base64). */
#include <stddef.h>
#include <stdint.h>

#include "cloister/mastersecret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(master_secret_freep) MasterSecret *m = NULL;
        Diag d;

        diag_clear(&d);
        (void) master_secret_parse(data, size, "fuzz", &m, &d);
        return 0;
}
