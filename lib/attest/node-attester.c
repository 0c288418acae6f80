/* SPDX-License-Identifier: Apache-2.0 */
/* A node's evidence by its configured variant: see cloister/node-attester.h. */
#include <stdlib.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/fileio.h"
#include "cloister/log.h"
#include "cloister/node-attester.h"
#include "cloister/tdx-sim.h"

#define SIM_TDX_ROOT_MAX (16U * 1024U)

static int issue_vtpm(NodeAttester *a, const uint8_t *binding, Evidence **ret, Diag *d)
{
        return attest_vtpm_issue(a->tpm.tpm, &a->tpm.config, binding, ret, d);
}

/* On a TDX guest (configfs-tsm): untestable here, see docs/tdx.md. */
static int issue_tdx(NodeAttester *a, const uint8_t *binding, Evidence **ret, Diag *d)
{
        return attest_tdx_issue(binding, ret, d);
}

static int setup_sim_tdx(NodeAttester *a, const NodeAttesterConfig *c, Diag *d)
{
        _cleanup_(freep) uint8_t *pem = NULL;
        TdxSimConfig sc;
        size_t size;
        int r;

        if (!c->sim_tdx_root)
                return diag_fail(d, -EINVAL, "attester", -1,
                                 "sim-tdx is a simulator: it is used only when configured "
                                 "explicitly with the simulated platform's root (--sim-tdx-root "
                                 "FILE, from 'cloister attestation sim-tdx-root')");
        r = read_full_file(c->sim_tdx_root, SIM_TDX_ROOT_MAX, &pem, &size);
        if (r < 0)
                return diag_fail(d, r, "attester", -1, "cannot read the sim-tdx root %s: %s",
                                 c->sim_tdx_root, strerror(-r));
        tdx_sim_config_defaults(&sc);
        sc.root_pem = (const char *) pem;
        r = tdx_sim_new(&sc, &a->tdx_sim);
        if (r < 0)
                return diag_fail(d, r, "attester", -1,
                                 "the sim-tdx root %s is not a certificate and its P-256 key "
                                 "(write one with 'cloister attestation sim-tdx-root')",
                                 c->sim_tdx_root);
        a->tdx_no_collateral = c->sim_tdx_no_collateral;
        log_warning("SIMULATED TDX: this node attests with sim-tdx (root %s): no hardware "
                    "protects it; for tests and local clusters only.%s",
                    c->sim_tdx_root,
                    a->tdx_no_collateral ? " Its evidence carries no collateral, as a real TD's: "
                                           "verifiers take it from their cache."
                                         : "");
        return 0;
}

static int issue_sim_tdx(NodeAttester *a, const uint8_t *binding, Evidence **ret, Diag *d)
{
        Evidence *e;
        int r;

        r = attest_sim_tdx_issue(a->tdx_sim, binding, ret, d);
        if (r < 0 || !a->tdx_no_collateral)
                return r;
        /* As a real TD's evidence comes: the quote alone. */
        e = *ret;
        blob_clear(&e->tdx.tcb_info);
        blob_clear(&e->tdx.tcb_info_chain);
        blob_clear(&e->tdx.qe_identity);
        blob_clear(&e->tdx.qe_identity_chain);
        blob_clear(&e->tdx.pck_crl);
        blob_clear(&e->tdx.root_crl);
        e->tdx.has_collateral = false;
        return 0;
}

typedef struct NodeVariant {
        int (*setup)(NodeAttester *a, const NodeAttesterConfig *c, Diag *d);
        int (*issue)(NodeAttester *a, const uint8_t *binding, Evidence **ret, Diag *d);
} NodeVariant;

/* A variant no row names cannot be a node's (the SNP variants issue, but no node runs them
 * yet). Whether the TPM's quote rides along as identity is the variant table's (identity). */
static const NodeVariant node_variants[_ATTEST_VARIANT_MAX] = {
        [ATTEST_VARIANT_QEMU_VTPM] = { .issue = issue_vtpm },
        [ATTEST_VARIANT_TDX] = { .issue = issue_tdx },
        [ATTEST_VARIANT_SIM_TDX] = { .setup = setup_sim_tdx, .issue = issue_sim_tdx },
};

const char *node_attester_variants(void)
{
        return "qemu-vtpm, tdx, sim-tdx";
}

int node_attester_init(NodeAttester *a, const NodeAttesterConfig *c, Diag *d)
{
        int r;

        *a = (NodeAttester){ .variant = c->variant };
        if (c->variant < 0 || c->variant >= _ATTEST_VARIANT_MAX || !node_variants[c->variant].issue)
                return diag_fail(d, -EOPNOTSUPP, "attester", -1,
                                 "a node cannot attest with %s; use one of %s",
                                 attest_variant_to_string(c->variant) ?: "that variant",
                                 node_attester_variants());
        vtpm_attester_init(&a->tpm, c->tpm, &c->vtpm);
        a->live = true;
        if (node_variants[c->variant].setup) {
                r = node_variants[c->variant].setup(a, c, d);
                if (r < 0) {
                        node_attester_done(a);
                        return r;
                }
        }
        return 0;
}

void node_attester_done(NodeAttester *a)
{
        if (!a->live)
                return;
        a->live = false;
        a->tdx_sim = tdx_sim_free(a->tdx_sim);
        vtpm_attester_done(&a->tpm);
}

/* The TPM's quote over the same binding, PCR 15 alone (no event log): names the node. */
static int add_identity(NodeAttester *a, const uint8_t *binding, Evidence *e, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *id = NULL;
        VtpmIssueConfig cfg = { .pcr_mask = 1U << 15, .event_log = "" };
        int r;

        r = attest_vtpm_issue(a->tpm.tpm, &cfg, binding, &id, d);
        if (r < 0)
                return r;
        e->tpm = id->tpm;
        id->tpm = (EvidenceTpm){};
        e->has_tpm = true;
        return 0;
}

int node_attester_issue(NodeAttester *a, const uint8_t binding[static ATTEST_BINDING_SIZE],
                        Evidence **ret, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        int r;

        /* ESAPI contexts are not thread-safe; the simulator's keys are not shared either. */
        (void) pthread_mutex_lock(&a->tpm.lock);
        r = node_variants[a->variant].issue(a, binding, &e, d);
        if (r >= 0 && (attest_variant_info(a->variant)->identity & ATTEST_MEMBER_TPM))
                r = add_identity(a, binding, e, d);
        (void) pthread_mutex_unlock(&a->tpm.lock);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

static int node_issue_cb(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                         const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        char *doc;
        size_t size;
        int r;

        r = node_attester_issue(userdata, binding, &e, d);
        if (r < 0)
                return r;
        r = evidence_serialize(e, &doc, &size);
        if (r < 0)
                return diag_fail(d, r, "evidence-size", -1, "cannot serialise the evidence");
        *ret = (uint8_t *) doc;
        *ret_size = size;
        return 0;
}

AtlsAttester node_attester_atls(NodeAttester *a)
{
        return (AtlsAttester){ .variant = a->variant, .issue = node_issue_cb, .userdata = a };
}
