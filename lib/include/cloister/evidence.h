/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The evidence document: one versioned format for every attestation variant
 * (docs/evidence-format.md). Compact JSON, sorted keys, binary members in standard base64, PCR
 * values in hex. The parser is strict: unknown keys, a member that does not belong to the variant,
 * sizes over the limits below, or a malformed encoding fail with -EBADMSG/-EMSGSIZE and a Diag
 * naming the key.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/macro.h"

#define EVIDENCE_VERSION        1
#define EVIDENCE_SIZE_MAX       (512U * 1024U)
#define EVIDENCE_TPM_STRUCT_MAX 2048U /* TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC */
#define EVIDENCE_EVENT_LOG_MAX  (256U * 1024U)
#define EVIDENCE_CERT_MAX       (16U * 1024U)
#define EVIDENCE_SNP_REPORT_MAX 4096U
#define EVIDENCE_SNP_CERTS_MAX  (64U * 1024U)
#define EVIDENCE_TDX_QUOTE_MAX  (64U * 1024U)
#define EVIDENCE_TDX_FILE_MAX   (64U * 1024U) /* each collateral file */
#define EVIDENCE_PCR_COUNT      24
#define EVIDENCE_PCR_SIZE       32 /* SHA-256 bank */

typedef enum AttestVariant {
        ATTEST_VARIANT_QEMU_VTPM,
        ATTEST_VARIANT_SEV_SNP,
        ATTEST_VARIANT_AZURE_SEV_SNP,
        ATTEST_VARIANT_SIM_SNP,
        ATTEST_VARIANT_TDX,
        ATTEST_VARIANT_SIM_TDX,
        ATTEST_VARIANT_AZURE_TDX,
        ATTEST_VARIANT_SIM_AZURE_TDX,
        _ATTEST_VARIANT_MAX,
        _ATTEST_VARIANT_INVALID = -EINVAL,
} AttestVariant;

const char *attest_variant_to_string(AttestVariant v);
AttestVariant attest_variant_from_string(const char *s);
/* Whether a node of variant v is identified by its TPM's attestation key beside its hardware
 * evidence (tdx, sim-tdx: docs/join.md), its TPM quote not being the evidence itself. */
bool attest_variant_tpm_identity(AttestVariant v);
/* Whether the variant's evidence is a TPM quote of the boot's PCRs (what a node compares with its
 * own PCRs to tell a join service runs its image, and where PCR 15 names its cluster). */
bool attest_variant_quotes_pcrs(AttestVariant v);

typedef struct Blob {
        uint8_t *data;
        size_t size;
} Blob;

typedef struct EvidenceTpm {
        Blob ak_public;      /* TPMT_PUBLIC of the attestation key */
        Blob quote;          /* TPMS_ATTEST */
        Blob signature;      /* TPMT_SIGNATURE over quote */
        Blob event_log;      /* TCG boot event log (optional) */
        Blob ek_certificate; /* DER (optional) */
        Blob ek_public;    /* TPMT_PUBLIC of the EK (optional; needed for credential activation) */
        uint32_t pcr_mask; /* which PCRs the attester reports (SHA-256 bank) */
        uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE];
} EvidenceTpm;

typedef struct EvidenceSnp {
        Blob report;       /* raw attestation report */
        Blob certificates; /* extended-report certificate table (optional) */
        Blob vcek;         /* VCEK/VLEK DER (optional) */
        Blob chain;        /* ASK/ASVK + ARK PEM bundle (optional) */
        Blob hcl_report;   /* azure-sev-snp: the HCL report wrapping report + runtime data */
} EvidenceSnp;

/* tdx: the quote and, optionally, Intel's collateral for it (self-authenticating: signed by
 * Intel and checked against the pinned root at the verification time). */
typedef struct EvidenceTdx {
        Blob quote;
        bool has_collateral;
        Blob tcb_info, tcb_info_chain, qe_identity, qe_identity_chain, pck_crl, root_crl;
        Blob event_log;  /* the CCEL log area (optional), replayed to the quote's RTMRs */
        Blob ccel_table; /* the ACPI CCEL table (optional, only with event_log) */
        Blob hcl_report; /* azure-tdx: the HCL report whose runtime data the quote binds */
} EvidenceTdx;

typedef struct Evidence {
        unsigned version;
        AttestVariant variant;
        bool has_tpm;
        EvidenceTpm tpm;
        bool has_snp;
        EvidenceSnp snp;
        bool has_tdx;
        EvidenceTdx tdx;
} Evidence;

Evidence *evidence_new(AttestVariant variant);
Evidence *evidence_free(Evidence *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Evidence *, evidence_free);

/* Takes a copy of data. */
int blob_set(Blob *b, const void *data, size_t size);
void blob_clear(Blob *b);

int evidence_parse(const void *data, size_t size, Evidence **ret, Diag *d);
/* A PCR index written as a JSON key: "0".."23", decimal, no sign, no leading zero; else -1. */
int evidence_pcr_index_from_key(const char *key);
/* Compact JSON, NUL-terminated; *ret_size excludes the NUL. -EMSGSIZE over EVIDENCE_SIZE_MAX. */
int evidence_serialize(const Evidence *e, char **ret, size_t *ret_size);
