/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The re-attestation process: the part of continuous re-attestation that parses attacker bytes
 * (a member's TLS handshake, its HTTP answer, its JSON) and so holds no secret (docs/join.md,
 * "Privilege separation"; docs/reattestation.md). Forked from the monitor before the master
 * secret is loaded, it runs as the network process's user in the same empty root, without
 * capabilities, under the same seccomp filter: it cannot open a socket or connect anywhere. The
 * monitor opens each connection itself, to a member's recorded endpoint only, and passes it here
 * with the job (a nonce the monitor chose). What comes back is the member's evidence exactly as
 * received, its TLS key and what /v1/node said: the monitor verifies the evidence itself, so a
 * compromised process can delay or drop a result (the member then shows unreachable), never
 * make a member pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "cloister/atls.h"
#include "cloister/http-response.h"
#include "cloister/journal.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/privsep-reattest.h"
#include "cloister/sandbox.h"

#include "join-service-reattest.h"

/* Jobs at once: a member stalling its handshake holds one until its timeout, never the others;
 * beyond this many a job is answered unreachable at once ("busy"). */
#define REATTESTER_JOBS_MAX 64

typedef struct Reattester {
        int fd; /* the channel to the monitor */
        AttestVariant variant;
        pthread_mutex_t send_lock;
        pthread_mutex_t count_lock;
        unsigned running;
} Reattester;

typedef struct Job {
        Reattester *rt;
        int conn;
        char id[21];
        char name[64];
        uint8_t nonce[ATLS_NONCE_SIZE];
        unsigned timeout_ms;
        /* What the member presented (the record callback, before any verdict). */
        uint8_t *evidence;
        size_t evidence_size;
        uint8_t *spki;
        size_t spki_size;
} Job;

static uint64_t now_ms(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

static int job_nonce(void *userdata, uint8_t ret[static ATLS_NONCE_SIZE])
{
        Job *j = userdata;

        memcpy(ret, j->nonce, ATLS_NONCE_SIZE);
        return 0;
}

static int job_record(void *userdata, const uint8_t *evidence, size_t size,
                      const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                      size_t spki_size, const uint8_t binding[static ATLS_BINDING_SIZE])
{
        Job *j = userdata;

        (void) nonce;
        (void) binding;
        free(j->evidence);
        free(j->spki);
        j->evidence = malloc(size);
        j->spki = malloc(spki_size);
        if (!j->evidence || !j->spki)
                return -ENOMEM;
        memcpy(j->evidence, evidence, size);
        memcpy(j->spki, spki, spki_size);
        j->evidence_size = size;
        j->spki_size = spki_size;
        return 0;
}

/* The verdict is the monitor's (it verifies the evidence recorded above against its own policy
 * and nonce): here every evidence completes the handshake, so that a member whose measurements
 * changed is reported failed, with its evidence, rather than unreachable. */
static int job_accept(void *userdata, const uint8_t *evidence, size_t size,
                      const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        (void) userdata;
        (void) evidence;
        (void) size;
        (void) binding;
        (void) d;
        return 0;
}

/* Waits until fd is ready for events or the deadline passed (-ETIMEDOUT). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
        for (;;) {
                uint64_t now = now_ms();
                struct pollfd p = { .fd = fd, .events = events };
                int k;

                if (now >= deadline)
                        return -ETIMEDOUT;
                k = poll(&p, 1, (int) (deadline - now));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k > 0)
                        return 0;
        }
}

/* An SSL operation on a non-blocking socket, retried until the deadline. */
static int ssl_step(SSL *ssl, int k, uint64_t deadline)
{
        int e = SSL_get_error(ssl, k);

        if (e == SSL_ERROR_WANT_READ)
                return wait_fd(SSL_get_fd(ssl), POLLIN, deadline);
        if (e == SSL_ERROR_WANT_WRITE)
                return wait_fd(SSL_get_fd(ssl), POLLOUT, deadline);
        return -EPROTO;
}

static void answer_unreachable(Job *j, const char *why)
{
        PrivsepBuf b;

        privsep_buf_begin(&b, REATTEST_PRIVSEP_UNREACHABLE | PRIVSEP_REPLY, 0);
        privsep_buf_add_text(&b, j->id);
        privsep_buf_add_text(&b, why[0] ? why : "no answer");
        (void) pthread_mutex_lock(&j->rt->send_lock);
        (void) privsep_send(j->rt->fd, &b);
        (void) pthread_mutex_unlock(&j->rt->send_lock);
        privsep_buf_done(&b);
}

static void answer_evidence(Job *j, const char *name, const char *state, const char *detail)
{
        PrivsepBuf b;

        privsep_buf_begin(&b, REATTEST_PRIVSEP_ANSWERED | PRIVSEP_REPLY, 0);
        privsep_buf_add_text(&b, j->id);
        privsep_buf_add(&b, j->evidence, j->evidence_size);
        privsep_buf_add(&b, j->spki, j->spki_size);
        privsep_buf_add_text(&b, name[0] ? name : "-");
        privsep_buf_add_text(&b, state[0] ? state : "-");
        privsep_buf_add_text(&b, detail[0] ? detail : "-");
        (void) pthread_mutex_lock(&j->rt->send_lock);
        (void) privsep_send(j->rt->fd, &b);
        (void) pthread_mutex_unlock(&j->rt->send_lock);
        privsep_buf_done(&b);
}

/* A printable copy of a peer's string, cut to size. */
static void copy_printable(char *dst, size_t size, const char *src)
{
        size_t k = 0;

        for (; src && *src && k + 1 < size; src++)
                dst[k++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
        dst[k] = '\0';
}

/* GET /v1/node over the established connection: the name and state the node reports. */
static void ask_node(Job *j, SSL *ssl, uint64_t deadline, char name[static 64],
                     char state[static 32], char *detail, size_t detail_size)
{
        static const char request[] = "GET /v1/node HTTP/1.1\r\nHost: member\r\n"
                                      "Connection: close\r\n\r\n";
        _cleanup_(freep) uint8_t *buf = malloc(HTTP_RESPONSE_MAX + 1);
        _cleanup_(json_decrefp) json_t *doc = NULL;
        size_t got = 0;
        HttpResponse resp;
        Diag d;
        int k, r;

        if (!buf) {
                (void) snprintf(detail, detail_size, "out of memory");
                return;
        }
        for (;;) {
                k = SSL_write(ssl, request, (int) sizeof(request) - 1);
                if (k > 0)
                        break;
                if (ssl_step(ssl, k, deadline) < 0) {
                        (void) snprintf(detail, detail_size, "GET /v1/node: cannot send");
                        return;
                }
        }
        for (;;) {
                if (got > HTTP_RESPONSE_MAX) {
                        (void) snprintf(detail, detail_size, "GET /v1/node: answer over %u bytes",
                                        HTTP_RESPONSE_MAX);
                        return;
                }
                k = SSL_read(ssl, buf + got, (int) (HTTP_RESPONSE_MAX + 1 - got));
                if (k > 0) {
                        got += (size_t) k;
                        /* A whole answer (its Content-Length in): no need to wait for the
                         * close. */
                        if (http_response_parse(buf, got, &resp) >= 0)
                                break;
                        continue;
                }
                if (SSL_get_error(ssl, k) == SSL_ERROR_ZERO_RETURN ||
                    SSL_get_error(ssl, k) == SSL_ERROR_SYSCALL)
                        break; /* closed: the whole answer is in */
                if (ssl_step(ssl, k, deadline) < 0) {
                        (void) snprintf(detail, detail_size, "GET /v1/node: no whole answer");
                        return;
                }
        }
        r = http_response_parse(buf, got, &resp);
        if (r < 0 || resp.status != 200) {
                (void) snprintf(detail, detail_size, "GET /v1/node: %s",
                                r < 0 ? "a malformed HTTP answer" : "an HTTP error");
                return;
        }
        diag_clear(&d);
        if (json_parse_buffer(resp.body, resp.body_size, "/v1/node", &doc, &d) < 0 ||
            !json_is_object(doc)) {
                (void) snprintf(detail, detail_size, "GET /v1/node: not a JSON object");
                return;
        }
        copy_printable(name, 64, json_string_value(json_object_get(doc, "node")));
        copy_printable(state, 32, json_string_value(json_object_get(doc, "state")));
}

static void *job_thread(void *arg)
{
        Job *j = arg;
        Reattester *rt = j->rt;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        AtlsVerifier v = { .variant = rt->variant, .verify = job_accept };
        uint64_t deadline = now_ms() + j->timeout_ms;
        char why[REATTEST_PRIVSEP_DETAIL_MAX - 1] = "", name[64] = "", state[32] = "";
        SSL *ssl = NULL;
        socklen_t len = sizeof(int);
        int err = 0, k, r;

        v.record = job_record;
        v.record_userdata = j;
        /* The connection the monitor opened may still be connecting. */
        r = wait_fd(j->conn, POLLOUT, deadline);
        if (r >= 0 && (getsockopt(j->conn, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0))
                r = -(err ?: errno);
        if (r < 0) {
                (void) snprintf(why, sizeof(why), "cannot connect: %s",
                                r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
                goto done;
        }
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls);
        if (r >= 0)
                r = atls_context_set_nonce_source(atls, job_nonce, j);
        ssl = r >= 0 ? SSL_new(atls_context_ssl_ctx(atls)) : NULL;
        /* The peer closing without close_notify after its answer is an end, not an error. */
        if (ssl)
                SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
        if (!ssl || SSL_set_fd(ssl, j->conn) != 1) {
                (void) snprintf(why, sizeof(why), "cannot set up TLS");
                goto done;
        }
        for (;;) {
                k = SSL_connect(ssl);
                if (k == 1)
                        break;
                r = ssl_step(ssl, k, deadline);
                if (r < 0) {
                        if (r == -ETIMEDOUT)
                                (void) snprintf(why, sizeof(why),
                                                "the TLS handshake did not finish within %u ms",
                                                j->timeout_ms);
                        else
                                atls_describe_failure(ssl, why, sizeof(why));
                        break;
                }
        }
        /* Evidence seen: the member answered, whatever else fails after. */
        if (j->evidence) {
                char detail[REATTEST_PRIVSEP_DETAIL_MAX - 1] = "";
                if (k == 1)
                        ask_node(j, ssl, deadline, name, state, detail, sizeof(detail));
                answer_evidence(j, name, state, detail);
                goto out;
        }
        if (!why[0])
                (void) snprintf(why, sizeof(why), "no evidence in the handshake");
done:
        answer_unreachable(j, why);
out:
        if (ssl)
                SSL_free(ssl);
        (void) close(j->conn);
        free(j->evidence);
        free(j->spki);
        free(j);
        (void) pthread_mutex_lock(&rt->count_lock);
        rt->running--;
        (void) pthread_mutex_unlock(&rt->count_lock);
        return NULL;
}

/* The socket comes alone, one byte with SCM_RIGHTS, just before its job. */
static int recv_conn(int fd, int *ret)
{
        char byte, control[CMSG_SPACE(sizeof(int))] = {};
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control,
                             .msg_controllen = sizeof(control) };
        struct cmsghdr *c;
        ssize_t k;

        do
                k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        while (k < 0 && errno == EINTR);
        if (k == 0)
                return -ECONNRESET;
        if (k < 0)
                return -errno;
        c = CMSG_FIRSTHDR(&mh);
        if (byte != 'C' || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len != CMSG_LEN(sizeof(int)))
                return -EBADMSG;
        memcpy(ret, CMSG_DATA(c), sizeof(int));
        return 0;
}

static int parse_decimal(const char *s, unsigned max, unsigned *ret)
{
        unsigned long v;
        char *end;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v == 0 || v > max)
                return -EBADMSG;
        *ret = (unsigned) v;
        return 0;
}

__attribute__((noreturn)) void reattest_process_main(int fd, AttestVariant variant)
{
        Reattester rt = { .fd = fd, .variant = variant };
        pthread_attr_t attr;

        (void) pthread_mutex_init(&rt.send_lock, NULL);
        (void) pthread_mutex_init(&rt.count_lock, NULL);
        (void) pthread_attr_init(&attr);
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (;;) {
                uint8_t *buf = NULL;
                size_t size = 0;
                PrivsepMsg m;
                Job *j;
                pthread_t t;
                int conn = -1, r;
                bool busy;

                r = recv_conn(fd, &conn);
                if (r >= 0)
                        r = privsep_recv(fd, &buf, &size);
                if (r >= 0)
                        r = privsep_parse(buf, size, reattest_privsep_jobs, reattest_privsep_n_jobs,
                                          &m);
                if (r >= 0 && (m.op & PRIVSEP_REPLY))
                        r = -EBADMSG;
                j = r >= 0 ? calloc(1, sizeof(Job)) : NULL;
                if (j) {
                        *j = (Job){ .rt = &rt, .conn = conn };
                        (void) snprintf(j->id, sizeof(j->id), "%s", privsep_text(&m, 0));
                        memcpy(j->nonce, m.fields[1].data, ATLS_NONCE_SIZE);
                        (void) snprintf(j->name, sizeof(j->name), "%s", privsep_text(&m, 2));
                        if (parse_decimal(privsep_text(&m, 4), 60000, &j->timeout_ms) < 0)
                                j->timeout_ms = 10000;
                }
                privsep_wipe_free(buf, size);
                if (r == -ECONNRESET)
                        _exit(0); /* the monitor is gone */
                if (r < 0 || !j) {
                        log_error("join-service: re-attestation: a job from the monitor is "
                                  "refused (%s)",
                                  strerror(-(r < 0 ? r : -ENOMEM)));
                        if (conn >= 0)
                                (void) close(conn);
                        free(j);
                        if (r != -ENOMEM && r < 0)
                                _exit(1);
                        continue;
                }
                (void) pthread_mutex_lock(&rt.count_lock);
                busy = rt.running >= REATTESTER_JOBS_MAX;
                if (!busy)
                        rt.running++;
                (void) pthread_mutex_unlock(&rt.count_lock);
                if (busy || pthread_create(&t, &attr, job_thread, j) != 0) {
                        if (!busy) {
                                (void) pthread_mutex_lock(&rt.count_lock);
                                rt.running--;
                                (void) pthread_mutex_unlock(&rt.count_lock);
                        }
                        answer_unreachable(j, "the re-attestation process is busy");
                        (void) close(j->conn);
                        free(j);
                }
        }
}

int reattest_fork(AttestVariant variant, const char *root, uid_t uid, gid_t gid, pid_t *ret_pid,
                  int *ret_fd)
{
        pid_t self = getpid(), child;
        int pair[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        fflush(stdout);
        fflush(stderr);
        child = fork();
        if (child < 0) {
                r = -errno;
                (void) close(pair[0]);
                (void) close(pair[1]);
                return r;
        }
        if (child == 0) {
                int keep[5] = { 0, 1, 2, pair[1], journal_socket_fd() };

                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != self)
                        _exit(1);
                /* A member closing its end while an answer is written must not kill the
                 * process (and every other member's attempt with it): EPIPE, not SIGPIPE. */
                (void) signal(SIGPIPE, SIG_IGN);
                (void) close(pair[0]);
                /* Nothing it was not given; confined as the network process is. */
                r = sandbox_close_other_fds(keep, ELEMENTSOF(keep));
                if (r >= 0)
                        r = sandbox_drop_privileges(root, uid, gid);
                if (r >= 0 && getppid() != self)
                        r = -ESRCH;
                if (r >= 0) {
                        /* OpenSSL reads its configuration once, before the filter forbids
                         * opening files. */
                        SSL_CTX *warm = SSL_CTX_new(TLS_client_method());
                        SSL_CTX_free(warm);
                        r = sandbox_network_filter();
                }
                if (r < 0) {
                        log_error_errno(r, "Cannot confine the re-attestation process: %m");
                        _exit(1);
                }
                reattest_process_main(pair[1], variant);
        }
        (void) close(pair[1]);
        *ret_pid = child;
        *ret_fd = pair[0];
        return 0;
}
