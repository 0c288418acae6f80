/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What 'upgrade check' and 'upgrade apply' share (cloister-upgrade-apply.c; docs/upgrade.md). */

#include <stdint.h>

#include "cloister/attest.h"

typedef struct json_t json_t;

/* The policy admitting both images: a copy of old_att whose PCRs that new_att changes move into
 * two measurement sets named from and to (the old values, the new ones); every other PCR stays
 * common. *ret_changed: how many PCRs differ. NULL if out of memory. */
json_t *cli_upgrade_both_policy(const json_t *old_att, const json_t *new_att, const char *from,
                                const char *to, unsigned *ret_changed);

/* A measurement set's name from an image version (fallback if none): the characters a policy
 * allows, any other as '_', at most ATTEST_SET_NAME_MAX. */
void cli_upgrade_set_name(const char *version, const char *fallback,
                          char buf[static ATTEST_SET_NAME_MAX + 1]);

/* Which image each member of cluster cid runs: every member the join service at endpoint lists,
 * attested now with both_att (PCR 15 bound to the cluster), one line each with the measurement
 * set its PCRs match, or why it did not attest. Returns 0, or -errno (logged) if the members
 * could not be listed. */
int cli_upgrade_print_node_images(const json_t *both_att, const uint8_t cid[static 32],
                                  const char *endpoint);
