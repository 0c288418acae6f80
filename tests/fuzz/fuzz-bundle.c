/* SPDX-License-Identifier: Apache-2.0 */
/* The evidence bundle reader (lib/bundle): JSON through the json module, the container's keys,
 * entry names, base64, the manifest digests and the canonical form. What it accepts must be
 * exactly what the writer makes of the same entries (the reader refuses every other spelling),
 * and every entry it reports must be there. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Bundle *b = NULL;
        char *text = NULL;
        size_t text_size = 0;
        Diag d;

        diag_clear(&d);
        if (bundle_parse(data, size, &b, &d) < 0) {
                if (b) /* outputs are written only on success */
                        abort();
                return 0;
        }
        if (bundle_serialize(b, &text, &text_size) < 0 || text_size != size ||
            memcmp(text, data, size) != 0)
                abort();
        free(text);
        bundle_free(b);
        return 0;
}
