/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/notify.h"
#include "cloister/rpc.h"
#include "cloister/secret.h"
#include "cloister/token-bucket.h"

/* After SIGTERM: how long open connections get to finish before the loop ends anyway. */
#define RPC_DRAIN_SEC 5

struct RpcConn;
/*
 * One address's share of the server. Its handshake steps wait in its own queue, and the
 * addresses with steps waiting take turns (the server's turn list): a worker takes one step
 * of the first address in the list that may run one now, and that address goes to the end.
 * One address runs at most hs_cap steps at once, and begins handshakes (each makes evidence:
 * a TPM quote) at its token bucket's pace and the server's: an address that floods handshakes
 * delays its own, not another address's by more than a few steps.
 */
typedef struct RpcSource {
        char address[INET6_ADDRSTRLEN];
        unsigned n; /* open connections */
        struct RpcConn *hs_head, *hs_tail;
        unsigned hs_queued, hs_running;
        bool in_turn;
        struct RpcSource *turn_next;
        /* Kept while the address has no connection, until it is full again: closing and
         * reconnecting does not refill it. */
        TokenBucket handshakes;
        bool used;
} RpcSource;

/* A warning that a flood cannot turn into a flood of log lines: at most one per kind every
 * RATE_LIMIT_SEC, saying how many were held back. */
#define RATE_LIMIT_SEC 10
typedef struct RateLimit {
        time_t last;
        unsigned suppressed;
} RateLimit;

struct RpcConn;
/* A request handed to a worker thread: everything the handler reads is owned here (the TLS
 * connection's SSL object is referenced, so that a client closing early frees nothing the
 * handler still uses), and the answer comes back to the loop, which alone talks to libevent.
 * The SSL reference also keeps the connection's RpcConn (its ex_data) until the job is freed. */
typedef struct RpcJob {
        struct RpcJob *next;
        struct evhttp_request *req; /* NULL once libevent freed it with its connection */
        struct RpcConn *conn;
        bool taken; /* a worker took it (under the server's lock) */
        bool gone;  /* its client closed the connection: no answer is sent (the loop's) */
        const RpcRoute *route;
        json_t *body;
        SSL *ssl;
        char method[8];
        char *path, *query;
        char peer[INET6_ADDRSTRLEN + 8];
        json_t *response;
        int r;
        char detail[512];
} RpcJob;

typedef struct RpcJobQueue {
        RpcJob *head, *tail;
        size_t n;
} RpcJobQueue;

struct RpcConn;
/* Connections whose next handshake step waits for (todo) or came back from (done) a handshake
 * worker. */
typedef struct RpcConnQueue {
        struct RpcConn *head, *tail;
        size_t n;
} RpcConnQueue;

struct RpcServer {
        RpcServerConfig config;
        /* The worker pool (config.workers > 0): jobs wait in todo, answers in done. */
        pthread_t *threads;
        size_t n_threads;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        RpcJobQueue todo, done;
        bool quitting;
        struct event *done_event;
        /* The handshake pool: TLS handshake steps (evidence issuing and verification happen
         * inside them) wait in their address's queue (RpcSource), the addresses with steps
         * waiting in the turn list; steps come back in hs_done. Same lock as the request pool,
         * which also guards every address's queue, counts and bucket. */
        pthread_t *hs_threads;
        size_t n_hs_threads;
        pthread_cond_t hs_cond;
        RpcSource *turn_head, *turn_tail;
        size_t hs_queued; /* steps waiting, all addresses */
        size_t hs_busy;   /* workers running a step */
        unsigned hs_cap;  /* steps one address may run at once */
        TokenBucket handshakes_total;
        RpcConnQueue hs_done;
        struct event *hs_done_event;
        RpcSource *sources; /* open connections per address, max_connections slots */
        size_t n_sources;
        RateLimit limit_total, limit_source, limit_deadline, limit_evict, limit_bytes,
                limit_hs_queue, limit_hs_rate, limit_gone;
        RpcServerStats stats;
        /* Connections without a whole request yet, oldest first: at the connection limit the
         * oldest of them makes room for a new one (slow clients cannot lock others out). */
        struct RpcConn *pending_head, *pending_tail;
        /* Request bytes received on those connections (TLS records after the handshake). */
        size_t pending_bytes;
        unsigned evicting; /* closed to make room, not freed by libevent yet */
        AtlsContext *atls;
        const RpcRoute *routes;
        void *userdata;
        struct event_base *base;
        struct evhttp *http;
        struct evhttp_bound_socket *bound;
        struct event *signal_event, *stop_event, *drain_timer;
        struct sigaction old_sigterm, old_sigint;
        bool handlers_installed;
        uint16_t port;
        unsigned connections;
        bool stopping;
        struct timeval drain_deadline;
        bool signalled; /* stopped (also) by SIGTERM/SIGINT */
        bool handover;  /* stopped to hand the socket to another program: no STOPPING=1 */
};

/*
 * Where a connection's TLS handshake is. The event loop never runs a handshake step: evidence
 * issuing (in the certificate callback) and verification (in the verify callback) happen inside
 * one, and either can take seconds (a TPM quote, a policy fetched from the join service's
 * monitor). The loop only waits for the socket; a handshake worker runs each step
 * (SSL_do_handshake() until it wants more bytes or room to write), so a client that sends
 * slowly never holds a worker, and a slow step never holds the loop.
 */
typedef enum RpcHandshake {
        HS_NEW,    /* just accepted: the park event takes it out of libevent's hands */
        HS_WAIT,   /* the loop waits for its socket (io_read / io_write) */
        HS_WORKER, /* a step waits for or runs on a handshake worker: only it touches the SSL */
        HS_DONE,   /* established, or failed or refused: libevent reads and writes it */
} RpcHandshake;

/* What the server keeps per connection, in the SSL object's ex_data: its free callback fires
 * exactly when libevent frees the connection (or the last worker job lets go of it), whatever
 * path closed it, so the counts go down there. */
typedef struct RpcConn {
        RpcServer *server;
        SSL *ssl;
        struct bufferevent *bev; /* evhttp's, reading and writing once the handshake is done */
        int fd;
        struct event *park;  /* right after accept, before libevent reads: see on_park() */
        struct event *timer; /* the deadline from accept to a whole request */
        struct event *io_read, *io_write; /* the loop waiting for the socket (HS_WAIT) */
        RpcHandshake hs;
        short enabled; /* what evhttp had enabled on bev when it was parked */
        /* Written by the worker during a step, read by the loop after it (under the lock). */
        int step_result; /* 1 established, 0 wants step_want, < 0 failed */
        short step_want;
        size_t step_bytes; /* TLS record bytes received during the step */
        bool step_wrote;   /* the step wrote a record: its server flight, evidence and all */
        bool accepted, dispatched, counted, shut, evicted, refused, verified;
        int closing; /* shut, as a worker reads it (atomic): a queued step is skipped */
        struct RpcConn *prev, *next; /* in the server's pending list until dispatched */
        struct RpcConn *hs_next;     /* in its address's queue or hs_done */
        bool pending, handshaken;
        /* Under the server's lock: waiting in its address's queue; its handshake begun (its
         * first step taken: a token spent); delayed by a rate once (counted once). */
        bool hs_queued, hs_begun, hs_delayed, hs_token;
        uint64_t since_ms; /* accepted at (CLOCK_MONOTONIC) */
        size_t bytes;      /* bytes received before dispatch (TLS records, handshake too) */
        size_t hs_bytes;   /* of which the handshake's */
        RpcSource *src;    /* its address's count, once counted */
        char source[INET6_ADDRSTRLEN];
        /* Its request's job, from dispatch until the answer is sent or discarded; the watch
         * waits meanwhile for the client to close (end of file or reset: job_watch()). */
        struct RpcJob *job;
        struct event *watch;
} RpcConn;

static int conn_index = -1;
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;

static void pending_remove(RpcConn *c)
{
        RpcServer *s = c->server;

        if (!c->pending)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->pending_head = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                s->pending_tail = c->prev;
        c->prev = c->next = NULL;
        c->pending = false;
        s->pending_bytes -= MIN(s->pending_bytes, c->bytes);
}

static void pending_append(RpcConn *c)
{
        RpcServer *s = c->server;

        c->prev = s->pending_tail;
        c->next = NULL;
        if (s->pending_tail)
                s->pending_tail->next = c;
        else
                s->pending_head = c;
        s->pending_tail = c;
        c->pending = true;
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

/* An address's slot. One without connections keeps its address while its bucket is not full
 * again; a new address takes a slot without connections, one never used or full first, else
 * the one with the most tokens (losing what an address that left had spent is the price of a
 * bounded table). */
static RpcSource *source_find(RpcServer *s, const char *address, bool create)
{
        RpcSource *found = NULL, *free_slot = NULL;
        uint64_t now = now_ms(), free_milli = 0;

        (void) pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_sources && !found; i++) {
                RpcSource *src = &s->sources[i];
                bool full = !src->used || token_bucket_full(&src->handshakes, now);
                uint64_t milli = full ? UINT64_MAX : src->handshakes.milli;

                if ((src->n > 0 || !full) && strcmp(src->address, address) == 0)
                        found = src;
                else if (src->n == 0 && (!free_slot || milli > free_milli)) {
                        free_slot = src;
                        free_milli = milli;
                }
        }
        if (!found && create && free_slot) {
                found = free_slot;
                (void) snprintf(found->address, sizeof(found->address), "%s", address);
                token_bucket_init(&found->handshakes, s->config.handshake_rate,
                                  s->config.handshake_burst, now);
                found->used = true;
        }
        (void) pthread_mutex_unlock(&s->lock);
        return found;
}

static void conn_slot_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
        RpcConn *c = ptr;
        RpcServer *s;

        if (!c)
                return;
        s = c->server;
        pending_remove(c);
        if (c->evicted && s->evicting > 0)
                s->evicting--;
        if (s->connections > 0)
                s->connections--;
        if (c->counted) {
                RpcSource *src = source_find(s, c->source, false);
                if (src && src->n > 0)
                        src->n--;
        }
        if (c->timer)
                event_free(c->timer);
        if (c->park)
                event_free(c->park);
        if (c->io_read)
                event_free(c->io_read);
        if (c->io_write)
                event_free(c->io_write);
        if (c->watch)
                event_free(c->watch);
        free(c);
}

static void conn_index_init(void)
{
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_slot_free);
}

static void warn_limited(RateLimit *rl, const char *what, const char *source)
{
        time_t now = time(NULL);

        if (rl->last != 0 && now - rl->last < RATE_LIMIT_SEC) {
                rl->suppressed++;
                return;
        }
        log_warning("rpc: %s (%s); %u more like it held back in the last %d s", what, source,
                    rl->suppressed, RATE_LIMIT_SEC);
        rl->last = now;
        rl->suppressed = 0;
}

static int refuse_handshake(SSL *ssl, void *arg)
{
        return 0; /* aborts the handshake before any evidence is made */
}

static void conn_queue_push(RpcConnQueue *q, RpcConn *c)
{
        c->hs_next = NULL;
        if (q->tail)
                q->tail->hs_next = c;
        else
                q->head = c;
        q->tail = c;
        q->n++;
}

static RpcConn *conn_queue_pop(RpcConnQueue *q)
{
        RpcConn *c = q->head;

        if (!c)
                return NULL;
        q->head = c->hs_next;
        if (!q->head)
                q->tail = NULL;
        c->hs_next = NULL;
        q->n--;
        return c;
}

/* The turn list and the addresses' queues: under the server's lock. */
static void turn_append(RpcServer *s, RpcSource *src)
{
        src->turn_next = NULL;
        if (s->turn_tail)
                s->turn_tail->turn_next = src;
        else
                s->turn_head = src;
        s->turn_tail = src;
        src->in_turn = true;
}

static void turn_remove(RpcServer *s, RpcSource *src)
{
        RpcSource *prev = NULL;

        if (!src->in_turn)
                return;
        for (RpcSource *t = s->turn_head; t && t != src; t = t->turn_next)
                prev = t;
        if (prev)
                prev->turn_next = src->turn_next;
        else
                s->turn_head = src->turn_next;
        if (s->turn_tail == src)
                s->turn_tail = prev;
        src->turn_next = NULL;
        src->in_turn = false;
}

static void source_push(RpcServer *s, RpcSource *src, RpcConn *c)
{
        c->hs_next = NULL;
        if (src->hs_tail)
                src->hs_tail->hs_next = c;
        else
                src->hs_head = c;
        src->hs_tail = c;
        c->hs_queued = true;
        src->hs_queued++;
        s->hs_queued++;
        if (!src->in_turn)
                turn_append(s, src);
}

/* Takes a waiting step out of its address's queue (the address leaves the turn list when it
 * has no more). */
static void source_remove(RpcServer *s, RpcSource *src, RpcConn *c)
{
        RpcConn *prev = NULL;

        for (RpcConn *p = src->hs_head; p && p != c; p = p->hs_next)
                prev = p;
        if (prev)
                prev->hs_next = c->hs_next;
        else
                src->hs_head = c->hs_next;
        if (src->hs_tail == c)
                src->hs_tail = prev;
        c->hs_next = NULL;
        c->hs_queued = false;
        src->hs_queued--;
        s->hs_queued--;
        if (src->hs_queued == 0)
                turn_remove(s, src);
}

/* An address's turn is over: to the end of the list, if it has more waiting. */
static void turn_over(RpcServer *s, RpcSource *src)
{
        turn_remove(s, src);
        if (src->hs_queued > 0)
                turn_append(s, src);
}

/* Counted once per connection, logged at warning (rate-limited); under the lock. */
static void hs_note_delayed(RpcServer *s, RpcConn *c, bool its_address)
{
        if (c->hs_delayed)
                return;
        c->hs_delayed = true;
        s->stats.handshakes_delayed++;
        warn_limited(&s->limit_hs_rate,
                     its_address ? "delaying a handshake: its address begins handshakes faster "
                                   "than its limit"
                                 : "delaying a handshake: all addresses together begin "
                                   "handshakes faster than the server's limit",
                     c->source);
}

/*
 * The next step a worker runs, under the lock: the first address in the turn list that runs
 * fewer than hs_cap steps and has one that may run now gives its oldest such step, and goes to
 * the end of the list. A step of a handshake not begun yet (its evidence may be made in it)
 * takes a token from its address's bucket and from the server's, given back if it made none;
 * a connection already shut needs none (it makes no evidence: hs_worker_main() skips it). NULL if
 * none may run now; *ret_wait_ms is then how long until a token frees one (0: until something is
 * queued or a step ends).
 */
static RpcConn *hs_pick(RpcServer *s, uint64_t now, uint64_t *ret_wait_ms)
{
        bool total_ready = token_bucket_ready(&s->handshakes_total, now);
        uint64_t wait = 0;

        for (RpcSource *src = s->turn_head; src; src = src->turn_next) {
                if (src->hs_running >= s->hs_cap)
                        continue;
                for (RpcConn *c = src->hs_head; c; c = c->hs_next) {
                        if (!__atomic_load_n(&c->closing, __ATOMIC_ACQUIRE) && !c->hs_begun) {
                                bool mine = token_bucket_ready(&src->handshakes, now);

                                if (!mine || !total_ready) {
                                        uint64_t w = MAX(
                                                mine ? 0 : token_bucket_wait_ms(&src->handshakes),
                                                total_ready ? 0
                                                            : token_bucket_wait_ms(
                                                                      &s->handshakes_total));
                                        w = MAX(w, 1U);
                                        wait = wait ? MIN(wait, w) : w;
                                        hs_note_delayed(s, c, !mine);
                                        continue;
                                }
                                /* Given back if the step made no evidence (hs_worker_main()):
                                 * a ClientHello dripped in pieces takes steps that make none. */
                                token_bucket_spend(&src->handshakes);
                                token_bucket_spend(&s->handshakes_total);
                                c->hs_token = true;
                        }
                        source_remove(s, src, c);
                        src->hs_running++;
                        s->hs_busy++;
                        turn_over(s, src);
                        return c;
                }
        }
        *ret_wait_ms = wait;
        return NULL;
}

/*
 * On the loop, with no step running: the connection goes back to libevent, which reads (and
 * evhttp parses) the request once the handshake is done. One that is not established (failed,
 * refused, closed) gets a certificate callback that refuses: whatever libevent then reads of it
 * (end of file, or a ClientHello still in the socket) can never make evidence on the loop.
 */
static void hs_release(RpcConn *c, bool established)
{
        if (c->hs == HS_DONE)
                return;
        if (c->io_read)
                (void) event_del(c->io_read);
        if (c->io_write)
                (void) event_del(c->io_write);
        if (established) {
                c->handshaken = true;
                c->hs_bytes = c->bytes;
                c->verified = atls_peer_verified(c->ssl);
        } else {
                SSL_set_cert_cb(c->ssl, refuse_handshake, NULL);
                /* A shut connection's handshake must not go on on the loop: SSL_read() would
                 * take the client's flight still in the socket (readable after shutdown()) and
                 * verify its evidence here. As if both sides had closed, SSL_read() returns 0
                 * before it reads a byte (libevent sees end of file and frees it). */
                if (c->shut)
                        SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        }
        c->hs = HS_DONE;
        (void) bufferevent_enable(c->bev, c->enabled);
        /* Records the step read past the handshake (none in practice: OpenSSL reads record by
         * record) wait in the SSL object, where no socket event would announce them. */
        if (established && SSL_has_pending(c->ssl))
                event_active(&c->bev->ev_read, EV_READ, 1);
}

/* Closes a connection from under libevent: it sees end of file and frees the connection. A
 * step running on a worker sees it too and fails; one waiting on the loop is released now. */
static void conn_shut(RpcConn *c)
{
        RpcServer *s = c->server;

        c->shut = true;
        __atomic_store_n(&c->closing, 1, __ATOMIC_RELEASE);
        pending_remove(c);
        if (c->fd >= 0)
                (void) shutdown(c->fd, SHUT_RDWR);
        /* A step still waiting for a worker leaves its queue now (its place goes to another);
         * one running finishes first (on_hs_done()). */
        if (c->hs == HS_WORKER) {
                bool waiting;

                (void) pthread_mutex_lock(&s->lock);
                waiting = c->hs_queued;
                if (waiting)
                        source_remove(s, c->src, c);
                (void) pthread_mutex_unlock(&s->lock);
                if (waiting)
                        c->hs = HS_WAIT;
        }
        if (c->hs == HS_WAIT)
                hs_release(c, false);
}

/* Hands the connection's next step to the handshake pool, in its address's queue. A full
 * queue (all addresses) takes the newest step of the address with the most waiting, when that
 * is more than this one's address has plus one; else it closes this connection. Either is
 * counted and logged like every refusal of load. */
static void hs_queue(RpcConn *c)
{
        RpcServer *s = c->server;
        RpcSource *src = c->src;
        RpcConn *evicted = NULL;
        bool full;

        c->hs = HS_WORKER;
        c->step_bytes = 0;
        c->step_wrote = false;
        if (!src) {
                /* Never: every connection that handshakes was counted by its address. */
                c->hs = HS_WAIT;
                conn_shut(c);
                return;
        }
        (void) pthread_mutex_lock(&s->lock);
        /* Steps a free worker is about to take do not wait: a worker done with a step and not
         * yet back for the next (a loaded machine) must not make the queue look full to the
         * step its own client answered at once. */
        full = s->quitting ||
               s->hs_queued >= s->config.max_queued + (s->config.handshake_workers - s->hs_busy);
        if (full && !s->quitting) {
                RpcSource *most = NULL;

                for (RpcSource *t = s->turn_head; t; t = t->turn_next)
                        if (!most || t->hs_queued > most->hs_queued)
                                most = t;
                if (most && most != src && most->hs_queued > src->hs_queued + 1) {
                        evicted = most->hs_tail;
                        source_remove(s, most, evicted);
                        full = false;
                }
        }
        if (!full) {
                source_push(s, src, c);
                (void) pthread_cond_signal(&s->hs_cond);
        }
        if (full || evicted)
                s->stats.handshakes_closed++;
        (void) pthread_mutex_unlock(&s->lock);
        if (evicted) {
                evicted->hs = HS_WAIT;
                warn_limited(&s->limit_hs_queue,
                             "closing a connection: too many handshakes wait for a worker, most "
                             "of them from its address",
                             evicted->source);
                conn_shut(evicted);
        }
        if (full) {
                c->hs = HS_WAIT;
                warn_limited(&s->limit_hs_queue,
                             "closing a connection: too many handshakes wait for a worker",
                             c->source);
                conn_shut(c);
        }
}

/* The socket is ready for what the last step wanted. */
static void on_hs_io(evutil_socket_t fd, short what, void *arg)
{
        RpcConn *c = arg;

        if (c->hs == HS_WAIT)
                hs_queue(c);
}

/*
 * One handshake step, on a worker: until OpenSSL wants to read or write (the socket is
 * non-blocking), or the handshake is done or failed. Touches the connection's step_* fields and
 * its SSL object only; the loop leaves both alone until the step comes back. The deadline from
 * accept is the loop's (conn_timer()): it shuts the connection, and a step still waiting for a
 * worker leaves its queue (conn_shut()), or is skipped if a worker took it meanwhile
 * (hs_worker_main()); one already running finishes, and its connection is released then,
 * without going on (hs_release()).
 */
static void hs_step(RpcConn *c)
{
        int r, e;

        c->step_want = 0;
        ERR_clear_error();
        r = SSL_do_handshake(c->ssl);
        if (r == 1)
                c->step_result = 1;
        else {
                e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                        c->step_result = 0;
                        c->step_want = e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
                } else
                        c->step_result = -EPROTO;
        }
        /* OpenSSL's error queue is per thread: the verdict is in the connection (aTLS's
         * failure), nothing of it stays here for the next connection's step. */
        ERR_clear_error();
}

static void *hs_worker_main(void *arg)
{
        RpcServer *s = arg;
        sigset_t both;

        (void) sigemptyset(&both);
        (void) sigaddset(&both, SIGTERM);
        (void) sigaddset(&both, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &both, NULL);

        for (;;) {
                RpcConn *c = NULL;

                (void) pthread_mutex_lock(&s->lock);
                while (!s->quitting) {
                        uint64_t wait = 0;

                        c = hs_pick(s, now_ms(), &wait);
                        if (c)
                                break;
                        if (wait == 0)
                                (void) pthread_cond_wait(&s->hs_cond, &s->lock);
                        else {
                                /* Until a token frees a delayed handshake (hs_cond's clock is
                                 * CLOCK_MONOTONIC). */
                                struct timespec ts;

                                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                                ts.tv_sec += (time_t) (wait / 1000U);
                                ts.tv_nsec += (long) (wait % 1000U) * 1000000L;
                                if (ts.tv_nsec >= 1000000000L) {
                                        ts.tv_sec++;
                                        ts.tv_nsec -= 1000000000L;
                                }
                                (void) pthread_cond_timedwait(&s->hs_cond, &s->lock, &ts);
                        }
                }
                (void) pthread_mutex_unlock(&s->lock);
                if (!c)
                        return NULL; /* the connections left are freed with evhttp */

                /* Shut while it waited (its deadline, an eviction, the queue): no step, so no
                 * evidence is made for a connection nobody will read. */
                if (__atomic_load_n(&c->closing, __ATOMIC_ACQUIRE))
                        c->step_result = -ECONNRESET;
                else
                        hs_step(c);

                (void) pthread_mutex_lock(&s->lock);
                conn_queue_push(&s->hs_done, c);
                /* The step that wrote the server's first flight made evidence: the handshake
                 * has begun, its tokens spent. One that made none gives them back. */
                if (c->hs_token) {
                        c->hs_token = false;
                        if (c->step_wrote)
                                c->hs_begun = true;
                        else {
                                token_bucket_refund(&c->src->handshakes);
                                token_bucket_refund(&s->handshakes_total);
                        }
                }
                /* Its address may run another step now. */
                c->src->hs_running--;
                s->hs_busy--;
                (void) pthread_cond_signal(&s->hs_cond);
                (void) pthread_mutex_unlock(&s->lock);
                event_active(s->hs_done_event, EV_READ, 0);
        }
}

static void pending_enforce(RpcServer *s);

/* On the loop: steps the workers have finished. */
static void on_hs_done(evutil_socket_t fd, short what, void *arg)
{
        RpcServer *s = arg;

        for (;;) {
                RpcConn *c;

                (void) pthread_mutex_lock(&s->lock);
                c = conn_queue_pop(&s->hs_done);
                (void) pthread_mutex_unlock(&s->lock);
                if (!c)
                        return;
                c->hs = HS_WAIT;
                /* The step's bytes count as the loop's would have (on_record()). */
                c->bytes += c->step_bytes;
                if (c->pending)
                        s->pending_bytes += c->step_bytes;
                if (c->shut || c->step_result < 0) {
                        conn_shut(c);
                        continue;
                }
                if (c->bytes > ATLS_CERT_LIST_MAX + s->config.max_headers) {
                        warn_limited(&s->limit_bytes,
                                     "closing a connection: it sends more than its client may",
                                     c->source);
                        conn_shut(c);
                        continue;
                }
                pending_enforce(s);
                if (c->shut)
                        continue;
                if (c->step_result == 1) {
                        hs_release(c, true);
                        continue;
                }
                (void) event_add(c->step_want == EV_WRITE ? c->io_write : c->io_read, NULL);
        }
}

/*
 * Right after accept, before libevent reads a byte: evhttp has just attached the socket to the
 * connection's bufferevent (made in make_bev() in the established state, so that libevent
 * never runs a handshake itself). This event has the highest priority, so it runs before any
 * read event of the same pass: it takes the socket from libevent until the handshake is done,
 * counts the connection by its source and starts its deadline.
 */
static void on_park(evutil_socket_t unused, short what, void *arg)
{
        RpcConn *c = arg;
        RpcServer *s = c->server;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        RpcSource *src;
        struct timeval deadline = { s->config.deadline_sec, 0 };

        c->enabled = bufferevent_get_enabled(c->bev);
        (void) bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        c->fd = SSL_get_fd(c->ssl);
        c->hs = HS_WAIT;
        c->accepted = true;
        if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *) &ss, &len) < 0 ||
            getnameinfo((struct sockaddr *) &ss, len, c->source, sizeof(c->source), NULL, 0,
                        NI_NUMERICHOST) != 0)
                (void) snprintf(c->source, sizeof(c->source), "?");
        src = source_find(s, c->source, true);
        if (!src || src->n >= s->config.max_per_source) {
                warn_limited(&s->limit_source,
                             "closing a connection: too many open from one address", c->source);
                conn_shut(c);
                return;
        }
        src->n++;
        c->counted = true;
        c->src = src;
        (void) event_add(c->timer, &deadline);
        if (c->shut) {
                /* Closed to make room before it was parked (it had no socket then). */
                conn_shut(c);
                hs_release(c, false);
                return;
        }
        if (c->refused) {
                /* Over the connection limit or stopping: libevent runs the handshake, which
                 * fails in its first step (no evidence made) and tells the client so. */
                hs_release(c, false);
                return;
        }
        c->io_read = event_new(s->base, c->fd, EV_READ, on_hs_io, c);
        c->io_write = event_new(s->base, c->fd, EV_WRITE, on_hs_io, c);
        if (!c->io_read || !c->io_write || event_add(c->io_read, NULL) < 0) {
                log_error("rpc: out of memory for a TLS connection");
                conn_shut(c);
        }
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
        RpcConn *c = arg;
        RpcServer *s = c->server;

        if (!c->dispatched) {
                warn_limited(&s->limit_deadline,
                             "closing a connection: no whole request within the deadline",
                             c->source);
                conn_shut(c);
        }
}

void rpc_server_config_defaults(RpcServerConfig *c)
{
        *c = (RpcServerConfig){
                .address = "127.0.0.1",
                .port = 0,
                .max_body = RPC_BODY_MAX_DEFAULT,
                .max_headers = RPC_HEADERS_MAX_DEFAULT,
                .timeout_sec = RPC_TIMEOUT_SEC_DEFAULT,
                .max_connections = RPC_CONNECTIONS_MAX_DEFAULT,
                .max_queued = RPC_QUEUED_MAX_DEFAULT,
                .max_per_source = RPC_PER_SOURCE_MAX_DEFAULT,
                .deadline_sec = RPC_DEADLINE_SEC_DEFAULT,
                .handshake_workers = RPC_HANDSHAKE_WORKERS_DEFAULT,
                .handshake_burst = RPC_HANDSHAKE_BURST_DEFAULT,
                .handshake_rate = RPC_HANDSHAKE_RATE_DEFAULT,
                .handshake_burst_total = RPC_HANDSHAKE_BURST_TOTAL_DEFAULT,
                .handshake_rate_total = RPC_HANDSHAKE_RATE_TOTAL_DEFAULT,
                .listen_fd = -1,
        };
}

/* Answers may carry secrets (tickets, disk keys, kubeconfigs): the buffer is handed to libevent
 * by reference and wiped when libevent is done with it. */
static void wipe_free_text(const void *data, size_t len, void *arg)
{
        explicit_wipe((void *) data, len);
        free((void *) data);
}

static void reply_json(struct evhttp_request *req, int code, const char *reason, json_t *body)
{
        struct evbuffer *out = evbuffer_new();
        char *text = NULL;

        if (out && body && json_dump_compact(body, &text) >= 0 &&
            evbuffer_add_reference(out, text, strlen(text), wipe_free_text, NULL) < 0)
                wipe_free_text(text, strlen(text), NULL);
        (void) evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                                 "application/json");
        /* One request per connection: a refused client cannot go on sending requests over it,
         * and every request meets the accept-to-request deadline. */
        (void) evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        evhttp_send_reply(req, code, reason, out);
        if (out)
                evbuffer_free(out);
}

static void reply_error(struct evhttp_request *req, int code, const char *error, const char *detail)
{
        _cleanup_(json_decrefp) json_t *j =
                json_pack("{s:s,s:s}", "error", error, "detail", detail);
        reply_json(req, code, error, j);
}

static void error_for_errno(int r, int *code, const char **error)
{
        switch (r) {
        case -EBADMSG:
        case -EINVAL:
                *code = 400, *error = "bad-request";
                break;
        case -EPERM:
        case -EACCES:
                *code = 403, *error = "forbidden";
                break;
        case -ENOENT:
                *code = 404, *error = "not-found";
                break;
        case -EEXIST:
        case -EALREADY:
                *code = 409, *error = "conflict";
                break;
        case -EBUSY:
                *code = 429, *error = "too-many-requests";
                break;
        default:
                *code = 500, *error = "internal";
        }
}

static void reply_result(struct evhttp_request *req, const RpcRoute *route, int r, json_t *response,
                         const char *detail)
{
        const char *error;
        int code;

        if (r < 0) {
                static const char *const extras[] = { "code", "nodeLog", "nodeLogDropped" };
                _cleanup_(json_decrefp) json_t *j = NULL;

                error_for_errno(r, &code, &error);
                j = json_pack("{s:s,s:s}", "error", error, "detail",
                              detail[0] ? detail : strerror(-r));
                /* A refusal with more to say (the node's state as a code, a failed init's log
                 * for its owner) adds those keys, and only those: whatever else a handler built
                 * before it failed (a ticket, say) is never sent. */
                for (size_t i = 0; j && i < ELEMENTSOF(extras); i++) {
                        json_t *x = json_object_get(response, extras[i]);
                        if (x)
                                (void) json_object_set(j, extras[i], x);
                }
                if (j)
                        reply_json(req, code, error, j);
                else
                        reply_error(req, code, error, "error");
                return;
        }
        /* One request per connection (reply_json()): an attested client's evidence, checked
         * against the policy of its handshake, also never serves a second request. */
        reply_json(req, 200, "OK", response);
}

static const char *method_name(enum evhttp_cmd_type t)
{
        switch (t) {
        case EVHTTP_REQ_GET:
                return "GET";
        case EVHTTP_REQ_POST:
                return "POST";
        case EVHTTP_REQ_PUT:
                return "PUT";
        case EVHTTP_REQ_DELETE:
                return "DELETE";
        default:
                return NULL;
        }
}

static void queue_push(RpcJobQueue *q, RpcJob *j)
{
        j->next = NULL;
        if (q->tail)
                q->tail->next = j;
        else
                q->head = j;
        q->tail = j;
        q->n++;
}

static RpcJob *queue_pop(RpcJobQueue *q)
{
        RpcJob *j = q->head;

        if (!j)
                return NULL;
        q->head = j->next;
        if (!q->head)
                q->tail = NULL;
        q->n--;
        return j;
}

/* Takes j out of q wherever it is; false if it is not there. */
static bool queue_remove(RpcJobQueue *q, RpcJob *j)
{
        RpcJob *prev = NULL;

        for (RpcJob *p = q->head; p && p != j; p = p->next)
                prev = p;
        if (prev ? prev->next != j : q->head != j)
                return false;
        if (prev)
                prev->next = j->next;
        else
                q->head = j->next;
        if (q->tail == j)
                q->tail = prev;
        j->next = NULL;
        q->n--;
        return true;
}

static RpcJob *job_free(RpcJob *j)
{
        if (!j)
                return NULL;
        json_decref(j->body);
        json_decref(j->response);
        /* May be the connection's last reference: its RpcConn goes with it. */
        if (j->ssl)
                SSL_free(j->ssl);
        free(j->path);
        free(j->query);
        free(j);
        return NULL;
}

/* On the loop: the job no longer waits for its client to close (its answer is about to be sent
 * or discarded, or its connection is going). */
static void job_unwatch(RpcJob *j)
{
        RpcConn *c = j->conn;

        if (!c)
                return;
        if (c->watch)
                (void) event_del(c->watch);
        c->job = NULL;
        j->conn = NULL;
}

/*
 * On the loop: a job whose client has gone, never answered. Its request is freed with its
 * connection (evhttp_connection_free(): the request waiting for its reply is on the
 * connection's list), or alone if libevent already let go of the connection (it detaches a
 * request waiting for its reply when it sees the connection fail: req->evcon is NULL then,
 * and the request is ours to free). No reply is attempted. Frees j.
 */
static void job_discard(RpcJob *j)
{
        job_unwatch(j);
        if (j->req) {
                struct evhttp_connection *evcon = evhttp_request_get_connection(j->req);

                if (evcon) {
                        evhttp_connection_set_closecb(evcon, NULL, NULL);
                        evhttp_connection_free(evcon);
                } else
                        evhttp_request_free(j->req);
                j->req = NULL;
        }
        job_free(j);
}

/*
 * On the loop: the client of c's job has gone. A job still waiting for a worker is dropped:
 * never run (a client that gave up and asks again must not queue behind its own abandoned
 * request, whose evidence would be checked for nobody), counted, freed, not answered. A job a
 * worker took is finished (its admission is written ahead and a retry is answered from it:
 * "the same ticket again"); its answer is discarded when it comes back (on_jobs_done()).
 */
static void job_client_gone(RpcServer *s, RpcConn *c)
{
        RpcJob *j = c->job;
        bool dropped;

        if (!j)
                return;
        (void) pthread_mutex_lock(&s->lock);
        dropped = !j->taken && queue_remove(&s->todo, j);
        if (dropped)
                s->stats.jobs_dropped++;
        else if (!j->gone)
                s->stats.replies_discarded++;
        (void) pthread_mutex_unlock(&s->lock);
        j->gone = true;
        if (!dropped) {
                /* Still linked: if libevent frees the connection meanwhile, on_evcon_close()
                 * must learn that the request went with it. */
                if (c->watch)
                        (void) event_del(c->watch);
                return;
        }
        warn_limited(&s->limit_gone,
                     "dropping a request that waited for a handler: its client closed the "
                     "connection",
                     c->source);
        job_discard(j);
}

/* Whether the client closed its side (end of file) or reset the connection, seen without
 * reading: what the client sent is TLS records that only the SSL object may read. */
static bool peer_closed(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

        return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void job_watch_arm(RpcConn *c, short what);

/* On the loop: the socket of a connection whose request waits for (or runs on) a worker is
 * readable or closed. libevent does not read it meanwhile (evhttp disabled reading once the
 * request was whole), so without this a client that gave up would go unnoticed until the
 * answer was written. */
static void on_job_watch(evutil_socket_t fd, short what, void *arg)
{
        RpcConn *c = arg;

        if ((what & EV_CLOSED) || peer_closed(fd)) {
                job_client_gone(c->server, c);
                return;
        }
        /* Bytes after a whole request, and no close: only an early-close event can go on
         * watching without firing on them again (a client of ours sends nothing more). */
        if (event_base_get_features(c->server->base) & EV_FEATURE_EARLY_CLOSE)
                job_watch_arm(c, EV_CLOSED);
}

static void job_watch_arm(RpcConn *c, short what)
{
        RpcServer *s = c->server;

        if (c->watch)
                event_free(c->watch);
        c->watch = event_new(s->base, c->fd, what, on_job_watch, c);
        if (!c->watch || event_add(c->watch, NULL) < 0)
                log_debug("rpc: cannot watch a connection for its client closing");
}

/* libevent frees the connection of a request that waits for its answer (it saw the client go:
 * the request is detached and stays ours; or the server is being freed: the request goes with
 * the connection). */
static void on_evcon_close(struct evhttp_connection *evcon, void *arg)
{
        RpcConn *c = arg;
        RpcJob *j = c->job;

        if (c->watch)
                (void) event_del(c->watch);
        if (!j)
                return;
        if (j->req && evhttp_request_get_connection(j->req) == evcon)
                j->req = NULL;
        job_client_gone(c->server, c);
}

static void *worker_main(void *arg)
{
        RpcServer *s = arg;
        sigset_t both;

        /* Signals are the event loop's business (and a handover's: see
         * rpc_server_handover_signalled()). */
        (void) sigemptyset(&both);
        (void) sigaddset(&both, SIGTERM);
        (void) sigaddset(&both, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &both, NULL);

        for (;;) {
                RpcJob *j;

                (void) pthread_mutex_lock(&s->lock);
                while (!s->todo.head && !s->quitting)
                        (void) pthread_cond_wait(&s->cond, &s->lock);
                j = queue_pop(&s->todo);
                if (j)
                        j->taken = true;
                (void) pthread_mutex_unlock(&s->lock);
                if (!j)
                        return NULL; /* quitting with nothing left to do */

                RpcRequest rq = { .method = j->method,
                                  .path = j->path,
                                  .query = j->query,
                                  .body = j->body,
                                  .ssl = j->ssl,
                                  .peer = j->peer };
                j->r = j->route->handler(s->userdata, &rq, &j->response, j->detail,
                                         sizeof(j->detail));

                (void) pthread_mutex_lock(&s->lock);
                queue_push(&s->done, j);
                (void) pthread_mutex_unlock(&s->lock);
                event_active(s->done_event, EV_READ, 0);
        }
}

/* On the loop: the answers the workers have finished. */
static void on_jobs_done(evutil_socket_t fd, short what, void *arg)
{
        RpcServer *s = arg;

        for (;;) {
                RpcJob *j;

                (void) pthread_mutex_lock(&s->lock);
                j = queue_pop(&s->done);
                (void) pthread_mutex_unlock(&s->lock);
                if (!j)
                        return;
                job_unwatch(j);
                /* Its client went while the handler ran: what the handler did stands, its
                 * answer is not sent. */
                if (j->gone || !j->req) {
                        job_discard(j);
                        continue;
                }
                {
                        struct evhttp_connection *evcon = evhttp_request_get_connection(j->req);
                        if (evcon)
                                evhttp_connection_set_closecb(evcon, NULL, NULL);
                }
                reply_result(j->req, j->route, j->r, j->response, j->detail);
                job_free(j);
        }
}

static void dispatch(struct evhttp_request *req, void *arg)
{
        RpcServer *s = arg;
        const char *method = method_name(evhttp_request_get_command(req));
        const char *uri = evhttp_request_get_uri(req), *query;
        char path[256];
        struct evhttp_connection *evcon = evhttp_request_get_connection(req);
        struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
        SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
        const RpcRoute *route = NULL;
        bool path_known = false;
        _cleanup_(json_decrefp) json_t *body = NULL, *response = NULL;
        char detail[512] = "", peer[INET6_ADDRSTRLEN + 8];
        int r;

        /* Defence in depth: the handshake already refused unverified peers where we verify. */
        if (!ssl) {
                reply_error(req, 500, "internal", "request without a TLS connection");
                return;
        }
        /* The whole request is in: the deadline is met (the answer may take its time). */
        {
                RpcConn *c = SSL_get_ex_data(ssl, conn_index);
                if (c) {
                        c->dispatched = true;
                        pending_remove(c);
                        if (c->timer)
                                (void) event_del(c->timer);
                }
        }
        /* HTTP/1.0 and 1.1 only. libevent takes any "HTTP/M.N" with M <= 1 (HTTP/0.1,
         * HTTP/-3.7, HTTP/1.200) and writes the same version into the answer's status line,
         * which then no client parses: answer in HTTP/1.1 that the version is not supported
         * (RFC 9110 section 15.6.6). Found by fuzz-http-request. */
        if (req->major != 1 || (req->minor != 0 && req->minor != 1)) {
                req->major = 1;
                req->minor = 1;
                reply_error(req, 505, "http-version-not-supported",
                            "only HTTP/1.0 and HTTP/1.1 are supported");
                return;
        }
        /* Routes name paths; what follows '?' goes to the handler as it came. */
        {
                size_t plen = strcspn(uri ?: "", "?");
                if (!uri || plen >= sizeof(path)) {
                        reply_error(req, 404, "not-found", "no such endpoint");
                        return;
                }
                memcpy(path, uri, plen);
                path[plen] = '\0';
                query = uri[plen] == '?' ? uri + plen + 1 : NULL;
        }
        for (const RpcRoute *rt = s->routes; rt->method; rt++) {
                if (strcmp(rt->path, path) != 0)
                        continue;
                path_known = true;
                if (method && strcmp(rt->method, method) == 0)
                        route = rt;
        }
        if (!route) {
                if (path_known)
                        reply_error(req, 405, "method-not-allowed", "method not allowed here");
                else
                        reply_error(req, 404, "not-found", "no such endpoint");
                return;
        }

        {
                char *host = NULL;
                ev_uint16_t port = 0;
                evhttp_connection_get_peer(evcon, &host, &port);
                (void) snprintf(peer, sizeof(peer), "%s:%u", host ?: "?", (unsigned) port);
        }
        RpcRequest rq = {
                .method = method, .path = path, .query = query, .ssl = ssl, .peer = peer
        };
        if (route->attested_client && !atls_peer_verified(ssl)) {
                if (s->config.on_refusal)
                        s->config.on_refusal(s->userdata, &rq,
                                             "the client did not attest (this endpoint needs "
                                             "an attested client)");
                reply_error(req, 403, "forbidden",
                            "this endpoint needs an attested client: present evidence");
                return;
        }

        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        if (len > 0) {
                unsigned char *data = evbuffer_pullup(in, (ssize_t) len);
                Diag d;

                diag_clear(&d);
                if (!data || json_parse_buffer(data, len, "request", &body, &d) < 0) {
                        reply_error(req, 400, "bad-request", d.message[0] ? d.message : "bad JSON");
                        return;
                }
                /* The body may carry secrets (init request, tickets): wipe the raw copy. */
                explicit_wipe(data, len);
        } else if (strcmp(route->method, "POST") == 0) {
                reply_error(req, 400, "bad-request", "a JSON body is required");
                return;
        }
        rq.body = body;

        if (s->n_threads > 0) {
                RpcJob *j;
                bool full;

                j = calloc(1, sizeof(*j));
                if (!j || !(j->path = strdup(path)) || (query && !(j->query = strdup(query)))) {
                        job_free(j);
                        reply_error(req, 500, "internal", "out of memory");
                        return;
                }
                j->req = req;
                j->route = route;
                j->body = TAKE_PTR(body);
                (void) snprintf(j->method, sizeof(j->method), "%s", method);
                (void) snprintf(j->peer, sizeof(j->peer), "%s", peer);
                /* The connection may close while the handler runs: libevent then keeps the
                 * request for the reply, which frees it; the SSL object is ours to keep. */
                SSL_up_ref(ssl);
                j->ssl = ssl;
                (void) pthread_mutex_lock(&s->lock);
                full = s->todo.n >= s->config.max_queued;
                if (!full) {
                        queue_push(&s->todo, j);
                        (void) pthread_cond_signal(&s->cond);
                }
                (void) pthread_mutex_unlock(&s->lock);
                if (full) {
                        job_free(j);
                        reply_error(req, 503, "busy", "the server is busy: try again shortly");
                        return;
                }
                /* Until its answer: a client that closes is noticed (on_job_watch(),
                 * on_evcon_close()); its job is dropped if no worker took it yet. A worker
                 * may take it meanwhile, but its answer comes back to this thread only. */
                {
                        RpcConn *c = SSL_get_ex_data(ssl, conn_index);

                        if (c && c->fd >= 0) {
                                short what = EV_READ;

                                if (event_base_get_features(s->base) & EV_FEATURE_EARLY_CLOSE)
                                        what |= EV_CLOSED;
                                c->job = j;
                                j->conn = c;
                                evhttp_connection_set_closecb(evcon, on_evcon_close, c);
                                job_watch_arm(c, what);
                        }
                }
                return;
        }
        r = route->handler(s->userdata, &rq, &response, detail, sizeof(detail));
        reply_result(req, route, r, response, detail);
}

/* Every TLS record header read before the request is whole, the handshake's included (a
 * client's certificate carries its evidence: up to ATLS_CERT_LIST_MAX). After the handshake a
 * client without evidence may send only what the routes it can reach need. The sum over all
 * pending connections is bounded: past it, the connection holding the most is closed, so that
 * clients holding large certificates or bodies cannot take the server's memory. */
static void on_record(int write_p, int version, int content_type, const void *buf, size_t len,
                      SSL *ssl, void *arg)
{
        RpcConn *c = arg;
        RpcServer *s;
        const uint8_t *h = buf;
        size_t size, limit;

        /* The server's first flight (made with its evidence) goes out in the step that begins
         * the handshake: that step spends the tokens (hs_worker_main()). */
        if (c && write_p && c->hs == HS_WORKER)
                c->step_wrote = true;
        if (write_p || content_type != SSL3_RT_HEADER || len < 5 || !c)
                return;
        size = (size_t) h[3] << 8 | h[4];
        /* During a step, on a worker: counted into the connection alone; the loop adds it up
         * and applies the limits when the step comes back (on_hs_done()). One step reads at
         * most one flight, whose certificate OpenSSL bounds (ATLS_CERT_LIST_MAX). */
        if (c->hs == HS_WORKER) {
                c->step_bytes += size;
                return;
        }
        if (c->dispatched || c->shut)
                return;
        s = c->server;
        c->bytes += size;
        s->pending_bytes += size;
        if (!c->handshaken)
                limit = ATLS_CERT_LIST_MAX + s->config.max_headers;
        else
                limit = c->hs_bytes + (c->verified ? s->config.max_body + s->config.max_headers
                                                   : RPC_UNATTESTED_REQUEST_MAX);
        if (c->bytes > limit) {
                warn_limited(&s->limit_bytes,
                             "closing a connection: it sends more than its client may", c->source);
                conn_shut(c);
                return;
        }
        pending_enforce(s);
}

/* All requests not whole yet together hold at most RPC_PENDING_BYTES_MAX: past it, the
 * connection holding the most is closed. */
static void pending_enforce(RpcServer *s)
{
        RpcConn *biggest;

        while (s->pending_bytes > RPC_PENDING_BYTES_MAX) {
                biggest = s->pending_head;
                for (RpcConn *p = s->pending_head; p; p = p->next)
                        if (p->bytes > biggest->bytes)
                                biggest = p;
                if (!biggest)
                        break;
                warn_limited(&s->limit_bytes,
                             "closing the connection holding the most: requests in progress "
                             "hold too much memory",
                             biggest->source);
                conn_shut(biggest); /* leaves the pending list, its bytes with it */
        }
}

/* At the connection limit: closes a connection that has not sent a whole request, is not
 * attested yet and has been open for at least a second (a slow client, not a handshake that
 * just began), preferring the address that holds the most connections, then the oldest: an
 * attacker's many connections go before a lone node's join. true if one was closed. */
static bool evict_one_pending(RpcServer *s)
{
        uint64_t now = now_ms();
        RpcConn *pick = NULL;
        unsigned pick_n = 0;

        for (RpcConn *p = s->pending_head; p; p = p->next) {
                unsigned n = p->src ? p->src->n : 0;
                if (now - p->since_ms < 1000 || p->verified)
                        continue;
                if (!pick || n > pick_n) {
                        pick = p;
                        pick_n = n;
                }
        }
        if (!pick)
                return false;
        warn_limited(&s->limit_evict,
                     "at the connection limit: closing a slow connection without a whole request "
                     "to make room",
                     pick->source[0] ? pick->source : "?");
        pick->evicted = true;
        conn_shut(pick);
        return true;
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
        RpcServer *s = arg;
        struct bufferevent *bev;
        SSL *ssl;

        /* evhttp falls back to a plaintext connection if this returns NULL, so it must not:
         * failing to allocate here is fatal. */
        RpcConn *c = calloc(1, sizeof(*c));

        ssl = SSL_new(atls_context_ssl_ctx(s->atls));
        if (!c || !ssl || SSL_set_ex_data(ssl, conn_index, c) != 1) {
                log_error("rpc: out of memory for a TLS connection");
                abort();
        }
        c->server = s;
        c->ssl = ssl;
        c->fd = -1;
        c->hs = HS_NEW;
        c->since_ms = now_ms();
        SSL_set_msg_callback(ssl, on_record);
        SSL_set_msg_callback_arg(ssl, c);
        c->timer = evtimer_new(base, conn_timer, c);
        c->park = event_new(base, -1, 0, on_park, c);
        if (!c->timer || !c->park || event_priority_set(c->park, 0) < 0) {
                log_error("rpc: out of memory for a TLS connection");
                abort();
        }
        s->connections++;
        /* Over the limit, the oldest slow connection makes room; when there is none (or while
         * stopping) the new one is closed in its first handshake step. The closed one's slot is
         * freed when libevent lets go of it: until then the count runs over by the connections
         * being closed. */
        if (!s->stopping && s->connections - s->evicting > s->config.max_connections &&
            evict_one_pending(s))
                s->evicting++;
        pending_append(c);
        if (s->stopping || s->connections - s->evicting > s->config.max_connections) {
                if (!s->stopping)
                        warn_limited(&s->limit_total,
                                     "refusing a connection: the connection limit is reached",
                                     "any address");
                c->refused = true;
        }
        /* Established as far as libevent knows: it only ever reads and writes application
         * data (SSL_read() and SSL_write()); the handshake runs on the handshake workers
         * (on_park(), hs_step()), and the SSL object is put in the server's role here. */
        SSL_set_accept_state(ssl);
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_OPEN,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
                log_error("rpc: out of memory for a TLS connection");
                abort();
        }
        c->bev = bev;
        /* evhttp attaches the socket right after this returns, in the same callback. */
        event_active(c->park, EV_TIMEOUT, 0);
        return bev;
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
        RpcServer *s = arg;
        struct timeval now;

        (void) gettimeofday(&now, NULL);
        if (s->connections == 0 || now.tv_sec > s->drain_deadline.tv_sec ||
            (now.tv_sec == s->drain_deadline.tv_sec && now.tv_usec >= s->drain_deadline.tv_usec))
                (void) event_base_loopbreak(s->base);
}

static void begin_stop(RpcServer *s)
{
        struct timeval tick = { 0, 50 * 1000 }, drain = { RPC_DRAIN_SEC, 0 }, now;

        if (s->stopping)
                return;
        s->stopping = true;
        /* Not for a hand-over: the service goes on in the program this process execs, and a
         * service manager told STOPPING=1 would kill it when its stop timeout runs out. */
        if (s->config.notify && !s->handover)
                service_notify("STOPPING=1");
        if (s->bound)
                (void) evconnlistener_disable(evhttp_bound_socket_get_listener(s->bound));
        (void) gettimeofday(&now, NULL);
        timeradd(&now, &drain, &s->drain_deadline);
        s->drain_timer = event_new(s->base, -1, EV_PERSIST, drain_check, s);
        if (!s->drain_timer || event_add(s->drain_timer, &tick) < 0)
                (void) event_base_loopbreak(s->base);
}

/* SIGTERM and SIGINT: a flag no window can lose, and a byte on a pipe the loop watches. (Not
 * libevent's signal events: a signal that came after the loop ended would sit unread in
 * libevent's own pipe, and a caller handing over to another program would never know.) */
static volatile sig_atomic_t signal_received;
static int signal_pipe[2] = { -1, -1 };

static void on_process_signal(int sig)
{
        int saved = errno;

        signal_received = 1;
        if (signal_pipe[1] >= 0)
                (void) !write(signal_pipe[1], "s", 1);
        errno = saved;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
        RpcServer *s = arg;
        char buf[16];

        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        log_debug("rpc: SIGTERM or SIGINT, stopping");
        s->signalled = true;
        begin_stop(s);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
        begin_stop(arg);
}

int rpc_server_new(const RpcServerConfig *config, AtlsContext *atls, const RpcRoute *routes,
                   void *userdata, RpcServer **ret)
{
        _cleanup_(rpc_server_freep) RpcServer *s = NULL;
        struct sockaddr_storage ss = {};
        socklen_t sslen = sizeof(ss);

        if (!config || !atls || !routes || config->max_connections == 0 ||
            config->max_per_source == 0 || config->deadline_sec == 0 ||
            config->workers > RPC_WORKERS_MAX || config->max_queued == 0 ||
            config->handshake_workers == 0 || config->handshake_workers > RPC_WORKERS_MAX)
                return -EINVAL;
        (void) pthread_once(&conn_index_once, conn_index_init);
        if (conn_index < 0)
                return -ENOMEM;
        /* Lets rpc_server_stop() be called from another thread. */
        (void) evthread_use_pthreads();
        /* One malloc arena for the whole process: the workers allocate what the loop frees (a
         * handshake's TLS buffers, a request's answer), and glibc's arena per thread keeps
         * what each thread freed apart from the others, never reused by the loop: under
         * test_join_under_attack.py that was 25 MiB more resident memory (+66 MiB over idle
         * instead of +44). */
        (void) mallopt(M_ARENA_MAX, 1);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->config = *config;
        (void) pthread_mutex_init(&s->lock, NULL);
        (void) pthread_cond_init(&s->cond, NULL);
        {
                /* Timed waits for a token measure intervals: CLOCK_MONOTONIC. */
                pthread_condattr_t attr;

                (void) pthread_condattr_init(&attr);
                (void) pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
                (void) pthread_cond_init(&s->hs_cond, &attr);
                (void) pthread_condattr_destroy(&attr);
        }
        s->hs_cap = MAX(1U, config->handshake_workers / 2);
        token_bucket_init(&s->handshakes_total, config->handshake_rate_total,
                          config->handshake_burst_total, now_ms());
        /* One slot per connection the limit lets in, and the one over it being refused. */
        s->n_sources = (size_t) config->max_connections + 1;
        s->sources = calloc(s->n_sources, sizeof(*s->sources));
        if (!s->sources)
                return -ENOMEM;
        s->atls = atls;
        s->routes = routes;
        s->userdata = userdata;

        s->base = event_base_new();
        /* Two priorities: 0 for taking a new connection out of libevent's hands before it
         * reads (on_park()), 1 (the default) for everything else. */
        if (!s->base || event_base_priority_init(s->base, 2) < 0)
                return -ENOMEM;
        s->http = evhttp_new(s->base);
        if (!s->http)
                return -ENOMEM;
        evhttp_set_bevcb(s->http, make_bev, s);
        evhttp_set_gencb(s->http, dispatch, s);
        evhttp_set_max_body_size(s->http, (ev_ssize_t) config->max_body);
        evhttp_set_max_headers_size(s->http, (ev_ssize_t) config->max_headers);
        evhttp_set_timeout(s->http, (int) config->timeout_sec);
        evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);

        {
                struct sockaddr_storage bind_ss = {};
                int len = (int) sizeof(bind_ss);
                struct evconnlistener *l;

                if (config->listen_fd >= 0) {
                        /* Inherited, already listening: clients queued in its backlog while the
                         * previous owner handed over are served now. */
                        if (fcntl(config->listen_fd, F_SETFD, FD_CLOEXEC) < 0 ||
                            evutil_make_socket_nonblocking(config->listen_fd) < 0)
                                return -errno;
                        l = evconnlistener_new(s->base, NULL, NULL,
                                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
                                               config->listen_fd);
                        if (!l)
                                return -ENOMEM;
                } else {
                        if (evutil_parse_sockaddr_port(config->address,
                                                       (struct sockaddr *) &bind_ss, &len) < 0)
                                return -EINVAL;
                        if (bind_ss.ss_family == AF_INET)
                                ((struct sockaddr_in *) &bind_ss)->sin_port = htons(config->port);
                        else if (bind_ss.ss_family == AF_INET6)
                                ((struct sockaddr_in6 *) &bind_ss)->sin6_port = htons(config->port);
                        else
                                return -EAFNOSUPPORT;
                        /* A backlog that fits the connection limit, so a burst of clients is
                         * queued rather than dropped (libevent's default is 128). */
                        l = evconnlistener_new_bind(s->base, NULL, NULL,
                                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                            LEV_OPT_CLOSE_ON_EXEC,
                                                    (int) MAX(config->max_connections, 128U),
                                                    (struct sockaddr *) &bind_ss, len);
                        if (!l)
                                return errno > 0 ? -errno : -EADDRNOTAVAIL;
                }
                /* Accepted sockets inherit TCP_NODELAY: replies are written whole, and waiting
                 * for delayed ACKs would add ~40 ms to every handshake round trip. */
                {
                        int one = 1;
                        (void) setsockopt(evconnlistener_get_fd(l), IPPROTO_TCP, TCP_NODELAY, &one,
                                          sizeof(one));
                }
                s->bound = evhttp_bind_listener(s->http, l);
                if (!s->bound) {
                        evconnlistener_free(l);
                        return -ENOMEM;
                }
        }
        if (getsockname(evhttp_bound_socket_get_fd(s->bound), (struct sockaddr *) &ss, &sslen) < 0)
                return negative_errno();
        /* getsockname() filled ss; the analyser cannot see through the address casts. */
        s->port = ntohs(ss.ss_family == AF_INET /* NOLINT(clang-analyzer-core.CallAndMessage) */
                                ? ((struct sockaddr_in *) &ss)->sin_port
                                : ((struct sockaddr_in6 *) &ss)->sin6_port);

        if (config->workers > 0) {
                s->done_event = event_new(s->base, -1, 0, on_jobs_done, s);
                s->threads = calloc(config->workers, sizeof(pthread_t));
                if (!s->done_event || !s->threads)
                        return -ENOMEM;
                for (unsigned i = 0; i < config->workers; i++) {
                        int e = pthread_create(&s->threads[i], NULL, worker_main, s);
                        if (e != 0)
                                return -e;
                        s->n_threads++;
                }
        }

        s->hs_done_event = event_new(s->base, -1, 0, on_hs_done, s);
        s->hs_threads = calloc(config->handshake_workers, sizeof(pthread_t));
        if (!s->hs_done_event || !s->hs_threads)
                return -ENOMEM;
        for (unsigned i = 0; i < config->handshake_workers; i++) {
                int e = pthread_create(&s->hs_threads[i], NULL, hs_worker_main, s);
                if (e != 0)
                        return -e;
                s->n_hs_threads++;
        }

        if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return negative_errno();
        s->signal_event = event_new(s->base, signal_pipe[0], EV_READ | EV_PERSIST, on_signal, s);
        s->stop_event = event_new(s->base, -1, 0, on_stop, s);
        if (!s->signal_event || !s->stop_event)
                return -ENOMEM;

        *ret = TAKE_PTR(s);
        return 0;
}

RpcServer *rpc_server_free(RpcServer *s)
{
        RpcJob *j;

        if (!s)
                return NULL;
        /* Handlers already running finish; jobs still waiting are answered 503 with the rest. */
        (void) pthread_mutex_lock(&s->lock);
        s->quitting = true;
        while ((j = queue_pop(&s->todo))) {
                j->r = -EBUSY;
                (void) snprintf(j->detail, sizeof(j->detail), "the server is stopping");
                queue_push(&s->done, j);
        }
        (void) pthread_cond_broadcast(&s->cond);
        (void) pthread_cond_broadcast(&s->hs_cond);
        (void) pthread_mutex_unlock(&s->lock);
        /* Steps running finish soon: their sockets are shut (never freed before the join). */
        for (RpcConn *c = s->pending_head; c; c = c->next)
                if (c->hs == HS_WORKER && c->fd >= 0)
                        (void) shutdown(c->fd, SHUT_RDWR);
        for (size_t i = 0; i < s->n_hs_threads; i++)
                (void) pthread_join(s->hs_threads[i], NULL);
        free(s->hs_threads);
        for (size_t i = 0; i < s->n_threads; i++)
                (void) pthread_join(s->threads[i], NULL);
        free(s->threads);
        if (s->done_event) {
                on_jobs_done(-1, 0, s);
                event_free(s->done_event);
        }
        /* Connections whose step came back unread stay parked; evhttp frees them all. */
        if (s->http)
                evhttp_free(s->http);
        if (s->hs_done_event)
                event_free(s->hs_done_event);
        if (s->signal_event)
                event_free(s->signal_event);
        if (s->handlers_installed) {
                (void) sigaction(SIGTERM, &s->old_sigterm, NULL);
                (void) sigaction(SIGINT, &s->old_sigint, NULL);
        }
        if (s->stop_event)
                event_free(s->stop_event);
        if (s->drain_timer)
                event_free(s->drain_timer);
        if (s->base)
                event_base_free(s->base);
        (void) pthread_cond_destroy(&s->cond);
        (void) pthread_cond_destroy(&s->hs_cond);
        (void) pthread_mutex_destroy(&s->lock);
        free(s->sources);
        free(s);
        return NULL;
}

uint16_t rpc_server_port(const RpcServer *s)
{
        return s->port;
}

unsigned rpc_server_connections(const RpcServer *s)
{
        return s->connections;
}

void rpc_server_stats(RpcServer *s, RpcServerStats *ret)
{
        (void) pthread_mutex_lock(&s->lock);
        *ret = s->stats;
        ret->jobs_waiting = s->todo.n;
        ret->handshakes_waiting = s->hs_queued;
        (void) pthread_mutex_unlock(&s->lock);
}

int rpc_server_run(RpcServer *s)
{
        /* A peer that closes early must not kill the server with SIGPIPE on the next write. */
        (void) signal(SIGPIPE, SIG_IGN);
        if (!s->handlers_installed) {
                struct sigaction sa = { .sa_handler = on_process_signal, .sa_flags = SA_RESTART };
                sigset_t both;

                (void) sigemptyset(&sa.sa_mask);
                if (sigaction(SIGTERM, &sa, &s->old_sigterm) < 0 ||
                    sigaction(SIGINT, &sa, &s->old_sigint) < 0)
                        return negative_errno();
                s->handlers_installed = true;
                /* Blocked by a process that handed over to this one (it must not die or lose
                 * the signal in between): taken in now, and acted on at once. */
                (void) sigemptyset(&both);
                (void) sigaddset(&both, SIGTERM);
                (void) sigaddset(&both, SIGINT);
                (void) pthread_sigmask(SIG_UNBLOCK, &both, NULL);
        }
        if (event_add(s->signal_event, NULL) < 0)
                return -EIO;
        if (signal_received)
                event_active(s->signal_event, EV_READ, 0);
        if (s->config.notify)
                service_notify("READY=1");
        if (event_base_dispatch(s->base) < 0)
                return -EIO;
        {
                RpcServerStats st;

                rpc_server_stats(s, &st);
                log_info("rpc: stopped; %lu requests dropped (their client closed before a "
                         "handler took them), %lu answers discarded (their client closed while "
                         "the handler ran), %lu handshakes delayed by a rate, %lu connections "
                         "closed by a full handshake queue",
                         st.jobs_dropped, st.replies_discarded, st.handshakes_delayed,
                         st.handshakes_closed);
        }
        return 0;
}

int rpc_server_dup_listen_fd(RpcServer *s)
{
        int fd = s->bound ? evhttp_bound_socket_get_fd(s->bound) : -1, copy;

        if (fd < 0)
                return -EBADF;
        copy = fcntl(fd, F_DUPFD, 3);
        return copy < 0 ? -errno : copy;
}

bool rpc_server_signalled(const RpcServer *s)
{
        return s->signalled || signal_received;
}

bool rpc_server_handover_signalled(const RpcServer *s)
{
        sigset_t both;

        (void) sigemptyset(&both);
        (void) sigaddset(&both, SIGTERM);
        (void) sigaddset(&both, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &both, NULL);
        return rpc_server_signalled(s);
}

void rpc_server_stop_for_handover(RpcServer *s)
{
        s->handover = true;
        event_active(s->stop_event, EV_READ, 0);
}

void rpc_server_stop(RpcServer *s)
{
        event_active(s->stop_event, EV_READ, 0);
}
