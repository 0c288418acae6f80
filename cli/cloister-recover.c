/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-node-state.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/base64.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/mastersecret.h"
#include "cloister/rpc.h"

/* One node: verified with PCR 15 zero (it has not rejoined since it booted), then handed the
 * master secret. */
static int recover_node(const char *url, const CliConfig *config, const char *policy_path,
                        const MasterSecret *ms, const uint8_t cid[static CLUSTER_ID_SIZE],
                        const RpcClientConfig *rpc_config)
{
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *body = NULL, *resp = NULL;
        char *k64 = NULL, *s64 = NULL, cid_hex[2 * CLUSTER_ID_SIZE + 1];
        const char *got;
        PolicyVerifier pv;
        _cleanup_(attest_report_done) AttestReport rep = {};
        AtlsVerifier v;
        long status = 0;
        Diag d;
        int r;

        diag_clear(&d);
        r = cli_policy_load(policy_path, config, &pol, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        pol->pcrs[15] = (PcrExpectation){ .present = true };
        pv = (PolicyVerifier){ .policy = pol, .report = &rep };
        v = policy_verifier(&pv);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls);
        if (r < 0)
                return log_error_errno(r, "Cannot set up aTLS: %m");
        if (base64_encode(secret_data_const(ms->key), MASTER_SECRET_SIZE, &k64) >= 0 &&
            base64_encode(ms->salt, MASTER_SALT_SIZE, &s64) >= 0)
                body = json_pack("{s:s,s:s}", "masterSecret", k64, "salt", s64);
        if (k64)
                explicit_wipe(k64, strlen(k64));
        if (s64)
                explicit_wipe(s64, strlen(s64));
        free(k64);
        free(s64);
        if (!body)
                return log_oom();
        r = rpc_call(atls, rpc_config, "POST", url, "/v1/recover", body, false, &status, &resp, &d);
        /* A member already (recovered, or never down), or a node in no cluster: in words. */
        if (r < 0 && cli_node_state_from_report("recover", url, &rep, cid) < 0)
                return -EALREADY;
        if (r < 0) {
                char msg[1024];
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r, "%s was not recovered (nothing was sent): %s", url, msg);
        }
        if (status != 200 && cli_node_state_from_refusal("recover", url, resp) < 0)
                return -EALREADY;
        if (status != 200)
                return log_error_errno(-EPROTO, "%s refused recovery (HTTP %ld): %s", url, status,
                                       json_string_value(json_object_get(resp, "detail")) ?: "?");
        got = json_string_value(json_object_get(resp, "clusterId"));
        hex_encode_buf(cid, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        if (!got || strcmp(got, cid_hex) != 0)
                return log_error_errno(-EBADMSG, "%s answered with another cluster ID (%s).", url,
                                       got ?: "none");
        printf("recovered %s: cluster ID %s in PCR 15\n", url, cid_hex);
        return 0;
}

int verb_recover(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_NODE = 0x100,
                ARG_ENDPOINT,
                ARG_POLICY,
                ARG_CONFIG,
                ARG_MS,
                ARG_STATE,
                ARG_TIMEOUT
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "node", required_argument, NULL, ARG_NODE },
                { "endpoint", required_argument, NULL, ARG_ENDPOINT },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "master-secret", required_argument, NULL, ARG_MS },
                { "state-file", required_argument, NULL, ARG_STATE },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                {},
        };
        const char *policy = NULL, *config_path = NULL, *ms_path = MASTER_SECRET_FILE_DEFAULT,
                   *state_path = "cloister-state.json";
        char urls[16][CLI_URL_MAX];
        size_t n_urls = 0;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(master_secret_freep) MasterSecret *ms = NULL;
        uint8_t cid[CLUSTER_ID_SIZE];
        RpcClientConfig rpc_config;
        Diag d;
        int c, r, failed = 0;

        rpc_client_config_defaults(&rpc_config);
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister recover [--node HOST[:PORT] [--node ...]]\n"
                               "         [--policy FILE | --config FILE] [--master-secret FILE]\n"
                               "         [--state-file FILE] [--timeout SEC]\n\n"
                               "After the whole control plane was down, no join service can\n"
                               "release keys. Each control-plane node given then serves a\n"
                               "recovery endpoint: this command attests it (the policy, PCR 15\n"
                               "zero: it has not rejoined since it booted) and only then hands\n"
                               "it the master secret (default %s). The node derives its disk\n"
                               "key, unlocks its state, checks the cluster ID recorded there\n"
                               "against the one in --state-file (default cloister-state.json),\n"
                               "extends PCR 15 and starts its join service; workers then rejoin\n"
                               "on their own. Exit status 1 if any node was not recovered.\n\n"
                               "In the cluster's workspace (the current directory, or\n"
                               "'cloister -C DIR') no option is needed: the policy comes from\n"
                               "its cloister.json and, without --node, the node from\n"
                               "its state file (the first control plane 'apply' initialised).\n",
                               MASTER_SECRET_FILE_DEFAULT);
                        return 0;
                case ARG_NODE:
                case ARG_ENDPOINT:
                        if (n_urls >= ELEMENTSOF(urls))
                                return log_error_errno(-EUSAGE, "At most %zu nodes at once.",
                                                       ELEMENTSOF(urls));
                        if (cli_endpoint_url(c == ARG_NODE ? "--node" : "--endpoint", optarg,
                                             urls[n_urls]) < 0)
                                return -EUSAGE;
                        n_urls++;
                        break;
                case ARG_POLICY:
                        policy = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_MS:
                        ms_path = optarg;
                        break;
                case ARG_STATE:
                        state_path = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (cli_parse_timeout(optarg, &rpc_config) < 0)
                                return -EUSAGE;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "recover: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        (void) cli_workspace_config_default(policy, &config_path);
        if (!policy && !config_path)
                return log_error_errno(-EUSAGE,
                                       "recover: give --policy or --config, or run it in the "
                                       "cluster's workspace (holding " CLI_CONFIG_FILE_DEFAULT
                                       "). See --help.");
        r = cli_policy_or_config("recover", policy, config_path, &config);
        if (r < 0)
                return r;
        /* TDX evidence without collateral: the user's cache, fetched when missing or stale. */
        r = cli_tdx_collateral_setup(NULL, NULL, &config, false);
        if (r < 0)
                return r;
        /* The cluster ID recorded by `cloister apply`: each node must derive exactly this. Without
         * --node, the first control plane it recorded. */
        r = cli_state_load(state_path, cid, n_urls == 0 ? urls[0] : NULL,
                           n_urls == 0 ? sizeof(urls[0]) : 0);
        if (r < 0)
                return r;
        if (n_urls == 0) {
                log_info("recover: no --node: the first control plane %s records, %s.", state_path,
                         urls[0]);
                n_urls = 1;
        }
        diag_clear(&d);
        r = master_secret_load(ms_path, &ms, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        for (size_t i = 0; i < n_urls; i++)
                if (recover_node(urls[i], &config, policy, ms, cid, &rpc_config) < 0)
                        failed++;
        return failed ? -EIO : 0;
}
