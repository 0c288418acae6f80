/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cloister/audit-log.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/luks.h"

#include "bootstrapper.h"

/* The cluster this node's state records (written at init or join). */
static int recorded_cluster(Bootstrapper *b, uint8_t cid[static CLUSTER_ID_SIZE],
                            uint8_t msalt[static MEASUREMENT_SALT_SIZE], Diag *d)
{
        _cleanup_(json_decrefp) json_t *st = NULL;
        _cleanup_(freep) char *path = NULL;
        const char *cid_hex = NULL, *msalt_hex = NULL;
        JsonCtx ctx = { .path = "", .diag = d };
        int r;

        if (asprintf(&path, "%s/node-state.json", b->state_dir) < 0)
                return -ENOMEM;
        ctx.source = path;
        r = json_parse_file(path, 64 * 1024, &st, d);
        if (r >= 0)
                r = json_get_string(&ctx, st, "clusterId", true, &cid_hex);
        if (r >= 0)
                r = json_get_string(&ctx, st, "measurementSalt", true, &msalt_hex);
        if (r < 0)
                return r;
        if (hex_decode_exact(cid_hex, cid, CLUSTER_ID_SIZE) < 0 ||
            hex_decode_exact(msalt_hex, msalt, MEASUREMENT_SALT_SIZE) < 0)
                return diag_fail(d, -EBADMSG, "node-state", -1, "%s is malformed", path);
        return 0;
}

static int refuse(char *detail, size_t n, int r, const char *what, const char *why)
{
        (void) snprintf(detail, n, "%s%s%s", what, why ? ": " : "", why ?: "");
        log_warning("recovery refused: %s", detail);
        return r;
}

static int handle_recover(Bootstrapper *b, const RpcRequest *req, json_t **ret_response,
                          char *detail, size_t n);

int bootstrapper_handle_recover(void *userdata, const RpcRequest *req, json_t **ret_response,
                                char *detail, size_t n)
{
        Bootstrapper *b = userdata;
        int r;

        /* One at a time: it opens the disk and extends PCR 15. */
        (void) pthread_mutex_lock(&b->op_lock);
        r = handle_recover(b, req, ret_response, detail, n);
        (void) pthread_mutex_unlock(&b->op_lock);
        return r;
}

static int handle_recover(Bootstrapper *b, const RpcRequest *req, json_t **ret_response,
                          char *detail, size_t n)
{
        static const char *const keys[] = { "masterSecret", "salt", NULL };
        JsonCtx ctx = { .source = "recover request", .path = "" };
        _cleanup_(secret_freep) Secret *master = NULL, *salt = NULL, *disk_key = NULL,
                                       *msecret = NULL;
        _cleanup_(freep) char *audit = NULL;
        uint8_t cid[CLUSTER_ID_SIZE], recorded[CLUSTER_ID_SIZE], msalt[MEASUREMENT_SALT_SIZE];
        uint8_t event[32];
        char cid_hex[2 * CLUSTER_ID_SIZE + 1], why[768];
        bool zero;
        Diag d;
        int r;

        if (b->initialized)
                return bootstrapper_refusal_code(
                        ret_response, "already-recovered",
                        refuse(detail, n, -EALREADY,
                               "this node has recovered already: nothing to recover; run "
                               "'cloister verify --cluster'",
                               NULL));
        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, req->body, keys) < 0 ||
            json_get_base64_secret(&ctx, req->body, "masterSecret", MASTER_SECRET_SIZE, &master) <
                    0 ||
            json_get_base64_secret(&ctx, req->body, "salt", MASTER_SALT_SIZE, &salt) < 0)
                return refuse(detail, n, -EBADMSG, d.message, NULL);
        r = bootstrapper_pcr15_is_zero(b, &zero);
        if (r < 0)
                return refuse(detail, n, r, "cannot read PCR 15", NULL);
        if (!zero)
                return bootstrapper_refusal_code(
                        ret_response, "already-member",
                        refuse(detail, n, -EALREADY,
                               "this node is a member of a cluster already (PCR 15 is set): "
                               "nothing to recover; run 'cloister verify --cluster'",
                               NULL));

        /* The master secret must open this node's disk: nobody else's secret gets anywhere. */
        r = kdf_disk_key(master, secret_data(salt), b->disk_uuid, &disk_key);
        if (r < 0)
                return refuse(detail, n, r, "key derivation failed", NULL);
        r = luks_check_key(b->state_disk, disk_key, &d);
        if (r < 0)
                return refuse(detail, n, -EACCES,
                              "this master secret does not open this node's state disk", d.message);
        /* --state-mount: the disk was left locked at boot, and the recorded state is on it:
         * opened and mounted now (before PCR 15; a no-op once done, should a later step fail and
         * the owner try again). */
        r = bootstrapper_open_state(b, disk_key);
        if (r < 0)
                return refuse(detail, n, r, "the node cannot open and mount its state disk",
                              "see the node's log");
        disk_key = secret_free(disk_key);
        /* ... and derive the cluster ID the node recorded (on the disk it just unlocked). */
        r = recorded_cluster(b, recorded, msalt, &d);
        if (r < 0)
                return refuse(detail, n, r, "the node's recorded state is unreadable", d.message);
        r = kdf_measurement_secret(master, secret_data(salt), &msecret);
        if (r >= 0)
                r = kdf_cluster_id(msecret, msalt, cid);
        if (r < 0)
                return refuse(detail, n, r, "key derivation failed", NULL);
        if (memcmp(cid, recorded, sizeof(cid)) != 0)
                return refuse(detail, n, -EACCES,
                              "this master secret is not the recorded cluster's", NULL);
        /* A new image may carry the next Kubernetes release: this control plane upgrades the
         * cluster now, before it serves joins (or refuses a release it must not run). */
        r = bootstrapper_kubernetes_follow(b, NULL, why, sizeof(why));
        if (r < 0)
                return refuse(detail, n, r, "this node cannot run its image's Kubernetes", why);

        kdf_pcr15_event_digest(cid, event);
        (void) pthread_mutex_lock(b->tpm_lock);
        r = tpm_device_pcr_extend(b->tpm, 15, event);
        (void) pthread_mutex_unlock(b->tpm_lock);
        if (r < 0)
                return refuse(detail, n, r, "extending PCR 15 failed", NULL);
        b->initialized = true;
        hex_encode_buf(cid, sizeof(cid), cid_hex, sizeof(cid_hex));
        r = bootstrapper_write_cluster_secrets(b, master, secret_data(salt), NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot store the master secret in %s: %m", b->state_dir);
        if (asprintf(&audit, "%s/audit.log", b->state_dir) >= 0) {
                const AuditEntry e = { .event = "recovery",
                                       .node = b->node_name,
                                       .role = "control-plane",
                                       .verdict = "admitted",
                                       .reason = "the owner's master secret (cloister recover)" };
                if (audit_log_append(audit, &e, &d) < 0)
                        log_error("Cannot record the recovery in the audit log: %s", d.message);
        }
        log_info("Recovered cluster %s with the owner's master secret.", cid_hex);
        if (b->join_service && b->server) {
                b->handoff = true;
                rpc_server_stop_for_handover(b->server);
        }
        *ret_response = json_pack("{s:s}", "clusterId", cid_hex);
        return *ret_response ? 0 : -ENOMEM;
}
