/* SPDX-License-Identifier: Apache-2.0 */
/* cloister logs: a node's bootstrapper log of this boot, for its owner (docs/troubleshooting.md,
 * "The node's log after a failed join"). The node is attested against the workspace's policy
 * first; only then does the init secret go to it, and only over that attested channel. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-node-state.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/base64.h"
#include "cloister/init-secret.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/rpc.h"

/* How often a 429 (the node defers secrets while others guess them) is retried: ~1 min. */
#define LOGS_BUSY_RETRIES 10

/* The only enforced check that failed is PCR 15 (the node holds some cluster's ID). */
static bool only_pcr15_failed(const AttestReport *rep)
{
        bool pcr15 = false;

        for (size_t i = 0; i < rep->n_checks; i++) {
                const CheckResult *c = &rep->checks[i];
                if (c->status != CHECK_FAIL || !c->enforced)
                        continue;
                if (strcmp(c->name, "pcr") != 0 || c->index != 15)
                        return false;
                pcr15 = true;
        }
        return pcr15;
}

/* GET /v1/node with the policy and PCR 15 = expected15 (a node in no cluster yet: zero; one
 * that joined this cluster: its value). On success *ret_atls is the context whose verifier
 * passed, for the call that carries the secret. */
static int attest_node(const char *endpoint, AttestPolicy *pol, const uint8_t expected15[static 32],
                       const RpcClientConfig *rc, PolicyVerifier *pv, AttestReport *rep,
                       AtlsContext **ret_atls, json_t **ret_node, Diag *d)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *node = NULL;
        AtlsVerifier v;
        long status = 0;
        int r;

        memcpy(pol->pcrs[15].expected, expected15, 32);
        pol->pcrs[15].present = true;
        pol->pcrs[15].warn_only = false;
        attest_report_done(rep);
        *rep = (AttestReport){};
        *pv = (PolicyVerifier){ .policy = pol, .report = rep };
        v = policy_verifier(pv);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls);
        if (r < 0)
                return diag_fail(d, r, "atls", -1, "cannot set up aTLS");
        diag_clear(d);
        r = rpc_call(atls, rc, "GET", endpoint, "/v1/node", NULL, true, &status, &node, d);
        if (r >= 0 && status != 200)
                r = diag_fail(d, -EPROTO, "node", -1, "%s answered HTTP %ld to GET /v1/node",
                              endpoint, status);
        if (r < 0)
                return r;
        *ret_atls = TAKE_PTR(atls);
        *ret_node = TAKE_PTR(node);
        return 0;
}

int verb_logs(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_NODE = 0x100,
                ARG_POLICY,
                ARG_CONFIG,
                ARG_INIT_SECRET,
                ARG_STATE,
                ARG_FILE,
                ARG_TIMEOUT,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "node", required_argument, NULL, ARG_NODE },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "init-secret-file", required_argument, NULL, ARG_INIT_SECRET },
                { "state-file", required_argument, NULL, ARG_STATE },
                { "file", required_argument, NULL, ARG_FILE },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                {},
        };
        const char *endpoint = NULL, *policy = NULL, *config_path = NULL,
                   *init_secret_path = INIT_SECRET_FILE_DEFAULT,
                   *state_path = CLI_STATE_FILE_DEFAULT, *file = NULL, *state;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *node = NULL, *body = NULL, *resp = NULL;
        _cleanup_(secret_freep) Secret *init_secret = NULL;
        _cleanup_(attest_report_done) AttestReport rep = {};
        static const uint8_t zero15[32];
        uint8_t cid[CLUSTER_ID_SIZE], member15[32];
        char node_url[CLI_URL_MAX], msg[1024], default_file[CLI_NODE_LOG_PATH_MAX], *i64 = NULL;
        bool state_given = false, have_cid;
        RpcClientConfig rc;
        PolicyVerifier pv;
        long status = 0;
        Diag d;
        int c, r;

        rpc_client_config_defaults(&rc);
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister logs --node HOST[:PORT (default 9000)]\n"
                               "         [--policy FILE | --config FILE]\n"
                               "         [--init-secret-file FILE "
                               "(default " INIT_SECRET_FILE_DEFAULT ")]\n"
                               "         [--state-file FILE (default " CLI_STATE_FILE_DEFAULT ")]\n"
                               "         [--file OUT (default cloister-node-HOST-PORT.log)]\n"
                               "         [--timeout SEC]\n\n"
                               "Fetches a node's bootstrapper log of this boot (what it logged\n"
                               "while waiting to join, why its join failed; 64 KiB at most) and\n"
                               "saves it in the workspace (0600). The node is attested first\n"
                               "against the policy (its PCR 15 zero, or this cluster's ID from\n"
                               "the state file): only a node that passes gets the init secret,\n"
                               "which proves you are the owner (the node holds its hash in its\n"
                               "metadata; a wrong one is slowed down as for init). The log holds\n"
                               "no secret. Without --policy and --config, the policy is the\n"
                               "workspace's " CLI_CONFIG_FILE_DEFAULT ". Text only: -o json is\n"
                               "refused. See docs/troubleshooting.md.\n");
                        return 0;
                case ARG_NODE:
                        if (cli_node_url(optarg, node_url) < 0)
                                return -EUSAGE;
                        endpoint = node_url;
                        break;
                case ARG_POLICY:
                        policy = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_INIT_SECRET:
                        init_secret_path = optarg;
                        break;
                case ARG_STATE:
                        state_path = optarg;
                        state_given = true;
                        break;
                case ARG_FILE:
                        if (!*optarg)
                                return log_error_errno(-EUSAGE, "logs: --file needs a path.");
                        file = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (cli_parse_timeout(optarg, &rc) < 0)
                                return -EUSAGE;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "logs: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        (void) cli_workspace_config_default(policy, &config_path);
        if (!endpoint || (!policy && !config_path))
                return log_error_errno(-EUSAGE,
                                       "logs: --node and --policy or --config (or a workspace "
                                       "holding " CLI_CONFIG_FILE_DEFAULT ") are required.");
        r = cli_policy_or_config("logs", policy, config_path, &config);
        if (r < 0)
                return r;
        /* TDX evidence without collateral: the user's cache, fetched when missing or stale. */
        r = cli_tdx_collateral_setup(NULL, NULL, &config, false);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = cli_policy_load(policy, &config, &pol, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        diag_clear(&d);
        r = init_secret_load(init_secret_path, &init_secret, &d);
        if (r < 0)
                return log_error_errno(r,
                                       "%s (the node gives its log only to the owner of the "
                                       "init secret whose hash its metadata holds).",
                                       d.message);
        r = cli_workspace_cluster(state_path, state_given, cid, NULL, 0);
        if (r < 0)
                return r;
        have_cid = r > 0;

        /* A node that waits to join (or gave up before joining) still has PCR 15 zero; one whose
         * join failed later (kubeadm) holds this cluster's ID. Nothing else gets the secret. */
        r = attest_node(endpoint, pol, zero15, &rc, &pv, &rep, &atls, &node, &d);
        if (r < 0 && have_cid && only_pcr15_failed(&rep)) {
                log_debug("%s: PCR 15 is not zero; attesting it as a member of this cluster",
                          endpoint);
                kdf_pcr15_expected(cid, member15);
                r = attest_node(endpoint, pol, member15, &rc, &pv, &rep, &atls, &node, &d);
        }
        if (r < 0) {
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r,
                                       "%s was not attested as the policy says, so nothing was "
                                       "sent to it (not the init secret): %s. 'cloister verify "
                                       "--node %s -v' shows every check.",
                                       endpoint, msg, endpoint);
        }
        state = cli_node_state_name(node);
        json_decref(cli_node_versions(endpoint, node));

        if (base64_encode(secret_data_const(init_secret), secret_size(init_secret), &i64) < 0)
                return log_oom();
        body = json_pack("{s:s}", "initSecret", i64);
        explicit_wipe(i64, strlen(i64));
        free(i64);
        if (!body)
                return log_oom();
        for (unsigned attempt = 0;; attempt++) {
                json_decref(resp);
                resp = NULL;
                diag_clear(&d);
                r = rpc_call(atls, &rc, "POST", endpoint, "/v1/log", body, false, &status, &resp,
                             &d);
                if (r < 0 || status != 429 || attempt >= LOGS_BUSY_RETRIES)
                        break;
                log_info("The node defers secrets (%s): asking again in %u s.",
                         json_string_value(json_object_get(resp, "detail")) ?: "busy",
                         MIN(1U << MIN(attempt, 3U), 8U));
                (void) sleep(MIN(1U << MIN(attempt, 3U), 8U));
        }
        if (r < 0) {
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r, "No log from %s: %s", endpoint, msg);
        }
        if (status == 404)
                return log_error_errno(-EPROTO,
                                       "%s serves no log (HTTP 404): its bootstrapper predates "
                                       "'cloister logs'; read the log on the node (its journal).",
                                       endpoint);
        if (status != 200)
                return log_error_errno(status == 403 ? -EACCES : -EPROTO,
                                       "%s refused its log (HTTP %ld): %s.", endpoint, status,
                                       json_string_value(json_object_get(resp, "detail")) ?: "?");
        if (!file) {
                cli_node_log_default_path(endpoint, default_file);
                file = default_file;
        }
        r = cli_node_log_save(endpoint, resp, file, true);
        if (r == 0)
                return log_error_errno(-EPROTO, "%s answered without a log.", endpoint);
        if (r < 0)
                return log_error_errno(r, "The log of %s was not saved (see above): check --file.",
                                       endpoint);
        if (json_is_true(json_object_get(resp, "nodeLogDropped")))
                printf("The log of %s (state %s, %d bytes, its oldest records dropped) is saved "
                       "in %s.\n",
                       endpoint, state ?: "unknown", r, file);
        else
                printf("The log of %s (state %s, %d bytes) is saved in %s.\n", endpoint,
                       state ?: "unknown", r, file);
        return 0;
}
