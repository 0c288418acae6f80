/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "cloister/attest.h"

/* A qemu-vtpm policy for the TPM at tcti: its AK pinned, PCRs 0-15 expected at their current
 * values, event log if present. */
int fixture_policy_pinned(const char *tcti, AttestPolicy **ret);
