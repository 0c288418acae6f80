/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collateral of TDX evidence that carries none (a real TD's: every node's, a join service's
 * too), for the verbs that attest nodes (docs/tdx.md, "The other direction"): the owner's cache,
 * fetched from Intel PCS or a PCCS when missing or stale; with --pcs-cache DIR alone, that cache
 * and nothing else (offline). Evidence that carries its own (sim-tdx) is verified with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/attest.h"
#include "cloister/log.h"

static AttestTdxPcsSource source;
static char *default_cache;

int cli_tdx_pcs_url_check(const char *option, const char *url)
{
        static const char suffix[] = "/tdx/certification/v4";
        size_t n = strlen(url);

        if (n < strlen(suffix) || strcmp(url + n - strlen(suffix), suffix) != 0)
                return log_error_errno(-EUSAGE,
                                       "%s %s: give the TDX base URL of Intel PCS or a PCCS, "
                                       "ending in %s (default " TDX_PCS_URL_DEFAULT ").",
                                       option, url, suffix);
        return 0;
}

int cli_tdx_collateral_setup(const char *pcs_url, const char *pcs_cache, const CliConfig *config,
                             bool offline)
{
        const char *url = pcs_url ?: (config ? config->tdx_pcs_url : NULL);

        tdx_pcs_config_defaults(&source.pcs);
        if (url && cli_tdx_pcs_url_check(pcs_url ? "--pcs-url" : "tdxPcsUrl", url) < 0)
                return -EUSAGE;
        if (url)
                source.pcs.base_url = url;
        if (pcs_cache) {
                source.pcs.cache_dir = pcs_cache;
                /* --pcs-cache DIR alone: that cache only, nothing fetched. */
                source.pcs.offline = !pcs_url;
        } else {
                free(default_cache);
                default_cache = NULL;
                if (getenv("XDG_CACHE_HOME") &&
                    asprintf(&default_cache, "%s/cloister/tdx", getenv("XDG_CACHE_HOME")) < 0)
                        default_cache = NULL;
                else if (!getenv("XDG_CACHE_HOME") &&
                         asprintf(&default_cache, "%s/.cache/cloister/tdx",
                                  getenv("HOME") ?: "/tmp") < 0)
                        default_cache = NULL;
                if (!default_cache)
                        return log_oom();
                source.pcs.cache_dir = default_cache;
        }
        /* verify --bundle opens no connection: the cache alone, whatever it is. */
        if (offline)
                source.pcs.offline = true;
        source.fetch_hint = offline ? "verify --bundle fetches nothing: give --pcs-cache DIR "
                                      "holding it"
                            : source.pcs.offline
                                    ? "drop --pcs-cache (or add --pcs-url URL) to fetch it from "
                                      "Intel PCS or a PCCS"
                                    : "check --pcs-url (or the configuration's tdxPcsUrl) and "
                                      "that it is reachable";
        attest_tdx_collateral_source_set(attest_tdx_collateral_from_pcs, &source);
        return 0;
}
