/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refusals the network process's event loop reports (a request without evidence on a route that
 * needs it: join_on_refusal(), the server's on_refusal hook): queued and sent to the monitor by
 * a thread of their own, so that the loop never waits for a free monitor channel or for the
 * monitor's audit log. The queue is bounded: past it a refusal is counted, and the count is
 * reported as one refusal once the queue has room (the monitor counts such refusals per kind
 * anyway: join_monitor_refusal()).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/log.h"

#include "join-service.h"

typedef struct QueuedRefusal {
        char node[64];
        char reason[160];
} QueuedRefusal;

static struct {
        pthread_mutex_t lock;
        pthread_cond_t more, idle;
        QueuedRefusal queue[JOIN_REFUSALS_QUEUED];
        size_t head, n;
        bool started, busy;
        unsigned long dropped; /* not queued since the last report of them */
        time_t warned;
        JoinService *js;
} refusals = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .more = PTHREAD_COND_INITIALIZER,
        .idle = PTHREAD_COND_INITIALIZER,
};

#ifdef CLOISTER_FAULT_INJECTION
/* Tests only: CLOISTER_FAULT=slow-refusal-report:MS makes each report take MS milliseconds
 * longer (a monitor busy with kubeadm calls and fsyncs on every channel): the event loop must
 * not wait for it (tests/integration/test_join_fairness.py). */
static void fault_slow_report(void)
{
        const char *f = getenv("CLOISTER_FAULT");
        unsigned long ms;
        struct timespec ts;

        if (!f || strncmp(f, "slow-refusal-report:", 20) != 0)
                return;
        ms = strtoul(f + 20, NULL, 10);
        ts = (struct timespec){ (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
        (void) nanosleep(&ts, NULL);
}
#else
static void fault_slow_report(void)
{
}
#endif

/* One report: a monitor call (a channel free, the audit log's fsync), for the reporter only. */
static void report(JoinService *js, const char *node, const char *reason)
{
        fault_slow_report();
        join_network_refusal(js, node, "", reason);
}

static void *reporter_main(void *arg)
{
        sigset_t both;

        /* Signals are the event loop's (rpc_server_run()). */
        (void) sigemptyset(&both);
        (void) sigaddset(&both, SIGTERM);
        (void) sigaddset(&both, SIGINT);
        (void) pthread_sigmask(SIG_BLOCK, &both, NULL);

        (void) pthread_mutex_lock(&refusals.lock);
        for (;;) {
                QueuedRefusal r = {};
                unsigned long dropped = 0;

                while (refusals.n == 0 && refusals.dropped == 0)
                        (void) pthread_cond_wait(&refusals.more, &refusals.lock);
                if (refusals.n > 0) {
                        r = refusals.queue[refusals.head];
                        refusals.head = (refusals.head + 1) % JOIN_REFUSALS_QUEUED;
                        refusals.n--;
                } else {
                        dropped = refusals.dropped;
                        refusals.dropped = 0;
                }
                refusals.busy = true;
                (void) pthread_mutex_unlock(&refusals.lock);

                if (dropped == 0)
                        report(refusals.js, r.node, r.reason);
                else {
                        (void) snprintf(r.reason, sizeof(r.reason),
                                        "%lu more requests without evidence were refused; too "
                                        "many at once to report one by one",
                                        dropped);
                        report(refusals.js, "(network process)", r.reason);
                }

                (void) pthread_mutex_lock(&refusals.lock);
                refusals.busy = false;
                (void) pthread_cond_broadcast(&refusals.idle);
        }
        return NULL;
}

void join_on_refusal(void *userdata, const RpcRequest *req, const char *reason)
{
        JoinService *js = userdata;

        (void) pthread_mutex_lock(&refusals.lock);
        if (!refusals.started) {
                pthread_t t;

                refusals.js = js;
                if (pthread_create(&t, NULL, reporter_main, NULL) == 0) {
                        (void) pthread_detach(t);
                        refusals.started = true;
                } else
                        log_error("join-service: cannot start the thread that reports refusals "
                                  "to the monitor; they are counted only");
        }
        if (refusals.started && refusals.n < JOIN_REFUSALS_QUEUED) {
                QueuedRefusal *q =
                        &refusals.queue[(refusals.head + refusals.n) % JOIN_REFUSALS_QUEUED];

                (void) snprintf(q->node, sizeof(q->node), "%s", req->peer ?: "?");
                (void) snprintf(q->reason, sizeof(q->reason), "%s", reason);
                refusals.n++;
        } else {
                refusals.dropped++;
                if (time(NULL) - refusals.warned >= 10) {
                        log_warning("join-service: refusals come faster than the monitor takes "
                                    "them: %lu not reported one by one (their count is)",
                                    refusals.dropped);
                        refusals.warned = time(NULL);
                }
        }
        (void) pthread_cond_signal(&refusals.more);
        (void) pthread_mutex_unlock(&refusals.lock);
}

void join_refusals_flush(void)
{
        struct timespec until;

        (void) clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        (void) pthread_mutex_lock(&refusals.lock);
        while (refusals.started && (refusals.n > 0 || refusals.busy || refusals.dropped > 0))
                if (pthread_cond_timedwait(&refusals.idle, &refusals.lock, &until) == ETIMEDOUT)
                        break;
        (void) pthread_mutex_unlock(&refusals.lock);
}
