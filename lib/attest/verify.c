/* SPDX-License-Identifier: Apache-2.0 */
/* attest_verify(): the variant's check, then the verification its row in variants.c names. */
#include <stdio.h>

#include "attest-internal.h"

int attest_verify(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                  AttestReport *report, Diag *d)
{
        AttestReport local = {};
        AttestReport *r = report ?: &local;
        int k;

        if (d)
                diag_clear(d);
        if (e->variant != p->variant) {
                k = report_fail(r, d, -EPERM, "variant", -1, NULL, 0, NULL, 0,
                                "the evidence is %s, the policy expects %s",
                                attest_variant_to_string(e->variant),
                                attest_variant_to_string(p->variant));
                CheckResult *c = &r->checks[r->n_checks - 1];
                (void) snprintf(c->expected, sizeof(c->expected), "%s",
                                attest_variant_to_string(p->variant));
                (void) snprintf(c->actual, sizeof(c->actual), "%s",
                                attest_variant_to_string(e->variant));
                if (d)
                        diag_set_values(d, c->expected, c->actual);
                goto finish;
        }
        report_add(r, "variant", -1, CHECK_PASS, true, "%s", attest_variant_to_string(e->variant));

        if (e->variant < 0 || e->variant >= _ATTEST_VARIANT_MAX)
                k = report_fail(r, d, -EOPNOTSUPP, "variant", -1, NULL, 0, NULL, 0,
                                "verification of variant %d evidence is not implemented",
                                (int) e->variant);
        else
                k = attest_variant_info(e->variant)->verify(e, p, binding, at, r, d);
        if (k >= 0 && r->needs_credential_activation)
                report_add(r, "ak-activation", -1, CHECK_PENDING, true,
                           "the AK must still be proven to live in the EK's TPM (credential "
                           "activation)");
finish:
        if (k >= 0 && r->needs_credential_activation)
                k = 1;
        attest_report_done(&local);
        return k;
}
