/* SPDX-License-Identifier: Apache-2.0 */
/* TPMT_PUBLIC, TPMS_ATTEST and TPMT_SIGNATURE parsers; the first byte picks which, and a valid
 * public key is used to verify a parsed signature over the rest. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/tpm-quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        TpmPublic pub;
        TpmQuoteInfo q;
        TpmSignature sig;
        uint8_t pcrs[TPM_PCR_MAX][TPM_DIGEST_MAX] = {}, digest[TPM_DIGEST_MAX];
        size_t n;

        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0:
                if (tpm_public_parse(data + 1, size - 1, &pub, NULL) == 0) {
                        (void) tpm_public_check_attestation_key(&pub, NULL);
                        tpm_public_done(&pub);
                }
                break;
        case 1:
                if (tpm_quote_parse(data + 1, size - 1, &q, NULL) == 0)
                        (void) tpm_pcr_digest(&q, pcrs, 0x000B, digest, &n);
                break;
        default:
                if (tpm_signature_parse(data + 1, size - 1, &sig, NULL) == 0)
                        tpm_signature_done(&sig);
                break;
        }
        return 0;
}
