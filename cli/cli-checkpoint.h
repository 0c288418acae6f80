/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Signed audit checkpoints in the CLI (docs/audit-log.md, "Signed checkpoints"): each join
 * service's signed head checked against the key its aTLS evidence was quoted with and against
 * the log it served, and the highest signed head of each join service recorded in the workspace
 * (cloister-audit-checkpoints.json), so that a later verify refuses an older one. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cli.h"
#include "cloister/atls.h"
#include "cloister/attest.h"
#include "cloister/audit-checkpoint.h"

#define CLI_CHECKPOINTS_FILE "cloister-audit-checkpoints.json"
#define CLI_CHECKPOINTS_MAX  64

/* What one join service's checkpoint said, once checked. */
typedef struct CliCheckpoint {
        bool ok;
        int64_t seq;
        char hash[AUDIT_HASH_HEX_SIZE];
        char time[TIMESTAMP_UTC_SIZE];
        time_t when;
        char signer[AUDIT_SIGNER_HEX_SIZE];
} CliCheckpoint;

/* The key digest of the join service that served the log: its aTLS evidence (as received in the
 * handshake, with the nonce this side sent and its certificate key), verified again here with
 * the binding recomputed, against policy at time at. */
int cli_checkpoint_channel_signer(const uint8_t *evidence, size_t size,
                                  const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                                  size_t spki_size, const AttestPolicy *policy, time_t at,
                                  char ret[static AUDIT_SIGNER_HEX_SIZE], char *reason, size_t n);

/* The checkpoint text served with the log's last page (NULL: none), checked: signed by signer,
 * verified against policy at time at, naming the log's last entry and its length in bytes. 0 and
 * ret filled, or -errno with reason. */
int cli_checkpoint_check(const char *text, const char *signer, const AttestPolicy *policy,
                         time_t at, size_t entries, const char *last_hash, uint64_t log_size,
                         CliCheckpoint *ret, char *reason, size_t n);

/* The highest signed head seen per join service (by key), in the workspace. */
typedef struct CliCheckpointRecord {
        char signer[AUDIT_SIGNER_HEX_SIZE];
        char url[CLI_URL_MAX];
        int64_t seq;
        char hash[AUDIT_HASH_HEX_SIZE];
        char time[TIMESTAMP_UTC_SIZE];
        time_t when;
} CliCheckpointRecord;

/* The highest head of a cluster's one audit chain in etcd this workspace saw verify
 * (docs/membership.md, "Rollback of etcd"), by cluster ID. */
#define CLI_CLUSTER_CHAINS_MAX 16
typedef struct CliChainRecord {
        char cluster_id[65];
        int64_t seq;
        char hash[AUDIT_HASH_HEX_SIZE];
} CliChainRecord;
typedef struct CliCheckpointStore {
        CliCheckpointRecord r[CLI_CHECKPOINTS_MAX];
        size_t n;
        CliChainRecord chains[CLI_CLUSTER_CHAINS_MAX];
        size_t n_chains;
        bool changed;
} CliCheckpointStore;

/* A missing file is an empty store; a malformed one an error naming it. */
int cli_checkpoint_store_load(const char *path, CliCheckpointStore *s);
const CliCheckpointRecord *cli_checkpoint_store_find(const CliCheckpointStore *s,
                                                     const char *signer);
/* The checkpoint c of the log served by url against what was recorded for its key: an older
 * signed head (lower seq, or an earlier time) is refused, and so is a log whose entry at the
 * recorded seq no longer has the recorded hash (seen_hash, "" if the log does not reach it).
 * -ESTALE with reason. */
int cli_checkpoint_store_check(const CliCheckpointStore *s, const CliCheckpoint *c,
                               const char *seen_hash, char *reason, size_t n);
/* Records c (a verified checkpoint) if it is newer than what the store holds for its key. */
void cli_checkpoint_store_note(CliCheckpointStore *s, const CliCheckpoint *c, const char *url);
int cli_checkpoint_store_save(const char *path, const CliCheckpointStore *s);
/* The cluster chain's head recorded for this cluster (hex ID), or NULL. */
const CliChainRecord *cli_checkpoint_store_find_chain(const CliCheckpointStore *s,
                                                      const char *cluster_id);
/* A cluster chain that verified, ending at entry seq with hash: recorded if it is later. */
void cli_checkpoint_store_note_chain(CliCheckpointStore *s, const char *cluster_id, int64_t seq,
                                     const char *hash);

/* The hash of entry seq if it is among these whole lines, which hold entries first_seq on. */
bool cli_checkpoint_find_entry(const char *text, size_t size, int64_t first_seq, int64_t seq,
                               char ret[static AUDIT_HASH_HEX_SIZE]);

/* CLI_CHECKPOINTS_FILE in the directory of the workspace's state file. -ENAMETOOLONG. */
int cli_checkpoints_path(const char *state_path, char *buf, size_t size);
