/* SPDX-License-Identifier: Apache-2.0 */
/* cloister attestation sim-tdx-root: the root of a simulated TDX platform for a local cluster
 * (every node's --sim-tdx-root) and the sim-tdx policy that trusts it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/tdx-sim.h"

/* The owner's policy for a sim-tdx cluster: the root, and the MRTD the simulator reports (the
 * tdx variant's policy must pin one). */
static int sim_tdx_policy(TdxSimulator *sim, char **ret)
{
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_(freep) char *pem = NULL;
        TdxSimConfig c;
        char mrtd[2 * sizeof(c.mr_td) + 1];
        int r;

        r = tdx_sim_root_pem(sim, &pem);
        if (r < 0)
                return r;
        tdx_sim_config_defaults(&c);
        for (size_t i = 0; i < sizeof(c.mr_td); i++)
                (void) snprintf(mrtd + 2 * i, 3, "%02x", c.mr_td[i]);
        root = json_pack("{s:i,s:s,s:{s:s,s:[s]}}", "version", 1, "variant", "sim-tdx", "tdx",
                         "trustedRoot", pem, "mrTd", mrtd);
        if (!root || json_dump_pretty(root, ret) < 0)
                return -ENOMEM;
        return 0;
}

/* The simulated platform's collateral into a TDX collateral cache, as a fetch from a PCS would
 * leave it (no PCS serves a simulated platform): every node under this root shares its PCK CA
 * and FMSPC, so this one entry serves them all, for verifiers whose evidence carries none
 * (nodes with --sim-tdx-no-collateral). */
static int collateral_cache(TdxSimulator *sim, const char *dir)
{
        _cleanup_(freep) uint8_t *quote = NULL;
        uint8_t rd[64] = {};
        TdxCollateral col;
        TdxPcsResult key = {};
        TdxQuote q;
        size_t n;
        Diag d;
        int r;

        diag_clear(&d);
        if ((r = tdx_sim_quote(sim, rd, &quote, &n)) < 0 ||
            (r = tdx_quote_parse(quote, n, &q, &d)) < 0 ||
            (r = tdx_pcs_platform(&q, &key, &d)) < 0 || (r = tdx_sim_collateral(sim, &col)) < 0)
                return log_error_errno(r, "Cannot make the simulated platform's collateral: %s",
                                       d.message[0] ? d.message : strerror(-r));
        r = tdx_pcs_cache_put(dir, key.fmspc, key.ca, &col);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write the collateral cache: %m", dir);
        log_info("The simulated platform's collateral (FMSPC %s, PCK CA %s) is cached in %s.",
                 key.fmspc, key.ca, dir);
        return 0;
}

static int write_new(const char *path, const char *text, mode_t mode, bool force, const char *what)
{
        int r = write_file_atomic(path, text, strlen(text), mode, force ? 0 : WRITE_FILE_EXCLUSIVE);

        if (r == -EEXIST)
                return log_error_errno(r,
                                       "%s already exists: refusing to replace %s (--force "
                                       "does).",
                                       path, what);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write: %m", path);
        return 0;
}

int verb_attestation_sim_tdx_root(int argc, char *argv[], void *userdata)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "policy-output", required_argument, NULL, 'p' },
                { "force", no_argument, NULL, 'f' },
                { "collateral-cache", required_argument, NULL, 'c' },
                {},
        };
        const char *cache = NULL;
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = NULL;
        _cleanup_(freep) char *text = NULL, *policy = NULL;
        const char *policy_path = NULL;
        bool force = false;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: cloister attestation sim-tdx-root OUTPUT "
                               "[--policy-output POLICY] [--force]\n"
                               "         [--collateral-cache DIR]\n\n"
                               "SIMULATED TDX, for tests and local clusters only: writes the root "
                               "certificate\n"
                               "and key of a simulated TDX platform to OUTPUT (give it to every "
                               "node as\n"
                               "--sim-tdx-root; each node is then its own simulated CPU under that "
                               "root), and\n"
                               "with --policy-output the sim-tdx policy that trusts this root and "
                               "no other.\n"
                               "Nothing it attests is protected by hardware: anyone holding OUTPUT "
                               "can make\n"
                               "evidence that passes that policy. Existing files are kept unless "
                               "--force.\n\n"
                               "Every node under OUTPUT shares one PCK CA and FMSPC, as Intel's "
                               "platforms do:\n"
                               "--collateral-cache DIR writes their collateral into DIR, a TDX "
                               "collateral\n"
                               "cache (the layout 'verify-report --cache-dir' fills), for "
                               "verifiers "
                               "of\n"
                               "evidence without collateral (nodes started with "
                               "--sim-tdx-no-collateral):\n"
                               "'cloister verify --pcs-cache DIR', a node's --tdx-cache-dir "
                               "DIR.\n");
                        return 0;
                case 'p':
                        policy_path = optarg;
                        break;
                case 'f':
                        force = true;
                        break;
                case 'c':
                        cache = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        if (argc - optind != 1)
                return log_error_errno(-EUSAGE, "attestation sim-tdx-root: give OUTPUT. See "
                                                "--help.");
        r = tdx_sim_new(NULL, &sim);
        if (r >= 0)
                r = tdx_sim_root_export(sim, &text);
        if (r >= 0 && policy_path)
                r = sim_tdx_policy(sim, &policy);
        if (r < 0)
                return log_error_errno(r, "Cannot make a simulated TDX root: %m");
        r = write_new(argv[optind], text, 0600, force, "a sim-tdx root");
        if (r >= 0 && policy_path)
                r = write_new(policy_path, policy, 0644, force, "a policy (a trust anchor)");
        if (r >= 0 && cache)
                r = collateral_cache(sim, cache);
        if (r < 0)
                return r;
        log_warning("SIMULATED TDX: %s makes evidence that a sim-tdx policy naming it accepts; "
                    "no hardware protects it (tests and local clusters only).",
                    argv[optind]);
        return 0;
}
