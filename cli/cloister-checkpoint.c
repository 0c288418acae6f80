/* SPDX-License-Identifier: Apache-2.0 */
/* Signed audit checkpoints, checked by the owner's CLI (docs/audit-log.md, "Signed checkpoints"),
 * and the highest signed head of each join service kept in the workspace. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-checkpoint.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"

#define STORE_VERSION 1

int cli_checkpoint_channel_signer(const uint8_t *evidence, size_t size,
                                  const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                                  size_t spki_size, const AttestPolicy *policy, time_t at,
                                  char ret[static AUDIT_SIGNER_HEX_SIZE], char *reason, size_t n)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        uint8_t binding[ATLS_BINDING_SIZE];
        Diag d;
        int r;

        diag_clear(&d);
        if (!evidence) {
                (void) snprintf(reason, n, "the join service presented no evidence");
                return -EPERM;
        }
        r = evidence_parse(evidence, size, &e, &d);
        if (r >= 0)
                r = atls_binding(e->variant, ATLS_ROLE_SERVER, nonce, spki, spki_size, binding);
        if (r >= 0)
                r = attest_verify(e, policy, binding, at, NULL, &d);
        if (r > 0)
                r = diag_fail(&d, -EPERM, "ak-activation", -1,
                              "akTrust ek-cert needs credential activation");
        if (r < 0) {
                (void) snprintf(reason, n, "the join service's own evidence does not verify: %s",
                                d.message[0] ? d.message : strerror(-r));
                return r;
        }
        r = audit_checkpoint_signer(e, ret);
        if (r < 0)
                (void) snprintf(reason, n,
                                "%s evidence carries no attestation key of its own: its audit "
                                "checkpoints cannot name their join service",
                                attest_variant_to_string(e->variant));
        return r;
}

int cli_checkpoint_check(const char *text, const char *signer, const AttestPolicy *policy,
                         time_t at, size_t entries, const char *last_hash, uint64_t log_size,
                         CliCheckpoint *ret, char *reason, size_t n)
{
        _cleanup_(audit_checkpoint_freep) AuditCheckpoint *c = NULL;
        Diag d;
        int r;

        diag_clear(&d);
        if (!text) {
                (void) snprintf(reason, n,
                                "the join service served no signed checkpoint: its log's head is "
                                "unsigned (an older join service, or its TPM failed to quote: see "
                                "its journal)");
                return -ENOENT;
        }
        r = audit_checkpoint_parse(text, strlen(text), "the audit checkpoint", &c, &d);
        if (r >= 0)
                r = audit_checkpoint_verify(c, policy, at, signer, &d);
        if (r >= 0)
                r = audit_checkpoint_check_head(c, entries, last_hash, log_size, &d);
        if (r < 0) {
                (void) snprintf(reason, n, "signed checkpoint refused: %s", d.message);
                return r;
        }
        *ret = (CliCheckpoint){ .ok = true, .seq = c->seq, .when = c->when };
        memcpy(ret->hash, c->hash, sizeof(ret->hash));
        memcpy(ret->time, c->time, sizeof(ret->time));
        (void) snprintf(ret->signer, sizeof(ret->signer), "%s", signer);
        return 0;
}

bool cli_checkpoint_find_entry(const char *text, size_t size, int64_t first_seq, int64_t seq,
                               char ret[static AUDIT_HASH_HEX_SIZE])
{
        int64_t at = first_seq;

        if (seq < first_seq)
                return false;
        for (const char *p = text, *end = text + size; p < end; at++) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
                _cleanup_(json_decrefp) json_t *e = NULL;
                const char *hash;

                if (at == seq) {
                        /* The chain check passed on these lines: seq and hash are well formed. */
                        if (json_parse_buffer(p, len, "audit entry", &e, NULL) < 0)
                                return false;
                        hash = json_string_value(json_object_get(e, "hash"));
                        if (!hash || strlen(hash) != AUDIT_HASH_HEX_SIZE - 1)
                                return false;
                        memcpy(ret, hash, AUDIT_HASH_HEX_SIZE);
                        return true;
                }
                p += len + 1;
        }
        return false;
}

int cli_checkpoint_store_load(const char *path, CliCheckpointStore *s)
{
        static const char *const top_keys[] = { "version", "joinServices", "clusterChains", NULL };
        static const char *const keys[] = { "signer", "joinService", "seq", "hash", "time", NULL };
        static const char *const chain_keys[] = { "clusterId", "seq", "hash", NULL };
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { .source = path, .path = "" };
        json_t *list = NULL, *chains = NULL, *x;
        int64_t version = 0;
        size_t i;
        Diag d;
        int r;

        *s = (CliCheckpointStore){};
        diag_clear(&d);
        ctx.diag = &d;
        r = json_parse_file(path, JSON_FILE_SIZE_MAX, &doc, &d);
        if (r == -ENOENT)
                return 0;
        if (r >= 0)
                r = json_expect_object(&ctx, doc);
        if (r >= 0)
                r = json_check_keys(&ctx, doc, top_keys);
        if (r >= 0)
                r = json_get_int(&ctx, doc, "version", true, STORE_VERSION, STORE_VERSION,
                                 &version);
        if (r >= 0)
                r = json_get_array(&ctx, doc, "joinServices", true, &list);
        if (r >= 0 && json_array_size(list) > CLI_CHECKPOINTS_MAX)
                r = diag_fail(&d, -EMSGSIZE, "checkpoints", -1, "%s: more than %d join services",
                              path, CLI_CHECKPOINTS_MAX);
        json_array_foreach (list, i, x) {
                CliCheckpointRecord *rec = &s->r[s->n];
                JsonCtx c = { .source = path, .path = ".joinServices[]", .diag = &d };
                const char *signer = NULL, *url = NULL, *hash = NULL, *time = NULL;

                if (r < 0)
                        break;
                r = json_expect_object(&c, x);
                if (r >= 0)
                        r = json_check_keys(&c, x, keys);
                if (r >= 0)
                        r = json_get_string(&c, x, "signer", true, &signer);
                if (r >= 0)
                        r = json_get_string(&c, x, "joinService", true, &url);
                if (r >= 0)
                        r = json_get_int(&c, x, "seq", true, 0, AUDIT_ENTRIES_MAX, &rec->seq);
                if (r >= 0)
                        r = json_get_string(&c, x, "hash", true, &hash);
                if (r >= 0)
                        r = json_get_string(&c, x, "time", true, &time);
                if (r < 0)
                        break;
                if (strlen(signer) != 64 || strlen(hash) != 64 || strlen(url) >= CLI_URL_MAX ||
                    strlen(time) != TIMESTAMP_UTC_SIZE - 1 ||
                    timestamp_parse_utc(time, &rec->when) < 0) {
                        r = diag_fail(&d, -EBADMSG, "checkpoints", -1,
                                      "%s: a join service's record is malformed", path);
                        break;
                }
                memcpy(rec->signer, signer, sizeof(rec->signer));
                memcpy(rec->hash, hash, sizeof(rec->hash));
                memcpy(rec->time, time, sizeof(rec->time));
                (void) snprintf(rec->url, sizeof(rec->url), "%s", url);
                s->n++;
        }
        /* Optional: written once a cluster chain in etcd verified. */
        if (r >= 0) {
                r = json_get_array(&ctx, doc, "clusterChains", false, &chains);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0 && json_array_size(chains) > CLI_CLUSTER_CHAINS_MAX)
                r = diag_fail(&d, -EMSGSIZE, "checkpoints", -1, "%s: more than %d cluster chains",
                              path, CLI_CLUSTER_CHAINS_MAX);
        json_array_foreach (chains, i, x) {
                CliChainRecord *rec = &s->chains[s->n_chains];
                JsonCtx c = { .source = path, .path = ".clusterChains[]", .diag = &d };
                const char *cid = NULL, *hash = NULL;

                if (r < 0)
                        break;
                r = json_expect_object(&c, x);
                if (r >= 0)
                        r = json_check_keys(&c, x, chain_keys);
                if (r >= 0)
                        r = json_get_string(&c, x, "clusterId", true, &cid);
                if (r >= 0)
                        r = json_get_int(&c, x, "seq", true, 1, AUDIT_ENTRIES_MAX, &rec->seq);
                if (r >= 0)
                        r = json_get_string(&c, x, "hash", true, &hash);
                if (r < 0)
                        break;
                if (strlen(cid) != 64 || strlen(hash) != 64) {
                        r = diag_fail(&d, -EBADMSG, "checkpoints", -1,
                                      "%s: a cluster chain's record is malformed", path);
                        break;
                }
                memcpy(rec->cluster_id, cid, sizeof(rec->cluster_id));
                memcpy(rec->hash, hash, sizeof(rec->hash));
                s->n_chains++;
        }
        if (r < 0)
                return log_error_errno(r,
                                       "%s. It holds the audit log heads this workspace has "
                                       "seen signed; restore it from a backup (removing it "
                                       "forgets them, and a rolled-back log would then go "
                                       "unnoticed).",
                                       d.message);
        return 0;
}

const CliCheckpointRecord *cli_checkpoint_store_find(const CliCheckpointStore *s,
                                                     const char *signer)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->r[i].signer, signer) == 0)
                        return &s->r[i];
        return NULL;
}

int cli_checkpoint_store_check(const CliCheckpointStore *s, const CliCheckpoint *c,
                               const char *seen_hash, char *reason, size_t n)
{
        const CliCheckpointRecord *rec = cli_checkpoint_store_find(s, c->signer);

        if (!rec)
                return 0;
        if (c->seq < rec->seq) {
                (void) snprintf(reason, n,
                                "rolled back: this workspace saw this join service sign entry "
                                "%" PRId64 " at %s, and its log now ends at entry %" PRId64
                                " (signed %s)",
                                rec->seq, rec->time, c->seq, c->time);
                return -ESTALE;
        }
        if (!seen_hash || strcmp(seen_hash, rec->hash) != 0) {
                (void) snprintf(reason, n,
                                "rewritten: entry %" PRId64 " is not the one this join service "
                                "signed at %s (as this workspace recorded it)",
                                rec->seq, rec->time);
                return -ESTALE;
        }
        if (c->when < rec->when) {
                (void) snprintf(reason, n,
                                "an older signed head: the checkpoint was signed at %s, and "
                                "this workspace saw one of this join service signed at %s: an "
                                "older copy of the log was restored",
                                c->time, rec->time);
                return -ESTALE;
        }
        return 0;
}

void cli_checkpoint_store_note(CliCheckpointStore *s, const CliCheckpoint *c, const char *url)
{
        CliCheckpointRecord *rec = (CliCheckpointRecord *) cli_checkpoint_store_find(s, c->signer);

        if (!c->ok)
                return;
        if (!rec) {
                if (s->n >= CLI_CHECKPOINTS_MAX) {
                        log_warning("%d join services recorded already: the audit head of %s is "
                                    "not recorded",
                                    CLI_CHECKPOINTS_MAX, url);
                        return;
                }
                rec = &s->r[s->n++];
        } else if (c->seq < rec->seq || (c->seq == rec->seq && c->when <= rec->when))
                return;
        memcpy(rec->signer, c->signer, sizeof(rec->signer));
        memcpy(rec->hash, c->hash, sizeof(rec->hash));
        memcpy(rec->time, c->time, sizeof(rec->time));
        rec->seq = c->seq;
        rec->when = c->when;
        (void) snprintf(rec->url, sizeof(rec->url), "%s", url);
        s->changed = true;
}

int cli_checkpoint_store_save(const char *path, const CliCheckpointStore *s)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *text = NULL;
        json_t *list = json_array();
        int r;

        doc = json_pack("{s:i,s:o}", "version", STORE_VERSION, "joinServices", list);
        if (!doc)
                return log_oom();
        for (size_t i = 0; i < s->n; i++)
                if (json_array_append_new(list,
                                          json_pack("{s:s,s:s,s:I,s:s,s:s}", "signer",
                                                    s->r[i].signer, "joinService", s->r[i].url,
                                                    "seq", (json_int_t) s->r[i].seq, "hash",
                                                    s->r[i].hash, "time", s->r[i].time)) < 0)
                        return log_oom();
        if (s->n_chains > 0) {
                json_t *chains = json_array();
                if (json_object_set_new(doc, "clusterChains", chains) < 0)
                        return log_oom();
                for (size_t i = 0; i < s->n_chains; i++)
                        if (json_array_append_new(chains, json_pack("{s:s,s:I,s:s}", "clusterId",
                                                                    s->chains[i].cluster_id, "seq",
                                                                    (json_int_t) s->chains[i].seq,
                                                                    "hash", s->chains[i].hash)) < 0)
                                return log_oom();
        }
        if (json_dump_pretty(doc, &text) < 0)
                return log_oom();
        r = write_file_atomic(path, text, strlen(text), 0644, WRITE_FILE_SYNC);
        if (r < 0)
                return log_error_errno(r, "Cannot record the signed audit heads in %s: %m", path);
        return 0;
}

const CliChainRecord *cli_checkpoint_store_find_chain(const CliCheckpointStore *s,
                                                      const char *cluster_id)
{
        for (size_t i = 0; i < s->n_chains; i++)
                if (strcmp(s->chains[i].cluster_id, cluster_id) == 0)
                        return &s->chains[i];
        return NULL;
}

void cli_checkpoint_store_note_chain(CliCheckpointStore *s, const char *cluster_id, int64_t seq,
                                     const char *hash)
{
        CliChainRecord *rec = (CliChainRecord *) cli_checkpoint_store_find_chain(s, cluster_id);

        if (seq < 1 || strlen(cluster_id) != 64 || strlen(hash) != 64)
                return;
        if (!rec) {
                if (s->n_chains >= CLI_CLUSTER_CHAINS_MAX) {
                        log_warning("%d cluster chains recorded already: the head of cluster "
                                    "%s is not recorded",
                                    CLI_CLUSTER_CHAINS_MAX, cluster_id);
                        return;
                }
                rec = &s->chains[s->n_chains++];
        } else if (seq <= rec->seq)
                return;
        memcpy(rec->cluster_id, cluster_id, sizeof(rec->cluster_id));
        memcpy(rec->hash, hash, sizeof(rec->hash));
        rec->seq = seq;
        s->changed = true;
}

int cli_checkpoints_path(const char *state_path, char *buf, size_t size)
{
        const char *slash = strrchr(state_path, '/');
        int n;

        if (slash)
                n = snprintf(buf, size, "%.*s/%s", (int) (slash - state_path), state_path,
                             CLI_CHECKPOINTS_FILE);
        else
                n = snprintf(buf, size, "%s", CLI_CHECKPOINTS_FILE);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}
