/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Verifier-side TPM 2.0 structures (TPM 2.0 Library, Part 2), parsed from attacker-controlled
 * bytes through the bounded Reader with OpenSSL for the cryptography. No tpm2-tss here: the
 * verifier never hands untrusted bytes to a TPM stack.
 */

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/macro.h"

/* Part 2, table 9 (TPM_ALG_ID) */
#define TPM_ALG_RSA            0x0001
#define TPM_ALG_SHA1           0x0004
#define TPM_ALG_AES            0x0006
#define TPM_ALG_SHA256         0x000B
#define TPM_ALG_SHA384         0x000C
#define TPM_ALG_SHA512         0x000D
#define TPM_ALG_NULL           0x0010
#define TPM_ALG_RSASSA         0x0014
#define TPM_ALG_RSAES          0x0015
#define TPM_ALG_RSAPSS         0x0016
#define TPM_ALG_OAEP           0x0017
#define TPM_ALG_ECDSA          0x0018
#define TPM_ALG_ECDH           0x0019
#define TPM_ALG_ECDAA          0x001A
#define TPM_ALG_KDF1_SP800_56A 0x0020
#define TPM_ALG_ECC            0x0023
#define TPM_ALG_CFB            0x0043
/* table 10 (TPM_ECC_CURVE) */
#define TPM_ECC_NIST_P256 0x0003
#define TPM_ECC_NIST_P384 0x0004
/* table 7 / 19 */
#define TPM_GENERATED_VALUE 0xff544347U
#define TPM_ST_ATTEST_QUOTE 0x8018
/* table 31 (TPMA_OBJECT) */
#define TPMA_OBJECT_FIXEDTPM            (1U << 1)
#define TPMA_OBJECT_FIXEDPARENT         (1U << 4)
#define TPMA_OBJECT_SENSITIVEDATAORIGIN (1U << 5)
#define TPMA_OBJECT_USERWITHAUTH        (1U << 6)
#define TPMA_OBJECT_RESTRICTED          (1U << 16)
#define TPMA_OBJECT_DECRYPT             (1U << 17)
#define TPMA_OBJECT_SIGN                (1U << 18)

#define TPM_NAME_MAX   (2 + 64)
#define TPM_DIGEST_MAX 64
#define TPM_PCR_MAX    24

typedef struct TpmPublic {
        uint16_t type;     /* TPM_ALG_RSA or TPM_ALG_ECC */
        uint16_t name_alg; /* hash of the Name */
        uint32_t attributes;
        uint16_t symmetric; /* TPM_ALG_NULL or AES (storage/EK keys) */
        uint16_t sym_bits, sym_mode;
        uint16_t scheme; /* signing/decryption scheme, TPM_ALG_NULL if none */
        uint16_t scheme_hash;
        uint16_t curve;    /* ECC */
        uint16_t key_bits; /* RSA */
        EVP_PKEY *key;
        uint8_t name[TPM_NAME_MAX]; /* nameAlg || H(TPMT_PUBLIC) */
        size_t name_size;
} TpmPublic;

typedef struct TpmPcrSelection {
        uint16_t hash;
        uint32_t mask; /* PCRs 0..23 */
} TpmPcrSelection;

#define TPM_PCR_SELECTIONS_MAX 4

typedef struct TpmQuoteInfo {
        uint8_t signer[TPM_NAME_MAX]; /* qualified name of the signing key (Part 1, 16.6) */
        size_t signer_size;
        uint8_t extra_data[TPM_DIGEST_MAX];
        size_t extra_data_size;
        uint64_t clock;
        uint32_t reset_count, restart_count;
        bool safe;
        uint64_t firmware_version;
        TpmPcrSelection selections[TPM_PCR_SELECTIONS_MAX];
        size_t n_selections;
        uint8_t pcr_digest[TPM_DIGEST_MAX];
        size_t pcr_digest_size;
} TpmQuoteInfo;

typedef struct TpmSignature {
        uint16_t alg; /* RSASSA, RSAPSS, ECDSA */
        uint16_t hash;
        uint8_t *sig; /* RSA: the signature; ECDSA: DER ECDSA-Sig-Value */
        size_t sig_size;
} TpmSignature;

/* -EBADMSG (with d naming the field) on malformed or trailing bytes, -EOPNOTSUPP for algorithms
 * we do not accept. */
int tpm_public_parse(const uint8_t *data, size_t size, TpmPublic *ret, Diag *d);
void tpm_public_done(TpmPublic *p);
int tpm_quote_parse(const uint8_t *data, size_t size, TpmQuoteInfo *ret, Diag *d);
int tpm_signature_parse(const uint8_t *data, size_t size, TpmSignature *ret, Diag *d);
void tpm_signature_done(TpmSignature *s);

/* -EPERM unless the key is a restricted signing key generated inside a TPM (fixedTPM,
 * fixedParent, sensitiveDataOrigin, restricted, sign, not decrypt): only such a key's quotes
 * cannot have been forged outside the TPM (Part 1, "Attestation"). */
int tpm_public_check_attestation_key(const TpmPublic *ak, Diag *d);

/* Verifies sig over the raw TPMS_ATTEST bytes with the AK; -EKEYREJECTED on mismatch. */
int tpm_quote_verify_signature(const TpmPublic *ak, const uint8_t *attest, size_t attest_size,
                               const TpmSignature *sig, Diag *d);

/* The quote's PCR digest recomputed: digest_alg (the signature's hash) over the selected PCR
 * values of the selection's bank, in ascending index order. Only one-bank quotes. */
int tpm_pcr_digest(const TpmQuoteInfo *q, const uint8_t pcrs[TPM_PCR_MAX][TPM_DIGEST_MAX],
                   uint16_t digest_alg, uint8_t ret[static TPM_DIGEST_MAX], size_t *ret_size);

/* OpenSSL digest name and size of a TPM hash algorithm; NULL/0 if unsupported. */
const char *tpm_hash_name(uint16_t alg);
size_t tpm_hash_size(uint16_t alg);
