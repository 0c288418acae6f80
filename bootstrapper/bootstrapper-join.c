/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cloister/attest-atls.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/luks.h"
#include "cloister/mastersecret.h"
#include "cloister/policy-update.h"
#include "cloister/spawn.h"

#include "bootstrapper.h"

#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS   5000
/* The image's PCRs: firmware-measured UKI (4), the stub's sections (11), its command line and
 * initrd (9). A join service must show the same values this node measured. */
static const unsigned image_pcrs[] = { 4, 9, 11 };

typedef struct Ticket {
        json_t *json; /* owns the strings */
        const char *cluster_id, *endpoint, *token, *ca_cert_hash, *certificate_key;
        const char *cluster_policy; /* control planes: the policy their join service enforces */
        Secret *disk_key, *measurement_secret, *master, *salt;
        uint8_t measurement_salt[MEASUREMENT_SALT_SIZE];
        /* control planes: the version the owner pushed cluster_policy as (0: none, or not
         * known; docs/policy-update.md) */
        int64_t policy_version;
} Ticket;

static void ticket_done(Ticket *t)
{
        /* The token and certificate key are secrets too: wipe them inside the JSON. */
        if (t->token)
                explicit_wipe((char *) t->token, strlen(t->token));
        if (t->certificate_key)
                explicit_wipe((char *) t->certificate_key, strlen(t->certificate_key));
        json_decref(t->json);
        secret_free(t->disk_key);
        secret_free(t->measurement_secret);
        secret_free(t->master);
        secret_free(t->salt);
        *t = (Ticket){};
}

/* The policy this node holds join services to: AK trust and variant from the file, the image
 * PCRs as this node measured them, PCR 15 = the cluster's ID. */
int bootstrapper_join_service_policy(Bootstrapper *b, const NodeMetadata *md, const char *path,
                                     uint8_t cid[static CLUSTER_ID_SIZE], AttestPolicy **ret)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        uint8_t pcrs[TPM_DEVICE_PCRS][32];
        uint32_t mask = 0;
        Diag d;
        int r;

        if (!md->cluster_id[0] || hex_decode_exact(md->cluster_id, cid, CLUSTER_ID_SIZE) < 0)
                return log_error_errno(-EINVAL, "The metadata names no cluster ID "
                                                "(cloister-cluster-id): a joining node must know "
                                                "which cluster's join service to trust.");
        diag_clear(&d);
        r = attest_policy_load(path, &p, &d);
        if (r < 0)
                return log_error_errno(r, "Cannot load the join policy: %s", d.message);
        r = bootstrapper_check_ak_trust(b, p, path);
        if (r < 0)
                return r;
        if (p->variant != b->attester.variant)
                return log_error_errno(-EINVAL,
                                       "The join policy %s is for %s, but this node attests with "
                                       "%s (--attest): a join service presents the evidence of "
                                       "its node, which is of the cluster's variant.",
                                       path, attest_variant_to_string(p->variant),
                                       attest_variant_to_string(b->attester.variant));
        /* A TDX quote has no PCRs: the policy's own measurements (mrTd, RTMRs) judge the join
         * service's image; its cluster is the PCR 15 of its TPM's identity quote (below), and
         * the sealed ticket's cluster ID and measurement secret are checked in any case. */
        if (!attest_variant_quotes_pcrs(p->variant))
                goto cluster;
        /* During an upgrade the policy lists the images the owner admits (measurement sets,
         * docs/upgrade.md): a join service may run any of them, so the PCRs of the sets are
         * the sets' to judge, not this node's own values. */
        for (size_t i = 0; i < ELEMENTSOF(image_pcrs); i++) {
                bool in_set = false;
                for (size_t k = 0; k < p->n_sets; k++)
                        in_set |= p->sets[k].pcrs[image_pcrs[i]].present;
                if (!in_set)
                        p->pcrs[image_pcrs[i]].present = true;
        }
        for (unsigned i = 0; i < 15; i++)
                if (p->pcrs[i].present)
                        mask |= 1U << i;
        (void) pthread_mutex_lock(b->tpm_lock);
        r = tpm_device_pcr_read(b->tpm, mask, pcrs);
        (void) pthread_mutex_unlock(b->tpm_lock);
        if (r < 0)
                return log_error_errno(r, "Cannot read this node's PCRs: %m");
        for (unsigned i = 0; i < 15; i++)
                if (mask & (1U << i)) {
                        memcpy(p->pcrs[i].expected, pcrs[i], 32);
                        p->pcrs[i].warn_only = false;
                }
cluster:
        p->pcrs[15] = (PcrExpectation){ .present = true };
        kdf_pcr15_expected(cid, p->pcrs[15].expected);
        *ret = TAKE_PTR(p);
        return 0;
}

static int parse_ticket(json_t *j, bool control_plane, const uint8_t cid[static CLUSTER_ID_SIZE],
                        Ticket *t, Diag *d)
{
        static const char *const keys[] = { "clusterId",       "controlPlaneEndpoint",
                                            "token",           "caCertHash",
                                            "diskKey",         "measurementSecret",
                                            "measurementSalt", "certificateKey",
                                            "masterSecret",    "salt",
                                            "clusterPolicy",   "clusterPolicyVersion",
                                            "admitted",        NULL };
        JsonCtx ctx = { .source = "join ticket", .path = "", .diag = d };
        _cleanup_(secret_freep) Secret *msalt = NULL;
        uint8_t got[CLUSTER_ID_SIZE], derived[CLUSTER_ID_SIZE];
        int r;

        t->json = json_incref(j);
        if ((r = json_check_keys(&ctx, j, keys)) < 0 ||
            (r = json_get_string(&ctx, j, "clusterId", true, &t->cluster_id)) < 0 ||
            (r = json_get_string(&ctx, j, "controlPlaneEndpoint", true, &t->endpoint)) < 0 ||
            (r = json_get_string(&ctx, j, "token", true, &t->token)) < 0 ||
            (r = json_get_string(&ctx, j, "caCertHash", true, &t->ca_cert_hash)) < 0 ||
            (r = json_get_base64_secret(&ctx, j, "diskKey", DISK_KEY_SIZE, &t->disk_key)) < 0 ||
            (r = json_get_base64_secret(&ctx, j, "measurementSecret", MEASUREMENT_SECRET_SIZE,
                                        &t->measurement_secret)) < 0 ||
            (r = json_get_base64_secret(&ctx, j, "measurementSalt", MEASUREMENT_SALT_SIZE,
                                        &msalt)) < 0)
                return r;
        memcpy(t->measurement_salt, secret_data(msalt), MEASUREMENT_SALT_SIZE);
        if (control_plane &&
            ((r = json_get_string(&ctx, j, "certificateKey", true, &t->certificate_key)) < 0 ||
             (r = json_get_base64_secret(&ctx, j, "masterSecret", MASTER_SECRET_SIZE, &t->master)) <
                     0 ||
             (r = json_get_base64_secret(&ctx, j, "salt", MASTER_SALT_SIZE, &t->salt)) < 0 ||
             (r = json_get_string(&ctx, j, "clusterPolicy", true, &t->cluster_policy)) < 0))
                return r;
        if (control_plane) {
                const json_t *pv = json_object_get(j, "clusterPolicyVersion");
                if (pv && !json_is_null(pv) &&
                    (r = json_get_int(&ctx, j, "clusterPolicyVersion", true, 0,
                                      POLICY_UPDATE_VERSION_MAX, &t->policy_version)) < 0)
                        return r;
        }
        if (control_plane) {
                /* The master secret must be this cluster's (it derives the ticket's measurement
                 * secret), and the policy one a join service can enforce. */
                _cleanup_(secret_freep) Secret *ms = NULL;
                _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
                r = kdf_measurement_secret(t->master, secret_data(t->salt), &ms);
                if (r < 0 || !secret_equal(ms, t->measurement_secret))
                        return diag_fail(d, -EBADMSG, "ticket", -1,
                                         "the ticket's master secret is not this cluster's");
                r = attest_policy_parse(t->cluster_policy, strlen(t->cluster_policy),
                                        "ticket: clusterPolicy", &p, d);
                if (r < 0)
                        return r;
        }
        if (hex_decode_exact(t->cluster_id, got, sizeof(got)) < 0 ||
            memcmp(got, cid, sizeof(got)) != 0)
                return diag_fail(d, -EBADMSG, "ticket", -1, "the ticket names another cluster (%s)",
                                 t->cluster_id);
        /* The measurement secret and salt must be this cluster's: they derive its ID. */
        r = kdf_cluster_id(t->measurement_secret, t->measurement_salt, derived);
        if (r < 0 || memcmp(derived, cid, sizeof(derived)) != 0)
                return diag_fail(d, -EBADMSG, "ticket", -1,
                                 "the ticket's measurement secret does not derive the cluster ID");
        if (strncmp(t->ca_cert_hash, "sha256:", 7) != 0 || strlen(t->ca_cert_hash) != 7 + 64 ||
            strspn(t->ca_cert_hash + 7, "0123456789abcdef") != 64)
                return diag_fail(d, -EBADMSG, "ticket", -1, "caCertHash is not sha256:<hex>");
        if (strlen(t->token) != 23 || t->token[6] != '.' ||
            strspn(t->token, "abcdefghijklmnopqrstuvwxyz0123456789.") != 23)
                return diag_fail(d, -EBADMSG, "ticket", -1, "the bootstrap token is malformed");
        return 0;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        (void) nanosleep(&ts, NULL);
}

/* Why a join service was not asked or did not admit this node, in words (the PCR detail in
 * parentheses). */
static void log_why_not(const char *peer, const Diag *d)
{
        if (strcmp(d->check, "pcr") == 0 && d->index == 15)
                log_warning("join: the join service %s is not a member of the cluster in this "
                            "node's metadata (%s): not asking it; check the metadata's peers and "
                            "clusterId",
                            peer, d->message);
        else if (strcmp(d->check, "pcr") == 0)
                log_warning("join: the join service %s runs another image than this node (%s): "
                            "not asking it; boot this node from the cluster's image, or check "
                            "the metadata's peers",
                            peer, d->message);
        else if (strcmp(d->check, "rpc-evidence-refused") == 0) /* names the URL already */
                log_warning("join: %s", d->message);
        else
                log_warning("join: %s: %s", peer, d->message);
}

/* Asks each peer in turn (POST path with body), backing off between rounds, until one admits
 * this node. */
static int ask_join_services(Bootstrapper *b, const NodeMetadata *md, const AttestPolicy *policy,
                             const char *path, const json_t *body, unsigned timeout_sec,
                             json_t **ret)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        PolicyVerifier pv = { .policy = policy };
        AtlsVerifier v = policy_verifier(&pv);
        time_t deadline = time(NULL) + timeout_sec;
        unsigned delay = BACKOFF_FIRST_MS;
        RpcClientConfig cfg;
        int r;

        r = atls_context_new(ATLS_ROLE_CLIENT, &b->attester, &v, &atls);
        if (r < 0)
                return log_error_errno(r, "Cannot set up aTLS: %m");
        rpc_client_config_defaults(&cfg);
        cfg.retries = 0;
        for (;;) {
                for (size_t i = 0; i < md->n_peers; i++) {
                        _cleanup_(json_decrefp) json_t *resp = NULL;
                        _cleanup_(freep) char *url = NULL;
                        long status = 0;
                        Diag d;

                        if (asprintf(&url, "https://%s", md->peers[i]) < 0)
                                return log_oom();
                        diag_clear(&d);
                        r = rpc_call(atls, &cfg, "POST", url, path, body, false, &status, &resp,
                                     &d);
                        if (r < 0) {
                                log_why_not(md->peers[i], &d);
                                continue;
                        }
                        if (status != 200) {
                                const char *detail =
                                        json_string_value(json_object_get(resp, "detail"));
                                log_warning("join: the join service %s refused this node (HTTP "
                                            "%ld): %s",
                                            md->peers[i], status, detail ?: "no reason given");
                                continue;
                        }
                        /* The ticket is sealed to this node's aTLS key by the join service's
                         * monitor: its network process can neither read nor alter it. */
                        diag_clear(&d);
                        r = rpc_answer_unseal(atls,
                                              strcmp(path, "/v1/rejoin") == 0 ? "rejoin" : "join",
                                              &resp, &d);
                        if (r < 0) {
                                log_warning("join: the answer of %s is refused: %s", md->peers[i],
                                            d.message);
                                continue;
                        }
                        log_info("join: admitted by %s", md->peers[i]);
                        *ret = TAKE_PTR(resp);
                        return 0;
                }
                if (time(NULL) + (time_t) (delay / 1000) >= deadline)
                        return log_error_errno(-ETIMEDOUT,
                                               "No join service admitted this node within %u s "
                                               "(reasons above). Check the peers in the metadata "
                                               "and the cluster's policy.",
                                               timeout_sec);
                sleep_ms(delay);
                delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
        }
}

/* The version record of the policy in the ticket, so that this node's join service refuses any
 * update older than the one it starts with (docs/policy-update.md). */
static int write_policy_version(Bootstrapper *b, const Ticket *t)
{
        Diag d;
        int r;

        if (t->policy_version <= 0)
                return 0;
        diag_clear(&d);
        r = policy_update_record_write(b->state_dir, t->policy_version, t->cluster_policy,
                                       strlen(t->cluster_policy), &d);
        if (r < 0)
                return log_error_errno(r, "Cannot store the cluster policy's version: %s",
                                       d.message);
        return 0;
}

static int run_kubeadm_join(Bootstrapper *b, const Ticket *t)
{
        _cleanup_(freep) char *cfgpath = NULL, *logpath = NULL;
        int r;

        if (asprintf(&cfgpath, "%s/kubeadm-join.yaml", b->state_dir) < 0 ||
            asprintf(&logpath, "%s/kubeadm.log", b->state_dir) < 0)
                return log_oom();
        const KubeadmJoinParams p = {
                .node_name = b->node_name,
                .advertise_address = b->advertise_address,
                .control_plane_endpoint = t->endpoint,
                .token = t->token,
                .ca_cert_hash = t->ca_cert_hash,
                .certificate_key = t->certificate_key,
        };
        r = kubeadm_write_join_config(&p, cfgpath);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", cfgpath);
        char *const argv[] = { (char *) b->kubeadm, (char *) "join", (char *) "--config", cfgpath,
                               NULL };
        log_info("join: kubeadm join (node %s)", b->node_name);
        r = spawn_wait(argv, logpath);
        /* The token is single-purpose and short-lived; do not leave it lying around. */
        (void) unlink(cfgpath);
        if (r != 0)
                return log_error_errno(r < 0 ? r : -EIO, "kubeadm join failed (see %s).", logpath);
        return 0;
}

static int write_node_state(Bootstrapper *b, const NodeMetadata *md, const Ticket *t)
{
        _cleanup_(freep) char *path = NULL, *text = NULL;
        _cleanup_(json_decrefp) json_t *st = NULL;
        char msalt[2 * MEASUREMENT_SALT_SIZE + 1], kversion[VERSION_STRING_MAX];

        hex_encode_buf(t->measurement_salt, sizeof(t->measurement_salt), msalt, sizeof(msalt));
        st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "clusterId", t->cluster_id, "role",
                       node_role_to_string(md->role), "node", b->node_name, "controlPlaneEndpoint",
                       t->endpoint, "measurementSalt", msalt, "endpoint", b->endpoint, "diskUuid",
                       b->disk_uuid);
        if (!st)
                return -ENOMEM;
        /* The release its kubelet runs: the image's (kubeadm join used this image's kubelet). */
        if (bootstrapper_image_kubernetes(b, kversion) >= 0 &&
            json_object_set_new(st, "kubernetesVersion", json_string(kversion)) < 0)
                return -ENOMEM;
        if (json_dump_compact(st, &text) < 0 ||
            asprintf(&path, "%s/node-state.json", b->state_dir) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
}

int bootstrapper_join(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                      unsigned timeout_sec)
{
        _cleanup_(attest_policy_freep) AttestPolicy *policy = NULL;
        _cleanup_(secret_freep) Secret *first = NULL;
        _cleanup_(json_decrefp) json_t *resp = NULL, *body = NULL;
        _cleanup_(ticket_done) Ticket t = {};
        uint8_t cid[CLUSTER_ID_SIZE], event[32];
        char uuid[LUKS_UUID_SIZE];
        bool control_plane = md->role == NODE_ROLE_CONTROL_PLANE;
        LuksState st;
        Diag d;
        int r;

        r = bootstrapper_join_service_policy(b, md, policy_path, cid, &policy);
        if (r < 0)
                return r;

        diag_clear(&d);
        r = luks_validate(b->state_disk, uuid, &st, &d);
        if (r < 0)
                return log_error_errno(r, "State disk refused: %s", d.message);
        /* The disk this node asks a key for is the one it started with. */
        if (strcmp(uuid, b->disk_uuid) != 0)
                return log_error_errno(-EBADMSG,
                                       "The state disk changed since this node started (UUID %s, "
                                       "was %s): refusing to join with it. Restart the node.",
                                       uuid, b->disk_uuid);
        /* A join cut short after the re-key needs no first-boot key (it is gone after a
         * reboot): the disk key from the new ticket must open the disk instead. */
        if (st != LUKS_STATE_INITIALIZED) {
                r = bootstrapper_first_boot_key(b, &first);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the first-boot key %s: %m",
                                               b->first_boot_key);
        } else
                log_info("join: resuming a join that was cut short after the disk was re-keyed");

        log_info("join: asking %zu join service(s) for a ticket (cluster %s)", md->n_peers,
                 md->cluster_id);
        body = json_pack("{s:s,s:s,s:s,s:s}", "name", b->node_name, "role",
                         node_role_to_string(md->role), "diskUuid", uuid, "endpoint", b->endpoint);
        if (!body)
                return log_oom();
        /* A control plane gets the master secret: only the owner may make one. The join service
         * checks the owner's authorization; this node only passes it on. */
        if (control_plane) {
                if (!md->cp_authorization[0])
                        return log_error_errno(-EPERM,
                                               "This node is to join as a control plane, but its "
                                               "metadata carries no control-plane authorization: "
                                               "the owner creates one with 'cloister control-plane "
                                               "authorize %s' and sets it as "
                                               "cloister-control-plane-authorization.",
                                               b->node_name);
                if (json_object_set_new(body, "controlPlaneAuthorization",
                                        json_string(md->cp_authorization)) < 0)
                        return log_oom();
        }
        r = ask_join_services(b, md, policy, "/v1/join", body, timeout_sec, &resp);
        if (r < 0)
                return r;
        r = parse_ticket(resp, control_plane, cid, &t, &d);
        if (r < 0)
                return log_error_errno(r, "The join ticket is refused: %s", d.message);
        /* The join service admitted exactly what this node asked for: never re-key the disk
         * with a key for another disk, or join under another name or role. */
        {
                const json_t *adm = json_object_get(resp, "admitted");
                const char *an = json_string_value(json_object_get(adm, "name")),
                           *ar = json_string_value(json_object_get(adm, "role")),
                           *au = json_string_value(json_object_get(adm, "diskUuid"));
                if (!an || !ar || !au || strcmp(an, b->node_name) != 0 ||
                    strcmp(ar, node_role_to_string(md->role)) != 0 || strcasecmp(au, uuid) != 0)
                        return log_error_errno(-EBADMSG,
                                               "The join ticket is refused: it admits %s as %s "
                                               "with disk %s, but this node asked as %s (%s, "
                                               "disk %s). The request was altered on its way.",
                                               an ?: "?", ar ?: "?", au ?: "?", b->node_name,
                                               node_role_to_string(md->role), uuid);
        }

        r = first ? luks_rekey(b->state_disk, first, t.disk_key, &d)
                  : luks_check_key(b->state_disk, t.disk_key, &d);
        if (r < 0)
                return log_error_errno(r, "Re-keying the state disk failed: %s", d.message);
        if (!bootstrapper_pcr15_is_cluster(b, md->cluster_id)) {
                kdf_pcr15_event_digest(cid, event);
                (void) pthread_mutex_lock(b->tpm_lock);
                r = tpm_device_pcr_extend(b->tpm, 15, event);
                (void) pthread_mutex_unlock(b->tpm_lock);
                if (r < 0)
                        return log_error_errno(r, "Extending PCR 15 failed: %m");
        }
        b->initialized = true;

        if (control_plane) {
                /* This node serves joins from now on: the master secret and the cluster's policy
                 * (from the ticket: the owner's, not this node's --join-policy) go to its
                 * (encrypted) state. */
                r = bootstrapper_write_cluster_secrets(b, t.master, secret_data(t.salt),
                                                       t.cluster_policy);
                if (r < 0)
                        return log_error_errno(r, "Cannot store the cluster's secrets: %m");
                r = write_policy_version(b, &t);
                if (r < 0)
                        return r;
        }
        r = run_kubeadm_join(b, &t);
        if (r < 0)
                return r;
        r = write_node_state(b, md, &t);
        if (r < 0)
                return log_error_errno(r, "Cannot write the node state: %m");
        log_info("Joined cluster %s as %s.", t.cluster_id, node_role_to_string(md->role));
        return 0;
}

int bootstrapper_rejoin(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                        unsigned timeout_sec)
{
        static const char *const keys[] = { "clusterId", "diskKey", "measurementSalt",
                                            "kubernetesVersion", NULL };
        _cleanup_(attest_policy_freep) AttestPolicy *policy = NULL;
        _cleanup_(json_decrefp) json_t *resp = NULL, *body = NULL;
        _cleanup_(secret_freep) Secret *disk_key = NULL;
        JsonCtx ctx = { .source = "rejoin answer", .path = "" };
        uint8_t cid[CLUSTER_ID_SIZE], event[32];
        const char *got_cid = NULL, *cluster_k8s = NULL;
        char why[768];
        Diag d;
        int r;

        r = bootstrapper_join_service_policy(b, md, policy_path, cid, &policy);
        if (r < 0)
                return r;
        body = json_pack("{s:s,s:s,s:s}", "name", b->node_name, "diskUuid", b->disk_uuid,
                         "endpoint", b->endpoint);
        if (!body)
                return log_oom();
        log_info("rejoin: this node's disk belongs to cluster %s; asking %zu join service(s) "
                 "for its key",
                 md->cluster_id, md->n_peers);
        r = ask_join_services(b, md, policy, "/v1/rejoin", body, timeout_sec, &resp);
        if (r < 0)
                return r;
        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, resp, keys) < 0 ||
            json_get_string(&ctx, resp, "clusterId", true, &got_cid) < 0 ||
            json_get_base64_secret(&ctx, resp, "diskKey", DISK_KEY_SIZE, &disk_key) < 0 ||
            (json_get_string(&ctx, resp, "kubernetesVersion", false, &cluster_k8s) < 0 &&
             diag_failed(&d)))
                return log_error_errno(-EBADMSG, "The rejoin answer is refused: %s", d.message);
        if (strcmp(got_cid, md->cluster_id) != 0)
                return log_error_errno(-EBADMSG, "The rejoin answer names another cluster.");
        /* The key must open this disk: a wrong one is never accepted as the node's, nor handed
         * to the disk mapper. */
        r = luks_check_key(b->state_disk, disk_key, &d);
        if (r < 0)
                return log_error_errno(r,
                                       "The disk key from the join service does not open the "
                                       "state disk: %s",
                                       d.message);
        /* --state-mount: the disk was left locked at boot; it is opened and mounted now, before
         * PCR 15 says this node is back in its cluster. */
        r = bootstrapper_open_state(b, disk_key);
        if (r < 0)
                return r;
        disk_key = secret_free(disk_key);
        if (!bootstrapper_node_state_exists(b)) {
                log_info("rejoin: the state disk holds no %s/node-state.json: this node's join "
                         "was cut short after its disk was re-keyed (kubeadm join never "
                         "finished); finishing that join now",
                         b->state_dir);
                return BOOTSTRAPPER_REJOIN_UNFINISHED_JOIN;
        }
        /* The image may carry another Kubernetes release than the disk ran: followed (kubeadm
         * upgrade) or refused, before this node counts as a member again. */
        r = bootstrapper_kubernetes_follow(b, cluster_k8s, why, sizeof(why));
        if (r < 0)
                return log_error_errno(r, "rejoin: refused to come back: %s.", why);
        kdf_pcr15_event_digest(cid, event);
        (void) pthread_mutex_lock(b->tpm_lock);
        r = tpm_device_pcr_extend(b->tpm, 15, event);
        (void) pthread_mutex_unlock(b->tpm_lock);
        if (r < 0)
                return log_error_errno(r, "Extending PCR 15 failed: %m");
        b->initialized = true;
        log_info("Rejoined cluster %s: the state disk's key was released to this node.",
                 md->cluster_id);
        return 0;
}
