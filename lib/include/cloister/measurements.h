/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Measurements files: the PCR values an image is expected to produce, published signed.
 *   {"version": 1, "image": "<name>", "measurements": {"4": {"expected": hex, "warnOnly": b}}}
 * Signatures are detached ECDSA P-256 / SHA-256 over the exact file bytes, DER-encoded.
 */

#include "cloister/attest.h"

#define MEASUREMENTS_FILE_SIZE_MAX (64U * 1024U)
#define MEASUREMENTS_SIGNATURE_MAX 128U

typedef struct MeasurementsFile {
        char *image;
        PcrExpectation pcrs[EVIDENCE_PCR_COUNT];
} MeasurementsFile;

MeasurementsFile *measurements_file_free(MeasurementsFile *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(MeasurementsFile *, measurements_file_free);
int measurements_file_parse(const void *data, size_t size, const char *source,
                            MeasurementsFile **ret, Diag *d);

/* key_pem: a P-256 private key; the signature goes to *ret (DER). */
int measurements_sign(const void *data, size_t size, const void *key_pem, size_t key_size,
                      uint8_t **ret, size_t *ret_size, Diag *d);
/* pub_pem: a P-256 public key. -EKEYREJECTED if the signature does not verify. */
int measurements_verify(const void *data, size_t size, const void *sig, size_t sig_size,
                        const void *pub_pem, size_t pub_size, Diag *d);
