/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister node remove NAME: the owner takes a member out of the cluster's membership, so that
 * its name, disk and attestation key can be admitted again (docs/membership.md, "Removing a
 * member"). The join service is attested (as 'cloister status' attests it), lists the member as
 * recorded; the removal names that admission and is authenticated with the owner's key, the one
 * policy updates use (lib/kdf/policy-update.c); the join service removes the member from etcd
 * with its audit entry, in one transaction.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/attest.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/mastersecret.h"
#include "cloister/policy-update.h"
#include "cloister/rpc.h"

static void remove_help(void)
{
        printf("Usage: cloister node remove NAME [--policy FILE | --config FILE]\n"
               "         [--master-secret FILE] [--state-file FILE] [--node HOST[:PORT]]\n"
               "         [--cluster-id HEX] [--timeout SEC] [-o text|json]\n\n"
               "Removes member NAME from the cluster's membership, so that its name, its disk\n"
               "and its attestation key can be admitted again: its rejoin is refused from now\n"
               "on, through every join service. The join service is attested first (the policy\n"
               "and PCR 15 = the cluster ID, as 'cloister status' attests it) and lists NAME as\n"
               "recorded; the removal names that admission (disk, key, admission time) and is\n"
               "authenticated with a key derived from the master secret (the one policy\n"
               "updates use, docs/policy-update.md), so only the owner can remove a member,\n"
               "a request is carried out once, and it cannot remove a node admitted under the\n"
               "name later. The join service removes the member from the cluster's membership\n"
               "in etcd and appends a 'removal' entry to the audit chain, in one transaction.\n"
               "Join services that keep their membership in local files (no --etcd-endpoints)\n"
               "refuse it: the member would stay admitted by the others (docs/membership.md).\n"
               "A join service does not remove its own node: send the removal to another\n"
               "control plane with --node.\n\n"
               "  --policy FILE, --config FILE  the policy the join service is attested with\n"
               "                        (default: the workspace's " CLI_CONFIG_FILE_DEFAULT ")\n"
               "  --master-secret FILE  default " MASTER_SECRET_FILE_DEFAULT "\n" CLI_TARGET_HELP
               "  -o text|json          json: {\"removed\", \"role\", \"diskUuid\", \"akDigest\",\n"
               "                        \"admitted\", \"joinService\", \"verdict\"} "
               "(docs/json.md)\n");
}

/* The member as the join service lists it (attested), or a clear error. */
static int find_member(AtlsContext *atls, const RpcClientConfig *rc, const char *url,
                       const char *name, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *resp = NULL;
        char names[400] = "", msg[400];
        const json_t *m;
        long status = 0;
        size_t i, len = 0;
        Diag d;
        int r;

        diag_clear(&d);
        r = rpc_call(atls, rc, "GET", url, "/v1/members", NULL, true, &status, &resp, &d);
        if (r < 0 || status != 200) {
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r < 0 ? r : -EPROTO,
                                       "%s: cannot read the cluster's membership: %s. Nothing was "
                                       "removed.",
                                       url, r < 0 ? msg : "HTTP error");
        }
        json_array_foreach (json_object_get(resp, "members"), i, m) {
                const char *n = json_string_value(json_object_get(m, "name"));
                if (!n)
                        continue;
                if (strcmp(n, name) == 0) {
                        *ret = json_incref((json_t *) m);
                        return 0;
                }
                if (len < sizeof(names) - 80)
                        len += (size_t) snprintf(names + len, sizeof(names) - len, "%s%.64s",
                                                 len ? ", " : "", n);
        }
        return log_error_errno(-ENOENT,
                               "%s is not a member of the cluster (the join service at %s lists "
                               "%s). Nothing was removed.",
                               name, url, names[0] ? names : "no other member");
}

int node_remove_verb(int argc, char *argv[], void *userdata)
{
        enum { ARG_POLICY = 0x100, ARG_CONFIG, ARG_MS };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "master-secret", required_argument, NULL, ARG_MS },
                { "output", required_argument, NULL, 'o' },
                CLI_TARGET_OPTIONS,
                {},
        };
        CliOptions *o = userdata;
        const char *policy_path = NULL, *config_path = NULL, *ms_path = MASTER_SECRET_FILE_DEFAULT,
                   *name;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(master_secret_freep) MasterSecret *ms = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *member = NULL, *body = NULL, *resp = NULL;
        char auth[POLICY_UPDATE_AUTH_SIZE];
        NodeRemoval rm;
        RpcClientConfig rc;
        PolicyVerifier pv;
        AtlsVerifier verifier;
        long status = 0;
        CliTarget t;
        Diag d;
        int c, r;

        cli_target_init(&t, &rc);
        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        remove_help();
                        return 0;
                case ARG_POLICY:
                        policy_path = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_MS:
                        ms_path = optarg;
                        break;
                case 'o':
                        if (cli_parse_output_option(optarg, &o->output) < 0)
                                return -EUSAGE;
                        break;
                default:
                        r = cli_target_option(&t, &rc, c, optarg);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                return log_error_errno(-EUSAGE,
                                                       "See 'cloister node remove --help'.");
                }
        if (optind + 1 != argc)
                return log_error_errno(-EUSAGE, "node remove: give the member's NAME, once (as "
                                                "'cloister status' lists it). See --help.");
        name = argv[optind];
        if (strlen(name) == 0 || strlen(name) > 63)
                return log_error_errno(-EUSAGE, "node remove: a member's name is 1 to 63 bytes.");
        (void) cli_workspace_config_default(policy_path, &config_path);
        if (!policy_path && !config_path)
                return log_error_errno(-EUSAGE,
                                       "node remove: give --policy or --config, or run it in the "
                                       "cluster's workspace (holding " CLI_CONFIG_FILE_DEFAULT
                                       "). See --help.");
        r = cli_policy_or_config("node remove", policy_path, config_path, &config);
        if (r < 0)
                return r;
        r = cli_tdx_collateral_setup(NULL, NULL, &config, false);
        if (r < 0)
                return r;
        r = cli_target_resolve("node remove", &t);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = cli_policy_load(policy_path, &config, &pol, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        diag_clear(&d);
        r = master_secret_load(ms_path, &ms, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);

        /* The join service must be a member of this cluster running what the policy admits. */
        cli_policy_bind_cluster(pol, t.cid);
        pv = (PolicyVerifier){ .policy = pol };
        verifier = policy_verifier(&pv);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls);
        if (r < 0)
                return log_error_errno(r, "Cannot set up aTLS: %m");
        r = find_member(atls, &rc, t.url, name, &member);
        if (r < 0)
                return r;
        rm = (NodeRemoval){
                .name = name,
                .disk_uuid = json_string_value(json_object_get(member, "diskUuid")) ?: "",
                .ak_digest = json_string_value(json_object_get(member, "akDigest")) ?: "",
                .admitted = json_string_value(json_object_get(member, "admitted")) ?: "",
        };
        r = node_removal_authenticate(ms->key, ms->salt, t.cid, &rm, auth);
        if (r == -EINVAL)
                return log_error_errno(-EPROTO,
                                       "%s: the join service lists %s in a form no record has "
                                       "(disk, key or admission time). Nothing was removed.",
                                       t.url, name);
        if (r < 0)
                return log_error_errno(r, "Cannot authenticate the removal: %m");
        body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", name, "diskUuid", rm.disk_uuid,
                         "akDigest", rm.ak_digest, "admitted", rm.admitted, "authenticator", auth);
        if (!body)
                return log_oom();
        diag_clear(&d);
        r = rpc_call(atls, &rc, "POST", t.url, "/v1/node-remove", body, true, &status, &resp, &d);
        if (r < 0) {
                char msg[400];
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r,
                                       "%s: the removal was not answered: %s. Run 'cloister "
                                       "status': if %s is still listed, run the same command "
                                       "again.",
                                       t.url, msg, name);
        }
        if (status != 200) {
                const char *detail = json_string_value(json_object_get(resp, "detail"));
                return log_error_errno(status == 404 ? -ENOENT : -EPERM,
                                       "%s refused to remove %s (HTTP %ld): %s", t.url, name,
                                       status, detail ?: "no detail");
        }
        if (o && o->output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc = result_new("cloister node remove");
                if (!doc || json_object_update(doc, resp) < 0 ||
                    result_set_verdict(doc, "pass", NULL, NULL, NULL) < 0 || result_print(doc) < 0)
                        return log_oom();
                return 0;
        }
        printf("%s (%s, disk %s, admitted %s) removed from the cluster's membership by %s: its "
               "name, disk and attestation key can be admitted again; its rejoin is refused.\n",
               name, json_string_value(json_object_get(member, "role")) ?: "?", rm.disk_uuid,
               rm.admitted, t.url);
        return 0;
}

int verb_node(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "remove", 0, VERB_ANY, node_remove_verb,
                  "take a member out of the membership (owner-authenticated, audited)" },
                {},
        };

        return verbs_dispatch("cloister node", argc - 1, argv + 1, verbs, userdata);
}
