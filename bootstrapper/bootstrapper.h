/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <pthread.h>

#include "cloister/atls.h"
#include "cloister/kdf.h"
#include "cloister/mesh.h"
#include "cloister/metadata.h"
#include "cloister/rpc.h"
#include "cloister/secret.h"
#include "cloister/tpm-device.h"
#include "cloister/version.h"

/* This boot's log records kept in memory, for the owner after a failed init. */
#define BOOTSTRAPPER_LOG_MAX (64U * 1024U)

/* How this boot of the node started (decided once, before serving). */
typedef enum BootstrapperMode {
        BOOTSTRAPPER_MODE_INIT,    /* in no cluster: waits for 'cloister apply' */
        BOOTSTRAPPER_MODE_JOIN,    /* joins through the join services in its metadata */
        BOOTSTRAPPER_MODE_REJOIN,  /* a member after a reboot: rejoins for its disk key */
        BOOTSTRAPPER_MODE_RECOVER, /* a control plane after a full outage: 'cloister recover' */
} BootstrapperMode;

typedef struct Bootstrapper {
        TpmDevice *tpm;
        pthread_mutex_t *tpm_lock;    /* shared with the aTLS attester */
        const char *state_disk;       /* LUKS2 image or device */
        const char *first_boot_key;   /* key file of the first-boot keyslot */
        const char *state_dir;        /* node state and the kubeconfig */
        const char *kubeadm;          /* kubeadm binary (a test double where none exists) */
        const char *init_secret_hash; /* from metadata; NULL only with the insecure option */
        const char *node_name;        /* from metadata (or the host name) */
        const char *advertise_address;
        const char *control_plane_endpoint; /* from metadata, or advertise_address:6443 */
        bool initialized;
        /* Control planes: after init (or join), the node is handed to the join service, which
         * execs in this process's place (it alone may then use the TPM). */
        const char *join_service;
        const char *endpoint;  /* this node's attestable host:port */
        char disk_uuid[40];    /* the state disk's LUKS UUID */
        AtlsAttester attester; /* this node's TPM, for the join client's own evidence */
        RpcServer *server;
        bool handoff;
        /* --state-mount: state_dir lives on the state disk, which the disk mapper mounts on
         * state_mount (binds: state_bind, comma-separated). state_locked: it is initialized and
         * not mounted yet (after a reboot its key comes from the join service or the owner). */
        const char *state_mount, *state_bind, *disk_mapper;
        bool state_locked;
        /* --insecure-allow-any-ak: policies with akTrust insecure-any are accepted (loudly) */
        bool insecure_any_ak;
        /* Handlers run on worker threads: init and recovery one at a time. */
        pthread_mutex_t op_lock;
        BootstrapperMode mode;
        /* The join (or rejoin) gave up: the node only serves its state and its log until it
         * stops (--failed-join-linger). */
        bool join_failed;
        const char *os_release; /* the image's os-release: its versions (GET /v1/node) */
        /* --fail-closed-after: the member's attestation of its join services
         * (bootstrapper-fail-closed.c); NULL when off. */
        struct BootstrapperWatch *watch;
        /* --mesh (docs/mesh.md): this node's WireGuard key, made at start, in memory only */
        bool mesh;
        MeshBackend mesh_backend;
        MeshKey mesh_key;
        unsigned mesh_interval_sec;
        const char *mesh_runtime_dir;
        bool mesh_started; /* its thread runs: GET /v1/node reports the device */
        /* --etcd-membership: kubeadm's certificatesDir (its etcd CA in etcd/), which the kubeadm
         * configuration names; NULL: the join service keeps its membership in local files. */
        const char *kubernetes_pki;
} Bootstrapper;

/* The join service's etcd client certificate (bootstrapper-etcd.c): issued from kubeadm's etcd
 * CA (pki_dir/etcd/ca.crt, ca.key) with a fresh key, written to out_dir/etcd-client.crt and
 * out_dir/etcd-client.key (0600); ret gets the paths, and the CA's. */
typedef struct BootstrapperEtcdClient {
        char cert[4096], key[4096], ca[4096];
} BootstrapperEtcdClient;
int bootstrapper_etcd_client_issue(const char *pki_dir, const char *out_dir,
                                   BootstrapperEtcdClient *ret);
/* The join service's --etcd-endpoints into ret: local (this node's etcd member) first, then
 * https://IP:2379 of every other control plane in the cluster's membership in etcd (read through
 * local with client; the cluster from <state_dir>/node-state.json). etcd that cannot be read:
 * local alone, with a warning. */
int bootstrapper_etcd_endpoints(const Bootstrapper *b, const BootstrapperEtcdClient *client,
                                const char *local, char *ret, size_t size);

typedef struct BootstrapperWatch BootstrapperWatch;
/* A member attests its join services (the metadata's peers, held to the policy the join itself
 * used) every interval seconds on a thread of its own; with no pass for longer than
 * fail_closed_after seconds it is fail-closed (docs/reattestation.md, "The node's side"). */
int bootstrapper_watch_start(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                             unsigned fail_closed_after, unsigned interval);
void bootstrapper_watch_stop(Bootstrapper *b);
/* true while fail-closed (why says so, for the refusal's detail): what the node serves beyond
 * its evidence is refused. */
bool bootstrapper_fail_closed(Bootstrapper *b, char *why, size_t size);
/* {"failClosed", "failClosedAfter", "intervalSeconds", "lastAttested", "lastJoinService",
 * "lastError", "failClosedSince", "attempts", "passes"} for GET /v1/node; JSON null when off. */
json_t *bootstrapper_watch_json(Bootstrapper *b);

/* The node's state in words, as GET /v1/node reports it and refusals name it:
 * "uninitialized", "joining", "join-failed", "awaiting-recovery", "member". */
const char *bootstrapper_state(const Bootstrapper *b);
/* POST /v1/init or /v1/recover where the node's state does not allow it: 409 with
 * {"code": "already-member" | "awaiting-recovery" | "not-initialized"} and the next step in the
 * detail (docs/troubleshooting.md, "Node states"). */
int bootstrapper_handle_wrong_state(void *userdata, const RpcRequest *req, json_t **ret_response,
                                    char *detail, size_t detail_size);
/* Sets *ret_response to {"code": code} for a refusal; returns r. */
int bootstrapper_refusal_code(json_t **ret_response, const char *code, int r);

int bootstrapper_pcr15_is_zero(Bootstrapper *b, bool *ret);
/* -EPERM (logged) for a qemu-vtpm policy with akTrust insecure-any, unless the insecure option
 * was given (then a loud warning); what names the policy in the message. */
typedef struct AttestPolicy AttestPolicy;
/* The policy this node holds join services to: AK trust and variant from path, the image PCRs
 * as this node measured them, PCR 15 = the metadata's cluster (cid). */
int bootstrapper_join_service_policy(Bootstrapper *b, const NodeMetadata *md, const char *path,
                                     uint8_t cid[static CLUSTER_ID_SIZE], AttestPolicy **ret);
int bootstrapper_check_ak_trust(const Bootstrapper *b, const AttestPolicy *p, const char *what);
/* The policy this node holds join services to: AK trust and variant from the file at path, the
 * image PCRs as this node measured them, PCR 15 = the metadata's cluster ID (in cid). */
int bootstrapper_join_service_policy(Bootstrapper *b, const NodeMetadata *md, const char *path,
                                     uint8_t cid[static CLUSTER_ID_SIZE], AttestPolicy **ret);

/* The mesh (bootstrapper-mesh.c, docs/mesh.md): once the node is a member, a thread asks the
 * join services in md's peers for the mesh (GET /v1/mesh, mutual aTLS with the node's WireGuard
 * key bound into its evidence) right away and every mesh_interval_sec, and applies it. */
typedef struct BootstrapperMesh BootstrapperMesh;
int bootstrapper_mesh_start(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                            BootstrapperMesh **ret);
void bootstrapper_mesh_stop(BootstrapperMesh *m);
/* <state_dir>/node-state.json exists (written once the node is a member). */
bool bootstrapper_node_state_exists(const Bootstrapper *b);
/* Whether dir is the root of a mount (false if it does not exist). */
int bootstrapper_is_mount_point(const char *dir, bool *ret);
/* If the state disk is locked: runs `<disk_mapper> setup --device <state_disk> --key-file -
 * --mount <state_mount> [--bind <state_bind>]` with disk_key on its stdin (a pipe), then checks
 * the mount. Call only with a key that luks_check_key() accepted, and before PCR 15 is extended.
 * A no-op when nothing is locked. */
int bootstrapper_open_state(Bootstrapper *b, const Secret *disk_key);
/* PCR 15 holds exactly this cluster's ID (hex), extended once. */
bool bootstrapper_pcr15_is_cluster(Bootstrapper *b, const char *cluster_id_hex);
int bootstrapper_handle_init(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t detail_size);
/* POST /v1/log: this boot's log records, to a caller who proves the init secret (as init: the
 * same scrypt hash from the metadata, the same per-address backoff and global limit). 403 when
 * the metadata has no hash or the secret is wrong, 429 while the caller must wait. */
int bootstrapper_handle_log(void *userdata, const RpcRequest *req, json_t **ret_response,
                            char *detail, size_t detail_size);
/* The first-boot key file into locked memory (the read buffer is wiped). */
int bootstrapper_first_boot_key(Bootstrapper *b, Secret **ret);
int bootstrapper_write_cluster_secrets(Bootstrapper *b, Secret *master,
                                       const uint8_t salt[static 32], const char *policy_text);
int bootstrapper_handle_node(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t detail_size);

typedef struct KubeadmParams {
        const char *node_name, *cluster_name, *version, *service_cidr;
        const char *advertise_address;      /* this node's address */
        const char *control_plane_endpoint; /* host:port */
        const char *endpoint_host;          /* its host part (a certificate SAN) */
        const char *audit_policy;           /* file the API server reads its audit policy from */
        const char *certificates_dir;       /* kubeadm's certificatesDir; NULL: its default */
} KubeadmParams;

bool kubeadm_name_ok(const char *s);
bool kubeadm_node_name_ok(const char *s);
bool kubeadm_version_ok(const char *s);
bool kubeadm_cidr_ok(const char *s);
/* -EINVAL if a parameter is malformed; the file is written 0600. */
int kubeadm_write_config(const KubeadmParams *p, const char *path);
int kubeadm_write_audit_policy(const char *path);

typedef struct KubeadmJoinParams {
        const char *node_name, *advertise_address;
        const char *control_plane_endpoint; /* host:port of the API server */
        const char *token;                  /* bootstrap token from the ticket */
        const char *ca_cert_hash;           /* "sha256:<hex>" */
        const char *certificate_key;        /* control planes only, else NULL */
} KubeadmJoinParams;

int kubeadm_write_join_config(const KubeadmJoinParams *p, const char *path);

/* The join client: attests to a join service from the metadata's peers (and verifies it: the
 * image PCRs this node measured itself, the cluster ID from the metadata in PCR 15, AK trust
 * from policy_path), takes the ticket, re-keys the state disk, extends PCR 15 and runs
 * kubeadm join. Retries with backoff for timeout_sec. */
int bootstrapper_join(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                      unsigned timeout_sec);
/* After a reboot (state disk initialised, PCR 15 zero): the same mutual attestation, for the
 * disk key only; it must open the disk; a locked state disk is then opened and mounted; then
 * PCR 15. Kubernetes membership is kept. Returns BOOTSTRAPPER_REJOIN_UNFINISHED_JOIN (PCR 15
 * untouched) if the now readable state holds no node state: a join cut short after the re-key,
 * which bootstrapper_join() finishes. */
#define BOOTSTRAPPER_REJOIN_UNFINISHED_JOIN 1
int bootstrapper_rejoin(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                        unsigned timeout_sec);
/* The Kubernetes release a node's state disk runs (bootstrapper-kubernetes.c, docs/upgrade.md).
 * The release the image carries, its os-release's KUBERNETES_VERSION, into buf: -ENOENT if it
 * names none, -EBADMSG if it is not v1.MINOR.PATCH. */
int bootstrapper_image_kubernetes(const Bootstrapper *b, char buf[static VERSION_STRING_MAX]);
/* node-state.json's kubernetesVersion set to version (the file rewritten atomically). */
int bootstrapper_record_kubernetes(const Bootstrapper *b, const char *version);
/* A member's boot, its state readable, before PCR 15: the image's release against the recorded
 * one. The same (or none named): 0. The next minor version or a newer patch: kubeadm upgrade
 * apply (a control plane, when cluster, the release the join service's node state records, is
 * NULL or older) or kubeadm upgrade node (cluster must be the image's release), then recorded: 0.
 * Anything else: -EPERM (or the failure), why says why and the next step. */
int bootstrapper_kubernetes_follow(Bootstrapper *b, const char *cluster, char *why,
                                   size_t why_size);
/* POST /v1/recover (control planes after a full outage): the owner's master secret, after the
 * owner has verified this node; it must open the disk and derive the recorded cluster ID. */
int bootstrapper_handle_recover(void *userdata, const RpcRequest *req, json_t **ret_response,
                                char *detail, size_t detail_size);
