/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Signed audit checkpoints (docs/audit-log.md, "Signed checkpoints"): a join service's audit log
 * head (sequence number, hash, time) quoted by the join service's own attestation key. The
 * checkpoint's evidence is an ordinary evidence document whose binding is
 *
 *   SHA-256("cloister-audit-checkpoint-v1" 0 variant 0 seq 0 hash 0 size 0 time)
 *
 * (seq and size, the log's length in bytes up to the end of entry seq, in decimal; hash 64
 * lowercase hex; time YYYY-MM-DDTHH:MM:SSZ), so it verifies against
 * the cluster's member policy like the join service's aTLS evidence, and only as a checkpoint of
 * exactly that head. The signer is the attestation key itself: a TPM's AK, which differs per join
 * service, stays in its TPM across restarts and is what its aTLS evidence is quoted with.
 *
 * The file (<log>.checkpoint), one line:
 *   {"evidence":{...evidence document...},"hash":"<64 hex>","seq":N,"size":BYTES,"time":"...",
 *    "version":1}
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cloister/attest.h"
#include "cloister/audit-log.h"
#include "cloister/diag.h"
#include "cloister/evidence.h"
#include "cloister/timestamp.h"

#define AUDIT_CHECKPOINT_VERSION 1
/* The evidence and a few hundred bytes around it. */
#define AUDIT_CHECKPOINT_SIZE_MAX (EVIDENCE_SIZE_MAX + 4096U)
#define AUDIT_SIGNER_HEX_SIZE     65U
/* Lines of at most AUDIT_LINE_MAX + 1 bytes, AUDIT_ENTRIES_MAX of them. */
#define AUDIT_CHECKPOINT_LOG_MAX ((int64_t) AUDIT_ENTRIES_MAX * (AUDIT_LINE_MAX + 1))

typedef struct AuditCheckpoint {
        int64_t seq;  /* 0: an empty log (hash all zeros, size 0) */
        int64_t size; /* bytes of the log up to the end of entry seq */
        char hash[AUDIT_HASH_HEX_SIZE];
        char time[TIMESTAMP_UTC_SIZE];
        time_t when;
        Evidence *evidence;
} AuditCheckpoint;

AuditCheckpoint *audit_checkpoint_free(AuditCheckpoint *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AuditCheckpoint *, audit_checkpoint_free);

/* The binding a checkpoint's evidence carries; -EINVAL for a seq, hash or time out of form. */
int audit_checkpoint_binding(AttestVariant variant, int64_t seq, const char *hash, int64_t size,
                             const char *time, uint8_t ret[static ATTEST_BINDING_SIZE]);

/* The file's text (one line, with its newline) for this head and the evidence quoted over
 * audit_checkpoint_binding() of it. */
int audit_checkpoint_format(int64_t seq, const char *hash, int64_t size, const char *time,
                            const Evidence *e, char **ret);

/* Strict: exactly the keys above, version 1, seq in [0, AUDIT_ENTRIES_MAX], hash 64 lowercase
 * hex (zeros exactly when seq is 0), a UTC time that exists, a well-formed evidence document;
 * at most AUDIT_CHECKPOINT_SIZE_MAX bytes. -EBADMSG/-EMSGSIZE, check "audit-checkpoint-syntax".
 * Does not verify the evidence (audit_checkpoint_verify()). Fuzzed: fuzz-audit-checkpoint.c. */
int audit_checkpoint_parse(const void *data, size_t size, const char *source, AuditCheckpoint **ret,
                           Diag *d);

/* Who signed: SHA-256 of the evidence's attestation key (TPMT_PUBLIC), hex. -EOPNOTSUPP for a
 * variant whose evidence carries no key of its own (SEV-SNP, TDX: see the docs' limits). */
int audit_checkpoint_signer(const Evidence *e, char ret[static AUDIT_SIGNER_HEX_SIZE]);

/*
 * The checkpoint's evidence verified against policy at time at (0: now) with the binding
 * recomputed from its seq, hash and time, and signed by the key whose digest is signer (the key
 * of the join service that served it, from its aTLS evidence): -EKEYREJECTED, check
 * "audit-checkpoint-signer", when another key signed it. Other failures as attest_verify().
 */
int audit_checkpoint_verify(const AuditCheckpoint *c, const AttestPolicy *policy, time_t at,
                            const char *signer, Diag *d);

/* The checkpoint against the log it came with (entries checked, the last one's hash, its size in
 * bytes): it must name the last entry. -EBADMSG, check "audit-checkpoint-head", naming what does
 * not hold: the log is behind the signed head (cut or rolled back), ahead of it (entries nobody
 * signed), or its entry has another hash (rewritten). */
int audit_checkpoint_check_head(const AuditCheckpoint *c, size_t entries, const char *last_hash,
                                uint64_t size, Diag *d);
