/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The join service's membership and audit log (docs/audit-log.md): JSON Lines, append-only,
 * hash-chained. Each line is one object
 *   {"event", "evidenceDigest", "hash", "node", "policyDigest", "prev", "reason", "role", "seq",
 *    "time", "verdict"}
 * written in canonical form: compact, keys sorted, everything outside printable ASCII escaped
 * as \uXXXX with lowercase hex, i.e. byte for byte what Python's
 *   json.dumps(entry, sort_keys=True, separators=(",", ":"))
 * produces. hash is the SHA-256 of the canonical form of the entry without "hash"; prev is the
 * previous entry's hash (64 zeros for seq 1). A head file "<log>.head" holds the last
 * {"hash", "seq"}, so that a log cut short at its end is detected too.
 *
 * The chain detects an entry removed, altered or reordered by anyone who does not also
 * recompute every later hash and the head file; it is not a signature. Nothing secret is ever
 * written here: names, digests, verdicts and reasons.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "cloister/diag.h"

/* Limits of the parser, enforced on append as well. A line is counted without its newline; the
 * largest entry append can write (node and reason at their limits, worst-case escaping) is 4024
 * bytes. */
#define AUDIT_LINE_MAX      4096U
#define AUDIT_ENTRIES_MAX   10000000U
#define AUDIT_NODE_MAX      253U  /* bytes, printable ASCII */
#define AUDIT_REASON_MAX    1024U /* bytes of UTF-8 */
#define AUDIT_HASH_HEX_SIZE 65U   /* 64 lowercase hex digits and a NUL */

typedef struct AuditEntry {
        const char *event;           /* "init", "admission", "rejoin", "recovery", "refusal" */
        const char *node;            /* node name or peer address; NULL for "" */
        const char *role;            /* "control-plane", "worker", "" or NULL */
        const char *evidence_digest; /* 64 lowercase hex (SHA-256 of the evidence), "" or NULL */
        const char *policy_digest;   /* 64 lowercase hex, "" or NULL */
        const char *verdict;         /* "admitted" or "refused" ("refused" for a refusal) */
        const char *reason;          /* free text; NULL for "" */
} AuditEntry;

typedef struct AuditLogSummary {
        size_t entries, admitted, refused;
        char head[AUDIT_HASH_HEX_SIZE]; /* hash of the last entry, "" for an empty log */
} AuditLogSummary;

/*
 * Appends one entry, stamped with the current UTC time. Several processes may append at once:
 * the log is opened O_APPEND and held under an exclusive flock() while its last entry and the
 * head file are checked, the line is written with one write() and fsync()ed, and the head file
 * replaced atomically.
 *
 * node and reason come from peers at times, so they never make an append fail: control
 * characters are replaced (tab, CR and LF by a space, others by '?'), node keeps printable ASCII
 * only, and either is cut at a character boundary to its limit, ending in "...".
 *
 * Returns 0; -EINVAL for an entry with an unknown event, verdict or role or a malformed digest;
 * -EBADMSG if the last entry is damaged or disagrees with the head file (a broken chain is
 * never extended); -EMSGSIZE when the log holds AUDIT_ENTRIES_MAX entries; -errno from the file
 * system. If only the head file could not be replaced, the entry is in the log and the error
 * is returned all the same (the next append repairs the head). d says what is wrong.
 */
int audit_log_append(const char *path, const AuditEntry *e, Diag *d);

/*
 * Checks every line (length, keys, values, canonical form, hash, seq, prev) and that the head
 * file names the last entry (or the one before it: an append interrupted between the log and
 * the head). The log is read in bounded chunks under a shared flock(). d names the first bad
 * line (index = line number) and what is wrong with it. ret is written only on success.
 * -EBADMSG for a damaged log or head file, -EMSGSIZE for a line or log over the limits,
 * -errno if the log cannot be read.
 */
int audit_log_verify(const char *path, AuditLogSummary *ret, Diag *d);

/*
 * The same checks on a log that arrives in pieces (the join service serves it in pages, see
 * docs/audit-log.md): the state between lines. Pieces may split anywhere; a partial line is
 * left for the next call. audit_log_chain_feed() checks the complete lines of data in their
 * place in the chain, sets *ret_used to the bytes it consumed (whole lines) and leaves the rest
 * to be passed again with what follows; with final set, a remainder without a newline is
 * refused. A line longer than AUDIT_LINE_MAX is refused without waiting for its end. After a
 * failure the chain must not be fed again. Errors as audit_log_verify().
 */
typedef struct AuditLogChain {
        const char *source;               /* names the log in messages (not copied) */
        size_t lines;                     /* entries checked so far */
        char last[AUDIT_HASH_HEX_SIZE];   /* hash of the last entry, zeros before the first */
        char before[AUDIT_HASH_HEX_SIZE]; /* hash of the entry before the last (its prev) */
        size_t admitted, refused;
} AuditLogChain;
void audit_log_chain_init(AuditLogChain *c, const char *source);
int audit_log_chain_feed(AuditLogChain *c, const void *data, size_t size, bool final,
                         size_t *ret_used, Diag *d);
void audit_log_chain_summary(const AuditLogChain *c, AuditLogSummary *ret);

/* The same checks on a log in memory, without the head file (source names it in d). */
int audit_log_verify_buffer(const void *data, size_t size, const char *source, AuditLogSummary *ret,
                            Diag *d);

/* The last entry of the log at path among its first `end` bytes (-1: the whole file): its seq
 * and hash (seq 0 and zeros for an empty log), and where it ends. Reads one line under a shared
 * lock. -EBADMSG if that line is not a whole, valid entry; -ESPIPE if the file is shorter than
 * end. */
int audit_log_entry_ending_at(const char *path, off_t end, int64_t *ret_seq,
                              char ret_hash[static AUDIT_HASH_HEX_SIZE], off_t *ret_end, Diag *d);

/* One entry as audit_log_append() would write it as entry seq after the entry whose hash is prev
 * (the same checks and sanitising, the current time): the line with its newline, in a new
 * buffer, and its hash. For chains kept elsewhere than in a file (etcd, docs/membership.md). */
int audit_log_entry_format(const AuditEntry *e, int64_t seq, const char *prev, char **ret_line,
                           char ret_hash[static AUDIT_HASH_HEX_SIZE], Diag *d);
