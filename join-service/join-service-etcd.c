/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster's one membership and audit chain in etcd (docs/membership.md), the monitor's
 * business only: it holds the etcd client certificate's key, as it holds every other credential
 * (the network process is forked before the client exists, runs chrooted in an empty directory
 * under another uid, and never sees the key or a connection to etcd).
 *
 * Keys, under /cloister/v1/CLUSTER_ID/:
 *   members/NAME      the member record (what members.json holds per member)
 *   disks/UUID        NAME: a disk is one member's
 *   aks/AK_DIGEST     NAME: an attestation key is one member's
 *   audit/SEQ         one audit entry (20 digits, so that keys sort as entries follow), the line
 *                     exactly as audit.log would hold it, hash-chained
 *   audit-head        {"hash","seq"} of the last entry
 *   removals/AUTH     NAME: the owner's removal with this authenticator was carried out (once)
 *   removed-disks/UUID, removed-aks/AK_DIGEST
 *                     NAME: an admission with this disk or key was removed (by the owner or an
 *                     eviction); a control plane's join service never registers such a node
 *                     itself again (it joins anew through another, attested)
 *
 * An admission or rejoin is one transaction: the member record, its index keys and its audit
 * entry written together or not at all, guarded by compares on what was read (create_revision
 * = 0 for keys that did not exist, mod_revision for those that did, and the audit head), so two
 * join services deciding at once cannot both win: the loser's transaction fails, it reads again
 * and finds the claim taken. Nothing is ever half-written: etcd applies a transaction whole.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cloister/audit-log.h"
#include "cloister/etcd.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"

#include "join-service.h"

/* Contention (other join services appending at the same moment) is retried this many times. */
#define ETCD_TXN_ATTEMPTS 16
#define ETCD_MEMBER_MAX   2048U /* bytes of one member record */

static const char ZERO_HASH[] = "0000000000000000000000000000000000000000000000000000000000000000";

/* The highest entry of the cluster's chain this join service wrote itself (docs/membership.md,
 * "Rollback of etcd"): kept on its encrypted disk (STATE_DIR/CLUSTER_HEAD_FILE, {"hash","seq"}),
 * so that etcd restored to an older state, or entries removed from the chain's end with the
 * chain and head recomputed, is found: etcd must still hold that entry. One per process (the
 * monitor's). */
#define CLUSTER_HEAD_FILE "cluster-chain-head.json"
static struct {
        pthread_mutex_t lock;
        int64_t seq; /* 0: none written yet */
        char hash[65];
} seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

typedef struct Keys {
        char member[ETCD_KEY_MAX], disk[ETCD_KEY_MAX], ak[ETCD_KEY_MAX], head[ETCD_KEY_MAX],
                entry[ETCD_KEY_MAX], gone_disk[ETCD_KEY_MAX], gone_ak[ETCD_KEY_MAX];
} Keys;

static int key_of(JoinService *js, char *buf, const char *kind, const char *id)
{
        int n = snprintf(buf, ETCD_KEY_MAX, ETCD_KEY_PREFIX "%s/%s%s", js->cluster_id_hex, kind,
                         id);
        return n < 0 || (size_t) n >= ETCD_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* {"hash","seq"} of the audit head; absent: an empty chain. */
static int head_parse(const EtcdKv *kv, int64_t *ret_seq, char ret_hash[static 65], Diag *d)
{
        static const char *const keys[] = { "hash", "seq", NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonCtx ctx = { .source = "etcd audit-head", .path = "", .diag = d };
        const char *hash;
        int r;

        if (!kv) {
                *ret_seq = 0;
                memcpy(ret_hash, ZERO_HASH, 65);
                return 0;
        }
        r = json_parse_buffer(kv->value, kv->value_size, ctx.source, &j, d);
        if (r >= 0)
                r = json_check_keys(&ctx, j, keys);
        if (r >= 0)
                r = json_get_int(&ctx, j, "seq", true, 1, AUDIT_ENTRIES_MAX, ret_seq);
        if (r >= 0)
                r = json_get_string(&ctx, j, "hash", true, &hash);
        if (r >= 0 && (strlen(hash) != 64 || strspn(hash, "0123456789abcdef") != 64))
                r = diag_fail(d, -EBADMSG, "etcd-audit-head", -1,
                              "etcd audit-head: hash is not 64 lowercase hex digits");
        if (r < 0)
                return r;
        memcpy(ret_hash, hash, 65);
        return 0;
}

/* A member record as etcd holds it: our schema, every field a bounded string. */
static int member_parse(const EtcdKv *kv, const char *name, json_t **ret, Diag *d)
{
        static const char *const keys[] = { "name",     "role",     "endpoint", "diskUuid",
                                            "akDigest", "admitted", NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonCtx ctx = { .source = kv->key, .path = "", .diag = d };
        int r;

        if (kv->value_size > ETCD_MEMBER_MAX)
                return diag_fail(d, -EMSGSIZE, "etcd-member", -1, "%s: record over %u bytes",
                                 kv->key, ETCD_MEMBER_MAX);
        r = json_parse_buffer(kv->value, kv->value_size, kv->key, &j, d);
        if (r >= 0)
                r = json_check_keys(&ctx, j, keys);
        for (const char *const *k = keys; r >= 0 && *k; k++) {
                const char *v;
                r = json_get_string(&ctx, j, *k, true, &v);
                if (r >= 0 && strlen(v) > 255)
                        r = diag_fail(d, -EBADMSG, "etcd-member", -1, "%s: %s too long", kv->key,
                                      *k);
        }
        if (r >= 0 && name && strcmp(json_string_value(json_object_get(j, "name")), name) != 0)
                r = diag_fail(d, -EBADMSG, "etcd-member", -1, "%s: the record names another member",
                              kv->key);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

/* The entry this join service saw last (seen), read from etcd as kv (NULL: absent) in the
 * snapshot whose head is at head_seq: etcd must still hold it. -ESTALE otherwise. */
static int seen_check(int64_t want_seq, const char *want_hash, int64_t head_seq, const EtcdKv *kv,
                      Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *hash = NULL;
        Diag pd;

        if (want_seq == 0)
                return 0;
        if (head_seq < want_seq)
                return diag_fail(d, -ESTALE, "etcd-chain-rollback", -1,
                                 "the cluster's audit chain in etcd went back: this join service "
                                 "wrote entry %" PRId64 " itself, and etcd's chain now ends at "
                                 "entry %" PRId64 ": etcd was restored to an older state or "
                                 "entries were removed from its end",
                                 want_seq, head_seq);
        diag_clear(&pd);
        if (kv && kv->value_size <= AUDIT_LINE_MAX &&
            json_parse_buffer(kv->value, kv->value_size, kv->key, &j, &pd) >= 0)
                hash = json_string_value(json_object_get(j, "hash"));
        if (!hash || strcmp(hash, want_hash) != 0)
                return diag_fail(d, -ESTALE, "etcd-chain-rollback", -1,
                                 "the cluster's audit chain in etcd was rewritten: entry %" PRId64
                                 " is not the one this join service wrote (hash %.16s...): etcd "
                                 "was restored to another state or the chain recomputed",
                                 want_seq, want_hash);
        return 0;
}

/* The entry just written: remembered, and kept on disk, if it is later than the one before. */
static void seen_note(JoinService *js, int64_t seq, const char *hash)
{
        _cleanup_(freep) char *path = NULL;
        char text[128];
        int r;

        (void) pthread_mutex_lock(&seen.lock);
        if (seq > seen.seq) {
                seen.seq = seq;
                memcpy(seen.hash, hash, 65);
                (void) snprintf(text, sizeof(text), "{\"hash\":\"%s\",\"seq\":%" PRId64 "}\n", hash,
                                seq);
                r = asprintf(&path, "%s/%s", js->state_dir, CLUSTER_HEAD_FILE) < 0 ? -ENOMEM : 0;
                if (r >= 0)
                        r = write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
                if (r < 0)
                        log_warning_errno(r,
                                          "join-service: cannot keep the cluster chain's head in "
                                          "%s/%s (%m): a rollback of etcd below it would be "
                                          "found only by the owner's record",
                                          js->state_dir, CLUSTER_HEAD_FILE);
        }
        (void) pthread_mutex_unlock(&seen.lock);
}

static void seen_get(int64_t *ret_seq, char ret_hash[static 65])
{
        (void) pthread_mutex_lock(&seen.lock);
        *ret_seq = seen.seq;
        memcpy(ret_hash, seen.seq > 0 ? seen.hash : ZERO_HASH, 65);
        (void) pthread_mutex_unlock(&seen.lock);
}

/* At start: what an earlier run wrote. A malformed file is refused (the join service's own, on
 * its encrypted disk: altered), naming it. */
static int seen_load(JoinService *js)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_(freep) char *path = NULL, *text = NULL;
        EtcdKv kv = {};
        int64_t seq;
        char hash[65];
        Diag d;
        int r;

        if (asprintf(&path, "%s/%s", js->state_dir, CLUSTER_HEAD_FILE) < 0)
                return -ENOMEM;
        diag_clear(&d);
        r = json_parse_file(path, 256, &j, &d);
        if (r == -ENOENT)
                return 0;
        if (r >= 0)
                r = json_dump_compact(j, &text);
        if (r >= 0) {
                kv = (EtcdKv){ .key = path, .value = (uint8_t *) text, .value_size = strlen(text) };
                r = head_parse(&kv, &seq, hash, &d);
        }
        if (r < 0)
                return log_error_errno(r,
                                       "join-service: %s is malformed (%s): it holds the last "
                                       "entry of the cluster's chain this join service wrote; "
                                       "restore it, or remove it to forget it (a rollback of "
                                       "etcd below it would then go unnoticed here)",
                                       path, d.message);
        seen_note(js, seq, hash);
        return 0;
}

int join_etcd_members_load(JoinService *js, json_t **ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *end = NULL;
        char prefix[ETCD_KEY_MAX];
        EtcdRange rg = {};
        json_t *list;
        int r;

        r = key_of(js, prefix, "members/", "");
        if (r < 0)
                return r;
        end = etcd_prefix_end(prefix);
        if (!end)
                return -ENOMEM;
        r = etcd_range(js->etcd, prefix, end, 0, &rg, d);
        if (r < 0)
                return r;
        doc = json_pack("{s:i,s:[]}", "version", 1, "members");
        list = json_object_get(doc, "members");
        for (size_t i = 0; doc && i < rg.n_kvs; i++) {
                json_t *m = NULL;
                r = member_parse(&rg.kvs[i], rg.kvs[i].key + strlen(prefix), &m, d);
                if (r < 0) {
                        etcd_range_done(&rg);
                        return r;
                }
                if (json_array_append_new(list, m) < 0) {
                        etcd_range_done(&rg);
                        return -ENOMEM;
                }
        }
        etcd_range_done(&rg);
        if (!doc)
                return -ENOMEM;
        *ret = TAKE_PTR(doc);
        return 0;
}

static const EtcdKv *range_kv(const EtcdTxnResult *t, size_t i)
{
        return i < t->n_ops && t->ranges[i].n_kvs == 1 ? &t->ranges[i].kvs[0] : NULL;
}

static void compare_seen(EtcdCompare *c, const char *key, const EtcdKv *kv)
{
        /* A key read as absent must still be absent; one read must not have changed since. */
        *c = (EtcdCompare){ .key = key,
                            .target = kv ? ETCD_COMPARE_MOD : ETCD_COMPARE_CREATE,
                            .result = ETCD_EQUAL,
                            .number = kv ? kv->mod_revision : 0 };
}

static bool value_is(const EtcdKv *kv, const char *s)
{
        return kv->value_size == strlen(s) && memcmp(kv->value, s, kv->value_size) == 0;
}

/* One attempt at appending e (and, if member is set, writing that record and its index keys)
 * in one transaction. is_member: the caller let the node through because it is a member (a
 * rejoin, a join asked again), so its record must still be there: gone (evicted through any join
 * service since the caller read it), it is not written back. registering: a join service
 * registering its own node, which no one attested here: refused (-EPERM) if an admission with
 * its disk or key was ever removed. 1: done; 0: something changed since it was read (try
 * again). */
static int append_once(JoinService *js, const AuditEntry *e, const json_t *member, bool is_member,
                       bool registering, Diag *d)
{
        const char *name = member ? json_string_value(json_object_get(member, "name")) : NULL;
        const char *uuid = member ? json_string_value(json_object_get(member, "diskUuid")) : NULL;
        const char *ak = member ? json_string_value(json_object_get(member, "akDigest")) : NULL;
        _cleanup_(freep) char *line = NULL, *record = NULL;
        char prev[65], hash[65], head[128], seqbuf[24], lower[40];
        char seen_key[ETCD_KEY_MAX], seen_hash[65];
        EtcdOp reads[7], writes[5];
        EtcdCompare cmp[7];
        EtcdTxnResult snap = {}, res = {};
        size_t n_reads = 1, n_cmp = 0, n_writes = 0, gone_at = 0, seen_at = 0;
        int64_t seen_seq;
        const EtcdKv *hkv, *mkv = NULL, *dkv = NULL, *akv = NULL, *gdkv = NULL, *gakv = NULL;
        int64_t seq;
        Keys k;
        int r;

        r = key_of(js, k.head, "audit-head", "");
        if (r >= 0 && member) {
                (void) kdf_uuid_lower(uuid, lower, sizeof(lower));
                r = key_of(js, k.member, "members/", name);
                if (r >= 0)
                        r = key_of(js, k.disk, "disks/", lower);
                if (r >= 0)
                        r = key_of(js, k.ak, "aks/", ak);
                if (r >= 0)
                        r = key_of(js, k.gone_disk, "removed-disks/", lower);
                if (r >= 0)
                        r = key_of(js, k.gone_ak, "removed-aks/", ak);
        }
        if (r < 0)
                return r;
        reads[0] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.head };
        if (member) {
                reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.member };
                reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.disk };
                if (ak[0])
                        reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.ak };
        }
        /* The last entry this join service wrote must still be there (a rollback of etcd). */
        seen_get(&seen_seq, seen_hash);
        if (seen_seq > 0) {
                (void) snprintf(seqbuf, sizeof(seqbuf), "%020" PRId64, seen_seq);
                r = key_of(js, seen_key, "audit/", seqbuf);
                if (r < 0)
                        return r;
                seen_at = n_reads;
                reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = seen_key };
        }
        if (member && registering) {
                gone_at = n_reads;
                reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.gone_disk };
                if (ak[0])
                        reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.gone_ak };
        }
        /* One consistent snapshot of everything the decision rests on. */
        r = etcd_txn(js->etcd, NULL, 0, reads, n_reads, NULL, 0, &snap, d);
        if (r < 0)
                return r;
        if (!snap.succeeded) {
                etcd_txn_result_done(&snap);
                return diag_fail(d, -EPROTO, "etcd-txn", -1,
                                 "etcd failed a transaction without compares");
        }
        hkv = range_kv(&snap, 0);
        r = head_parse(hkv, &seq, prev, d);
        if (r >= 0)
                r = seen_check(seen_seq, seen_hash, seq,
                               seen_seq > 0 ? range_kv(&snap, seen_at) : NULL, d);
        if (r >= 0 && member) {
                mkv = range_kv(&snap, 1);
                dkv = range_kv(&snap, 2);
                akv = ak[0] ? range_kv(&snap, 3) : NULL;
                if (!mkv && is_member)
                        r = diag_fail(d, -EPERM, "etcd-member-gone", -1,
                                      "%s is no longer a member of the cluster: it was removed "
                                      "from etcd (an eviction, through any join service) while "
                                      "this request was decided; nothing is released, it must "
                                      "join anew",
                                      name);
                if (r >= 0 && mkv) {
                        _cleanup_(json_decrefp) json_t *old = NULL;
                        r = member_parse(mkv, name, &old, d);
                        if (r >= 0 &&
                            (strcasecmp(json_string_value(json_object_get(old, "diskUuid")),
                                        uuid) != 0 ||
                             strcmp(json_string_value(json_object_get(old, "akDigest")), ak) != 0 ||
                             strcmp(json_string_value(json_object_get(old, "role")),
                                    json_string_value(json_object_get(member, "role"))) != 0))
                                r = diag_fail(d, -EEXIST, "etcd-claim-name", -1,
                                              "%s is already a member of the cluster with another "
                                              "disk, attestation key or role (recorded in etcd, "
                                              "by any join service)",
                                              name);
                }
                if (r >= 0 && dkv && !value_is(dkv, name))
                        r = diag_fail(d, -EEXIST, "etcd-claim-disk", -1,
                                      "disk %s belongs to member %.*s of the cluster; a disk is "
                                      "one member's",
                                      uuid, (int) MIN(dkv->value_size, (size_t) 64),
                                      (const char *) dkv->value);
                if (r >= 0 && akv && !value_is(akv, name))
                        r = diag_fail(d, -EEXIST, "etcd-claim-ak", -1,
                                      "this attestation key is member %.*s of the cluster already; "
                                      "one node is one member",
                                      (int) MIN(akv->value_size, (size_t) 64),
                                      (const char *) akv->value);
        }
        if (r >= 0 && registering) {
                gdkv = range_kv(&snap, gone_at);
                gakv = ak[0] ? range_kv(&snap, gone_at + 1) : NULL;
                /* A removal sticks: this node was taken out of the membership (by the owner, or
                 * evicted by re-attestation through any join service). Its own join service
                 * holds the master secret and could write it back; it must not. */
                if (!mkv && (gdkv || gakv))
                        r = diag_fail(d, -EPERM, "etcd-self-removed", -1,
                                      "%s (disk %s) was removed from the cluster's membership (by "
                                      "the owner's 'cloister node remove' or evicted by "
                                      "re-attestation; the cluster's audit chain says which): its "
                                      "join service does not register it again. It must join "
                                      "anew as a control plane through another control plane's "
                                      "join service (attested, with the owner's authorization)",
                                      name, uuid);
        }
        if (r >= 0 && seq >= (int64_t) AUDIT_ENTRIES_MAX)
                r = diag_fail(d, -EMSGSIZE, "audit-entries", -1,
                              "the cluster's audit chain is full");
        if (r >= 0)
                r = audit_log_entry_format(e, seq + 1, prev, &line, hash, d);
        if (r >= 0) {
                (void) snprintf(seqbuf, sizeof(seqbuf), "%020" PRId64, seq + 1);
                r = key_of(js, k.entry, "audit/", seqbuf);
        }
        if (r >= 0 && member)
                r = json_dump_compact(member, &record);
        if (r < 0) {
                etcd_txn_result_done(&snap);
                return r;
        }
        (void) snprintf(head, sizeof(head), "{\"hash\":\"%s\",\"seq\":%" PRId64 "}", hash, seq + 1);
        compare_seen(&cmp[n_cmp++], k.head, hkv);
        cmp[n_cmp++] = (EtcdCompare){ .key = k.entry,
                                      .target = ETCD_COMPARE_CREATE,
                                      .result = ETCD_EQUAL };
        if (member) {
                compare_seen(&cmp[n_cmp++], k.member, mkv);
                compare_seen(&cmp[n_cmp++], k.disk, dkv);
                if (ak[0])
                        compare_seen(&cmp[n_cmp++], k.ak, akv);
                /* A removal between this read and the write fails the transaction. */
                if (registering) {
                        compare_seen(&cmp[n_cmp++], k.gone_disk, gdkv);
                        if (ak[0])
                                compare_seen(&cmp[n_cmp++], k.gone_ak, gakv);
                }
                writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_PUT,
                                               .key = k.member,
                                               .value = record,
                                               .value_size = strlen(record) };
                writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_PUT,
                                               .key = k.disk,
                                               .value = name,
                                               .value_size = strlen(name) };
                if (ak[0])
                        writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_PUT,
                                                       .key = k.ak,
                                                       .value = name,
                                                       .value_size = strlen(name) };
        }
        writes[n_writes++] = (EtcdOp){
                .type = ETCD_OP_PUT, .key = k.entry, .value = line, .value_size = strlen(line)
        };
        writes[n_writes++] = (EtcdOp){
                .type = ETCD_OP_PUT, .key = k.head, .value = head, .value_size = strlen(head)
        };
        etcd_txn_result_done(&snap);
        r = etcd_txn(js->etcd, cmp, n_cmp, writes, n_writes, NULL, 0, &res, d);
        if (r < 0)
                return r;
        r = res.succeeded ? 1 : 0;
        etcd_txn_result_done(&res);
        if (r > 0)
                seen_note(js, seq + 1, hash);
        return r;
}

static int append_retrying(JoinService *js, const AuditEntry *e, const json_t *member,
                           bool is_member, bool registering, Diag *d)
{
        for (unsigned i = 0; i < ETCD_TXN_ATTEMPTS; i++) {
                int r = append_once(js, e, member, is_member, registering, d);
                if (r != 0)
                        return r < 0 ? r : 0;
                log_debug("join-service: etcd transaction lost a race (attempt %u), reading again",
                          i + 1);
        }
        return diag_fail(d, -EBUSY, "etcd-contention", -1,
                         "etcd: %u transactions in a row lost to other join services' writes",
                         ETCD_TXN_ATTEMPTS);
}

int join_etcd_audit(JoinService *js, const AuditEntry *e, Diag *d)
{
        return append_retrying(js, e, NULL, false, false, d);
}

/* The owner's removal or an eviction (x) must name the admission recorded now: a name removed
 * and admitted again since is another node, which neither the owner's authenticator nor a
 * re-attestation verdict covers. */
static int removal_matches(const json_t *old, const JoinRemoval *x, const char *name, Diag *d)
{
        const char *uuid = json_string_value(json_object_get(old, "diskUuid"));
        const char *ak = json_string_value(json_object_get(old, "akDigest"));
        const char *admitted = json_string_value(json_object_get(old, "admitted"));
        const bool same = strcasecmp(uuid, x->disk_uuid) == 0 && strcmp(ak, x->ak_digest) == 0 &&
                          strcmp(admitted, x->admitted) == 0;

        if (same)
                return 0;
        if (!x->authenticator)
                return diag_fail(d, -ESTALE, "eviction-stale", -1,
                                 "%s in the cluster's membership is another admission (disk %s, "
                                 "admitted %s) than the one re-attestation judged (disk %.40s, "
                                 "admitted %.32s): it was removed and admitted again, or "
                                 "rejoined, since; it is not evicted for what the judged "
                                 "admission did",
                                 name, uuid, admitted, x->disk_uuid, x->admitted);
        return diag_fail(d, -ESTALE, "removal-stale", -1,
                         "%s in the cluster's membership is another admission (disk %s, "
                         "admitted %s) than the one this removal names (disk %.40s, "
                         "admitted %.32s): it was admitted again since; nothing is "
                         "changed. Run 'cloister node remove %s' again if it should go",
                         name, uuid, admitted, x->disk_uuid, x->admitted, name);
}

/* One attempt at removing member name and its index keys, with the audit entry e, in one
 * transaction; with x, the admission to remove (the record's mod_revision, read with it, is
 * compared in the write: a record admitted again in between fails the transaction, which is
 * then decided again on what it finds); with x's authenticator, the owner's removal, whose key
 * (removals/AUTHENTICATOR) is written with it, so that it is carried out once. 1: done; 0:
 * something changed since it was read. */
static int remove_once(JoinService *js, const AuditEntry *e, const char *name, const JoinRemoval *x,
                       Diag *d)
{
        const bool owner = x && x->authenticator;
        _cleanup_(json_decrefp) json_t *old = NULL;
        _cleanup_(freep) char *line = NULL;
        char prev[65], hash[65], head[128], seqbuf[24], lower[40], used_key[ETCD_KEY_MAX];
        char seen_key[ETCD_KEY_MAX], seen_hash[65];
        EtcdOp reads[4], writes[8];
        EtcdCompare cmp[6];
        size_t n_reads = 2, seen_at = 0, used_at = 0;
        int64_t seen_seq;
        EtcdTxnResult snap = {}, res = {};
        size_t n_cmp = 0, n_writes = 0;
        const EtcdKv *hkv, *mkv, *ukv = NULL;
        const char *ak;
        int64_t seq;
        Keys k;
        int r;

        r = key_of(js, k.head, "audit-head", "");
        if (r >= 0)
                r = key_of(js, k.member, "members/", name);
        if (r >= 0 && owner)
                r = key_of(js, used_key, "removals/", x->authenticator);
        if (r < 0)
                return r;
        reads[0] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.head };
        reads[1] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = k.member };
        if (owner) {
                used_at = n_reads;
                reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = used_key };
        }
        seen_get(&seen_seq, seen_hash);
        if (seen_seq > 0) {
                (void) snprintf(seqbuf, sizeof(seqbuf), "%020" PRId64, seen_seq);
                r = key_of(js, seen_key, "audit/", seqbuf);
                if (r < 0)
                        return r;
                seen_at = n_reads;
                reads[n_reads++] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = seen_key };
        }
        r = etcd_txn(js->etcd, NULL, 0, reads, n_reads, NULL, 0, &snap, d);
        if (r < 0)
                return r;
        if (!snap.succeeded) {
                etcd_txn_result_done(&snap);
                return diag_fail(d, -EPROTO, "etcd-txn", -1,
                                 "etcd failed a transaction without compares");
        }
        hkv = range_kv(&snap, 0);
        mkv = range_kv(&snap, 1);
        if (owner)
                ukv = range_kv(&snap, used_at);
        r = head_parse(hkv, &seq, prev, d);
        if (r >= 0)
                r = seen_check(seen_seq, seen_hash, seq,
                               seen_seq > 0 ? range_kv(&snap, seen_at) : NULL, d);
        if (r >= 0 && ukv)
                r = diag_fail(d, -EALREADY, "removal-replayed", -1,
                              "this removal was carried out already (a replayed request): "
                              "nothing is changed");
        if (r >= 0 && !mkv)
                r = diag_fail(d, -ENOENT, "etcd-member", -1,
                              "%s is not a member of the cluster (etcd): no member has this name",
                              name);
        if (r >= 0)
                r = member_parse(mkv, name, &old, d);
        if (r >= 0 && x)
                r = removal_matches(old, x, name, d);
        if (r >= 0) {
                (void) kdf_uuid_lower(json_string_value(json_object_get(old, "diskUuid")), lower,
                                      sizeof(lower));
                ak = json_string_value(json_object_get(old, "akDigest"));
                r = key_of(js, k.disk, "disks/", lower);
                if (r >= 0)
                        r = key_of(js, k.ak, "aks/", ak);
                if (r >= 0)
                        r = key_of(js, k.gone_disk, "removed-disks/", lower);
                if (r >= 0)
                        r = key_of(js, k.gone_ak, "removed-aks/", ak);
        }
        if (r >= 0 && seq >= (int64_t) AUDIT_ENTRIES_MAX)
                r = diag_fail(d, -EMSGSIZE, "audit-entries", -1,
                              "the cluster's audit chain is full");
        if (r >= 0)
                r = audit_log_entry_format(e, seq + 1, prev, &line, hash, d);
        if (r >= 0) {
                (void) snprintf(seqbuf, sizeof(seqbuf), "%020" PRId64, seq + 1);
                r = key_of(js, k.entry, "audit/", seqbuf);
        }
        if (r < 0) {
                etcd_txn_result_done(&snap);
                return r;
        }
        (void) snprintf(head, sizeof(head), "{\"hash\":\"%s\",\"seq\":%" PRId64 "}", hash, seq + 1);
        compare_seen(&cmp[n_cmp++], k.head, hkv);
        compare_seen(&cmp[n_cmp++], k.member, mkv);
        cmp[n_cmp++] = (EtcdCompare){ .key = k.entry,
                                      .target = ETCD_COMPARE_CREATE,
                                      .result = ETCD_EQUAL };
        /* The index keys go only if they are this member's. */
        cmp[n_cmp++] = (EtcdCompare){ .key = k.disk,
                                      .target = ETCD_COMPARE_VALUE,
                                      .result = ETCD_EQUAL,
                                      .value = name,
                                      .value_size = strlen(name) };
        writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_DELETE, .key = k.member };
        writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_DELETE, .key = k.disk };
        /* The removal sticks: a join service never registers this disk or key itself again. */
        writes[n_writes++] = (EtcdOp){
                .type = ETCD_OP_PUT, .key = k.gone_disk, .value = name, .value_size = strlen(name)
        };
        if (ak[0])
                writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_PUT,
                                               .key = k.gone_ak,
                                               .value = name,
                                               .value_size = strlen(name) };
        if (owner) {
                cmp[n_cmp++] = (EtcdCompare){ .key = used_key,
                                              .target = ETCD_COMPARE_CREATE,
                                              .result = ETCD_EQUAL };
                writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_PUT,
                                               .key = used_key,
                                               .value = name,
                                               .value_size = strlen(name) };
        }
        if (ak[0]) {
                cmp[n_cmp++] = (EtcdCompare){ .key = k.ak,
                                              .target = ETCD_COMPARE_VALUE,
                                              .result = ETCD_EQUAL,
                                              .value = name,
                                              .value_size = strlen(name) };
                writes[n_writes++] = (EtcdOp){ .type = ETCD_OP_DELETE, .key = k.ak };
        }
        writes[n_writes++] = (EtcdOp){
                .type = ETCD_OP_PUT, .key = k.entry, .value = line, .value_size = strlen(line)
        };
        writes[n_writes++] = (EtcdOp){
                .type = ETCD_OP_PUT, .key = k.head, .value = head, .value_size = strlen(head)
        };
        r = etcd_txn(js->etcd, cmp, n_cmp, writes, n_writes, NULL, 0, &res, d);
        etcd_txn_result_done(&snap);
        if (r < 0)
                return r;
        r = res.succeeded ? 1 : 0;
        etcd_txn_result_done(&res);
        if (r > 0)
                seen_note(js, seq + 1, hash);
        return r;
}

int join_etcd_remove(JoinService *js, const AuditEntry *e, const char *name, const JoinRemoval *x,
                     Diag *d)
{
        for (unsigned i = 0; i < ETCD_TXN_ATTEMPTS; i++) {
                int r = remove_once(js, e, name, x, d);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        return diag_fail(d, -EBUSY, "etcd-contention", -1,
                         "etcd: %u transactions in a row lost to other join services' writes",
                         ETCD_TXN_ATTEMPTS);
}

static int admit(JoinService *js, const AuditEntry *e, const char *name, const char *role,
                 const char *endpoint, const char *uuid, const char *ak, bool is_member,
                 bool registering, Diag *d)
{
        _cleanup_(json_decrefp) json_t *member = NULL;
        char now[32];
        time_t t = time(NULL);
        struct tm tm;

        (void) gmtime_r(&t, &tm);
        (void) strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
        member = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", name, "role", role, "endpoint",
                           endpoint, "diskUuid", uuid, "akDigest", ak ?: "", "admitted", now);
        if (!member)
                return -ENOMEM;
        return append_retrying(js, e, member, is_member, registering, d);
}

int join_etcd_admit(JoinService *js, const AuditEntry *e, const char *name, const char *role,
                    const char *endpoint, const char *uuid, const char *ak, bool is_member, Diag *d)
{
        return admit(js, e, name, role, endpoint, uuid, ak, is_member, false, d);
}

int join_etcd_start(JoinService *js, const EtcdConfig *config)
{
        _cleanup_(json_decrefp) json_t *members = NULL, *local = NULL;
        const json_t *self, *mine;
        Diag d;
        int r;

        diag_clear(&d);
        r = etcd_client_new(config, &js->etcd, &d);
        if (r < 0)
                return log_error_errno(r, "join-service: etcd: %s", d.message);
        r = seen_load(js);
        if (r < 0)
                return r;
        /* This node's own record, as record_self() wrote it to the local file: into etcd, once
         * (a control plane admitted through another join service is there already). */
        r = members_load_local(js, &local);
        if (r < 0)
                return r;
        mine = members_find(local, js->node_name);
        if (!mine)
                return log_error_errno(-ENOENT, "join-service: this node has no member record");
        diag_clear(&d);
        r = join_etcd_members_load(js, &members, &d);
        if (r < 0) {
                /* Not fatal: joins are refused (fail closed) until etcd answers, and this node
                 * is registered before the first decision. */
                log_warning("join-service: etcd does not answer (%s): joins are refused until "
                            "it does",
                            d.message);
                return 0;
        }
        /* Registered already only if the record under its name is this node's (the name may
         * have been removed and admitted again to another machine since). */
        self = members_find(members, js->node_name);
        if (self &&
            strcasecmp(json_string_value(json_object_get(self, "diskUuid")) ?: "",
                       json_string_value(json_object_get(mine, "diskUuid")) ?: "") == 0 &&
            strcmp(json_string_value(json_object_get(self, "akDigest")) ?: "",
                   json_string_value(json_object_get(mine, "akDigest")) ?: "") == 0) {
                js->etcd_registered = true;
                return 0;
        }
        /* Refused (removed, or its name is another node's): not fatal, every join is refused
         * with the reason (join_etcd_register() is asked again before each). */
        (void) join_etcd_register(js);
        return 0;
}

int join_etcd_register(JoinService *js)
{
        _cleanup_(json_decrefp) json_t *local = NULL;
        const json_t *mine;
        char policy_digest[sizeof(js->policy.digest)];
        Diag d;
        int r;

        if (js->etcd_registered)
                return 0;
        r = members_load_local(js, &local);
        if (r < 0)
                return r;
        mine = members_find(local, js->node_name);
        if (!mine)
                return -ENOENT;
        (void) pthread_mutex_lock(&js->policy.lock);
        memcpy(policy_digest, js->policy.digest, sizeof(policy_digest));
        (void) pthread_mutex_unlock(&js->policy.lock);
        const AuditEntry e = {
                .event = "admission",
                .node = js->node_name,
                .role = "control-plane",
                .policy_digest = policy_digest,
                .verdict = "admitted",
                .reason = "a control plane's join service registers its own node in the "
                          "cluster's membership",
        };
        diag_clear(&d);
        r = admit(js, &e, js->node_name, "control-plane",
                  json_string_value(json_object_get(mine, "endpoint")) ?: "",
                  json_string_value(json_object_get(mine, "diskUuid")) ?: "",
                  json_string_value(json_object_get(mine, "akDigest")) ?: "", false, true, &d);
        if (r == -EPERM || r == -EEXIST) {
                (void) snprintf(js->etcd_refused, sizeof(js->etcd_refused), "%s", d.message);
                /* Audited (in the cluster's chain too) once per run, not per join. */
                if (!js->etcd_refusal_audited) {
                        char reason[AUDIT_REASON_MAX];

                        js->etcd_refusal_audited = true;
                        (void) snprintf(reason, sizeof(reason),
                                        "a control plane's join service refused to register its "
                                        "own node: %s",
                                        d.message);
                        join_audit(js, "refusal", js->node_name, "control-plane", "", "refused",
                                   reason);
                }
                return log_error_errno(r,
                                       "join-service: this node is not registered in the "
                                       "cluster's membership in etcd, and joins are refused: %s",
                                       d.message);
        }
        js->etcd_refused[0] = '\0';
        if (r < 0)
                return log_error_errno(r, "join-service: cannot register this node in etcd: %s",
                                       d.message);
        js->etcd_registered = true;
        log_info("join-service: %s registered in the cluster's membership in etcd", js->node_name);
        return 0;
}

int join_etcd_audit_page(JoinService *js, int64_t from, char **ret_page, size_t *ret_size,
                         bool *ret_more, char **ret_head, int64_t *ret_seen_seq,
                         char ret_seen_hash[static 65], Diag *d)
{
        _cleanup_(freep) char *page = NULL, *head = NULL;
        char start[ETCD_KEY_MAX], end[ETCD_KEY_MAX], head_key[ETCD_KEY_MAX], seqbuf[24];
        EtcdTxnResult res = {};
        EtcdOp reads[2];
        const EtcdRange *rg;
        const EtcdKv *hkv;
        size_t size = 0;
        int r;

        if (from < 1 || from > (int64_t) AUDIT_ENTRIES_MAX)
                return diag_fail(d, -EINVAL, "audit-seq", -1, "entry %" PRId64 " is no entry",
                                 from);
        (void) snprintf(seqbuf, sizeof(seqbuf), "%020" PRId64, from);
        r = key_of(js, start, "audit/", seqbuf);
        (void) snprintf(seqbuf, sizeof(seqbuf), "%020" PRId64, from + JOIN_ETCD_AUDIT_PAGE_ENTRIES);
        if (r >= 0)
                r = key_of(js, end, "audit/", seqbuf);
        if (r >= 0)
                r = key_of(js, head_key, "audit-head", "");
        if (r < 0)
                return r;
        /* The page and the head in one snapshot: the last page's head names its last entry. */
        reads[0] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = start, .range_end = end };
        reads[1] = (EtcdOp){ .type = ETCD_OP_RANGE, .key = head_key };
        r = etcd_txn(js->etcd, NULL, 0, reads, 2, NULL, 0, &res, d);
        if (r < 0)
                return r;
        rg = &res.ranges[0];
        hkv = range_kv(&res, 1);
        /* Each value is one entry's line as audit.log would hold it: bounded as a line is. */
        for (size_t i = 0; r >= 0 && i < rg->n_kvs; i++)
                if (rg->kvs[i].value_size > AUDIT_LINE_MAX)
                        r = diag_fail(d, -EMSGSIZE, "etcd-audit-entry", -1,
                                      "%s is over %u bytes: the chain in etcd was altered",
                                      rg->kvs[i].key, AUDIT_LINE_MAX);
        if (r >= 0 && hkv && hkv->value_size > 256)
                r = diag_fail(d, -EMSGSIZE, "etcd-audit-head", -1,
                              "the audit head is over 256 bytes");
        if (r >= 0) {
                for (size_t i = 0; i < rg->n_kvs; i++)
                        size += rg->kvs[i].value_size;
                page = malloc(size + 1);
                head = hkv ? strndup((const char *) hkv->value, hkv->value_size) : NULL;
                if (!page || (hkv && !head))
                        r = -ENOMEM;
        }
        if (r >= 0) {
                size = 0;
                for (size_t i = 0; i < rg->n_kvs; i++) {
                        memcpy(page + size, rg->kvs[i].value, rg->kvs[i].value_size);
                        size += rg->kvs[i].value_size;
                }
                page[size] = 0;
                *ret_more = rg->n_kvs == JOIN_ETCD_AUDIT_PAGE_ENTRIES;
        }
        etcd_txn_result_done(&res);
        if (r < 0)
                return r;
        *ret_page = TAKE_PTR(page);
        *ret_size = size;
        *ret_head = TAKE_PTR(head);
        seen_get(ret_seen_seq, ret_seen_hash);
        return 0;
}

int join_etcd_health(JoinService *js, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        size_t n = etcd_client_n_endpoints(js->etcd), answering = 0;
        char key[ETCD_KEY_MAX];
        json_t *list = json_array();
        int r;

        doc = json_object();
        if (!doc || !list || json_object_set_new(doc, "endpoints", list) < 0) {
                json_decref(list);
                return -ENOMEM;
        }
        r = key_of(js, key, "audit-head", "");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Diag d;

                diag_clear(&d);
                r = etcd_endpoint_check(js->etcd, i, key, JOIN_ETCD_HEALTH_TIMEOUT_MS, &d);
                answering += r >= 0;
                if (json_array_append_new(
                            list,
                            json_pack("{s:s,s:b,s:o}", "endpoint",
                                      etcd_client_endpoint(js->etcd, i), "answers", r >= 0, "error",
                                      r >= 0 ? json_null()
                                             : json_string(d.message[0] ? d.message
                                                                        : strerror(-r)))) < 0)
                        return -ENOMEM;
        }
        /* A linearizable read answered: some member is part of a quorum. */
        if (json_object_set_new(doc, "configured", json_integer((json_int_t) n)) < 0 ||
            json_object_set_new(doc, "answering", json_integer((json_int_t) answering)) < 0 ||
            json_object_set_new(doc, "quorum", json_boolean(answering > 0)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(doc);
        return 0;
}
