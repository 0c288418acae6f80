/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/init-secret.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/luks.h"
#include "cloister/mastersecret.h"
#include "cloister/rpc.h"
#include "cloister/spawn.h"
#include "cloister/version.h"

#include "bootstrapper.h"

static int read_pcr15(Bootstrapper *b, uint8_t ret[static 32])
{
        uint8_t pcrs[TPM_DEVICE_PCRS][32];
        int r;

        (void) pthread_mutex_lock(b->tpm_lock);
        r = tpm_device_pcr_read(b->tpm, 1U << 15, pcrs);
        (void) pthread_mutex_unlock(b->tpm_lock);
        if (r >= 0)
                memcpy(ret, pcrs[15], 32);
        return r;
}

bool bootstrapper_pcr15_is_cluster(Bootstrapper *b, const char *cluster_id_hex)
{
        uint8_t cid[CLUSTER_ID_SIZE], pcr15[32], expected[32];

        if (!cluster_id_hex || hex_decode_exact(cluster_id_hex, cid, sizeof(cid)) < 0 ||
            read_pcr15(b, pcr15) < 0)
                return false;
        kdf_pcr15_expected(cid, expected);
        return memcmp(pcr15, expected, 32) == 0;
}

int bootstrapper_check_ak_trust(const Bootstrapper *b, const AttestPolicy *p, const char *what)
{
        if (p->variant != ATTEST_VARIANT_QEMU_VTPM || p->ak_trust != AK_TRUST_INSECURE_ANY)
                return 0;
        if (!b->insecure_any_ak)
                return log_error_errno(-EPERM,
                                       "%s has akTrust insecure-any: it trusts any TPM, so anyone "
                                       "can pose as a node or a join service. Refused: pin the "
                                       "nodes' keys or use ek-cert (for a throw-away test only: "
                                       "--insecure-allow-any-ak).",
                                       what);
        log_warning("INSECURE: %s trusts ANY attestation key (--insecure-allow-any-ak).", what);
        return 0;
}

int bootstrapper_pcr15_is_zero(Bootstrapper *b, bool *ret)
{
        static const uint8_t zero[32];
        uint8_t pcr15[32];
        int r = read_pcr15(b, pcr15);

        if (r < 0)
                return r;
        *ret = memcmp(pcr15, zero, 32) == 0;
        return 0;
}

static int fail(char *detail, size_t n, int r, const char *fmt, ...) _printf_(4, 5);

static int fail(char *detail, size_t n, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(detail, n, fmt, ap);
        va_end(ap);
        log_error_errno(r, "init: %s", detail);
        return r;
}

/* kubeadm init with the generated configuration (the double checks every field). */
static int run_kubeadm(Bootstrapper *b, const char *cluster_name, const char *version,
                       const char *service_cidr, char *detail, size_t n)
{
        _cleanup_(freep) char *cfgpath = NULL, *logpath = NULL, *policy = NULL, *host = NULL;
        const char *colon;
        int r;

        colon = strrchr(b->control_plane_endpoint, ':');
        host = strndup(b->control_plane_endpoint,
                       colon ? (size_t) (colon - b->control_plane_endpoint)
                             : strlen(b->control_plane_endpoint));
        /* "[fd00::1]:6443": the certificate SAN is the address without brackets. */
        if (host && host[0] == '[' && strlen(host) >= 2 && host[strlen(host) - 1] == ']') {
                memmove(host, host + 1, strlen(host) - 2);
                host[strlen(host) - 2] = '\0';
        }
        if (!host || asprintf(&cfgpath, "%s/kubeadm-config.yaml", b->state_dir) < 0 ||
            asprintf(&logpath, "%s/kubeadm.log", b->state_dir) < 0 ||
            asprintf(&policy, "%s/audit-policy.yaml", b->state_dir) < 0)
                return -ENOMEM;
        const KubeadmParams params = {
                .node_name = b->node_name,
                .cluster_name = cluster_name,
                .version = version,
                .service_cidr = service_cidr,
                .advertise_address = b->advertise_address,
                .control_plane_endpoint = b->control_plane_endpoint,
                .endpoint_host = host,
                .audit_policy = policy,
                .certificates_dir = b->kubernetes_pki,
        };
        r = kubeadm_write_audit_policy(policy);
        if (r >= 0)
                r = kubeadm_write_config(&params, cfgpath);
        if (r < 0)
                return fail(detail, n, r, "cannot write the kubeadm configuration %s", cfgpath);
        char *const argv[] = { (char *) b->kubeadm,           (char *) "init",
                               (char *) "--config",           cfgpath,
                               (char *) "--skip-token-print", NULL };
        log_info("bootstrapper: kubeadm init (node %s, Kubernetes %s)", b->node_name, version);
        r = spawn_wait(argv, logpath);
        if (r != 0)
                return fail(detail, n, r < 0 ? r : -EIO, "kubeadm init failed (see %s)", logpath);
        return 0;
}

/* Wrong init secrets cost one scrypt each: an address that sent one waits before its next
 * attempt is even looked at (1 s, doubling to INIT_BACKOFF_MAX_SEC), answered 429 meanwhile;
 * after INIT_ATTEMPTS_PER_SEC wrong ones in a second, no secret is checked for the rest of that
 * second. The owner's CLI retries a 429; GET /v1/node runs on other workers all along. */
#define INIT_BACKOFF_MAX_SEC  32
#define INIT_ATTEMPTS_PER_SEC 4
#define INIT_SOURCES_MAX      256

typedef struct InitSource {
        char address[64];
        unsigned failures;
        double not_before;
} InitSource;

static pthread_mutex_t init_limit_lock = PTHREAD_MUTEX_INITIALIZER;
static InitSource init_sources[INIT_SOURCES_MAX];
static double init_global_window;
static unsigned init_global_count;

static double now_sec(void)
{
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* "10.0.0.2:41234" or "[::1]:41234" without its port. */
static void peer_address(const char *peer, char ret[static 64])
{
        const char *colon = strrchr(peer ?: "", ':');
        size_t n = colon ? (size_t) (colon - peer) : strlen(peer ?: "");

        (void) snprintf(ret, 64, "%.*s", (int) MIN(n, (size_t) 63), peer ?: "");
}

static InitSource *init_source(const char *address, bool create)
{
        InitSource *oldest = &init_sources[0];

        for (size_t i = 0; i < INIT_SOURCES_MAX; i++) {
                if (strcmp(init_sources[i].address, address) == 0)
                        return &init_sources[i];
                if (init_sources[i].not_before < oldest->not_before)
                        oldest = &init_sources[i];
        }
        if (!create)
                return NULL;
        *oldest = (InitSource){};
        (void) snprintf(oldest->address, sizeof(oldest->address), "%s", address);
        return oldest;
}

/* 0: go on and check the secret; -EBUSY: not now, *ret_wait seconds. */
static int init_attempt_allowed(const char *address, unsigned *ret_wait)
{
        double now = now_sec();
        InitSource *src;
        int r = 0;

        (void) pthread_mutex_lock(&init_limit_lock);
        src = init_source(address, false);
        if (src && src->not_before > now) {
                *ret_wait = (unsigned) (src->not_before - now) + 1;
                r = -EBUSY;
        } else if (now - init_global_window < 1.0 && init_global_count >= INIT_ATTEMPTS_PER_SEC) {
                /* A flood from many addresses: nobody's secret is checked for the rest of this
                 * second (the owner's CLI retries a 429). */
                *ret_wait = 1;
                r = -EBUSY;
        }
        (void) pthread_mutex_unlock(&init_limit_lock);
        return r;
}

static void init_attempt_failed(const char *address)
{
        double now = now_sec();
        InitSource *src;

        (void) pthread_mutex_lock(&init_limit_lock);
        src = init_source(address, true);
        src->failures++;
        src->not_before = now + (double) MIN(1U << MIN(src->failures - 1, 5U),
                                             (unsigned) INIT_BACKOFF_MAX_SEC);
        if (now - init_global_window >= 1.0) {
                init_global_window = now;
                init_global_count = 0;
        }
        init_global_count++;
        (void) pthread_mutex_unlock(&init_limit_lock);
}

static int handle_init(Bootstrapper *b, const RpcRequest *req, json_t **ret_response, char *detail,
                       size_t n, bool *owner);

/* A failed init, asked by the proven owner: the answer carries this boot's log records (in
 * memory, BOOTSTRAPPER_LOG_MAX bytes at most, no secret ever logged), so the owner's CLI can keep
 * them (docs/troubleshooting.md, "The node's log after a failed apply"). */
static void attach_log(json_t **ret_response)
{
        _cleanup_(freep) char *text = NULL;
        size_t size;
        bool dropped;

        if (log_ring_read(&text, &size, &dropped) < 0)
                return;
        /* Printable ASCII and newlines only: a JSON string, and nothing a terminal obeys. */
        for (size_t i = 0; i < size; i++)
                if ((text[i] < ' ' && text[i] != '\n') || (unsigned char) text[i] >= 0x7f)
                        text[i] = '?';
        if (!*ret_response)
                *ret_response = json_object();
        if (*ret_response &&
            (json_object_set_new(*ret_response, "nodeLog", json_stringn(text, size)) < 0 ||
             json_object_set_new(*ret_response, "nodeLogDropped", json_boolean(dropped)) < 0))
                log_debug("bootstrapper: the log does not fit the answer");
}

int bootstrapper_handle_init(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t n)
{
        Bootstrapper *b = userdata;
        char address[64];
        unsigned wait = 0;
        bool owner = false;
        int r;

        peer_address(req->peer, address);
        if (b->init_secret_hash && init_attempt_allowed(address, &wait) < 0)
                return fail(detail, n, -EBUSY,
                            "too many wrong init secrets from %s: try again in %u s", address,
                            wait);
        /* One init at a time: it extends PCR 15 and re-keys the disk. Asked again once it is
         * this request's turn: attempts that queued behind a failure wait out its backoff. */
        (void) pthread_mutex_lock(&b->op_lock);
        if (b->init_secret_hash && init_attempt_allowed(address, &wait) < 0) {
                (void) pthread_mutex_unlock(&b->op_lock);
                return fail(detail, n, -EBUSY,
                            "too many wrong init secrets from %s: try again in %u s", address,
                            wait);
        }
        r = handle_init(b, req, ret_response, detail, n, &owner);
        (void) pthread_mutex_unlock(&b->op_lock);
        if (r < 0 && owner)
                attach_log(ret_response);
        if (r == -EACCES && b->init_secret_hash)
                init_attempt_failed(address);
        return r;
}

/* POST /v1/log {"initSecret": base64}: this boot's log for the proven owner, on a node of any
 * state (a joining node, one whose join failed, ...). The same proof as init, behind the same
 * per-address backoff and global limit (a wrong secret here costs as much as one sent to
 * /v1/init), one check at a time. A node whose metadata carries no init-secret hash serves its
 * log to no one (docs/troubleshooting.md, "The node's log after a failed join"). */
static int refuse_log(char *detail, size_t n, int r, const char *fmt, ...) _printf_(4, 5);

static int refuse_log(char *detail, size_t n, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(detail, n, fmt, ap);
        va_end(ap);
        log_warning("bootstrapper: log request refused: %s", detail);
        return r;
}

int bootstrapper_handle_log(void *userdata, const RpcRequest *req, json_t **ret_response,
                            char *detail, size_t n)
{
        static const char *const keys[] = { "initSecret", NULL };
        static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
        Bootstrapper *b = userdata;
        JsonCtx ctx = { .source = "log request", .path = "" };
        _cleanup_(secret_freep) Secret *secret = NULL;
        char address[64];
        unsigned wait = 0;
        Diag d;
        int r;

        char closed[768];

        /* Fail-closed (no join service attested for too long): the log is held back, whoever
         * asks (bootstrapper-fail-closed.c). */
        if (bootstrapper_fail_closed(b, closed, sizeof(closed))) {
                log_warning("bootstrapper: POST /v1/log refused: %s", closed);
                (void) snprintf(detail, n, "%s", closed);
                return bootstrapper_refusal_code(ret_response, "fail-closed", -EPERM);
        }
        if (!b->init_secret_hash)
                return refuse_log(
                        detail, n, -EPERM,
                        "this node's metadata carries no init-secret hash, so it gives its "
                        "log to no one: read it on the node (its journal)");
        peer_address(req->peer, address);
        if (init_attempt_allowed(address, &wait) < 0)
                return refuse_log(detail, n, -EBUSY,
                                  "too many wrong init secrets from %s: try again in %u s", address,
                                  wait);
        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, req->body, keys) < 0) {
                (void) snprintf(detail, n, "%s", d.message);
                return -EBADMSG;
        }
        if (!json_object_get(req->body, "initSecret"))
                return refuse_log(detail, n, -EACCES,
                                  "the node's log needs the owner's init secret (cloister logs "
                                  "--init-secret-file)");
        if (json_get_base64_secret(&ctx, req->body, "initSecret", INIT_SECRET_SIZE, &secret) < 0) {
                (void) snprintf(detail, n, "%s", d.message);
                return -EBADMSG;
        }
        /* One scrypt at a time, asked again once it is this request's turn (as init). */
        (void) pthread_mutex_lock(&log_lock);
        if (init_attempt_allowed(address, &wait) < 0) {
                (void) pthread_mutex_unlock(&log_lock);
                return refuse_log(detail, n, -EBUSY,
                                  "too many wrong init secrets from %s: try again in %u s", address,
                                  wait);
        }
        r = init_secret_verify(secret, b->init_secret_hash, &d);
        if (r == -EKEYREJECTED)
                init_attempt_failed(address);
        (void) pthread_mutex_unlock(&log_lock);
        if (r < 0) {
                return refuse_log(detail, n, r == -EKEYREJECTED ? -EACCES : r, "%s", d.message);
        }
        log_info("bootstrapper: this boot's log sent to the owner (init secret proven)");
        attach_log(ret_response);
        if (!*ret_response || !json_object_get(*ret_response, "nodeLog"))
                return refuse_log(detail, n, -ENOMEM, "the log could not be read");
        return 0;
}

static int handle_init(Bootstrapper *b, const RpcRequest *req, json_t **ret_response, char *detail,
                       size_t n, bool *owner)
{
        static const char *const keys[] = { "masterSecret",      "salt",        "measurementSalt",
                                            "kubernetesVersion", "clusterName", "initSecret",
                                            "serviceCidr",       "policy",      NULL };
        JsonCtx ctx = { .source = "init request", .path = "" };
        _cleanup_(attest_policy_freep) AttestPolicy *policy = NULL;
        _cleanup_(freep) char *policy_text = NULL;
        json_t *policy_json = NULL;
        _cleanup_(secret_freep) Secret *master = NULL, *salt = NULL, *msalt = NULL, *msecret = NULL,
                                       *disk_key = NULL, *first = NULL, *init_secret = NULL;
        _cleanup_(freep) uint8_t *kubeconfig = NULL;
        _cleanup_(freep) char *kcpath = NULL, *statepath = NULL, *state = NULL;
        uint8_t cluster_id[CLUSTER_ID_SIZE], event[32], pcr15[32], expected15[32];
        char uuid[LUKS_UUID_SIZE], cid_hex[2 * CLUSTER_ID_SIZE + 1];
        const char *name, *version, *service_cidr = "10.96.0.0/12";
        size_t kc_size;
        LuksState st;
        bool zero, resume;
        Diag d;
        int r;

        log_info("bootstrapper: init request received");
        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, req->body, keys) < 0 ||
            json_get_base64_secret(&ctx, req->body, "masterSecret", MASTER_SECRET_SIZE, &master) <
                    0 ||
            json_get_base64_secret(&ctx, req->body, "salt", MASTER_SALT_SIZE, &salt) < 0 ||
            json_get_base64_secret(&ctx, req->body, "measurementSalt", MEASUREMENT_SALT_SIZE,
                                   &msalt) < 0 ||
            json_get_string(&ctx, req->body, "clusterName", true, &name) < 0 ||
            json_get_string(&ctx, req->body, "kubernetesVersion", true, &version) < 0 ||
            (json_get_string(&ctx, req->body, "serviceCidr", false, &service_cidr) < 0 &&
             diag_failed(&d))) {
                (void) snprintf(detail, n, "%s", d.message);
                return -EBADMSG;
        }
        /* The owner's policy: what the join service will hold joining nodes to. */
        if (json_get_object(&ctx, req->body, "policy", false, &policy_json) < 0 &&
            diag_failed(&d)) {
                (void) snprintf(detail, n, "%s", d.message);
                return -EBADMSG;
        }
        if (policy_json) {
                if (json_dump_compact(policy_json, &policy_text) < 0)
                        return -ENOMEM;
                if (attest_policy_parse(policy_text, strlen(policy_text), "init request: policy",
                                        &policy, &d) < 0)
                        return fail(detail, n, -EBADMSG, "%s", d.message);
                /* The policy the join service will run with: refused now, before PCR 15, not
                 * by the join service once the node can no longer be initialised again. */
                if (attest_policy_check_cluster(policy, "init request: policy", &d) < 0)
                        return fail(detail, n, -EPERM, "%s", d.message);
                if (bootstrapper_check_ak_trust(b, policy, "the owner's cluster policy") < 0)
                        return fail(detail, n, -EPERM,
                                    "the cluster policy has akTrust insecure-any: any TPM could "
                                    "join the cluster; pin the nodes' keys or use ek-cert");
        }
        if (!kubeadm_name_ok(name) || !kubeadm_version_ok(version) ||
            !kubeadm_cidr_ok(service_cidr))
                return fail(detail, n, -EBADMSG,
                            "clusterName must be a DNS label, kubernetesVersion v1.Y.Z (Y >= 28) "
                            "and serviceCidr an IPv4 /8../28 or IPv6 /64../120 range");
        /* The control plane runs the release its image carries (its kubelet is the image's):
         * another one would put it out of skew from the start, and its record untrue. */
        {
                char carried[VERSION_STRING_MAX];
                r = bootstrapper_image_kubernetes(b, carried);
                if (r >= 0 && strcmp(carried, version) != 0)
                        return fail(detail, n, -EPERM,
                                    "this node's image carries Kubernetes %s, not %s: run "
                                    "'cloister apply --kubernetes-version %s' (or set "
                                    "kubernetesVersion in the configuration), or boot an image "
                                    "that carries %s",
                                    carried, version, carried, version);
                if (r == -EBADMSG)
                        return fail(detail, n, -EBADMSG,
                                    "the image's os-release has a KUBERNETES_VERSION that is not "
                                    "v1.MINOR.PATCH: a broken image");
        }

        /* The init secret first: nobody but the owner may start this. */
        if (b->init_secret_hash) {
                if (!json_object_get(req->body, "initSecret"))
                        return fail(detail, n, -EACCES,
                                    "this node requires the init secret (apply "
                                    "--init-secret-file)");
                if (json_get_base64_secret(&ctx, req->body, "initSecret", INIT_SECRET_SIZE,
                                           &init_secret) < 0) {
                        (void) snprintf(detail, n, "%s", d.message);
                        return -EBADMSG;
                }
                r = init_secret_verify(init_secret, b->init_secret_hash, &d);
                if (r < 0) {
                        log_warning("bootstrapper: init refused: %s", d.message);
                        return fail(detail, n, r == -EKEYREJECTED ? -EACCES : r, "%s", d.message);
                }
                /* The owner, proven: a failure from here on comes with this boot's log. */
                *owner = true;
        }

        r = kdf_measurement_secret(master, secret_data(salt), &msecret);
        if (r >= 0)
                r = kdf_cluster_id(msecret, secret_data(msalt), cluster_id);
        if (r < 0)
                return fail(detail, n, r, "key derivation failed");

        /* One shot: once PCR 15 holds a cluster ID this node belongs to that cluster. The only
         * init it still accepts is the same one again (same master secret and measurement salt,
         * so the same cluster ID), resuming what an interruption cut short: the owner's CLI
         * retries with the salt it recorded before sending. */
        r = read_pcr15(b, pcr15);
        if (r < 0)
                return fail(detail, n, r, "cannot read PCR 15");
        {
                static const uint8_t zero15[32];
                kdf_pcr15_expected(cluster_id, expected15);
                zero = memcmp(pcr15, zero15, 32) == 0;
                resume = memcmp(pcr15, expected15, 32) == 0;
        }
        if (!zero && !resume)
                return bootstrapper_refusal_code(
                        ret_response, "already-member",
                        fail(detail, n, -EALREADY,
                             "node %s is already a member of another cluster: nothing to "
                             "initialise; run 'cloister verify --node %s' in that cluster's "
                             "workspace",
                             b->node_name, b->endpoint ?: "HOST"));
        if (resume)
                log_info("bootstrapper: resuming the init of this node's cluster");

        /* The state disk: validated, then re-keyed from the first-boot key to the disk key. */
        r = luks_validate(b->state_disk, uuid, &st, &d);
        if (r < 0)
                return fail(detail, n, r, "state disk refused: %s", d.message);
        r = bootstrapper_first_boot_key(b, &first);
        if (r < 0)
                return fail(detail, n, r, "cannot read the first-boot key %s", b->first_boot_key);
        r = kdf_disk_key(master, secret_data(salt), uuid, &disk_key);
        if (r >= 0)
                r = luks_rekey(b->state_disk, first, disk_key, &d);
        if (r < 0)
                return fail(detail, n, r, "re-keying the state disk failed: %s", d.message);

        if (!resume) {
                kdf_pcr15_event_digest(cluster_id, event);
                (void) pthread_mutex_lock(b->tpm_lock);
                r = tpm_device_pcr_extend(b->tpm, 15, event);
                (void) pthread_mutex_unlock(b->tpm_lock);
                if (r < 0)
                        return fail(detail, n, r, "extending PCR 15 failed");
        }
        b->initialized = true;

        /* kubeadm init is not idempotent: once it has written admin.conf it is done. */
        if (asprintf(&kcpath, "%s/admin.conf", b->state_dir) < 0)
                return -ENOMEM;
        if (access(kcpath, F_OK) < 0) {
                r = run_kubeadm(b, name, version, service_cidr, detail, n);
                if (r < 0)
                        return r;
        }
        hex_encode_buf(cluster_id, sizeof(cluster_id), cid_hex, sizeof(cid_hex));
        /* What the join service needs: the master secret (on the encrypted state disk), the
         * policy, and the public state. */
        r = bootstrapper_write_cluster_secrets(b, master, secret_data(salt), policy_text);
        if (r < 0)
                return fail(detail, n, r, "cannot store the cluster's secrets in %s", b->state_dir);
        {
                char msalt_hex[2 * MEASUREMENT_SALT_SIZE + 1];
                hex_encode_buf(secret_data(msalt), MEASUREMENT_SALT_SIZE, msalt_hex,
                               sizeof(msalt_hex));
                _cleanup_(json_decrefp) json_t *st_json =
                        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "clusterId", cid_hex,
                                  "clusterName", name, "role", "control-plane", "node",
                                  b->node_name, "controlPlaneEndpoint", b->control_plane_endpoint,
                                  "measurementSalt", msalt_hex, "endpoint", b->endpoint ?: "",
                                  "diskUuid", uuid, "kubernetesVersion", version);
                if (!st_json || json_dump_compact(st_json, &state) < 0 ||
                    asprintf(&statepath, "%s/node-state.json", b->state_dir) < 0)
                        return -ENOMEM;
        }
        r = write_file_atomic(statepath, state, strlen(state), 0600, 0);
        if (r >= 0)
                r = read_full_file(kcpath, 1 << 20, &kubeconfig, &kc_size);
        if (r < 0)
                return fail(detail, n, r, "cannot write the node state or read %s", kcpath);
        log_info("Initialised cluster '%s', cluster ID %s.", name, cid_hex);
        /* A control plane hands the node to its join service once this answer is out. */
        if (b->join_service && b->server) {
                if (policy_text) {
                        b->handoff = true;
                        rpc_server_stop_for_handover(b->server);
                } else
                        log_warning("bootstrapper: the init request carried no cluster policy, so "
                                    "no join service starts: this cluster cannot grow. Re-run "
                                    "init with a policy (cloister apply sends it).");
        }
        *ret_response = json_pack("{s:s,s:s}", "clusterId", cid_hex, "kubeconfig",
                                  (const char *) kubeconfig);
        /* It holds the admin client key; the JSON copy is wiped by the json allocator. */
        explicit_wipe(kubeconfig, kc_size);
        return *ret_response ? 0 : -ENOMEM;
}

int bootstrapper_first_boot_key(Bootstrapper *b, Secret **ret)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        size_t size;
        int r;

        r = read_full_file(b->first_boot_key, 4096, &raw, &size);
        if (r >= 0)
                r = secret_new_from(raw, size, ret);
        if (raw)
                explicit_wipe(raw, size);
        return r;
}

int bootstrapper_write_cluster_secrets(Bootstrapper *b, Secret *master,
                                       const uint8_t salt[static MASTER_SALT_SIZE],
                                       const char *policy_text)
{
        _cleanup_(freep) char *mpath = NULL, *ppath = NULL;
        MasterSecret ms = { .key = master };
        Diag d;
        int r;

        if (asprintf(&mpath, "%s/master-secret.json", b->state_dir) < 0 ||
            asprintf(&ppath, "%s/cluster-policy.json", b->state_dir) < 0)
                return -ENOMEM;
        memcpy(ms.salt, salt, MASTER_SALT_SIZE);
        diag_clear(&d);
        /* Already there from an interrupted first attempt: the same cluster, so the same key. */
        r = master_secret_write(&ms, mpath, &d);
        explicit_wipe(ms.salt, sizeof(ms.salt));
        if (r < 0 && r != -EEXIST)
                return r;
        if (policy_text) {
                r = write_file_atomic(ppath, policy_text, strlen(policy_text), 0600,
                                      WRITE_FILE_SYNC);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bootstrapper_handle_node(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t n)
{
        Bootstrapper *b = userdata;
        _cleanup_(freep) char *path = NULL;
        _cleanup_(freep) uint8_t *state = NULL;
        size_t size;
        int r;

        /* The caller has just verified our evidence; this only names what it verified. */
        if (asprintf(&path, "%s/node-state.json", b->state_dir) < 0)
                return -ENOMEM;
        r = read_full_file(path, 64 * 1024, &state, &size);
        if (r == -ENOENT)
                /* In no cluster yet, or a member whose state disk is still locked. */
                *ret_response = json_pack("{s:b}", "initialized", false);
        else if (r < 0)
                return fail(detail, n, r, "cannot read the node state");
        else if ((r = json_parse_buffer(state, size, path, ret_response, NULL)) < 0 ||
                 !json_is_object(*ret_response))
                return fail(detail, n, r < 0 ? r : -EBADMSG, "the node state is corrupt");
        if (!*ret_response ||
            json_object_set_new(*ret_response, "state", json_string(bootstrapper_state(b))) < 0 ||
            json_object_set_new(*ret_response, "versions", node_versions_json(b->os_release)) < 0)
                return -ENOMEM;
        /* Its own attestation of its join services, when it watches them (fail-closed mode). */
        /* A member in the mesh: its peers and their last handshakes (cloister status). */
        if (b->mesh && b->mesh_started &&
            json_object_set_new(*ret_response, "mesh", mesh_status_report(b->mesh_runtime_dir)) < 0)
                return -ENOMEM;
        if (b->watch && json_object_set_new(*ret_response, "joinServiceAttestation",
                                            bootstrapper_watch_json(b)) < 0)
                return -ENOMEM;
        return 0;
}
