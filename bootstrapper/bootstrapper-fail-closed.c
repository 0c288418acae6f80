/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's side of continuous re-attestation (docs/reattestation.md, "The node's side:
 * fail-closed"): a member attests its join services again and again, the way it attested them
 * to join (aTLS, the image PCRs this node measured, PCR 15 = its cluster, the AK trust of
 * --join-policy), with GET /v1/node. With --fail-closed-after SEC, a node that has attested none
 * of them for longer than SEC stops serving what it serves beyond its public evidence (POST
 * /v1/log, the boot log) until one passes again. Its GET /v1/node says so.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/attest-atls.h"
#include "cloister/log.h"
#include "cloister/rpc.h"

#include "bootstrapper.h"

struct BootstrapperWatch {
        Bootstrapper *b;
        AttestPolicy *policy;
        char **peers;
        size_t n_peers;
        unsigned fail_closed_after, interval;
        pthread_t thread;
        pthread_mutex_t lock; /* everything below */
        pthread_cond_t wake;
        bool stop;
        time_t started;       /* the watch's start: the first grace period counts from it */
        time_t last_attested; /* 0: not yet */
        char last_peer[300];
        char last_error[512];
        bool closed;
        time_t closed_since;
        unsigned attempts, passes;
};

/* One round: each join service in turn until one passes. 0 if one did (its address in peer),
 * else the last reason in why. */
static int attest_round(BootstrapperWatch *w, char *peer, size_t peer_size, char *why,
                        size_t why_size)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        PolicyVerifier pv = { .policy = w->policy };
        AtlsVerifier v;
        RpcClientConfig cfg;
        int r;

        pv.at = time(NULL);
        v = policy_verifier(&pv);
        /* No evidence of our own: GET /v1/node is served to unattested clients, and this
         * node's TPM is not asked for a quote every interval. */
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls);
        if (r < 0) {
                (void) snprintf(why, why_size, "cannot set up aTLS: %s", strerror(-r));
                return r;
        }
        rpc_client_config_defaults(&cfg);
        cfg.retries = 0;
        cfg.connect_timeout_ms = 5000;
        cfg.total_timeout_ms = 15000;
        r = -ENOENT;
        (void) snprintf(why, why_size, "no join service in the metadata");
        for (size_t i = 0; i < w->n_peers; i++) {
                _cleanup_(json_decrefp) json_t *resp = NULL;
                _cleanup_(freep) char *url = NULL;
                long status = 0;
                Diag d;

                if (asprintf(&url, "https://%s", w->peers[i]) < 0)
                        return -ENOMEM;
                diag_clear(&d);
                r = rpc_call(atls, &cfg, "GET", url, "/v1/node", NULL, true, &status, &resp, &d);
                if (r >= 0 && status != 200)
                        r = diag_fail(&d, -EPROTO, "node", -1, "answered HTTP %ld", status);
                if (r < 0) {
                        (void) snprintf(why, why_size, "%.80s: %.400s", w->peers[i], d.message);
                        continue;
                }
                (void) snprintf(peer, peer_size, "%s", w->peers[i]);
                return 0;
        }
        return r;
}

static void *watch_thread(void *arg)
{
        BootstrapperWatch *w = arg;

        for (;;) {
                char peer[300] = "", why[512] = "";
                struct timespec until;
                time_t now;
                int r;

                r = attest_round(w, peer, sizeof(peer), why, sizeof(why));
                now = time(NULL);
                (void) pthread_mutex_lock(&w->lock);
                w->attempts++;
                if (r >= 0) {
                        w->passes++;
                        w->last_attested = now;
                        (void) snprintf(w->last_peer, sizeof(w->last_peer), "%s", peer);
                        w->last_error[0] = '\0';
                        if (w->closed) {
                                w->closed = false;
                                log_warning("bootstrapper: the join service %s passes attestation "
                                            "again: serving again what fail-closed held back "
                                            "(closed for %lld s)",
                                            peer, (long long) (now - w->closed_since));
                        }
                } else {
                        time_t since = w->last_attested ?: w->started;

                        (void) snprintf(w->last_error, sizeof(w->last_error), "%s", why);
                        log_warning("bootstrapper: no join service attested (%s)", why);
                        /* The decision: longer than the configured time without a pass. */
                        if (!w->closed && w->fail_closed_after > 0 &&
                            now - since > (time_t) w->fail_closed_after) {
                                w->closed = true;
                                w->closed_since = now;
                                log_warning("bootstrapper: FAIL-CLOSED: no join service of this "
                                            "cluster has passed attestation for %lld s (more "
                                            "than --fail-closed-after %u): this node stops "
                                            "serving its log and anything else but its evidence "
                                            "until one passes again. Last reason: %s",
                                            (long long) (now - since), w->fail_closed_after, why);
                        }
                }
                (void) clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += (time_t) w->interval;
                while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
                        ;
                if (w->stop) {
                        (void) pthread_mutex_unlock(&w->lock);
                        return NULL;
                }
                (void) pthread_mutex_unlock(&w->lock);
        }
}

int bootstrapper_watch_start(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                             unsigned fail_closed_after, unsigned interval)
{
        BootstrapperWatch *w;
        uint8_t cid[CLUSTER_ID_SIZE];
        int r;

        if (md->n_peers == 0 || !policy_path)
                return log_error_errno(-EINVAL,
                                       "--fail-closed-after: this node has no join service to "
                                       "attest (no peers in its metadata, or no --join-policy).");
        w = calloc(1, sizeof(*w));
        if (!w)
                return log_oom();
        w->b = b;
        w->fail_closed_after = fail_closed_after;
        w->interval = interval;
        w->started = time(NULL);
        (void) pthread_mutex_init(&w->lock, NULL);
        (void) pthread_cond_init(&w->wake, NULL);
        r = bootstrapper_join_service_policy(b, md, policy_path, cid, &w->policy);
        if (r >= 0) {
                w->peers = calloc(md->n_peers, sizeof(char *));
                if (!w->peers)
                        r = log_oom();
        }
        for (size_t i = 0; r >= 0 && i < md->n_peers; i++) {
                w->peers[i] = strdup(md->peers[i]);
                if (!w->peers[i])
                        r = log_oom();
                w->n_peers = i + 1;
        }
        if (r >= 0 && pthread_create(&w->thread, NULL, watch_thread, w) != 0)
                r = log_error_errno(-EAGAIN, "Cannot start attesting the join services.");
        if (r < 0) {
                w->thread = 0;
                b->watch = w;
                bootstrapper_watch_stop(b);
                return r;
        }
        log_info("bootstrapper: attesting %zu join service(s) every %u s; fail-closed after %u s "
                 "without a pass",
                 w->n_peers, interval, fail_closed_after);
        b->watch = w;
        return 0;
}

void bootstrapper_watch_stop(Bootstrapper *b)
{
        BootstrapperWatch *w = b->watch;

        if (!w)
                return;
        if (w->thread) {
                (void) pthread_mutex_lock(&w->lock);
                w->stop = true;
                (void) pthread_cond_signal(&w->wake);
                (void) pthread_mutex_unlock(&w->lock);
                (void) pthread_join(w->thread, NULL);
        }
        for (size_t i = 0; i < w->n_peers; i++)
                free(w->peers[i]);
        free(w->peers);
        attest_policy_free(w->policy);
        (void) pthread_mutex_destroy(&w->lock);
        (void) pthread_cond_destroy(&w->wake);
        free(w);
        b->watch = NULL;
}

bool bootstrapper_fail_closed(Bootstrapper *b, char *why, size_t size)
{
        BootstrapperWatch *w = b->watch;
        bool closed;

        if (!w)
                return false;
        (void) pthread_mutex_lock(&w->lock);
        closed = w->closed;
        if (closed)
                (void) snprintf(why, size,
                                "this node is fail-closed: no join service of its cluster has "
                                "passed attestation for more than %u s (%s); it serves its log "
                                "again once one passes",
                                w->fail_closed_after,
                                w->last_error[0] ? w->last_error : "no reason recorded");
        (void) pthread_mutex_unlock(&w->lock);
        return closed;
}

static json_t *time_or_null(time_t t)
{
        char s[32];
        struct tm tm;

        if (t == 0)
                return json_null();
        (void) gmtime_r(&t, &tm);
        (void) strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return json_string(s);
}

json_t *bootstrapper_watch_json(Bootstrapper *b)
{
        BootstrapperWatch *w = b->watch;
        json_t *o;

        if (!w)
                return json_null();
        (void) pthread_mutex_lock(&w->lock);
        o = json_pack("{s:b,s:i,s:i,s:o,s:s,s:s,s:o,s:i,s:i}", "failClosed", w->closed,
                      "failClosedAfter", (int) w->fail_closed_after, "intervalSeconds",
                      (int) w->interval, "lastAttested", time_or_null(w->last_attested),
                      "lastJoinService", w->last_peer, "lastError", w->last_error,
                      "failClosedSince", time_or_null(w->closed ? w->closed_since : 0), "attempts",
                      (int) w->attempts, "passes", (int) w->passes);
        (void) pthread_mutex_unlock(&w->lock);
        return o ?: json_null();
}
