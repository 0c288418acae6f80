/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the files of lib/attest/: building the check list of an AttestReport. */

#include "cloister/attest.h"
#include "cloister/json.h"
#include "cloister/tpm-quote.h"

/* What a variant's evidence carries (and its policy checks). */
typedef enum AttestMember {
        ATTEST_MEMBER_TPM = 1 << 0, /* a vTPM quote of PCRs */
        ATTEST_MEMBER_SNP = 1 << 1, /* an SEV-SNP report */
        ATTEST_MEMBER_TDX = 1 << 2, /* a TDX quote */
        /* Azure's paravisor (HCL) report: its runtime data names the vTPM's attestation key, and
         * the hardware report (SNP) or quote (TDX) vouches for the runtime data (azure.c). */
        ATTEST_MEMBER_HCL = 1 << 3,
} AttestMember;

/* One attestation variant: its row in lib/attest/variants.c. A new variant is a file with its
 * verify function (and its issuer), and a row. */
typedef struct AttestVariantInfo AttestVariantInfo;
struct AttestVariantInfo {
        const char *name;
        unsigned members; /* AttestMember: a document with any other member is refused */
        /* AttestMember a document may carry besides: the node's TPM quote over the same binding,
         * which identifies the node for membership (its attestation key), attests nothing
         * (docs/join.md, "Members without a TPM attestation key"). Checked when present. */
        unsigned identity;
        /* A simulator: trusted only through the root its policy names, never by default. */
        bool simulated;
        /* Reads the variant's part of a policy document (root object j, the variant known). */
        int (*parse_policy)(const JsonCtx *ctx, const json_t *j, const AttestVariantInfo *info,
                            AttestPolicy *p);
        /* Verifies evidence of this variant against p (variant already compared). */
        int (*verify)(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                      AttestReport *r, Diag *d);
};

/* The row of a valid variant (callers check the range first: attest_variant_from_string and
 * the evidence and policy parsers never produce another). */
const AttestVariantInfo *attest_variant_info(AttestVariant v);

int attest_policy_parse_vtpm(const JsonCtx *ctx, const json_t *j, const AttestVariantInfo *info,
                             AttestPolicy *p);
int attest_policy_parse_snp(const JsonCtx *ctx, const json_t *j, const AttestVariantInfo *info,
                            AttestPolicy *p);
int attest_policy_parse_azure_sev_snp(const JsonCtx *ctx, const json_t *j,
                                      const AttestVariantInfo *info, AttestPolicy *p);
int attest_policy_parse_tdx(const JsonCtx *ctx, const json_t *j, const AttestVariantInfo *info,
                            AttestPolicy *p);
int attest_policy_parse_azure_tdx(const JsonCtx *ctx, const json_t *j,
                                  const AttestVariantInfo *info, AttestPolicy *p);

CheckResult *report_add(AttestReport *r, const char *name, int index, CheckStatus status,
                        bool enforced, const char *format, ...) _printf_(6, 7);
/* A verifier's per-check callback (the SNP and TDX policy checks) recording into the report given
 * as userdata: name, pass or fail, expected and actual values, detail. */
void attest_report_record(void *userdata, const char *name, bool ok, const char *expected,
                          const char *actual, const char *detail);
void report_set_hex(CheckResult *c, const void *expected, size_t en, const void *actual, size_t an);
/* Records a failed enforced check in r and (if it is the first) in d; returns error. */
int report_fail(AttestReport *r, Diag *d, int error, const char *name, int index,
                const void *expected, size_t en, const void *actual, size_t an, const char *format,
                ...) _printf_(10, 11);

/* Collateral for a quote whose evidence carries none, from the source set with
 * attest_tdx_collateral_source_set(): 0 with *ret NULL when there is no source (or none is
 * found and the policy does not require collateral), or the collateral and note ("" or STALE,
 * recorded and logged); <0 refused (tdx-collateral-missing) when the policy requires it. */
int attest_tdx_collateral_lookup(const TdxQuote *q, const AttestPolicy *p, time_t at,
                                 TdxCollateral **ret, char *note, size_t note_size, AttestReport *r,
                                 Diag *d);

/* Compares the quoted PCRs with the policy's measurements, recording every PCR in r. */
int attest_check_measurements(const AttestPolicy *p, uint32_t quoted_mask,
                              const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE],
                              AttestReport *r, Diag *d);

/* Replays the event log (per the policy's eventLog mode) against the quoted PCRs. */
int attest_check_event_log(const Evidence *e, const AttestPolicy *p, uint32_t quoted_mask,
                           const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE],
                           AttestReport *r, Diag *d);
/* ek-cert trust: EK certificate chains to the policy's roots at time at, and the EK public in
 * the evidence is the certificate's key; marks the report as needing credential activation. */
int attest_check_ek_certificate(const Evidence *e, const AttestPolicy *p, time_t at,
                                AttestReport *r, Diag *d);

int attest_verify_vtpm(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                       AttestReport *r, Diag *d);
/* The identity member: the TPM quote's signature by its attestation key, its binding, the PCR
 * values it covers. The key is trusted for nothing; it only names the node. */
int attest_verify_tpm_identity(const Evidence *e, const uint8_t *binding, AttestReport *r, Diag *d);
int attest_verify_tdx(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                      AttestReport *r, Diag *d);
int attest_verify_snp(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                      AttestReport *r, Diag *d);

int attest_verify_azure(const Evidence *e, const AttestPolicy *p, const uint8_t *qualifying,
                        size_t qualifying_size, time_t at, AttestReport *r, Diag *d);
/* attest_verify_azure with the aTLS binding (or none) as the quote's qualifying data. */
int attest_verify_azure_sev_snp(const Evidence *e, const AttestPolicy *p, const uint8_t *binding,
                                time_t at, AttestReport *r, Diag *d);
int attest_verify_azure_tdx(const Evidence *e, const AttestPolicy *p, const uint8_t *binding,
                            time_t at, AttestReport *r, Diag *d);

/* The Azure paravisor's part, shared by azure-sev-snp and azure-tdx (azure.c). */
#define AZURE_HCL_REPORT_SNP  2 /* IGVM request data report types */
#define AZURE_HCL_REPORT_TDX  4
#define AZURE_HCL_RUNTIME_MAX (16U * 1024U)

typedef struct AzureHcl {
        const uint8_t *hw_report; /* the hardware report area (1184 bytes), inside the buffer */
        const uint8_t *runtime;   /* the runtime ("variable") data: JSON naming HCLAkPub */
        size_t runtime_size;
} AzureHcl;

/* The HCL report's layout ("azure-hcl-format", -EBADMSG): the "HCLA" header, the hardware
 * report area, the IGVM request data of report_type with SHA-256 runtime data, the runtime data.
 * Points into data. */
int azure_hcl_parse(const uint8_t *data, size_t size, uint32_t report_type, AzureHcl *ret,
                    AttestReport *r, Diag *d);
/* "azure-runtime-data": SHA-256 of the runtime data is expected (32 bytes: what the hardware
 * signed), compared in constant time; -EKEYREJECTED otherwise. what names the signed report. */
int attest_check_azure_runtime_data(const AzureHcl *h, const uint8_t expected[static 32],
                                    const char *what, AttestReport *r, Diag *d);
/* With the runtime data proven: the HCLAkPub it names is the AK ("azure-ak", also against the
 * evidence's own akPublic if any), which signs the TPM quote ("quote-signature"), bound to the
 * qualifying data ("binding"; NULL: recorded as not checked), then the PCRs. */
int attest_check_azure_vtpm(const Evidence *e, const AttestPolicy *p, const AzureHcl *h,
                            const uint8_t *qualifying, size_t qualifying_size, AttestReport *r,
                            Diag *d);

/* The TDX quote of e (tdx-attest.c): authenticated (Intel's root, or the policy's for a simulated
 * variant), its event log replayed when present, then the policy's TDX checks with REPORTDATA
 * compared to report_data (64 bytes; NULL: not compared). The parsed quote goes to ret_q. */
int attest_check_tdx_quote(const Evidence *e, const AttestPolicy *p, time_t at,
                           const uint8_t *report_data, TdxQuote *ret_q, AttestReport *r, Diag *d);

/* The quote covers exactly the SHA-256 PCRs the evidence lists, and their values reproduce the
 * signed digest. */
int attest_check_quote_pcrs(const EvidenceTpm *t, const TpmQuoteInfo *q, uint16_t sig_hash,
                            AttestReport *r, Diag *d);
