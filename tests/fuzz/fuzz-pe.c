/* SPDX-License-Identifier: Apache-2.0 */
/* PE/COFF over hostile executables: Authenticode, the signed digest (PKCS#7 inside the
 * certificate table) and the UKI model (sections, .sdmagic, command line). */
#include <stddef.h>
#include <stdint.h>

#include "cloister/pe.h"
#include "cloister/uki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t digest[PE_DIGEST_MAX];
        const char *md;
        UkiPrediction p;
        size_t n;

        (void) pe_authenticode(data, size, "SHA256", digest, &n, NULL);
        (void) pe_signed_digest(data, size, &md, digest, &n, NULL);
        if (uki_predict(data, size, &p, NULL) >= 0)
                uki_prediction_done(&p);
        return 0;
}
