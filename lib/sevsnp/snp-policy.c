/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cloister/hex.h"
#include "cloister/secret.h"
#include "snp-internal.h"

void snp_policy_defaults(SnpPolicy *p)
{
        /* Refuse by default: no debug, no migration agent, VMPL 0, any TCB/measurement only
         * until the caller sets them. */
        *p = (SnpPolicy){ .allow_smt = true, .vmpl = 0 };
}

typedef struct Checker {
        SnpCheckFunc cb;
        void *userdata;
        Diag *d;
        int result;
} Checker;

static void check(Checker *c, const char *name, bool ok, int error, const char *expected,
                  const char *actual, const char *detail)
{
        if (c->cb)
                c->cb(c->userdata, name, ok, expected, actual, detail);
        if (ok || c->result < 0)
                return;
        c->result = error;
        (void) diag_fail(c->d, error, name, -1, "%s", detail);
        diag_set_values(c->d, expected, actual);
}

static void check_min(Checker *c, const char *name, const char *what, unsigned actual,
                      unsigned minimum)
{
        char e[16], a[16], detail[128];

        (void) snprintf(e, sizeof(e), ">= %u", minimum);
        (void) snprintf(a, sizeof(a), "%u", actual);
        (void) snprintf(detail, sizeof(detail), "%s %u %s the minimum %u", what, actual,
                        actual >= minimum ? "meets" : "is below", minimum);
        check(c, name, actual >= minimum, -EPERM, e, a, detail);
}

static bool in_list(const uint8_t (*list)[48], size_t n, const uint8_t v[48])
{
        for (size_t i = 0; i < n; i++)
                if (memcmp(list[i], v, 48) == 0)
                        return true;
        return false;
}

int snp_check_policy(const SnpReport *r, SnpProduct product, const SnpPolicy *p,
                     const uint8_t *report_data, SnpCheckFunc cb, void *userdata, Diag *d)
{
        Checker c = { cb, userdata, d, 0 };
        SnpTcb tcb = snp_tcb_decode(r->reported_tcb_raw, product);
        char e[128], a[128];
        bool debug = r->policy & SNP_POLICY_DEBUG, ma = r->policy & SNP_POLICY_MIGRATE_MA,
             smt = r->policy & SNP_POLICY_SMT;

        check(&c, "snp-debug", !debug || p->allow_debug, -EPERM, p->allow_debug ? "any" : "0",
              debug ? "1" : "0",
              debug ? "the guest policy allows debugging (the host can read guest memory)"
                    : "debugging is not allowed by the guest policy");
        check(&c, "snp-migration-agent", !ma || p->allow_migration_agent, -EPERM,
              p->allow_migration_agent ? "any" : "0", ma ? "1" : "0",
              ma ? "the guest policy allows a migration agent" : "no migration agent");
        check(&c, "snp-smt", !smt || p->allow_smt, -EPERM, p->allow_smt ? "any" : "0",
              smt ? "1" : "0", smt ? "SMT allowed by the guest policy" : "SMT not allowed");
        if (p->vmpl >= 0) {
                (void) snprintf(e, sizeof(e), "%d", p->vmpl);
                (void) snprintf(a, sizeof(a), "%u", r->vmpl);
                check(&c, "snp-vmpl", (int) r->vmpl == p->vmpl, -EPERM, e, a,
                      "the report's VMPL (which privilege level asked for it)");
        }
        check_min(&c, "snp-tcb-bootloader", "reported TCB bootloader SPL", tcb.bootloader,
                  p->min_tcb.bootloader);
        check_min(&c, "snp-tcb-tee", "reported TCB TEE SPL", tcb.tee, p->min_tcb.tee);
        check_min(&c, "snp-tcb-snp", "reported TCB SNP firmware SPL", tcb.snp, p->min_tcb.snp);
        check_min(&c, "snp-tcb-microcode", "reported TCB microcode SPL", tcb.microcode,
                  p->min_tcb.microcode);
        if (product == SNP_PRODUCT_TURIN)
                check_min(&c, "snp-tcb-fmc", "reported TCB FMC SPL", tcb.fmc, p->min_tcb.fmc);
        check_min(&c, "snp-guest-svn", "guest SVN", r->guest_svn, p->min_guest_svn);

        hex_encode_buf(r->measurement, 48, a, sizeof(a));
        if (p->n_measurements > 0) {
                hex_encode_buf(p->measurements[0], 48, e, sizeof(e));
                check(&c, "snp-measurement",
                      in_list((const uint8_t(*)[48]) p->measurements, p->n_measurements,
                              r->measurement),
                      -EPERM, e, a, "the launch measurement must be one the policy accepts");
        } else
                check(&c, "snp-measurement", true, 0, "any", a, "no launch measurement required");
        if (p->check_host_data) {
                hex_encode_buf(p->host_data, 32, e, sizeof(e));
                hex_encode_buf(r->host_data, 32, a, sizeof(a));
                check(&c, "snp-host-data", memcmp(p->host_data, r->host_data, 32) == 0, -EPERM, e,
                      a, "host data set at launch");
        }
        if (p->n_id_key_digests > 0) {
                hex_encode_buf(p->id_key_digests[0], 48, e, sizeof(e));
                hex_encode_buf(r->id_key_digest, 48, a, sizeof(a));
                check(&c, "snp-id-key",
                      in_list((const uint8_t(*)[48]) p->id_key_digests, p->n_id_key_digests,
                              r->id_key_digest),
                      -EPERM, e, a, "the ID key that signed the launch must be accepted");
        }
        if (report_data) {
                hex_encode_buf(report_data, 64, e, sizeof(e));
                hex_encode_buf(r->report_data, 64, a, sizeof(a));
                check(&c, "snp-report-data", memeq_consttime(report_data, r->report_data, 64),
                      -ESTALE, e, a,
                      "REPORT_DATA must carry this verifier's binding (replayed or relayed "
                      "report?)");
        }
        return c.result;
}
