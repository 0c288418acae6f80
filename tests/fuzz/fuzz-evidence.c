/* SPDX-License-Identifier: Apache-2.0 */
/* The evidence document parser, then the verifier of the variant the document names, whatever
 * it is (qemu-vtpm, sev-snp, azure-sev-snp, sim-snp, tdx, sim-tdx, azure-tdx, sim-azure-tdx): the
 * TPM structure parsers, quote checks and event-log replay, the SNP report, certificate table and
 * HCL report parsers, the TDX quote, certification data, collateral and CCEL replay all see
 * attacker bytes here. The policy pins as little as each variant allows, so that the verifier goes
 * as far as the bytes let it (a signature the fuzzer cannot forge still stops it, as it stops an
 * attacker). */
#include <stddef.h>
#include <stdint.h>

#include "cloister/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        AttestPolicy p = { .ak_trust = AK_TRUST_INSECURE_ANY, .event_log = EVENT_LOG_IF_PRESENT };
        static const uint8_t binding[32];
        AttestReport rep = {};
        Diag d;

        diag_clear(&d);
        if (evidence_parse(data, size, &e, &d) < 0)
                return 0;
        p.variant = e->variant;
        p.pcrs[0].present = true;
        snp_policy_defaults(&p.snp);
        tdx_policy_defaults(&p.tdx);
        /* Judge the quote even without collateral (the collateral parsers run when it is
         * there). */
        p.tdx.require_collateral = false;
        (void) attest_verify(e, &p, binding, 0, &rep, &d);
        attest_report_done(&rep);
        return 0;
}
