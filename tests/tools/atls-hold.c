/* SPDX-License-Identifier: Apache-2.0 */
/*
 * atls-hold: hostile clients that speak aTLS without evidence of their own (as anyone who can
 * reach a join service can), for the tests of servers under attack.
 *
 *   atls-hold --policy P --cluster-id HEX --port PORT --source ADDR --count N
 *             --mode large-body|wrong-init|handshakes --seconds S
 *
 * large-body: N connections from ADDR, each sending the headers of a 1 MiB POST and most of its
 * body, then holding it. wrong-init: N connections in turn, each a POST /v1/init with a random
 * (wrong) master secret, again and again. Each verifies the server against the policy first (so
 * the load is what a real client causes). handshakes: N connections at once, each sending an
 * aTLS ClientHello (the server makes evidence, a TPM quote, for each) and closed as soon as the
 * server's answer comes, then replaced: as many handshakes as the server will begin, for
 * nothing. Runs S seconds, then prints one JSON line:
 * {"connected": n, "closedByServer": n, "answers": {"4xx": n, "other": n}, "flights": n}
 * (flights: server answers to ClientHellos). SIGTERM ends the run early, with the same line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cloister/attest-atls.h"
#include "cloister/base64.h"
#include "cloister/hex.h"
#include "cloister/kdf.h"

#define HOLD_MAX   512
#define BODY_BYTES (1024 * 1024 - 4096)

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
        stopping = 1;
}

static SSL *hold_connect(SSL_CTX *ctx, const char *source, uint16_t port)
{
        struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        SSL *ssl;

        if (fd < 0)
                return NULL;
        /* Never blocked for long: a server that stops reading or answering is counted, and
         * the run ends on time. */
        {
                struct timeval tv = { 5, 0 };
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        dst.sin_port = htons(port);
        if (inet_pton(AF_INET, source, &src.sin_addr) != 1 ||
            inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *) &src, sizeof(src)) < 0 ||
            connect(fd, (struct sockaddr *) &dst, sizeof(dst)) < 0) {
                close(fd);
                return NULL;
        }
        ssl = SSL_new(ctx);
        if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
                SSL_free(ssl);
                close(fd);
                return NULL;
        }
        return ssl;
}

static void hold_close(SSL *ssl)
{
        int fd = SSL_get_fd(ssl);

        SSL_free(ssl);
        close(fd);
}

/* Whether the server closed the connection (readable with end of file or an error). */
static bool hold_closed(SSL *ssl)
{
        struct pollfd p = { .fd = SSL_get_fd(ssl), .events = POLLIN };
        char buf[256];

        if (poll(&p, 1, 0) <= 0)
                return false;
        return SSL_read(ssl, buf, sizeof(buf)) <= 0;
}

/* handshakes mode: one connection's ClientHello sent, waiting for the server's answer. */
typedef struct Hello {
        SSL *ssl;
        int fd;
        bool sent;
        time_t since;
        struct timespec retry; /* after a refused connection: not before this (no busy loop) */
} Hello;

static bool hello_may_retry(const Hello *h)
{
        struct timespec now;

        (void) clock_gettime(CLOCK_MONOTONIC, &now);
        return now.tv_sec > h->retry.tv_sec ||
               (now.tv_sec == h->retry.tv_sec && now.tv_nsec >= h->retry.tv_nsec);
}

/* A connection refused or closed before its ClientHello went out: the next in 200 ms. */
static void hello_back_off(Hello *h)
{
        (void) clock_gettime(CLOCK_MONOTONIC, &h->retry);
        h->retry.tv_nsec += 200 * 1000000L;
        if (h->retry.tv_nsec >= 1000000000L) {
                h->retry.tv_sec++;
                h->retry.tv_nsec -= 1000000000L;
        }
}

static void hello_begin(SSL_CTX *ctx, const char *source, uint16_t port, Hello *h)
{
        struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        *h = (Hello){ .fd = -1 };
        if (fd < 0) {
                hello_back_off(h);
                return;
        }
        dst.sin_port = htons(port);
        if (inet_pton(AF_INET, source, &src.sin_addr) != 1 ||
            inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *) &src, sizeof(src)) < 0 ||
            (connect(fd, (struct sockaddr *) &dst, sizeof(dst)) < 0 && errno != EINPROGRESS)) {
                close(fd);
                hello_back_off(h);
                return;
        }
        h->ssl = SSL_new(ctx);
        if (!h->ssl || SSL_set_fd(h->ssl, fd) != 1) {
                SSL_free(h->ssl);
                close(fd);
                h->ssl = NULL;
                hello_back_off(h);
                return;
        }
        SSL_set_connect_state(h->ssl);
        h->fd = fd;
        h->since = time(NULL);
}

static void hello_end(Hello *h, bool refused)
{
        if (h->ssl)
                SSL_free(h->ssl);
        if (h->fd >= 0)
                close(h->fd);
        *h = (Hello){ .fd = -1 };
        if (refused)
                hello_back_off(h);
}

static int wrong_init(SSL *ssl, char *status, size_t n)
{
        uint8_t raw[32];
        char *key, req[2048], line[256];
        int len, got;

        if (RAND_bytes(raw, sizeof(raw)) != 1 || base64_encode(raw, sizeof(raw), &key) < 0)
                return -1;
        len = snprintf(req, sizeof(req),
                       "{\"masterSecret\":\"%s\",\"salt\":\"%s\",\"measurementSalt\":\"%s\","
                       "\"clusterName\":\"x\",\"kubernetesVersion\":\"v1.30.0\",\"initSecret\":"
                       "\"%s\",\"serviceCidr\":\"10.96.0.0/12\"}",
                       key, key, key, key);
        free(key);
        got = snprintf(line, sizeof(line),
                       "POST /v1/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n",
                       len);
        if (SSL_write(ssl, line, got) != got || SSL_write(ssl, req, len) != len)
                return -1;
        got = SSL_read(ssl, line, sizeof(line) - 1);
        if (got < 12)
                return -1;
        (void) snprintf(status, n, "%.3s", line + 9);
        return 0;
}

int main(int argc, char *argv[])
{
        static const struct option options[] = {
                { "policy", required_argument, NULL, 'p' },
                { "cluster-id", required_argument, NULL, 'c' },
                { "port", required_argument, NULL, 'P' },
                { "source", required_argument, NULL, 's' },
                { "count", required_argument, NULL, 'n' },
                { "mode", required_argument, NULL, 'm' },
                { "seconds", required_argument, NULL, 't' },
                {},
        };
        const char *policy_path = NULL, *cid_hex = NULL, *source = NULL, *mode = NULL;
        unsigned port = 0, count = 0, seconds = 0, connected = 0, closed = 0;
        unsigned answers_4xx = 0, answers_other = 0;
        _cleanup_(attest_policy_freep) AttestPolicy *policy = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        static SSL *held[HOLD_MAX];
        static char body[BODY_BYTES];
        uint8_t cid[CLUSTER_ID_SIZE];
        PolicyVerifier pv;
        AtlsVerifier v;
        time_t end;
        Diag d;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        policy_path = optarg;
                        break;
                case 'c':
                        cid_hex = optarg;
                        break;
                case 'P':
                        port = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        source = optarg;
                        break;
                case 'n':
                        count = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'm':
                        mode = optarg;
                        break;
                case 't':
                        seconds = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        if (!policy_path || !cid_hex || !source || !mode || port == 0 || port > 65535 ||
            count == 0 || count > HOLD_MAX || hex_decode_exact(cid_hex, cid, sizeof(cid)) < 0 ||
            (strcmp(mode, "large-body") != 0 && strcmp(mode, "wrong-init") != 0 &&
             strcmp(mode, "handshakes") != 0)) {
                fprintf(stderr, "usage: atls-hold --policy P --cluster-id HEX --port PORT "
                                "--source ADDR --count N --mode large-body|wrong-init|handshakes "
                                "--seconds S\n");
                return 2;
        }
        diag_clear(&d);
        if (attest_policy_load(policy_path, &policy, &d) < 0) {
                fprintf(stderr, "atls-hold: %s\n", d.message);
                return 2;
        }
        policy->pcrs[15] = (PcrExpectation){ .present = true };
        kdf_pcr15_expected(cid, policy->pcrs[15].expected);
        pv = (PolicyVerifier){ .policy = policy };
        v = policy_verifier(&pv);
        if (atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls) < 0)
                return 2;
        (void) signal(SIGPIPE, SIG_IGN); /* a server closing on us is what we count */
        {
                /* No SA_RESTART: a connect or read in progress returns at once. */
                struct sigaction sa = { .sa_handler = on_term };
                (void) sigaction(SIGTERM, &sa, NULL);
        }
        memset(body, ' ', sizeof(body));
        body[0] = '{';
        end = time(NULL) + seconds;
        if (strcmp(mode, "handshakes") == 0) {
                static Hello hellos[HOLD_MAX];
                static struct pollfd pfd[HOLD_MAX];
                unsigned flights = 0;

                for (unsigned i = 0; i < count; i++)
                        hellos[i] = (Hello){ .fd = -1 };
                while (!stopping && time(NULL) < end) {
                        for (unsigned i = 0; i < count; i++) {
                                Hello *h = &hellos[i];
                                if (h->fd >= 0 && time(NULL) - h->since > 10)
                                        hello_end(h, false); /* no answer in 10 s: again */
                                if (h->fd < 0 && hello_may_retry(h))
                                        hello_begin(atls_context_ssl_ctx(atls), source, port, h);
                                pfd[i] = (struct pollfd){ .fd = h->fd,
                                                          .events = h->sent ? POLLIN : POLLOUT };
                        }
                        if (poll(pfd, count, 200) < 0)
                                break;
                        for (unsigned i = 0; i < count; i++) {
                                Hello *h = &hellos[i];
                                char b;
                                if (h->fd < 0 || !pfd[i].revents)
                                        continue;
                                if (!h->sent) {
                                        /* Connected: the ClientHello goes out, then it waits. */
                                        int r = SSL_connect(h->ssl);
                                        if (r == 1 ||
                                            SSL_get_error(h->ssl, r) != SSL_ERROR_WANT_READ) {
                                                hello_end(h, true);
                                                continue;
                                        }
                                        h->sent = true;
                                        connected++;
                                        continue;
                                }
                                if (recv(h->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
                                        flights++;
                                        hello_end(h, false);
                                } else {
                                        closed++;
                                        hello_end(h, true);
                                }
                        }
                }
                for (unsigned i = 0; i < count; i++)
                        hello_end(&hellos[i], false);
                printf("{\"connected\": %u, \"closedByServer\": %u, \"answers\": {\"4xx\": 0, "
                       "\"other\": 0}, \"flights\": %u}\n",
                       connected, closed, flights);
                return 0;
        }
        while (!stopping && time(NULL) < end) {
                if (strcmp(mode, "wrong-init") == 0) {
                        char status[8] = "";
                        SSL *ssl = hold_connect(atls_context_ssl_ctx(atls), source, port);
                        if (!ssl) {
                                usleep(200 * 1000);
                                continue;
                        }
                        connected++;
                        if (wrong_init(ssl, status, sizeof(status)) == 0 && status[0] == '4')
                                answers_4xx++;
                        else
                                answers_other++;
                        hold_close(ssl);
                        continue;
                }
                /* large-body: keep count connections open, each holding most of a body. */
                for (unsigned i = 0; i < count && !stopping && time(NULL) < end; i++) {
                        char head[256];
                        int hn;
                        if (held[i] && !hold_closed(held[i]))
                                continue;
                        if (held[i]) {
                                closed++;
                                hold_close(held[i]);
                                held[i] = NULL;
                        }
                        held[i] = hold_connect(atls_context_ssl_ctx(atls), source, port);
                        if (!held[i])
                                continue;
                        connected++;
                        hn = snprintf(head, sizeof(head),
                                      "POST /v1/join HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                      "application/json\r\nContent-Length: %d\r\n\r\n",
                                      BODY_BYTES);
                        /* Most of the body, then nothing: the server holds what came. */
                        if (SSL_write(held[i], head, hn) != hn ||
                            SSL_write(held[i], body, BODY_BYTES - 8192) <= 0) {
                                closed++;
                                hold_close(held[i]);
                                held[i] = NULL;
                        }
                }
                usleep(200 * 1000);
        }
        for (unsigned i = 0; i < count; i++)
                if (held[i])
                        hold_close(held[i]);
        printf("{\"connected\": %u, \"closedByServer\": %u, \"answers\": {\"4xx\": %u, "
               "\"other\": %u}}\n",
               connected, closed, answers_4xx, answers_other);
        return 0;
}
