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
#include <time.h>
#include <unistd.h>

#include "cloister/atls.h"
#include "cloister/evidence.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/privsep.h"
#include "cloister/token-bucket.h"

#include "join-service-reattest.h"
#include "join-service.h"

/* Quotes for the network process's handshakes (JOIN_PRIVSEP_ATTEST): at most a burst of this
 * many, then this many a second (the network process's own limit for all addresses together,
 * rpc.h: a genuine one never meets this one), one at a time in the order asked. */
#define JOIN_ATTEST_BURST RPC_HANDSHAKE_BURST_TOTAL_DEFAULT
#define JOIN_ATTEST_RATE  RPC_HANDSHAKE_RATE_TOTAL_DEFAULT

static struct {
        pthread_mutex_t lock;
        pthread_cond_t turn;
        unsigned long next, serving; /* tickets: quotes are made in the order asked */
        TokenBucket bucket;
        bool started;
        unsigned long refused;
        time_t warned;
        /* The boot event log, read at the first quote (it does not change after boot), not
         * once per quote: a flood of handshakes costs no file reads. */
        bool log_read;
        uint8_t *log;
        size_t log_size;
} attest_gate = { .lock = PTHREAD_MUTEX_INITIALIZER, .turn = PTHREAD_COND_INITIALIZER };

static uint64_t monotonic_ms(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

#ifdef CLOISTER_FAULT_INJECTION
/* Tests only: CLOISTER_FAULT=slow-quote:MS makes each quote for a handshake take MS
 * milliseconds longer, in its turn (what a TPM slower than swtpm does: ~60 ms and more a quote),
 * so that a flood of handshakes costs what it costs on a real node
 * (tests/integration/test_join_fairness.py). */
static void fault_slow_quote(void)
{
        const char *f = getenv("CLOISTER_FAULT");
        unsigned long ms;
        struct timespec ts;

        if (!f || strncmp(f, "slow-quote:", 11) != 0)
                return;
        ms = strtoul(f + 11, NULL, 10);
        ts = (struct timespec){ (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
        (void) nanosleep(&ts, NULL);
}
#else
static void fault_slow_quote(void)
{
}
#endif

/* Takes a quote's turn: 0 once it is this request's, -EBUSY past the rate (at once). */
static int attest_gate_enter(unsigned long *ret_ticket)
{
        uint64_t now = monotonic_ms();

        (void) pthread_mutex_lock(&attest_gate.lock);
        if (!attest_gate.started) {
                token_bucket_init(&attest_gate.bucket, JOIN_ATTEST_RATE, JOIN_ATTEST_BURST, now);
                attest_gate.started = true;
        }
        if (!token_bucket_ready(&attest_gate.bucket, now)) {
                attest_gate.refused++;
                if (time(NULL) - attest_gate.warned >= 10) {
                        log_warning("join-service: monitor: refusing quotes for handshakes past "
                                    "%d a second (%lu refused so far)",
                                    JOIN_ATTEST_RATE, attest_gate.refused);
                        attest_gate.warned = time(NULL);
                }
                (void) pthread_mutex_unlock(&attest_gate.lock);
                return -EBUSY;
        }
        token_bucket_spend(&attest_gate.bucket);
        *ret_ticket = attest_gate.next++;
        while (attest_gate.serving != *ret_ticket)
                (void) pthread_cond_wait(&attest_gate.turn, &attest_gate.lock);
        (void) pthread_mutex_unlock(&attest_gate.lock);
        return 0;
}

static void attest_gate_leave(void)
{
        (void) pthread_mutex_lock(&attest_gate.lock);
        attest_gate.serving++;
        (void) pthread_cond_broadcast(&attest_gate.turn);
        (void) pthread_mutex_unlock(&attest_gate.lock);
}

/* Under the attester's lock: the event log in memory from the first quote on. */
static int attest_cache_event_log(VtpmAttester *a, Diag *d)
{
        int r;

        if (attest_gate.log_read || a->config.event_log_data || !a->config.event_log ||
            !a->config.event_log[0])
                return 0;
        r = read_full_file(a->config.event_log, EVIDENCE_EVENT_LOG_MAX, &attest_gate.log,
                           &attest_gate.log_size);
        if (r == -ENOENT) {
                /* As before: no log at that path, evidence without one. */
                log_debug("join-service: monitor: no event log at %s", a->config.event_log);
                a->config.event_log = "";
        } else if (r < 0)
                return diag_fail(d, r, "event-log", -1, "cannot read the event log %s: %s",
                                 a->config.event_log, strerror(-r));
        else {
                a->config.event_log_data = attest_gate.log;
                a->config.event_log_size = attest_gate.log_size;
        }
        attest_gate.log_read = true;
        return 0;
}

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
        unsigned long ticket = 0;
        size_t size = 0;
        Diag d;
        int r;

        diag_clear(&d);
        /* With a WireGuard key (a verifier asked for it: cloister verify --cluster): only the
         * key this monitor made (--mesh) is bound, so a network process cannot have this node
         * attest a key it chose. */
        if (m->op == JOIN_PRIVSEP_ATTEST_WG &&
            (!js->mesh_key_set ||
             memcmp(m->fields[2].data, js->mesh_public_key, MESH_KEY_SIZE) != 0)) {
                privsep_buf_begin(out, m->op | PRIVSEP_REPLY, -EPERM);
                privsep_buf_add_text(out, "the monitor binds only this node's own WireGuard key");
                privsep_buf_add_text(out, "");
                return 0;
        }
        r = atls_binding_wg(js->attester->variant, ATLS_ROLE_SERVER, m->fields[0].data,
                            m->fields[1].data, m->fields[1].size,
                            m->op == JOIN_PRIVSEP_ATTEST_WG ? js->mesh_public_key : NULL, binding);
        if (r < 0)
                (void) diag_fail(&d, r, "atls-binding", -1, "cannot compute the binding");
        if (r >= 0) {
                r = attest_gate_enter(&ticket);
                if (r < 0) {
                        /* Refused at once, before the TPM (logged, rate-limited, above). */
                        char why[128];

                        (void) snprintf(why, sizeof(why),
                                        "the monitor makes at most %d quotes a second for "
                                        "handshakes: try again shortly",
                                        JOIN_ATTEST_RATE);
                        privsep_buf_begin(out, m->op | PRIVSEP_REPLY, r);
                        privsep_buf_add_text(out, why);
                        privsep_buf_add_text(out, "");
                        return 0;
                }
                /* ESAPI contexts are not thread-safe: the TPM's lock for the event log read
                 * once into the attester's configuration (node_attester_issue() takes it
                 * again for the quote). */
                (void) pthread_mutex_lock(&js->attester->tpm.lock);
                fault_slow_quote();
                r = attest_cache_event_log(&js->attester->tpm, &d);
                (void) pthread_mutex_unlock(&js->attester->tpm.lock);
                if (r >= 0)
                        r = node_attester_issue(js->attester, binding, &e, &d);
                attest_gate_leave();
        }
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
        case JOIN_PRIVSEP_ATTEST_WG:
                return answer_attest(js, m, out);
        case JOIN_PRIVSEP_TDX_COLLATERAL:
                join_tdx_answer(m, out);
                return 0;
        case JOIN_PRIVSEP_METRICS:
                /* Text, not JSON: the records of re-attestation, nothing secret. */
                r = reattest_metrics(js, &text);
                if (r >= 0 && strlen(text) + 1 > JOIN_PRIVSEP_ANSWER_MAX)
                        r = -EMSGSIZE;
                privsep_buf_begin(out, m->op | PRIVSEP_REPLY, r < 0 ? r : 0);
                privsep_buf_add_text(out, r < 0 ? "cannot make the metrics" : "");
                privsep_buf_add_text(out, r < 0 ? "" : text);
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
        case JOIN_PRIVSEP_MESH:
                c.evidence = m->fields[0].data;
                c.evidence_size = m->fields[0].size;
                c.nonce = m->fields[1].data;
                c.spki = m->fields[2].data;
                c.spki_size = m->fields[2].size;
                c.peer = privsep_text(m, 3);
                c.wg_key = m->fields[4].data;
                r = join_handle_mesh(js, &c, &answer, detail, sizeof(detail));
                break;
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
        case JOIN_PRIVSEP_POLICY_PUSH:
                r = join_handle_policy_push(js, privsep_text(m, 0), privsep_text(m, 1),
                                            privsep_text(m, 2), privsep_text(m, 3),
                                            m->fields[3].size - 1, &answer, detail, sizeof(detail));
                break;
        case JOIN_PRIVSEP_NODE_REMOVE: {
                const JoinRemoval x = { .disk_uuid = privsep_text(m, 2),
                                        .ak_digest = privsep_text(m, 3),
                                        .admitted = privsep_text(m, 4),
                                        .authenticator = privsep_text(m, 5) };

                r = join_handle_node_remove(js, privsep_text(m, 0), privsep_text(m, 1), &x, &answer,
                                            detail, sizeof(detail));
                break;
        }
        default:
                return -EBADMSG;
        }
        if (r >= 0 && (!answer || json_dump_compact(answer, &text) < 0))
                r = -ENOMEM;
        if (r >= 0 && strlen(text) + 1 > JOIN_PRIVSEP_ANSWER_MAX)
                r = -EMSGSIZE;
        /* A refusal's detail may quote the sender's bytes (a JSON parser's "near '...'"): printable
         * ASCII only, so the network process can put it in a JSON answer and a log line. */
        for (char *p = detail; *p; p++)
                if ((unsigned char) *p < ' ' || (unsigned char) *p >= 0x7f)
                        *p = '?';
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

        join_policy_push_restore(js);
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
