/* SPDX-License-Identifier: Apache-2.0 */
/* The TDX event log: the first 56 bytes as the ACPI CCEL table, the rest as the log area (end of
 * log detection, TCG crypto-agile parsing, RTMR replay); and the rest alone without a table. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        TdxRtmrs r;

        if (size < TDX_CCEL_TABLE_SIZE)
                return 0;
        (void) tdx_ccel_replay(data, TDX_CCEL_TABLE_SIZE, data + TDX_CCEL_TABLE_SIZE,
                               size - TDX_CCEL_TABLE_SIZE, &r, NULL);
        (void) tdx_ccel_replay(NULL, 0, data + TDX_CCEL_TABLE_SIZE, size - TDX_CCEL_TABLE_SIZE, &r,
                               NULL);
        return 0;
}
