/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "attest-internal.h"
#include "cloister/log.h"

/* The first enforced PCR of set that the quote does not show with its value, or -1 if the set
 * matches (warnOnly entries never decide). */
static int set_mismatch(const MeasurementSet *set, uint32_t quoted_mask,
                        const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE])
{
        for (int i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                const PcrExpectation *x = &set->pcrs[i];

                if (!x->present)
                        continue;
                if ((quoted_mask & (1U << i)) == 0)
                        return i;
                if (!x->warn_only && memcmp(x->expected, pcrs[i], EVIDENCE_PCR_SIZE) != 0)
                        return i;
        }
        return -1;
}

static int check_pcrs(const PcrExpectation exp[static EVIDENCE_PCR_COUNT], uint32_t quoted_mask,
                      const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE], AttestReport *r,
                      Diag *d);

/* With measurement sets: the first set the PCRs match in full is checked (and reported) as the
 * policy's own measurements would be; none matching fails, naming for each set its first PCR
 * that differs. */
static int check_sets(const AttestPolicy *p, uint32_t quoted_mask,
                      const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE], AttestReport *r,
                      Diag *d)
{
        char why[DIAG_MESSAGE_MAX] = "";
        int first = -1;

        for (size_t k = 0; k < p->n_sets; k++) {
                int i = set_mismatch(&p->sets[k], quoted_mask, pcrs);
                size_t len = strlen(why);

                if (i < 0) {
                        report_add(r, "measurement-set", -1, CHECK_PASS, true,
                                   "the PCRs match measurement set '%s'", p->sets[k].name);
                        if (r)
                                (void) snprintf(r->matched_set, sizeof(r->matched_set), "%s",
                                                p->sets[k].name);
                        return check_pcrs(p->sets[k].pcrs, quoted_mask, pcrs, r, d);
                }
                if (first < 0)
                        first = i;
                (void) snprintf(why + len, sizeof(why) - len, "%s'%.64s': PCR %d %s", k ? "; " : "",
                                p->sets[k].name, i,
                                quoted_mask & (1U << i) ? "differs" : "not quoted");
        }
        if (first < 0) /* no set at all (the caller checks n_sets): refused, never passed */
                return report_fail(r, d, -EPERM, "measurement-set", -1, NULL, 0, NULL, 0,
                                   "the policy lists no measurement set");
        return report_fail(r, d, -EPERM, "measurement-set", first, p->sets[0].pcrs[first].expected,
                           EVIDENCE_PCR_SIZE, quoted_mask & (1U << first) ? pcrs[first] : NULL,
                           EVIDENCE_PCR_SIZE,
                           "the PCRs match none of the policy's measurement sets (%s)", why);
}

int attest_check_measurements(const AttestPolicy *p, uint32_t quoted_mask,
                              const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE],
                              AttestReport *r, Diag *d)
{
        int ret = check_pcrs(p->pcrs, quoted_mask, pcrs, r, d), k;

        if (r)
                r->matched_set[0] = '\0';
        if (p->n_sets == 0)
                return ret;
        k = check_sets(p, quoted_mask, pcrs, r, d);
        return ret < 0 ? ret : k;
}

static int check_pcrs(const PcrExpectation exp[static EVIDENCE_PCR_COUNT], uint32_t quoted_mask,
                      const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE], AttestReport *r,
                      Diag *d)
{
        int ret = 0;

        for (int i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                const PcrExpectation *x = &exp[i];
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
