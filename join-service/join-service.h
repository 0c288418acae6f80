/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "cloister/atls.h"
#include "cloister/attest-atls.h"
#include "cloister/attest.h"
#include "cloister/audit-log.h"
#include "cloister/etcd.h"
#include "cloister/evidence.h"
#include "cloister/kdf.h"
#include "cloister/mastersecret.h"
#include "cloister/mesh.h"
#include "cloister/node-attester.h"
#include "cloister/privsep.h"
#include "cloister/rpc.h"
#include "cloister/version.h"

/* The cluster policy as last loaded, with what identifies the file it came from: a changed file
 * is parsed anew and swapped in whole, or not at all. */
typedef struct PolicyHolder {
        const char *path;
        pthread_mutex_t lock;
        AttestPolicy *policy; /* PCR 15 forced to zero: joiners belong to no cluster yet */
        char *text;           /* the file as loaded: what control planes get in their ticket */
        /* The same with PCR 15 = this cluster: a member finishing a join cut short after PCR 15
         * (only for its own record: see join_handle_join()). */
        AttestPolicy *member;
        const uint8_t *cluster_id;
        char digest[2 * 32 + 1];
        struct stat st; /* of the file the policy was read from */
        /* --insecure-allow-any-ak: a policy with akTrust insecure-any is loaded (loudly) instead
         * of refused. Control planes are never admitted under one. */
        bool insecure_any_ak;
} PolicyHolder;

/* Handlers run on worker threads (rpc.h): a join in progress holds its name and disk UUID, so
 * that two requests cannot both pass the membership checks for one of them. */
#define JOIN_PENDING_MAX 256
typedef struct JoinPending {
        char name[64];
        char disk_uuid[40];
} JoinPending;

/* The ticket a member was last given, while its token is valid: a member whose answer was lost
 * (the connection dropped after the admission took effect) asks again and gets the same one. */
#define JOIN_TICKETS_MAX 256
typedef struct JoinIssued {
        char name[64];
        char disk_uuid[40];
        char ak_digest[65];
        char role[16];
        time_t expires;
        Secret *ticket; /* the ticket, serialised */
} JoinIssued;

/* Refusals an attacker can repeat for free (a client that does not attest, the same failing
 * evidence again): the first of a kind in a window is written, the rest are counted and written
 * as one entry when the window ends, so that a flood cannot grow the log without bound. */
#define JOIN_TALLY_WINDOW_SEC 60
#define JOIN_TALLY_KINDS      64
typedef struct JoinTally {
        char key[65];     /* the evidence digest, or "" for unattested clients */
        char node[64];    /* as first audited */
        char reason[160]; /* the first refusal's reason */
        unsigned count;   /* held back since */
} JoinTally;

/* The network process's channels to its monitor (join-service-network.c): one request at a time
 * on each, a caller takes a free one. */
#define JOIN_CHANNELS 10
typedef struct MonitorChannels {
        int fds[JOIN_CHANNELS];
        bool busy[JOIN_CHANNELS];
        pthread_mutex_t lock;
        pthread_cond_t freed;
} MonitorChannels;

typedef struct JoinCheckpoint JoinCheckpoint;

typedef struct JoinService {
        PolicyHolder policy;
        MonitorChannels *monitor; /* the network process only: where it asks */
        /* The monitor only: this node's TPM, which quotes the network process's handshakes
         * (JOIN_PRIVSEP_ATTEST); the network process holds no TPM. */
        NodeAttester *attester;
        /* The variant it attests with (--attest), known to both processes. */
        AttestVariant attest_variant;
        /* The monitor only: the nonces the network process sends clients (JOIN_PRIVSEP_NONCE);
         * a join or rejoin is refused unless its evidence is bound to one, unused. */
        PrivsepNonces nonces;
        /* The monitor only: its signed audit checkpoints (join-service-checkpoint.c). */
        JoinCheckpoint *checkpoint;
        /* Lock order: members_lock, then policy.lock, then audit_lock. */
        pthread_mutex_t members_lock; /* members.json, pending, issued */
        pthread_mutex_t audit_lock;   /* the audit log and its head */
        pthread_mutex_t certkey_lock; /* the uploaded-certificates key */
        JoinPending pending[JOIN_PENDING_MAX];
        size_t n_pending;
        JoinIssued issued[JOIN_TICKETS_MAX];
        JoinTally tally[JOIN_TALLY_KINDS]; /* under audit_lock */
        size_t n_tally;
        time_t tally_start;
        const char *state_dir;
        const char *os_release; /* the image's versions, for GET /v1/node */
        const char *kubeadm;
        const char *audit_log;
        const char *node_name;
        const char *node_endpoint; /* this node's own host:port */
        const char *node_disk_uuid;
        MasterSecret *master;
        uint8_t measurement_salt[MEASUREMENT_SALT_SIZE];
        uint8_t cluster_id[CLUSTER_ID_SIZE];
        char cluster_id_hex[2 * CLUSTER_ID_SIZE + 1];
        char control_plane_endpoint[256];
        /* The Kubernetes release this control plane's node state records ("" if none): told
         * to a rejoining node, which upgrades its kubelet only to it (docs/upgrade.md). */
        char kubernetes_version[VERSION_STRING_MAX];
        unsigned token_ttl_min;
        /* The monitor only, with --etcd-endpoints: the cluster's membership and audit chain
         * (join-service-etcd.c); NULL: the local files alone. */
        EtcdClient *etcd;
        bool etcd_registered; /* this node's own record is in etcd */
        /* Why this node's registration in etcd was refused (removed: docs/membership.md), said
         * in every join refusal; "" if it was not. */
        char etcd_refused[512];
        bool etcd_refusal_audited;
        /* The network process only: its server, whose counters /metrics adds. */
        RpcServer *rpc;
        /* --mesh (docs/mesh.md): this node's WireGuard public key, known to both processes (the
         * monitor made the pair after the fork and gave the network process the public half);
         * the private half and the thread that brings cloister0 to the membership are the
         * monitor's (join-service-mesh.c). */
        bool mesh_key_set;
        uint8_t mesh_public_key[MESH_KEY_SIZE];
        struct JoinMesh *mesh;
} JoinService;

/* The monitor only, after the fork: this node's WireGuard key pair made, its own entry (key,
 * mesh address, endpoint) registered in the membership as its own record is (no request: the
 * monitor keeps the membership), and a thread that applies the mesh document it would give a
 * member to this node's own cloister0 at once and every interval_sec. */
int join_mesh_start(JoinService *js, MeshBackend backend, unsigned interval_sec);
/* Stops that thread and wipes the key (the device and the drop rule stay). */
void join_mesh_stop(JoinService *js);
/* The membership's mesh changed (a member registered or re-keyed): apply it now. */
void join_mesh_kick(JoinService *js);

/* Loads the policy at h->path (first time or when the file changed); keeps the old policy and
 * fails if a changed file does not parse. */
int policy_holder_refresh(PolicyHolder *h, Diag *d);
void policy_holder_done(PolicyHolder *h);
/* The aTLS verifier for joining nodes: the current policy, PCR 15 zero; refusals are written to
 * the audit log with the evidence digest and the reason. */
AtlsVerifier join_verifier(JoinService *js);

void join_audit(JoinService *js, const char *event, const char *node, const char *role,
                const char *evidence_digest, const char *verdict, const char *reason);
/* The network process's server's on_refusal hook, called on its event loop: queued for the
 * monitor (join-service-refusals.c), never waited for; past JOIN_REFUSALS_QUEUED waiting, only
 * counted (the count is reported as one refusal). */
#define JOIN_REFUSALS_QUEUED 16
void join_on_refusal(void *userdata, const RpcRequest *req, const char *reason);
/* Waits (2 s at most) until the refusals queued so far are with the monitor: before an audit
 * page is read, so that it shows them. */
void join_refusals_flush(void);
/* Writes the counts of refusals held back (at the end of a window, before the log is served,
 * at exit). */
void join_audit_flush(JoinService *js);

/* The audit log goes to the owner's CLI in pages of at most this many bytes of whole entries
 * (GET /v1/audit?offset=N): a log of any size, without holding it in memory. As JSON (quotes
 * escaped) a page stays under the client's 1 MiB response limit. */
#define JOIN_AUDIT_PAGE (256U * 1024U)

/* Membership: members.json in the state directory, or with etcd the cluster's membership there
 * (members.json then its cache). */
int members_load(JoinService *js, json_t **ret);
/* The same, saying in d why etcd could not be read. */
int members_load_diag(JoinService *js, json_t **ret, Diag *d);
/* members.json alone. */
int members_load_local(JoinService *js, json_t **ret);
const json_t *members_find(const json_t *doc, const char *name);
/* The member whose state disk has this UUID: a disk (and so its key) is one member's. */
const json_t *members_find_disk(const json_t *doc, const char *disk_uuid);
/* The member recorded with this attestation-key digest, or NULL. */
const json_t *members_find_ak(const json_t *doc, const char *ak_digest);
/* SHA-256 of the evidence's attestation key (TPMT_PUBLIC), hex; "" for variants without one. */
int evidence_ak_digest(const Evidence *e, char ret[static 65]);
int members_record(JoinService *js, const char *name, const char *role, const char *endpoint,
                   const char *disk_uuid, const char *ak_digest);
/* A member's WireGuard key (base64) as its evidence bound it, and its mesh address, allocated
 * the first time (the lowest host number free, docs/mesh.md); members_lock held. -ENOENT if
 * name is no member. */
int members_set_mesh(JoinService *js, const char *name, const char *wg_key,
                     char ret_address[static MESH_ADDRESS_MAX + 1]);

/* The cluster's membership and audit chain in etcd (join-service-etcd.c, docs/membership.md).
 * The monitor, after the fork: the client, and this node's own record registered. */
int join_etcd_start(JoinService *js, const EtcdConfig *config);
int join_etcd_register(JoinService *js);
int join_etcd_members_load(JoinService *js, json_t **ret, Diag *d);
/* An admission or rejoin: the member record, its disk and attestation-key index keys and the
 * audit entry e, in one transaction. -EEXIST (d names the holder) if the name, disk or key is
 * another member's in etcd; -ETIMEDOUT, -EHOSTUNREACH, ... if etcd does not answer: then
 * nothing was written (or, for a timeout, all of it may have been: never a part). is_member:
 * the caller decided on the member's record (a rejoin, a join asked again): -EPERM if it is gone
 * from etcd since (evicted), never written back. */
int join_etcd_admit(JoinService *js, const AuditEntry *e, const char *name, const char *role,
                    const char *endpoint, const char *uuid, const char *ak, bool is_member,
                    Diag *d);
/* The owner's removal of a member (join-service-node-remove.c): the admission it names, and
 * its authenticator, which keys the record that it was carried out. An eviction by
 * re-attestation names the admission it judged, with no authenticator (NULL). */
typedef struct JoinRemoval {
        const char *disk_uuid, *ak_digest, *admitted;
        const char *authenticator; /* 64 lowercase hex digits, checked; NULL: an eviction */
} JoinRemoval;

/* A member removed (its record and index keys) with the audit entry e, in one transaction;
 * -ENOENT if it is no member there. With x: -ESTALE if the member recorded is another
 * admission than x names (removed and admitted again since); with x's authenticator (the
 * owner's removal), -EALREADY if x was carried out before (a replay); nothing changes then. */
int join_etcd_remove(JoinService *js, const AuditEntry *e, const char *name, const JoinRemoval *x,
                     Diag *d);
/* The cluster's audit chain in etcd for the owner's CLI (GET /v1/audit?chain=cluster&seq=N):
 * the lines of entries from..from+JOIN_ETCD_AUDIT_PAGE_ENTRIES-1 as they are (the CLI checks the
 * chain), concatenated, and the audit head's value of the same snapshot (NULL: none). more: the
 * page is full (there may be more). seen: the last entry this join service wrote itself (0: none),
 * which the chain must still hold (a rollback of etcd). */
#define JOIN_ETCD_AUDIT_PAGE_ENTRIES 64
int join_etcd_audit_page(JoinService *js, int64_t from, char **ret_page, size_t *ret_size,
                         bool *ret_more, char **ret_head, int64_t *ret_seen_seq,
                         char ret_seen_hash[static 65], Diag *d);
/* etcd's health as this join service sees it (GET /v1/members "etcd", cloister status): each
 * endpoint read once, linearizably, within JOIN_ETCD_HEALTH_TIMEOUT_MS: {"endpoints":
 * [{"endpoint", "answers", "error"}], "configured", "answering", "quorum"}. */
#define JOIN_ETCD_HEALTH_TIMEOUT_MS 1000U
int join_etcd_health(JoinService *js, json_t **ret);
/* One entry appended to the chain in etcd. */
int join_etcd_audit(JoinService *js, const AuditEntry *e, Diag *d);
/* join_audit() without the etcd chain: after join_etcd_admit() wrote the entry there. */
void join_audit_local(JoinService *js, const char *event, const char *node, const char *role,
                      const char *evidence_digest, const char *verdict, const char *reason);
/* The audit entry join_audit() would write (the policy digest in force filled in). */
void join_audit_entry(JoinService *js, AuditEntry *e, char policy_digest[static 65],
                      const char *event, const char *node, const char *role,
                      const char *evidence_digest, const char *verdict, const char *reason);
/* Frees what join_service_init_locks() and the handlers keep in memory. */
void join_service_init_locks(JoinService *js);
void join_service_done(JoinService *js);

/* A request as the monitor receives it from the network process (JOIN_PRIVSEP_*): typed
 * fields, each bounded by the protocol's table; strings NUL-terminated. The monitor trusts none
 * of it: the network process may be the attacker's. */
typedef struct JoinCall {
        const char *peer; /* the client's address, for the audit log */
        /* The client's evidence, the nonce the network process sent it and its certificate key
         * (DER SPKI): verified again here; answers are sealed to spki. NULL evidence: the client
         * did not attest. */
        const uint8_t *evidence;
        size_t evidence_size;
        const uint8_t *nonce;
        const uint8_t *spki;
        size_t spki_size;
        const char *name, *role, *disk_uuid, *endpoint;
        const char *authorization; /* "" or NULL: none */
        const char *query;         /* GET /v1/audit */
        const uint8_t *wg_key;     /* GET /v1/mesh: the WireGuard key the evidence binds */
        /* A repeated init (each exactly its size). */
        const uint8_t *master, *salt, *measurement_salt;
} JoinCall;

/* The monitor's own verdict on the evidence of a call: the current policy (PCR 15 zero, or this
 * cluster's for a member finishing its join), bound to the call's nonce and client key. The hex
 * digest of the evidence goes to ret_digest in any case. */
int join_call_verify(JoinService *js, const JoinCall *c, char ret_digest[static 65], Diag *d);
/* A refusal the network process reports (a handshake, an unattested client, a malformed body):
 * audited as a refusal, counted when repeated; never anything else. */
void join_monitor_refusal(JoinService *js, const char *node, const char *digest,
                          const char *reason);

int join_handle_rejoin(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                       size_t detail_size);
int join_handle_members(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                        size_t detail_size);
int join_handle_audit(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                      size_t detail_size);
int join_handle_init_again(JoinService *js, const JoinCall *req, json_t **ret_response,
                           char *detail, size_t detail_size);
int join_handle_join(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                     size_t detail_size);
int join_handle_node(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                     size_t detail_size);
/* GET /v1/mesh (join-service-mesh.c, docs/mesh.md): an attested member registers the WireGuard
 * key its evidence binds and gets the mesh. */
int join_handle_mesh(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                     size_t detail_size);

/* The monitor (join-service-monitor.c): answers the typed requests arriving on fds (one thread
 * each) until the network process closes them. */
int join_monitor_serve(JoinService *js, const int fds[static JOIN_CHANNELS]);

/* The network process (join-service-network.c). */
extern const RpcRoute join_network_routes[];
int monitor_channels_init(MonitorChannels *m, const int fds[static JOIN_CHANNELS]);
/* One request, its reply: status (0 or -errno), detail, answer (NULL-terminated strings in
 * *ret_buf, which the caller frees with privsep_wipe_free()). */
int monitor_call(MonitorChannels *m, PrivsepBuf *request, int *ret_status, const char **ret_detail,
                 const char **ret_answer, uint8_t **ret_buf, size_t *ret_size);
/* GET /metrics on the loopback listener (--metrics-listen, rpc-text.h): the monitor's text
 * (JOIN_PRIVSEP_METRICS), relayed as it is. */
int join_network_metrics(void *userdata, char **ret_text);
/* The nonce a handshake sends the client, issued by the monitor (JOIN_PRIVSEP_NONCE). */
int join_monitor_nonce(void *userdata, uint8_t ret[static ATLS_NONCE_SIZE]);
/* Nonces are good for this long from their handshake to the monitor's decision (the request
 * deadline, a worker queue and kubeadm calls ahead of it), and this many at once. */
#define JOIN_NONCE_TTL_SEC 120
#define JOIN_NONCES_MAX    4096
/* This node's evidence in the network process's handshakes, quoted by the monitor
 * (JOIN_PRIVSEP_ATTEST): js->monitor must be set before the first handshake. */
AtlsAttester join_monitor_attester(JoinService *js);
/* A refusal for the monitor to audit (JOIN_PRIVSEP_REFUSAL). */
void join_network_refusal(JoinService *js, const char *node, const char *digest,
                          const char *reason);
/* TDX collateral for evidence that carries none (join-service-tdx.c): configure before the
 * fork; the monitor serves it from the cache and refreshes it, the network process asks. */
void join_tdx_configure(const char *cache_dir, const char *pcs_url, unsigned ahead_sec,
                        unsigned interval_sec);
void join_tdx_monitor_init(void);
void join_tdx_monitor_done(void);
void join_tdx_network_init(JoinService *js);
void join_tdx_answer(const PrivsepMsg *m, PrivsepBuf *out);
/* The policy in force, fetched from the monitor when it changed there. */
int policy_holder_refresh_from_monitor(JoinService *js, Diag *d);
int policy_holder_load_text(PolicyHolder *h, const uint8_t *data, size_t size, Diag *d);

/* The owner's policy updates (join-service-policy-push.c, docs/policy-update.md). */
/* The monitor, at start: a stored update whose policy file was not replaced (a stop between
 * the two) is put in force. */
void join_policy_push_restore(JoinService *js);
/* The version of the policy in force (the file re-read if it changed), for GET /v1/members: an
 * integer (0: never pushed), or JSON null when the policy in force is not the stored version's
 * (replaced by hand) or the record is damaged. */
int join_policy_version(JoinService *js, json_t **ret);
/* JOIN_PRIVSEP_POLICY_PUSH in the monitor: size is the document's, without its NUL. */
int join_handle_policy_push(JoinService *js, const char *peer, const char *version,
                            const char *authenticator, const char *text, size_t size,
                            json_t **ret_response, char *detail, size_t detail_size);
/* The owner's removal of a member (join-service-node-remove.c, docs/membership.md):
 * JOIN_PRIVSEP_NODE_REMOVE in the monitor, and POST /v1/node-remove in the network process. */
int join_handle_node_remove(JoinService *js, const char *peer, const char *name,
                            const JoinRemoval *x, json_t **ret_response, char *detail,
                            size_t detail_size);
int join_net_node_remove(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                         size_t detail_size);
/* The network process: POST /v1/policy. */
int join_net_policy_push(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                         size_t detail_size);
/* The network process: sends a typed request (consumed) and turns the reply into a route's
 * answer. */
int join_network_ask(JoinService *js, PrivsepBuf *b, json_t **ret_response, char *detail,
                     size_t detail_size);
/* Signed audit checkpoints (join-service-checkpoint.c, docs/audit-log.md): the monitor signs its
 * log's head at start (refusing a log behind the checkpoint an earlier run left), then every
 * interval_sec (0: never) with a fresh time. js->attester must be set. */
#define JOIN_CHECKPOINT_INTERVAL_SEC 600
int join_checkpoint_start(JoinService *js, unsigned interval_sec);
void join_checkpoint_stop(JoinService *js);
/* Signs the head if it moved since the last checkpoint (always with force); audit_lock held.
 * -ESTALE once the log changed behind the monitor's back (then it never signs again). */
int join_checkpoint_update_locked(JoinService *js, bool force);
/* After each of the monitor's own appends (audit_lock still held): the log's new end. */
void join_checkpoint_appended_locked(JoinService *js);
/* join_checkpoint_update_locked() taking audit_lock (after an admission or rejoin). */
void join_checkpoint_update(JoinService *js);
/* The checkpoint to serve with the log (audit_lock held): the last one this run signed, else the
 * file an earlier run left; -ENOENT if none. */
int join_checkpoint_read_locked(JoinService *js, char **ret);
