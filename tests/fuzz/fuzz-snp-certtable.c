/* SPDX-License-Identifier: Apache-2.0 */
/* The extended report's certificate table (GHCB), as a host supplies it. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/snp-guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        SnpCertTable t;
        volatile uint8_t sink = 0;

        if (snp_cert_table_parse(data, size, &t, NULL) == 0) {
                /* Touch every byte the table points at: ASan catches any overrun. */
                for (size_t i = 0; i < t.vcek_size; i++)
                        sink ^= t.vcek[i];
                for (size_t i = 0; i < t.ask_size; i++)
                        sink ^= t.ask[i];
                for (size_t i = 0; i < t.ark_size; i++)
                        sink ^= t.ark[i];
                for (size_t i = 0; i < t.vlek_size; i++)
                        sink ^= t.vlek[i];
        }
        (void) sink;
        return 0;
}
