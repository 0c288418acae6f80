/* SPDX-License-Identifier: Apache-2.0 */
/* Refreshing cached TDX collateral ahead of its nextUpdate, off every verification's path. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cloister/log.h"
#include "cloister/tdx.h"

void tdx_refresher_init(TdxRefresher *t)
{
        *t = (TdxRefresher){};
        tdx_pcs_config_defaults(&t->pcs);
        t->ahead_sec = 24 * 3600;
        t->interval_sec = 3600;
        (void) pthread_mutex_init(&t->lock, NULL);
        (void) pthread_cond_init(&t->wake, NULL);
}

void tdx_refresher_seen(TdxRefresher *t, const char *fmspc, const char *ca)
{
        size_t i;

        if (!tdx_pcs_key_ok(fmspc, ca))
                return;
        (void) pthread_mutex_lock(&t->lock);
        for (i = 0; i < t->n_keys; i++)
                if (strcmp(t->fmspc[i], fmspc) == 0 && strcmp(t->ca[i], ca) == 0)
                        break;
        if (i == t->n_keys) {
                /* Bounded: past the table, the oldest is forgotten. */
                i = t->n_keys < TDX_REFRESH_KEYS_MAX ? t->n_keys++ : t->next_key;
                t->next_key = (i + 1) % TDX_REFRESH_KEYS_MAX;
                (void) snprintf(t->fmspc[i], sizeof(t->fmspc[i]), "%s", fmspc);
                (void) snprintf(t->ca[i], sizeof(t->ca[i]), "%s", ca);
                (void) pthread_cond_signal(&t->wake);
        }
        (void) pthread_mutex_unlock(&t->lock);
}

size_t tdx_refresher_seen_from_cache(TdxRefresher *t)
{
        static const char *const cas[] = { "processor", "platform" };
        struct dirent *de;
        size_t n = 0;
        DIR *dir;

        if (!t->pcs.cache_dir || !(dir = opendir(t->pcs.cache_dir)))
                return 0;
        /* fmspc-<FMSPC>/ with each PCK CA whose CRL is cached: what earlier lookups fetched. */
        while ((de = readdir(dir))) {
                if (strncmp(de->d_name, "fmspc-", 6) != 0 ||
                    !tdx_pcs_key_ok(de->d_name + 6, "platform"))
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(cas); i++) {
                        char path[4096];

                        (void) snprintf(path, sizeof(path), "%s/pck_crl-%s.der", t->pcs.cache_dir,
                                        cas[i]);
                        if (access(path, F_OK) == 0) {
                                tdx_refresher_seen(t, de->d_name + 6, cas[i]);
                                n++;
                        }
                }
        }
        (void) closedir(dir);
        return n;
}

unsigned tdx_refresher_round(TdxRefresher *t, time_t now)
{
        char fmspc[TDX_REFRESH_KEYS_MAX][13], ca[TDX_REFRESH_KEYS_MAX][16];
        TdxPcsConfig c = t->pcs;
        unsigned failed = 0;
        size_t n;

        (void) pthread_mutex_lock(&t->lock);
        n = t->n_keys;
        memcpy(fmspc, t->fmspc, sizeof(fmspc));
        memcpy(ca, t->ca, sizeof(ca));
        (void) pthread_mutex_unlock(&t->lock);
        c.offline = false;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(tdx_collateral_freep) TdxCollateral *col = NULL;
                TdxPcsResult res;
                Diag d;
                int r;

                diag_clear(&d);
                /* Judged at now + ahead: an item whose nextUpdate falls before is fetched again
                 * now, while the cached one is still good for joins. */
                r = tdx_pcs_collateral_for(&c, fmspc[i], ca[i], now + (time_t) t->ahead_sec, &col,
                                           &res, &d);
                if (r < 0 || res.refresh_failed) {
                        failed++;
                        log_warning("tdx-refresh: cannot refresh the collateral of FMSPC %s (PCK "
                                    "CA %s) from %s: %s",
                                    fmspc[i], ca[i], c.base_url,
                                    r < 0 ? d.message : res.stale_note);
                } else if (res.stale > 0)
                        log_warning("tdx-refresh: FMSPC %s (PCK CA %s): %s", fmspc[i], ca[i],
                                    res.stale_note);
                else if (res.fetched > 0)
                        log_info("tdx-refresh: FMSPC %s (PCK CA %s): %u item(s) refreshed ahead "
                                 "of their nextUpdate",
                                 fmspc[i], ca[i], res.fetched);
        }
        (void) pthread_mutex_lock(&t->lock);
        t->rounds++;
        t->failures = failed ? t->failures + 1 : 0;
        (void) pthread_mutex_unlock(&t->lock);
        return failed;
}

static void *refresher_thread(void *arg)
{
        TdxRefresher *t = arg;

        (void) pthread_mutex_lock(&t->lock);
        while (!t->stop) {
                struct timespec until;
                unsigned wait = t->interval_sec;

                if (t->n_keys > 0) {
                        (void) pthread_mutex_unlock(&t->lock);
                        (void) tdx_refresher_round(t, time(NULL));
                        (void) pthread_mutex_lock(&t->lock);
                }
                /* After a failed round: interval/8, doubling up to the interval. */
                if (t->failures > 0) {
                        unsigned k = t->failures - 1 < 3 ? t->failures - 1 : 3;
                        wait = (t->interval_sec / 8 ?: 1) << k;
                        if (wait > t->interval_sec)
                                wait = t->interval_sec;
                        log_warning("tdx-refresh: %u failed round(s): next try in %u s",
                                    t->failures, wait);
                }
                (void) clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += wait ?: 1;
                size_t seen = t->n_keys;
                while (!t->stop && t->n_keys == seen &&
                       pthread_cond_timedwait(&t->wake, &t->lock, &until) == 0)
                        ;
        }
        (void) pthread_mutex_unlock(&t->lock);
        return NULL;
}

int tdx_refresher_start(TdxRefresher *t)
{
        if (!t->pcs.cache_dir || !t->pcs.base_url)
                return -EINVAL;
        if (pthread_create(&t->thread, NULL, refresher_thread, t) != 0)
                return -EAGAIN;
        t->running = true;
        return 0;
}

void tdx_refresher_stop(TdxRefresher *t)
{
        if (t->running) {
                (void) pthread_mutex_lock(&t->lock);
                t->stop = true;
                (void) pthread_cond_signal(&t->wake);
                (void) pthread_mutex_unlock(&t->lock);
                (void) pthread_join(t->thread, NULL);
                t->running = false;
        }
        (void) pthread_mutex_destroy(&t->lock);
        (void) pthread_cond_destroy(&t->wake);
}
