/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mesh (docs/mesh.md), in the monitor: a member presents the WireGuard key its evidence
 * binds (aTLS, cloister-atls-wg-v1), is found by the attestation key it joined with, has the key
 * recorded with its membership, and gets the mesh document: every member's key, WireGuard
 * endpoint and mesh address. Nobody else gets it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/evidence.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/mesh.h"
#include "cloister/rpc.h"

#include "join-service-reattest.h"
#include "join-service.h"

/* The member's WireGuard endpoint: the host of the endpoint it registered (where it is
 * attested) with the mesh's port. "" when that host is not a literal address. */
static void wireguard_endpoint(const char *endpoint, char ret[static MESH_ENDPOINT_MAX + 1])
{
        const char *colon = strrchr(endpoint, ':');
        size_t hn = colon ? (size_t) (colon - endpoint) : 0;

        ret[0] = '\0';
        if (hn == 0 || hn > MESH_ADDRESS_MAX + 2)
                return;
        (void) snprintf(ret, MESH_ENDPOINT_MAX + 1, "%.*s:%d", (int) hn, endpoint, MESH_PORT);
}

static int refuse_mesh(JoinService *js, const JoinCall *req, const char *node, const char *evidence,
                       char *detail, size_t n, int r, const char *why)
{
        (void) snprintf(detail, n, "%s", why);
        join_monitor_refusal(js, node ?: req->peer, evidence, detail);
        return r;
}

static int mesh_document(const json_t *members, const char *self, const char *address, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        json_t *peers = json_array();
        const json_t *m, *o;
        size_t i, k;

        doc = json_pack("{s:i,s:s,s:s,s:o}", "version", 1, "self", self, "address", address,
                        "peers", peers);
        if (!doc)
                return -ENOMEM;
        json_array_foreach (json_object_get(members, "members"), i, m) {
                const char *name = json_string_value(json_object_get(m, "name")),
                           *key = json_string_value(json_object_get(m, "wgPublicKey")),
                           *addr = json_string_value(json_object_get(m, "meshAddress")),
                           *endpoint = json_string_value(json_object_get(m, "endpoint")),
                           *pod = json_string_value(json_object_get(m, "podCidr"));
                char wg[MESH_ENDPOINT_MAX + 1];
                json_t *p;

                uint8_t raw[MESH_KEY_SIZE];
                char canon[MESH_KEY_BASE64 + 1];
                bool twice = false;

                /* Only members that registered a key their evidence bound, and only entries every
                 * node's parser accepts: the endpoint is the one the join request's body named
                 * (not bound by its evidence), and a node refuses a whole document with one bad
                 * or repeated entry, so one record would take the mesh down for every node. */
                if (!name || !key || !addr || !endpoint || !mesh_name_ok(name) ||
                    mesh_key_from_base64(key, raw) < 0 || !mesh_address_ok(addr))
                        continue;
                /* Compared and listed in the one text form of the 32 bytes. */
                mesh_key_to_base64(raw, canon);
                wireguard_endpoint(endpoint, wg);
                if (!wg[0] || !mesh_endpoint_ok(wg)) {
                        log_warning("mesh: member %s is left out of the mesh: its endpoint '%s' is "
                                    "not a literal address outside the mesh range",
                                    name, endpoint);
                        continue;
                }
                /* A key or address two members hold: neither is listed (which of them owns
                 * it cannot be told here, and WireGuard would route it to one of them). */
                json_array_foreach (json_object_get(members, "members"), k, o) {
                        const char *okey = json_string_value(json_object_get(o, "wgPublicKey")),
                                   *oaddr = json_string_value(json_object_get(o, "meshAddress"));
                        uint8_t oraw[MESH_KEY_SIZE];

                        if (k == i)
                                continue;
                        twice = twice || (oaddr && strcmp(oaddr, addr) == 0) ||
                                (okey && mesh_key_from_base64(okey, oraw) >= 0 &&
                                 memcmp(oraw, raw, MESH_KEY_SIZE) == 0);
                }
                if (twice) {
                        log_warning("mesh: member %s is left out of the mesh: another member "
                                    "holds its key or mesh address",
                                    name);
                        continue;
                }
                p = json_pack("{s:s,s:s,s:s,s:s}", "name", name, "publicKey", canon, "endpoint", wg,
                              "address", addr);
                if (!p ||
                    (pod && pod[0] && json_object_set_new(p, "podCidr", json_string(pod)) < 0) ||
                    json_array_append_new(peers, p) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(doc);
        return 0;
}

int join_handle_mesh(JoinService *js, const JoinCall *req, json_t **ret_response, char *detail,
                     size_t n)
{
        static const uint8_t zero[EVIDENCE_PCR_SIZE];
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(json_decrefp) json_t *members = NULL, *doc = NULL;
        char evidence[65] = "", ak[65] = "", key[MESH_KEY_BASE64 + 1],
             address[MESH_ADDRESS_MAX + 1] = "", name[MESH_NAME_MAX + 1] = "",
             why[JOIN_PRIVSEP_DETAIL_MAX + 64];
        const json_t *member;
        const char *role;
        Diag d;
        int r;

        /* The mesh's keys and addresses are kept in members.json only; with the membership in
         * etcd (docs/membership.md) that file is rebuilt from etcd, which has no such fields yet,
         * so every request would get the first address again and no peer. Refused, saying so,
         * rather than a mesh that looks up and is empty. */
        if (js->etcd)
                return refuse_mesh(js, req, NULL, "", detail, n, -EPERM,
                                   "this join service keeps its membership in etcd "
                                   "(--etcd-endpoints), where the mesh's keys and addresses are "
                                   "not kept yet (docs/mesh.md): run the mesh with a join service "
                                   "of local membership, or the node without --mesh");
        if (!req->evidence || !req->wg_key)
                return refuse_mesh(js, req, NULL, "", detail, n, -EPERM,
                                   "the client did not attest with a WireGuard key");
        /* Verified again here, bound to the nonce, the client's TLS key and its WireGuard key:
         * the network process cannot put another key in the request. */
        diag_clear(&d);
        r = join_call_verify(js, req, evidence, &d);
        if (r < 0) {
                (void) snprintf(why, sizeof(why), "the evidence does not verify in the monitor: %s",
                                d.message);
                return refuse_mesh(js, req, NULL, evidence, detail, n, -EPERM, why);
        }
        r = evidence_parse(req->evidence, req->evidence_size, &e, &d);
        if (r >= 0)
                r = evidence_ak_digest(e, ak);
        if (r < 0 || !ak[0])
                return refuse_mesh(js, req, NULL, evidence, detail, n, -EPERM,
                                   "the evidence names no attestation key: nothing ties it to a "
                                   "member");
        /* A member has joined since it booted: PCR 15 holds this cluster's ID (the policy
         * accepted zero or exactly that). */
        if (!(e->tpm.pcr_mask & (1U << 15)) ||
            memcmp(e->tpm.pcrs[15], zero, EVIDENCE_PCR_SIZE) == 0)
                return refuse_mesh(js, req, NULL, evidence, detail, n, -EPERM,
                                   "PCR 15 is zero: the node has not joined this cluster since it "
                                   "booted, so it gets no mesh");

        mesh_key_to_base64(req->wg_key, key);
        (void) pthread_mutex_lock(&js->members_lock);
        r = members_load(js, &members);
        member = r >= 0 ? members_find_ak(members, ak) : NULL;
        if (member)
                (void) snprintf(name, sizeof(name), "%s",
                                json_string_value(json_object_get(member, "name")) ?: "");
        role = member ? json_string_value(json_object_get(member, "role")) ?: "" : "";
        if (!member || !name[0]) {
                (void) pthread_mutex_unlock(&js->members_lock);
                return refuse_mesh(js, req, NULL, evidence, detail, n, -EPERM,
                                   "the client is not a member (its attestation key is not one "
                                   "this join service admitted, or it was evicted)");
        }
        if (strcmp(name, js->node_name) == 0) {
                (void) pthread_mutex_unlock(&js->members_lock);
                return refuse_mesh(js, req, name, evidence, detail, n, -EPERM,
                                   "a mesh request as this join service's own node is refused: "
                                   "it never asks itself");
        }
        if (reattest_refuses_rejoin(js, name, why, sizeof(why))) {
                (void) pthread_mutex_unlock(&js->members_lock);
                return refuse_mesh(js, req, name, evidence, detail, n, -EPERM, why);
        }
        r = members_set_mesh(js, name, key, address);
        if (r > 0) {
                join_audit(js, "mesh-key", name, role, evidence, "admitted", key);
                /* This node's own device gets the new peer now, not at its next interval. */
                join_mesh_kick(js);
        }
        json_decref(members);
        members = NULL;
        if (r >= 0)
                r = members_load(js, &members);
        (void) pthread_mutex_unlock(&js->members_lock);
        if (r < 0) {
                (void) snprintf(detail, n, "the join service cannot record the mesh key: %s",
                                strerror(-r));
                return r;
        }
        r = mesh_document(members, name, address, &doc);
        if (r < 0)
                return r;
        /* Sealed to the member's aTLS key: the network process relays peers it cannot alter. */
        return rpc_answer_seal(req->spki, req->spki_size, "mesh", doc, ret_response);
}

/*
 * This node's own place in the mesh (a control plane, docs/mesh.md, "Control planes"). The key
 * pair is made here, in the monitor, after the network process was forked: the private half is
 * never in that process's memory. Its registration is no request: the monitor that keeps the
 * membership (and verifies every other member's evidence) writes its own node's entry, as it
 * writes its own member record (record_self()), so there is no claim in transit to bind.
 */
typedef struct JoinMesh JoinMesh;
struct JoinMesh {
        JoinService *js;
        MeshBackend backend;
        unsigned interval_sec;
        MeshKey key;
        char key_text[MESH_KEY_BASE64 + 1];
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stop, kicked, started, applied;
        size_t last_peers;
        char last_warning[sizeof(((Diag *) NULL)->message) + 128];
        time_t warned;
};

static void mesh_warn(JoinMesh *m, const char *what)
{
        if (strcmp(what, m->last_warning) == 0 && time(NULL) - m->warned < 60)
                return;
        log_warning("mesh: %s", what);
        (void) snprintf(m->last_warning, sizeof(m->last_warning), "%s", what);
        m->warned = time(NULL);
}

/* Registers this node's key (again, if members.json lost it or it changed) and applies the
 * document a member would get, through the same parser a member uses. */
static int join_mesh_round(JoinMesh *m)
{
        JoinService *js = m->js;
        _cleanup_(json_decrefp) json_t *members = NULL, *doc = NULL;
        _cleanup_(freep) char *text = NULL;
        char address[MESH_ADDRESS_MAX + 1] = "", why[sizeof(m->last_warning)];
        MeshDoc md = {};
        Diag d;
        int r;

        (void) pthread_mutex_lock(&js->members_lock);
        r = members_set_mesh(js, js->node_name, m->key_text, address);
        if (r > 0)
                join_audit(js, "mesh-key", js->node_name, "control-plane", "", "admitted",
                           m->key_text);
        if (r >= 0)
                r = members_load(js, &members);
        (void) pthread_mutex_unlock(&js->members_lock);
        if (r < 0) {
                (void) snprintf(why, sizeof(why),
                                "cannot register this node's key in the membership (%s): the "
                                "mesh range stays closed",
                                strerror(-r));
                mesh_warn(m, why);
                return r;
        }
        r = mesh_document(members, js->node_name, address, &doc);
        if (r >= 0)
                r = json_dump_compact(doc, &text);
        if (r < 0)
                return log_oom();
        diag_clear(&d);
        r = mesh_doc_parse(text, strlen(text), &md, &d);
        if (r >= 0)
                r = mesh_apply(m->backend, &m->key, &md, js->state_dir, &d);
        if (r < 0) {
                (void) snprintf(why, sizeof(why),
                                "cannot apply the mesh (the mesh range stays closed): %s",
                                d.message);
                mesh_warn(m, why);
        } else if (!m->applied || m->last_peers != md.n_peers) {
                log_info("mesh: %s is %s with %zu members listed", MESH_DEVICE, md.address,
                         md.n_peers);
                printf("cloister-join-service: mesh applied: %s, %zu members\n", md.address,
                       md.n_peers);
                fflush(stdout);
                m->applied = true;
                m->last_peers = md.n_peers;
        }
        mesh_doc_done(&md);
        return r;
}

static void *join_mesh_thread(void *arg)
{
        JoinMesh *m = arg;

        for (;;) {
                struct timespec until;

                (void) join_mesh_round(m);
                (void) clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += (time_t) m->interval_sec;
                (void) pthread_mutex_lock(&m->lock);
                while (!m->stop && !m->kicked &&
                       pthread_cond_timedwait(&m->wake, &m->lock, &until) == 0)
                        ;
                m->kicked = false;
                if (m->stop) {
                        (void) pthread_mutex_unlock(&m->lock);
                        return NULL;
                }
                (void) pthread_mutex_unlock(&m->lock);
        }
}

int join_mesh_start(JoinService *js, MeshBackend backend, unsigned interval_sec)
{
        JoinMesh *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_oom();
        m->js = js;
        m->backend = backend;
        m->interval_sec = interval_sec;
        (void) pthread_mutex_init(&m->lock, NULL);
        (void) pthread_cond_init(&m->wake, NULL);
        js->mesh = m; /* join_mesh_stop() frees it from here on */
        r = mesh_key_generate(&m->key);
        if (r < 0) {
                log_error_errno(r, "mesh: cannot make this node's WireGuard key: %m");
                join_mesh_stop(js);
                return r;
        }
        mesh_key_to_base64(m->key.public_key, m->key_text);
        if (pthread_create(&m->thread, NULL, join_mesh_thread, m) != 0) {
                join_mesh_stop(js);
                return log_error_errno(-EAGAIN, "mesh: cannot start its thread");
        }
        m->started = true;
        memcpy(js->mesh_public_key, m->key.public_key, MESH_KEY_SIZE);
        js->mesh_key_set = true;
        return 0;
}

void join_mesh_kick(JoinService *js)
{
        JoinMesh *m = js->mesh;

        if (!m || !m->started)
                return;
        (void) pthread_mutex_lock(&m->lock);
        m->kicked = true;
        (void) pthread_cond_signal(&m->wake);
        (void) pthread_mutex_unlock(&m->lock);
}

void join_mesh_stop(JoinService *js)
{
        JoinMesh *m = js->mesh;

        if (!m)
                return;
        if (m->started) {
                (void) pthread_mutex_lock(&m->lock);
                m->stop = true;
                (void) pthread_cond_signal(&m->wake);
                (void) pthread_mutex_unlock(&m->lock);
                (void) pthread_join(m->thread, NULL);
        }
        mesh_key_done(&m->key);
        (void) pthread_mutex_destroy(&m->lock);
        (void) pthread_cond_destroy(&m->wake);
        js->mesh = NULL;
        free(m);
}
