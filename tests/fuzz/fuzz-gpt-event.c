/* SPDX-License-Identifier: Apache-2.0 */
/* The EV_EFI_GPT_EVENT data built from a disk's first bytes (lib/tcglog/tcg-gpt.c): the GPT
 * header, its CRC, the entry array's location, size and CRC, all attacker-chosen. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cloister/tcg-log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *out = NULL;
        size_t n = 0;

        if (size > TCG_GPT_READ_MAX)
                return 0;
        if (tcg_gpt_event_data(data, size, &out, &n, NULL) == 0)
                free(out);
        return 0;
}
