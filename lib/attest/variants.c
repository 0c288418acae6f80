/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attestation variants, one row each: the name in evidence and policy documents, what their
 * evidence carries, how their policy is read and their evidence verified. Everything else that
 * depends on the variant asks this table (the evidence parser, the policy parser and its
 * refuse-by-default checks, attest_verify()); a variant's own checks live in its file
 * (vtpm-verify.c, snp-attest.c, azure.c, tdx-attest.c, azure-tdx.c).
 */
#include <assert.h>
#include <string.h>

#include "attest-internal.h"

static const AttestVariantInfo variants[_ATTEST_VARIANT_MAX] = {
        [ATTEST_VARIANT_QEMU_VTPM] = { .name = "qemu-vtpm",
                                       .members = ATTEST_MEMBER_TPM,
                                       .parse_policy = attest_policy_parse_vtpm,
                                       .verify = attest_verify_vtpm },
        [ATTEST_VARIANT_SEV_SNP] = { .name = "sev-snp",
                                     .members = ATTEST_MEMBER_SNP,
                                     .parse_policy = attest_policy_parse_snp,
                                     .verify = attest_verify_snp },
        [ATTEST_VARIANT_AZURE_SEV_SNP] = { .name = "azure-sev-snp",
                                           .members = ATTEST_MEMBER_TPM | ATTEST_MEMBER_SNP |
                                                      ATTEST_MEMBER_HCL,
                                           .parse_policy = attest_policy_parse_azure_sev_snp,
                                           .verify = attest_verify_azure_sev_snp },
        [ATTEST_VARIANT_SIM_SNP] = { .name = "sim-snp",
                                     .members = ATTEST_MEMBER_SNP,
                                     .simulated = true,
                                     .parse_policy = attest_policy_parse_snp,
                                     .verify = attest_verify_snp },
        [ATTEST_VARIANT_TDX] = { .name = "tdx",
                                 .members = ATTEST_MEMBER_TDX,
                                 .identity = ATTEST_MEMBER_TPM,
                                 .parse_policy = attest_policy_parse_tdx,
                                 .verify = attest_verify_tdx },
        [ATTEST_VARIANT_SIM_TDX] = { .name = "sim-tdx",
                                     .members = ATTEST_MEMBER_TDX,
                                     .identity = ATTEST_MEMBER_TPM,
                                     .simulated = true,
                                     .parse_policy = attest_policy_parse_tdx,
                                     .verify = attest_verify_tdx },
        [ATTEST_VARIANT_AZURE_TDX] = { .name = "azure-tdx",
                                       .members = ATTEST_MEMBER_TPM | ATTEST_MEMBER_TDX |
                                                  ATTEST_MEMBER_HCL,
                                       .parse_policy = attest_policy_parse_azure_tdx,
                                       .verify = attest_verify_azure_tdx },
        [ATTEST_VARIANT_SIM_AZURE_TDX] = { .name = "sim-azure-tdx",
                                           .members = ATTEST_MEMBER_TPM | ATTEST_MEMBER_TDX |
                                                      ATTEST_MEMBER_HCL,
                                           .simulated = true,
                                           .parse_policy = attest_policy_parse_azure_tdx,
                                           .verify = attest_verify_azure_tdx },
};

const AttestVariantInfo *attest_variant_info(AttestVariant v)
{
        assert(v >= 0 && v < _ATTEST_VARIANT_MAX);
        return &variants[v];
}

const char *attest_variant_to_string(AttestVariant v)
{
        if (v < 0 || v >= _ATTEST_VARIANT_MAX)
                return NULL;
        return variants[v].name;
}

bool attest_variant_tpm_identity(AttestVariant v)
{
        return v >= 0 && v < _ATTEST_VARIANT_MAX && (variants[v].identity & ATTEST_MEMBER_TPM);
}

AttestVariant attest_variant_from_string(const char *s)
{
        if (!s)
                return _ATTEST_VARIANT_INVALID;
        for (int i = 0; i < _ATTEST_VARIANT_MAX; i++)
                if (strcmp(s, variants[i].name) == 0)
                        return (AttestVariant) i;
        return _ATTEST_VARIANT_INVALID;
}

bool attest_variant_quotes_pcrs(AttestVariant v)
{
        return v >= 0 && v < _ATTEST_VARIANT_MAX && (variants[v].members & ATTEST_MEMBER_TPM);
}
