/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/secret.h"
#include "snp-internal.h"

void snp_policy_defaults(SnpPolicy *p)
{
        /* Refuse by default: no debug, no migration agent, VMPL 0, any TCB/measurement only
         * until the caller sets them. */
        *p = (SnpPolicy){ .allow_smt = true, .vmpl = 0 };
}

void snp_host_data_for_cluster(const uint8_t cluster_id[static 32], uint8_t ret[static 32])
{
        IoVec parts[] = { { SNP_HOST_DATA_CONTEXT, strlen(SNP_HOST_DATA_CONTEXT) },
                          { cluster_id, 32 } };

        /* SHA-256 into a buffer of its size cannot fail short of memory corruption. */
        if (crypto_digest("SHA256", parts, ELEMENTSOF(parts), ret, 32) < 0)
                abort();
}

void snp_policy_bind_cluster(SnpPolicy *p, const uint8_t cluster_id[static 32])
{
        if (!p->host_data_from_cluster)
                return;
        snp_host_data_for_cluster(cluster_id, p->host_data);
        p->check_host_data = true;
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

static bool in_chip_list(const SnpPolicy *p, const uint8_t id[64])
{
        for (size_t i = 0; i < p->n_chip_ids; i++)
                if (memcmp(p->chip_ids[i], id, 64) == 0)
                        return true;
        return false;
}

/* Every component of a TCB (the launch or the committed one) against its minimum. */
static void check_tcb(Checker *c, const char *prefix, const char *what, SnpTcb tcb,
                      const SnpTcb *min, SnpProduct product)
{
        static const char *const parts[] = { "bootloader", "tee", "snp", "microcode", "fmc" };
        const char *const desc[] = { "bootloader SPL", "TEE SPL", "SNP firmware SPL",
                                     "microcode SPL", "FMC SPL" };
        const uint8_t actual[] = { tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode, tcb.fmc };
        const uint8_t minimum[] = { min->bootloader, min->tee, min->snp, min->microcode, min->fmc };
        char name[48], label[64];

        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                if (i == 4 && product != SNP_PRODUCT_TURIN)
                        break;
                (void) snprintf(name, sizeof(name), "%s-%s", prefix, parts[i]);
                (void) snprintf(label, sizeof(label), "%s %s", what, desc[i]);
                check_min(c, name, label, actual[i], minimum[i]);
        }
}

void snp_launch_entry_describe(const SnpLaunchEntry *e, char *buf, size_t size)
{
        (void) snprintf(buf, size, "%u vCPU%s%s%s, %s, guest features 0x%llx", e->vcpus,
                        e->vcpus == 1 ? "" : "s", e->vcpu_type[0] ? " " : "", e->vcpu_type, e->vmm,
                        (unsigned long long) e->guest_features);
}

/* MEASUREMENT against snp.measurements and snp.launchMeasurements: which entry matched, or on
 * a mismatch every allowed value next to the actual one. */
static void check_measurement(Checker *c, const SnpReport *r, const SnpPolicy *p)
{
        char e[128], a[128], what[96], detail[DIAG_MESSAGE_MAX];
        size_t n = p->n_measurements + p->n_launch;

        hex_encode_buf(r->measurement, 48, a, sizeof(a));
        if (n == 0) {
                check(c, "snp-measurement", true, 0, "any", a, "no launch measurement required");
                return;
        }
        for (size_t i = 0; i < p->n_measurements; i++)
                if (memcmp(p->measurements[i], r->measurement, 48) == 0) {
                        (void) snprintf(detail, sizeof(detail),
                                        "the launch measurement is snp.measurements[%zu]", i);
                        check(c, "snp-measurement", true, 0, a, a, detail);
                        return;
                }
        for (size_t i = 0; i < p->n_launch; i++)
                if (memcmp(p->launch[i].measurement, r->measurement, 48) == 0) {
                        snp_launch_entry_describe(&p->launch[i], what, sizeof(what));
                        (void) snprintf(detail, sizeof(detail),
                                        "the launch measurement is snp.launchMeasurements[%zu]: "
                                        "%s",
                                        i, what);
                        check(c, "snp-measurement", true, 0, a, a, detail);
                        return;
                }
        if (n == 1) {
                if (p->n_measurements)
                        (void) snprintf(what, sizeof(what), "snp.measurements[0]");
                else {
                        char params[64];
                        snp_launch_entry_describe(&p->launch[0], params, sizeof(params));
                        (void) snprintf(what, sizeof(what), "snp.launchMeasurements[0], %s",
                                        params);
                }
                hex_encode_buf(p->n_measurements ? p->measurements[0] : p->launch[0].measurement,
                               48, e, sizeof(e));
                (void) snprintf(detail, sizeof(detail),
                                "the launch measurement is not the one the policy allows (%s): "
                                "another firmware, vCPU count or type, VMM or guest features, or "
                                "kernel/initrd/command line",
                                what);
                check(c, "snp-measurement", false, -EPERM, e, a, detail);
                return;
        }
        (void) snprintf(detail, sizeof(detail),
                        "the launch measurement is none of the %zu the policy allows (each "
                        "listed below as snp-measurement-listed): another firmware, vCPU count "
                        "or type, VMM or guest features, or kernel/initrd/command line",
                        n);
        check(c, "snp-measurement", false, -EPERM, "one of the listed values", a, detail);
        if (!c->cb)
                return;
        for (size_t i = 0; i < p->n_measurements; i++) {
                hex_encode_buf(p->measurements[i], 48, e, sizeof(e));
                (void) snprintf(detail, sizeof(detail), "snp.measurements[%zu]", i);
                c->cb(c->userdata, "snp-measurement-listed", false, e, a, detail);
        }
        for (size_t i = 0; i < p->n_launch; i++) {
                hex_encode_buf(p->launch[i].measurement, 48, e, sizeof(e));
                snp_launch_entry_describe(&p->launch[i], what, sizeof(what));
                (void) snprintf(detail, sizeof(detail), "snp.launchMeasurements[%zu]: %s", i, what);
                c->cb(c->userdata, "snp-measurement-listed", false, e, a, detail);
        }
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

        if (p->check_launch_tcb)
                check_tcb(&c, "snp-launch-tcb", "launch TCB",
                          snp_tcb_decode(r->launch_tcb_raw, product), &p->min_launch_tcb, product);
        if (p->check_committed_tcb)
                check_tcb(&c, "snp-committed-tcb", "committed TCB",
                          snp_tcb_decode(r->committed_tcb_raw, product), &p->min_committed_tcb,
                          product);
        check_measurement(&c, r, p);
        if (p->check_host_data) {
                hex_encode_buf(p->host_data, 32, e, sizeof(e));
                hex_encode_buf(r->host_data, 32, a, sizeof(a));
                check(&c, "snp-host-data", memcmp(p->host_data, r->host_data, 32) == 0, -EPERM, e,
                      a,
                      p->host_data_from_cluster
                              ? "host data set at launch: the value for this cluster's ID"
                              : "host data set at launch");
        } else if (p->host_data_from_cluster) {
                hex_encode_buf(r->host_data, 32, a, sizeof(a));
                check(&c, "snp-host-data", false, -EPERM, "the value for the cluster's ID", a,
                      "the policy binds HOST_DATA to the cluster, but this verifier was given no "
                      "cluster ID to derive it from");
        }
        if (p->n_id_key_digests > 0) {
                hex_encode_buf(p->id_key_digests[0], 48, e, sizeof(e));
                hex_encode_buf(r->id_key_digest, 48, a, sizeof(a));
                check(&c, "snp-id-key",
                      in_list((const uint8_t(*)[48]) p->id_key_digests, p->n_id_key_digests,
                              r->id_key_digest),
                      -EPERM, e, a, "the ID key that signed the launch must be accepted");
        }
        if (p->n_chip_ids > 0) {
                hex_encode_buf(r->chip_id, 64, a, sizeof(a));
                hex_encode_buf(p->chip_ids[0], 64, e, sizeof(e));
                check(&c, "snp-chip-id", in_chip_list(p, r->chip_id), -EPERM,
                      p->n_chip_ids > 1 ? "one of snp.chipIds" : e, a,
                      "the processor (CHIP_ID) must be one of the hosts the policy allows");
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
