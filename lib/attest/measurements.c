/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "attest-internal.h"
#include "cloister/log.h"

int attest_check_measurements(const AttestPolicy *p, uint32_t quoted_mask,
                              const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE],
                              AttestReport *r, Diag *d)
{
        int ret = 0;

        for (int i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                const PcrExpectation *x = &p->pcrs[i];
                CheckResult *c;

                if (!x->present)
                        continue;
                if (!(quoted_mask & (1U << i))) {
                        /* A PCR the policy names but the quote does not cover proves nothing:
                         * always a failure, even for warnOnly entries. */
                        int k = report_fail(r, d, -EPERM, "pcr", i, x->expected, EVIDENCE_PCR_SIZE,
                                            NULL, 0,
                                            "PCR %d is required by the policy but not in "
                                            "the quote",
                                            i);
                        ret = ret < 0 ? ret : k;
                        continue;
                }
                if (memcmp(x->expected, pcrs[i], EVIDENCE_PCR_SIZE) == 0) {
                        c = report_add(r, "pcr", i, CHECK_PASS, !x->warn_only, "PCR %d matches", i);
                        report_set_hex(c, x->expected, EVIDENCE_PCR_SIZE, pcrs[i],
                                       EVIDENCE_PCR_SIZE);
                        continue;
                }
                if (x->warn_only) {
                        c = report_add(r, "pcr", i, CHECK_WARN, false,
                                       "PCR %d differs (warn-only: accepted)", i);
                        report_set_hex(c, x->expected, EVIDENCE_PCR_SIZE, pcrs[i],
                                       EVIDENCE_PCR_SIZE);
                        log_debug("attest: PCR %d differs from the policy (warn-only)", i);
                        continue;
                }
                int k = report_fail(r, d, -EPERM, "pcr", i, x->expected, EVIDENCE_PCR_SIZE, pcrs[i],
                                    EVIDENCE_PCR_SIZE, "PCR %d differs from the policy", i);
                ret = ret < 0 ? ret : k;
        }
        return ret;
}
