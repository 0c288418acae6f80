/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Evidence bundles in the CLI (docs/bundle.md): recording what `verify --cluster` / `verify
 * --node` were given, writing it with cloister/bundle.h, and verifying it again offline. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cli.h"
#include "cloister/atls.h"
#include "cloister/attest.h"
#include "cloister/bundle.h"
#include "cloister/json.h"

/* What one aTLS verification was given, kept by cli_record_evidence() (an AtlsRecordFunc whose
 * userdata is a CliRecord): the last handshake's, if a call retried. */
typedef struct CliRecord {
        bool present;
        uint8_t *evidence;
        size_t evidence_size;
        uint8_t nonce[ATLS_NONCE_SIZE];
        uint8_t *spki;
        size_t spki_size;
        uint8_t binding[ATLS_BINDING_SIZE];
} CliRecord;

int cli_record_evidence(void *userdata, const uint8_t *evidence, size_t size,
                        const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                        size_t spki_size, const uint8_t binding[static ATLS_BINDING_SIZE]);
void cli_record_done(CliRecord *r);
/* A verifier that records into rec as well (rec may be NULL: no recording). */
static inline void cli_record_attach(AtlsVerifier *v, CliRecord *rec)
{
        if (rec) {
                v->record = cli_record_evidence;
                v->record_userdata = rec;
        }
}

/* The exact bytes of the policy a verification used: --policy FILE's, or a configuration's
 * "attestation" object as loaded. Logs its errors. */
int cli_policy_bytes(const char *policy_path, const CliConfig *config, char **ret,
                     size_t *ret_size);

/* Builds a bundle while a verification runs. kind "cluster" or "node". */
typedef struct CliBundleWriter {
        Bundle *bundle;
        json_t *meta, *nodes, *logs;
} CliBundleWriter;

int cli_bundle_writer_init(CliBundleWriter *w, const char *kind, time_t at, const char *policy,
                           size_t policy_size, const uint8_t *cid);
/* One node: what its verification was given (rec; not present if it never presented evidence),
 * and the live verdict with its reasons and checks (informational: verify --bundle decides
 * again). */
int cli_bundle_writer_node(CliBundleWriter *w, const char *name, const char *role,
                           const char *endpoint, const CliRecord *rec, bool ok,
                           const char *const *reasons, size_t n_reasons, const json_t *checks,
                           const json_t *versions, const char *state);
/* One join service's audit log as read (whole pages, from byte 0; complete unless it was longer
 * than the bundle keeps) and the head it came with. */
int cli_bundle_writer_audit(CliBundleWriter *w, const char *url, const char *log, size_t size,
                            bool complete, const char *head, const char *policy_digest,
                            const char *self, const char *const *listed, size_t n_listed);
/* The signed checkpoint served with the last audit log added (cli_bundle_writer_audit()) and
 * the evidence of the handshake it came over, which names its signer. Nothing without both. */
int cli_bundle_writer_checkpoint(CliBundleWriter *w, const char *checkpoint,
                                 const CliRecord *channel);
int cli_bundle_writer_write(CliBundleWriter *w, const char *path);
/* The bundle itself, serialised and read back (policy test --cluster). */
int cli_bundle_writer_take(CliBundleWriter *w, Bundle **ret);
void cli_bundle_writer_done(CliBundleWriter *w);
/* Most bytes of one audit log a bundle keeps; a longer one is kept as its head only. */
#define CLI_BUNDLE_AUDIT_MAX (16U * 1024U * 1024U)

/* A bundle read back: its record ("bundle.json") checked against the entries. */
typedef struct CliBundle {
        Bundle *bundle;
        json_t *meta;
        const char *kind; /* "cluster" or "node" */
        time_t at;        /* the recorded verification time */
        char at_text[32];
        bool has_cid;
        uint8_t cid[32];
        json_t *nodes, *logs;
} CliBundle;

/* Reads and checks a bundle file (or one in memory, if path is NULL: taken over, freed on
 * failure too); logs one line naming what no longer holds. */
int cli_bundle_load(const char *path, Bundle *in_memory, CliBundle *ret);
void cli_bundle_done(CliBundle *b);
/* The policy to verify with: policy_path's, or the bundle's own; PCR 15 = the recorded cluster
 * ID, as a live verify sets it. Logs its errors. */
int cli_bundle_policy(const CliBundle *b, const char *policy_path, AttestPolicy **ret);
/* Node i's recorded evidence verified again, offline: the binding recomputed from the recorded
 * nonce and key (atls_binding()), never read from the bundle. Verdict as attest_verify(); a
 * node without evidence fails (check "bundle-evidence"). */
int cli_bundle_verify_node(const CliBundle *b, size_t i, const AttestPolicy *p, time_t at,
                           AttestReport *rep, Diag *d);

/* verify --bundle: the cluster replay lives with verify --cluster (cloister-cluster.c). */
int cli_verify_bundle(const char *path, const char *policy_path, time_t at, OutputFormat output);
/* verify --cluster's collection and attestation, recorded into w and printed nowhere (policy
 * test --cluster). */
typedef struct RpcClientConfig RpcClientConfig;
int cli_verify_cluster_record(const char *url, const char *policy_path, const CliConfig *config,
                              const uint8_t cid[static 32], const RpcClientConfig *rc,
                              CliBundleWriter *w);
/* extra: members added to the -o json document ("bundle"), or NULL. */
int cli_verify_cluster_bundle(const CliBundle *b, const AttestPolicy *p, time_t at,
                              OutputFormat output, const json_t *extra);
