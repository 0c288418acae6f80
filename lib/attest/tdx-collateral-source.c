/* SPDX-License-Identifier: Apache-2.0 */
/* Collateral for tdx and sim-tdx evidence that carries none, from the process's source (a join
 * service: its monitor's cache, docs/tdx.md, "Joins and the collateral cache"; the CLI and a
 * joining node: their own cache, filled from Intel PCS or a PCCS, "The other direction"). */
#include <pthread.h>
#include <stdio.h>

#include "attest-internal.h"
#include "cloister/log.h"
#include "cloister/tdx.h"

static pthread_mutex_t source_lock = PTHREAD_MUTEX_INITIALIZER;
static AttestTdxCollateralSource source_fn;
static void *source_userdata;

void attest_tdx_collateral_source_set(AttestTdxCollateralSource fn, void *userdata)
{
        (void) pthread_mutex_lock(&source_lock);
        source_fn = fn;
        source_userdata = userdata;
        (void) pthread_mutex_unlock(&source_lock);
}

int attest_tdx_collateral_lookup(const TdxQuote *q, const AttestPolicy *p, time_t at,
                                 TdxCollateral **ret, char *note, size_t note_size, AttestReport *r,
                                 Diag *d)
{
        AttestTdxCollateralSource fn;
        TdxPcsResult key;
        void *userdata;
        Diag sub;
        int k;

        *ret = NULL;
        note[0] = '\0';
        (void) pthread_mutex_lock(&source_lock);
        fn = source_fn;
        userdata = source_userdata;
        (void) pthread_mutex_unlock(&source_lock);
        if (!fn)
                return 0; /* verified with what the evidence carries, as before */
        diag_clear(&sub);
        k = tdx_pcs_platform(q, &key, &sub);
        if (k >= 0)
                k = fn(userdata, key.fmspc, key.ca, at, ret, note, note_size, &sub);
        if (k < 0) {
                *ret = tdx_collateral_free(*ret);
                /* Without collateral the default policy refuses anyway (tdx-tcb-status): say
                 * why there is none and what fixes it, instead of an unknown TCB status. */
                if (p->tdx.require_collateral)
                        return report_fail(r, d, k == -ENOMEM ? k : -EPERM,
                                           "tdx-collateral-missing", -1, NULL, 0, NULL, 0, "%s",
                                           sub.message);
                report_add(r, "tdx-collateral-missing", -1, CHECK_WARN, false,
                           "verified without collateral (the policy allows it): %s", sub.message);
                return 0;
        }
        if (note[0]) {
                log_warning("attest: TDX collateral of FMSPC %s (PCK CA %s) from the cache is "
                            "STALE: %s",
                            key.fmspc, key.ca, note);
                report_add(r, "tdx-collateral-cache", -1, CHECK_WARN, false,
                           "STALE collateral from the cache (FMSPC %s, PCK CA %s): %s", key.fmspc,
                           key.ca, note);
        } else
                report_add(r, "tdx-collateral-cache", -1, CHECK_PASS, false,
                           "the evidence carries no collateral: FMSPC %s, PCK CA %s from the "
                           "collateral cache",
                           key.fmspc, key.ca);
        return 0;
}

int attest_tdx_collateral_from_pcs(void *userdata, const char *fmspc, const char *ca, time_t at,
                                   TdxCollateral **ret, char *note, size_t note_size, Diag *d)
{
        const AttestTdxPcsSource *s = userdata;
        const char *dir = s->pcs.cache_dir ?: "(no cache)";
        TdxPcsResult res = {};
        Diag sub;
        int r;

        *ret = NULL;
        note[0] = '\0';
        diag_clear(&sub);
        r = tdx_pcs_collateral_for(&s->pcs, fmspc, ca, at, ret, &res, &sub);
        if (r == -ENOENT && s->pcs.offline)
                return diag_fail(d, -ENOENT, "tdx-collateral-missing", -1,
                                 "no TDX collateral cached for FMSPC %s (PCK CA %s) in %s: fill "
                                 "the cache once online (cloister attestation verify-report "
                                 "--type tdx --quote Q --cache-dir %s, Q a quote of that "
                                 "platform), or %s",
                                 fmspc, ca, dir, dir, s->fetch_hint);
        if (r < 0)
                return diag_fail(d, r == -ENOMEM ? r : -EIO, "tdx-collateral-missing", -1,
                                 "cannot get the TDX collateral of FMSPC %s (PCK CA %s) from %s "
                                 "(cache %s): %s",
                                 fmspc, ca, s->pcs.base_url, dir, sub.message);
        if (res.stale > 0)
                (void) snprintf(note, note_size, "%s (%s)", res.stale_note, s->fetch_hint);
        log_debug("attest: TDX collateral of FMSPC %s (PCK CA %s): %u item(s) fetched from %s, "
                  "the rest from %s",
                  fmspc, ca, res.fetched, s->pcs.base_url, dir);
        return 0;
}
