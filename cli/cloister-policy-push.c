/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister policy push: the configuration's policy, at its policyVersion, authenticated with the
 * owner's policy-update key (docs/policy-update.md), sent to every join service of the cluster,
 * each attested first (membership walked as 'cloister status' walks it). Reports which join
 * service holds which version; a join service not reached makes it fail, and running it again
 * completes the push (the same version and document again is a no-op).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-json.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/attest.h"
#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/mastersecret.h"
#include "cloister/policy-update.h"
#include "cloister/rpc.h"

#define PUSH_JOIN_SERVICES_MAX 16
#define PUSH_REASON_MAX        512

typedef struct PushTarget {
        char url[CLI_URL_MAX];
        int64_t before; /* -1: unknown (not reached, or a policy replaced by hand) */
        int64_t after;  /* -1: unknown */
        bool reached, ok, changed;
        char reason[PUSH_REASON_MAX];
} PushTarget;

typedef struct PushPlan {
        PushTarget t[PUSH_JOIN_SERVICES_MAX];
        size_t n;
} PushPlan;

static bool plan_has(const PushPlan *p, const char *url)
{
        for (size_t i = 0; i < p->n; i++)
                if (strcmp(p->t[i].url, url) == 0)
                        return true;
        return false;
}

static int64_t version_of(const json_t *resp)
{
        const json_t *v = json_object_get(resp, "policyVersion");

        return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

/* Every join service: the control planes each one lists, starting from the first node. */
static void discover(AtlsContext *atls, const RpcClientConfig *rc, const char *start, PushPlan *p)
{
        (void) snprintf(p->t[p->n].url, CLI_URL_MAX, "%s", start);
        p->t[p->n++].before = -1;
        for (size_t k = 0; k < p->n; k++) {
                _cleanup_(json_decrefp) json_t *resp = NULL;
                PushTarget *t = &p->t[k];
                long status = 0;
                json_t *m;
                size_t i;
                Diag d;
                int r;

                diag_clear(&d);
                r = rpc_call(atls, rc, "GET", t->url, "/v1/members", NULL, true, &status, &resp,
                             &d);
                if (r < 0 || status != 200) {
                        char msg[PUSH_REASON_MAX];
                        diag_format(&d, msg, sizeof(msg));
                        (void) snprintf(t->reason, sizeof(t->reason),
                                        "not reached: %.400s (it was not changed)",
                                        r < 0 ? msg : "HTTP error");
                        continue;
                }
                t->reached = true;
                t->before = version_of(resp);
                json_array_foreach (json_object_get(resp, "members"), i, m) {
                        const char *role = json_string_value(json_object_get(m, "role"));
                        const char *ep = json_string_value(json_object_get(m, "endpoint"));
                        char url[CLI_URL_MAX];

                        if (!role || !ep || strcmp(role, "control-plane") != 0 || strlen(ep) > 260)
                                continue;
                        (void) snprintf(url, sizeof(url), "https://%s", ep);
                        if (plan_has(p, url))
                                continue;
                        if (p->n == PUSH_JOIN_SERVICES_MAX) {
                                log_warning("More than %d join services: the others are not "
                                            "pushed to.",
                                            PUSH_JOIN_SERVICES_MAX);
                                break;
                        }
                        (void) snprintf(p->t[p->n].url, CLI_URL_MAX, "%s", url);
                        p->t[p->n++].before = -1;
                }
        }
}

static void push_one(AtlsContext *atls, const RpcClientConfig *rc, const json_t *body,
                     int64_t version, PushTarget *t)
{
        _cleanup_(json_decrefp) json_t *resp = NULL;
        long status = 0;
        Diag d;
        int r;

        t->after = t->before;
        if (!t->reached)
                return;
        diag_clear(&d);
        r = rpc_call(atls, rc, "POST", t->url, "/v1/policy", body, true, &status, &resp, &d);
        if (r < 0) {
                char msg[PUSH_REASON_MAX];
                diag_format(&d, msg, sizeof(msg));
                (void) snprintf(t->reason, sizeof(t->reason), "not pushed: %.400s", msg);
                return;
        }
        if (status != 200) {
                const char *detail = json_string_value(json_object_get(resp, "detail"));
                (void) snprintf(t->reason, sizeof(t->reason), "refused (HTTP %ld): %s", status,
                                detail ?: "no detail");
                return;
        }
        if (json_integer_value(json_object_get(resp, "version")) != version) {
                (void) snprintf(t->reason, sizeof(t->reason),
                                "answered with another version than it was sent");
                return;
        }
        t->ok = true;
        t->after = version;
        t->changed = json_is_true(json_object_get(resp, "changed"));
}

static void version_text(int64_t v, char buf[static 24])
{
        if (v < 0)
                (void) snprintf(buf, 24, "-");
        else
                (void) snprintf(buf, 24, "%" PRId64, v);
}

static json_t *version_json(int64_t v)
{
        return v < 0 ? json_null() : json_integer(v);
}

/* -o json: the same table; the verdict fails unless every join service holds the version. */
static int print_json(const PushPlan *p, int64_t version, const char *digest, size_t n_ok)
{
        _cleanup_(json_decrefp) json_t *doc = result_new("cloister policy push");
        json_t *list = json_array();
        char reason[160];

        if (!doc || !list || json_object_set_new(doc, "joinServices", list) < 0 ||
            json_object_set_new(doc, "version", json_integer(version)) < 0 ||
            json_object_set_new(doc, "policyDigest", json_string(digest)) < 0)
                return log_oom();
        for (size_t i = 0; i < p->n; i++) {
                const PushTarget *t = &p->t[i];
                if (json_array_append_new(
                            list,
                            json_pack("{s:s,s:o,s:o,s:s,s:o}", "joinService", t->url, "before",
                                      version_json(t->before), "now", version_json(t->after),
                                      "result",
                                      t->ok ? (t->changed ? "updated" : "unchanged") : "failed",
                                      "reason", t->ok ? json_null() : json_string(t->reason))) < 0)
                        return log_oom();
        }
        (void) snprintf(reason, sizeof(reason),
                        "%zu of %zu join services hold policy version %" PRId64
                        "; run the same command again once the others are reachable",
                        n_ok, p->n, version);
        if (result_set_verdict(doc, n_ok == p->n ? "pass" : "fail", n_ok == p->n ? NULL : reason,
                               NULL, NULL) < 0 ||
            result_print(doc) < 0)
                return log_oom();
        return n_ok == p->n ? 0 : -EAGAIN;
}

static void push_help(void)
{
        printf("Usage: cloister policy push [--config FILE] [--master-secret FILE]\n"
               "         [--state-file FILE] [--node HOST[:PORT]] [--cluster-id HEX] "
               "[--timeout SEC]\n\n"
               "Changes what a running cluster admits: sends the configuration's policy (its\n"
               "\"attestation\" object) at its \"policyVersion\" to every join service of the\n"
               "cluster. Each join service is attested first, with that policy and PCR 15 =\n"
               "the cluster ID (the membership is walked as 'cloister status' walks it). The\n"
               "update is authenticated with a key derived from the master secret (docs/\n"
               "policy-update.md): a join service takes only the owner's, only a version\n"
               "higher than the one it holds (the same version and document again changes\n"
               "nothing), and only a policy a join service runs with; it stores it, puts it in\n"
               "force for the next join or rejoin and records it in its audit log.\n"
               "Raise \"policyVersion\" in the configuration for every change ('cloister\n"
               "status' shows the version each join service holds; 1 for the first push).\n"
               "Prints which join service holds which version; exits 1 if any was not reached\n"
               "or refused: run the same command again once it is back.\n\n"
               "  --config FILE         default the workspace's " CLI_CONFIG_FILE_DEFAULT "\n"
               "  --master-secret FILE  default " MASTER_SECRET_FILE_DEFAULT "\n" CLI_TARGET_HELP
               "  -o text|json          json: {\"version\", \"policyDigest\", \"joinServices\":\n"
               "                        [{\"joinService\", \"before\", \"now\", \"result\",\n"
               "                        \"reason\"}], \"verdict\"} (docs/json.md)\n");
}

int policy_push_verb(int argc, char *argv[], void *userdata)
{
        enum { ARG_CONFIG = 0x100, ARG_MS };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "master-secret", required_argument, NULL, ARG_MS },
                { "output", required_argument, NULL, 'o' },
                CLI_TARGET_OPTIONS,
                {},
        };
        CliOptions *o = userdata;
        const char *config_path = NULL, *ms_path = MASTER_SECRET_FILE_DEFAULT;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(master_secret_freep) MasterSecret *ms = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *body = NULL;
        _cleanup_(freep) PushPlan *plan = NULL;
        char auth[POLICY_UPDATE_AUTH_SIZE];
        char digest_hex[2 * SHA256_DIGEST_SIZE + 1];
        uint8_t digest[SHA256_DIGEST_SIZE];
        size_t n_ok = 0;
        RpcClientConfig rc;
        PolicyVerifier pv;
        AtlsVerifier verifier;
        CliTarget t;
        Diag d;
        int c, r;

        cli_target_init(&t, &rc);
        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        push_help();
                        return 0;
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
                                                       "See 'cloister policy push --help'.");
                }
        (void) cli_workspace_config_default(NULL, &config_path);
        if (optind < argc || !config_path)
                return log_error_errno(-EUSAGE,
                                       "policy push: give --config FILE, or run it in the "
                                       "cluster's workspace (holding " CLI_CONFIG_FILE_DEFAULT
                                       "). See --help.");
        /* One command changes a cluster at a time: a push during a roll would replace the
         * policy of both images under it. */
        r = cli_workspace_lock(t.state_path, "policy push");
        if (r < 0)
                return r;

        /* Inputs first: nothing is sent for a configuration a join service would refuse. */
        r = cli_config_load(config_path, &config);
        if (r < 0)
                return r;
        /* TDX evidence without collateral: the user's cache, fetched when missing or stale. */
        r = cli_tdx_collateral_setup(NULL, NULL, &config, false);
        if (r < 0)
                return r;
        if (config.policy_version <= 0)
                return log_error_errno(-EINVAL,
                                       "%s: no \"policyVersion\": set it to a number higher than "
                                       "the version the join services hold ('cloister status' "
                                       "shows it; 1 for the first push).",
                                       config_path);
        diag_clear(&d);
        r = attest_policy_parse(config.policy, strlen(config.policy), config.policy_source, &pol,
                                &d);
        if (r >= 0)
                r = attest_policy_check_cluster(pol, config.policy_source, &d);
        if (r >= 0 && pol->variant == ATTEST_VARIANT_QEMU_VTPM &&
            pol->ak_trust == AK_TRUST_INSECURE_ANY)
                r = diag_fail(&d, -EPERM, "policy", -1,
                              "%s: akTrust insecure-any trusts any TPM: a join service refuses "
                              "such an update; pin the nodes' keys",
                              config.policy_source);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (strlen(config.policy) > ATTEST_POLICY_SIZE_MAX)
                return log_error_errno(-EMSGSIZE, "%s: the policy is over %u bytes.",
                                       config.policy_source, ATTEST_POLICY_SIZE_MAX);

        r = cli_target_resolve("policy push", &t);
        if (r < 0)
                return r;

        diag_clear(&d);
        r = master_secret_load(ms_path, &ms, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        r = policy_update_authenticate(ms->key, ms->salt, t.cid, config.policy_version,
                                       config.policy, strlen(config.policy), auth);
        if (r < 0)
                return log_error_errno(r, "Cannot authenticate the policy update: %m");
        body = json_pack("{s:s,s:I,s:s}", "policy", config.policy, "version",
                         (json_int_t) config.policy_version, "authenticator", auth);
        plan = calloc(1, sizeof(PushPlan));
        if (!body || !plan)
                return log_oom();
        crypto_sha256(config.policy, strlen(config.policy), digest);
        hex_encode_buf(digest, sizeof(digest), digest_hex, sizeof(digest_hex));

        /* Every join service must show that it runs what the new policy admits, as a member of
         * this cluster: one that would fail it could not rejoin under it either. */
        cli_policy_bind_cluster(pol, t.cid);
        pv = (PolicyVerifier){ .policy = pol };
        verifier = policy_verifier(&pv);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls);
        if (r < 0)
                return log_error_errno(r, "Cannot set up aTLS: %m");
        discover(atls, &rc, t.url, plan);
        for (size_t i = 0; i < plan->n; i++)
                push_one(atls, &rc, body, config.policy_version, &plan->t[i]);

        for (size_t i = 0; i < plan->n; i++)
                n_ok += plan->t[i].ok;
        if (o && o->output == OUTPUT_JSON)
                return print_json(plan, config.policy_version, digest_hex, n_ok);
        printf("policy version %" PRId64 " (sha256 %s) from %s\n", config.policy_version,
               digest_hex, config_path);
        printf("%-36s %-8s %-8s %s\n", "JOIN SERVICE", "BEFORE", "NOW", "RESULT");
        for (size_t i = 0; i < plan->n; i++) {
                const PushTarget *js = &plan->t[i];
                char before[24], after[24];

                version_text(js->before, before);
                version_text(js->after, after);
                printf("%-36s %-8s %-8s %s\n", js->url, before, after,
                       js->ok ? (js->changed ? "updated" : "unchanged (already held)")
                              : js->reason);
        }
        if (n_ok != plan->n)
                return log_error_errno(-EAGAIN,
                                       "%zu of %zu join services hold policy version %" PRId64
                                       "; the others keep theirs (above). Run the same command "
                                       "again once they are reachable: join services that hold "
                                       "it already are left as they are.",
                                       n_ok, plan->n, config.policy_version);
        printf("All %zu join services hold policy version %" PRId64 ".\n", plan->n,
               config.policy_version);
        return 0;
}
