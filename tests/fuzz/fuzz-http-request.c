/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The servers' request path (lib/rpc/rpc-server.c) on one connection's bytes: a real RpcServer
 * (evhttp over OpenSSL bufferevents, its handshake and request workers, its deadline, per-
 * connection byte limits and routing) runs in a thread on a loopback port; each input is one
 * aTLS connection whose application data is the input, after which the client sends
 * close_notify and reads until the server closes. So libevent's HTTP parser (request line,
 * headers, Content-Length, chunked bodies, pipelining) and ours after it (path and query
 * split, method and route checks, the attested-client gate, the JSON body, the worker hand-off,
 * refusal bodies) all run on attacker bytes.
 *
 * Input: one byte of options (bit 0: the client attests, reaching the routes that need an
 * attested client), then the bytes sent after the handshake.
 *
 * Asserted: the server answers with exactly one well-formed HTTP response (the strict parser of
 * lib/rpc/rpc-http-response.c) or closes without one, within the deadline; a handler only ever
 * sees a route's method and path, a path without its query and a JSON body where one was sent;
 * nothing a handler built besides the keys a refusal may carry reaches the client; and the
 * server lets go of every connection (its count returns to zero).
 *
 * What is not the product here: the evidence. The server attests with a document that is just
 * the aTLS binding, and both sides' verifiers accept exactly that binding: the evidence
 * verifiers have their own target (fuzz-evidence); this one is about what follows the
 * handshake. The routes are the join service's and the bootstrapper's paths, methods and
 * attested-client flags; their handlers (kubeadm, the monitor, scrypt) are not run: each checks
 * what the server gave it and answers or refuses.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cloister/atls.h"
#include "cloister/http-response.h"
#include "cloister/json.h"
#include "cloister/macro.h"
#include "cloister/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a handler builds besides what a refusal may carry: it must never reach the client. */
#define NOT_SENT "TICKET-NOT-SENT"
/* The client's bound on the server's answer or close: above the server's deadline (2 s) with
 * room for a loaded machine, below libFuzzer's -timeout. */
#define CLIENT_WAIT_SEC 8
#define ANSWER_MAX      (256U * 1024U)
/* How long the client waits for a first answer before it ends its side of the connection. */
#define QUIET_MS 25

static const char evidence_tag[] = "fuzz-http-request evidence:";

/* The evidence document: the tag and the binding, nothing else (see above). */
static int issue(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                 const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        size_t n = strlen(evidence_tag);
        uint8_t *e = malloc(n + ATLS_BINDING_SIZE);

        if (!e)
                return -ENOMEM;
        memcpy(e, evidence_tag, n);
        memcpy(e + n, binding, ATLS_BINDING_SIZE);
        *ret = e;
        *ret_size = n + ATLS_BINDING_SIZE;
        return 0;
}

static int verify(void *userdata, const uint8_t *evidence, size_t size,
                  const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        size_t n = strlen(evidence_tag);

        if (size != n + ATLS_BINDING_SIZE || memcmp(evidence, evidence_tag, n) != 0 ||
            memcmp(evidence + n, binding, ATLS_BINDING_SIZE) != 0)
                return diag_fail(d, -EKEYREJECTED, "binding", -1, "evidence not bound");
        return 0;
}

/* Every route of the join service and the bootstrapper, by path: what the server hands a handler
 * must match the route. GETs answer; POSTs answer what they were given, /v1/init refuses with
 * the extra keys a refusal may carry and one it must not send. */
static int handle(void *userdata, const RpcRequest *req, json_t **ret, char *detail, size_t n);

static const RpcRoute routes[] = {
        { "GET", "/v1/node", handle },
        { "POST", "/v1/join", handle, .attested_client = true },
        { "POST", "/v1/rejoin", handle, .attested_client = true },
        { "GET", "/v1/members", handle },
        { "POST", "/v1/init", handle },
        { "GET", "/v1/audit", handle },
        { "POST", "/v1/policy", handle },
        { "POST", "/v1/recover", handle },
        { "POST", "/v1/log", handle },
        {},
};

static int handle(void *userdata, const RpcRequest *req, json_t **ret, char *detail, size_t n)
{
        const RpcRoute *route = NULL;

        for (const RpcRoute *rt = routes; rt->method; rt++)
                if (strcmp(rt->path, req->path) == 0 && strcmp(rt->method, req->method) == 0)
                        route = rt;
        assert(route);
        assert(!strchr(req->path, '?'));
        assert(req->ssl);
        assert(!route->attested_client || atls_peer_verified(req->ssl));
        assert(req->peer && strncmp(req->peer, "127.0.0.1:", 10) == 0);
        /* A POST always has a body (the server refuses one without); a body is JSON. */
        assert(strcmp(req->method, "POST") != 0 || req->body);
        if (strcmp(req->path, "/v1/init") == 0) {
                *ret = json_pack("{s:s,s:s,s:b,s:s}", "code", "wrong-secret", "nodeLog", "line\n",
                                 "nodeLogDropped", 0, "ticket", NOT_SENT);
                (void) snprintf(detail, n, "the init secret is wrong");
                return *ret ? -EPERM : -ENOMEM;
        }
        if (req->body) {
                *ret = json_pack("{s:O,s:s?}", "got", req->body, "query", req->query);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = json_pack("{s:s,s:s?}", "path", req->path, "query", req->query);
        return *ret ? 0 : -ENOMEM;
}

static RpcServer *server;
static AtlsContext *client_plain, *client_attesting;
static uint16_t port;

static void *server_main(void *arg)
{
        (void) rpc_server_run(server);
        abort(); /* the server never stops while the fuzzer runs */
}

static void setup(void)
{
        AtlsAttester a = { ATTEST_VARIANT_QEMU_VTPM, issue, NULL };
        AtlsVerifier v = { .variant = ATTEST_VARIANT_QEMU_VTPM, .verify = verify };
        AtlsContext *server_atls = NULL;
        RpcServerConfig cfg;
        pthread_t t;

        (void) signal(SIGPIPE, SIG_IGN);
        rpc_server_config_defaults(&cfg);
        /* The join service's shape (workers, handshake workers, unattested clients allowed),
         * with limits small enough that inputs of libFuzzer's size reach them. */
        cfg.max_body = 8U * 1024U;
        cfg.max_headers = 4U * 1024U;
        cfg.timeout_sec = 2;
        cfg.deadline_sec = 2;
        cfg.workers = 2;
        cfg.handshake_workers = 2;
        cfg.handshake_rate = 0; /* no rate: every input is a new handshake from 127.0.0.1 */
        cfg.handshake_rate_total = 0;
        if (atls_context_new(ATLS_ROLE_SERVER, &a, &v, &server_atls) < 0 ||
            atls_context_allow_unattested_clients(server_atls) < 0 ||
            rpc_server_new(&cfg, server_atls, routes, NULL, &server) < 0 ||
            atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &client_plain) < 0 ||
            atls_context_new(ATLS_ROLE_CLIENT, &a, &v, &client_attesting) < 0 ||
            pthread_create(&t, NULL, server_main, NULL) != 0) {
                fprintf(stderr, "fuzz-http-request: cannot start the server\n");
                abort();
        }
        port = rpc_server_port(server);
}

static double now(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* One connection: handshake, the bytes, then everything the server sends until it closes.
 * Returns the bytes read (into buf, at most size), or -1 if the server neither answered nor
 * closed in CLIENT_WAIT_SEC; -2 if the handshake itself failed (not this target's concern, not
 * asserted). */
static long exchange(bool attest, const uint8_t *data, size_t size, uint8_t *buf, size_t bufsize)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        struct timeval tv = { .tv_sec = 1 };
        double start = now();
        size_t got = 0;
        long result = -2;
        SSL *ssl = NULL;
        int fd;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert(fd >= 0);
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                goto out;
        ssl = SSL_new(atls_context_ssl_ctx(attest ? client_attesting : client_plain));
        assert(ssl);
        SSL_set_fd(ssl, fd);
        while (SSL_connect(ssl) != 1) {
                int e = SSL_get_error(ssl, -1);
                if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
                    now() - start > CLIENT_WAIT_SEC)
                        goto out;
        }
        /* The server may close before it has read everything (a refusal, a limit): then the
         * rest is not sent. */
        for (size_t off = 0; off < size;) {
                int n = SSL_write(ssl, data + off, (int) MIN(size - off, (size_t) 16384));
                if (n <= 0) {
                        int e = SSL_get_error(ssl, n);
                        if (e == SSL_ERROR_WANT_WRITE && now() - start < CLIENT_WAIT_SEC)
                                continue;
                        break;
                }
                off += (size_t) n;
        }
        /* Read until the server closes. A request may be incomplete (a short body, headers
         * without their end): when the server has sent nothing for QUIET_MS, close_notify
         * tells it the request ends here, and it must then answer or close. */
        for (bool ended = false;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int n, e;

                if (SSL_pending(ssl) == 0 && poll(&p, 1, ended ? 1000 : QUIET_MS) == 0) {
                        if (now() - start > CLIENT_WAIT_SEC) {
                                result = -1; /* neither an answer nor a close */
                                goto out;
                        }
                        if (!ended) {
                                ERR_clear_error();
                                (void) SSL_shutdown(ssl);
                                ended = true;
                        }
                        continue;
                }
                n = SSL_read(ssl, buf + got, (int) MIN(bufsize - got, (size_t) 16384));
                if (n > 0) {
                        got += (size_t) n;
                        if (got == bufsize)
                                break;
                        continue;
                }
                e = SSL_get_error(ssl, n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                        continue;
                break; /* closed (cleanly or not) */
        }
        result = (long) got;
out:
        ERR_clear_error();
        SSL_free(ssl);
        (void) close(fd);
        return result;
}

/* One well-formed response (the strict parser of lib/rpc/rpc-http-response.c), with two
 * allowances for what the HTTP version makes of it:
 * - an answer to an HTTP/1.0 request has no Content-Length: its body ends with the connection
 *   (RFC 9112 section 6.3, rule 8), so it is parsed with the length it has;
 * - libevent's own error pages (text/html: a request it could not parse, a body over the
 *   limit) repeat whatever version the request line named, "HTTP/0.1" say, which libevent
 *   accepts: that is libevent's, not this project's; the server's own answers (JSON) must
 *   say HTTP/1.0 or HTTP/1.1 (lib/rpc/rpc-server.c answers other versions 505 in HTTP/1.1). */
static bool well_formed(const uint8_t *answer, size_t n)
{
        static uint8_t copy[ANSWER_MAX + 64];
        const uint8_t *sp, *eol, *end;
        HttpResponse resp;
        char field[64];
        size_t head, body, m = 0;
        int k;

        if (http_response_parse(answer, n, &resp) == 0)
                return true;
        sp = memchr(answer, ' ', n);
        eol = memmem(answer, n, "\r\n", 2);
        end = memmem(answer, n, "\r\n\r\n", 4);
        if (!sp || !eol || !end || sp > eol || memcmp(answer, "HTTP/", 5) != 0)
                return false;
        if (memcmp(answer, "HTTP/1.0 ", 9) == 0 || memcmp(answer, "HTTP/1.1 ", 9) == 0)
                memcpy(copy, answer, (size_t) (sp - answer)), m = (size_t) (sp - answer);
        else if (memmem(answer, (size_t) (end - answer) + 2, "Content-Type: text/html\r\n", 25))
                memcpy(copy, "HTTP/1.1", 8), m = 8;
        else
                return false;
        head = (size_t) (eol - answer) + 2;
        memcpy(copy + m, sp, head - (size_t) (sp - answer));
        m += head - (size_t) (sp - answer);
        if (!memmem(answer, (size_t) (end - answer), "Content-Length:", 15)) {
                if (memcmp(answer, "HTTP/1.1 ", 9) == 0)
                        return false; /* HTTP/1.1 answers always carry their length */
                body = n - ((size_t) (end - answer) + 4);
                k = snprintf(field, sizeof(field), "Content-Length: %zu\r\n", body);
                memcpy(copy + m, field, (size_t) k);
                m += (size_t) k;
        }
        memcpy(copy + m, answer + head, n - head);
        return http_response_parse(copy, m + n - head, &resp) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        static uint8_t answer[ANSWER_MAX];
        double start;
        long n;

        (void) pthread_once(&once, setup);
        if (size < 1)
                return 0;
        n = exchange(data[0] & 1, data + 1, size - 1, answer, sizeof(answer));
        if (n == -1) {
                fprintf(stderr,
                        "fuzz-http-request: the server neither answered nor closed in "
                        "%d s\n",
                        CLIENT_WAIT_SEC);
                abort();
        }
        if (getenv("FUZZ_HTTP_REQUEST_SHOW"))
                fprintf(stderr, "--- %ld bytes:\n%.*s\n", n, (int) MAX(n, 0L),
                        (const char *) answer);
        /* Interim answers (RFC 9110 section 15.2: 100 Continue to "Expect: 100-continue") come
         * before the one response. */
        while (n >= 25 && memcmp(answer, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0) {
                memmove(answer, answer + 25, (size_t) n - 25);
                n -= 25;
        }
        if (n > 0) {
                /* One response, then the close (every answer says Connection: close). */
                if (!well_formed(answer, (size_t) n)) {
                        fprintf(stderr, "fuzz-http-request: not one well-formed response:\n%.*s\n",
                                (int) MIN((size_t) n, (size_t) 2048), (const char *) answer);
                        abort();
                }
                /* (Unless the client sent it itself: handlers echo what they are given.) */
                assert(!memmem(answer, (size_t) n, NOT_SENT, strlen(NOT_SENT)) ||
                       memmem(data, size, NOT_SENT, strlen(NOT_SENT)));
        }
        /* The server lets go of the connection: its count returns to zero. */
        start = now();
        while (rpc_server_connections(server) > 0) {
                if (now() - start > CLIENT_WAIT_SEC) {
                        fprintf(stderr,
                                "fuzz-http-request: the server still holds %u "
                                "connection(s) after the client closed\n",
                                rpc_server_connections(server));
                        abort();
                }
                (void) usleep(200);
        }
        return 0;
}
