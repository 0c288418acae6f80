/* SPDX-License-Identifier: Apache-2.0 */
/* SEV-SNP report parsing, TCB decoding for every product, and policy checks on whatever
 * parsed. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/sev-snp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t report_data[64];
        SnpReport r;
        SnpPolicy p;

        if (snp_report_parse(data, size, &r, NULL) < 0)
                return 0;
        snp_policy_defaults(&p);
        for (int product = 0; product < _SNP_PRODUCT_MAX; product++) {
                (void) snp_tcb_decode(r.reported_tcb_raw, product);
                (void) snp_check_policy(&r, product, &p, report_data, NULL, NULL, NULL);
        }
        return 0;
}
