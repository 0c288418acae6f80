/* SPDX-License-Identifier: Apache-2.0 */
/* The certification data of a TDX quote (type 6 wrapping the QE report, its signature, the QE
 * auth data and type 5, the PEM chain) when the first byte is 0; the DER of a PCK certificate's
 * SGX extension (FMSPC, PCE ID, TCB components) when it is 1. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        TdxPckExtensions e;
        TdxQuote q = {};

        if (size < 1)
                return 0;
        if (data[0] == 0)
                (void) tdx_certification_data_parse(data + 1, size - 1, &q, NULL);
        else
                (void) tdx_pck_extensions_parse(data + 1, size - 1, &e);
        return 0;
}
