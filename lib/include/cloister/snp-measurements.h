/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * snp.launchMeasurements, in a measurements file and in a policy: the SEV-SNP launch
 * measurements `cloister-measure snp-launch` computed, each with the parameters it holds for:
 *   [{"measurement": "<96 hex>", "vcpus": 4, "vcpuType": "EPYC-v4", "vmm": "qemu",
 *     "guestFeatures": "0x1"}, ...]
 * vcpuType is absent for ec2 and gce (their VMSA does not depend on it). docs/snp.md.
 */

#include "cloister/json.h"
#include "cloister/sev-snp.h"

/* The array at o's member key (absent: *ret_n = 0). Each entry typed and checked (the vCPU
 * type and VMM known, 1..SNP_LAUNCH_VCPUS_MAX vCPUs), unknown keys refused, at most max
 * entries, no two for the same parameters. -EBADMSG with the path in ctx->diag. */
int snp_launch_entries_parse(const JsonCtx *ctx, const json_t *o, const char *key,
                             SnpLaunchEntry *out, size_t max, size_t *ret_n);
/* The same array as JSON (a new reference), NULL on OOM. */
json_t *snp_launch_entries_to_json(const SnpLaunchEntry *e, size_t n);
/* One entry's JSON object. */
json_t *snp_launch_entry_to_json(const SnpLaunchEntry *e);
