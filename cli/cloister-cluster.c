/* SPDX-License-Identifier: Apache-2.0 */
/* The whole cluster from outside: membership from the join services (each attested), then
 * every member attested with a fresh nonce, and every join service's audit chain checked. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli-bundle.h"
#include "cli-checkpoint.h"
#include "cli-json.h"
#include "cli-node-state.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/audit-log.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/mesh.h"
#include "cloister/rpc.h"

#define CLUSTER_NODES_MAX         256
#define CLUSTER_JOIN_SERVICES_MAX 16
#define REASON_MAX                512

typedef struct ClusterNode {
        char name[64], role[16], endpoint[CLI_URL_MAX], admitted[32];
        bool ok;
        bool unaudited; /* listed by a join service whose log holds no admission of it */
        bool in_etcd;   /* listed from the cluster's membership in etcd */
        char reasons[4][REASON_MAX];
        size_t n_reasons;
        json_t *checks;    /* -o json: every check of its attestation (docs/json.md) */
        json_t *versions;  /* what it reported it runs (docs/versions.md); NULL if nothing */
        const char *state; /* static: what it said it is (--bundle records it) */
        CliRecord rec;     /* --bundle: what its attestation was given */
        json_t *reattest;  /* status: its join service's re-attestation record, or NULL */
        /* the policy's measurement set its PCRs matched (an upgrade's policy), or "" */
        char image_set[ATTEST_SET_NAME_MAX + 1];
        char wg_key[48]; /* the WireGuard key its join service lists (docs/mesh.md), or "" */
        json_t *mesh;    /* status: its cloister0's peers as it reported them, checked; or NULL */
} ClusterNode;

typedef struct JoinServiceView {
        char url[CLI_URL_MAX], policy_digest[65], self[64];
        /* The owner's policy update it holds (docs/policy-update.md): 0 never pushed, -1 not
         * known (not reached, or a policy replaced by hand). */
        int64_t policy_version;
        /* The members it lists besides itself: each must have its admission in its log. */
        char listed[CLUSTER_NODES_MAX][64];
        size_t n_listed;
        size_t entries, refused;
        bool ok;
        bool etcd;           /* its membership is the cluster's in etcd (docs/membership.md) */
        char membership[16]; /* as it said: local, etcd, etcd-cache ("": not said) */
        json_t *etcd_health; /* etcd as it sees it ("etcd" of GET /v1/members), or NULL */
        char reason[REASON_MAX];
        /* --bundle: the log as read (whole pages from byte 0, up to CLI_BUNDLE_AUDIT_MAX) and
         * the head it came with */
        char *log, *head;
        size_t log_size;
        bool log_complete;
        /* Its signed checkpoint (docs/audit-log.md): as served (kept for --bundle), the evidence
         * of the handshake it came over and the key that names, what it said once checked, and
         * the hash of the entry this workspace last saw signed (want_seq; 0: none). */
        char *checkpoint;
        CliRecord channel;
        char signer[AUDIT_SIGNER_HEX_SIZE];
        CliCheckpoint cp;
        int64_t want_seq;
        char seen_hash[AUDIT_HASH_HEX_SIZE];
} JoinServiceView;

typedef struct ClusterView {
        ClusterNode nodes[CLUSTER_NODES_MAX];
        size_t n_nodes;
        JoinServiceView js[CLUSTER_JOIN_SERVICES_MAX];
        size_t n_js;
        bool recording; /* keep what a bundle needs */
        time_t at;      /* the verification time of every attestation (0: now) */
        /* What every node was verified as (NULL: not known). */
        const char *variant;
        /* The signed heads this workspace saw (verify --cluster), or NULL. */
        CliCheckpointStore *checkpoints;
        /* The cluster's one audit chain in etcd, read through one join service whose
         * membership is there (url), when any is: verify --cluster. */
        bool has_chain;
        JoinServiceView chain;
        char chain_head[AUDIT_HASH_HEX_SIZE]; /* the hash of its last entry, once it verified */
        char cid_hex[65];
} ClusterView;

static ClusterView *cluster_view_free(ClusterView *v)
{
        for (size_t i = 0; v && i < v->n_nodes; i++) {
                json_decref(v->nodes[i].checks);
                json_decref(v->nodes[i].versions);
                json_decref(v->nodes[i].reattest);
                json_decref(v->nodes[i].mesh);
                cli_record_done(&v->nodes[i].rec);
        }
        for (size_t i = 0; v && i < v->n_js; i++) {
                free(v->js[i].log);
                free(v->js[i].head);
                free(v->js[i].checkpoint);
                json_decref(v->js[i].etcd_health);
                cli_record_done(&v->js[i].channel);
        }
        free(v);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ClusterView *, cluster_view_free);

int cli_state_load(const char *path, uint8_t cid[static CLUSTER_ID_SIZE], char *endpoint,
                   size_t endpoint_size)
{
        _cleanup_(json_decrefp) json_t *st = NULL;
        JsonCtx ctx = { .source = path, .path = "" };
        const char *hex = NULL, *ep = NULL;
        Diag d;
        int r;

        diag_clear(&d);
        ctx.diag = &d;
        r = json_parse_file(path, JSON_FILE_SIZE_MAX, &st, &d);
        if (r >= 0)
                r = json_get_string(&ctx, st, "clusterId", true, &hex);
        if (r >= 0)
                r = json_get_string(&ctx, st, "endpoint", true, &ep);
        if (r < 0)
                return log_error_errno(r, "%s (written by 'cloister apply').", d.message);
        if (hex_decode_exact(hex, cid, CLUSTER_ID_SIZE) < 0)
                return log_error_errno(-EBADMSG, "%s: clusterId is not 64 hex digits.", path);
        if (endpoint)
                (void) snprintf(endpoint, endpoint_size, "%s", ep);
        return 0;
}

static void set_reason(JoinServiceView *js, const char *fmt, ...) _printf_(2, 3);

static void set_reason(JoinServiceView *js, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(js->reason, sizeof(js->reason), fmt, ap);
        va_end(ap);
}

static bool join_service_known(const ClusterView *v, const char *url)
{
        for (size_t i = 0; i < v->n_js; i++)
                if (strcmp(v->js[i].url, url) == 0)
                        return true;
        return false;
}

static ClusterNode *node_find(ClusterView *v, const char *name)
{
        for (size_t i = 0; i < v->n_nodes; i++)
                if (strcmp(v->nodes[i].name, name) == 0)
                        return &v->nodes[i];
        return NULL;
}

static void add_reason(ClusterNode *n, const char *fmt, ...) _printf_(2, 3);

static void add_reason(ClusterNode *n, const char *fmt, ...)
{
        va_list ap;

        if (n->n_reasons >= ELEMENTSOF(n->reasons))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(n->reasons[n->n_reasons++], REASON_MAX, fmt, ap);
        va_end(ap);
}

/* Marks the members js lists whose admission is in these (verified, whole) lines, in order: a
 * removal or eviction of a member after its admission unmarks it. */
static void note_admissions(const JoinServiceView *js, const char *text, size_t size,
                            bool found[static CLUSTER_NODES_MAX])
{
        for (const char *p = text, *end = text + size; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
                _cleanup_(json_decrefp) json_t *e = NULL;
                const char *line = p, *node, *event;
                bool admitted;

                p = line + len + 1;
                if (json_parse_buffer(line, len, "audit entry", &e, NULL) < 0)
                        continue;
                event = json_string_value(json_object_get(e, "event")) ?: "";
                admitted = strcmp(event, "admission") == 0 &&
                           strcmp(json_string_value(json_object_get(e, "verdict")) ?: "",
                                  "admitted") == 0;
                /* A removal or eviction after it undoes an admission: a member listed since
                 * must have been admitted again (a record written back by hand has not). */
                if (!admitted && strcmp(event, "removal") != 0 && strcmp(event, "eviction") != 0)
                        continue;
                node = json_string_value(json_object_get(e, "node")) ?: "";
                for (size_t k = 0; k < js->n_listed; k++)
                        if (strcmp(js->listed[k], node) == 0)
                                found[k] = admitted;
        }
}

/* A member whose admission is not in the log of the join service that lists it: the
 * membership and the log disagree (an admission recorded without its audit entry, or a
 * membership file edited). */
static void report_unaudited(ClusterView *v, const JoinServiceView *js,
                             const bool found[static CLUSTER_NODES_MAX])
{
        for (size_t k = 0; k < js->n_listed; k++) {
                ClusterNode *n = found[k] ? NULL : node_find(v, js->listed[k]);
                if (n) {
                        n->unaudited = true;
                        add_reason(n,
                                   "member of %s, but its audit log holds no admission of it: "
                                   "the membership and the log disagree",
                                   js->url);
                }
        }
}

/* The head file as the last page came with it: must name the chain's last entry. */
static void check_head(JoinServiceView *js, const json_t *head_json, const AuditLogSummary *sum)
{
        static const char *const head_keys[] = { "seq", "hash", NULL };
        _cleanup_(json_decrefp) json_t *head = NULL;
        const char *head_text = json_string_value(head_json), *hash = NULL;
        int64_t seq = 0;
        Diag d;

        diag_clear(&d);
        if (sum->entries == 0 && !head_text) {
                js->ok = true;
                return;
        }
        {
                JsonCtx ctx = { .source = "audit head", .path = "", .diag = &d };
                if (!head_text ||
                    json_parse_buffer(head_text, strlen(head_text), "audit head", &head, &d) < 0 ||
                    json_check_keys(&ctx, head, head_keys) < 0 ||
                    json_get_int(&ctx, head, "seq", true, 0, INT64_MAX, &seq) < 0 ||
                    json_get_string(&ctx, head, "hash", true, &hash) < 0) {
                        set_reason(js, "the audit head is missing or malformed");
                        return;
                }
        }
        /* The head must name the last entry. (An append cut short between the line and the head
         * shows here until the next append repairs the head: a false alarm, on the safe side.) */
        if ((size_t) seq != sum->entries || strcmp(hash, sum->head) != 0) {
                set_reason(js,
                           "the audit log ends at entry %zu, its head names entry %lld: "
                           "entries were removed from the end",
                           sum->entries, (long long) seq);
                return;
        }
        js->ok = true;
}

/* The chain of one join service's audit log, checked here (the CLI trusts no summary). The log
 * comes in pages of whole entries (GET /v1/audit?offset=N); each page is checked in its place
 * in the chain as it arrives, so a log of any size is read in bounded memory. The last page
 * comes with the head file as of the same moment. The offsets are the CLI's own: a page that
 * starts elsewhere than asked, or holds a part of an entry, breaks the chain. */
/* --bundle: the verified part of a page appended to what the bundle keeps of this log. */
static void keep_page(const ClusterView *v, JoinServiceView *js, const char *text, size_t size)
{
        char *n;

        if (!v->recording || !js->log_complete)
                return;
        if (js->log_size + size > CLI_BUNDLE_AUDIT_MAX ||
            !(n = realloc(js->log, js->log_size + size + 1))) {
                /* Too long to keep: the bundle keeps its head only, and says so. */
                js->log_complete = false;
                free(js->log);
                js->log = NULL;
                js->log_size = 0;
                return;
        }
        memcpy(n + js->log_size, text, size);
        js->log = n;
        js->log_size += size;
        js->log[js->log_size] = 0;
}

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* The signed checkpoint served with (or recorded with) a log whose chain and head passed: signed
 * by the key of the join service that served it (js->signer), naming the log's last entry, and
 * (live) no older than the head this workspace last saw that key sign. */
static void check_checkpoint(ClusterView *v, JoinServiceView *js, const AttestPolicy *policy,
                             const char *text, const AuditLogSummary *sum, uint64_t log_size)
{
        char reason[REASON_MAX];

        if (!js->ok)
                return;
        js->ok = false;
        if (cli_checkpoint_check(text, js->signer, policy, v->at, sum->entries,
                                 sum->entries > 0 ? sum->head : ZERO_HASH, log_size, &js->cp,
                                 reason, sizeof(reason)) < 0) {
                set_reason(js, "%s", reason);
                return;
        }
        if (v->checkpoints &&
            cli_checkpoint_store_check(v->checkpoints, &js->cp,
                                       js->want_seq == 0 ? ZERO_HASH : js->seen_hash, reason,
                                       sizeof(reason)) < 0) {
                js->cp.ok = false;
                set_reason(js, "%s", reason);
                return;
        }
        js->ok = true;
}

/* The key of the join service a page came from (its handshake's evidence): every page must come
 * from the same one, and it names the head this workspace last saw it sign. */
static int note_signer(ClusterView *v, JoinServiceView *js, const AttestPolicy *policy)
{
        char signer[AUDIT_SIGNER_HEX_SIZE], reason[REASON_MAX];
        const CliCheckpointRecord *rec;

        if (cli_checkpoint_channel_signer(js->channel.present ? js->channel.evidence : NULL,
                                          js->channel.evidence_size, js->channel.nonce,
                                          js->channel.spki, js->channel.spki_size, policy, v->at,
                                          signer, reason, sizeof(reason)) < 0) {
                set_reason(js, "%s", reason);
                return -EPERM;
        }
        if (js->signer[0] && strcmp(js->signer, signer) != 0) {
                set_reason(js,
                           "the audit log's pages came from different join services (keys "
                           "%.16s... and %.16s...)",
                           js->signer, signer);
                return -EPERM;
        }
        if (!js->signer[0]) {
                memcpy(js->signer, signer, sizeof(signer));
                rec = v->checkpoints ? cli_checkpoint_store_find(v->checkpoints, signer) : NULL;
                js->want_seq = rec ? rec->seq : 0;
        }
        return 0;
}

static void check_audit(const AttestPolicy *member, const RpcClientConfig *rc, ClusterView *v,
                        JoinServiceView *js)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        PolicyVerifier pv = { .policy = member, .at = v->at };
        AtlsVerifier verifier = policy_verifier(&pv);
        bool found[CLUSTER_NODES_MAX] = {};
        AuditLogSummary sum;
        AuditLogChain chain;
        uint64_t offset = 0;
        size_t pages = 0;

        js->ok = false;
        js->log_complete = true;
        /* Its own context, recording each handshake's evidence: the key that must have signed
         * the checkpoint. */
        cli_record_attach(&verifier, &js->channel);
        if (atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls) < 0) {
                set_reason(js, "cannot set up aTLS");
                return;
        }
        audit_log_chain_init(&chain, js->url);
        for (;;) {
                _cleanup_(json_decrefp) json_t *resp = NULL;
                char path[64];
                const char *text;
                size_t size, used = 0;
                json_int_t got_offset;
                bool more;
                long status = 0;
                Diag d;

                diag_clear(&d);
                (void) snprintf(path, sizeof(path), "/v1/audit?offset=%" PRIu64, offset);
                if (rpc_call(atls, rc, "GET", js->url, path, NULL, true, &status, &resp, &d) < 0 ||
                    status != 200) {
                        set_reason(js, "audit log not readable (from byte %" PRIu64 "): %s", offset,
                                   d.message[0] ? d.message : "HTTP error");
                        return;
                }
                text = json_string_value(json_object_get(resp, "log"));
                size = json_string_length(json_object_get(resp, "log"));
                got_offset = json_integer_value(json_object_get(resp, "offset"));
                more = json_is_true(json_object_get(resp, "more"));
                if (!text || !json_is_boolean(json_object_get(resp, "more")) ||
                    !json_is_integer(json_object_get(resp, "offset")) ||
                    got_offset != (json_int_t) offset) {
                        set_reason(js,
                                   "the audit log's page from byte %" PRIu64
                                   " is malformed or starts elsewhere",
                                   offset);
                        return;
                }
                if (memchr(text, '\0', size)) {
                        set_reason(js, "audit chain broken: %s: a NUL byte in the log", js->url);
                        return;
                }
                if (note_signer(v, js, member) < 0)
                        return;
                if (js->want_seq > 0 && !js->seen_hash[0])
                        (void) cli_checkpoint_find_entry(text, size, (int64_t) chain.lines + 1,
                                                         js->want_seq, js->seen_hash);
                if (audit_log_chain_feed(&chain, text, size, !more, &used, &d) < 0) {
                        set_reason(js, "audit chain broken: %s", d.message);
                        return;
                }
                if (more && (used == 0 || used != size)) {
                        set_reason(js,
                                   "the audit log's page from byte %" PRIu64
                                   " does not end with a whole entry",
                                   offset);
                        return;
                }
                note_admissions(js, text, used, found);
                keep_page(v, js, text, used);
                if (!more) {
                        if (v->recording && json_string_value(json_object_get(resp, "head")))
                                js->head = strdup(json_string_value(json_object_get(resp, "head")));
                        audit_log_chain_summary(&chain, &sum);
                        js->entries = sum.entries;
                        js->refused = sum.refused;
                        /* With etcd a join service's own log holds what it wrote itself: the
                         * members' admissions are checked in the cluster's chain instead. */
                        if (!js->etcd)
                                report_unaudited(v, js, found);
                        check_head(js, json_object_get(resp, "head"), &sum);
                        text = json_string_value(json_object_get(resp, "checkpoint"));
                        if (v->recording && text)
                                js->checkpoint = strdup(text);
                        check_checkpoint(v, js, member, text, &sum, offset + used);
                        return;
                }
                offset += used;
                if (++pages % 16 == 0)
                        fprintf(stderr, "audit log of %s: %zu entries checked so far...\n", js->url,
                                chain.lines);
        }
}

/* The cluster's one audit chain in etcd (docs/membership.md), through the first join service
 * whose membership is there, one page of entries at a time (GET /v1/audit?chain=cluster&seq=N),
 * each checked in its place in the chain; then its head, and that every member listed from etcd
 * has its admission in it. */
/* The chain (verified, its head naming its last entry) must still hold the last entry the join
 * service read through wrote itself (js_seq, its hash js_hash; found: the hash at that place)
 * and the last head this workspace saw verify (rec): a rollback of etcd to an older consistent
 * state, or entries removed from the end with the chain and head recomputed, otherwise passes. */
static void check_chain_rollback(JoinServiceView *c, const AuditLogSummary *sum, int64_t js_seq,
                                 const char *js_hash, const char *js_found,
                                 const CliChainRecord *rec, const char *rec_found)
{
        if (js_seq > 0 && (int64_t) sum->entries < js_seq) {
                c->ok = false;
                set_reason(c,
                           "rolled back: the join service it was read through wrote entry %" PRId64
                           " itself, and the chain in etcd now ends at entry %zu: etcd was "
                           "restored to an older state or entries were removed from its end",
                           js_seq, sum->entries);
                return;
        }
        if (js_seq > 0 && strcmp(js_found, js_hash) != 0) {
                c->ok = false;
                set_reason(c,
                           "rewritten: entry %" PRId64 " is not the one the join service it was "
                           "read through wrote: etcd was restored to another state or the "
                           "chain recomputed",
                           js_seq);
                return;
        }
        if (rec && (int64_t) sum->entries < rec->seq) {
                c->ok = false;
                set_reason(c,
                           "rolled back: this workspace saw the chain in etcd end at entry "
                           "%" PRId64 " in an earlier verify, and it now ends at entry %zu: etcd "
                           "was restored to an older state or entries were removed from its end",
                           rec->seq, sum->entries);
                return;
        }
        if (rec && strcmp(rec_found, rec->hash) != 0) {
                c->ok = false;
                set_reason(c,
                           "rewritten: entry %" PRId64 " is not the one this workspace saw in an "
                           "earlier verify: etcd was restored to another state or the chain "
                           "recomputed",
                           rec->seq);
        }
}

static void check_cluster_chain(const AttestPolicy *member, const RpcClientConfig *rc,
                                ClusterView *v)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        PolicyVerifier pv = { .policy = member, .at = v->at };
        AtlsVerifier verifier = policy_verifier(&pv);
        JoinServiceView *c = &v->chain;
        const JoinServiceView *via = NULL;
        bool found[CLUSTER_NODES_MAX] = {};
        /* The heads the chain must still hold (docs/membership.md, "Rollback of etcd"): the last
         * entry the join service read through wrote itself, as it says on the first page, and
         * the last this workspace saw verify; their hashes as found in the chain. */
        const CliChainRecord *rec =
                v->checkpoints ? cli_checkpoint_store_find_chain(v->checkpoints, v->cid_hex) : NULL;
        char js_hash[AUDIT_HASH_HEX_SIZE] = "", js_found[AUDIT_HASH_HEX_SIZE] = "",
             rec_found[AUDIT_HASH_HEX_SIZE] = "";
        int64_t js_seq = -1;
        AuditLogSummary sum;
        AuditLogChain ch;
        int64_t seq = 1;

        for (size_t i = 0; !via && i < v->n_js; i++)
                if (strcmp(v->js[i].membership, "etcd") == 0)
                        via = &v->js[i];
        if (!via)
                return;
        v->has_chain = true;
        *c = (JoinServiceView){};
        (void) snprintf(c->url, sizeof(c->url), "%s", via->url);
        for (size_t i = 0; i < v->n_nodes; i++)
                if (v->nodes[i].in_etcd && c->n_listed < CLUSTER_NODES_MAX)
                        (void) snprintf(c->listed[c->n_listed++], 64, "%s", v->nodes[i].name);
        if (atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls) < 0) {
                set_reason(c, "cannot set up aTLS");
                return;
        }
        audit_log_chain_init(&ch, "the cluster's audit chain in etcd");
        for (;;) {
                _cleanup_(json_decrefp) json_t *resp = NULL;
                const json_t *page = NULL;
                char path[64];
                const char *text;
                size_t size, used = 0;
                long status = 0;
                bool more;
                Diag d;

                diag_clear(&d);
                (void) snprintf(path, sizeof(path), "/v1/audit?chain=cluster&seq=%" PRId64, seq);
                if (rpc_call(atls, rc, "GET", c->url, path, NULL, true, &status, &resp, &d) < 0 ||
                    status != 200) {
                        const char *detail = json_string_value(json_object_get(resp, "detail"));
                        set_reason(c, "not readable (from entry %" PRId64 "): %s", seq,
                                   d.message[0] ? d.message : detail ?: "HTTP error");
                        return;
                }
                page = json_object_get(resp, "log");
                text = json_string_value(page);
                size = json_string_length(page);
                more = json_is_true(json_object_get(resp, "more"));
                if (!text || !json_is_boolean(json_object_get(resp, "more")) ||
                    json_integer_value(json_object_get(resp, "seq")) != seq ||
                    memchr(text, '\0', size)) {
                        set_reason(c,
                                   "its page from entry %" PRId64 " is malformed or starts "
                                   "elsewhere",
                                   seq);
                        return;
                }
                if (js_seq < 0) {
                        const json_t *seen = json_object_get(resp, "seen");
                        const char *h = json_string_value(json_object_get(seen, "hash"));
                        json_int_t n = json_integer_value(json_object_get(seen, "seq"));

                        js_seq = 0;
                        if (seen && !json_is_null(seen) &&
                            (!h || strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64 ||
                             n < 1 || n > (json_int_t) AUDIT_ENTRIES_MAX)) {
                                set_reason(c, "its page says malformed what it wrote last");
                                return;
                        }
                        if (h) {
                                js_seq = (int64_t) n;
                                memcpy(js_hash, h, sizeof(js_hash));
                        }
                }
                if (audit_log_chain_feed(&ch, text, size, !more, &used, &d) < 0) {
                        set_reason(c, "audit chain broken: %s", d.message);
                        return;
                }
                if (js_seq > 0 && !js_found[0])
                        (void) cli_checkpoint_find_entry(text, used, seq, js_seq, js_found);
                if (rec && !rec_found[0])
                        (void) cli_checkpoint_find_entry(text, used, seq, rec->seq, rec_found);
                if (used != size) {
                        set_reason(c,
                                   "its page from entry %" PRId64 " does not end with a whole "
                                   "entry",
                                   seq);
                        return;
                }
                /* A page that says more follows must move on (empty entries in etcd would
                 * serve the same page again and again). */
                if (more && used == 0) {
                        set_reason(c,
                                   "audit chain broken: its page from entry %" PRId64
                                   " holds no entry but says more follow (entries emptied in "
                                   "etcd?)",
                                   seq);
                        return;
                }
                note_admissions(c, text, used, found);
                if (!more) {
                        audit_log_chain_summary(&ch, &sum);
                        c->entries = sum.entries;
                        c->refused = sum.refused;
                        for (size_t k = 0; k < c->n_listed; k++) {
                                ClusterNode *n = found[k] ? NULL : node_find(v, c->listed[k]);
                                if (n) {
                                        n->unaudited = true;
                                        add_reason(n, "member of the cluster's membership in etcd, "
                                                      "but the cluster's audit chain holds no "
                                                      "admission of it: the membership and the "
                                                      "chain disagree");
                                }
                        }
                        check_head(c, json_object_get(resp, "head"), &sum);
                        if (c->ok)
                                check_chain_rollback(c, &sum, js_seq, js_hash, js_found, rec,
                                                     rec_found);
                        if (c->ok)
                                memcpy(v->chain_head, sum.head, sizeof(v->chain_head));
                        return;
                }
                seq = (int64_t) ch.lines + 1;
        }
}

/* Breadth-first over the control planes: each one's join service names the members it
 * admitted, control planes among them serve joins too. */
static int collect(const char *start, const AttestPolicy *member, const RpcClientConfig *rc,
                   ClusterView *v)
{
        PolicyVerifier pv = { .policy = member, .at = v->at };
        AtlsVerifier verifier = policy_verifier(&pv);
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        int r;

        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls);
        if (r < 0)
                return log_error_errno(r, "Cannot set up aTLS: %m");
        (void) snprintf(v->js[v->n_js++].url, CLI_URL_MAX, "%s", start);
        for (size_t k = 0; k < v->n_js; k++) {
                JoinServiceView *js = &v->js[k];
                _cleanup_(json_decrefp) json_t *resp = NULL;
                json_t *list, *m;
                long status = 0;
                size_t i;
                Diag d;

                diag_clear(&d);
                r = rpc_call(atls, rc, "GET", js->url, "/v1/members", NULL, true, &status, &resp,
                             &d);
                if (r < 0 || status != 200) {
                        char msg[REASON_MAX];
                        diag_format(&d, msg, sizeof(msg));
                        set_reason(js, "membership not readable: %s", r < 0 ? msg : "HTTP error");
                        if (k == 0)
                                return log_error_errno(r < 0 ? r : -EPROTO,
                                                       "%s: cannot read the cluster's membership: "
                                                       "%s",
                                                       js->url, js->reason);
                        continue;
                }
                (void) snprintf(js->policy_digest, sizeof(js->policy_digest), "%s",
                                json_string_value(json_object_get(resp, "policyDigest")) ?: "");
                (void) snprintf(js->self, sizeof(js->self), "%s",
                                json_string_value(json_object_get(resp, "self")) ?: "");
                (void) snprintf(js->membership, sizeof(js->membership), "%s",
                                json_string_value(json_object_get(resp, "membership")) ?: "");
                /* "etcd-cache": etcd did not answer it, it listed its last copy. */
                js->etcd = strncmp(js->membership, "etcd", 4) == 0;
                if (json_is_object(json_object_get(resp, "etcd"))) {
                        json_decref(js->etcd_health);
                        js->etcd_health = json_incref(json_object_get(resp, "etcd"));
                }
                js->policy_version = json_is_integer(json_object_get(resp, "policyVersion"))
                                             ? (int64_t) json_integer_value(
                                                       json_object_get(resp, "policyVersion"))
                                             : -1;
                list = json_object_get(resp, "members");
                json_array_foreach (list, i, m) {
                        const char *name = json_string_value(json_object_get(m, "name"));
                        const char *role = json_string_value(json_object_get(m, "role"));
                        const char *ep = json_string_value(json_object_get(m, "endpoint"));
                        const char *adm = json_string_value(json_object_get(m, "admitted"));
                        ClusterNode *n;
                        char url[CLI_URL_MAX];

                        if (!name || !role || !ep || strlen(name) >= sizeof(n->name) ||
                            strlen(ep) > 260)
                                continue;
                        (void) snprintf(url, sizeof(url), "https://%s", ep);
                        n = node_find(v, name);
                        if (!n) {
                                if (v->n_nodes >= CLUSTER_NODES_MAX)
                                        return log_error_errno(-E2BIG,
                                                               "More than %d members: not "
                                                               "supported.",
                                                               CLUSTER_NODES_MAX);
                                n = &v->nodes[v->n_nodes++];
                                (void) snprintf(n->name, sizeof(n->name), "%s", name);
                        }
                        if (strcmp(name, js->self) != 0 && js->n_listed < CLUSTER_NODES_MAX)
                                (void) snprintf(js->listed[js->n_listed++], 64, "%s", name);
                        n->in_etcd = n->in_etcd || js->etcd;
                        (void) snprintf(n->role, sizeof(n->role), "%s", role);
                        (void) snprintf(n->endpoint, sizeof(n->endpoint), "%s", url);
                        (void) snprintf(n->admitted, sizeof(n->admitted), "%s", adm ?: "");
                        {
                                const char *wg =
                                        json_string_value(json_object_get(m, "wgPublicKey"));
                                (void) snprintf(n->wg_key, sizeof(n->wg_key), "%s",
                                                wg && strlen(wg) < sizeof(n->wg_key) ? wg : "");
                        }
                        if (json_is_object(json_object_get(m, "reattestation"))) {
                                json_decref(n->reattest);
                                n->reattest = json_incref(json_object_get(m, "reattestation"));
                        }
                        if (strcmp(role, "control-plane") == 0 && !join_service_known(v, url) &&
                            v->n_js < CLUSTER_JOIN_SERVICES_MAX)
                                (void) snprintf(v->js[v->n_js++].url, CLI_URL_MAX, "%s", url);
                }
                check_audit(member, rc, v, js);
        }
        return 0;
}

/* A node's attestation report into its reasons and checks. */
static void node_take_report(ClusterNode *n, const AttestReport *rep, int r, const Diag *d)
{
        for (size_t k = 0; k < rep->n_checks; k++)
                if (rep->checks[k].status == CHECK_FAIL)
                        add_reason(n, "%s: expected %s, actual %s", rep->checks[k].detail,
                                   rep->checks[k].expected[0] ? rep->checks[k].expected : "-",
                                   rep->checks[k].actual[0] ? rep->checks[k].actual : "-");
        if (rep->n_checks > 0) {
                n->checks = json_array();
                for (size_t k = 0; n->checks && k < rep->n_checks; k++) {
                        const CheckResult *ck = &rep->checks[k];
                        (void) json_array_append_new(n->checks,
                                                     result_check_new(ck->name, ck->index,
                                                                      cli_check_result(ck->status),
                                                                      ck->enforced, ck->expected,
                                                                      ck->actual, ck->detail));
                }
        }
        if (!n->ok && n->n_reasons == 0) {
                char msg[REASON_MAX];
                diag_format(d, msg, sizeof(msg));
                add_reason(n, "%s", r < 0 ? msg : "the node answered an HTTP error");
        }
}

/* The mesh (docs/mesh.md): the WireGuard key the member attests, asked for on a connection of
 * its own (never recorded in a bundle), equals the key its join service lists. */
static void check_mesh_key(ClusterNode *n, const AttestPolicy *member, time_t at,
                           const RpcClientConfig *rc)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *resp = NULL;
        PolicyVerifier pv = { .policy = member, .at = at };
        AtlsVerifier verifier = policy_verifier(&pv);
        uint8_t key[MESH_KEY_SIZE];
        char text[MESH_KEY_BASE64 + 1] = "";
        long status = 0;
        bool has;
        Diag d;
        int r;

        diag_clear(&d);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls);
        if (r >= 0)
                r = atls_context_request_wg_key(atls);
        if (r >= 0)
                r = rpc_call(atls, rc, "GET", n->endpoint, "/v1/node", NULL, true, &status, &resp,
                             &d);
        if (r < 0) {
                n->ok = false;
                add_reason(n, "its WireGuard key could not be attested: %s", d.message);
                return;
        }
        has = atls_context_last_peer_wg_key(atls, key);
        if (has)
                mesh_key_to_base64(key, text);
        if (n->wg_key[0] && !has) {
                n->ok = false;
                add_reason(n, "its join service lists WireGuard key %s, the member attests none",
                           n->wg_key);
        } else if (n->wg_key[0] && strcmp(text, n->wg_key) != 0) {
                n->ok = false;
                add_reason(n, "its join service lists WireGuard key %s, the member attests %s",
                           n->wg_key, text);
        }
}

/* The "mesh" a node's GET /v1/node reported (docs/mesh.md, "Status"): the node's own word, over
 * its attested channel, still shape-checked before it is shown. Peers are named by the member the
 * listing gives their key; a report that is not the expected shape is shown as such. */
static json_t *node_mesh(const ClusterView *v, const json_t *reported)
{
        _cleanup_(json_decrefp) json_t *out = NULL;
        const json_t *peers = json_object_get(reported, "peers"), *p;
        const char *error = json_string_value(json_object_get(reported, "error"));
        json_t *list;
        size_t i;

        if (!reported)
                return NULL;
        if (error)
                return json_pack("{s:s%}", "error", error, strnlen(error, REASON_MAX - 1));
        if (!json_is_array(peers) || json_array_size(peers) > MESH_PEERS_MAX)
                return json_pack("{s:s}", "error", "the node's mesh report is malformed");
        list = json_array();
        out = json_pack("{s:o}", "peers", list);
        if (!out)
                return NULL;
        json_array_foreach (peers, i, p) {
                const char *key = json_string_value(json_object_get(p, "publicKey"));
                const json_t *ep = json_object_get(p, "endpoint");
                const json_t *hs = json_object_get(p, "latestHandshake"),
                             *rx = json_object_get(p, "rxBytes"),
                             *tx = json_object_get(p, "txBytes");
                const char *name = NULL;
                uint8_t raw[MESH_KEY_SIZE];

                if (!key || mesh_key_from_base64(key, raw) < 0 || strlen(key) != MESH_KEY_BASE64 ||
                    !(json_is_null(ep) ||
                      (json_is_string(ep) && mesh_endpoint_ok(json_string_value(ep)))) ||
                    !json_is_integer(hs) || json_integer_value(hs) < 0 || !json_is_integer(rx) ||
                    json_integer_value(rx) < 0 || !json_is_integer(tx) ||
                    json_integer_value(tx) < 0)
                        return json_pack("{s:s}", "error", "the node's mesh report is malformed");
                for (size_t k = 0; k < v->n_nodes && !name; k++)
                        if (strcmp(v->nodes[k].wg_key, key) == 0)
                                name = v->nodes[k].name;
                if (json_array_append_new(
                            list, json_pack("{s:s,s:o,s:O,s:O,s:O,s:O}", "publicKey", key, "member",
                                            name ? json_string(name) : json_null(), "endpoint", ep,
                                            "latestHandshake", hs, "rxBytes", rx, "txBytes", tx)) <
                    0)
                        return NULL;
        }
        return TAKE_PTR(out);
}

/* Each member, attested now with its own fresh nonce. */
static void attest_nodes(ClusterView *v, const AttestPolicy *member, const char *cid_hex,
                         const RpcClientConfig *rc, bool mesh)
{
        for (size_t i = 0; i < v->n_nodes; i++) {
                ClusterNode *n = &v->nodes[i];
                _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
                _cleanup_(json_decrefp) json_t *resp = NULL;
                AttestReport rep = {};
                PolicyVerifier pv = { .policy = member, .report = &rep, .at = v->at };
                AtlsVerifier verifier = policy_verifier(&pv);
                long status = 0;
                Diag d;
                int r;

                cli_record_attach(&verifier, v->recording ? &n->rec : NULL);
                diag_clear(&d);
                r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls);
                if (r >= 0)
                        r = rpc_call(atls, rc, "GET", n->endpoint, "/v1/node", NULL, true, &status,
                                     &resp, &d);
                n->ok = r >= 0 && status == 200 && !n->unaudited;
                if (r >= 0 && status == 200) {
                        n->versions = cli_node_versions(n->endpoint, resp);
                        n->state = cli_node_state_name(resp);
                }
                if (n->ok && status == 200)
                        n->mesh = node_mesh(v, json_object_get(resp, "mesh"));
                /* The node that attested must say it is this member of this cluster: an address
                 * the host re-routed to another (healthy) member does not pass for it. */
                if (n->ok) {
                        const char *who = json_string_value(json_object_get(resp, "node"));
                        const char *cid = json_string_value(json_object_get(resp, "clusterId"));
                        if (!who || strcmp(who, n->name) != 0 || !cid ||
                            strcmp(cid, cid_hex) != 0) {
                                n->ok = false;
                                add_reason(n,
                                           "the node at %s says it is %s of cluster %.16s..., "
                                           "not this member",
                                           n->endpoint, who ?: "nobody", cid ?: "none");
                        }
                }
                (void) snprintf(n->image_set, sizeof(n->image_set), "%s", rep.matched_set);
                if (mesh && n->ok && n->wg_key[0])
                        check_mesh_key(n, member, v->at, rc);
                node_take_report(n, &rep, r, &d);
                attest_report_done(&rep);
        }
}

/* Under a policy of several measurement sets (an upgrade under way, docs/upgrade.md): which image
 * each node's attested PCRs match. Nothing when the policy has no sets. */
static void print_image_sets(const ClusterView *v)
{
        bool any = false;

        for (size_t i = 0; i < v->n_nodes; i++)
                any |= v->nodes[i].image_set[0] != '\0';
        if (!any)
                return;
        printf("\nimages (the policy's measurement set each node's attested PCRs match):\n");
        for (size_t i = 0; i < v->n_nodes; i++)
                printf("  %-24s %s\n", v->nodes[i].name,
                       v->nodes[i].image_set[0] ? v->nodes[i].image_set : "(none matched)");
}

/* Which kind of image each node runs (image/README.md, "Kubernetes"), as its os-release says
 * (covered by the root hash its PCRs attest), and the kind of the measurements the configuration
 * took: a test image is named as such, never passed off as a cluster for production. */
static void print_image_kinds(const ClusterView *v, const CliConfig *config)
{
        const CliMeasurementsSource *src = &config->measurements_source;

        for (size_t i = 0; i < v->n_nodes; i++) {
                const ClusterNode *n = &v->nodes[i];
                MeasurementsImageKind k =
                        n->ok ? cli_node_image_kind(n->versions) : MEASUREMENTS_IMAGE_KIND_UNKNOWN;
                const char *im = json_string_value(json_object_get(n->versions, "image"));

                if (k == MEASUREMENTS_IMAGE_KIND_TEST)
                        printf("%s: image %s%s\n", n->name, im ?: "-",
                               measurements_image_kind_note(k));
        }
        if (src->present && src->image_kind == MEASUREMENTS_IMAGE_KIND_TEST)
                printf("the configuration's measurements are of image %s%s\n", src->image_version,
                       measurements_image_kind_note(MEASUREMENTS_IMAGE_KIND_TEST));
}

static int member_policy(const char *policy_path, const CliConfig *config,
                         const uint8_t cid[static CLUSTER_ID_SIZE], AttestPolicy **ret)
{
        Diag d;
        int r;

        diag_clear(&d);
        r = cli_policy_load(policy_path, config, ret, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        /* A member has extended exactly this cluster's ID into PCR 15 (and shows it in
         * HOST_DATA where the policy says so). */
        cli_policy_bind_cluster(*ret, cid);
        return 0;
}

/* A verdict object with the first reason (all of them are in "reasons"). */
static json_t *node_verdict_json(bool ok, const char *reason)
{
        return result_verdict_new(ok ? "pass" : "fail", ok ? NULL : reason, NULL, "checked");
}

/* extra: members added to the document (verify --bundle: "bundle"), or NULL. */
static int print_json(const ClusterView *v, const char *cid_hex, size_t failed, size_t bad_logs,
                      const json_t *extra)
{
        _cleanup_(json_decrefp) json_t *doc = result_new("cloister verify --cluster");
        json_t *nodes = json_array(), *logs = json_array();
        char reason[128];

        if (!doc || json_object_set_new(doc, "nodes", nodes) < 0 ||
            json_object_set_new(doc, "auditLogs", logs) < 0 ||
            json_object_set_new(doc, "clusterId", json_string(cid_hex)) < 0 ||
            (extra && json_object_update(doc, (json_t *) extra) < 0))
                return log_oom();
        for (size_t i = 0; i < v->n_nodes; i++) {
                const ClusterNode *n = &v->nodes[i];
                json_t *reasons = json_array();
                for (size_t k = 0; reasons && k < n->n_reasons; k++)
                        (void) json_array_append_new(reasons, json_string(n->reasons[k]));
                if (json_array_append_new(
                            nodes,
                            json_pack("{s:s,s:s,s:s,s:O,s:o,s:o,s:o*}", "name", n->name, "role",
                                      n->role, "endpoint", n->endpoint, "versions",
                                      n->versions ?: json_null(), "checks",
                                      n->checks ? json_incref(n->checks) : json_array(), "verdict",
                                      node_verdict_json(n->ok, n->n_reasons ? n->reasons[0] : NULL),
                                      "reasons", reasons)) < 0)
                        return log_oom();
        }
        for (size_t i = 0; i < v->n_js; i++) {
                const JoinServiceView *js = &v->js[i];
                json_t *cp = js->cp.ok ? json_pack("{s:I,s:s,s:s}", "seq", (json_int_t) js->cp.seq,
                                                   "time", js->cp.time, "signer", js->cp.signer)
                                       : json_null();
                if (json_array_append_new(
                            logs, json_pack("{s:s,s:I,s:I,s:s,s:o,s:o}", "joinService", js->url,
                                            "entries", (json_int_t) js->entries, "refusals",
                                            (json_int_t) js->refused, "policyDigest",
                                            js->policy_digest, "checkpoint", cp ?: json_null(),
                                            "verdict", node_verdict_json(js->ok, js->reason))) < 0)
                        return log_oom();
        }
        if (v->has_chain &&
            json_object_set_new(doc, "clusterChain",
                                json_pack("{s:s,s:I,s:I,s:o}", "readThrough", v->chain.url,
                                          "entries", (json_int_t) v->chain.entries, "refusals",
                                          (json_int_t) v->chain.refused, "verdict",
                                          node_verdict_json(v->chain.ok, v->chain.reason))) < 0)
                return log_oom();
        (void) snprintf(reason, sizeof(reason),
                        "%zu of %zu node(s) failed, %zu audit log(s) broken", failed, v->n_nodes,
                        bad_logs);
        if (result_set_verdict(doc, failed || bad_logs ? "fail" : "pass",
                               failed || bad_logs ? reason : NULL, NULL, "checked") < 0 ||
            result_print(doc) < 0)
                return log_oom();
        return 0;
}

/* Every join service must enforce the same policy; then the verdict and the output. */
static int judge_and_print(ClusterView *v, const char *cid_hex, OutputFormat output,
                           const json_t *extra)
{
        size_t failed = 0, bad_logs = 0;
        int r;

        for (size_t i = 1; i < v->n_js; i++)
                if (v->js[i].ok && v->js[i].policy_digest[0] &&
                    strcmp(v->js[i].policy_digest, v->js[0].policy_digest) != 0) {
                        v->js[i].ok = false;
                        set_reason(&v->js[i], "enforces another policy (sha256 %s) than %s",
                                   v->js[i].policy_digest, v->js[0].url);
                }
        for (size_t i = 0; i < v->n_js; i++)
                if (v->js[i].ok && strcmp(v->js[i].membership, "etcd-cache") == 0) {
                        v->js[i].ok = false;
                        set_reason(&v->js[i], "etcd does not answer it: the members it listed are "
                                              "its last copy ('cloister status' shows etcd's "
                                              "health)");
                }
        for (size_t i = 0; i < v->n_nodes; i++)
                failed += !v->nodes[i].ok;
        for (size_t i = 0; i < v->n_js; i++)
                bad_logs += !v->js[i].ok;
        bad_logs += v->has_chain && !v->chain.ok;
        if (output == OUTPUT_JSON) {
                r = print_json(v, cid_hex, failed, bad_logs, extra);
                if (r < 0)
                        return r;
        } else {
                printf("cluster %s\n", cid_hex);
                /* The variant says which checks a verdict stands for (verify --node lists them). */
                if (v->variant)
                        printf("attestation %s%s\n", v->variant,
                               strncmp(v->variant, "sim-", 4) == 0
                                       ? " (SIMULATED: no hardware protects these nodes)"
                                       : "");
                printf("\n%-24s %-14s %-8s %s\n", "NODE", "ROLE", "VERDICT", "REASONS");
                for (size_t i = 0; i < v->n_nodes; i++) {
                        const ClusterNode *n = &v->nodes[i];
                        printf("%-24s %-14s %-8s %s\n", n->name, n->role, n->ok ? "OK" : "FAILED",
                               n->n_reasons ? n->reasons[0] : "");
                        for (size_t k = 1; k < n->n_reasons; k++)
                                printf("%-48s %s\n", "", n->reasons[k]);
                }
                print_image_sets(v);
                printf("\n");
                for (size_t i = 0; i < v->n_js; i++) {
                        printf("audit log of %s: %zu entries (%zu refusals), chain %s%s%s\n",
                               v->js[i].url, v->js[i].entries, v->js[i].refused,
                               v->js[i].ok ? "OK" : "BROKEN", v->js[i].ok ? "" : ": ",
                               v->js[i].reason);
                        if (v->js[i].cp.ok)
                                printf("  head signed by its attestation key (sha256 %.16s...) "
                                       "at %s\n",
                                       v->js[i].cp.signer, v->js[i].cp.time);
                }
                if (v->has_chain)
                        printf("the cluster's audit chain in etcd (read through %s): %zu entries "
                               "(%zu refusals), chain %s%s%s\n",
                               v->chain.url, v->chain.entries, v->chain.refused,
                               v->chain.ok ? "OK" : "BROKEN", v->chain.ok ? "" : ": ",
                               v->chain.reason);
                if (failed || bad_logs)
                        printf("Verification FAILED: %zu of %zu node(s) failed, %zu audit log(s) "
                               "broken\n",
                               failed, v->n_nodes, bad_logs);
                else
                        printf("Verification OK\n");
        }
        return failed || bad_logs ? -EPERM : 0;
}

/* Membership, every member attested, every audit log checked; with w, recorded into it. */
static int cluster_run(const char *url, const char *policy_path, const CliConfig *config,
                       const uint8_t cid[static CLUSTER_ID_SIZE], const RpcClientConfig *rc,
                       CliBundleWriter *w, ClusterView *v, OutputFormat output)
{
        _cleanup_(attest_policy_freep) AttestPolicy *member = NULL;
        _cleanup_(freep) char *policy_text = NULL;
        size_t policy_size = 0;
        char cid_hex[2 * CLUSTER_ID_SIZE + 1];
        int r;

        hex_encode_buf(cid, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        memcpy(v->cid_hex, cid_hex, sizeof(v->cid_hex));
        r = member_policy(policy_path, config, cid, &member);
        if (r < 0)
                return r;
        v->variant = attest_variant_to_string(member->variant);
        if (w) {
                r = cli_policy_bytes(policy_path, config, &policy_text, &policy_size);
                if (r < 0)
                        return r;
                /* One verification time for every node, the one the bundle records. */
                v->at = time(NULL);
                v->recording = true;
                r = cli_bundle_writer_init(w, "cluster", v->at, policy_text, policy_size, cid);
                if (r < 0)
                        return log_oom();
        }
        r = collect(url, member, rc, v);
        if (r < 0) {
                if (output != OUTPUT_JSON)
                        printf("Verification FAILED: %s: the membership is not readable\n", url);
                return r;
        }
        check_cluster_chain(member, rc, v);
        attest_nodes(v, member, cid_hex, rc, true);
        for (size_t i = 0; w && i < v->n_nodes; i++) {
                const ClusterNode *n = &v->nodes[i];
                const char *reasons[ELEMENTSOF(n->reasons)];
                for (size_t k = 0; k < n->n_reasons; k++)
                        reasons[k] = n->reasons[k];
                if (cli_bundle_writer_node(w, n->name, n->role, n->endpoint, &n->rec, n->ok,
                                           reasons, n->n_reasons, n->checks, n->versions,
                                           n->state) < 0)
                        return log_oom();
        }
        for (size_t i = 0; w && i < v->n_js; i++) {
                const JoinServiceView *js = &v->js[i];
                const char *listed[CLUSTER_NODES_MAX];
                for (size_t k = 0; k < js->n_listed; k++)
                        listed[k] = js->listed[k];
                if (cli_bundle_writer_audit(w, js->url, js->log, js->log_size, js->log_complete,
                                            js->head, js->policy_digest, js->self, listed,
                                            js->n_listed) < 0 ||
                    cli_bundle_writer_checkpoint(w, js->checkpoint, &js->channel) < 0)
                        return log_oom();
        }
        return 0;
}

int cli_verify_cluster(const char *url, const char *policy_path, const CliConfig *config,
                       const uint8_t cid[static CLUSTER_ID_SIZE], const RpcClientConfig *rc,
                       OutputFormat output, const char *bundle_path, const char *checkpoints_path)
{
        _cleanup_(cluster_view_freep) ClusterView *v = calloc(1, sizeof(ClusterView));
        _cleanup_(freep) CliCheckpointStore *store = NULL;
        CliBundleWriter w = {};
        char cid_hex[2 * CLUSTER_ID_SIZE + 1];
        int r, k;

        if (!v)
                return log_oom();
        hex_encode_buf(cid, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        /* The signed heads this workspace saw before: an older one now is a rollback. */
        if (checkpoints_path) {
                store = malloc(sizeof(*store));
                if (!store)
                        return log_oom();
                r = cli_checkpoint_store_load(checkpoints_path, store);
                if (r < 0)
                        return r;
                v->checkpoints = store;
        }
        r = cluster_run(url, policy_path, config, cid, rc, bundle_path ? &w : NULL, v, output);
        if (r < 0) {
                cli_bundle_writer_done(&w);
                return r;
        }
        for (size_t i = 0; store && i < v->n_js; i++)
                if (v->js[i].ok)
                        cli_checkpoint_store_note(store, &v->js[i].cp, v->js[i].url);
        if (store && v->has_chain && v->chain.ok)
                cli_checkpoint_store_note_chain(store, cid_hex, (int64_t) v->chain.entries,
                                                v->chain_head);
        if (store && store->changed)
                (void) cli_checkpoint_store_save(checkpoints_path, store);
        r = judge_and_print(v, cid_hex, output, NULL);
        if (bundle_path) {
                k = cli_bundle_writer_write(&w, bundle_path);
                if (k < 0 && r >= 0)
                        r = k;
        }
        cli_bundle_writer_done(&w);
        return r;
}

int cli_verify_cluster_record(const char *url, const char *policy_path, const CliConfig *config,
                              const uint8_t cid[static CLUSTER_ID_SIZE], const RpcClientConfig *rc,
                              CliBundleWriter *w)
{
        _cleanup_(cluster_view_freep) ClusterView *v = calloc(1, sizeof(ClusterView));

        if (!v)
                return log_oom();
        return cluster_run(url, policy_path, config, cid, rc, w, v, OUTPUT_JSON);
}

/* A recorded audit log, checked again as check_audit() checks a live one, in one page. */
/* The recorded checkpoint of audit log i: its signer named by the recorded handshake evidence
 * (verified again, the binding recomputed from the recorded nonce and key). */
static void check_recorded_checkpoint(const CliBundle *b, size_t i, ClusterView *v,
                                      JoinServiceView *js, const json_t *rec, const AttestPolicy *p,
                                      const AuditLogSummary *sum, uint64_t log_size)
{
        const uint8_t *parts[4] = {};
        size_t sizes[4] = {};
        _cleanup_(freep) char *text = NULL;
        static const char *const names[] = { "checkpoint", "evidence", "nonce", "spki" };

        if (!js->ok)
                return;
        for (size_t k = 0; json_is_true(json_object_get(rec, "checkpoint")) && k < 4; k++) {
                char name[BUNDLE_NAME_MAX + 1];
                (void) snprintf(name, sizeof(name), "audit/%zu/%s", i, names[k]);
                (void) bundle_get(b->bundle, name, &parts[k], &sizes[k]);
        }
        if (parts[0] && parts[1] && parts[2] && parts[3]) {
                if (sizes[2] != ATLS_NONCE_SIZE || memchr(parts[0], '\0', sizes[0])) {
                        js->ok = false;
                        set_reason(js, "the recorded checkpoint or nonce is malformed");
                        return;
                }
                text = strndup((const char *) parts[0], sizes[0]);
                if (!text) {
                        js->ok = false;
                        set_reason(js, "out of memory");
                        return;
                }
                js->channel = (CliRecord){ .present = true,
                                           .evidence = (uint8_t *) parts[1],
                                           .evidence_size = sizes[1],
                                           .spki = (uint8_t *) parts[3],
                                           .spki_size = sizes[3] };
                memcpy(js->channel.nonce, parts[2], ATLS_NONCE_SIZE);
                if (note_signer(v, js, p) < 0) {
                        js->ok = false;
                        js->channel = (CliRecord){};
                        return;
                }
                js->channel = (CliRecord){}; /* the bundle's bytes, not ours to free */
        }
        check_checkpoint(v, js, p, text, sum, log_size);
}

static void check_recorded_audit(const CliBundle *b, size_t i, ClusterView *v, JoinServiceView *js,
                                 const json_t *rec, const AttestPolicy *p)
{
        bool found[CLUSTER_NODES_MAX] = {};
        AuditLogSummary sum;
        AuditLogChain chain;
        const uint8_t *log = NULL;
        size_t size = 0, used = 0;
        char name[BUNDLE_NAME_MAX + 1];
        Diag d;

        js->ok = false;
        diag_clear(&d);
        (void) snprintf(name, sizeof(name), "audit/%zu/log", i);
        if (!json_is_true(json_object_get(rec, "complete")) ||
            bundle_get(b->bundle, name, &log, &size) < 0) {
                set_reason(js, "the bundle holds this audit log's head only (it was longer than "
                               "a bundle keeps): not checked");
                return;
        }
        audit_log_chain_init(&chain, js->url);
        if (memchr(log, '\0', size)) {
                set_reason(js, "audit chain broken: %s: a NUL byte in the log", js->url);
                return;
        }
        if (audit_log_chain_feed(&chain, (const char *) log, size, true, &used, &d) < 0) {
                set_reason(js, "audit chain broken: %s", d.message);
                return;
        }
        note_admissions(js, (const char *) log, used, found);
        audit_log_chain_summary(&chain, &sum);
        js->entries = sum.entries;
        js->refused = sum.refused;
        report_unaudited(v, js, found);
        check_head(js, json_object_get(rec, "head"), &sum);
        check_recorded_checkpoint(b, i, v, js, rec, p, &sum, used);
}

int cli_verify_cluster_bundle(const CliBundle *b, const AttestPolicy *p, time_t at,
                              OutputFormat output, const json_t *extra)
{
        _cleanup_(cluster_view_freep) ClusterView *v = calloc(1, sizeof(ClusterView));
        char cid_hex[2 * CLUSTER_ID_SIZE + 1] = "";
        const json_t *x;
        size_t i;

        if (!v)
                return log_oom();
        v->at = at; /* checkpoints are judged at the bundle's time too */
        if (b->has_cid)
                hex_encode_buf(b->cid, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        if (json_array_size(b->nodes) > CLUSTER_NODES_MAX ||
            json_array_size(b->logs) > CLUSTER_JOIN_SERVICES_MAX)
                return log_error_errno(-E2BIG, "The bundle lists more nodes or join services "
                                               "than a cluster may have.");
        json_array_foreach (b->nodes, i, x) {
                ClusterNode *n = &v->nodes[v->n_nodes++];
                (void) snprintf(n->name, sizeof(n->name), "%s",
                                json_string_value(json_object_get(x, "name")));
                (void) snprintf(n->role, sizeof(n->role), "%s",
                                json_string_value(json_object_get(x, "role")));
                (void) snprintf(n->endpoint, sizeof(n->endpoint), "%s",
                                json_string_value(json_object_get(x, "endpoint")));
                if (json_is_object(json_object_get(x, "versions")))
                        n->versions = json_incref(json_object_get(x, "versions"));
        }
        json_array_foreach (b->logs, i, x) {
                JoinServiceView *js = &v->js[v->n_js++];
                const json_t *l;
                size_t k;
                (void) snprintf(js->url, sizeof(js->url), "%s",
                                json_string_value(json_object_get(x, "joinService")));
                (void) snprintf(js->policy_digest, sizeof(js->policy_digest), "%s",
                                json_string_value(json_object_get(x, "policyDigest")) ?: "");
                (void) snprintf(js->self, sizeof(js->self), "%s",
                                json_string_value(json_object_get(x, "self")) ?: "");
                json_array_foreach (json_object_get(x, "listed"), k, l)
                        if (json_is_string(l) && js->n_listed < CLUSTER_NODES_MAX)
                                (void) snprintf(js->listed[js->n_listed++], 64, "%s",
                                                json_string_value(l));
                check_recorded_audit(b, i, v, js, x, p);
        }
        /* Each node's evidence again, offline; a node the audit logs do not account for stays
         * failed, as live. */
        for (i = 0; i < v->n_nodes; i++) {
                ClusterNode *n = &v->nodes[i];
                AttestReport rep = {};
                Diag d;
                int r = cli_bundle_verify_node(b, i, p, at, &rep, &d);

                n->ok = r >= 0 && !n->unaudited;
                node_take_report(n, &rep, r, &d);
                attest_report_done(&rep);
        }
        return judge_and_print(v, cid_hex[0] ? cid_hex : "(none recorded)", output, extra);
}

/* Each member's re-attestation as its join service records it (docs/reattestation.md), one
 * line each after the table (whose rows start with the member's name). */
/* Each node's WireGuard peers and their last handshake, as the node's cloister0 reports them
 * (docs/mesh.md, "Status"). Nothing when no node is in the mesh. */
static void print_mesh(const ClusterView *v)
{
        bool any = false;
        time_t now = time(NULL);

        for (size_t i = 0; i < v->n_nodes; i++)
                any |= v->nodes[i].mesh != NULL;
        if (!any)
                return;
        printf("\nmesh (each node's %s: peer, endpoint, last handshake):\n", MESH_DEVICE);
        for (size_t i = 0; i < v->n_nodes; i++) {
                const json_t *m = v->nodes[i].mesh, *p;
                const char *error = json_string_value(json_object_get(m, "error"));
                size_t k;

                if (!m)
                        continue;
                if (error) {
                        printf("  %-24s (cannot tell: %s)\n", v->nodes[i].name, error);
                        continue;
                }
                if (json_array_size(json_object_get(m, "peers")) == 0)
                        printf("  %-24s no peers\n", v->nodes[i].name);
                json_array_foreach (json_object_get(m, "peers"), k, p) {
                        const char *member = json_string_value(json_object_get(p, "member"));
                        const char *ep = json_string_value(json_object_get(p, "endpoint"));
                        json_int_t hs = json_integer_value(json_object_get(p, "latestHandshake"));
                        char when[48];

                        if (hs == 0)
                                (void) snprintf(when, sizeof(when), "never");
                        else if (hs <= (json_int_t) now)
                                (void) snprintf(when, sizeof(when), "%" PRId64 " s ago",
                                                (int64_t) (now - (time_t) hs));
                        else
                                (void) snprintf(when, sizeof(when), "in the future (clock?)");
                        printf("  %-24s %-24s %-28s %s\n", v->nodes[i].name,
                               member ?: json_string_value(json_object_get(p, "publicKey")),
                               ep ?: "(no endpoint)", when);
                }
        }
}

static void print_reattestation(const ClusterView *v)
{
        for (size_t i = 0; i < v->n_nodes; i++) {
                const json_t *x = v->nodes[i].reattest;
                const char *verdict = json_string_value(json_object_get(x, "verdict"));
                const char *last = json_string_value(json_object_get(x, "lastAttested"));
                const char *resp = json_string_value(json_object_get(x, "response"));
                const char *checks = json_string_value(json_object_get(x, "checks"));
                char ago[48] = "";
                struct tm tm = {};

                if (!x)
                        continue;
                if (last && strptime(last, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
                        long s = (long) difftime(time(NULL), timegm(&tm));
                        (void) snprintf(ago, sizeof(ago), " (%ld s ago)", s < 0 ? 0 : s);
                }
                printf("re-attestation: %s %s%s%s%s, last passed %s%s, response: %s\n",
                       v->nodes[i].name, verdict ?: "-", checks && checks[0] ? " (" : "",
                       checks && checks[0] ? checks : "", checks && checks[0] ? ")" : "",
                       last ?: "never", ago, resp ?: "-");
        }
}

/* etcd's health as a join service whose membership is there sees it (docs/membership.md). */
static void print_etcd_health(const JoinServiceView *js)
{
        const json_t *h = js->etcd_health, *e;
        size_t i;

        if (!h)
                return;
        printf("  etcd as it sees it: %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
               " members answer, %s%s\n",
               json_integer_value(json_object_get(h, "answering")),
               json_integer_value(json_object_get(h, "configured")),
               json_is_true(json_object_get(h, "quorum"))
                       ? "quorum held"
                       : "quorum lost (no member answers a linearizable read): joins and "
                         "rejoins are refused until it is back",
               strcmp(js->membership, "etcd-cache") == 0 ? "; the membership shown is its last copy"
                                                         : "");
        json_array_foreach (json_object_get(h, "endpoints"), i, e)
                if (!json_is_true(json_object_get(e, "answers")))
                        printf("    %.200s does not answer: %.300s\n",
                               json_string_value(json_object_get(e, "endpoint")) ?: "?",
                               json_string_value(json_object_get(e, "error")) ?: "?");
}

int verb_status(int argc, char *argv[], void *userdata)
{
        enum { ARG_POLICY = 0x100, ARG_CONFIG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "output", required_argument, NULL, 'o' },
                CLI_TARGET_OPTIONS,
                {},
        };
        CliOptions *o = userdata;
        const char *policy = NULL, *config_path = NULL;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(attest_policy_freep) AttestPolicy *member = NULL;
        _cleanup_(cluster_view_freep) ClusterView *v = NULL;
        char cid_hex[2 * CLUSTER_ID_SIZE + 1];
        RpcClientConfig rc;
        CliTarget t;
        int c, r;

        cli_target_init(&t, &rc);
        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister status [--node HOST[:PORT]] [--policy FILE | "
                               "--config FILE]\n"
                               "         [--state-file FILE | --cluster-id HEX] [--timeout SEC]\n"
                               "         [-o text|json]\n\n"
                               "The cluster's members as its join services record them (each\n"
                               "join service attested first): name, role, endpoint, when it\n"
                               "was admitted, and the policy digest each join service enforces;\n"
                               "and what each member runs (its Cloister, image and Kubernetes\n"
                               "versions, asked over attested TLS with the member policy: a\n"
                               "member that does not attest shows '-'; 'cloister verify\n"
                               "--cluster' says why). A member whose Cloister version is beyond\n"
                               "what this CLI supports is warned about (docs/versions.md). A\n"
                               "member that runs a TEST image (the kubeadm double, not for\n"
                               "production) is named so, as is a configuration whose\n"
                               "measurements are of one (image/README.md, 'Kubernetes').\n"
                               "Then each member's continuous re-attestation as its join service\n"
                               "records it: verdict (pass, rejoining, failed, unreachable), when\n"
                               "it last passed and how long ago, the response taken (warned,\n"
                               "cordoned, evicted) and the failing check (docs/reattestation.md).\n"
                               "The join service must show this cluster's ID in PCR 15: the ID\n"
                               "and the endpoint come from --state-file (default\n"
                               "cloister-state.json), unless --cluster-id and --node give them;\n"
                               "with both, no state file is read. Without --policy and --config,\n"
                               "the policy is the workspace's " CLI_CONFIG_FILE_DEFAULT
                               " (the current\n"
                               "directory, or 'cloister -C DIR').\n");
                        return 0;
                case ARG_POLICY:
                        policy = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case 'o':
                        if (cli_parse_output_option(optarg, &o->output) < 0)
                                return -EUSAGE;
                        break;
                default:
                        r = cli_target_option(&t, &rc, c, optarg);
                        if (r <= 0)
                                return -EUSAGE;
                }
        }
        (void) cli_workspace_config_default(policy, &config_path);
        if (optind < argc || (!policy && !config_path))
                return log_error_errno(-EUSAGE,
                                       "status: give --policy or --config, or run it in the "
                                       "cluster's workspace (holding " CLI_CONFIG_FILE_DEFAULT
                                       "). See --help.");
        r = cli_policy_or_config("status", policy, config_path, &config);
        if (r < 0)
                return r;
        /* TDX evidence without collateral: the user's cache, fetched when missing or stale. */
        r = cli_tdx_collateral_setup(NULL, NULL, &config, false);
        if (r < 0)
                return r;
        r = cli_target_resolve("status", &t);
        if (r < 0)
                return r;
        r = member_policy(policy, &config, t.cid, &member);
        if (r < 0)
                return r;
        v = calloc(1, sizeof(ClusterView));
        if (!v)
                return log_oom();
        r = collect(t.url, member, &rc, v);
        if (r < 0)
                return r;
        /* Each member's versions, from the member itself, attested as verify --cluster does. */
        hex_encode_buf(t.cid, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        attest_nodes(v, member, cid_hex, &rc, false);
        if (o->output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc = result_new("cloister status");
                json_t *nodes = json_array(), *js = json_array();

                if (!doc || json_object_set_new(doc, "nodes", nodes) < 0 ||
                    json_object_set_new(doc, "joinServices", js) < 0 ||
                    json_object_set_new(doc, "clusterId", json_string(cid_hex)) < 0)
                        return log_oom();
                for (size_t i = 0; i < v->n_nodes; i++)
                        if (json_array_append_new(
                                    nodes,
                                    json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:O}", "name",
                                              v->nodes[i].name, "role", v->nodes[i].role,
                                              "endpoint", v->nodes[i].endpoint, "admitted",
                                              v->nodes[i].admitted, "versions",
                                              v->nodes[i].ok && v->nodes[i].versions
                                                      ? v->nodes[i].versions
                                                      : json_null(),
                                              "reattestation", v->nodes[i].reattest ?: json_null(),
                                              "mesh", v->nodes[i].mesh ?: json_null())) < 0)
                                return log_oom();
                for (size_t i = 0; i < v->n_js; i++)
                        if (json_array_append_new(
                                    js, json_pack("{s:s,s:o,s:O,s:o,s:o}", "joinService",
                                                  v->js[i].url, "membership",
                                                  v->js[i].membership[0]
                                                          ? json_string(v->js[i].membership)
                                                          : json_null(),
                                                  "etcd", v->js[i].etcd_health ?: json_null(),
                                                  "policyDigest",
                                                  v->js[i].policy_digest[0]
                                                          ? json_string(v->js[i].policy_digest)
                                                          : json_null(),
                                                  "policyVersion",
                                                  v->js[i].policy_digest[0] &&
                                                                  v->js[i].policy_version >= 0
                                                          ? json_integer(v->js[i].policy_version)
                                                          : json_null())) < 0)
                                return log_oom();
                if (result_print(doc) < 0)
                        return log_oom();
                return 0;
        }
        printf("%-24s %-14s %-36s %-21s %-9s %-24s %s\n", "NODE", "ROLE", "ENDPOINT", "ADMITTED",
               "CLOISTER", "IMAGE", "KUBERNETES");
        for (size_t i = 0; i < v->n_nodes; i++) {
                const ClusterNode *n = &v->nodes[i];
                const json_t *ver = n->ok ? n->versions : NULL;
                const char *cv = json_string_value(json_object_get(ver, "cloister"));
                const char *im = json_string_value(json_object_get(ver, "image"));
                const char *k = json_string_value(json_object_get(ver, "kubernetes"));

                printf("%-24s %-14s %-36s %-21s %-9s %-24s %s\n", n->name, n->role, n->endpoint,
                       n->admitted, cv ?: "-", im ?: "-", k ?: "-");
        }
        print_image_kinds(v, &config);
        print_image_sets(v);
        print_reattestation(v);
        print_mesh(v);
        for (size_t i = 0; i < v->n_nodes; i++)
                if (!v->nodes[i].ok)
                        printf("%s did not attest: its versions are not shown ('cloister verify "
                               "--cluster' says why)\n",
                               v->nodes[i].name);
        for (size_t i = 0; i < v->n_js; i++) {
                char version[32] = "unknown";

                if (v->js[i].policy_version >= 0)
                        (void) snprintf(version, sizeof(version), "%" PRId64,
                                        v->js[i].policy_version);
                printf("join service %s enforces policy sha256:%s (version %s)\n", v->js[i].url,
                       v->js[i].policy_digest[0] ? v->js[i].policy_digest : "(unreachable)",
                       v->js[i].policy_digest[0] ? version : "unknown");
                print_etcd_health(&v->js[i]);
        }
        return 0;
}
