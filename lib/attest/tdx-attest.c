/* SPDX-License-Identifier: Apache-2.0 */
/* The tdx variant: a TDX quote (with Intel's collateral when the evidence carries it) verified by
 * lib/tdx, then the policy's TDX checks with REPORTDATA = binding ‖ 32 zero bytes. */
#include <stdio.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/log.h"
#include "cloister/tdx-sim.h"
#include "cloister/tdx.h"

int attest_sim_tdx_issue(TdxSimulator *sim, const uint8_t binding[static ATTEST_BINDING_SIZE],
                         Evidence **ret, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_SIM_TDX);
        uint8_t report_data[64] = {};
        TdxCollateral c;
        int r;

        if (!e)
                return -ENOMEM;
        memcpy(report_data, binding, ATTEST_BINDING_SIZE);
        r = tdx_sim_quote(sim, report_data, &e->tdx.quote.data, &e->tdx.quote.size);
        if (r >= 0)
                r = tdx_sim_collateral(sim, &c);
        if (r >= 0 &&
            ((r = blob_set(&e->tdx.tcb_info, c.tcb_info, c.tcb_info_size)) < 0 ||
             (r = blob_set(&e->tdx.tcb_info_chain, c.tcb_info_chain, c.tcb_info_chain_size)) < 0 ||
             (r = blob_set(&e->tdx.qe_identity, c.qe_identity, c.qe_identity_size)) < 0 ||
             (r = blob_set(&e->tdx.qe_identity_chain, c.qe_identity_chain,
                           c.qe_identity_chain_size)) < 0 ||
             (r = blob_set(&e->tdx.pck_crl, c.pck_crl, c.pck_crl_size)) < 0 ||
             (r = blob_set(&e->tdx.root_crl, c.root_crl, c.root_crl_size)) < 0))
                return r;
        if (r < 0)
                return diag_fail(d, r, "tdx-issue", -1, "the TDX simulator failed");
        e->tdx.has_collateral = true;
        e->has_tdx = true;
        *ret = TAKE_PTR(e);
        return 0;
}

int attest_tdx_issue(const uint8_t binding[static ATTEST_BINDING_SIZE], Evidence **ret, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_TDX);
        uint8_t report_data[64] = {};
        int r;

        if (!e)
                return -ENOMEM;
        memcpy(report_data, binding, ATTEST_BINDING_SIZE);
        r = tdx_guest_get_quote(report_data, &e->tdx.quote.data, &e->tdx.quote.size, d);
        if (r < 0)
                return r;
        e->has_tdx = true;
        *ret = TAKE_PTR(e);
        return 0;
}

int attest_check_tdx_quote(const Evidence *e, const AttestPolicy *p, time_t at,
                           const uint8_t *report_data, TdxQuote *ret_q, AttestReport *r, Diag *d)
{
        const EvidenceTdx *t = &e->tdx;
        TdxVerifyOptions o = { .at = at };
        TdxCollateral col = {
                .tcb_info = t->tcb_info.data,
                .tcb_info_size = t->tcb_info.size,
                .tcb_info_chain = t->tcb_info_chain.data,
                .tcb_info_chain_size = t->tcb_info_chain.size,
                .qe_identity = t->qe_identity.data,
                .qe_identity_size = t->qe_identity.size,
                .qe_identity_chain = t->qe_identity_chain.data,
                .qe_identity_chain_size = t->qe_identity_chain.size,
                .pck_crl = t->pck_crl.data,
                .pck_crl_size = t->pck_crl.size,
                .root_crl = t->root_crl.data,
                .root_crl_size = t->root_crl.size,
        };
        uint8_t root_fp[32];
        _cleanup_(tdx_collateral_freep) TdxCollateral *cached = NULL;
        char stale[1024];
        TdxVerification v;
        TdxQuote *q = ret_q;
        Diag sub;
        int k;

        diag_clear(&sub);
        /* A simulated variant (sim-tdx, sim-azure-tdx) trusts only the simulator root its policy
         * names, never Intel's; the others only Intel's (the policy parser refuses a
         * trustedRoot there). */
        if (attest_variant_info(e->variant)->simulated) {
                if (!p->tdx.trusted_root_pem[0] ||
                    tdx_pem_sha256(p->tdx.trusted_root_pem, root_fp) < 0)
                        return report_fail(r, d, -EINVAL, "tdx-root", -1, NULL, 0, NULL, 0,
                                           "the %s policy names no valid trustedRoot",
                                           attest_variant_to_string(e->variant));
                o.root_pem = p->tdx.trusted_root_pem;
                o.root_sha256 = root_fp;
                log_debug("attest: verifying SIMULATED TDX evidence (not hardware)");
        }
        k = tdx_quote_parse(t->quote.data, t->quote.size, q, &sub);
        if (k < 0)
                return report_fail(r, d, k, sub.check, -1, NULL, 0, NULL, 0, "%s", sub.message);
        /* Evidence without collateral (a real TD's): the process's collateral cache, if any. */
        if (!t->has_collateral &&
            (k = attest_tdx_collateral_lookup(q, p, at, &cached, stale, sizeof(stale), r, d)) < 0)
                return k;
        /* Every check is recorded by the callback, the failing one too. */
        k = tdx_verify_quote(q, t->quote.data, t->quote.size, t->has_collateral ? &col : cached, &o,
                             &v, attest_report_record, r, &sub);
        if (k == -ESTALE && cached && stale[0]) {
                char msg[sizeof(sub.message) + sizeof(stale) + 64];

                (void) snprintf(msg, sizeof(msg), "%s; the collateral cache is STALE: %s",
                                sub.message, stale);
                memcpy(sub.message, msg, sizeof(sub.message) - 1);
                sub.message[sizeof(sub.message) - 1] = '\0';
        }
        if (k == -EINVAL || k == -ENOMEM)
                return report_fail(r, d, k, "tdx-verify", -1, NULL, 0, NULL, 0, "%s",
                                   k == -ENOMEM ? "out of memory" : sub.message);
        if (k < 0) {
                if (d)
                        *d = sub;
                return k;
        }
        /* The event log, when the evidence has one: it must replay exactly to the quote's
         * (authenticated) RTMRs, so what it says about the boot is what was measured. */
        if (t->event_log.data) {
                TdxRtmrs rt;
                k = tdx_ccel_check(q, t->ccel_table.data, t->ccel_table.size, t->event_log.data,
                                   t->event_log.size, &rt, &sub);
                if (k < 0) {
                        CheckResult *c = report_add(r, sub.check, sub.index, CHECK_FAIL, true, "%s",
                                                    sub.message);
                        if (c) {
                                (void) snprintf(c->expected, sizeof(c->expected), "%s",
                                                sub.expected);
                                (void) snprintf(c->actual, sizeof(c->actual), "%s", sub.actual);
                        }
                        if (d)
                                *d = sub;
                        return k;
                }
                report_add(r, "tdx-rtmr-replay", -1, CHECK_PASS, true,
                           "the event log's %zu events replay to RTMR0-3", rt.n_events);
        }
        return tdx_check_policy(q, &v, &p->tdx, report_data, attest_report_record, r, d);
}

int attest_verify_tdx(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                      AttestReport *r, Diag *d)
{
        uint8_t report_data[64] = {};
        TdxQuote q;
        int k;

        if (binding)
                memcpy(report_data, binding, ATTEST_BINDING_SIZE);
        else
                report_add(r, "tdx-report-data", -1, CHECK_SKIPPED, true,
                           "not checked: no expected binding given (freshness unknown)");
        k = attest_check_tdx_quote(e, p, at, binding ? report_data : NULL, &q, r, d);
        /* The node's TPM quote, when it sends one: what names it as a member (docs/join.md). */
        if (k >= 0 && e->has_tpm)
                k = attest_verify_tpm_identity(e, binding, r, d);
        /* PCR 15 when the caller expects a cluster there (a join service, verify --cluster; a TDX
         * policy file names no PCR): the node's TPM records it, so evidence without the identity
         * quote fails it. */
        if (k >= 0)
                k = attest_check_measurements(p, e->has_tpm ? e->tpm.pcr_mask : 0, e->tpm.pcrs, r,
                                              d);
        return k;
}
