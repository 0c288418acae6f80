/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-node-state.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/base64.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/init-secret.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/mastersecret.h"
#include "cloister/rpc.h"

/* How often a 429 (init attempts deferred) is retried, backing off 1 s to 8 s: ~1 min. */
#define APPLY_BUSY_RETRIES 10
#define STATE_FILE_DEFAULT "cloister-state.json"

static char *b64_wipe_later(const void *data, size_t n)
{
        char *s = NULL;
        return base64_encode(data, n, &s) < 0 ? NULL : s;
}

static void free_wiped(char *s)
{
        if (s)
                explicit_wipe(s, strlen(s));
        free(s);
}

/* Attests the node with the policy and PCR 15 = this cluster's value: it is a member. */
static int attest_member(const char *endpoint, const char *policy_path, const CliConfig *config,
                         const uint8_t cid[static CLUSTER_ID_SIZE],
                         const RpcClientConfig *rpc_config, Diag *d)
{
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *resp = NULL;
        PolicyVerifier pv;
        AtlsVerifier v;
        long status = 0;
        int r;

        r = cli_policy_load(policy_path, config, &pol, d);
        if (r < 0)
                return r;
        kdf_pcr15_expected(cid, pol->pcrs[15].expected);
        pol->pcrs[15].present = true;
        pol->pcrs[15].warn_only = false;
        pv = (PolicyVerifier){ .policy = pol };
        v = policy_verifier(&pv);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls);
        if (r < 0)
                return diag_fail(d, r, "atls", -1, "cannot set up aTLS");
        r = rpc_call(atls, rpc_config, "GET", endpoint, "/v1/node", NULL, true, &status, &resp, d);
        if (r >= 0 && status != 200)
                r = diag_fail(d, -EPROTO, "node", -1, "the node answered HTTP %ld", status);
        return r;
}

typedef struct ApplyState {
        json_t *json; /* owns the strings below */
        const char *name, *cid_hex, *endpoint, *status;
        /* what 'cloister create' recorded (status "created": no cluster ID yet); NULL if none */
        json_t *infrastructure;
        uint8_t cid[CLUSTER_ID_SIZE], msalt[MEASUREMENT_SALT_SIZE];
} ApplyState;

static void apply_state_done(ApplyState *st)
{
        json_decref(st->json);
}

static int load_state(const char *state_path, ApplyState *st)
{
        static const char *const keys[] = { "version",
                                            "status",
                                            "clusterName",
                                            "clusterId",
                                            "measurementSalt",
                                            "endpoint",
                                            "kubernetesVersion",
                                            "serviceCidr",
                                            "kubeconfig",
                                            "infrastructure",
                                            NULL };
        JsonCtx ctx = { .source = state_path, .path = "" };
        const char *msalt_hex = NULL;
        int64_t version;
        Diag d;
        int r;

        diag_clear(&d);
        ctx.diag = &d;
        r = json_parse_file(state_path, JSON_FILE_SIZE_MAX, &st->json, &d);
        if (r >= 0)
                r = json_check_keys(&ctx, st->json, keys);
        if (r >= 0)
                r = json_get_int(&ctx, st->json, "version", true, 1, 1, &version);
        if (r >= 0)
                r = json_get_string(&ctx, st->json, "status", true, &st->status);
        if (r >= 0)
                r = json_get_string(&ctx, st->json, "clusterName", true, &st->name);
        if (r >= 0)
                r = json_get_string(&ctx, st->json, "endpoint", true, &st->endpoint);
        if (r >= 0) {
                r = json_get_object(&ctx, st->json, "infrastructure", false, &st->infrastructure);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0 && strcmp(st->status, "created") == 0) {
                /* 'cloister create' made the nodes; no cluster exists yet. */
                if (!st->infrastructure)
                        return log_error_errno(
                                -EBADMSG, "%s: status created without infrastructure.", state_path);
                return 0;
        }
        if (r >= 0)
                r = json_get_string(&ctx, st->json, "clusterId", true, &st->cid_hex);
        if (r >= 0)
                r = json_get_string(&ctx, st->json, "measurementSalt", true, &msalt_hex);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (strcmp(st->status, "pending") != 0 && strcmp(st->status, "initialized") != 0)
                return log_error_errno(-EBADMSG,
                                       "%s: status is neither created, pending nor initialized.",
                                       state_path);
        if (hex_decode_exact(st->cid_hex, st->cid, sizeof(st->cid)) < 0 ||
            hex_decode_exact(msalt_hex, st->msalt, sizeof(st->msalt)) < 0)
                return log_error_errno(-EBADMSG, "%s: clusterId or measurementSalt is not hex.",
                                       state_path);
        return 0;
}

static int write_state(const char *path, const char *status, const char *name, const char *cid_hex,
                       const uint8_t msalt[static MEASUREMENT_SALT_SIZE], const char *endpoint,
                       const char *k8s, const char *service_cidr, const char *kubeconfig,
                       json_t *infrastructure, WriteFileFlags flags)
{
        char msalt_hex[2 * MEASUREMENT_SALT_SIZE + 1];
        _cleanup_(json_decrefp) json_t *st = NULL;
        _cleanup_(freep) char *text = NULL;

        hex_encode_buf(msalt, MEASUREMENT_SALT_SIZE, msalt_hex, sizeof(msalt_hex));
        st = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "version", 1, "status", status,
                       "clusterName", name, "clusterId", cid_hex, "measurementSalt", msalt_hex,
                       "endpoint", endpoint, "kubernetesVersion", k8s, "serviceCidr", service_cidr,
                       "kubeconfig", kubeconfig);
        if (st && infrastructure && json_object_set(st, "infrastructure", infrastructure) < 0)
                return -ENOMEM;
        if (!st || json_dump_pretty(st, &text) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0600, flags | WRITE_FILE_SYNC);
}

int verb_apply(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_ENDPOINT = 0x100,
                ARG_POLICY,
                ARG_CONFIG,
                ARG_MS,
                ARG_NAME,
                ARG_K8S,
                ARG_KUBECONFIG,
                ARG_INIT_SECRET,
                ARG_SERVICE_CIDR,
                ARG_STATE,
                ARG_TIMEOUT,
                ARG_PCS_URL,
                ARG_PCS_CACHE,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "endpoint", required_argument, NULL, ARG_ENDPOINT },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "master-secret", required_argument, NULL, ARG_MS },
                { "cluster-name", required_argument, NULL, ARG_NAME },
                { "kubernetes-version", required_argument, NULL, ARG_K8S },
                { "kubeconfig", required_argument, NULL, ARG_KUBECONFIG },
                { "init-secret-file", required_argument, NULL, ARG_INIT_SECRET },
                { "service-cidr", required_argument, NULL, ARG_SERVICE_CIDR },
                { "state-file", required_argument, NULL, ARG_STATE },
                { "pcs-url", required_argument, NULL, ARG_PCS_URL },
                { "pcs-cache", required_argument, NULL, ARG_PCS_CACHE },
                {},
        };
        const char *pcs_url = NULL, *pcs_cache = NULL;
        /* name, k8s, service_cidr: NULL until given; then the config's, then the defaults. */
        const char *endpoint = NULL, *policy = NULL, *config_path = NULL,
                   *ms_path = MASTER_SECRET_FILE_DEFAULT, *name = NULL, *k8s = NULL,
                   *kubeconfig = "cloister-admin.conf",
                   *init_secret_path = INIT_SECRET_FILE_DEFAULT, *service_cidr = NULL,
                   *state_path = STATE_FILE_DEFAULT;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(secret_freep) Secret *init_secret = NULL;
        RpcClientConfig rpc_config;
        _cleanup_(apply_state_done) ApplyState prev = {};
        bool resume = false, created = false, timeout_given = false;
        char endpoint_url[CLI_URL_MAX];
        _cleanup_(master_secret_freep) MasterSecret *ms = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *body = NULL, *resp = NULL;
        _cleanup_(secret_freep) Secret *msecret = NULL;
        uint8_t msalt[MEASUREMENT_SALT_SIZE], cid[CLUSTER_ID_SIZE];
        char cid_hex[2 * CLUSTER_ID_SIZE + 1], *k64, *s64, *m64, *i64;
        const char *got_cid, *kc;
        PolicyVerifier pv;
        _cleanup_(attest_report_done) AttestReport rep = {};
        AtlsVerifier v;
        long status = 0;
        Diag d;
        int c, r;

        rpc_client_config_defaults(&rpc_config);
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister apply [--endpoint [https://]HOST[:PORT (default "
                               "9000)]]\n"
                               "         --policy FILE | --config FILE\n"
                               "         [--master-secret FILE] [--cluster-name N]\n"
                               "         [--kubernetes-version V (default " CLI_KUBERNETES_VERSION
                               ")]\n"
                               "         [--kubeconfig OUT]\n"
                               "         [--init-secret-file FILE] [--service-cidr CIDR]\n"
                               "         [--state-file FILE (default " STATE_FILE_DEFAULT ")]\n"
                               "         [--timeout SEC (default: 30 for each attestation,\n"
                               "          600 for the init call, which runs kubeadm init)]\n"
                               "         [--pcs-url URL] [--pcs-cache DIR]\n\n"
                               "Attests the first node's bootstrapper against the policy (its\n"
                               "PCR 15 must still be zero) and only then sends it the master\n"
                               "secret to initialise the cluster. Writes the admin kubeconfig\n"
                               "(0600) and prints the cluster ID. The node accepts init only with\n"
                               "the init secret (default file " INIT_SECRET_FILE_DEFAULT ") whose\n"
                               "hash its metadata holds. The result goes to the state file; run\n"
                               "again with it, apply only attests that the node is a member of\n"
                               "this cluster (PCR 15) and changes nothing.\n\n"
                               "--config FILE ('cloister config generate') gives the policy (its\n"
                               "\"attestation\" object) and the defaults for --cluster-name,\n"
                               "--kubernetes-version and --service-cidr; flags given win.\n"
                               "Without --policy and --config, the workspace's cloister.json\n"
                               "is the configuration (the workspace: the current directory, or\n"
                               "'cloister -C DIR'; every default file above is in it).\n\n"
                               "After 'cloister create' the state file gives the endpoint (the\n"
                               "load balancer) and the cluster name; --endpoint is then not\n"
                               "needed.\n\n" CLI_TDX_COLLATERAL_HELP);
                        return 0;
                case ARG_ENDPOINT:
                        if (cli_endpoint_url("--endpoint", optarg, endpoint_url) < 0)
                                return -EUSAGE;
                        endpoint = endpoint_url;
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
                        timeout_given = true;
                        break;
                case ARG_MS:
                        ms_path = optarg;
                        break;
                case ARG_NAME:
                        name = optarg;
                        break;
                case ARG_K8S:
                        k8s = optarg;
                        break;
                case ARG_KUBECONFIG:
                        kubeconfig = optarg;
                        break;
                case ARG_INIT_SECRET:
                        init_secret_path = optarg;
                        break;
                case ARG_SERVICE_CIDR:
                        service_cidr = optarg;
                        break;
                case ARG_STATE:
                        state_path = optarg;
                        break;
                case ARG_PCS_URL:
                        pcs_url = optarg;
                        break;
                case ARG_PCS_CACHE:
                        pcs_cache = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "apply: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        (void) cli_workspace_config_default(policy, &config_path);
        if ((!endpoint && access(state_path, F_OK) < 0) || (!policy && !config_path))
                return log_error_errno(-EUSAGE,
                                       "apply: --endpoint (or a state file from 'cloister "
                                       "create') and --policy or --config (or a workspace "
                                       "holding " CLI_CONFIG_FILE_DEFAULT ") are required.");
        r = cli_policy_or_config("apply", policy, config_path, &config);
        if (r < 0)
                return r;
        r = cli_tdx_collateral_setup(pcs_url, pcs_cache, &config, false);
        if (r < 0)
                return r;
        name = name ?: config.cluster_name ?: CLI_CLUSTER_NAME_DEFAULT;
        k8s = k8s ?: config.kubernetes_version ?: CLI_KUBERNETES_VERSION;
        service_cidr = service_cidr ?: config.service_cidr ?: CLI_SERVICE_CIDR_DEFAULT;
        if (access(state_path, F_OK) == 0) {
                r = load_state(state_path, &prev);
                if (r < 0)
                        return r;
                endpoint = endpoint ?: prev.endpoint;
                if (strcmp(prev.endpoint, endpoint) != 0)
                        return log_error_errno(-EEXIST,
                                               "%s records cluster '%s' at %s, not %s: use "
                                               "another --state-file for another cluster.",
                                               state_path, prev.name, prev.endpoint, endpoint);
                resume = strcmp(prev.status, "pending") == 0;
                created = strcmp(prev.status, "created") == 0;
                if (created) {
                        /* The nodes 'cloister create' made: the first init, under the name
                         * create gave their resources. */
                        name = prev.name;
                } else if (!resume) {
                        /* Done before: only check that the node is this cluster's member. */
                        diag_clear(&d);
                        r = master_secret_load(ms_path, &ms, &d);
                        if (r < 0)
                                return log_error_errno(r, "%s", d.message);
                        r = kdf_measurement_secret(ms->key, ms->salt, &msecret);
                        if (r >= 0)
                                r = kdf_cluster_id(msecret, prev.msalt, cid);
                        if (r < 0)
                                return log_error_errno(r, "Key derivation failed: %m");
                        if (memcmp(cid, prev.cid, sizeof(cid)) != 0)
                                return log_error_errno(-EKEYREJECTED,
                                                       "%s is not the master secret of cluster "
                                                       "'%s' (%s).",
                                                       ms_path, prev.name, state_path);
                        r = attest_member(endpoint, policy, &config, cid, &rpc_config, &d);
                        if (r < 0) {
                                char msg[1024];
                                diag_format(&d, msg, sizeof(msg));
                                return log_error_errno(r,
                                                       "Cluster '%s' is recorded in %s, but the "
                                                       "node does not attest as its member now: "
                                                       "%s",
                                                       prev.name, state_path, msg);
                        }
                        printf("Cluster '%s' is already initialised and the node attests as its "
                               "member.\ncluster ID: %s\nNothing to do.\n",
                               prev.name, prev.cid_hex);
                        return 0;
                }
                if (resume)
                        log_info("%s: the last init did not finish; resuming it with the same "
                                 "cluster ID",
                                 state_path);
                name = prev.name;
        }
        /* Checked first: once the node is initialised the kubeconfig must have somewhere to go. */
        if (access(kubeconfig, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s already exists: move it away or pass --kubeconfig.",
                                       kubeconfig);
        diag_clear(&d);
        r = master_secret_load(ms_path, &ms, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        r = cli_policy_load(policy, &config, &pol, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        r = init_secret_load(init_secret_path, &init_secret, &d);
        if (r < 0)
                return log_error_errno(r, "%s (create it with 'cloister init-secret generate').",
                                       d.message);
        if (resume)
                memcpy(msalt, prev.msalt, sizeof(msalt));
        else if (RAND_bytes(msalt, sizeof(msalt)) != 1)
                return log_error_errno(-EIO, "No randomness for the measurement salt.");
        /* The cluster ID we expect back: the node cannot claim another. */
        r = kdf_measurement_secret(ms->key, ms->salt, &msecret);
        if (r >= 0)
                r = kdf_cluster_id(msecret, msalt, cid);
        if (r < 0)
                return log_error_errno(r, "Key derivation failed: %m");
        hex_encode_buf(cid, sizeof(cid), cid_hex, sizeof(cid_hex));
        if (resume && memcmp(cid, prev.cid, sizeof(cid)) != 0)
                return log_error_errno(-EKEYREJECTED,
                                       "%s is not the master secret of the pending cluster '%s' "
                                       "(%s).",
                                       ms_path, prev.name, state_path);
        /* A fresh node must show PCR 15 = 0 whatever the policy file says; a resumed init may
         * find it already extended with exactly this cluster's ID. */
        memset(pol->pcrs[15].expected, 0, sizeof(pol->pcrs[15].expected));
        pol->pcrs[15].present = true;
        pol->pcrs[15].warn_only = false;
        if (resume && attest_member(endpoint, policy, &config, cid, &rpc_config, &d) >= 0)
                kdf_pcr15_expected(cid, pol->pcrs[15].expected);

        k64 = b64_wipe_later(secret_data_const(ms->key), MASTER_SECRET_SIZE);
        s64 = b64_wipe_later(ms->salt, MASTER_SALT_SIZE);
        m64 = b64_wipe_later(msalt, sizeof(msalt));
        i64 = b64_wipe_later(secret_data_const(init_secret), secret_size(init_secret));
        body = k64 && s64 && m64 && i64 ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "masterSecret",
                                                    k64, "salt", s64, "measurementSalt", m64,
                                                    "clusterName", name, "kubernetesVersion", k8s,
                                                    "initSecret", i64, "serviceCidr", service_cidr)
                                        : NULL;
        free_wiped(i64);
        free_wiped(k64);
        free_wiped(s64);
        free_wiped(m64);
        if (!body)
                return log_oom();
        /* The owner's policy goes with the init: the node's join service holds every joining
         * node to it, so it must be one a join service runs with (checked before the node is
         * contacted: a node initialised with it could not serve joins). */
        diag_clear(&d);
        r = attest_policy_check_cluster(pol, policy ?: config.policy_source, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        {
                json_t *pj = NULL;
                r = policy ? json_parse_file(policy, ATTEST_POLICY_SIZE_MAX, &pj, &d)
                           : json_parse_buffer(config.policy, strlen(config.policy),
                                               config.policy_source, &pj, &d);
                if (r < 0)
                        return log_error_errno(r, "%s", d.message);
                if (json_object_set_new(body, "policy", pj) < 0)
                        return log_oom();
        }

        pv = (PolicyVerifier){ .policy = pol, .report = &rep };
        v = policy_verifier(&pv);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &atls);
        if (r < 0)
                return log_error_errno(r, "Cannot set up aTLS: %m");
        log_info("Verifying the node at %s and initialising cluster '%s' (Kubernetes %s, service "
                 "CIDR %s)...",
                 endpoint, name, k8s, service_cidr);
        /* The node is attested once before any state is written or any secret sent: a wrong
         * endpoint, a node that is down or one that fails the policy leaves nothing behind, and
         * the owner can simply run apply again with the right one. */
        diag_clear(&d);
        r = rpc_call(atls, &rpc_config, "GET", endpoint, "/v1/node", NULL, true, &status, &resp,
                     &d);
        if (r >= 0 && status != 200)
                r = diag_fail(&d, -EPROTO, "node", -1, "%s answered HTTP %ld to GET /v1/node",
                              endpoint, status);
        /* A node in a cluster already, or waiting for recovery: its state in words. */
        if (r < 0 && cli_node_state_from_report("apply", endpoint, &rep, resume ? cid : NULL) < 0)
                return -EALREADY;
        /* (A resumed init finds its own cluster's ID in PCR 15: the node says "member".) */
        if (r >= 0 && !resume &&
            cli_node_state_expect("apply", endpoint, resp, "uninitialized") < 0)
                return -EALREADY;
        if (r >= 0) /* warns on a version skew beyond the support policy (docs/versions.md) */
                json_decref(cli_node_versions(endpoint, resp));
        if (r < 0) {
                char msg[1024];
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r,
                                       "The node was not initialised, and nothing was sent to "
                                       "it (%s not written): %s",
                                       state_path, msg);
        }
        /* Recorded before any secret is sent: if the answer is lost, the next run resumes with
         * the same measurement salt (so the same cluster ID) instead of starting over. */
        if (!resume) {
                r = write_state(state_path, "pending", name, cid_hex, msalt, endpoint, k8s,
                                service_cidr, kubeconfig, prev.infrastructure,
                                created ? 0 : WRITE_FILE_EXCLUSIVE);
                if (r < 0)
                        return log_error_errno(r, "Cannot write %s: %m", state_path);
        }
        /* kubeadm init takes minutes: the init call gets a long timeout unless one was given. */
        if (!timeout_given)
                rpc_config.total_timeout_ms = 600U * 1000U;
        /* 429: the node defers init secrets while others are guessing them; ours waits its
         * turn (a repeated init of the same cluster is answered as the first). */
        for (unsigned attempt = 0;; attempt++) {
                json_decref(resp);
                resp = NULL;
                diag_clear(&d);
                r = rpc_call(atls, &rpc_config, "POST", endpoint, "/v1/init", body, false, &status,
                             &resp, &d);
                if (r < 0 || status != 429 || attempt >= APPLY_BUSY_RETRIES)
                        break;
                log_info("The node defers init attempts (%s): asking again in %u s.",
                         json_string_value(json_object_get(resp, "detail")) ?: "busy",
                         MIN(1U << MIN(attempt, 3U), 8U));
                (void) sleep(MIN(1U << MIN(attempt, 3U), 8U));
        }
        if (r < 0) {
                char msg[1024];
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r, "The node was not initialised: %s", msg);
        }
        if (status != 200) /* its log, if it sent one (only to the proven owner) */
                (void) cli_node_log_save(endpoint, resp, NULL, false);
        if (status != 200 && cli_node_state_from_refusal("apply", endpoint, resp) < 0)
                return -EALREADY;
        if (status != 200)
                return log_error_errno(-EPROTO, "The node refused init (HTTP %ld): %s", status,
                                       json_string_value(json_object_get(resp, "detail")) ?: "?");
        got_cid = json_string_value(json_object_get(resp, "clusterId"));
        kc = json_string_value(json_object_get(resp, "kubeconfig"));
        if (!got_cid || strcmp(got_cid, cid_hex) != 0 || !kc)
                return log_error_errno(-EPROTO,
                                       "The node answered a different cluster ID (%s, "
                                       "expected %s): not trusting it.",
                                       got_cid ?: "none", cid_hex);
        r = write_file_atomic(kubeconfig, kc, strlen(kc), 0600, WRITE_FILE_EXCLUSIVE);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write the kubeconfig: %m", kubeconfig);
        r = write_state(state_path, "initialized", name, cid_hex, msalt, endpoint, k8s,
                        service_cidr, kubeconfig, prev.infrastructure, 0);
        if (r < 0)
                return log_error_errno(r,
                                       "Cluster initialised, but %s cannot be written: %m. Keep "
                                       "this output: cluster ID %s.",
                                       state_path, cid_hex);
        printf("Cluster '%s' initialised.\ncluster ID: %s\nkubeconfig: %s\nstate: %s\n", name,
               cid_hex, kubeconfig, state_path);
        return 0;
}
