/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A node's own evidence, for the variant it is configured with (the bootstrapper's and the join
 * service's --attest): one row per variant a node can issue in lib/attest/node-attester.c.
 *
 * Every node has a TPM (PCR 15 records its cluster, docs/join.md). For qemu-vtpm it is the
 * evidence; for the TDX variants, whose quote carries no key that survives a reboot, its quote
 * over the same binding rides along as the node's identity (the attestation key a member is
 * bound to), never as attestation.
 */

#include "cloister/atls.h"
#include "cloister/attest-atls.h"
#include "cloister/attest.h"

typedef struct NodeAttesterConfig {
        AttestVariant variant;
        TpmDevice *tpm;       /* required: the evidence (qemu-vtpm) or the identity (TDX) */
        VtpmIssueConfig vtpm; /* qemu-vtpm's quote (PCRs, event log) */
        /* sim-tdx only, and required for it: the simulated platform's root, certificate and key
         * as PEM (the file 'cloister attestation sim-tdx-root' writes). */
        const char *sim_tdx_root;
        /* sim-tdx only: the evidence carries no collateral, as a real TD's does, so that its
         * verifiers take the platform's from their cache (docs/tdx.md, "The other direction"). */
        bool sim_tdx_no_collateral;
} NodeAttesterConfig;

typedef struct NodeAttester {
        AttestVariant variant;
        VtpmAttester tpm; /* its lock serialises every TPM command */
        TdxSimulator *tdx_sim;
        bool tdx_no_collateral;
        bool live; /* between init and done */
} NodeAttester;

/* -EOPNOTSUPP for a variant no node issues (the SNP variants: not wired yet), -EINVAL for sim-tdx
 * without its root; d says which and what to do. */
int node_attester_init(NodeAttester *a, const NodeAttesterConfig *c, Diag *d);
/* Safe to call again, and on a zeroed or failed-to-init attester. */
void node_attester_done(NodeAttester *a);
static inline void node_attester_donep(NodeAttester *a)
{
        node_attester_done(a);
}
/* Evidence bound to binding, identity member included where the variant carries one. */
int node_attester_issue(NodeAttester *a, const uint8_t binding[static ATTEST_BINDING_SIZE],
                        Evidence **ret, Diag *d);
AtlsAttester node_attester_atls(NodeAttester *a);
/* The variants a node can be configured with, for --help and errors ("qemu-vtpm, tdx, ..."). */
const char *node_attester_variants(void);
