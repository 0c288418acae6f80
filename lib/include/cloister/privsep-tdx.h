/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The join service's TDX collateral request (JOIN_PRIVSEP_TDX_COLLATERAL, privsep.h): its network
 * process, shut in an empty root, asks the monitor for the cached collateral of a platform (FMSPC,
 * PCK CA) to verify tdx evidence that carries none; the monitor answers from its cache only,
 * never fetching (docs/tdx.md, "Joins and the collateral cache").
 */

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cloister/diag.h"
#include "cloister/privsep.h"
#include "cloister/tdx.h"

/* The monitor's lookup (its own verification, and the answer below at the current time): the
 * cache of c alone, offline whatever c says, at time at (0: now). -EINVAL a malformed key,
 * -ENOENT not cached (d names the FMSPC and the next step), -EIO a broken cache entry; note:
 * "" or the STALE report. */
int privsep_tdx_collateral_lookup(const TdxPcsConfig *c, const char *fmspc, const char *ca,
                                  time_t at, TdxCollateral **ret, char *note, size_t note_size,
                                  Diag *d);
void privsep_tdx_collateral_request(PrivsepBuf *b, const char *fmspc, const char *ca);
/* The monitor: answers request m from the cache of c (looked up offline whatever c says, at the
 * current time) into out. A malformed key, a missing item or a broken cache entry is an answer
 * with a negative status and a detail naming the FMSPC and the next step. */
void privsep_tdx_collateral_answer(const TdxPcsConfig *c, const PrivsepMsg *m, PrivsepBuf *out);
/* The network process: the reply (one message without its length word, as monitor_call() returns
 * it) into *ret and note ("" or the STALE report). <0 with d: the monitor's refusal. */
int privsep_tdx_collateral_decode(const uint8_t *buf, size_t size, TdxCollateral **ret, char *note,
                                  size_t note_size, Diag *d);
