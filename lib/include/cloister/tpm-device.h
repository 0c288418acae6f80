/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The attester's TPM, through tpm2-tss ESAPI (the only module that includes tss2 headers).
 * Outputs are marshaled TPM structures as bytes, which the verifier side (tpm-quote.h) parses
 * with its own bounded reader.
 *
 * TCTI configuration: "device:/dev/tpmrm0" in production, "swtpm:path=/run/x/sock" for a swtpm
 * unix socket (its control socket must be "<path>.ctrl"). NULL means $CLOISTER_TPM_TCTI, else
 * "device:/dev/tpmrm0".
 *
 * Attestation key: an ECC P-256 restricted signing key (ECDSA-SHA256) created as a primary in
 * the endorsement hierarchy from a fixed template. Primary keys are derived from the TPM's
 * endorsement seed, so the same TPM always yields the same AK: nothing is persisted, and a TPM
 * reset or another TPM yields another key.
 */

#include <stdint.h>

#include "cloister/macro.h"
#include "cloister/secret.h"

#define TPM_DEVICE_TCTI_DEFAULT   "device:/dev/tpmrm0"
#define TPM_DEVICE_QUALIFYING_MAX 64
#define TPM_DEVICE_PCRS           24
/* TCG EK Credential Profile 2.0, section 2.2.1.5: EK certificate NV indexes. */
#define TPM_NV_EK_CERT_RSA 0x01c00002U
#define TPM_NV_EK_CERT_ECC 0x01c0000aU

typedef struct TpmDevice TpmDevice;

/* Opens the TPM behind a TCTI string ("device:/dev/tpmrm0", "swtpm:path=SOCK"; NULL:
 * $CLOISTER_TPM_TCTI, else the default). -ENOPKG: no TCTI module of that name is installed;
 * -ENODEV: the module loaded but no TPM answers. */
int tpm_device_open(const char *tcti, TpmDevice **ret);
/* The cause of a tpm_device_open() failure and what to do, in words for the user. */
const char *tpm_device_open_explain(int r);
TpmDevice *tpm_device_close(TpmDevice *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(TpmDevice *, tpm_device_close);

/* SHA-256 bank. */
int tpm_device_pcr_read(TpmDevice *t, uint32_t mask, uint8_t ret[TPM_DEVICE_PCRS][32]);
int tpm_device_pcr_extend(TpmDevice *t, unsigned index, const uint8_t digest[static 32]);

typedef struct TpmDeviceQuote {
        uint8_t *attest; /* TPMS_ATTEST */
        size_t attest_size;
        uint8_t *signature; /* TPMT_SIGNATURE */
        size_t signature_size;
        uint8_t *ak_public; /* TPMT_PUBLIC */
        size_t ak_public_size;
        uint32_t pcr_mask;
        uint8_t pcrs[TPM_DEVICE_PCRS][32]; /* the values the quote covers */
} TpmDeviceQuote;

void tpm_device_quote_done(TpmDeviceQuote *q);

/* Quotes the SHA-256 PCRs in mask with the AK, qualifying data up to 64 bytes. The PCR values
 * returned are the ones the quote's digest covers (read again and retried if a PCR changed
 * between reading and quoting). */
int tpm_device_quote(TpmDevice *t, uint32_t mask, const uint8_t *qualifying, size_t qsize,
                     TpmDeviceQuote *ret);

/* EK certificate (DER) from its NV index; -ENOENT if the TPM has none. */
int tpm_device_ek_certificate(TpmDevice *t, uint8_t **ret, size_t *ret_size);
/* The RSA-2048 EK (TCG default "low range" template) as marshaled TPMT_PUBLIC. */
int tpm_device_ek_public(TpmDevice *t, uint8_t **ret, size_t *ret_size);
/* TPM2_ActivateCredential with the AK and the EK (Part 3, 12.5): recovers the credential a
 * verifier sealed with MakeCredential. Inputs: marshaled TPM2B_ID_OBJECT and
 * TPM2B_ENCRYPTED_SECRET. */
int tpm_device_activate_credential(TpmDevice *t, const uint8_t *id_object, size_t id_size,
                                   const uint8_t *encrypted_secret, size_t es_size, Secret **ret);
