/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The owner removes a member (docs/membership.md, "Removing a member"). The network process
 * takes POST /v1/node-remove from anyone (the owner's CLI does not attest; it attested this join
 * service) and forwards its fields as one typed request (JOIN_PRIVSEP_NODE_REMOVE); the monitor,
 * which holds the master secret, decides: the authenticator must be the owner's (the policy
 * update's key, lib/kdf/policy-update.c) over this cluster and the member's admission as
 * recorded. Then the member goes from the cluster's membership in etcd, its index keys and the
 * audit entry with it, in one transaction, together with the record that this removal was
 * carried out (a replay changes nothing). Without etcd it is refused: each join service's
 * members.json is its own, and a removal from one would leave the member in the others.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/policy-update.h"
#include "cloister/privsep.h"

#include "join-service.h"

/* Audits a refusal (counted when repeated: anyone can send one) and returns r with detail. */
static int refuse(JoinService *js, const char *peer, int r, const char *why, char *detail, size_t n)
{
        char reason[JOIN_PRIVSEP_DETAIL_MAX + 32];

        (void) snprintf(reason, sizeof(reason), "node removal refused: %s", why);
        join_monitor_refusal(js, peer, "", reason);
        (void) snprintf(detail, n, "%s", why);
        return r;
}

/* A ticket kept for a repeated join of this name is no longer anyone's. */
static void forget_issued(JoinService *js, const char *name)
{
        (void) pthread_mutex_lock(&js->members_lock);
        for (size_t i = 0; i < JOIN_TICKETS_MAX; i++)
                if (js->issued[i].ticket && strcmp(js->issued[i].name, name) == 0)
                        js->issued[i].ticket = secret_free(js->issued[i].ticket);
        (void) pthread_mutex_unlock(&js->members_lock);
}

int join_handle_node_remove(JoinService *js, const char *peer, const char *name,
                            const JoinRemoval *x, json_t **ret_response, char *detail, size_t n)
{
        _cleanup_(json_decrefp) json_t *members = NULL, *after = NULL;
        const NodeRemoval rm = { .name = name,
                                 .disk_uuid = x->disk_uuid,
                                 .ak_digest = x->ak_digest,
                                 .admitted = x->admitted };
        char why[JOIN_PRIVSEP_DETAIL_MAX], reason[AUDIT_REASON_MAX], policy_digest[65];
        const char *role = "";
        const json_t *m;
        AuditEntry e;
        json_t *answer;
        Diag d;
        int r;

        /* Who: the owner's key over this cluster and this member's admission. Nothing else of
         * the request is looked at before this holds. */
        diag_clear(&d);
        r = node_removal_check(js->master->key, js->master->salt, js->cluster_id, &rm,
                               x->authenticator, &d);
        if (r < 0)
                return refuse(js, peer, r == -EBADMSG ? -EBADMSG : -EPERM, d.message, detail, n);
        if (!js->etcd)
                return refuse(js, peer, -EPERM,
                              "this join service keeps its membership in local files (started "
                              "without --etcd-endpoints): each join service's members.json is "
                              "its own, and a removal here would leave the member admitted by "
                              "the others. Removing a member needs the cluster's membership in "
                              "etcd (docs/membership.md)",
                              detail, n);
        if (strcmp(name, js->node_name) == 0)
                return refuse(js, peer, -EPERM,
                              "the member to remove is this join service's own node, which "
                              "registers itself again whenever it starts: stop that control "
                              "plane for good first, then send the removal to another control "
                              "plane's join service (--node)",
                              detail, n);
        /* Its role, for the audit entry: the transaction checks the record again. */
        diag_clear(&d);
        r = join_etcd_members_load(js, &members, &d);
        if (r < 0) {
                (void) snprintf(why, sizeof(why),
                                "the cluster's membership in etcd cannot be read (%.300s): "
                                "nothing is changed; run the removal again once etcd answers",
                                d.message);
                return refuse(js, peer, -EHOSTUNREACH, why, detail, n);
        }
        m = members_find(members, name);
        if (m)
                role = json_string_value(json_object_get(m, "role")) ?: "";
        (void) snprintf(reason, sizeof(reason),
                        "removed by the cluster's owner (a request from %.64s with the owner's "
                        "authenticator) with disk %s, attestation key %s, admitted %s: its name, "
                        "disk and attestation key can be admitted again",
                        peer, x->disk_uuid, x->ak_digest[0] ? x->ak_digest : "(none)", x->admitted);
        join_audit_entry(js, &e, policy_digest, "removal", name, role, "", "refused", reason);
        diag_clear(&d);
        r = join_etcd_remove(js, &e, name, x, &d);
        if (r < 0) {
                if (r == -ENOENT || r == -EALREADY || r == -ESTALE || r == -EBUSY)
                        (void) snprintf(why, sizeof(why), "%s", d.message);
                else
                        (void) snprintf(why, sizeof(why),
                                        "the removal cannot be written to the cluster's "
                                        "membership in etcd (%.200s): if etcd lost its quorum "
                                        "it was applied whole or not at all; 'cloister status' "
                                        "shows which, run the removal again if the member is "
                                        "still listed",
                                        d.message);
                /* A member admitted again since is a conflict; the rest keep their meaning. */
                return refuse(js, peer,
                              r == -ESTALE     ? -EEXIST
                              : r == -ENOENT   ? -ENOENT
                              : r == -EALREADY ? -EALREADY
                              : r == -EBUSY    ? -EBUSY
                                               : -EHOSTUNREACH,
                              why, detail, n);
        }
        join_audit_local(js, "removal", name, role, "", "refused", reason);
        forget_issued(js, name);
        /* The cache (members.json) follows etcd now. */
        if (members_load(js, &after) < 0)
                log_warning("join-service: %s removed from etcd; the local membership cache is "
                            "refreshed on the next read",
                            name);
        log_info("join-service: %s removed from the cluster's membership by its owner", name);
        answer = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "removed", name, "role", role, "diskUuid",
                           x->disk_uuid, "akDigest", x->ak_digest, "admitted", x->admitted,
                           "joinService", js->node_name);
        if (!answer)
                return -ENOMEM;
        *ret_response = answer;
        return 0;
}

/* The network process: POST /v1/node-remove {"name", "diskUuid", "akDigest", "admitted",
 * "authenticator"}, from any client; the monitor decides everything. */
int join_net_node_remove(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                         size_t n)
{
        static const char *const keys[] = { "name",     "diskUuid",      "akDigest",
                                            "admitted", "authenticator", NULL };
        /* Each field's bound in the typed protocol (privsep-join.c), its NUL excluded. */
        static const size_t max[] = { 63, 40, 64, 32, 64 };
        JoinService *js = userdata;
        JsonCtx ctx = { .source = "node removal", .path = "" };
        const char *v[5] = {};
        PrivsepBuf b;
        Diag d;

        diag_clear(&d);
        ctx.diag = &d;
        int r = json_check_keys(&ctx, req->body, keys);
        for (size_t i = 0; r >= 0 && i < 5; i++) {
                r = json_get_string(&ctx, req->body, keys[i], true, &v[i]);
                /* The JSON parser refuses \u0000; "" only for a member without a key. */
                if (r >= 0 && (strlen(v[i]) > max[i] || (i != 2 && !v[i][0])))
                        r = diag_fail(&d, -EBADMSG, "node-removal", -1,
                                      "node removal: .%s must be 1 to %zu bytes", keys[i], max[i]);
        }
        if (r < 0) {
                join_network_refusal(js, req->peer, "", d.message);
                (void) snprintf(detail, n, "%s", d.message);
                return -EBADMSG;
        }
        privsep_buf_begin(&b, JOIN_PRIVSEP_NODE_REMOVE, 0);
        privsep_buf_add_text(&b, req->peer);
        for (size_t i = 0; i < 5; i++)
                privsep_buf_add_text(&b, v[i]);
        return join_network_ask(js, &b, ret_response, detail, n);
}
