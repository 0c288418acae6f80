/* SPDX-License-Identifier: Apache-2.0 */
/*
 * azure-tdx: an Azure TDX confidential VM. Its paravisor (HCL) runs as the TD and gives the guest
 * a vTPM; the guest never sees a quote of its own. The HCL report (read from the vTPM's NV index)
 * holds a TDREPORT, not a quote: the TDREPORT's MAC is checkable only on the same CPU, so the
 * guest sends it to the host (Azure IMDS, /acc/tdquote), whose quoting enclave returns a quote of
 * the same TD body. That quote is what a remote verifier can check, and its REPORTDATA[0:32] is
 * SHA-256 of the HCL's runtime data, which names the vTPM's attestation key (as azure-cvm-tooling,
 * trustee's az-tdx-vtpm verifier and Constellation's azure/tdx validator bind them).
 *
 * So, in order: the TD quote through the whole TDX path (tdx-attest.c: Intel's root, collateral
 * and TCB status, the policy's TDX checks: MRTD is the paravisor's), the runtime data is what
 * REPORTDATA[0:32] vouches for, and the vTPM part shared with azure-sev-snp (azure.c): the AK the
 * runtime data names signs the TPM quote, bound to the verifier's nonce, with the PCRs.
 *
 * The TDREPORT inside the HCL report is not used (nothing outside the CPU can authenticate it),
 * nor REPORTDATA[32:64] (the paravisor's, not bound to anything here). sim-azure-tdx is the same
 * with a simulator's quote, anchored only in the root its policy names (tdx-attest.c).
 */
#include "attest-internal.h"

int attest_verify_azure_tdx(const Evidence *e, const AttestPolicy *p, const uint8_t *binding,
                            time_t at, AttestReport *r, Diag *d)
{
        const Blob *hcl = &e->tdx.hcl_report;
        TdxQuote q;
        AzureHcl h;
        int k;

        k = azure_hcl_parse(hcl->data, hcl->size, AZURE_HCL_REPORT_TDX, &h, r, d);
        if (k < 0)
                return k;
        /* 1. The TD quote, REPORTDATA judged below. */
        k = attest_check_tdx_quote(e, p, at, NULL, &q, r, d);
        if (k < 0)
                return k;
        /* 2. The runtime data is what the quote vouches for. */
        k = attest_check_azure_runtime_data(&h, q.report_data, "TD quote's REPORTDATA", r, d);
        if (k < 0)
                return k;
        /* 3. The AK it names signs the vTPM quote of the nonce and the PCRs. */
        return attest_check_azure_vtpm(e, p, &h, binding, binding ? ATTEST_BINDING_SIZE : 0, r, d);
}
