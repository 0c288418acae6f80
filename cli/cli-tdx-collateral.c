/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collateral of TDX evidence that carries none (a real TD's: every node's, a join service's
 * too), for the verbs that attest nodes (docs/tdx.md, "The other direction"): the owner's cache,
 * fetched from Intel PCS or a PCCS when missing or stale; with --pcs-cache DIR alone, that cache
 * and nothing else (offline). Evidence that carries its own (sim-tdx) is verified with it.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/attest.h"
#include "cloister/log.h"

static AttestTdxPcsSource source;
static char *default_cache;

static const char *absolute_env(const char *name)
{
        const char *v = getenv(name);

        /* XDG base directories: a relative (or empty) value is ignored. */
        return v && v[0] == '/' ? v : NULL;
}

int cli_user_cache_dir(const char *leaf, char **ret)
{
        const char *home = absolute_env("HOME");
        struct passwd *pw;

        *ret = NULL;
        if (absolute_env("XDG_CACHE_HOME"))
                return asprintf(ret, "%s/cloister/%s", absolute_env("XDG_CACHE_HOME"), leaf) < 0
                               ? log_oom()
                               : 0;
        /* Never a shared directory (/tmp: any local user could plant or redirect entries):
         * without $HOME, the account's own home; without that, no cache. */
        if (!home && (pw = getpwuid(getuid())) && pw->pw_dir && pw->pw_dir[0] == '/')
                home = pw->pw_dir;
        if (!home) {
                log_debug("no $XDG_CACHE_HOME, $HOME or home directory: no %s cache", leaf);
                return 0;
        }
        return asprintf(ret, "%s/.cache/cloister/%s", home, leaf) < 0 ? log_oom() : 0;
}

int cli_tdx_pcs_url_check(const char *option, const char *url)
{
        if (!tdx_pcs_url_ok(url))
                return log_error_errno(
                        -EUSAGE,
                        "%s %s: give the TDX base URL of Intel PCS or a PCCS, "
                        "ending in /tdx/certification/v4 (default " TDX_PCS_URL_DEFAULT ").",
                        option, url);
        return 0;
}

int cli_tdx_collateral_setup(const char *pcs_url, const char *pcs_cache, const CliConfig *config,
                             bool offline)
{
        const char *url = pcs_url ?: (config ? config->tdx_pcs_url : NULL);

        tdx_pcs_config_defaults(&source.pcs);
        source.pcs.budget_ms = ATTEST_TDX_PCS_BUDGET_MS;
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
                if (cli_user_cache_dir("tdx", &default_cache) < 0)
                        return -ENOMEM;
                source.pcs.cache_dir = default_cache; /* NULL: none (fetched, not kept) */
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
