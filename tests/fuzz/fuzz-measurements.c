/* SPDX-License-Identifier: Apache-2.0 */
/* The measurements file parser, formats 1 and 2 (what config fetch-measurements downloads). */
#include <stddef.h>
#include <stdint.h>

#include "cloister/measurements.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;

        (void) measurements_file_parse(data, size, "fuzz", &m, NULL);
        return 0;
}
