/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers/attest-fixture.h"
#include "helpers/unit.h"
#include "helpers/vtpm.h"

#include "cloister/attest-atls.h"
#include "cloister/json.h"
#include "cloister/rpc.h"
#include "cloister/snp-sim.h"
#include "cloister/tpm-device.h"

/* HTTP/JSON over aTLS on loopback: a real evhttp server in a thread, libcurl clients, the
 * server attesting with a swtpm. */

static Vtpm server_tpm, client_tpm;
static TpmDevice *server_dev, *client_dev;
static VtpmAttester server_att, client_att;
static AttestPolicy *server_policy, *client_policy;
static PolicyVerifier verify_server, verify_client;

static int echo(void *userdata, const RpcRequest *req, json_t **ret, char *detail, size_t n)
{
        if (!req->body || !json_object_get(req->body, "x")) {
                (void) snprintf(detail, n, "field x is required");
                return -EBADMSG;
        }
        *ret = json_pack("{s:O,s:b}", "echo", req->body, "attested", atls_peer_verified(req->ssl));
        return *ret ? 0 : -ENOMEM;
}

static int hello(void *userdata, const RpcRequest *req, json_t **ret, char *detail, size_t n)
{
        *ret = json_pack("{s:s}", "hello", "world");
        return 0;
}

/* A handler that fails after building an answer: a ticket and a secret beside the keys a refusal
 * may carry (the node's state as a code, the node's log for its owner). */
static int refuse_after_building(void *userdata, const RpcRequest *req, json_t **ret, char *detail,
                                 size_t n)
{
        *ret = json_pack("{s:s,s:s,s:b,s:s,s:s}", "code", "already-member", "nodeLog", "line 1\n",
                         "nodeLogDropped", 0, "ticket", "TICKET-NOT-FOR-YOU", "masterSecret",
                         "SECRET-NOT-FOR-YOU");
        (void) snprintf(detail, n, "this node is a member already");
        return *ret ? -EALREADY : -ENOMEM;
}

/* A handler that holds its worker until the test lets it go, counting its calls: what a join's
 * handler waiting on kubeadm looks like to the queue. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static bool hold_released;
static atomic_int hold_calls, hold_running;

static int hold(void *userdata, const RpcRequest *req, json_t **ret, char *detail, size_t n)
{
        atomic_fetch_add(&hold_calls, 1);
        atomic_fetch_add(&hold_running, 1);
        (void) pthread_mutex_lock(&hold_lock);
        while (!hold_released)
                (void) pthread_cond_wait(&hold_cond, &hold_lock);
        (void) pthread_mutex_unlock(&hold_lock);
        atomic_fetch_sub(&hold_running, 1);
        *ret = json_pack("{s:s}", "held", "done");
        return *ret ? 0 : -ENOMEM;
}

static void hold_reset(bool released)
{
        (void) pthread_mutex_lock(&hold_lock);
        hold_released = released;
        (void) pthread_cond_broadcast(&hold_cond);
        (void) pthread_mutex_unlock(&hold_lock);
        if (!released) {
                atomic_store(&hold_calls, 0);
                atomic_store(&hold_running, 0);
        }
}

static const RpcRoute routes[] = {
        { "POST", "/v1/echo", echo },
        { "GET", "/v1/hello", hello },
        { "GET", "/v1/refuse", refuse_after_building },
        { "GET", "/v1/hold", hold },
        {},
};

static int group_setup(void **state)
{
        VtpmIssueConfig cfg;

        if (vtpm_start(&server_tpm, false) < 0 || vtpm_start(&client_tpm, false) < 0 ||
            tpm_device_open(server_tpm.tcti, &server_dev) < 0 ||
            tpm_device_open(client_tpm.tcti, &client_dev) < 0 ||
            fixture_policy_pinned(server_tpm.tcti, &server_policy) < 0 ||
            fixture_policy_pinned(client_tpm.tcti, &client_policy) < 0)
                return -1;
        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        vtpm_attester_init(&server_att, server_dev, &cfg);
        vtpm_attester_init(&client_att, client_dev, &cfg);
        verify_server = (PolicyVerifier){ .policy = server_policy };
        verify_client = (PolicyVerifier){ .policy = client_policy };
        return 0;
}

static int group_teardown(void **state)
{
        vtpm_attester_done(&server_att);
        vtpm_attester_done(&client_att);
        server_dev = tpm_device_close(server_dev);
        client_dev = tpm_device_close(client_dev);
        server_policy = attest_policy_free(server_policy);
        client_policy = attest_policy_free(client_policy);
        vtpm_stop(&server_tpm);
        vtpm_stop(&client_tpm);
        return 0;
}

typedef struct Server {
        AtlsContext *atls;
        RpcServer *rpc;
        pthread_t thread;
        char base[64];
        int result;
} Server;

static void *server_main(void *arg)
{
        Server *s = arg;
        s->result = rpc_server_run(s->rpc);
        return NULL;
}

/* Set by a test before server_start(): the per-source cap, the request deadline, the number
 * of handshake workers, and an attester that is slow (slow_issues of its next calls take
 * slow_issue_ms longer, outside the TPM's lock: what a slow TPM or quote service does). */
static unsigned per_source, deadline, hs_workers, queued, slow_issue_ms, workers;
/* Handshake rates (per address, all together): 0 (the tests' default) is no limit, so that
 * tests of other things may make hundreds of handshakes from 127.0.0.1. */
static unsigned hs_burst, hs_rate, hs_burst_total, hs_rate_total;
static atomic_int slow_issues, issues;

/* Closed by a test, the gate holds every evidence being issued until the test opens it: the
 * server's worker held for as long as the test needs to set the scene (seen in the server's
 * counters), not for a time guessed long enough on a loaded machine. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_closed;

static void gate_set(bool closed)
{
        (void) pthread_mutex_lock(&gate_lock);
        gate_closed = closed;
        (void) pthread_cond_broadcast(&gate_cond);
        (void) pthread_mutex_unlock(&gate_lock);
}

static int slow_issue(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                      const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        AtlsAttester real = vtpm_attester(&server_att);

        atomic_fetch_add(&issues, 1);
        (void) pthread_mutex_lock(&gate_lock);
        while (gate_closed)
                (void) pthread_cond_wait(&gate_cond, &gate_lock);
        (void) pthread_mutex_unlock(&gate_lock);
        if (atomic_fetch_sub(&slow_issues, 1) > 0)
                usleep(slow_issue_ms * 1000U);
        return real.issue(real.userdata, binding, input, ret, ret_size, d);
}

/*
 * What a test started, kept here so that the teardown of every test finishes it even when the
 * test failed half-way (cmocka leaves the test's frame then): the gate opened, held handlers
 * let go, the server stopped, the client threads joined, the settings reset. A server left
 * running took the SIGTERM test's signal and hung the binary after any earlier failure; a
 * client thread left running would write into a frame that is gone (the tests' servers and
 * what their client threads write to are static for that reason).
 */
static Server *server_running;
static pthread_t *threads_started[256];
static size_t n_threads_started;

static void thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
        assert_true(n_threads_started < ELEMENTSOF(threads_started));
        assert_int_equal(pthread_create(t, attr, fn, arg), 0);
        threads_started[n_threads_started++] = t;
}

static void thread_join(pthread_t *t)
{
        for (size_t i = 0; i < n_threads_started; i++)
                if (threads_started[i] == t) {
                        threads_started[i] = threads_started[--n_threads_started];
                        assert_int_equal(pthread_join(*t, NULL), 0);
                        return;
                }
        fail_msg("joining a client thread that was not started");
}

static void server_start(Server *s, bool mutual, unsigned timeout, unsigned max_conn)
{
        AtlsAttester a = { ATTEST_VARIANT_QEMU_VTPM, slow_issue, NULL };
        AtlsVerifier v = policy_verifier(&verify_client);
        RpcServerConfig cfg;

        memset(s, 0, sizeof(*s));
        rpc_server_config_defaults(&cfg);
        cfg.max_body = 4096;
        if (timeout)
                cfg.timeout_sec = timeout;
        if (max_conn)
                cfg.max_connections = max_conn;
        /* Every test client comes from 127.0.0.1: the per-source cap is tested on its own. */
        cfg.max_per_source = per_source ?: cfg.max_connections;
        if (deadline)
                cfg.deadline_sec = deadline;
        if (hs_workers)
                cfg.handshake_workers = hs_workers;
        if (queued)
                cfg.max_queued = queued;
        cfg.workers = workers;
        cfg.handshake_burst = hs_burst ?: 1;
        cfg.handshake_rate = hs_rate;
        cfg.handshake_burst_total = hs_burst_total ?: 1;
        cfg.handshake_rate_total = hs_rate_total;
        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, &a, mutual ? &v : NULL, &s->atls), 0);
        assert_int_equal(rpc_server_new(&cfg, s->atls, routes, NULL, &s->rpc), 0);
        (void) snprintf(s->base, sizeof(s->base), "https://127.0.0.1:%u", rpc_server_port(s->rpc));
        assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
        server_running = s;
}

static void server_stop(Server *s)
{
        server_running = NULL;
        rpc_server_stop(s->rpc);
        assert_int_equal(pthread_join(s->thread, NULL), 0);
        s->rpc = rpc_server_free(s->rpc);
        s->atls = atls_context_free(s->atls);
}

static AtlsContext *client(bool attest)
{
        AtlsAttester a = vtpm_attester(&client_att);
        AtlsVerifier v = policy_verifier(&verify_server);
        AtlsContext *c = NULL;

        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, attest ? &a : NULL, &v, &c), 0);
        return c;
}

static void test_rpc_mutual_request_round_trips(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(true);
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:i}", "x", 42), *resp = NULL;
        static Server s;
        long status = 0;
        Diag d;

        server_start(&s, true, 0, 0);
        diag_clear(&d);
        assert_int_equal(
                rpc_call(c, NULL, "POST", s.base, "/v1/echo", body, false, &status, &resp, &d), 0);
        assert_int_equal(status, 200);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "echo"), "x")),
                         42);
        assert_true(json_is_true(json_object_get(resp, "attested")));
        server_stop(&s);
}

static void test_rpc_errors_are_json_with_status(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        _cleanup_(json_decrefp) json_t *empty = json_object();
        json_t *resp = NULL;
        static Server s;
        long status = 0;

        server_start(&s, false, 0, 0);
        assert_int_equal(
                rpc_call(c, NULL, "GET", s.base, "/v1/nope", NULL, true, &status, &resp, NULL), 0);
        assert_int_equal(status, 404);
        assert_string_equal(json_string_value(json_object_get(resp, "error")), "not-found");
        json_decref(resp);
        assert_int_equal(
                rpc_call(c, NULL, "POST", s.base, "/v1/hello", empty, false, &status, &resp, NULL),
                0);
        assert_int_equal(status, 405);
        json_decref(resp);
        assert_int_equal(
                rpc_call(c, NULL, "POST", s.base, "/v1/echo", empty, false, &status, &resp, NULL),
                0);
        assert_int_equal(status, 400);
        assert_string_equal(json_string_value(json_object_get(resp, "detail")),
                            "field x is required");
        json_decref(resp);
        server_stop(&s);
}

static void
test_rpc_refusal_carries_only_its_code_and_log_never_what_the_handler_built(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        json_t *resp = NULL;
        const char *key;
        json_t *v;
        static Server s;
        long status = 0;

        server_start(&s, false, 0, 0);
        assert_int_equal(
                rpc_call(c, NULL, "GET", s.base, "/v1/refuse", NULL, true, &status, &resp, NULL),
                0);
        assert_int_equal(status, 409);
        assert_string_equal(json_string_value(json_object_get(resp, "error")), "conflict");
        assert_string_equal(json_string_value(json_object_get(resp, "detail")),
                            "this node is a member already");
        assert_string_equal(json_string_value(json_object_get(resp, "code")), "already-member");
        assert_string_equal(json_string_value(json_object_get(resp, "nodeLog")), "line 1\n");
        assert_true(json_is_false(json_object_get(resp, "nodeLogDropped")));
        /* Nothing else the handler built: not the ticket, not the secret. */
        json_object_foreach (resp, key, v)
                assert_true(strcmp(key, "error") == 0 || strcmp(key, "detail") == 0 ||
                            strcmp(key, "code") == 0 || strcmp(key, "nodeLog") == 0 ||
                            strcmp(key, "nodeLogDropped") == 0);
        json_decref(resp);
        server_stop(&s);
}

static void test_rpc_oversized_request_body_is_refused_with_413(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        _cleanup_(json_decrefp) json_t *body = json_object();
        char big[8192];
        json_t *resp = NULL;
        static Server s;
        long status = 0;

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        json_object_set_new(body, "x", json_string(big));
        server_start(&s, false, 0, 0);
        assert_int_equal(
                rpc_call(c, NULL, "POST", s.base, "/v1/echo", body, false, &status, &resp, NULL),
                0);
        assert_int_equal(status, 413);
        json_decref(resp);
        server_stop(&s);
}

static void test_rpc_client_refuses_server_failing_attestation(void **state)
{
        AttestPolicy strict = *server_policy;
        PolicyVerifier pv = { .policy = &strict };
        AtlsVerifier v;
        _cleanup_(atls_context_freep) AtlsContext *c = NULL;
        static Server s;
        long status = 0;
        json_t *resp = NULL;
        Diag d;

        memset(strict.pcrs[0].expected, 0x11, 32);
        v = policy_verifier(&pv);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        server_start(&s, false, 0, 0);
        diag_clear(&d);
        assert_int_equal(
                rpc_call(c, NULL, "GET", s.base, "/v1/hello", NULL, true, &status, &resp, &d),
                -EKEYREJECTED);
        assert_string_equal(d.check, "pcr");
        assert_int_equal(d.index, 0);
        assert_null(resp);
        server_stop(&s);
}

/* A client that completes the aTLS handshake, sends half a request and stalls. */
typedef struct Slow {
        SSL *ssl;
        int fd;
} Slow;

static int slow_open(Server *s, AtlsContext *c, Slow *out)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        const char *port = strrchr(s->base, ':') + 1;

        sa.sin_port = htons((uint16_t) atoi(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (out->fd < 0 || connect(out->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -1;
        out->ssl = SSL_new(atls_context_ssl_ctx(c));
        SSL_set_fd(out->ssl, out->fd);
        return SSL_connect(out->ssl) == 1 ? 0 : -1;
}

static void slow_close(Slow *sl)
{
        SSL_free(sl->ssl);
        (void) close(sl->fd);
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A plain TCP connection from the loopback address source (127.0.0.N). */
static int tcp_from(Server *s, const char *source)
{
        struct sockaddr_in sa = { .sin_family = AF_INET }, from = { .sin_family = AF_INET };
        const char *port = strrchr(s->base, ':') + 1;
        int fd;

        sa.sin_port = htons((uint16_t) atoi(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(inet_pton(AF_INET, source, &from.sin_addr), 1);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &from, sizeof(from)) < 0 ||
            connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -1;
        return fd;
}

/* A whole GET /v1/hello over TLS from source: true if the answer is 200. */
static bool hello_from(Server *s, AtlsContext *c, const char *source)
{
        static const char req[] = "GET /v1/hello HTTP/1.1\r\nHost: x\r\n\r\n";
        char buf[256] = "";
        int fd = tcp_from(s, source), n = -1;
        SSL *ssl;

        if (fd < 0)
                return false;
        ssl = SSL_new(atls_context_ssl_ctx(c));
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, (int) strlen(req)) > 0)
                n = SSL_read(ssl, buf, sizeof(buf) - 1);
        SSL_free(ssl);
        (void) close(fd);
        return n > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

/* A request line naming a version libevent accepts but HTTP has not (HTTP/0.1, HTTP/1.200): the
 * answer is 505 in HTTP/1.1, not the request's version echoed into the status line (what
 * fuzz-http-request found); HTTP/1.0 is still served. */
static void test_rpc_unsupported_http_version_is_answered_505_in_http11(void **state)
{
        static const char *const versions[] = { "HTTP/0.1", "HTTP/1.200", "HTTP/-3.7" };
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static Server s;

        server_start(&s, false, 0, 0);
        for (size_t i = 0; i <= ELEMENTSOF(versions); i++) {
                char req[128], buf[512] = "";
                int fd = tcp_from(&s, "127.0.0.1"), n = -1;
                SSL *ssl;

                assert_true(fd >= 0);
                (void) snprintf(req, sizeof(req), "GET /v1/hello %s\r\nHost: x\r\n\r\n",
                                i < ELEMENTSOF(versions) ? versions[i] : "HTTP/1.0");
                ssl = SSL_new(atls_context_ssl_ctx(c));
                SSL_set_fd(ssl, fd);
                if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, (int) strlen(req)) > 0)
                        for (int k; (k = SSL_read(ssl, buf + MAX(n, 0),
                                                  (int) sizeof(buf) - 1 - MAX(n, 0))) > 0;)
                                n = MAX(n, 0) + k;
                SSL_free(ssl);
                (void) close(fd);
                assert_true(n > 0);
                if (i < ELEMENTSOF(versions)) {
                        assert_true(strncmp(buf, "HTTP/1.1 505 ", 13) == 0);
                        assert_non_null(strstr(buf, "http-version-not-supported"));
                } else
                        assert_true(strncmp(buf, "HTTP/1.0 200 ", 13) == 0);
        }
        server_stop(&s);
}

/* Slow loris: a TLS record header that announces 16 KiB, then one byte at a time, each in
 * less than the idle timeout. The idle timeout never fires; the deadline from accept does. */
static void test_rpc_client_dripping_bytes_is_closed_at_the_deadline(void **state)
{
        static const uint8_t header[] = { 0x16, 0x03, 0x01, 0x40, 0x00 };
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static Server s;
        double t0;
        bool closed = false;
        int fd;

        deadline = 2;
        server_start(&s, false, 1, 0);
        fd = tcp_from(&s, "127.0.0.1");
        assert_true(fd >= 0);
        t0 = now();
        assert_int_equal(write(fd, header, sizeof(header)), (ssize_t) sizeof(header));
        while (now() - t0 < 6.0) {
                char b;
                usleep(400 * 1000);
                /* A write after the server closed fails (EPIPE/ECONNRESET) or a read sees EOF. */
                if (send(fd, "", 1, MSG_NOSIGNAL) < 0 || recv(fd, &b, 1, MSG_DONTWAIT) == 0) {
                        closed = true;
                        break;
                }
        }
        assert_true(closed);
        assert_true(now() - t0 >= 1.5 && now() - t0 < 4.0);
        /* Meanwhile the server is fine. */
        assert_true(hello_from(&s, c, "127.0.0.1"));
        (void) close(fd);
        server_stop(&s);
        deadline = 0;
}

/* Slow loris after the handshake: the request's bytes dripped one at a time, each within the
 * idle timeout. The deadline from accept closes it (the handshake workers have no part in
 * this: only the loop's timer can). */
static void test_rpc_request_dripped_after_the_handshake_is_closed_at_the_deadline(void **state)
{
        static const char req[] = "GET /v1/hello HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static Server s;
        double t0;
        bool closed = false;
        SSL *ssl;
        int fd;

        deadline = 2;
        server_start(&s, false, 1, 0);
        fd = tcp_from(&s, "127.0.0.1");
        assert_true(fd >= 0);
        ssl = SSL_new(atls_context_ssl_ctx(c));
        SSL_set_fd(ssl, fd);
        t0 = now();
        assert_int_equal(SSL_connect(ssl), 1);
        for (size_t i = 0; now() - t0 < 6.0; i++) {
                char b;
                if (SSL_write(ssl, i < sizeof(req) - 1 ? &req[i] : "a", 1) <= 0 ||
                    recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 0) {
                        closed = true;
                        break;
                }
                usleep(300 * 1000);
        }
        assert_true(closed);
        assert_true(now() - t0 >= 1.5 && now() - t0 < 4.0);
        SSL_free(ssl);
        (void) close(fd);
        server_stop(&s);
        deadline = 0;
}

/* One address cannot take every connection: its third is closed at once, while another
 * address is still served. */
static void test_rpc_per_source_cap_closes_one_address_while_another_is_served(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static Server s;
        Slow a, b;

        per_source = 2;
        server_start(&s, false, 5, 0);
        assert_int_equal(slow_open(&s, c, &a), 0);
        assert_int_equal(slow_open(&s, c, &b), 0);
        assert_false(hello_from(&s, c, "127.0.0.1"));
        assert_true(hello_from(&s, c, "127.0.0.2"));
        slow_close(&a);
        for (int i = 0; i < 50 && rpc_server_connections(s.rpc) >= 2; i++)
                usleep(20 * 1000);
        assert_true(hello_from(&s, c, "127.0.0.1"));
        slow_close(&b);
        server_stop(&s);
        per_source = 0;
}

/* A client given a source address connects from it: with 127.0.0.1 at its cap, the call from
 * 127.0.0.1 fails and the same call from 127.0.0.3 is answered; an address not of this host is
 * refused with the address named. */
static void test_rpc_client_connects_from_the_source_address_it_is_given(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        RpcClientConfig rc;
        static Server s;
        Slow a;

        per_source = 1;
        server_start(&s, false, 5, 0);
        assert_int_equal(slow_open(&s, c, &a), 0);
        rpc_client_config_defaults(&rc);
        rc.retries = 0;
        rc.connect_timeout_ms = rc.total_timeout_ms = 3000;
        for (size_t i = 0; i < 3; i++) {
                static const char *const sources[] = { "127.0.0.1", "127.0.0.3", "192.0.2.1" };
                _cleanup_(json_decrefp) json_t *resp = NULL;
                long status = 0;
                Diag d;
                int r;

                rc.source_address = sources[i];
                diag_clear(&d);
                r = rpc_call(c, &rc, "GET", s.base, "/v1/hello", NULL, true, &status, &resp, &d);
                if (i == 1) {
                        assert_int_equal(r, 0);
                        assert_int_equal(status, 200);
                } else
                        assert_true(r < 0);
                if (i == 2) {
                        assert_int_equal(r, -EADDRNOTAVAIL);
                        assert_non_null(strstr(d.message, "cannot connect from 192.0.2.1"));
                }
        }
        slow_close(&a);
        server_stop(&s);
        per_source = 0;
}

static void test_rpc_slow_client_is_dropped_after_timeout_while_others_are_served(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static const char partial[] = "GET /v1/hello HTTP/1.1\r\nHost: x\r\n";
        json_t *resp = NULL;
        static Server s;
        Slow sl;
        long status = 0;
        char buf[64];
        double t0;

        server_start(&s, false, 1, 0);
        assert_int_equal(slow_open(&s, c, &sl), 0);
        assert_int_equal(SSL_write(sl.ssl, partial, (int) strlen(partial)), (int) strlen(partial));
        t0 = now();
        /* Meanwhile another client is served. */
        assert_int_equal(
                rpc_call(c, NULL, "GET", s.base, "/v1/hello", NULL, true, &status, &resp, NULL), 0);
        assert_int_equal(status, 200);
        json_decref(resp);
        /* The stalled connection is closed by the server (read returns 0 or an error). */
        assert_true(SSL_read(sl.ssl, buf, sizeof(buf)) <= 0);
        assert_true(now() - t0 < 5.0);
        slow_close(&sl);
        server_stop(&s);
}

static void test_rpc_connection_limit_refuses_extra_connections(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        json_t *resp = NULL;
        static Server s;
        Slow a, b;
        long status = 0;
        RpcClientConfig cc;
        bool refused;
        int made, r;

        rpc_client_config_defaults(&cc);
        cc.retries = 0;
        /* Refused by the connection limit alone: the handshake is refused, not the socket
         * shut (as the per-source cap does). */
        per_source = 8;
        server_start(&s, false, 5, 2);
        atomic_store(&issues, 0);
        assert_int_equal(slow_open(&s, c, &a), 0);
        assert_int_equal(slow_open(&s, c, &b), 0);
        refused =
                rpc_call(c, &cc, "GET", s.base, "/v1/hello", NULL, true, &status, &resp, NULL) < 0;
        json_decref(TAKE_PTR(resp));
        made = atomic_load(&issues);
        slow_close(&a);
        /* The server notices the close on its next loop pass. */
        for (int i = 0; i < 50 && rpc_server_connections(s.rpc) >= 2; i++)
                usleep(20 * 1000);
        r = rpc_call(c, &cc, "GET", s.base, "/v1/hello", NULL, true, &status, &resp, NULL);
        json_decref(resp);
        slow_close(&b);
        server_stop(&s);
        per_source = 0;
        assert_true(refused);
        /* Refused before any evidence was made for it (on the loop or anywhere). */
        assert_int_equal(made, 2);
        assert_int_equal(r, 0);
        assert_int_equal(status, 200);
}

typedef struct Job {
        const char *base;
        AtlsContext *c;
        int result;
        long status;
} Job;

static void *job_main(void *arg)
{
        Job *j = arg;
        json_t *resp = NULL;
        RpcClientConfig cc;

        /* 200 handshakes queue behind one TPM on the server (slower still under ASan). */
        rpc_client_config_defaults(&cc);
        cc.connect_timeout_ms = 120000;
        cc.total_timeout_ms = 180000;
        j->result = rpc_call(j->c, &cc, "GET", j->base, "/v1/hello", NULL, true, &j->status, &resp,
                             NULL);
        json_decref(resp);
        return NULL;
}

static void test_rpc_200_parallel_clients_all_succeed(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        enum { N = 200 };
        static Job jobs[N];
        static pthread_t threads[N];
        pthread_attr_t attr;
        static Server s;

        server_start(&s, false, 120, 0);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        for (int i = 0; i < N; i++) {
                jobs[i] = (Job){ .base = s.base, .c = c, .result = -1 };
                thread_start(&threads[i], &attr, job_main, &jobs[i]);
        }
        for (int i = 0; i < N; i++) {
                thread_join(&threads[i]);
                assert_int_equal(jobs[i].result, 0);
                assert_int_equal(jobs[i].status, 200);
        }
        pthread_attr_destroy(&attr);
        server_stop(&s);
}

static void test_rpc_memory_stays_flat_over_5000_sequential_connections(void **state)
{
#ifdef __SANITIZE_ADDRESS__
        /* ASan's allocator makes mallinfo meaningless and each handshake ~4x slower; leaks are
         * caught by LeakSanitizer in that build instead. */
        enum { WARMUP = 50, N = 500 };
#else
        enum { WARMUP = 300, N = 5000 };
#endif
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *c = NULL;
        SimSnpAttester sa;
        AtlsAttester a;
        PolicyVerifier pv;
        AtlsVerifier v;
        RpcServerConfig cfg;
        static Server s;
        size_t before = 0, after;

        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        assert_int_equal(fixture_policy_sim_snp(sim, &pol), 0);
        sa.sim = sim;
        a = sim_snp_attester(&sa);
        pv = (PolicyVerifier){ .policy = pol };
        v = policy_verifier(&pv);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        rpc_server_config_defaults(&cfg);
        /* 5000 handshakes from one address, one after another: no rate (tested apart). */
        cfg.handshake_rate = cfg.handshake_rate_total = 0;
        memset(&s, 0, sizeof(s));
        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &s.atls), 0);
        assert_int_equal(rpc_server_new(&cfg, s.atls, routes, NULL, &s.rpc), 0);
        (void) snprintf(s.base, sizeof(s.base), "https://127.0.0.1:%u", rpc_server_port(s.rpc));
        assert_int_equal(pthread_create(&s.thread, NULL, server_main, &s), 0);
        server_running = &s;

        for (int i = 0; i < WARMUP + N; i++) {
                json_t *resp = NULL;
                long status = 0;

                if (i == WARMUP) {
                        (void) malloc_trim(0);
                        before = mallinfo2().uordblks;
                }
                assert_int_equal(rpc_call(c, NULL, "GET", s.base, "/v1/hello", NULL, true, &status,
                                          &resp, NULL),
                                 0);
                assert_int_equal(status, 200);
                json_decref(resp);
        }
        (void) malloc_trim(0);
        after = mallinfo2().uordblks;
        server_stop(&s);
#ifndef __SANITIZE_ADDRESS__
        /* Both ends live in this process: anything kept per connection would show here as at
         * least N times its size. */
        if (after > before + 1024 * 1024)
                fail_msg("heap grew from %zu to %zu bytes over %d connections", before, after, N);
#else
        (void) before;
        (void) after;
#endif
}

typedef struct TimedCall {
        const char *base;
        AtlsContext *c;
        int result;
        long status;
        atomic_bool done;
        double took;
} TimedCall;

static void *timed_call_main(void *arg)
{
        TimedCall *t = arg;
        json_t *resp = NULL;
        double t0 = now();
        RpcClientConfig cfg;

        /* A minute to connect: some tests hold handshakes back on purpose (turns, rates),
         * longer than a client's default 5 s. */
        rpc_client_config_defaults(&cfg);
        cfg.connect_timeout_ms = 60 * 1000;
        cfg.total_timeout_ms = 90 * 1000;
        t->result = rpc_call(t->c, &cfg, "GET", t->base, "/v1/hello", NULL, false, &t->status,
                             &resp, NULL);
        json_decref(resp);
        t->took = now() - t0;
        atomic_store(&t->done, true);
        return NULL;
}

/* One handshake whose evidence takes 4 s to issue holds neither the loop nor the other
 * clients: another client's handshake and request complete meanwhile. (Before, the loop issued
 * evidence itself: the second client waited the 4 s out.) */
static void test_rpc_slow_evidence_issuing_holds_up_no_other_client(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static TimedCall slow, fast;
        static pthread_t t;
        static Server s;

        slow_issue_ms = 4000;
        atomic_store(&slow_issues, 1);
        server_start(&s, false, 0, 0);
        slow = (TimedCall){ .base = s.base, .c = c, .result = -1 };
        thread_start(&t, NULL, timed_call_main, &slow);
        /* Until the slow one is inside its evidence. */
        for (int i = 0; i < 200 && atomic_load(&slow_issues) > 0; i++)
                usleep(10 * 1000);
        assert_int_equal(atomic_load(&slow_issues), 0);
        fast = (TimedCall){ .base = s.base, .c = c, .result = -1 };
        (void) timed_call_main(&fast);
        assert_int_equal(fast.result, 0);
        assert_int_equal(fast.status, 200);
        assert_true(fast.took < 2.5);
        assert_false(atomic_load(&slow.done));
        thread_join(&t);
        assert_int_equal(slow.result, 0);
        assert_int_equal(slow.status, 200);
        assert_true(slow.took >= 3.9);
        server_stop(&s);
        slow_issue_ms = 0;
}

/* Four handshakes whose evidence each takes 3 s run side by side on the handshake workers:
 * all four are done in well under the 12 s they take one after another. */
static void test_rpc_slow_handshakes_run_concurrently_not_in_series(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        enum { N = 4 };
        static TimedCall calls[N];
        static pthread_t t[N];
        static Server s;
        double t0;

        slow_issue_ms = 3000;
        atomic_store(&slow_issues, N);
        server_start(&s, false, 0, 0);
        t0 = now();
        for (int i = 0; i < N; i++) {
                calls[i] = (TimedCall){ .base = s.base, .c = c, .result = -1 };
                thread_start(&t[i], NULL, timed_call_main, &calls[i]);
        }
        for (int i = 0; i < N; i++) {
                thread_join(&t[i]);
                assert_int_equal(calls[i].result, 0);
                assert_int_equal(calls[i].status, 200);
                assert_true(calls[i].took >= 2.9);
        }
        assert_true(now() - t0 < 7.0);
        server_stop(&s);
        slow_issue_ms = 0;
}

/* With its one handshake worker held by a slow step, a client's handshake waits its turn past
 * the deadline from accept: it is closed then, and its step, when a worker is free, makes no
 * evidence for it (its socket is shut: the step fails before the certificate callback). */
static void test_rpc_handshake_step_past_the_deadline_makes_no_evidence(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static TimedCall slow;
        static pthread_t t;
        static Server s;
        double t0;
        bool closed = false;

        deadline = 2;
        hs_workers = 1;
        slow_issue_ms = 4000;
        atomic_store(&slow_issues, 1);
        atomic_store(&issues, 0);
        server_start(&s, false, 0, 0);
        slow = (TimedCall){ .base = s.base, .c = c, .result = -1 };
        thread_start(&t, NULL, timed_call_main, &slow);
        for (int i = 0; i < 200 && atomic_load(&slow_issues) > 0; i++)
                usleep(10 * 1000);
        {
                /* A whole ClientHello, then nothing: it waits for the worker. */
                SSL *ssl = SSL_new(atls_context_ssl_ctx(c));
                int fd = tcp_from(&s, "127.0.0.2");
                char b;

                assert_true(fd >= 0);
                SSL_set_fd(ssl, fd);
                t0 = now();
                (void) SSL_connect(ssl); /* sends the ClientHello, then waits for the answer */
                closed = recv(fd, &b, 1, 0) <= 0 || SSL_get_error(ssl, -1) != SSL_ERROR_NONE;
                SSL_free(ssl);
                (void) close(fd);
        }
        assert_true(closed);
        assert_true(now() - t0 < 6.0);
        /* The slow one outlived its own deadline too; its result does not matter here. */
        thread_join(&t);
        /* Only the slow client's evidence was ever made. */
        assert_int_equal(atomic_load(&issues), 1);
        server_stop(&s);
        deadline = 0;
        hs_workers = 0;
        slow_issue_ms = 0;
}

/* The handshake queue is bounded: with its one worker held by a slow step and one handshake
 * waiting, the next connection is closed at once (not kept waiting), and the waiting one is
 * served when the worker is free. */
static void test_rpc_full_handshake_queue_closes_new_connections_at_once(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static TimedCall slow, waiting;
        static pthread_t t1, t2;
        static Server s;
        double t0, took;
        SSL *ssl;
        int fd, r;

        hs_workers = 1;
        queued = 1;
        slow_issue_ms = 3000;
        atomic_store(&slow_issues, 1);
        server_start(&s, false, 0, 0);
        slow = (TimedCall){ .base = s.base, .c = c, .result = -1 };
        waiting = (TimedCall){ .base = s.base, .c = c, .result = -1 };
        thread_start(&t1, NULL, timed_call_main, &slow);
        for (int i = 0; i < 200 && atomic_load(&slow_issues) > 0; i++)
                usleep(10 * 1000);
        thread_start(&t2, NULL, timed_call_main, &waiting);
        usleep(300 * 1000);
        fd = tcp_from(&s, "127.0.0.2");
        assert_true(fd >= 0);
        ssl = SSL_new(atls_context_ssl_ctx(c));
        SSL_set_fd(ssl, fd);
        t0 = now();
        r = SSL_connect(ssl);
        took = now() - t0;
        SSL_free(ssl);
        (void) close(fd);
        assert_int_not_equal(r, 1);
        assert_true(took < 1.5);
        assert_false(atomic_load(&slow.done));
        thread_join(&t1);
        thread_join(&t2);
        assert_int_equal(slow.result, 0);
        assert_int_equal(waiting.result, 0);
        assert_int_equal(waiting.status, 200);
        server_stop(&s);
        hs_workers = 0;
        queued = 0;
        slow_issue_ms = 0;
}

/* Fairness: one address floods the server's only handshake worker with slow handshakes (eight
 * at once, each making 1.5 s evidence); each of another address's two handshake steps waits for
 * at most one of them (the addresses take turns): the step running (1.5 s at most), two turns
 * and its own evidence, about 6 s, where one first-in, first-out queue put it behind all seven
 * still queued (over 12 s). */
static void test_rpc_another_address_waits_one_turn_behind_a_flooding_address(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        enum { N = 8 };
        static TimedCall calls[N];
        static pthread_t t[N];
        static Server s;
        double t0, took;
        bool ok;

        hs_workers = 1;
        deadline = 30;
        slow_issue_ms = 1500;
        atomic_store(&slow_issues, 100);
        atomic_store(&issues, 0);
        server_start(&s, false, 0, 0);
        for (int i = 0; i < N; i++) {
                calls[i] = (TimedCall){ .base = s.base, .c = c, .result = -1 };
                thread_start(&t[i], NULL, timed_call_main, &calls[i]);
        }
        /* Until the first is inside its evidence and the others wait behind it. */
        for (int i = 0; i < 200 && atomic_load(&issues) == 0; i++)
                usleep(10 * 1000);
        assert_int_equal(atomic_load(&issues), 1);
        usleep(500 * 1000);
        t0 = now();
        ok = hello_from(&s, c, "127.0.0.2");
        took = now() - t0;
        for (int i = 0; i < N; i++) {
                thread_join(&t[i]);
                assert_int_equal(calls[i].result, 0);
        }
        server_stop(&s);
        hs_workers = 0;
        deadline = 0;
        slow_issue_ms = 0;
        atomic_store(&slow_issues, 0);
        assert_true(ok);
        if (took >= 9.0)
                fail_msg("127.0.0.2 waited %.1f s behind 127.0.0.1's queue", took);
}

/* One address runs at most half the handshake workers' steps: with two workers and three slow
 * handshakes (2 s of evidence each) from 127.0.0.1, the second worker stays free for another
 * address, whose handshake takes its own time only (without the cap it waited for one of
 * 127.0.0.1's to end, 4 s in all). */
static void test_rpc_one_address_runs_at_most_half_the_handshake_workers(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        enum { N = 3 };
        static TimedCall calls[N];
        static pthread_t t[N];
        static Server s;
        double t0, took;
        bool ok;

        hs_workers = 2;
        deadline = 30;
        slow_issue_ms = 2000;
        atomic_store(&slow_issues, 100);
        atomic_store(&issues, 0);
        server_start(&s, false, 0, 0);
        for (int i = 0; i < N; i++) {
                calls[i] = (TimedCall){ .base = s.base, .c = c, .result = -1 };
                thread_start(&t[i], NULL, timed_call_main, &calls[i]);
        }
        for (int i = 0; i < 200 && atomic_load(&issues) == 0; i++)
                usleep(10 * 1000);
        usleep(300 * 1000);
        t0 = now();
        ok = hello_from(&s, c, "127.0.0.2");
        took = now() - t0;
        for (int i = 0; i < N; i++) {
                thread_join(&t[i]);
                assert_int_equal(calls[i].result, 0);
        }
        server_stop(&s);
        hs_workers = 0;
        deadline = 0;
        slow_issue_ms = 0;
        atomic_store(&slow_issues, 0);
        assert_true(ok);
        if (took >= 3.5)
                fail_msg("127.0.0.2 waited %.1f s for a worker 127.0.0.1 held", took);
}

typedef struct HelloFrom {
        Server *s;
        AtlsContext *c;
        const char *source;
        bool ok;
} HelloFrom;

static void *hello_from_main(void *arg)
{
        HelloFrom *h = arg;

        h->ok = hello_from(h->s, h->c, h->source);
        return NULL;
}

/* An address's handshakes past its burst wait for its rate: four at once from 127.0.0.1 with a
 * burst of 1 and 1 a second take at least 3 s (the fourth begins then), three of them counted
 * as delayed; afterwards another address, its own bucket full, is not held. */
static void test_rpc_an_address_past_its_handshake_rate_is_delayed_and_another_is_not(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        enum { N = 4 };
        static TimedCall calls[N];
        static pthread_t t[N];
        RpcServerStats st;
        double t0, all, lone = 1e9, other;
        static Server s;

        hs_burst = 1;
        hs_rate = 1;
        server_start(&s, false, 0, 0);
        t0 = now();
        for (int i = 0; i < N; i++) {
                calls[i] = (TimedCall){ .base = s.base, .c = c, .result = -1 };
                thread_start(&t[i], NULL, timed_call_main, &calls[i]);
        }
        for (int i = 0; i < N; i++) {
                thread_join(&t[i]);
                assert_int_equal(calls[i].result, 0);
                lone = MIN(lone, calls[i].took);
        }
        all = now() - t0;
        t0 = now();
        assert_true(hello_from(&s, c, "127.0.0.2"));
        other = now() - t0;
        rpc_server_stats(s.rpc, &st);
        server_stop(&s);
        hs_burst = hs_rate = 0;
        if (all < 2.8)
                fail_msg("four handshakes in %.2f s: the rate did not hold", all);
        assert_true(st.handshakes_delayed >= N - 1);
        if (other > 3 * lone + 0.5)
                fail_msg("another address took %.2f s (a lone handshake %.2f s)", other, lone);
}

/* An address's bucket outlives its connections: four handshakes one after another from
 * 127.0.0.1, each connection closed before the next, with a burst of 1 and 1 a second, still
 * take at least 3 s (reconnecting does not refill the bucket). */
static void test_rpc_an_address_reconnecting_keeps_its_spent_handshake_bucket(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static Server s;
        double t0, took;
        bool ok = true;

        hs_burst = 1;
        hs_rate = 1;
        server_start(&s, false, 0, 0);
        t0 = now();
        for (int i = 0; i < 4; i++) {
                ok = ok && hello_from(&s, c, "127.0.0.1");
                /* Until the server has closed it too: the address has no connection left. */
                for (int j = 0; j < 100 && rpc_server_connections(s.rpc) > 0; j++)
                        usleep(10 * 1000);
        }
        took = now() - t0;
        server_stop(&s);
        hs_burst = hs_rate = 0;
        assert_true(ok);
        if (took < 2.8)
                fail_msg("four handshakes in %.2f s: reconnecting refilled the bucket", took);
}

/* All addresses together are held to the server's rate: four handshakes at once from four
 * addresses, with a burst of 1 and 1 a second, take at least 3 s, three counted as delayed. */
static void test_rpc_all_addresses_together_are_held_to_the_server_s_handshake_rate(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        static const char *const from[] = { "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4" };
        static HelloFrom h[ELEMENTSOF(from)];
        static pthread_t t[ELEMENTSOF(from)];
        RpcServerStats st;
        static Server s;
        double t0, took;

        hs_burst_total = 1;
        hs_rate_total = 1;
        server_start(&s, false, 0, 0);
        t0 = now();
        for (size_t i = 0; i < ELEMENTSOF(from); i++) {
                h[i] = (HelloFrom){ .s = &s, .c = c, .source = from[i] };
                thread_start(&t[i], NULL, hello_from_main, &h[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(from); i++) {
                thread_join(&t[i]);
                assert_true(h[i].ok);
        }
        took = now() - t0;
        rpc_server_stats(s.rpc, &st);
        server_stop(&s);
        hs_burst_total = hs_rate_total = 0;
        if (took < 2.8)
                fail_msg("four handshakes in %.2f s: the server's rate did not hold", took);
        assert_true(st.handshakes_delayed >= ELEMENTSOF(from) - 1);
}

typedef enum StatsField {
        STATS_JOBS_WAITING,
        STATS_JOBS_DROPPED,
        STATS_REPLIES_DISCARDED,
        STATS_HANDSHAKES_WAITING,
        STATS_HANDSHAKES_CLOSED,
} StatsField;

static unsigned long stats_field(const RpcServerStats *st, StatsField f)
{
        switch (f) {
        case STATS_JOBS_WAITING:
                return st->jobs_waiting;
        case STATS_JOBS_DROPPED:
                return st->jobs_dropped;
        case STATS_REPLIES_DISCARDED:
                return st->replies_discarded;
        case STATS_HANDSHAKES_WAITING:
                return st->handshakes_waiting;
        case STATS_HANDSHAKES_CLOSED:
                return st->handshakes_closed;
        }
        return 0;
}

/* Until the server's counter f reaches want (60 s at most: a loaded machine is slow, never
 * this slow): the order of the test's steps rests on what the server has seen, not on sleeps. */
static void stats_wait(Server *s, StatsField f, unsigned long want)
{
        RpcServerStats st = {};

        for (int i = 0; i < 6000; i++) {
                rpc_server_stats(s->rpc, &st);
                if (stats_field(&st, f) == want)
                        return;
                usleep(10 * 1000);
        }
        fail_msg("server counter %d is %lu after 60 s, want %lu", (int) f, stats_field(&st, f),
                 want);
}

/* A full handshake queue (2 steps) held by one address makes room for another address: the
 * newest step of the address with the most waiting is closed, the newcomer is served, and
 * the closing counted. The scene is set by the server's counters, the first call's evidence
 * held at the gate meanwhile: its step holds the only worker, the second and third calls'
 * ClientHellos wait in that order, then the newcomer's. Only the newcomer meets a full queue
 * (the one worker busy): every later step finds room, for a step a free worker is about to take
 * does not wait. (Before, it counted: under load a worker done with a step and not yet back for
 * the next left the queue looking full to the step its own client answered at once, and a
 * second connection was closed.) */
static void
test_rpc_full_handshake_queue_closes_the_newest_of_the_address_with_most_waiting(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client(false);
        enum { N = 3 };
        static TimedCall calls[N];
        static pthread_t t[N], tn;
        static HelloFrom newcomer;
        static Server s;
        RpcServerStats st;

        hs_workers = 1;
        queued = 2;
        deadline = 30;
        gate_set(true);
        atomic_store(&issues, 0);
        server_start(&s, false, 0, 0);
        for (int i = 0; i < N; i++) {
                calls[i] = (TimedCall){ .base = s.base, .c = c, .result = -1 };
                thread_start(&t[i], NULL, timed_call_main, &calls[i]);
                if (i == 0) {
                        for (int j = 0; j < 6000 && atomic_load(&issues) == 0; j++)
                                usleep(10 * 1000);
                        assert_int_equal(atomic_load(&issues), 1);
                } else
                        stats_wait(&s, STATS_HANDSHAKES_WAITING, (unsigned long) i);
        }
        newcomer = (HelloFrom){ .s = &s, .c = c, .source = "127.0.0.2" };
        thread_start(&tn, NULL, hello_from_main, &newcomer);
        /* The newcomer takes the third call's place. */
        stats_wait(&s, STATS_HANDSHAKES_CLOSED, 1);
        stats_wait(&s, STATS_HANDSHAKES_WAITING, 2);
        gate_set(false);
        for (int i = 0; i < N; i++)
                thread_join(&t[i]);
        thread_join(&tn);
        rpc_server_stats(s.rpc, &st);
        server_stop(&s);
        hs_workers = 0;
        queued = 0;
        deadline = 0;
        assert_true(newcomer.ok);
        assert_int_equal(calls[0].result, 0);
        assert_int_equal(calls[1].result, 0);
        assert_int_not_equal(calls[2].result, 0);
        assert_int_equal(st.handshakes_closed, 1);
}

/* GET /v1/hold from the test's client (attesting nothing), as a node's retry would ask. */
typedef struct HoldCall {
        const char *base;
        AtlsContext *c;
        int result;
        long status;
} HoldCall;

static void *hold_call_main(void *arg)
{
        HoldCall *h = arg;
        json_t *resp = NULL;
        RpcClientConfig cfg;

        rpc_client_config_defaults(&cfg);
        cfg.connect_timeout_ms = 60 * 1000;
        cfg.total_timeout_ms = 90 * 1000;
        h->result = rpc_call(h->c, &cfg, "GET", h->base, "/v1/hold", NULL, false, &h->status, &resp,
                             NULL);
        if (h->result == 0 && !json_is_string(json_object_get(resp, "held")))
                h->result = -EBADMSG;
        json_decref(resp);
        return NULL;
}

/* A client that sends a whole GET /v1/hold over TLS from source and then waits (or closes). */
typedef struct Raw {
        SSL *ssl;
        int fd;
} Raw;

static void raw_request(Server *s, AtlsContext *c, const char *source, Raw *ret)
{
        static const char req[] = "GET /v1/hold HTTP/1.1\r\nHost: x\r\n\r\n";

        ret->fd = tcp_from(s, source);
        assert_true(ret->fd >= 0);
        ret->ssl = SSL_new(atls_context_ssl_ctx(c));
        assert_non_null(ret->ssl);
        assert_int_equal(SSL_set_fd(ret->ssl, ret->fd), 1);
        assert_int_equal(SSL_connect(ret->ssl), 1);
        assert_int_equal(SSL_write(ret->ssl, req, (int) strlen(req)), (int) strlen(req));
}

/* The client gives up: its socket closed without reading the server's session tickets, as a
 * client whose own timeout ran out does (the server sees a reset: unread bytes were left). */
static void raw_close(Raw *r)
{
        SSL_free(r->ssl);
        (void) close(r->fd);
}

/* The client closes its sending side only: the server sees an end of file, no reset. */
static void raw_end(Raw *r)
{
        assert_int_equal(shutdown(r->fd, SHUT_WR), 0);
}

static void running_wait(int want)
{
        for (int i = 0; i < 6000 && atomic_load(&hold_running) != want; i++)
                usleep(10 * 1000);
        assert_int_equal(atomic_load(&hold_running), want);
}

/* What a hold test started (test_teardown() finishes it when the test failed half-way). */
static Server hold_server;
static AtlsContext *hold_client;
static HoldCall hold_calls_of[2];
static pthread_t hold_threads[2];

static void hold_start(size_t i)
{
        hold_calls_of[i] = (HoldCall){ .base = hold_server.base, .c = hold_client, .result = -1 };
        thread_start(&hold_threads[i], NULL, hold_call_main, &hold_calls_of[i]);
}

static void hold_join(size_t i)
{
        thread_join(&hold_threads[i]);
}

static int hold_setup(void **state)
{
        workers = 1;
        queued = 4;
        hold_reset(false);
        hold_client = client(false);
        server_start(&hold_server, false, 0, 0);
        return 0;
}

/* After every test, passed or failed half-way: see server_running. */
static int test_teardown(void **state)
{
        gate_set(false);
        hold_reset(true);
        if (server_running)
                server_stop(server_running);
        while (n_threads_started > 0)
                thread_join(threads_started[n_threads_started - 1]);
        hold_client = atls_context_free(hold_client);
        per_source = deadline = hs_workers = queued = slow_issue_ms = workers = 0;
        hs_burst = hs_rate = hs_burst_total = hs_rate_total = 0;
        atomic_store(&slow_issues, 0);
        return 0;
}

/* One worker held by a first client's request; a second client's request waits for it, and
 * that client closes its connection (its own timeout ran out; a reset here, an end of file in
 * the test below): its request is dropped from the queue, counted, and never run. A third
 * client, who stays, is answered once the worker is free. The handler runs twice, not three
 * times. (Before, the abandoned request was run, and a client asking again queued behind its
 * own abandoned request.) */
static void test_rpc_queued_request_of_a_client_that_closed_is_dropped_never_run(void **state)
{
        Server *s = &hold_server;
        RpcServerStats st;
        Raw gone;

        hold_start(0);
        running_wait(1);

        raw_request(s, hold_client, "127.0.0.2", &gone);
        stats_wait(s, STATS_JOBS_WAITING, 1);
        raw_close(&gone);
        stats_wait(s, STATS_JOBS_DROPPED, 1);
        stats_wait(s, STATS_JOBS_WAITING, 0);

        hold_start(1);
        stats_wait(s, STATS_JOBS_WAITING, 1);
        hold_reset(true);
        hold_join(0);
        hold_join(1);
        for (size_t i = 0; i < 2; i++) {
                assert_int_equal(hold_calls_of[i].result, 0);
                assert_int_equal(hold_calls_of[i].status, 200);
        }
        assert_int_equal(atomic_load(&hold_calls), 2);
        rpc_server_stats(s->rpc, &st);
        assert_int_equal(st.jobs_dropped, 1);
        assert_int_equal(st.replies_discarded, 0);
        assert_int_equal(st.jobs_waiting, 0);
}

/* A client that closes while its request's handler runs (an end of file here; a reset in the
 * test above): the handler is finished (what it did stands; a retry is answered from it: "the
 * same ticket again"), its answer is discarded, not written; the server goes on serving: a
 * client queued behind it is answered. */
static void
test_rpc_request_whose_client_closed_while_it_ran_is_finished_answer_discarded(void **state)
{
        Server *s = &hold_server;
        RpcServerStats st;
        Raw gone;

        raw_request(s, hold_client, "127.0.0.2", &gone);
        running_wait(1);
        hold_start(0);
        stats_wait(s, STATS_JOBS_WAITING, 1);
        raw_end(&gone);
        stats_wait(s, STATS_REPLIES_DISCARDED, 1);
        raw_close(&gone);
        hold_reset(true);
        hold_join(0);
        assert_int_equal(hold_calls_of[0].result, 0);
        assert_int_equal(hold_calls_of[0].status, 200);
        /* Both ran to the end: the one whose client left was not cut short. */
        assert_int_equal(atomic_load(&hold_calls), 2);
        running_wait(0);
        rpc_server_stats(s->rpc, &st);
        assert_int_equal(st.jobs_dropped, 0);
        assert_int_equal(st.replies_discarded, 1);
        /* Its connection is freed once its answer is discarded (no reply kept it open). */
        for (int i = 0; i < 6000 && rpc_server_connections(s->rpc) > 0; i++)
                usleep(10 * 1000);
        assert_int_equal(rpc_server_connections(s->rpc), 0);
}

static void test_rpc_sigterm_stops_the_server_gracefully(void **state)
{
        static Server s;

        server_start(&s, false, 0, 0);
        usleep(100 * 1000); /* let the loop install its signal handler */
        assert_int_equal(kill(getpid(), SIGTERM), 0);
        assert_int_equal(pthread_join(s.thread, NULL), 0);
        server_running = NULL;
        assert_int_equal(s.result, 0);
        s.rpc = rpc_server_free(s.rpc);
        s.atls = atls_context_free(s.atls);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_rpc_mutual_request_round_trips, test_teardown),
                cmocka_unit_test_teardown(test_rpc_errors_are_json_with_status, test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_refusal_carries_only_its_code_and_log_never_what_the_handler_built,
                        test_teardown),
                cmocka_unit_test_teardown(test_rpc_oversized_request_body_is_refused_with_413,
                                          test_teardown),
                cmocka_unit_test_teardown(test_rpc_client_refuses_server_failing_attestation,
                                          test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_client_connects_from_the_source_address_it_is_given,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_slow_client_is_dropped_after_timeout_while_others_are_served,
                        test_teardown),
                cmocka_unit_test_teardown(test_rpc_connection_limit_refuses_extra_connections,
                                          test_teardown),
                cmocka_unit_test_teardown(test_rpc_client_dripping_bytes_is_closed_at_the_deadline,
                                          test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_unsupported_http_version_is_answered_505_in_http11, test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_request_dripped_after_the_handshake_is_closed_at_the_deadline,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_per_source_cap_closes_one_address_while_another_is_served,
                        test_teardown),
                cmocka_unit_test_teardown(test_rpc_200_parallel_clients_all_succeed, test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_memory_stays_flat_over_5000_sequential_connections, test_teardown),
                cmocka_unit_test_teardown(test_rpc_slow_evidence_issuing_holds_up_no_other_client,
                                          test_teardown),
                cmocka_unit_test_teardown(test_rpc_slow_handshakes_run_concurrently_not_in_series,
                                          test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_handshake_step_past_the_deadline_makes_no_evidence, test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_full_handshake_queue_closes_new_connections_at_once,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_another_address_waits_one_turn_behind_a_flooding_address,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_one_address_runs_at_most_half_the_handshake_workers,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_an_address_past_its_handshake_rate_is_delayed_and_another_is_not,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_an_address_reconnecting_keeps_its_spent_handshake_bucket,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_all_addresses_together_are_held_to_the_server_s_handshake_rate,
                        test_teardown),
                cmocka_unit_test_teardown(
                        test_rpc_full_handshake_queue_closes_the_newest_of_the_address_with_most_waiting,
                        test_teardown),
                cmocka_unit_test_setup_teardown(
                        test_rpc_queued_request_of_a_client_that_closed_is_dropped_never_run,
                        hold_setup, test_teardown),
                cmocka_unit_test_setup_teardown(
                        test_rpc_request_whose_client_closed_while_it_ran_is_finished_answer_discarded,
                        hold_setup, test_teardown),
                cmocka_unit_test_teardown(test_rpc_sigterm_stops_the_server_gracefully,
                                          test_teardown),
        };
        /* RPC_TEST_FILTER=<pattern> runs only the tests it names (* matches anything): one
         * test run many times under load, to prove a flake gone. */
        if (getenv("RPC_TEST_FILTER"))
                cmocka_set_test_filter(getenv("RPC_TEST_FILTER"));
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
