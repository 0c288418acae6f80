/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log verifier: line splitting and limits, JSON through the json module, keys and
 * values, the canonical re-serialisation (UTF-8 decoding, \u-escapes), hashes and the chain. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/audit-log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        AuditLogSummary sum;
        Diag d;

        diag_clear(&d);
        (void) audit_log_verify_buffer(data, size, "fuzz", &sum, &d);
        return 0;
}
