/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "cloister/attest.h"

/* A qemu-vtpm policy for the TPM at tcti: its AK pinned, PCRs 0-15 expected at their current
 * values, event log if present. */
int fixture_policy_pinned(const char *tcti, AttestPolicy **ret);

typedef struct SnpSimulator SnpSimulator;
/* A sim-snp policy trusting sim's ARK (no TCB or measurement requirements). */
int fixture_policy_sim_snp(SnpSimulator *sim, AttestPolicy **ret);
