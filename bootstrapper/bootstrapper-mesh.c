/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's side of the mesh (docs/mesh.md): asks the join services for the mesh with its
 * WireGuard key in its aTLS certificate, bound by its evidence, and brings cloister0 to the
 * answer: new members become peers within one interval, evicted ones are removed.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloister/attest-atls.h"
#include "cloister/attest.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/mesh.h"

#include "bootstrapper.h"

struct BootstrapperMesh {
        Bootstrapper *b;
        NodeMetadata md;
        AttestPolicy *policy;
        PolicyVerifier pv;
        AtlsContext *atls;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stop, started;
        size_t last_peers;
        bool applied;
        /* The last warning and when: the same one again is logged once a minute, not every
         * interval (an evicted node keeps asking). */
        char last_warning[512];
        time_t warned;
};

static void warn(BootstrapperMesh *m, const char *peer, const char *what)
{
        char text[sizeof(m->last_warning)];

        (void) snprintf(text, sizeof(text), "mesh: %s: %s", peer, what);
        if (strcmp(text, m->last_warning) == 0 && time(NULL) - m->warned < 60)
                return;
        log_warning("%s", text);
        (void) snprintf(m->last_warning, sizeof(m->last_warning), "%s", text);
        m->warned = time(NULL);
}

/* One round: the first join service that answers decides. */
static int mesh_round(BootstrapperMesh *m)
{
        RpcClientConfig cfg;
        int r = -EHOSTUNREACH;

        rpc_client_config_defaults(&cfg);
        cfg.retries = 0;
        for (size_t i = 0; i < m->md.n_peers; i++) {
                _cleanup_(json_decrefp) json_t *resp = NULL;
                _cleanup_(freep) char *url = NULL, *text = NULL;
                MeshDoc doc = {};
                long status = 0;
                Diag d;

                if (asprintf(&url, "https://%s", m->md.peers[i]) < 0)
                        return -ENOMEM;
                diag_clear(&d);
                r = rpc_call(m->atls, &cfg, "GET", url, "/v1/mesh", NULL, true, &status, &resp, &d);
                if (r < 0) {
                        warn(m, m->md.peers[i], d.message);
                        continue;
                }
                if (status != 200) {
                        char why[sizeof(d.message) + 64];

                        (void) snprintf(why, sizeof(why),
                                        "the join service refused the mesh (HTTP %ld): %s", status,
                                        json_string_value(json_object_get(resp, "detail"))
                                                ?: "no reason given");
                        warn(m, m->md.peers[i], why);
                        r = -EPERM;
                        continue;
                }
                /* Sealed to this node's aTLS key by the join service's monitor: its network
                 * process can neither read nor alter the peers. */
                r = rpc_answer_unseal(m->atls, "mesh", &resp, &d);
                if (r >= 0)
                        r = json_dump_compact(resp, &text);
                if (r >= 0)
                        r = mesh_doc_parse(text, strlen(text), &doc, &d);
                if (r < 0) {
                        warn(m, m->md.peers[i], d.message);
                        continue;
                }
                diag_clear(&d);
                r = mesh_apply(m->b->mesh_backend, &m->b->mesh_key, &doc, m->b->mesh_runtime_dir,
                               &d);
                if (r < 0) {
                        char why[sizeof(d.message) + 64];

                        (void) snprintf(why, sizeof(why),
                                        "cannot apply its mesh (the mesh range stays closed): %s",
                                        d.message);
                        warn(m, m->md.peers[i], why);
                } else if (!m->applied || m->last_peers != doc.n_peers) {
                        log_info("mesh: %s is %s with %zu members listed (from %s)", MESH_DEVICE,
                                 doc.address, doc.n_peers, m->md.peers[i]);
                        printf("cloister-bootstrapper: mesh applied: %s, %zu members\n",
                               doc.address, doc.n_peers);
                        fflush(stdout);
                        m->applied = true;
                        m->last_peers = doc.n_peers;
                }
                mesh_doc_done(&doc);
                return r;
        }
        return r;
}

static void *mesh_thread(void *arg)
{
        BootstrapperMesh *m = arg;

        for (;;) {
                struct timespec until;

                (void) mesh_round(m);
                (void) clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += (time_t) m->b->mesh_interval_sec;
                (void) pthread_mutex_lock(&m->lock);
                while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &until) == 0)
                        ;
                if (m->stop) {
                        (void) pthread_mutex_unlock(&m->lock);
                        return NULL;
                }
                (void) pthread_mutex_unlock(&m->lock);
        }
}

int bootstrapper_mesh_start(Bootstrapper *b, const NodeMetadata *md, const char *policy_path,
                            BootstrapperMesh **ret)
{
        BootstrapperMesh *m;
        uint8_t cid[CLUSTER_ID_SIZE];
        AtlsVerifier v;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_oom();
        m->b = b;
        m->md = *md;
        (void) pthread_mutex_init(&m->lock, NULL);
        (void) pthread_cond_init(&m->wake, NULL);
        r = bootstrapper_join_service_policy(b, md, policy_path, cid, &m->policy);
        if (r < 0)
                goto fail;
        m->pv = (PolicyVerifier){ .policy = m->policy };
        v = policy_verifier(&m->pv);
        r = atls_context_new(ATLS_ROLE_CLIENT, &b->attester, &v, &m->atls);
        if (r >= 0)
                r = atls_context_set_wg_key(m->atls, b->mesh_key.public_key);
        if (r < 0) {
                log_error_errno(r, "mesh: cannot set up aTLS: %m");
                goto fail;
        }
        if (pthread_create(&m->thread, NULL, mesh_thread, m) != 0) {
                r = log_error_errno(-EAGAIN, "mesh: cannot start its thread");
                goto fail;
        }
        m->started = true;
        b->mesh_started = true;
        *ret = m;
        return 0;
fail:
        bootstrapper_mesh_stop(m);
        return r;
}

void bootstrapper_mesh_stop(BootstrapperMesh *m)
{
        if (!m)
                return;
        if (m->started) {
                (void) pthread_mutex_lock(&m->lock);
                m->stop = true;
                (void) pthread_cond_signal(&m->wake);
                (void) pthread_mutex_unlock(&m->lock);
                (void) pthread_join(m->thread, NULL);
        }
        atls_context_free(m->atls);
        attest_policy_free(m->policy);
        (void) pthread_mutex_destroy(&m->lock);
        (void) pthread_cond_destroy(&m->wake);
        free(m);
}
