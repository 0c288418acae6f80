/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What 'upgrade check' and 'upgrade apply' share (cloister-upgrade-apply.c; docs/upgrade.md). */

#include <stdbool.h>
#include <stddef.h>
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

/* Clouds (cli-upgrade-cloud.c): the cluster made by 'cloister create' in this workspace. */
#define CLI_UPGRADE_CLOUD_MAX    16
#define CLI_UPGRADE_IMAGE_ID_MAX 256
/* The cloud the state file records (infrastructure.provider, written by create): 1 and
 * provider set, 0 if it records none (a local cluster), -errno (logged) if malformed. */
int cli_upgrade_cloud(const char *state_path, char provider[static CLI_UPGRADE_CLOUD_MAX]);
/* An image ID as clouds write them: 1 to 256 of A-Z a-z 0-9 / _ . : - */
bool cli_upgrade_image_id_ok(const char *id);
/* Before anything changes: the workspace's variables can be rolled to image_id (one control
 * plane; not that image already) and terraform (given, or on PATH) runs. ret_current: the image
 * they name now. -errno, logged. */
int cli_upgrade_cloud_check(const char *image_id, const char *terraform, char *ret_current,
                            size_t current_size);
/* The role's group ("worker" or "control-plane") to image_id: the workspace's variables changed
 * (worker_image_id; then image_id for the control plane), terraform init, plan, apply. 0 once
 * terraform applied; -errno after terraform's error lines were printed. */
int cli_upgrade_cloud_roll(const char *terraform, const char *role, const char *image_id);
