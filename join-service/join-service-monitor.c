/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The monitor: holds the master secret, the membership, the audit log, the certificate key and
 * kubeadm; parses no TLS, HTTP or request JSON. It answers the typed requests of the network
 * process (privsep.h, join_privsep_requests), deciding everything it releases from facts it
 * checks itself (docs/join.md, "Privilege separation").
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/atls.h"
#include "cloister/evidence.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/privsep.h"

#include "join-service.h"

typedef struct MonitorThread {
        JoinService *js;
        int fd;
} MonitorThread;

static int answer_policy(JoinService *js, const char *known, PrivsepBuf *out)
{
        Diag d;
        int r;

        (void) pthread_mutex_lock(&js->policy.lock);
        diag_clear(&d);
        r = policy_holder_refresh(&js->policy, &d);
        if (r < 0)
                log_error("join-service: the changed policy is refused, the previous one stays in "
                          "force: %s",
                          d.message);
        privsep_buf_begin(out, JOIN_PRIVSEP_POLICY | PRIVSEP_REPLY, 0);
        privsep_buf_add_text(out, js->policy.digest);
        privsep_buf_add_text(out, strcmp(known, js->policy.digest) == 0 ? ""
                                                                         : js->policy.text ?: "");
        (void) pthread_mutex_unlock(&js->policy.lock);
        return 0;
}

/* This node's evidence for one of the network process's handshakes. The binding is computed
 * here, for the server role: whatever the network process asks, it gets a quote that verifies
 * only as this join service's side of an aTLS handshake with that nonce and key, never as a
 * client's (a joining node's) evidence; and it never touches the TPM itself (no extend, no other
 * command). */
static int answer_attest(JoinService *js, const PrivsepMsg *m, PrivsepBuf *out)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) char *doc = NULL;
        uint8_t binding[ATLS_BINDING_SIZE];
        size_t size = 0;
        Diag d;
        int r;

        diag_clear(&d);
        r = atls_binding(js->attester->variant, ATLS_ROLE_SERVER, m->fields[0].data,
                         m->fields[1].data, m->fields[1].size, binding);
        if (r < 0)
                (void) diag_fail(&d, r, "atls-binding", -1, "cannot compute the binding");
        if (r >= 0)
                r = node_attester_issue(js->attester, binding, &e, &d);
        if (r >= 0) {
                r = evidence_serialize(e, &doc, &size);
                if (r < 0)
                        (void) diag_fail(&d, r, "evidence-size", -1,
                                         "cannot serialise the evidence");
        }
        if (r < 0)
                log_error("join-service: monitor: cannot quote for a handshake: %s", d.message);
        privsep_buf_begin(out, m->op | PRIVSEP_REPLY, r < 0 ? r : 0);
        privsep_buf_add_text(out, r < 0 ? d.message : "");
        privsep_buf_add_text(out, r < 0 ? "" : doc);
        return 0;
}

/* One request: its answer in out. */
static int dispatch(JoinService *js, const PrivsepMsg *m, PrivsepBuf *out)
{
        _cleanup_(json_decrefp) json_t *answer = NULL;
        _cleanup_(freep) char *text = NULL;
        char detail[JOIN_PRIVSEP_DETAIL_MAX - 1] = "";
        JoinCall c = {};
        int r;

        switch (m->op) {
        case JOIN_PRIVSEP_REFUSAL:
                join_monitor_refusal(js, privsep_text(m, 0), privsep_text(m, 1),
                                     privsep_text(m, 2));
                privsep_buf_begin(out, m->op | PRIVSEP_REPLY, 0);
                privsep_buf_add_text(out, "");
                privsep_buf_add_text(out, "");
                return 0;
        case JOIN_PRIVSEP_POLICY:
                return answer_policy(js, privsep_text(m, 0), out);
        case JOIN_PRIVSEP_ATTEST:
                return answer_attest(js, m, out);
        case JOIN_PRIVSEP_TDX_COLLATERAL:
                join_tdx_answer(m, out);
                return 0;
        case JOIN_PRIVSEP_NONCE: {
                uint8_t nonce[PRIVSEP_NONCE_SIZE];
                char hex[2 * PRIVSEP_NONCE_SIZE + 1];

                r = privsep_nonce_issue(&js->nonces, nonce);
                if (r >= 0)
                        hex_encode_buf(nonce, sizeof(nonce), hex, sizeof(hex));
                privsep_buf_begin(out, m->op | PRIVSEP_REPLY, r < 0 ? r : 0);
                privsep_buf_add_text(out, r < 0 ? "cannot make a nonce" : "");
                privsep_buf_add_text(out, r < 0 ? "" : hex);
                return 0;
        }
        case JOIN_PRIVSEP_JOIN:
        case JOIN_PRIVSEP_REJOIN: {
                bool join = m->op == JOIN_PRIVSEP_JOIN;
                size_t k = 4;

                c.evidence = m->fields[0].data;
                c.evidence_size = m->fields[0].size;
                c.nonce = m->fields[1].data;
                c.spki = m->fields[2].data;
                c.spki_size = m->fields[2].size;
                c.peer = privsep_text(m, 3);
                c.name = privsep_text(m, k++);
                c.role = join ? privsep_text(m, k++) : "";
                c.disk_uuid = privsep_text(m, k++);
                c.endpoint = privsep_text(m, k++);
                c.authorization = join ? privsep_text(m, k) : "";
                r = (join ? join_handle_join : join_handle_rejoin)(js, &c, &answer, detail,
                                                                   sizeof(detail));
                break;
        }
        case JOIN_PRIVSEP_MEMBERS:
                r = join_handle_members(js, &c, &answer, detail, sizeof(detail));
                break;
        case JOIN_PRIVSEP_AUDIT:
                c.query = privsep_text(m, 0)[0] ? privsep_text(m, 0) : NULL;
                r = join_handle_audit(js, &c, &answer, detail, sizeof(detail));
                break;
        case JOIN_PRIVSEP_NODE:
                r = join_handle_node(js, &c, &answer, detail, sizeof(detail));
                break;
        case JOIN_PRIVSEP_INIT_AGAIN:
                c.master = m->fields[0].data;
                c.salt = m->fields[1].data;
                c.measurement_salt = m->fields[2].data;
                r = join_handle_init_again(js, &c, &answer, detail, sizeof(detail));
                break;
        default:
                return -EBADMSG;
        }
        if (r >= 0 && (!answer || json_dump_compact(answer, &text) < 0))
                r = -ENOMEM;
        if (r >= 0 && strlen(text) + 1 > JOIN_PRIVSEP_ANSWER_MAX)
                r = -EMSGSIZE;
        privsep_buf_begin(out, m->op | PRIVSEP_REPLY, r < 0 ? r : 0);
        privsep_buf_add_text(out, r < 0 ? detail : "");
        privsep_buf_add_text(out, r < 0 ? "" : text);
        if (text)
                explicit_wipe(text, strlen(text));
        return 0;
}

static void *monitor_thread(void *arg)
{
        MonitorThread *t = arg;

        for (;;) {
                uint8_t *buf = NULL;
                size_t size = 0;
                PrivsepMsg m;
                PrivsepBuf out = {};
                int r;

                r = privsep_recv(t->fd, &buf, &size);
                if (r == -ECONNRESET)
                        break; /* the network process is gone */
                if (r >= 0)
                        r = privsep_parse(buf, size, join_privsep_requests, join_privsep_n_specs,
                                          &m);
                if (r >= 0 && (m.op & PRIVSEP_REPLY))
                        r = -EBADMSG;
                if (r >= 0)
                        r = dispatch(t->js, &m, &out);
                if (r >= 0)
                        r = privsep_send(t->fd, &out);
                privsep_buf_done(&out);
                privsep_wipe_free(buf, size);
                if (r < 0) {
                        /* A request outside the protocol: the network process is not behaving;
                         * this channel is closed, and it learns nothing more from it. */
                        log_error("join-service: monitor: a request on channel %d is refused (%s); "
                                  "closing it",
                                  t->fd, strerror(-r));
                        break;
                }
        }
        (void) close(t->fd);
        return NULL;
}

int join_monitor_serve(JoinService *js, const int fds[static JOIN_CHANNELS])
{
        static MonitorThread threads[JOIN_CHANNELS];
        pthread_t tids[JOIN_CHANNELS];
        size_t n = 0;

        for (size_t i = 0; i < JOIN_CHANNELS; i++) {
                threads[i] = (MonitorThread){ .js = js, .fd = fds[i] };
                if (pthread_create(&tids[n], NULL, monitor_thread, &threads[i]) != 0) {
                        (void) close(fds[i]);
                        continue;
                }
                n++;
        }
        if (n == 0)
                return -EAGAIN;
        for (size_t i = 0; i < n; i++)
                (void) pthread_join(tids[i], NULL);
        return 0;
}
