/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Glue between the attestation variants and aTLS: ready-made AtlsAttester/AtlsVerifier
 * callbacks. */

#include <pthread.h>

#include "cloister/atls.h"
#include "cloister/attest.h"

/* Attests with this machine's TPM (qemu-vtpm). The TPM is used under a mutex. */
typedef struct VtpmAttester {
        TpmDevice *tpm;
        VtpmIssueConfig config;
        pthread_mutex_t lock;
} VtpmAttester;

void vtpm_attester_init(VtpmAttester *a, TpmDevice *tpm, const VtpmIssueConfig *config);
void vtpm_attester_done(VtpmAttester *a);
AtlsAttester vtpm_attester(VtpmAttester *a);

/* Attests with the SEV-SNP simulator (sim-snp: tests and local clusters only). */
typedef struct SimSnpAttester {
        SnpSimulator *sim;
} SimSnpAttester;

AtlsAttester sim_snp_attester(SimSnpAttester *a);

/* Attests with the TDX simulator (sim-tdx: tests and local clusters only). */
typedef struct SimTdxAttester {
        TdxSimulator *sim;
} SimTdxAttester;

AtlsAttester sim_tdx_attester(SimTdxAttester *a);

/* Verifies peers against a policy (any variant attest_verify() supports). */
typedef struct PolicyVerifier {
        const AttestPolicy *policy;
        time_t at;            /* 0: now */
        AttestReport *report; /* if set: every check of the last verification (for display) */
} PolicyVerifier;

AtlsVerifier policy_verifier(PolicyVerifier *v);
