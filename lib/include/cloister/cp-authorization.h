/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Control-plane authorizations: the owner, not the joining node, decides which node may become a
 * control plane (and so receive the master secret). An authorization names one node and an
 * expiry and is a PRF output keyed by the master secret (docs/key-derivation.md):
 *
 *   "cpa1." NAME "." NOT_AFTER "." hex(HKDF(master, salt,
 *        "cloister/v1/control-plane-authorization/" NAME "/" NOT_AFTER, 32))
 *
 * NAME is a DNS-1123 label (the member name), NOT_AFTER a decimal Unix time. It is no secret
 * worth guarding (it travels in the node's metadata): it authorizes only that name, only until
 * NOT_AFTER, and only for a node that passes attestation; a join service admits one member per
 * name, so once used there by the node it belongs to, no other TPM can use it there. Membership
 * is per join service (docs/join.md, limits): another join service would still take it until it
 * expires.
 */

#include <stdint.h>
#include <time.h>

#include "cloister/diag.h"
#include "cloister/kdf.h"
#include "cloister/secret.h"

#define KDF_INFO_CP_AUTHORIZATION_PREFIX "cloister/v1/control-plane-authorization/"
#define CP_AUTHORIZATION_PREFIX          "cpa1."
#define CP_AUTHORIZATION_NAME_MAX        63
/* "cpa1." + name + "." + up to 20 digits + "." + 64 hex + NUL */
#define CP_AUTHORIZATION_MAX (5 + CP_AUTHORIZATION_NAME_MAX + 1 + 20 + 1 + 64 + 1)
/* Longest validity `cloister control-plane authorize` issues. */
#define CP_AUTHORIZATION_VALID_MAX_SEC (30 * 24 * 3600)

/* true if name is a DNS-1123 label of at most CP_AUTHORIZATION_NAME_MAX characters. */
bool cp_authorization_name_ok(const char *name);

/* The authorization for name until not_after (a Unix time). -EINVAL for a bad name. */
int cp_authorization_make(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                          const char *name, time_t not_after,
                          char ret[static CP_AUTHORIZATION_MAX]);

/* Checks token for name at time now: -EBADMSG malformed, -EPERM not made with this master
 * secret or for another name, -ETIME expired. d says which, in one sentence. */
int cp_authorization_check(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                           const char *token, const char *name, time_t now, Diag *d);
