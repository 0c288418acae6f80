/* SPDX-License-Identifier: Apache-2.0 */
/* The Azure paravisor's HCL report (as a TDX and as an SNP report) and its runtime data: the
 * layout, then the runtime data's JSON, its HCLAkPub JWK and base64url. In fuzz-evidence the
 * runtime data is read only after a hardware signature the fuzzer cannot forge, so it gets its
 * own target: an input that is no HCL report is taken as runtime data alone. */
#include <stddef.h>
#include <stdint.h>

#include "../../lib/attest/attest-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void runtime_data(const AzureHcl *h)
{
        Evidence e = { .variant = ATTEST_VARIANT_AZURE_TDX };
        AttestPolicy p = { .variant = ATTEST_VARIANT_AZURE_TDX };
        AttestReport rep = {};
        Diag d;

        diag_clear(&d);
        /* Stops at the (empty) TPM quote once the AK is read. */
        (void) attest_check_azure_vtpm(&e, &p, h, NULL, 0, &rep, &d);
        attest_report_done(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint32_t types[] = { AZURE_HCL_REPORT_TDX, AZURE_HCL_REPORT_SNP };
        bool hcl = false;

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                AttestReport rep = {};
                AzureHcl h;
                Diag d;

                diag_clear(&d);
                if (azure_hcl_parse(data, size, types[i], &h, &rep, &d) >= 0) {
                        hcl = true;
                        runtime_data(&h);
                }
                attest_report_done(&rep);
        }
        if (!hcl && size <= AZURE_HCL_RUNTIME_MAX)
                runtime_data(&(AzureHcl){ .runtime = data, .runtime_size = size });
        return 0;
}
