/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The join service's re-attestation protocol (docs/reattestation.md): the monitor hands its
 * confined re-attestation process one connection at a time (a TCP socket it opened to a member's
 * endpoint, passed with SCM_RIGHTS just before the job) and a job; the process runs the aTLS
 * handshake and GET /v1/node on it and answers with what the member sent, which the monitor
 * verifies itself. Messages in privsep.h's wire format; several jobs may be in flight, answers
 * carry the job's id and come in any order.
 */

#include "cloister/privsep.h"

typedef enum ReattestPrivsepOp {
        /* monitor -> process: id (decimal), nonce, member name, endpoint, timeout (ms, decimal) */
        REATTEST_PRIVSEP_JOB = 1,
        /* process -> monitor: id, evidence, server SPKI, the name and state /v1/node reported
         * ("" if none), detail */
        REATTEST_PRIVSEP_ANSWERED,
        /* process -> monitor: id, why (no evidence came: refused, timed out, closed) */
        REATTEST_PRIVSEP_UNREACHABLE,
} ReattestPrivsepOp;

#define REATTEST_PRIVSEP_DETAIL_MAX 512U

/* What each side accepts: the process parses jobs, the monitor answers. */
extern const PrivsepSpec reattest_privsep_jobs[];
extern const size_t reattest_privsep_n_jobs;
extern const PrivsepSpec reattest_privsep_answers[];
extern const size_t reattest_privsep_n_answers;
