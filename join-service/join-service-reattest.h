/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Continuous re-attestation of every member (docs/reattestation.md). The monitor keeps the
 * schedule, the nonces, the verdicts and the responses (join-service-reattest.c); a confined
 * re-attestation process forked before the master secret is loaded runs the aTLS handshakes and
 * GET /v1/node over sockets the monitor opened to member endpoints only
 * (join-service-reattester.c), and answers with the raw evidence, which the monitor verifies
 * itself.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "cloister/attest.h"

typedef struct JoinService JoinService;

typedef enum ReattestAction {
        REATTEST_ACTION_WARN,
        REATTEST_ACTION_CORDON,
        REATTEST_ACTION_EVICT,
        _REATTEST_ACTION_MAX,
        _REATTEST_ACTION_INVALID = -EINVAL,
} ReattestAction;

/* The policy's "reattestation" section (all optional). */
typedef struct ReattestConfig {
        bool enabled;                  /* "enabled", default true */
        unsigned interval_ms;          /* "intervalSeconds" 1..86400, default 60 */
        unsigned jitter_percent;       /* "jitterPercent" 0..50, default 20 */
        unsigned timeout_ms;           /* "timeoutSeconds" 1..60, default 10 */
        unsigned unreachable_after;    /* "unreachableAfter" 1..1000 intervals, default 3 */
        ReattestAction on_failure;     /* "onFailure", default warn */
        ReattestAction on_unreachable; /* "onUnreachable", default warn */
} ReattestConfig;

void reattest_config_defaults(ReattestConfig *c);
/* The section of a policy document (text as in cluster-policy.json); defaults for what it does
 * not set, the defaults alone without a section. -EBADMSG (d says what) for a malformed one. */
int reattest_config_parse(const char *policy_text, size_t size, ReattestConfig *ret, Diag *d);

/* The confined re-attestation process: forked here (before the master secret is loaded: it
 * never had it in memory), shut in root as uid:gid, every descriptor but its channel closed,
 * under the network process's seccomp filter (no socket of its own, no connect: it uses the
 * sockets it is handed). *ret_fd: the monitor's end of the channel. */
int reattest_fork(AttestVariant variant, const char *root, uid_t uid, gid_t gid, pid_t *ret_pid,
                  int *ret_fd);
/* The process's loop (join-service-reattester.c); never returns. */
__attribute__((noreturn)) void reattest_process_main(int fd, AttestVariant variant);

/* The monitor's side: the schedule and the reader of answers, on threads of their own. */
int reattest_start(JoinService *js, pid_t pid, int fd);
void reattest_stop(JoinService *js);

/* A member the responses cordoned or evicted gets no key material: rejoin refused (why in
 * buf). false when it may rejoin. Takes the re-attestation lock (after members_lock). */
bool reattest_refuses_rejoin(JoinService *js, const char *name, char *buf, size_t size);
/* Adds each member's "reattestation" object to a GET /v1/members document. */
void reattest_annotate_members(JoinService *js, json_t *doc);
/* The text of GET /metrics (Prometheus text format 0.0.4; docs/reattestation.md, "Metrics"):
 * service-wide gauges and each member's record, label values escaped. */
int reattest_metrics(JoinService *js, char **ret);
