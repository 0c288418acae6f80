/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-bundle.h"
#include "cli-checkpoint.h"
#include "cli-json.h"
#include "cli-node-state.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/rpc.h"

/* verify --node --bundle OUT: the one node's record (docs/bundle.md). */
/* One node's verdict as 'verify --node' prints it, attested now or again from a bundle (extra:
 * keys the JSON document also gets, or NULL). 0, or -ENOMEM. */
int cli_print_node_verdict(const char *endpoint, const char *state, json_t *versions,
                           const AttestReport *rep, int verdict, const Diag *d, OutputFormat output,
                           json_t *extra)
{
        if (output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc =
                        cli_report_json("cloister verify", rep, verdict, d, CLI_FRESHNESS_CHECKED);
                if (!doc || json_object_set_new(doc, "node", json_string(endpoint)) < 0 ||
                    json_object_set(doc, "versions", versions ?: json_null()) < 0 ||
                    json_object_set_new(doc, "state", state ? json_string(state) : json_null()) <
                            0 ||
                    (extra && json_object_update(doc, extra) < 0) || result_print(doc) < 0)
                        return log_oom();
                return 0;
        }
        printf("node %s\n", endpoint);
        if (state)
                printf("state %s\n", state);
        if (versions && json_is_object(versions)) {
                char text[256];
                cli_node_versions_text(versions, text, sizeof(text));
                printf("runs %s\n", text);
        }
        cli_print_report_text(rep, verdict, d, CLI_FRESHNESS_CHECKED);
        if (verdict < 0) {
                char msg[DIAG_MESSAGE_MAX + DIAG_CHECK_MAX + 2 * DIAG_VALUE_MAX + 64];
                diag_format(d, msg, sizeof(msg));
                printf("Verification FAILED: %s\n", msg);
        } else if (verdict == 0)
                printf("Verification OK\n");
        else
                printf("Verification FAILED: incomplete (see above)\n");
        return 0;
}

static int write_node_bundle(const char *path, const char *policy_path, const CliConfig *config,
                             const uint8_t *cid, time_t at, const char *endpoint,
                             const CliRecord *rec, int verdict, const AttestReport *rep,
                             const Diag *d, const json_t *versions, const char *state)
{
        _cleanup_(json_decrefp) json_t *doc =
                cli_report_json("cloister verify", rep, verdict, d, CLI_FRESHNESS_CHECKED);
        _cleanup_(freep) char *policy = NULL;
        CliBundleWriter w = {};
        const char *reason = verdict < 0 ? d->message : NULL;
        size_t size;
        int r;

        if (!doc)
                return log_oom();
        r = cli_policy_bytes(policy_path, config, &policy, &size);
        if (r < 0)
                return r;
        r = cli_bundle_writer_init(&w, "node", at, policy, size, cid);
        if (r >= 0)
                r = cli_bundle_writer_node(&w, endpoint, "", endpoint, rec, verdict == 0,
                                           reason ? &reason : NULL, reason ? 1 : 0,
                                           json_object_get(doc, "checks"), versions, state);
        if (r < 0) {
                cli_bundle_writer_done(&w);
                return log_oom();
        }
        r = cli_bundle_writer_write(&w, path);
        cli_bundle_writer_done(&w);
        return r;
}

int verb_verify(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_ENDPOINT = 0x100,
                ARG_POLICY,
                ARG_CONFIG,
                ARG_CLUSTER_ID,
                ARG_NODE,
                ARG_TIMEOUT,
                ARG_CLUSTER,
                ARG_STATE,
                ARG_BUNDLE,
                ARG_AT,
                ARG_PCS_URL,
                ARG_PCS_CACHE,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "endpoint", required_argument, NULL, ARG_ENDPOINT },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "cluster-id", required_argument, NULL, ARG_CLUSTER_ID },
                { "node", required_argument, NULL, ARG_NODE },
                { "cluster", no_argument, NULL, ARG_CLUSTER },
                { "state-file", required_argument, NULL, ARG_STATE },
                { "bundle", required_argument, NULL, ARG_BUNDLE },
                { "at", required_argument, NULL, ARG_AT },
                { "output", required_argument, NULL, 'o' },
                { "pcs-url", required_argument, NULL, ARG_PCS_URL },
                { "pcs-cache", required_argument, NULL, ARG_PCS_CACHE },
                {},
        };
        const char *pcs_url = NULL, *pcs_cache = NULL;
        CliOptions *o = userdata;
        const char *bundle = NULL;
        time_t at = 0;
        _cleanup_(cli_record_done) CliRecord rec = {};
        bool has_cid = false;
        const char *endpoint = NULL, *policy = NULL, *config_path = NULL, *cluster_id = NULL,
                   *state_path = "cloister-state.json";
        bool cluster = false, state_given = false;
        char state_endpoint[CLI_URL_MAX], checkpoints[PATH_MAX];
        _cleanup_(cli_config_done) CliConfig config = {};
        char node_url[300];
        RpcClientConfig rpc_config;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        json_t *resp = NULL;
        _cleanup_(json_decrefp) json_t *versions = NULL;
        const char *state = NULL; /* static: one of the states the CLI knows */
        uint8_t cid[CLUSTER_ID_SIZE];
        AttestReport rep = {};
        PolicyVerifier pv;
        AtlsVerifier v;
        long status = 0;
        Diag d;
        int c, r, verdict;

        rpc_client_config_defaults(&rpc_config);
        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister verify --node HOST[:PORT] --policy FILE\n"
                               "         [--cluster-id HEX] [--timeout SEC] [-o text|json]\n"
                               "         [--pcs-url URL] [--pcs-cache DIR]\n"
                               "       cloister verify --node HOST[:PORT] --config FILE ...\n"
                               "       cloister verify --endpoint https://HOST:PORT ...\n\n"
                               "Attests a node with a fresh nonce and prints every check: the\n"
                               "measured values against the policy, and with --cluster-id that\n"
                               "PCR 15 holds this cluster's ID (without it, the ID in the state\n"
                               "file, if it records an initialised cluster). The last line of text "
                               "output is\n"
                               "'Verification OK' or 'Verification FAILED: <reason>'. Exit status\n"
                               "1 on any failure. --node takes the default port 9000. --config\n"
                               "takes the policy from a cluster configuration ('cloister config\n"
                               "generate'): its \"attestation\" object.\n\n"
                               "       cloister verify --cluster [--node HOST[:PORT]] --policy "
                               "FILE\n"
                               "         [--state-file FILE] [-o text|json]\n\n"
                               "--cluster attests every member the cluster's join services list\n"
                               "(and the join services themselves), each with its own fresh\n"
                               "nonce and PCR 15 = the cluster ID, checks every join service's\n"
                               "hash-chained audit log and its head, signed by that join\n"
                               "service's attestation key, and prints one table (-o json: nodes\n"
                               "with name, role, verdict, reasons). The cluster ID and the first\n"
                               "node come from --state-file (default cloister-state.json) unless\n"
                               "--cluster-id and --node say otherwise. The highest signed head\n"
                               "of each join service is kept next to the state file\n"
                               "(" CLI_CHECKPOINTS_FILE "): an older one later\n"
                               "fails as a rolled-back log. Keep that file with the workspace.\n\n"
                               "Without --policy and --config, the policy is the "
                               "workspace's\n" CLI_CONFIG_FILE_DEFAULT
                               " (the workspace: the current directory, or\n"
                               "'cloister -C DIR'): in a cluster's workspace 'cloister verify\n"
                               "--cluster' and 'cloister verify --node HOST' need nothing else.\n\n"
                               "  --bundle OUT   with --cluster or --node: also write an evidence\n"
                               "                 bundle (docs/bundle.md): each node's evidence as\n"
                               "                 received, the nonce this CLI chose, the TLS key\n"
                               "                 it is bound to, the policy, the time, the\n"
                               "                 verdicts and the join services' audit "
                               "logs\n" CLI_TDX_COLLATERAL_HELP "\n"
                               "       cloister verify --bundle IN [--policy FILE] [--at TIME] [-o "
                               "text|json]\n"
                               "         [--pcs-cache DIR]\n\n"
                               "Verifies a bundle again, offline (no connection is opened): every\n"
                               "node's evidence against the bundle's policy or --policy FILE, at\n"
                               "the recorded time or --at YYYY-MM-DD[THH:MM:SSZ], each binding\n"
                               "recomputed from the recorded nonce and key; audit chains and\n"
                               "their signed heads checked again. Same output as the live\n"
                               "verify. A bundle changed in any byte is refused, naming what no\n"
                               "longer holds. A bundle proves the hardware made this evidence\n"
                               "for this nonce and key; not that the nonce was fresh when it was\n"
                               "recorded.\n"
                               "TDX evidence without collateral (a real TD's) is verified with\n"
                               "its platform's collateral from the cache (--pcs-cache DIR, else\n"
                               "$XDG_CACHE_HOME/cloister/tdx), offline: the bundle does not\n"
                               "carry it.\n"
                               "A bundle kept by 'cloister attestation verify-report ... --bundle\n"
                               "OUT' (one SEV-SNP report or TDX quote with the certificates and\n"
                               "collateral it used) is verified again the same way, with\n"
                               "verify-report's output: it proves the hardware signed that\n"
                               "REPORT_DATA, not who chose it nor when (nobody recorded that).\n");
                        return 0;
                case ARG_ENDPOINT:
                        if (cli_endpoint_url("--endpoint", optarg, node_url) < 0)
                                return -EUSAGE;
                        endpoint = node_url;
                        break;
                case ARG_POLICY:
                        policy = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (cli_parse_timeout(optarg, &rpc_config) < 0)
                                return -EUSAGE;
                        break;
                case ARG_CLUSTER:
                        cluster = true;
                        break;
                case ARG_STATE:
                        state_path = optarg;
                        state_given = true;
                        break;
                case ARG_CLUSTER_ID:
                        cluster_id = optarg;
                        break;
                case ARG_NODE:
                        if (cli_node_url(optarg, node_url) < 0)
                                return -EUSAGE;
                        endpoint = node_url;
                        break;
                case ARG_BUNDLE:
                        bundle = optarg;
                        break;
                case ARG_AT:
                        if (cli_parse_at_option(optarg, &at) < 0)
                                return -EUSAGE;
                        break;
                case ARG_PCS_URL:
                        pcs_url = optarg;
                        break;
                case ARG_PCS_CACHE:
                        pcs_cache = optarg;
                        break;
                case 'o':
                        if (cli_parse_output_option(optarg, &o->output) < 0)
                                return -EUSAGE;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        /* --bundle alone: the offline verification of a recorded bundle. */
        if (bundle && !cluster && !endpoint) {
                if (optind < argc || config_path || cluster_id || state_given || pcs_url)
                        return log_error_errno(-EUSAGE,
                                               "verify --bundle IN takes only --policy FILE, --at "
                                               "TIME, --pcs-cache DIR and -o. See --help.");
                /* A bundle does not carry the collateral of TDX evidence that has none. */
                r = cli_tdx_collateral_setup(NULL, pcs_cache, NULL, true);
                if (r < 0)
                        return r;
                return cli_verify_bundle(bundle, policy, at, o->output);
        }
        /* Said before any node is asked (the write refuses it again, atomically). */
        if (bundle && access(bundle, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s already exists: a bundle is never overwritten; give "
                                       "--bundle another file name.",
                                       bundle);
        if (at)
                return log_error_errno(-EUSAGE,
                                       "verify: --at goes with --bundle IN (a live verify is "
                                       "judged now).");
        (void) cli_workspace_config_default(policy, &config_path);
        r = cli_policy_or_config("verify", policy, config_path, &config);
        if (r < 0)
                return r;
        r = cli_tdx_collateral_setup(pcs_url, pcs_cache, &config, false);
        if (r < 0)
                return r;
        if (cluster && (policy || config_path) && (!cluster_id || !endpoint)) {
                r = cli_state_load(state_path, cid, state_endpoint, sizeof(state_endpoint));
                if (r < 0)
                        return r;
                if (!endpoint)
                        endpoint = state_endpoint;
        }
        if (optind < argc || !endpoint || (!policy && !config_path))
                return log_error_errno(-EUSAGE,
                                       "verify: --node (or --endpoint) and --policy or --config "
                                       "(or a workspace holding " CLI_CONFIG_FILE_DEFAULT
                                       ") are required.");
        if (cluster) {
                if (cluster_id && hex_decode_exact(cluster_id, cid, sizeof(cid)) < 0)
                        return log_error_errno(-EUSAGE, "--cluster-id: 64 hex digits expected.");
                /* The signed audit heads seen so far live next to the state file, in the
                 * cluster's workspace. */
                if (cli_checkpoints_path(state_path, checkpoints, sizeof(checkpoints)) < 0)
                        return log_oom();
                return cli_verify_cluster(endpoint, policy, &config, cid, &rpc_config, o->output,
                                          bundle, checkpoints);
        }
        diag_clear(&d);
        r = cli_policy_load(policy, &config, &pol, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        /* Without --cluster-id, the ID of the cluster the workspace's state file records. */
        r = cluster_id ? 1 : cli_workspace_cluster(state_path, state_given, cid, NULL, 0);
        if (r < 0)
                return r;
        has_cid = r > 0;
        if (r > 0) {
                if (cluster_id && hex_decode_exact(cluster_id, cid, sizeof(cid)) < 0)
                        return log_error_errno(-EUSAGE, "--cluster-id: 64 hex digits expected.");
                /* A member of this cluster has extended exactly this ID into PCR 15 (and shows
                 * it in HOST_DATA where the policy says so). */
                cli_policy_bind_cluster(pol, cid);
        }
        pv = (PolicyVerifier){ .policy = pol, .report = &rep, .at = time(NULL) };
        v = policy_verifier(&pv);
        cli_record_attach(&v, bundle ? &rec : NULL);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls);
        if (r < 0)
                return log_error_errno(r, "Cannot set up aTLS: %m");
        verdict = rpc_call(atls, &rpc_config, "GET", endpoint, "/v1/node", NULL, true, &status,
                           &resp, &d);
        if (verdict >= 0 && status != 200)
                verdict = diag_fail(&d, -EPROTO, "node", -1, "the node answered HTTP %ld", status);
        /* What the attested node runs; a warning if it is beyond what this CLI supports. */
        if (verdict >= 0) {
                versions = cli_node_versions(endpoint, resp);
                state = cli_node_state_name(resp);
        }
        json_decref(resp);
        if (rep.n_checks == 0 && verdict < 0) {
                attest_report_done(&rep);
                if (o->output != OUTPUT_JSON)
                        printf("Verification FAILED: %s was not attested\n", endpoint);
                /* The cause once, on stderr; the message names the URL it is about. */
                return log_error_errno(verdict, "%s", d.message);
        }
        r = cli_print_node_verdict(endpoint, state, versions, &rep, verdict, &d, o->output, NULL);
        if (bundle) {
                int k = write_node_bundle(bundle, policy, &config, has_cid ? cid : NULL, pv.at,
                                          endpoint, &rec, verdict, &rep, &d, versions, state);
                if (k < 0 && r >= 0)
                        r = k;
        }
        attest_report_done(&rep);
        return r < 0 ? r : verdict < 0 ? verdict : 0;
}
