/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network process: TLS, HTTP, JSON and the first verification of evidence, holding no
 * master secret, disk key or ticket secret (docs/join.md, "Privilege separation"). Every route
 * becomes one typed request to the monitor; join and rejoin tickets come back sealed to the
 * client's key and are relayed as they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/atls.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/privsep.h"
#include "cloister/rpc.h"

#include "join-service.h"

int monitor_channels_init(MonitorChannels *m, const int fds[static JOIN_CHANNELS])
{
        *m = (MonitorChannels){};
        for (size_t i = 0; i < JOIN_CHANNELS; i++)
                m->fds[i] = fds[i];
        (void) pthread_mutex_init(&m->lock, NULL);
        (void) pthread_cond_init(&m->freed, NULL);
        return 0;
}

int monitor_call(MonitorChannels *m, PrivsepBuf *request, int *ret_status, const char **ret_detail,
                 const char **ret_answer, uint8_t **ret_buf, size_t *ret_size)
{
        uint8_t *buf = NULL;
        size_t size = 0, slot = JOIN_CHANNELS;
        uint8_t op = request->data ? request->data[4] : 0;
        PrivsepMsg reply;
        int r;

        *ret_detail = *ret_answer = NULL;
        (void) pthread_mutex_lock(&m->lock);
        for (;;) {
                for (size_t i = 0; i < JOIN_CHANNELS && slot == JOIN_CHANNELS; i++)
                        if (!m->busy[i] && m->fds[i] >= 0)
                                slot = i;
                if (slot < JOIN_CHANNELS)
                        break;
                (void) pthread_cond_wait(&m->freed, &m->lock);
        }
        m->busy[slot] = true;
        (void) pthread_mutex_unlock(&m->lock);

        r = privsep_send(m->fds[slot], request);
        if (r >= 0)
                r = privsep_recv(m->fds[slot], &buf, &size);
        if (r >= 0)
                r = privsep_parse(buf, size, join_privsep_replies, join_privsep_n_specs, &reply);
        if (r >= 0 && reply.op != (op | PRIVSEP_REPLY))
                r = -EPROTO;

        (void) pthread_mutex_lock(&m->lock);
        m->busy[slot] = false;
        (void) pthread_cond_signal(&m->freed);
        (void) pthread_mutex_unlock(&m->lock);
        if (r < 0) {
                privsep_wipe_free(buf, size);
                return r;
        }
        *ret_status = reply.status > 0 || reply.status < -4095 ? -EPROTO : reply.status;
        *ret_detail = privsep_text(&reply, 0);
        *ret_answer = privsep_text(&reply, 1);
        *ret_buf = buf;
        *ret_size = size;
        return 0;
}

/* Sends the request, turns the reply into the route's answer. */
static int ask(JoinService *js, PrivsepBuf *b, json_t **ret_response, char *detail, size_t n)
{
        const char *rdetail, *answer;
        uint8_t *buf = NULL;
        size_t size = 0;
        Diag d;
        int status, r;

        r = monitor_call(js->monitor, b, &status, &rdetail, &answer, &buf, &size);
        privsep_buf_done(b);
        if (r < 0) {
                (void) snprintf(detail, n, "the join service's monitor did not answer (%s)",
                                strerror(-r));
                return -EIO;
        }
        if (status < 0) {
                (void) snprintf(detail, n, "%s", rdetail);
                privsep_wipe_free(buf, size);
                return status;
        }
        diag_clear(&d);
        r = json_parse_buffer(answer, strlen(answer), "the monitor's answer", ret_response, &d);
        privsep_wipe_free(buf, size);
        if (r < 0)
                (void) snprintf(detail, n, "%s", d.message);
        return r;
}

/* The monitor's text, and after it what this process's server shed under load (its own
 * counters: the monitor does not know them). NULL if out of memory. */
static char *metrics_add_rpc(JoinService *js, const char *text)
{
        RpcServerStats st = {};
        char *out = NULL;

        if (js->rpc)
                rpc_server_stats(js->rpc, &st);
        if (asprintf(&out,
                     "%s"
                     "# HELP cloister_join_requests_waiting Requests waiting for a handler now.\n"
                     "# TYPE cloister_join_requests_waiting gauge\n"
                     "cloister_join_requests_waiting %lu\n"
                     "# HELP cloister_join_requests_dropped_total Requests dropped before a "
                     "handler took them: their client had closed the connection.\n"
                     "# TYPE cloister_join_requests_dropped_total counter\n"
                     "cloister_join_requests_dropped_total %lu\n"
                     "# HELP cloister_join_answers_discarded_total Answers not sent: the client "
                     "closed the connection while its handler ran (the handler finished).\n"
                     "# TYPE cloister_join_answers_discarded_total counter\n"
                     "cloister_join_answers_discarded_total %lu\n"
                     "# HELP cloister_join_handshakes_delayed_total Handshakes that waited for "
                     "their address's or the server's handshake rate.\n"
                     "# TYPE cloister_join_handshakes_delayed_total counter\n"
                     "cloister_join_handshakes_delayed_total %lu\n"
                     "# HELP cloister_join_handshakes_closed_total Connections closed because "
                     "the handshake queue was full.\n"
                     "# TYPE cloister_join_handshakes_closed_total counter\n"
                     "cloister_join_handshakes_closed_total %lu\n",
                     text, st.jobs_waiting, st.jobs_dropped, st.replies_discarded,
                     st.handshakes_delayed, st.handshakes_closed) < 0)
                return NULL;
        return out;
}

int join_network_metrics(void *userdata, char **ret_text)
{
        JoinService *js = userdata;
        const char *detail, *answer;
        uint8_t *buf = NULL;
        size_t size = 0;
        PrivsepBuf b;
        char *copy;
        int status, r;

        privsep_buf_begin(&b, JOIN_PRIVSEP_METRICS, 0);
        r = monitor_call(js->monitor, &b, &status, &detail, &answer, &buf, &size);
        privsep_buf_done(&b);
        if (r < 0)
                return r;
        if (status < 0) {
                log_warning("join-service: /metrics: %s", detail);
                privsep_wipe_free(buf, size);
                return status;
        }
        copy = metrics_add_rpc(js, answer);
        privsep_wipe_free(buf, size);
        if (!copy)
                return -ENOMEM;
        *ret_text = copy;
        return 0;
}

/* This node's evidence for a handshake: the monitor quotes with the TPM, binding the quote to
 * the client's nonce and this process's TLS key for the server role (it computes the binding
 * itself from them). */
static int monitor_issue_cb(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                            const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        JoinService *js = userdata;
        const char *detail, *answer;
        uint8_t *buf = NULL;
        size_t size = 0;
        PrivsepBuf b;
        char *copy;
        int status, r;

        if (input->role != ATLS_ROLE_SERVER || input->variant != js->attest_variant)
                return diag_fail(d, -EINVAL, "atls-binding", -1,
                                 "the monitor quotes only for the join service's own handshakes");
        /* A verifier that asked for this node's WireGuard key (verify --cluster) gets the wg
         * binding; the monitor checks the key is the one it made. */
        privsep_buf_begin(&b, input->wg_key ? JOIN_PRIVSEP_ATTEST_WG : JOIN_PRIVSEP_ATTEST, 0);
        privsep_buf_add(&b, input->nonce, ATLS_NONCE_SIZE);
        privsep_buf_add(&b, input->spki, input->spki_size);
        if (input->wg_key)
                privsep_buf_add(&b, input->wg_key, ATLS_WG_KEY_SIZE);
        r = monitor_call(js->monitor, &b, &status, &detail, &answer, &buf, &size);
        privsep_buf_done(&b);
        if (r < 0)
                return diag_fail(d, r, "evidence-issue", -1,
                                 "the join service's monitor did not answer (%s)", strerror(-r));
        if (status < 0) {
                r = diag_fail(d, status, "evidence-issue", -1, "the monitor cannot quote: %s",
                              detail);
                privsep_wipe_free(buf, size);
                return r;
        }
        copy = strdup(answer);
        privsep_wipe_free(buf, size);
        if (!copy)
                return diag_fail(d, -ENOMEM, "evidence-issue", -1, "out of memory");
        *ret = (uint8_t *) copy;
        *ret_size = strlen(copy);
        return 0;
}

int join_monitor_nonce(void *userdata, uint8_t ret[static ATLS_NONCE_SIZE])
{
        JoinService *js = userdata;
        const char *detail, *answer;
        uint8_t *buf = NULL;
        size_t size = 0;
        PrivsepBuf b;
        int status, r;

        privsep_buf_begin(&b, JOIN_PRIVSEP_NONCE, 0);
        r = monitor_call(js->monitor, &b, &status, &detail, &answer, &buf, &size);
        privsep_buf_done(&b);
        if (r >= 0)
                r = status < 0 ? status : hex_decode_exact(answer, ret, ATLS_NONCE_SIZE);
        privsep_wipe_free(buf, size);
        if (r < 0)
                log_error("join-service: no nonce from the monitor for a handshake: %s",
                          strerror(-r));
        return r;
}

AtlsAttester join_monitor_attester(JoinService *js)
{
        return (AtlsAttester){ .variant = js->attest_variant,
                               .issue = monitor_issue_cb,
                               .userdata = js };
}

/* What the client's evidence is bound to, forwarded for the monitor to verify it again. */
static int add_evidence(JoinService *js, const RpcRequest *req, PrivsepBuf *b, char *detail,
                        size_t n)
{
        uint8_t nonce[ATLS_NONCE_SIZE];
        const uint8_t *evidence, *spki;
        size_t evidence_size, spki_size;

        if (atls_peer_evidence(req->ssl, &evidence, &evidence_size) < 0 ||
            atls_peer_binding_input(req->ssl, nonce, &spki, &spki_size) < 0) {
                join_network_refusal(js, req->peer, "", "the client did not attest");
                (void) snprintf(detail, n, "the client did not attest");
                return -EPERM;
        }
        privsep_buf_add(b, evidence, evidence_size);
        privsep_buf_add(b, nonce, sizeof(nonce));
        privsep_buf_add(b, spki, spki_size);
        privsep_buf_add_text(b, req->peer);
        return 0;
}

static void refuse_body(JoinService *js, const RpcRequest *req, const char *reason, char *detail,
                        size_t n)
{
        uint8_t digest[32];
        char hex[65] = "";

        if (atls_peer_evidence_digest(req->ssl, digest) >= 0)
                hex_encode_buf(digest, sizeof(digest), hex, sizeof(hex));
        join_network_refusal(js, req->peer, hex, reason);
        (void) snprintf(detail, n, "%s", reason);
}

static int net_join(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                    size_t n)
{
        static const char *const keys[] = {
                "name", "role", "diskUuid", "endpoint", "controlPlaneAuthorization", NULL
        };
        JoinService *js = userdata;
        JsonCtx ctx = { .source = "join request", .path = "" };
        const char *name = NULL, *role = NULL, *uuid = NULL, *endpoint = NULL,
                   *authorization = NULL;
        PrivsepBuf b;
        Diag d;
        int r;

        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, req->body, keys) < 0 ||
            json_get_string(&ctx, req->body, "name", true, &name) < 0 ||
            json_get_string(&ctx, req->body, "role", true, &role) < 0 ||
            json_get_string(&ctx, req->body, "diskUuid", true, &uuid) < 0 ||
            json_get_string(&ctx, req->body, "endpoint", true, &endpoint) < 0 ||
            (json_get_string(&ctx, req->body, "controlPlaneAuthorization", false, &authorization) <
                     0 &&
             diag_failed(&d))) {
                refuse_body(js, req, d.message, detail, n);
                return -EBADMSG;
        }
        privsep_buf_begin(&b, JOIN_PRIVSEP_JOIN, 0);
        r = add_evidence(js, req, &b, detail, n);
        if (r < 0) {
                privsep_buf_done(&b);
                return r;
        }
        privsep_buf_add_text(&b, name);
        privsep_buf_add_text(&b, role);
        privsep_buf_add_text(&b, uuid);
        privsep_buf_add_text(&b, endpoint);
        privsep_buf_add_text(&b, authorization ?: "");
        return ask(js, &b, ret_response, detail, n);
}

static int net_rejoin(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                      size_t n)
{
        static const char *const keys[] = { "name", "diskUuid", "endpoint", NULL };
        JoinService *js = userdata;
        JsonCtx ctx = { .source = "rejoin request", .path = "" };
        const char *name = NULL, *uuid = NULL, *endpoint = NULL;
        PrivsepBuf b;
        Diag d;
        int r;

        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, req->body, keys) < 0 ||
            json_get_string(&ctx, req->body, "name", true, &name) < 0 ||
            json_get_string(&ctx, req->body, "diskUuid", true, &uuid) < 0 ||
            json_get_string(&ctx, req->body, "endpoint", true, &endpoint) < 0) {
                refuse_body(js, req, d.message, detail, n);
                return -EBADMSG;
        }
        privsep_buf_begin(&b, JOIN_PRIVSEP_REJOIN, 0);
        r = add_evidence(js, req, &b, detail, n);
        if (r < 0) {
                privsep_buf_done(&b);
                return r;
        }
        privsep_buf_add_text(&b, name);
        privsep_buf_add_text(&b, uuid);
        privsep_buf_add_text(&b, endpoint);
        return ask(js, &b, ret_response, detail, n);
}

/* A member's WireGuard key and the mesh (docs/mesh.md): only for a client whose certificate
 * carries a key its evidence binds; the monitor decides whether it is a member. */
static int net_mesh(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                    size_t n)
{
        JoinService *js = userdata;
        uint8_t key[ATLS_WG_KEY_SIZE];
        PrivsepBuf b;
        int r;

        if (atls_peer_wg_key(req->ssl, key) < 0) {
                refuse_body(js, req,
                            "a mesh request without a WireGuard key in the client's certificate",
                            detail, n);
                return -EPERM;
        }
        privsep_buf_begin(&b, JOIN_PRIVSEP_MESH, 0);
        r = add_evidence(js, req, &b, detail, n);
        if (r < 0) {
                privsep_buf_done(&b);
                return r;
        }
        privsep_buf_add(&b, key, sizeof(key));
        return ask(js, &b, ret_response, detail, n);
}

static int net_simple(JoinService *js, JoinPrivsepOp op, const char *text, json_t **ret_response,
                      char *detail, size_t n)
{
        PrivsepBuf b;

        privsep_buf_begin(&b, op, 0);
        if (text)
                privsep_buf_add_text(&b, text);
        return ask(js, &b, ret_response, detail, n);
}

static int net_members(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                       size_t n)
{
        return net_simple(userdata, JOIN_PRIVSEP_MEMBERS, NULL, ret_response, detail, n);
}

static int net_node(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                    size_t n)
{
        return net_simple(userdata, JOIN_PRIVSEP_NODE, NULL, ret_response, detail, n);
}

static int net_audit(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                     size_t n)
{
        if (req->query && strlen(req->query) > 63) {
                (void) snprintf(detail, n, "the audit log takes one query, offset=N (bytes)");
                return -EBADMSG;
        }
        join_refusals_flush();
        return net_simple(userdata, JOIN_PRIVSEP_AUDIT, req->query ?: "", ret_response, detail, n);
}

/* The owner repeating its init sends the master secret to this process: it goes to the monitor
 * for comparison and is wiped here (docs/join.md says what that means). */
static int net_init_again(void *userdata, const RpcRequest *req, json_t **ret_response,
                          char *detail, size_t n)
{
        static const char *const keys[] = { "masterSecret",      "salt",        "measurementSalt",
                                            "kubernetesVersion", "clusterName", "initSecret",
                                            "serviceCidr",       "policy",      NULL };
        JsonCtx ctx = { .source = "init request", .path = "" };
        _cleanup_(secret_freep) Secret *master = NULL, *salt = NULL, *msalt = NULL;
        PrivsepBuf b;
        Diag d;

        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, req->body, keys) < 0 ||
            json_get_base64_secret(&ctx, req->body, "masterSecret", MASTER_SECRET_SIZE, &master) <
                    0 ||
            json_get_base64_secret(&ctx, req->body, "salt", MASTER_SALT_SIZE, &salt) < 0 ||
            json_get_base64_secret(&ctx, req->body, "measurementSalt", MEASUREMENT_SALT_SIZE,
                                   &msalt) < 0) {
                (void) snprintf(detail, n, "%s", d.message);
                return -EBADMSG;
        }
        privsep_buf_begin(&b, JOIN_PRIVSEP_INIT_AGAIN, 0);
        privsep_buf_add(&b, secret_data(master), MASTER_SECRET_SIZE);
        privsep_buf_add(&b, secret_data(salt), MASTER_SALT_SIZE);
        privsep_buf_add(&b, secret_data(msalt), MEASUREMENT_SALT_SIZE);
        return ask(userdata, &b, ret_response, detail, n);
}

const RpcRoute join_network_routes[] = {
        { "GET", "/v1/node", net_node },
        { "POST", "/v1/join", net_join, .attested_client = true },
        { "POST", "/v1/rejoin", net_rejoin, .attested_client = true },
        { "GET", "/v1/members", net_members },
        { "GET", "/v1/mesh", net_mesh, .attested_client = true },
        { "POST", "/v1/init", net_init_again },
        { "GET", "/v1/audit", net_audit },
        /* any client: the monitor checks the owner's authenticator (docs/policy-update.md) */
        { "POST", "/v1/policy", join_net_policy_push },
        /* any client: the monitor checks the owner's authenticator (docs/membership.md) */
        { "POST", "/v1/node-remove", join_net_node_remove },
        {},
};

int join_network_ask(JoinService *js, PrivsepBuf *b, json_t **ret_response, char *detail,
                     size_t detail_size)
{
        return ask(js, b, ret_response, detail, detail_size);
}
