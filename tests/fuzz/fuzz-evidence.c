/* SPDX-License-Identifier: Apache-2.0 */
/* The evidence document parser, then the qemu-vtpm verifier on whatever parsed: the TPM
 * structure parsers, quote checks and event-log replay all see attacker bytes here. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        AttestPolicy p = { .variant = ATTEST_VARIANT_QEMU_VTPM,
                           .ak_trust = AK_TRUST_INSECURE_ANY,
                           .event_log = EVENT_LOG_IF_PRESENT };
        static const uint8_t binding[32];
        AttestReport rep = {};
        Diag d;

        diag_clear(&d);
        if (evidence_parse(data, size, &e, &d) < 0)
                return 0;
        p.pcrs[0].present = true;
        (void) attest_verify(e, &p, binding, 0, &rep, &d);
        attest_report_done(&rep);
        return 0;
}
