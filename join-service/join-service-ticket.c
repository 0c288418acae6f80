/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloister/atls.h"
#include "cloister/base64.h"
#include "cloister/cp-authorization.h"
#include "cloister/crypto.h"
#include "cloister/evidence.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/luks.h"
#include "cloister/rpc.h"
#include "cloister/spawn.h"
#include "cloister/version.h"

#include "join-service-reattest.h"
#include "join-service.h"

/* Crash tests only (a build with CLOISTER_FAULT_INJECTION): the process dies as by kill -9 at
 * the step CLOISTER_FAULT names; product binaries do not contain the hook. */
#ifdef CLOISTER_FAULT_INJECTION
#include <signal.h>
static void fault_point(const char *step)
{
        const char *f = getenv("CLOISTER_FAULT");
        if (f && strcmp(f, step) == 0)
                (void) raise(SIGKILL);
}

/* The node-side checks of a ticket or rejoin answer (bootstrapper-join.c) are tested against a
 * join service that lies: CLOISTER_FAULT="tamper:KEY=VALUE" (or "tamper:admitted.KEY=VALUE")
 * replaces that string member of what is sealed to the node. */
static void fault_tamper(json_t *doc)
{
        const char *f = getenv("CLOISTER_FAULT"), *eq, *key;
        char name[64];
        json_t *o = doc;

        if (!f || strncmp(f, "tamper:", 7) != 0 || !(eq = strchr(f + 7, '=')) ||
            (size_t) (eq - f - 7) >= sizeof(name))
                return;
        (void) snprintf(name, sizeof(name), "%.*s", (int) (eq - f - 7), f + 7);
        key = name;
        if (strncmp(name, "admitted.", 9) == 0) {
                o = json_object_get(doc, "admitted");
                key = name + 9;
        }
        if (o)
                (void) json_object_set_new(o, key, json_string(eq + 1));
}
#else
static void fault_point(const char *step)
{
        (void) step;
}

static void fault_tamper(json_t *doc)
{
        (void) doc;
}
#endif

#define CERTIFICATE_KEY_SIZE 32 /* kubeadm: AES-256 key for the uploaded certificates, hex */
#define NODE_NAME_MAX        63

static bool node_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > NODE_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static bool uuid_ok(const char *s)
{
        if (strlen(s) != LUKS_UUID_SIZE - 1)
                return false;
        for (size_t i = 0; s[i]; i++)
                if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-'
                                                              : !strchr("0123456789abcdef", s[i]))
                        return false;
        return true;
}

int evidence_ak_digest(const Evidence *e, char ret[static 65])
{
        uint8_t digest[32];

        ret[0] = '\0';
        if (e->tpm.ak_public.size == 0)
                return 0;
        crypto_sha256(e->tpm.ak_public.data, e->tpm.ak_public.size, digest);
        hex_encode_buf(digest, sizeof(digest), ret, 65);
        return 0;
}

/* Which attestation key the verified peer quoted with (SHA-256 of its TPMT_PUBLIC, hex), so
 * that a member's rejoin can be held to the TPM it joined with; "" for variants without one. */
static int peer_ak_digest(const JoinCall *req, char ret[static 65], bool *ret_pcr15_zero)
{
        static const uint8_t zero[EVIDENCE_PCR_SIZE];
        _cleanup_(evidence_freep) Evidence *e = NULL;
        Diag d;
        int r;

        ret[0] = '\0';
        if (!req->evidence)
                return -ENOENT;
        diag_clear(&d);
        r = evidence_parse(req->evidence, req->evidence_size, &e, &d);
        if (r < 0)
                return r;
        /* The quote covered PCR 15 (verified in the handshake): zero, or this cluster's. */
        *ret_pcr15_zero = !(e->tpm.pcr_mask & (1U << 15)) ||
                          memcmp(e->tpm.pcrs[15], zero, EVIDENCE_PCR_SIZE) == 0;
        return evidence_ak_digest(e, ret);
}

/* HOST:PORT or [IPv6]:PORT, what a verifier dials to attest the node. */
static bool endpoint_ok(const char *s)
{
        const char *colon = strrchr(s, ':');
        size_t n = strlen(s);

        if (n == 0 || n > 260 || !colon || colon == s || !colon[1] ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
               n;
}

/* kubeadm bootstrap token "[a-z0-9]{6}.[a-z0-9]{16}", from the CSPRNG without modulo bias. */
static int make_token(char ret[static 24])
{
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        size_t i = 0;

        while (i < 23) {
                uint8_t b[32];
                if (RAND_bytes(b, sizeof(b)) != 1)
                        return -EIO;
                for (size_t k = 0; k < sizeof(b) && i < 23; k++) {
                        if (b[k] >= 252) /* 252 = 7 * 36 */
                                continue;
                        if (i == 6)
                                ret[i++] = '.';
                        ret[i++] = alphabet[b[k] % 36];
                }
                explicit_wipe(b, sizeof(b));
        }
        ret[23] = '\0';
        return 0;
}

/* kubeadm's discovery pin: "sha256:" + hex SHA-256 of the CA's SubjectPublicKeyInfo. */
static int ca_cert_hash(const char *state_dir, char ret[static 7 + 65])
{
        _cleanup_(freep) char *path = NULL;
        _cleanup_(freep) uint8_t *pem = NULL;
        uint8_t digest[32];
        size_t size;
        int r;

        if (asprintf(&path, "%s/pki/ca.crt", state_dir) < 0)
                return -ENOMEM;
        r = read_full_file(path, 64 * 1024, &pem, &size);
        if (r < 0)
                return r;
        r = crypto_x509_pem_spki_sha256(pem, size, digest);
        if (r < 0)
                return r;
        memcpy(ret, "sha256:", 7);
        hex_encode_buf(digest, sizeof(digest), ret + 7, 65);
        return 0;
}

/* kubeadm keeps uploaded control-plane certificates for two hours; each upload encrypts them
 * with a new key, which would leave a control plane admitted just before holding a stale one.
 * One key is reused for an hour after its upload. */
#define CERTIFICATE_KEY_REUSE_SEC 3600

static int certificate_key_path(JoinService *js, char **ret)
{
        return asprintf(ret, "%s/certificate-key", js->state_dir) < 0 ? -ENOMEM : 0;
}

static int reuse_certificate_key(JoinService *js, char hex[static 2 * CERTIFICATE_KEY_SIZE + 1])
{
        _cleanup_(freep) char *path = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        struct stat st;
        size_t size;
        int r;

        r = certificate_key_path(js, &path);
        if (r < 0)
                return r;
        if (stat(path, &st) < 0 || time(NULL) - st.st_mtime > CERTIFICATE_KEY_REUSE_SEC ||
            time(NULL) < st.st_mtime)
                return -ENOENT;
        r = read_full_file(path, 256, &data, &size);
        if (r < 0)
                return r;
        if (size != 2 * CERTIFICATE_KEY_SIZE ||
            strspn((const char *) data, "0123456789abcdef") != size) {
                explicit_wipe(data, size);
                return -EBADMSG;
        }
        memcpy(hex, data, size + 1);
        explicit_wipe(data, size);
        return 0;
}

static void remember_certificate_key(JoinService *js, const char *hex)
{
        _cleanup_(freep) char *path = NULL;

        if (certificate_key_path(js, &path) < 0 ||
            write_file_atomic(path, hex, strlen(hex), 0600, WRITE_FILE_SYNC) < 0)
                log_warning("join-service: cannot keep the certificate key: the next control "
                            "plane gets a new upload");
}

/* kubeadm gets its secrets (the bootstrap token, the certificate key) in a configuration read
 * from a pipe (--config /dev/stdin), never on its command line, which every local user can read
 * in /proc/PID/cmdline, and never in a file. */
static int run_kubeadm(JoinService *js, const char *const args[], const char *config,
                       const char *what)
{
        _cleanup_(freep) char *logpath = NULL, *kubeconfig = NULL;
        char *argv[16];
        size_t n = 0;
        int r;

        if (asprintf(&logpath, "%s/kubeadm-join-service.log", js->state_dir) < 0 ||
            asprintf(&kubeconfig, "%s/admin.conf", js->state_dir) < 0)
                return -ENOMEM;
        argv[n++] = (char *) js->kubeadm;
        for (size_t i = 0; args[i]; i++) {
                assert(n < ELEMENTSOF(argv) - 6);
                argv[n++] = (char *) args[i];
        }
        argv[n++] = (char *) "--config";
        argv[n++] = (char *) "/dev/stdin";
        argv[n++] = (char *) "--kubeconfig";
        argv[n++] = kubeconfig;
        argv[n] = NULL;
        /* kubeadm may print what it was given: its standard output goes nowhere, only its errors
         * to the log. */
        r = spawn_wait_input(argv, config, strlen(config), "/dev/null", logpath);
        if (r != 0) {
                log_error("join-service: kubeadm %s failed (exit %d, see %s)", what, r, logpath);
                return r < 0 ? r : -EIO;
        }
        return 0;
}

/* kubeadm v1beta4 InitConfiguration documents (JSON is YAML) carrying one secret each. */
static int kubeadm_token_create(JoinService *js, const char token[static 24])
{
        static const char *const args[] = { "token", "create", NULL };
        char config[512];
        int r;

        (void) snprintf(config, sizeof(config),
                        "{\"apiVersion\": \"kubeadm.k8s.io/v1beta4\", \"kind\": "
                        "\"InitConfiguration\", \"bootstrapTokens\": [{\"token\": \"%s\", "
                        "\"ttl\": \"%um0s\", \"usages\": [\"signing\", \"authentication\"], "
                        "\"groups\": [\"system:bootstrappers:kubeadm:default-node-token\"]}]}\n",
                        token, js->token_ttl_min);
        r = run_kubeadm(js, args, config, "token create");
        explicit_wipe(config, sizeof(config));
        return r;
}

static int kubeadm_upload_certs(JoinService *js, const char *certificate_key)
{
        static const char *const args[] = { "init", "phase", "upload-certs", "--upload-certs",
                                            NULL };
        char config[256];
        int r;

        (void) snprintf(config, sizeof(config),
                        "{\"apiVersion\": \"kubeadm.k8s.io/v1beta4\", \"kind\": "
                        "\"InitConfiguration\", \"certificateKey\": \"%s\"}\n",
                        certificate_key);
        r = run_kubeadm(js, args, config, "upload-certs");
        explicit_wipe(config, sizeof(config));
        return r;
}

static int refuse(JoinService *js, const JoinCall *req, const char *node, const char *role,
                  const char *evidence, char *detail, size_t n, int r, const char *fmt, ...)
        _printf_(9, 10);

static int refuse(JoinService *js, const JoinCall *req, const char *node, const char *role,
                  const char *evidence, char *detail, size_t n, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(detail, n, fmt, ap);
        va_end(ap);
        join_audit(js, "refusal", node ?: req->peer, role, evidence, "refused", detail);
        return r;
}

/* A refusal before the evidence is verified: what anyone can send for free (a forged or replayed
 * document, or none), so it is counted like the network process's reports (one entry per kind
 * and window, then a count), never written one by one. */
static int refuse_unverified(JoinService *js, const JoinCall *req, const char *evidence,
                             char *detail, size_t n, int r, const char *fmt, ...) _printf_(7, 8);

static int refuse_unverified(JoinService *js, const JoinCall *req, const char *evidence,
                             char *detail, size_t n, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(detail, n, fmt, ap);
        va_end(ap);
        join_monitor_refusal(js, req->peer, evidence, detail);
        return r;
}

static int put_secret(json_t *o, const char *key, const void *data, size_t size)
{
        char *b64 = NULL;
        int r = base64_encode(data, size, &b64);

        if (r < 0)
                return r;
        r = json_object_set_new(o, key, json_string(b64)) < 0 ? -ENOMEM : 0;
        explicit_wipe(b64, strlen(b64));
        free(b64);
        return r;
}

/* What a join request asks for, once its membership checks have passed. */
typedef struct JoinAsk {
        const char *name, *role, *uuid, *endpoint; /* in the request body */
        char evidence[65], ak[65];
        bool control_plane;
        bool known; /* let through as a member asking again: its record must still be there */
} JoinAsk;

static bool pending_has(const JoinService *js, const char *name, const char *uuid)
{
        for (size_t i = 0; i < js->n_pending; i++)
                if (strcmp(js->pending[i].name, name) == 0 ||
                    strcasecmp(js->pending[i].disk_uuid, uuid) == 0)
                        return true;
        return false;
}

static void pending_release(JoinService *js, const char *name)
{
        (void) pthread_mutex_lock(&js->members_lock);
        for (size_t i = 0; i < js->n_pending; i++)
                if (strcmp(js->pending[i].name, name) == 0) {
                        js->pending[i] = js->pending[--js->n_pending];
                        break;
                }
        (void) pthread_mutex_unlock(&js->members_lock);
}

static JoinIssued *issued_find(JoinService *js, const char *name)
{
        for (size_t i = 0; i < JOIN_TICKETS_MAX; i++)
                if (js->issued[i].ticket && strcmp(js->issued[i].name, name) == 0)
                        return &js->issued[i];
        return NULL;
}

/* Keeps the ticket for its token's lifetime (members_lock held). */
static void issued_keep(JoinService *js, const JoinAsk *a, const json_t *ticket)
{
        _cleanup_(freep) char *text = NULL;
        JoinIssued *slot = issued_find(js, a->name);
        time_t now = time(NULL);

        for (size_t i = 0; !slot && i < JOIN_TICKETS_MAX; i++)
                if (!js->issued[i].ticket || js->issued[i].expires < now)
                        slot = &js->issued[i];
        for (size_t i = 0; !slot && i < JOIN_TICKETS_MAX; i++) /* full: the oldest goes */
                if (!slot || js->issued[i].expires < slot->expires)
                        slot = &js->issued[i];
        slot->ticket = secret_free(slot->ticket);
        if (json_dump_compact(ticket, &text) < 0 ||
            secret_new_from(text, strlen(text), &slot->ticket) < 0) {
                if (text)
                        explicit_wipe(text, strlen(text));
                return; /* not kept: a lost answer then gets a new ticket */
        }
        explicit_wipe(text, strlen(text));
        (void) snprintf(slot->name, sizeof(slot->name), "%s", a->name);
        (void) snprintf(slot->disk_uuid, sizeof(slot->disk_uuid), "%s", a->uuid);
        (void) snprintf(slot->ak_digest, sizeof(slot->ak_digest), "%s", a->ak);
        (void) snprintf(slot->role, sizeof(slot->role), "%s", a->role);
        /* A minute short of the token's own expiry, so that a resent ticket is still usable. */
        slot->expires = now + (time_t) js->token_ttl_min * 60 - 60;
}

/* The membership checks (members_lock held). 0: go on and make a ticket (the name and disk are
 * reserved in js->pending); 1: *ret_response is the ticket this member was already given. */
/* Whether a request names this join service's own node: its name, its disk, or (ak non-empty)
 * the attestation key it is recorded with. */
static bool is_own_identity(JoinService *js, const json_t *members, const char *name,
                            const char *uuid, const char *ak)
{
        const json_t *self = js->node_name ? members_find(members, js->node_name) : NULL;
        const char *self_ak = self ? json_string_value(json_object_get(self, "akDigest")) : NULL;

        return (js->node_name && strcmp(name, js->node_name) == 0) ||
               (js->node_disk_uuid && strcasecmp(uuid, js->node_disk_uuid) == 0) ||
               (ak[0] && self_ak && strcmp(ak, self_ak) == 0);
}

static int join_check(JoinService *js, const JoinCall *req, JoinAsk *a, json_t **ret_response,
                      char *detail, size_t n)
{
        const char *name = req->name, *role = req->role, *uuid = req->disk_uuid,
                   *endpoint = req->endpoint;
        _cleanup_(json_decrefp) json_t *members = NULL;
        const json_t *known;
        char evidence[65] = "", ak[65] = "";
        bool pcr15_zero = true;
        const char *authorization =
                req->authorization && req->authorization[0] ? req->authorization : NULL;
        bool control_plane, insecure_ak;
        JoinIssued *issued;
        Diag d;
        int r;

        /* The route demands an attested client. The network process verified its evidence,
         * but that process is the one an attacker reaches first: the evidence is verified again
         * here, against this process's policy, bound to the nonce and key it was forwarded with
         * (the key the ticket is sealed to). */
        if (!req->evidence)
                return refuse_unverified(js, req, "", detail, n, -EPERM,
                                         "the client did not attest");
        diag_clear(&d);
        r = join_call_verify(js, req, evidence, &d);
        if (r < 0)
                return refuse_unverified(js, req, evidence, detail, n, -EPERM,
                                         "the evidence does not verify in the monitor: %s",
                                         d.message);
        if (!endpoint_ok(endpoint))
                return refuse(js, req, NULL, "", evidence, detail, n, -EBADMSG,
                              "endpoint is not HOST:PORT");
        if (!node_name_ok(name))
                return refuse(js, req, NULL, "", evidence, detail, n, -EBADMSG,
                              "the node name is not a DNS-1123 label");
        if (strcmp(role, "worker") != 0 && strcmp(role, "control-plane") != 0)
                return refuse(js, req, name, "", evidence, detail, n, -EBADMSG,
                              "role must be worker or control-plane");
        if (!uuid_ok(uuid))
                return refuse(js, req, name, role, evidence, detail, n, -EBADMSG,
                              "diskUuid is not a lowercase LUKS UUID");
        control_plane = strcmp(role, "control-plane") == 0;
        /* One name, one member: the same node asking again (a join cut short) is let through,
         * another disk under a member's name is not. */
        if (js->etcd && !js->etcd_registered && join_etcd_register(js) < 0 && js->etcd_refused[0])
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "this join service's own node is not a member of the cluster: "
                              "%s; it serves no join",
                              js->etcd_refused);
        if (js->etcd && !js->etcd_registered)
                return refuse(js, req, name, role, evidence, detail, n, -EHOSTUNREACH,
                              "this join service cannot register its own node in the cluster's "
                              "membership in etcd: joins are refused until it can (fail "
                              "closed); check etcd's health and this node's etcd client "
                              "certificate");
        diag_clear(&d);
        r = members_load_diag(js, &members, &d);
        if (r < 0 && js->etcd)
                return refuse(js, req, name, role, evidence, detail, n, -EHOSTUNREACH,
                              "the cluster's membership in etcd cannot be read (%s): joins are "
                              "refused until etcd answers (fail closed)",
                              d.message);
        if (r < 0)
                return refuse(js, req, name, role, evidence, detail, n, r,
                              "the join service cannot read its membership");
        known = members_find(members, name);
        if (known &&
            strcasecmp(json_string_value(json_object_get(known, "diskUuid")) ?: "", uuid) != 0)
                return refuse(js, req, name, role, evidence, detail, n, -EEXIST,
                              "%s is already a member with another disk; remove it first", name);
        /* One disk, one member: the disk key is derived from the UUID, so a second name claiming
         * a member's (public) disk UUID would receive that member's key. */
        {
                const json_t *holder = members_find_disk(members, uuid);
                if (holder && holder != known)
                        return refuse(js, req, name, role, evidence, detail, n, -EEXIST,
                                      "disk %s belongs to member %s; a disk is one member's", uuid,
                                      json_string_value(json_object_get(holder, "name")) ?: "?");
        }
        /* A member asking again keeps the role it was admitted with. */
        if (known && strcmp(json_string_value(json_object_get(known, "role")) ?: "", role) != 0)
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "%s is a member as %s; a repeated join cannot change its role", name,
                              json_string_value(json_object_get(known, "role")) ?: "?");
        r = peer_ak_digest(req, ak, &pcr15_zero);
        if (r < 0)
                return refuse(js, req, name, role, evidence, detail, n, r,
                              "cannot read the verified evidence");
        /* This join service's own node never joins through itself: whoever asks under its name,
         * disk or attestation key is not it (a compromised network process holds this node's
         * TPM and could quote as it, PCR 15 extended and all). */
        if (is_own_identity(js, members, name, uuid, ak))
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "a join as this join service's own node (its name, disk or "
                              "attestation key) is refused: it is a member already and never "
                              "joins through itself");
        /* One node, one member: an attestation key that is a member already under another name
         * cannot take more names (and their disks) for itself. */
        if (!known && ak[0]) {
                const json_t *holder = members_find_ak(members, ak);
                if (holder)
                        return refuse(js, req, name, role, evidence, detail, n, -EEXIST,
                                      "this attestation key is member %s already; one node is "
                                      "one member",
                                      json_string_value(json_object_get(holder, "name")) ?: "?");
        }
        /* A member asking again (its join was cut short) must be the TPM that asked first: name
         * and disk UUID are public. A member bound to no attestation key cannot prove that. */
        if (known && !(json_string_value(json_object_get(known, "akDigest")) ?: "")[0])
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "%s is a member bound to no attestation key: nothing proves this "
                              "is the same node",
                              name);
        if (known && strcmp(json_string_value(json_object_get(known, "akDigest")) ?: "", ak) != 0)
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "%s is already a member with another attestation key", name);
        /* PCR 15 = this cluster (accepted in the handshake only for this): the member itself
         * finishing a join that was cut short after PCR 15. */
        if (!pcr15_zero && !known)
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "PCR 15 is already extended and %s is not a member finishing its "
                              "own join",
                              name);
        /* A control plane receives the master secret: the owner decides who becomes one, never
         * the request, and never under a policy that trusts any attestation key. */
        (void) pthread_mutex_lock(&js->policy.lock);
        insecure_ak = js->policy.policy->ak_trust == AK_TRUST_INSECURE_ANY &&
                      (js->policy.policy->variant == ATTEST_VARIANT_QEMU_VTPM);
        (void) pthread_mutex_unlock(&js->policy.lock);
        if (control_plane && insecure_ak)
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "a control plane is never admitted under akTrust insecure-any");
        if (control_plane && !known) {
                Diag ad;
                diag_clear(&ad);
                if (!authorization)
                        return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                                      "the owner has not authorized %s as a control plane (no "
                                      "control-plane authorization: 'cloister control-plane "
                                      "authorize %s')",
                                      name, name);
                r = cp_authorization_check(js->master->key, js->master->salt, authorization, name,
                                           time(NULL), &ad);
                if (r < 0)
                        return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                                      "the owner has not authorized %s as a control plane: %s",
                                      name, ad.message);
        }

        /* The same member asking again while its ticket is valid (its answer was lost): the
         * same ticket, so that an admission never takes effect without the node able to
         * collect it. */
        issued = known ? issued_find(js, name) : NULL;
        if (issued && issued->expires >= time(NULL) && strcmp(issued->disk_uuid, uuid) == 0 &&
            strcmp(issued->ak_digest, ak) == 0 && strcmp(issued->role, role) == 0) {
                Diag pd;
                diag_clear(&pd);
                r = json_parse_buffer(secret_data(issued->ticket), secret_size(issued->ticket),
                                      "issued ticket", ret_response, &pd);
                /* Where to attest it from now on: a node that restarted listens elsewhere. */
                if (r >= 0 && strcmp(json_string_value(json_object_get(known, "endpoint")) ?: "",
                                     endpoint) != 0)
                        r = members_record(js, name, role, endpoint, uuid, ak);
                if (r >= 0) {
                        join_audit(js, "admission", name, role, evidence, "admitted",
                                   "the same ticket again: the member asked again while it was "
                                   "valid");
                        return 1;
                }
                json_decref(*ret_response);
                *ret_response = NULL;
        }
        if (pending_has(js, name, uuid))
                return refuse(js, req, name, role, evidence, detail, n, -EALREADY,
                              "a join for %s or disk %s is in progress; ask again shortly", name,
                              uuid);
        if (js->n_pending >= JOIN_PENDING_MAX)
                return refuse(js, req, name, role, evidence, detail, n, -EBUSY,
                              "too many joins in progress; ask again shortly");
        (void) snprintf(js->pending[js->n_pending].name, sizeof(js->pending[0].name), "%s", name);
        (void) snprintf(js->pending[js->n_pending].disk_uuid, sizeof(js->pending[0].disk_uuid),
                        "%s", uuid);
        js->n_pending++;
        *a = (JoinAsk){ .name = name,
                        .role = role,
                        .uuid = uuid,
                        .endpoint = endpoint,
                        .control_plane = control_plane,
                        .known = known != NULL };
        memcpy(a->evidence, evidence, sizeof(a->evidence));
        memcpy(a->ak, ak, sizeof(a->ak));
        return 0;
}

/* The ticket for an admitted node: made whole before anything is handed out. */
static int make_ticket(JoinService *js, const JoinCall *req, const JoinAsk *a, json_t **ret,
                       char *detail, size_t n)
{
        _cleanup_(secret_freep) Secret *disk_key = NULL, *msecret = NULL;
        _cleanup_(json_decrefp) json_t *ticket = NULL;
        const char *name = a->name, *role = a->role, *uuid = a->uuid, *evidence = a->evidence;
        char token[24], cahash[7 + 65];
        uint8_t certkey[CERTIFICATE_KEY_SIZE];
        char certkey_hex[2 * CERTIFICATE_KEY_SIZE + 1] = "";
        bool control_plane = a->control_plane;
        int r;

        r = make_token(token);
        if (r < 0)
                return refuse(js, req, name, role, evidence, detail, n, r,
                              "no randomness for a token");
        r = kubeadm_token_create(js, token);
        if (r < 0)
                return refuse(js, req, name, role, evidence, detail, n, r,
                              "the join service cannot create a bootstrap token");
        r = ca_cert_hash(js->state_dir, cahash);
        if (r < 0)
                return refuse(js, req, name, role, evidence, detail, n, r,
                              "the join service cannot read its cluster CA");
        /* Control planes admitted at once share one upload: one at a time here. */
        if (control_plane)
                (void) pthread_mutex_lock(&js->certkey_lock);
        if (control_plane && reuse_certificate_key(js, certkey_hex) < 0) {
                if (RAND_bytes(certkey, sizeof(certkey)) != 1) {
                        (void) pthread_mutex_unlock(&js->certkey_lock);
                        return -EIO;
                }
                hex_encode_buf(certkey, sizeof(certkey), certkey_hex, sizeof(certkey_hex));
                explicit_wipe(certkey, sizeof(certkey));
                r = kubeadm_upload_certs(js, certkey_hex);
                if (r < 0) {
                        explicit_wipe(certkey_hex, sizeof(certkey_hex));
                        (void) pthread_mutex_unlock(&js->certkey_lock);
                        return refuse(js, req, name, role, evidence, detail, n, r,
                                      "the join service cannot upload the control-plane "
                                      "certificates");
                }
                remember_certificate_key(js, certkey_hex);
        }
        if (control_plane)
                (void) pthread_mutex_unlock(&js->certkey_lock);
        r = kdf_disk_key(js->master->key, js->master->salt, uuid, &disk_key);
        if (r >= 0)
                r = kdf_measurement_secret(js->master->key, js->master->salt, &msecret);
        if (r < 0)
                return refuse(js, req, name, role, evidence, detail, n, r, "key derivation failed");

        /* What was admitted goes inside the sealed ticket: the node checks it is what it asked
         * for (a compromised network process could have rewritten the request's name, role or
         * disk, and a node re-keyed for another disk could never rejoin). */
        ticket = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "clusterId", js->cluster_id_hex,
                           "controlPlaneEndpoint", js->control_plane_endpoint, "token", token,
                           "caCertHash", cahash, "admitted", "name", name, "role", role, "diskUuid",
                           uuid);
        explicit_wipe(token, sizeof(token));
        if (!ticket)
                return -ENOMEM;
        r = put_secret(ticket, "diskKey", secret_data(disk_key), secret_size(disk_key));
        if (r >= 0)
                r = put_secret(ticket, "measurementSecret", secret_data(msecret),
                               secret_size(msecret));
        if (r >= 0)
                r = put_secret(ticket, "measurementSalt", js->measurement_salt,
                               sizeof(js->measurement_salt));
        if (r >= 0 && control_plane) {
                /* A control plane serves joins itself: it needs the master secret. Never the
                 * CA's private key: kubeadm fetches the certificates with the certificate key. */
                r = json_object_set_new(ticket, "certificateKey", json_string(certkey_hex));
                if (r >= 0)
                        r = put_secret(ticket, "masterSecret", secret_data(js->master->key),
                                       secret_size(js->master->key));
                if (r >= 0)
                        r = put_secret(ticket, "salt", js->master->salt, sizeof(js->master->salt));
                /* ... and enforces the owner's policy, the one in force here, not one of its
                 * own. */
                if (r >= 0) {
                        (void) pthread_mutex_lock(&js->policy.lock);
                        r = json_object_set_new(ticket, "clusterPolicy",
                                                json_string(js->policy.text ?: "")) < 0
                                    ? -ENOMEM
                                    : 0;
                        /* ... at the version the owner pushed it as (docs/policy-update.md): the
                         * new join service refuses older updates from the start. */
                        if (r >= 0) {
                                json_t *version = NULL;
                                if (join_policy_version(js, &version) < 0 ||
                                    json_object_set_new(ticket, "clusterPolicyVersion", version) <
                                            0)
                                        r = -ENOMEM;
                        }
                        (void) pthread_mutex_unlock(&js->policy.lock);
                }
        }
        explicit_wipe(certkey_hex, sizeof(certkey_hex));
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(ticket);
        return 0;
}

int join_handle_join(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                     size_t n)
{
        _cleanup_(json_decrefp) json_t *ticket = NULL;
        JoinAsk a;
        int r;

        (void) pthread_mutex_lock(&js->members_lock);
        r = join_check(js, req, &a, &ticket, detail, n);
        (void) pthread_mutex_unlock(&js->members_lock);
        if (r < 0)
                return r;
        /* Sealed to the key the evidence is bound to: only that node reads or alters it. */
        if (r > 0) {
                fault_tamper(ticket);
                return rpc_answer_seal(req->spki, req->spki_size, "join", ticket, ret_response);
        }
        /* The slow part (kubeadm) runs without the lock: the name and disk are reserved. */
        r = make_ticket(js, req, &a, &ticket, detail, n);
        if (r < 0) {
                pending_release(js, a.name);
                return r;
        }
        fault_point("ticket-made");
        /* Write-ahead: the admission is in the audit log before it takes effect in the
         * membership; a crash in between leaves an admission the node completes by asking
         * again, never a member the log does not show. */
        (void) pthread_mutex_lock(&js->members_lock);
        if (js->etcd) {
                /* The claim on the name, disk and key, and its audit entry, in one etcd
                 * transaction: another join service deciding at the same moment cannot win too,
                 * and etcd unreachable means no admission (fail closed). */
                char policy_digest[65];
                AuditEntry e;
                Diag d;

                join_audit_entry(js, &e, policy_digest, "admission", a.name, a.role, a.evidence,
                                 "admitted", "");
                diag_clear(&d);
                r = join_etcd_admit(js, &e, a.name, a.role, a.endpoint, a.uuid, a.ak, a.known, &d);
                if (r < 0) {
                        (void) pthread_mutex_unlock(&js->members_lock);
                        pending_release(js, a.name);
                        if (r == -EPERM)
                                return refuse(js, req, a.name, a.role, a.evidence, detail, n, r,
                                              "%s", d.message);
                        if (r == -EEXIST)
                                return refuse(js, req, a.name, a.role, a.evidence, detail, n, r,
                                              "%s (claimed through another join service)",
                                              d.message);
                        if (r == -ESTALE)
                                return refuse(js, req, a.name, a.role, a.evidence, detail, n,
                                              -EHOSTUNREACH,
                                              "%s: nothing was admitted; this join service "
                                              "appends nothing to that chain until the owner "
                                              "has looked (fail closed; docs/membership.md, "
                                              "\"Rollback of etcd\")",
                                              d.message);
                        return refuse(js, req, a.name, a.role, a.evidence, detail, n, -EHOSTUNREACH,
                                      "the admission cannot be recorded in the cluster's "
                                      "membership in etcd (%s): nothing was admitted; joins are "
                                      "refused until etcd answers (fail closed)",
                                      d.message);
                }
                join_audit_local(js, "admission", a.name, a.role, a.evidence, "admitted", "");
        } else
                join_audit(js, "admission", a.name, a.role, a.evidence, "admitted", "");
        fault_point("admission-audited");
        r = members_record(js, a.name, a.role, a.endpoint, a.uuid, a.ak);
        fault_point("member-recorded");
        if (r >= 0)
                issued_keep(js, &a, ticket);
        (void) pthread_mutex_unlock(&js->members_lock);
        pending_release(js, a.name);
        if (r < 0)
                return refuse(js, req, a.name, a.role, a.evidence, detail, n, r,
                              "the join service cannot record the new member");
        fault_tamper(ticket);
        return rpc_answer_seal(req->spki, req->spki_size, "join", ticket, ret_response);
}

/* A member back from a reboot: its disk is initialised, its PCR 15 zero again. It gets its disk
 * key, nothing else: it is in Kubernetes already. */
static int rejoin(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                  size_t n);

int join_handle_rejoin(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                       size_t n)
{
        _cleanup_(json_decrefp) json_t *answer = NULL;
        int r;

        /* Quick (a key derivation, one write): whole under the lock. */
        (void) pthread_mutex_lock(&js->members_lock);
        r = rejoin(js, req, &answer, detail, n);
        (void) pthread_mutex_unlock(&js->members_lock);
        if (r < 0)
                return r;
        fault_tamper(answer);
        return rpc_answer_seal(req->spki, req->spki_size, "rejoin", answer, ret_response);
}

static int rejoin(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                  size_t n)
{
        _cleanup_(secret_freep) Secret *disk_key = NULL;
        _cleanup_(json_decrefp) json_t *members = NULL, *answer = NULL;
        const char *name = req->name, *uuid = req->disk_uuid, *role, *endpoint = req->endpoint,
                   *known_ak;
        char ak[65] = "";
        bool pcr15_zero = true;
        char evidence[65] = "", msalt[2 * MEASUREMENT_SALT_SIZE + 1];
        const json_t *m;
        Diag d;
        int r;

        if (!req->evidence)
                return refuse_unverified(js, req, "", detail, n, -EPERM,
                                         "the client did not attest");
        diag_clear(&d);
        r = join_call_verify(js, req, evidence, &d);
        if (r < 0)
                return refuse_unverified(js, req, evidence, detail, n, -EPERM,
                                         "the evidence does not verify in the monitor: %s",
                                         d.message);
        if (!node_name_ok(name) || !uuid_ok(uuid) || !endpoint_ok(endpoint))
                return refuse(js, req, NULL, "", evidence, detail, n, -EBADMSG,
                              "name, diskUuid or endpoint is malformed");
        r = members_load_diag(js, &members, &d);
        if (r < 0 && js->etcd)
                return refuse(js, req, name, "", evidence, detail, n, -EHOSTUNREACH,
                              "the cluster's membership in etcd cannot be read (%s): rejoins "
                              "are refused until etcd answers (fail closed)",
                              d.message);
        if (r < 0)
                return refuse(js, req, name, "", evidence, detail, n, r,
                              "the join service cannot read its membership");
        m = members_find(members, name);
        if (!m || strcasecmp(json_string_value(json_object_get(m, "diskUuid")) ?: "", uuid) != 0)
                return refuse(js, req, name, "", evidence, detail, n, -EPERM,
                              "%s with disk %s is not a member %s", name, uuid,
                              js->etcd ? "of the cluster (etcd)" : "admitted by this join service");
        if (is_own_identity(js, members, name, uuid, ""))
                return refuse(js, req, name, "", evidence, detail, n, -EPERM,
                              "a rejoin as this join service's own node is refused: it never "
                              "rejoins through itself");
        role = json_string_value(json_object_get(m, "role")) ?: "";
        /* A member re-attestation cordoned gets no key until it passes again. */
        {
                char why[400];
                if (reattest_refuses_rejoin(js, name, why, sizeof(why)))
                        return refuse(js, req, name, role, evidence, detail, n, -EPERM, "%s", why);
        }
        /* Name and disk UUID are no secret: the member must also be the TPM it joined with. */
        known_ak = json_string_value(json_object_get(m, "akDigest")) ?: "";
        r = peer_ak_digest(req, ak, &pcr15_zero);
        if (r >= 0 && !pcr15_zero)
                return refuse(js, req, name, role, evidence, detail, n, -EALREADY,
                              "%s has PCR 15 extended already: it rejoined since it booted", name);
        if (!known_ak[0]) {
                AttestVariant variant;
                (void) pthread_mutex_lock(&js->policy.lock);
                variant = js->policy.policy->variant;
                (void) pthread_mutex_unlock(&js->policy.lock);
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "%s is a member bound to no attestation key (variant %s): nothing "
                              "proves a rejoin comes from it, so it cannot rejoin (docs/join.md)",
                              name, attest_variant_to_string(variant));
        }
        if (r < 0 || strcmp(known_ak, ak) != 0)
                return refuse(js, req, name, role, evidence, detail, n, -EPERM,
                              "%s attests with another attestation key than the one it joined "
                              "with",
                              name);
        r = kdf_disk_key(js->master->key, js->master->salt, uuid, &disk_key);
        if (r < 0)
                return refuse(js, req, name, role, evidence, detail, n, r, "key derivation failed");
        hex_encode_buf(js->measurement_salt, sizeof(js->measurement_salt), msalt, sizeof(msalt));
        answer = json_pack("{s:s,s:s}", "clusterId", js->cluster_id_hex, "measurementSalt", msalt);
        /* The release the control plane runs: the node upgrades its kubelet only to it. */
        if (answer && js->kubernetes_version[0] &&
            json_object_set_new(answer, "kubernetesVersion", json_string(js->kubernetes_version)) <
                    0)
                return -ENOMEM;
        if (!answer ||
            put_secret(answer, "diskKey", secret_data(disk_key), secret_size(disk_key)) < 0)
                return -ENOMEM;
        /* Where to attest it from now on (an address may change across a reboot). With etcd
         * the rejoin is recorded there first, with its audit entry, or the key is not given. */
        if (js->etcd) {
                char policy_digest[65];
                AuditEntry e;

                join_audit_entry(js, &e, policy_digest, "rejoin", name, role, evidence, "admitted",
                                 "");
                diag_clear(&d);
                r = join_etcd_admit(js, &e, name, role, endpoint, uuid, known_ak, true, &d);
                if (r < 0)
                        return refuse(js, req, name, role, evidence, detail, n,
                                      r == -EEXIST || r == -EPERM ? r : -EHOSTUNREACH,
                                      "the rejoin cannot be recorded in the cluster's membership "
                                      "in etcd (%s): no key was released (fail closed)",
                                      d.message);
        }
        r = members_record(js, name, role, endpoint, uuid, known_ak);
        if (r < 0 && !js->etcd)
                return refuse(js, req, name, role, evidence, detail, n, r,
                              "the join service cannot update the membership");
        if (js->etcd)
                join_audit_local(js, "rejoin", name, role, evidence, "admitted", "");
        else
                join_audit(js, "rejoin", name, role, evidence, "admitted", "");
        *ret_response = TAKE_PTR(answer);
        return 0;
}

int join_handle_members(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                        size_t n)
{
        json_t *doc = NULL, *version = NULL;
        bool cache = false;
        int r;

        r = members_load(js, &doc);
        /* etcd not answering: the last copy read from it, said to be one (with etcd's health
         * below, so that the owner sees why). */
        if (r < 0 && js->etcd) {
                r = members_load_local(js, &doc);
                cache = true;
        }
        if (r < 0) {
                (void) snprintf(detail, n, "cannot read the membership");
                return r;
        }
        (void) pthread_mutex_lock(&js->policy.lock);
        /* The policy file as it is now, and the owner's version of it (docs/policy-update.md). */
        r = join_policy_version(js, &version) < 0 ||
                            json_object_set_new(doc, "policyVersion", version) < 0
                    ? -ENOMEM
                    : 0;
        if (r >= 0)
                r = json_object_set_new(doc, "policyDigest", json_string(js->policy.digest));
        (void) pthread_mutex_unlock(&js->policy.lock);
        if (r < 0 || json_object_set_new(doc, "clusterId", json_string(js->cluster_id_hex)) < 0 ||
            json_object_set_new(doc, "self", json_string(js->node_name)) < 0 ||
            json_object_set_new(doc, "membership",
                                json_string(!js->etcd ? "local"
                                            : cache   ? "etcd-cache"
                                                      : "etcd")) < 0) {
                json_decref(doc);
                return -ENOMEM;
        }
        if (js->etcd) {
                json_t *health = NULL;
                if (join_etcd_health(js, &health) < 0 ||
                    json_object_set_new(doc, "etcd", health) < 0) {
                        json_decref(doc);
                        return -ENOMEM;
                }
        }
        reattest_annotate_members(js, doc);
        *ret_response = doc;
        return 0;
}

/* "offset=N" or nothing (0): the byte where the page starts. */
static int audit_query_offset(const char *query, uint64_t *ret)
{
        const char *digits;
        uint64_t v = 0;

        *ret = 0;
        if (!query || !*query)
                return 0;
        if (strncmp(query, "offset=", 7) != 0)
                return -EBADMSG;
        digits = query + 7;
        if (!*digits || strlen(digits) > 18 || strspn(digits, "0123456789") != strlen(digits))
                return -EBADMSG;
        for (const char *p = digits; *p; p++)
                v = v * 10 + (uint64_t) (*p - '0');
        *ret = v;
        return 0;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t offset, size_t *ret)
{
        size_t got = 0;

        while (got < n) {
                ssize_t k = pread(fd, (uint8_t *) buf + got, n - got, (off_t) (offset + got));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        *ret = got;
        return 0;
}

/* One page, read under the audit lock: the log's bytes from offset and the head file as the
 * same moment left them. */
static int audit_read_page(JoinService *js, const char *head_path, uint64_t offset, char **ret_page,
                           size_t *ret_size, bool *ret_more, uint8_t **ret_head,
                           size_t *ret_head_size, char *detail, size_t n)
{
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *page = NULL;
        struct stat st;
        size_t got = 0;
        bool more;
        int r;

        fd = open(js->audit_log, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (offset > (uint64_t) st.st_size) {
                (void) snprintf(detail, n,
                                "offset %" PRIu64 " is past the end of the audit log (%" PRIu64
                                " bytes)",
                                offset, (uint64_t) st.st_size);
                return -EBADMSG;
        }
        if (offset > 0) {
                char before = 0;
                r = pread_full(fd, &before, 1, offset - 1, &got);
                if (r < 0)
                        return r;
                if (got != 1 || before != '\n') {
                        (void) snprintf(detail, n,
                                        "offset %" PRIu64 " is not the start of an audit entry",
                                        offset);
                        return -EBADMSG;
                }
        }
        page = malloc(JOIN_AUDIT_PAGE);
        if (!page)
                return -ENOMEM;
        r = pread_full(fd, page, JOIN_AUDIT_PAGE, offset, &got);
        if (r < 0)
                return r;
        more = offset + got < (uint64_t) st.st_size;
        if (more) {
                /* Whole entries only; the rest comes with the next page. A page holds more
                 * than one line of the largest size, so there is always a newline. */
                const char *nl = memrchr(page, '\n', got);
                if (!nl) {
                        (void) snprintf(detail, n, "an audit entry is longer than a page");
                        return -EMSGSIZE;
                }
                got = (size_t) (nl - page) + 1;
        }
        /* At the end the page holds what is there, a line cut short included: the caller's
         * check reports it. */
        r = read_full_file(head_path, 4096, ret_head, ret_head_size);
        if (r == -ENOENT) {
                *ret_head = NULL;
                *ret_head_size = 0;
        } else if (r < 0)
                return r;
        *ret_page = TAKE_PTR(page);
        *ret_size = got;
        *ret_more = more;
        return 0;
}

/* Control bytes other than the newline are never written (docs/audit-log.md); one in the log
 * means damage, and escaped as JSON it could take six times its size. */
static bool audit_page_has_control_bytes(const char *page, size_t size)
{
        for (size_t i = 0; i < size; i++)
                if (((unsigned char) page[i] < 0x20 && page[i] != '\n') || page[i] == 0x7f)
                        return true;
        return false;
}

/* GET /v1/audit?chain=cluster&seq=N: the cluster's one chain in etcd (docs/membership.md), a
 * page of entries from entry N, with the head of the same snapshot. */
static int audit_cluster_page(JoinService *js, const char *query, json_t **ret_response,
                              char *detail, size_t n)
{
        _cleanup_(freep) char *page = NULL, *head = NULL;
        json_t *log_text, *head_text;
        const char *digits = query + strlen("chain=cluster&seq=");
        char seen_hash[65];
        int64_t seq = 0, seen_seq = 0;
        size_t size = 0;
        bool more = false;
        Diag d;
        int r;

        if (strncmp(query, "chain=cluster&seq=", strlen("chain=cluster&seq=")) != 0 || !*digits ||
            strlen(digits) > 8 || strspn(digits, "0123456789") != strlen(digits)) {
                (void) snprintf(detail, n, "the cluster's audit chain takes chain=cluster&seq=N");
                return -EBADMSG;
        }
        for (const char *p = digits; *p; p++)
                seq = seq * 10 + (*p - '0');
        if (!js->etcd) {
                (void) snprintf(detail, n,
                                "this join service keeps no cluster audit chain: its membership "
                                "and log are local files (no --etcd-endpoints)");
                return -ENOENT;
        }
        diag_clear(&d);
        r = join_etcd_audit_page(js, seq, &page, &size, &more, &head, &seen_seq, seen_hash, &d);
        if (r < 0) {
                (void) snprintf(detail, n, "the cluster's audit chain in etcd cannot be read: %s",
                                d.message[0] ? d.message : strerror(-r));
                return r == -EINVAL ? -EBADMSG : r;
        }
        log_text = audit_page_has_control_bytes(page, size) ? NULL : json_stringn(page, size);
        head_text = head && !audit_page_has_control_bytes(head, strlen(head)) ? json_string(head)
                                                                              : json_null();
        if (!log_text || !head_text) {
                json_decref(log_text);
                json_decref(head_text);
                (void) snprintf(detail, n,
                                "the cluster's audit chain in etcd (from entry %" PRId64
                                ") or its head is not text: it was altered",
                                seq);
                return -EBADMSG;
        }
        /* seen: the last entry this join service wrote to the chain; the CLI requires the chain
         * to hold it (docs/membership.md, "Rollback of etcd"). */
        *ret_response =
                json_pack("{s:o,s:I,s:b,s:o,s:s,s:o}", "log", log_text, "seq", (json_int_t) seq,
                          "more", more, "head", head_text, "chain", "cluster", "seen",
                          seen_seq > 0 ? json_pack("{s:I,s:s}", "seq", (json_int_t) seen_seq,
                                                   "hash", seen_hash)
                                       : json_null());
        return *ret_response ? 0 : -ENOMEM;
}

/* The audit log and its head, as they are, one page at a time: the owner's CLI checks the
 * chain itself. */
int join_handle_audit(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                      size_t n)
{
        _cleanup_(freep) char *page = NULL, *head_path = NULL, *checkpoint = NULL;
        _cleanup_(freep) uint8_t *head = NULL;
        _cleanup_(json_decrefp) json_t *log_text = NULL, *head_text = NULL;
        size_t page_size = 0, head_size = 0;
        uint64_t offset;
        bool more = false;
        int r;

        if (req->query && strncmp(req->query, "chain=", 6) == 0)
                return audit_cluster_page(js, req->query, ret_response, detail, n);
        if (audit_query_offset(req->query, &offset) < 0) {
                (void) snprintf(detail, n, "the audit log takes one query, offset=N (bytes)");
                return -EBADMSG;
        }
        if (asprintf(&head_path, "%s.head", js->audit_log) < 0)
                return -ENOMEM;
        /* The refusals counted so far go in first: the owner sees them. */
        join_audit_flush(js);
        (void) pthread_mutex_lock(&js->audit_lock);
        /* The head signed as it is served (if it moved), and the checkpoint read with it. */
        (void) join_checkpoint_update_locked(js, false);
        r = audit_read_page(js, head_path, offset, &page, &page_size, &more, &head, &head_size,
                            detail, n);
        if (((r >= 0 && !more) || r == -ENOENT) && join_checkpoint_read_locked(js, &checkpoint) < 0)
                checkpoint = NULL;
        (void) pthread_mutex_unlock(&js->audit_lock);
        if (r == -ENOENT && offset == 0) {
                *ret_response = json_pack("{s:s,s:I,s:I,s:b,s:n,s:o}", "log", "", "offset", 0,
                                          "next", 0, "more", 0, "head", "checkpoint",
                                          checkpoint ? json_string(checkpoint) : json_null());
                return *ret_response ? 0 : -ENOMEM;
        }
        if (r < 0) {
                if (!detail[0])
                        (void) snprintf(detail, n, "cannot read the audit log: %s", strerror(-r));
                return r;
        }
        /* Entries are UTF-8 text without control bytes; anything else means damage, which
         * the owner must hear about. */
        log_text = audit_page_has_control_bytes(page, page_size) ? NULL
                                                                 : json_stringn(page, page_size);
        head_text = head ? json_stringn((const char *) head, head_size) : json_null();
        if (!log_text || !head_text) {
                (void) snprintf(detail, n,
                                "the audit log (from byte %" PRIu64 ") or its head is not text: "
                                "the file was damaged or altered",
                                offset);
                return -EBADMSG;
        }
        /* The signed checkpoint with the last page (null before it, or if there is none). */
        *ret_response = json_pack("{s:O,s:I,s:I,s:b,s:O,s:o}", "log", log_text, "offset",
                                  (json_int_t) offset, "next", (json_int_t) (offset + page_size),
                                  "more", more, "head", head_text, "checkpoint",
                                  checkpoint ? json_string(checkpoint) : json_null());
        return *ret_response ? 0 : -ENOMEM;
}

int join_handle_node(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                     size_t n)
{
        _cleanup_(freep) char *path = NULL;
        Diag d;
        int r;

        /* The caller has just verified our evidence; this names what it verified. */
        if (asprintf(&path, "%s/node-state.json", js->state_dir) < 0)
                return -ENOMEM;
        diag_clear(&d);
        r = json_parse_file(path, 64 * 1024, ret_response, &d);
        if (r < 0) {
                (void) snprintf(detail, n, "cannot read the node state: %s", d.message);
                return r;
        }
        /* What this node runs (docs/versions.md): the owner's CLI compares it with its own. */
        if (!json_is_object(*ret_response) ||
            json_object_set_new(*ret_response, "state", json_string("member")) < 0 ||
            json_object_set_new(*ret_response, "versions", node_versions_json(js->os_release)) <
                    0) {
                (void) snprintf(detail, n, "the node state is not an object");
                return -EBADMSG;
        }
        /* In the mesh: its peers and their last handshakes (cloister status, docs/mesh.md). */
        if (js->mesh &&
            json_object_set_new(*ret_response, "mesh", mesh_status_report(js->state_dir)) < 0)
                return -ENOMEM;
        return 0;
}

/* An init whose answer was lost: the owner's CLI sends the same init again (same master secret
 * and measurement salt, so the same cluster). Proven by the master secret itself, it gets the
 * answer again; anything else is told the node is initialised already. */
int join_handle_init_again(JoinService *js, const JoinCall *req, json_t **ret_response,
                           char *detail, size_t n)
{
        _cleanup_(secret_freep) Secret *master = NULL;
        _cleanup_(freep) uint8_t *kubeconfig = NULL;
        _cleanup_(freep) char *path = NULL;
        size_t size;
        int r;

        r = secret_new_from(req->master, MASTER_SECRET_SIZE, &master);
        if (r < 0)
                return r;
        if (!secret_equal(master, js->master->key) ||
            !memeq_consttime(req->salt, js->master->salt, MASTER_SALT_SIZE) ||
            !memeq_consttime(req->measurement_salt, js->measurement_salt, MEASUREMENT_SALT_SIZE)) {
                (void) snprintf(detail, n, "this node is already initialised");
                return -EALREADY;
        }
        if (asprintf(&path, "%s/admin.conf", js->state_dir) < 0)
                return -ENOMEM;
        r = read_full_file(path, 1 << 20, &kubeconfig, &size);
        if (r < 0) {
                (void) snprintf(detail, n, "cannot read the admin kubeconfig");
                return r;
        }
        log_info("join-service: the owner repeated the init; answering it again");
        *ret_response = json_pack("{s:s,s:s%}", "clusterId", js->cluster_id_hex, "kubeconfig",
                                  (const char *) kubeconfig, size);
        explicit_wipe(kubeconfig, size);
        return *ret_response ? 0 : -ENOMEM;
}
