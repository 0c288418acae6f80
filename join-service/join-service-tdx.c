/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX collateral for evidence that carries none (a real TD's), so that no join waits on Intel
 * (docs/tdx.md, "Joins and the collateral cache"): the monitor reads its cache (offline) for its
 * own verification and answers the network process's JOIN_PRIVSEP_TDX_COLLATERAL requests from
 * it; its refresher thread fetches ahead of nextUpdate for the platforms seen, off every join's
 * path.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloister/attest.h"
#include "cloister/log.h"
#include "cloister/privsep-tdx.h"

#include "join-service.h"

static TdxRefresher refresher;

void join_tdx_configure(const char *cache_dir, const char *pcs_url, unsigned ahead_sec,
                        unsigned interval_sec)
{
        tdx_refresher_init(&refresher);
        refresher.pcs.cache_dir = cache_dir;
        if (pcs_url)
                refresher.pcs.base_url = pcs_url;
        refresher.ahead_sec = ahead_sec;
        refresher.interval_sec = interval_sec;
}

/* The monitor's own verification: the cache alone, never the network. */
static int monitor_source(void *userdata, const char *fmspc, const char *ca, time_t at,
                          TdxCollateral **ret, char *note, size_t note_size, Diag *d)
{
        (void) userdata;
        tdx_refresher_seen(&refresher, fmspc, ca);
        return privsep_tdx_collateral_lookup(&refresher.pcs, fmspc, ca, at, ret, note, note_size,
                                             d);
}

/* The network process's verification in the handshake: it has no cache (an empty root) and
 * asks the monitor. */
static int network_source(void *userdata, const char *fmspc, const char *ca, time_t at,
                          TdxCollateral **ret, char *note, size_t note_size, Diag *d)
{
        JoinService *js = userdata;
        const char *detail, *answer;
        uint8_t *buf = NULL;
        size_t size = 0;
        PrivsepBuf b;
        int status, r;

        (void) at; /* the monitor judges freshness at its own time */
        privsep_tdx_collateral_request(&b, fmspc, ca);
        r = monitor_call(js->monitor, &b, &status, &detail, &answer, &buf, &size);
        privsep_buf_done(&b);
        if (r < 0)
                return diag_fail(d, r, "tdx-collateral-missing", -1,
                                 "the join service's monitor did not answer (%s)", strerror(-r));
        r = privsep_tdx_collateral_decode(buf, size, ret, note, note_size, d);
        privsep_wipe_free(buf, size);
        return r;
}

void join_tdx_monitor_init(void)
{
        attest_tdx_collateral_source_set(monitor_source, NULL);
        /* Platforms cached before a restart are kept fresh too, not only those seen since. */
        if (tdx_refresher_seen_from_cache(&refresher) > 0)
                log_info("join-service: keeping the cached TDX collateral of %zu platform(s) fresh",
                         refresher.n_keys);
        if (tdx_refresher_start(&refresher) < 0)
                log_error("join-service: cannot start the TDX collateral refresher");
        else
                log_info("join-service: TDX collateral cache %s, refreshed from %s %u s ahead "
                         "of nextUpdate",
                         refresher.pcs.cache_dir, refresher.pcs.base_url, refresher.ahead_sec);
}

void join_tdx_monitor_done(void)
{
        attest_tdx_collateral_source_set(NULL, NULL);
        tdx_refresher_stop(&refresher);
}

void join_tdx_network_init(JoinService *js)
{
        attest_tdx_collateral_source_set(network_source, js);
}

void join_tdx_answer(const PrivsepMsg *m, PrivsepBuf *out)
{
        /* A platform a joining node showed: kept fresh from now on. */
        tdx_refresher_seen(&refresher, privsep_text(m, 0), privsep_text(m, 1));
        privsep_tdx_collateral_answer(&refresher.pcs, m, out);
}
