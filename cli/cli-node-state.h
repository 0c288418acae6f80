/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A node's state in words instead of PCRs (docs/troubleshooting.md, "Node states"): a node that
 * is already a member, one waiting for 'cloister recover', one recovered already, one in no
 * cluster yet. Each function logs one error line with the next step (the PCR values at debug
 * level, -v) and returns -EALREADY when it recognised a state, 0 when it did not (the caller
 * then reports the failure as it would have). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "cloister/measurements.h"

typedef struct AttestReport AttestReport;
typedef struct json_t json_t;

/* The attestation of a node that must be in no cluster (apply, recover: PCR 15 zero) failed
 * with rep's checks: if PCR 15 is the only check that failed, the node is in a cluster (cid: the
 * workspace's cluster, to name it; NULL if none). verb: "apply" or "recover". */
int cli_node_state_from_report(const char *verb, const char *endpoint, const AttestReport *rep,
                               const uint8_t *cid);
/* The node's GET /v1/node answer: its "state" must be want ("uninitialized" for apply). */
int cli_node_state_expect(const char *verb, const char *endpoint, const json_t *node,
                          const char *want);
/* A refusal whose body names a state ({"code": "already-member", "detail": ...}). */
int cli_node_state_from_refusal(const char *verb, const char *endpoint, const json_t *resp);

/* The node's "versions" in its GET /v1/node answer ({"cloister", "image", "kubernetes",
 * "imageKind"}, each a short printable string or null, imageKind cloud or test; anything else is
 * dropped), for display; logs a warning when
 * its Cloister version is beyond the support policy against this CLI's (docs/versions.md).
 * Returns a new reference, or NULL if the node reported none. */
json_t *cli_node_versions(const char *endpoint, const json_t *node);
/* "cloister 0.1.0, image v0.1.0-12-gabc, Kubernetes v1.30.0" ("-" for a value not reported),
 * the image's kind noted after its version (measurements_image_kind_note()). */
void cli_node_versions_text(const json_t *versions, char *buf, size_t size);
/* The kind the node's image reports (its os-release, covered by the attested root hash);
 * UNKNOWN if it reports none. */
MeasurementsImageKind cli_node_image_kind(const json_t *versions);

/* The answer to a failed init (or to POST /v1/log) may carry the node's log of this boot (only
 * for its proven owner: docs/troubleshooting.md): saved as path, or (NULL)
 * cloister-node-HOST-PORT.log in the workspace, 0600, with control characters replaced, and
 * the path said unless quiet. Returns its size (> 0), 0 if the answer has none, -errno (logged
 * as a warning) if it cannot be saved. */
int cli_node_log_save(const char *endpoint, const json_t *resp, const char *path, bool quiet);
#define CLI_NODE_LOG_PATH_MAX (CLI_URL_MAX + 32)
/* cloister-node-HOST-PORT.log for https://HOST:PORT (anything but letters, digits and dots
 * becomes '-'). */
void cli_node_log_default_path(const char *endpoint, char ret[static CLI_NODE_LOG_PATH_MAX]);
/* The node's state as its GET /v1/node answer names it, if it is one the CLI knows
 * ("uninitialized", "joining", "join-failed", "awaiting-recovery", "member"; a static string), else
 * NULL. */
const char *cli_node_state_name(const json_t *node);
