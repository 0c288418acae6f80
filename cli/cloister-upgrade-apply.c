/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister upgrade apply: moves a running cluster to a new image (docs/upgrade.md).
 *
 *   1. push a policy admitting the old and the new image (two named measurement sets);
 *   2. replace the nodes one at a time, workers first (a single control plane last, through the
 *      owner's recovery path: its join service is the one every rejoin needs);
 *   3. after each, wait until it is a member of this cluster again, attested with the new set;
 *   4. push the policy with only the new set.
 *
 * When the new image carries the next Kubernetes release (its signed measurements file says
 * which), the change must be asked for (--kubernetes-version), one minor version at a time, never
 * down; the control planes then go first (Kubernetes' version skew policy: no kubelet newer than
 * the API server), and each node's bootstrapper runs kubeadm upgrade on its boot of the new image
 * (bootstrapper-kubernetes.c).
 *
 * Every step is recorded in the workspace's cloister-upgrade.json before it is taken, so an
 * interrupted run (the CLI killed between two nodes) resumes where it stopped. The new
 * measurements are taken exactly as 'config fetch-measurements' takes them (that verb runs on
 * a copy of the configuration: signature, parse rule, rollback), and the policy pushes and the
 * recovery are 'policy push' and 'recover' themselves.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli-checkpoint.h"
#include "cli-terraform.h"
#include "cli-upgrade.h"
#include "cli.h"
#include "cloister/attest-atls.h"
#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/mastersecret.h"
#include "cloister/rpc.h"
#include "cloister/spawn.h"
#include "cloister/version.h"

#define UPGRADE_STATE_FILE    "cloister-upgrade.json"
#define UPGRADE_TARGET_FILE   "cloister-upgrade-target.json"
#define UPGRADE_POLICY_FILE   "cloister-upgrade-policy.json"
#define UPGRADE_STATE_VERSION 1
#define UPGRADE_NODES_MAX     64
#define UPGRADE_TIMEOUT_S     300
#define UPGRADE_POLL_S        2

typedef enum UpgradeStep {
        STEP_ADMIT_BOTH, /* push the policy of both sets */
        STEP_REPLACE,    /* nodes, one at a time */
        STEP_ADMIT_NEW,  /* push the policy of the new set */
        STEP_DONE,
        _STEP_MAX,
        _STEP_INVALID = -EINVAL,
} UpgradeStep;

static const char *const step_names[_STEP_MAX] = {
        [STEP_ADMIT_BOTH] = "admit-both",
        [STEP_REPLACE] = "replace",
        [STEP_ADMIT_NEW] = "admit-new",
        [STEP_DONE] = "done",
};

static UpgradeStep step_from_string(const char *s)
{
        for (int i = 0; s && i < _STEP_MAX; i++)
                if (strcmp(step_names[i], s) == 0)
                        return (UpgradeStep) i;
        return _STEP_INVALID;
}

/* How the nodes of a kind of cluster are replaced: one row per kind. A row replaces one node
 * (replace) or has a whole group roll its nodes (roll_group, given the new image's ID); a row
 * with not_built refuses, saying why. */
typedef struct NodeReplacer {
        const char *name;
        const char *what; /* for the plan */
        bool (*detect)(const char *provider, const char *cloud);
        int (*replace)(const char *endpoint, const char *image_version,
                       const char *kubernetes_version, const char *join_policy);
        int (*roll_group)(const char *terraform, const char *role, const char *image_id);
        const char *not_built;
} NodeReplacer;

static bool is_dir(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool mini_netns_detect(const char *provider, const char *cloud)
{
        return !*cloud && provider && strcmp(provider, "qemu") == 0 && is_dir("cloister-mini");
}

static bool gcp_detect(const char *provider, const char *cloud)
{
        (void) provider;
        return strcmp(cloud, "gcp") == 0;
}

static bool azure_detect(const char *provider, const char *cloud)
{
        (void) provider;
        return strcmp(cloud, "azure") == 0;
}

static bool aws_detect(const char *provider, const char *cloud)
{
        (void) provider;
        return strcmp(cloud, "aws") == 0;
}

/* 'cloister mini reboot HOST:PORT': the node's processes stop, its swtpm starts afresh, the boot
 * of the new (simulated) image is measured, the bootstrapper starts again on its state disk. */
static int mini_netns_replace(const char *endpoint, const char *image_version,
                              const char *kubernetes_version, const char *join_policy)
{
        const char *host = strncmp(endpoint, "https://", 8) == 0 ? endpoint + 8 : endpoint;
        char *argv[] = { (char *) "/proc/self/exe", (char *) "mini", (char *) "reboot",
                         (char *) host, (char *) "--image-version", (char *) image_version,
                         (char *) "--join-policy", (char *) join_policy,
                         /* The release the new image carries (none named: the node's own). */
                         kubernetes_version ? (char *) "--kubernetes-version" : NULL,
                         (char *) kubernetes_version, NULL };
        int r;

        (void) fflush(stdout);
        r = spawn_wait(argv, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot run 'cloister mini reboot': %m");
        if (r != 0)
                return log_error_errno(-EIO, "'cloister mini reboot %s' failed (exit %d).", host,
                                       r);
        return 0;
}

static const NodeReplacer replacers[] = {
        { "mini-netns", "namespace mini: 'cloister mini reboot' (simulated boot of the new image)",
          mini_netns_detect, mini_netns_replace, NULL, NULL },
        { "gcp",
          "GCP: the image in the Terraform workspace, each managed instance group recreating "
          "its nodes one at a time (name, state disk and address kept)",
          gcp_detect, NULL, cli_upgrade_cloud_roll, NULL },
        { "azure", "Azure", azure_detect, NULL, NULL,
          "the scale sets' upgrade mode is Manual: a new image in the model reimages no node, "
          "and a reimage through Azure's API is not built" },
        { "aws", "AWS", aws_detect, NULL, NULL,
          "an auto scaling group has no instance refresh here, and a refreshed instance would "
          "start with a new, empty state disk (the control plane's etcd with it)" },
};

static const NodeReplacer *replacer_find(const char *provider, const char *cloud)
{
        for (size_t i = 0; i < ELEMENTSOF(replacers); i++)
                if (replacers[i].detect(provider, cloud))
                        return &replacers[i];
        return NULL;
}

typedef struct UpgradeNode {
        char name[64], role[16], endpoint[CLI_URL_MAX];
        bool rebooted, upgraded;
} UpgradeNode;

typedef struct Upgrade {
        UpgradeStep step;
        char from[ATTEST_SET_NAME_MAX + 1], to[ATTEST_SET_NAME_MAX + 1];
        char source[1024];                           /* the --measurements given */
        char image_id[CLI_UPGRADE_IMAGE_ID_MAX + 1]; /* clouds: the --image-id given */
        /* A Kubernetes version change (both "" if none): the release the cluster runs and the
         * one the new image carries, the control planes first. */
        char k8s_from[VERSION_STRING_MAX], k8s_to[VERSION_STRING_MAX];
        int64_t both_version, new_version;
        json_t *both;   /* the attestation object admitting both sets */
        json_t *target; /* the configuration after the upgrade (the new set alone) */
        UpgradeNode nodes[UPGRADE_NODES_MAX];
        size_t n_nodes;
} Upgrade;

static void upgrade_done(Upgrade *u)
{
        json_decref(u->both);
        json_decref(u->target);
        *u = (Upgrade){};
}

static int upgrade_save(const Upgrade *u)
{
        _cleanup_(json_decrefp) json_t *root = NULL, *nodes = json_array();
        _cleanup_(freep) char *text = NULL;
        int r;

        if (!nodes)
                return log_oom();
        for (size_t i = 0; i < u->n_nodes; i++)
                if (json_array_append_new(
                            nodes, json_pack("{s:s,s:s,s:s,s:b,s:b}", "name", u->nodes[i].name,
                                             "role", u->nodes[i].role, "endpoint",
                                             u->nodes[i].endpoint, "rebooted", u->nodes[i].rebooted,
                                             "upgraded", u->nodes[i].upgraded)) < 0)
                        return log_oom();
        root = json_pack("{s:i,s:s,s:s,s:s,s:s,s:I,s:I,s:O,s:O,s:O}", "version",
                         UPGRADE_STATE_VERSION, "step", step_names[u->step], "from", u->from, "to",
                         u->to, "measurements", u->source, "bothPolicyVersion",
                         (json_int_t) u->both_version, "newPolicyVersion",
                         (json_int_t) u->new_version, "bothPolicy", u->both, "target", u->target,
                         "nodes", nodes);
        if (root && u->image_id[0] &&
            json_object_set_new(root, "imageId", json_string(u->image_id)) < 0)
                return log_oom();
        if (root && u->k8s_to[0] &&
            (json_object_set_new(root, "kubernetesFrom", json_string(u->k8s_from)) < 0 ||
             json_object_set_new(root, "kubernetesTo", json_string(u->k8s_to)) < 0))
                return log_oom();
        if (!root || json_dump_pretty(root, &text) < 0)
                return log_oom();
        r = write_file_atomic(UPGRADE_STATE_FILE, text, strlen(text), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return log_error_errno(r, "Cannot write " UPGRADE_STATE_FILE ": %m");
        return 0;
}

/* The state of an upgrade under way; 0 if there is none (no file), 1 if loaded. The file is
 * ours, in the owner's workspace: checked for shape, not distrusted. */
static int upgrade_load(Upgrade *u)
{
        static const char *const keys[] = { "version",
                                            "step",
                                            "from",
                                            "to",
                                            "measurements",
                                            "bothPolicyVersion",
                                            "newPolicyVersion",
                                            "bothPolicy",
                                            "target",
                                            "nodes",
                                            "imageId",
                                            "kubernetesFrom",
                                            "kubernetesTo",
                                            NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonCtx ctx;
        const char *step, *from, *to, *src, *image_id = NULL, *k8s_from = NULL, *k8s_to = NULL;
        int64_t v;
        json_t *nodes, *n;
        size_t i;
        Diag d;
        int r;

        if (access(UPGRADE_STATE_FILE, F_OK) < 0)
                return 0;
        diag_clear(&d);
        ctx = (JsonCtx){ .source = UPGRADE_STATE_FILE, .path = "", .diag = &d };
        r = json_parse_file(UPGRADE_STATE_FILE, JSON_FILE_SIZE_MAX, &j, &d);
        if (r >= 0)
                r = json_check_keys(&ctx, j, keys);
        if (r >= 0)
                r = json_get_int(&ctx, j, "version", true, UPGRADE_STATE_VERSION,
                                 UPGRADE_STATE_VERSION, &v);
        if (r >= 0)
                r = json_get_string(&ctx, j, "step", true, &step);
        if (r >= 0)
                r = json_get_string(&ctx, j, "from", true, &from);
        if (r >= 0)
                r = json_get_string(&ctx, j, "to", true, &to);
        if (r >= 0)
                r = json_get_string(&ctx, j, "measurements", true, &src);
        if (r >= 0)
                r = json_get_int(&ctx, j, "bothPolicyVersion", true, 1, INT64_MAX,
                                 &u->both_version);
        if (r >= 0)
                r = json_get_int(&ctx, j, "newPolicyVersion", true, 1, INT64_MAX, &u->new_version);
        if (r >= 0)
                r = json_get_array(&ctx, j, "nodes", true, &nodes);
        if (r >= 0) {
                /* Clouds only: absent for a local cluster. */
                r = json_get_string(&ctx, j, "imageId", false, &image_id);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0 && json_object_get(j, "kubernetesTo")) {
                /* A Kubernetes version change only. */
                r = json_get_string(&ctx, j, "kubernetesFrom", true, &k8s_from);
                if (r >= 0)
                        r = json_get_string(&ctx, j, "kubernetesTo", true, &k8s_to);
        }
        if (r < 0)
                return log_error_errno(r,
                                       "%s (remove " UPGRADE_STATE_FILE " only if no upgrade "
                                       "is under way).",
                                       d.message);
        if (image_id && !cli_upgrade_image_id_ok(image_id))
                return log_error_errno(-EBADMSG, UPGRADE_STATE_FILE ": imageId is not an image "
                                                                    "ID.");
        if (k8s_to) {
                char why[512];
                if (kubernetes_version_step(k8s_from, k8s_to, why, sizeof(why)) != 1)
                        return log_error_errno(-EBADMSG,
                                               UPGRADE_STATE_FILE ": kubernetesFrom -> "
                                                                  "kubernetesTo is not one "
                                                                  "step: %s.",
                                               why);
                (void) snprintf(u->k8s_from, sizeof(u->k8s_from), "%s", k8s_from);
                (void) snprintf(u->k8s_to, sizeof(u->k8s_to), "%s", k8s_to);
        }
        u->step = step_from_string(step);
        u->both = json_incref(json_object_get(j, "bothPolicy"));
        u->target = json_incref(json_object_get(j, "target"));
        if (u->step < 0 || !json_is_object(u->both) || !json_is_object(u->target) ||
            json_array_size(nodes) > UPGRADE_NODES_MAX)
                return log_error_errno(-EBADMSG, UPGRADE_STATE_FILE ": malformed step, policies "
                                                                    "or nodes.");
        (void) snprintf(u->from, sizeof(u->from), "%s", from);
        (void) snprintf(u->to, sizeof(u->to), "%s", to);
        (void) snprintf(u->source, sizeof(u->source), "%s", src);
        (void) snprintf(u->image_id, sizeof(u->image_id), "%s", image_id ?: "");
        json_array_foreach (nodes, i, n) {
                UpgradeNode *x = &u->nodes[u->n_nodes++];
                const char *name = json_string_value(json_object_get(n, "name")),
                           *role = json_string_value(json_object_get(n, "role")),
                           *ep = json_string_value(json_object_get(n, "endpoint"));
                if (!name || !role || !ep)
                        return log_error_errno(-EBADMSG,
                                               UPGRADE_STATE_FILE ": node %zu is "
                                                                  "malformed.",
                                               i);
                (void) snprintf(x->name, sizeof(x->name), "%s", name);
                (void) snprintf(x->role, sizeof(x->role), "%s", role);
                (void) snprintf(x->endpoint, sizeof(x->endpoint), "%s", ep);
                x->rebooted = json_is_true(json_object_get(n, "rebooted"));
                x->upgraded = json_is_true(json_object_get(n, "upgraded"));
        }
        return 1;
}

/* The configuration with attestation = att and policyVersion = version (and, for the last
 * step, measurementsSource = the new file's), written atomically. */
static int config_write(const char *path, const json_t *att, int64_t version, const json_t *source,
                        const char *kubernetes_version)
{
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_(freep) char *text = NULL;
        Diag d;
        int r;

        diag_clear(&d);
        r = json_parse_file(path, JSON_FILE_SIZE_MAX, &root, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (json_object_set_new(root, "attestation", json_deep_copy(att)) < 0 ||
            json_object_set_new(root, "policyVersion", json_integer(version)) < 0 ||
            (source &&
             json_object_set_new(root, "measurementsSource", json_deep_copy(source)) < 0) ||
            (kubernetes_version &&
             json_object_set_new(root, "kubernetesVersion", json_string(kubernetes_version)) < 0))
                return log_oom();
        if (json_dump_pretty(root, &text) < 0)
                return log_oom();
        r = write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        return 0;
}

static int json_write(const char *path, const json_t *j)
{
        _cleanup_(freep) char *text = NULL;
        int r;

        if (json_dump_pretty(j, &text) < 0)
                return log_oom();
        r = write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        return 0;
}

/* The policy admitting both images: the PCRs the new image changes move into two named sets,
 * the old values and the new; every other PCR stays common. */
json_t *cli_upgrade_both_policy(const json_t *old_att, const json_t *new_att, const char *from,
                                const char *to, unsigned *ret_changed)
{
        _cleanup_(json_decrefp) json_t *both = json_deep_copy(old_att);
        const json_t *om = json_object_get(old_att, "measurements"),
                     *nm = json_object_get(new_att, "measurements");
        json_t *common = json_object(), *os = json_object(), *ns = json_object(), *v;
        const char *k;
        unsigned changed = 0;

        if (!both || !common || !os || !ns) {
                json_decref(common);
                json_decref(os);
                json_decref(ns);
                return NULL;
        }
        /* Changed: in one and not the other, or with another value. */
        json_object_foreach ((json_t *) om, k, v) {
                const json_t *w = json_object_get(nm, k);
                if (w && json_equal(v, w))
                        (void) json_object_set(common, k, v);
                else {
                        (void) json_object_set(os, k, v);
                        changed++;
                }
        }
        json_object_foreach ((json_t *) nm, k, v)
                if (!json_object_get(om, k) || !json_equal(v, json_object_get(om, k))) {
                        (void) json_object_set(ns, k, v);
                        changed += !json_object_get(om, k);
                }
        *ret_changed = changed;
        (void) json_object_set_new(both, "measurements", common);
        (void) json_object_set_new(both, "measurementSets",
                                   json_pack("[{s:s,s:o},{s:s,s:o}]", "name", from, "measurements",
                                             os, "name", to, "measurements", ns));
        return TAKE_PTR(both);
}

/* A set name from an image version: the characters a policy allows, others as '_'. */
void cli_upgrade_set_name(const char *version, const char *fallback,
                          char buf[static ATTEST_SET_NAME_MAX + 1])
{
        size_t n = 0;

        if (!version || !*version)
                version = fallback;
        for (; *version && n < ATTEST_SET_NAME_MAX; version++)
                buf[n++] =
                        strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+",
                               *version)
                                ? *version
                                : '_';
        buf[n] = 0;
}

/* The node at url, attested now with pol (PCR 15 bound to the cluster): a member of this
 * cluster under this name, and the measurement set it matched. 0 if so, else -errno with why. */
static int attest_member(const char *url, const char *name, const AttestPolicy *pol,
                         const char *cid_hex, const RpcClientConfig *rc, char *ret_set,
                         char ret_k8s[static VERSION_STRING_MAX], char *why, size_t why_size)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *resp = NULL;
        _cleanup_(attest_report_done) AttestReport rep = {};
        PolicyVerifier pv = { .policy = pol, .report = &rep };
        AtlsVerifier verifier = policy_verifier(&pv);
        const char *who, *cid;
        long status = 0;
        Diag d;
        int r;

        diag_clear(&d);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls);
        if (r >= 0)
                r = rpc_call(atls, rc, "GET", url, "/v1/node", NULL, true, &status, &resp, &d);
        if (r < 0) {
                diag_format(&d, why, why_size);
                return r;
        }
        who = json_string_value(json_object_get(resp, "node"));
        cid = json_string_value(json_object_get(resp, "clusterId"));
        /* Attested: now it must say it is this member of this cluster (an address the host
         * re-routed to another member does not pass for it). */
        if (status != 200) {
                (void) snprintf(why, why_size, "%s answered HTTP %ld", url, status);
                return -EPROTO;
        }
        if (!cid) {
                (void) snprintf(why, why_size,
                                "%s is up but not a member yet (it has not rejoined; 'cloister "
                                "logs --node %s' says why)",
                                url, url);
                return -EAGAIN;
        }
        if (strcmp(cid, cid_hex) != 0 || !who || strcmp(who, name) != 0) {
                (void) snprintf(why, why_size, "%s says it is %s of cluster %.16s..., not %s", url,
                                who ?: "nobody", cid, name);
                return -EPERM;
        }
        (void) snprintf(ret_set, ATTEST_SET_NAME_MAX + 1, "%s", rep.matched_set);
        /* The release its state disk runs, as the attested node records it ("" if none). */
        (void) snprintf(ret_k8s, VERSION_STRING_MAX, "%s",
                        json_string_value(json_object_get(resp, "kubernetesVersion")) ?: "");
        return 0;
}

/* The members the first join service lists (attested with the current member policy). */
static int members_load(const char *url, const AttestPolicy *pol, const RpcClientConfig *rc,
                        bool control_planes_first, Upgrade *u)
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(json_decrefp) json_t *resp = NULL;
        PolicyVerifier pv = { .policy = pol };
        AtlsVerifier verifier = policy_verifier(&pv);
        long status = 0;
        json_t *m;
        size_t i;
        Diag d;
        int r;

        diag_clear(&d);
        r = atls_context_new(ATLS_ROLE_CLIENT, NULL, &verifier, &atls);
        if (r >= 0)
                r = rpc_call(atls, rc, "GET", url, "/v1/members", NULL, true, &status, &resp, &d);
        if (r < 0 || status != 200) {
                char msg[512];
                diag_format(&d, msg, sizeof(msg));
                return log_error_errno(r < 0 ? r : -EPROTO,
                                       "Cannot list the members at %s: %s. Nothing was changed.",
                                       url, r < 0 ? msg : "HTTP error");
        }
        /* Workers first, control planes last; for a Kubernetes version change the reverse: no
         * kubelet may be newer than the API server. */
        for (int pass = 0; pass < 2; pass++)
                json_array_foreach (json_object_get(resp, "members"), i, m) {
                        const char *name = json_string_value(json_object_get(m, "name")),
                                   *role = json_string_value(json_object_get(m, "role")),
                                   *ep = json_string_value(json_object_get(m, "endpoint"));
                        bool cp = role && strcmp(role, "control-plane") == 0;
                        UpgradeNode *x;

                        if (!name || !role || !ep || strlen(name) >= 64 || strlen(ep) > 260 ||
                            cp != (pass == (control_planes_first ? 0 : 1)))
                                continue;
                        if (u->n_nodes == UPGRADE_NODES_MAX)
                                return log_error_errno(-E2BIG,
                                                       "More than %d members: not supported yet.",
                                                       UPGRADE_NODES_MAX);
                        x = &u->nodes[u->n_nodes++];
                        (void) snprintf(x->name, sizeof(x->name), "%s", name);
                        (void) snprintf(x->role, sizeof(x->role), "%s", role);
                        (void) snprintf(x->endpoint, sizeof(x->endpoint), "https://%s", ep);
                }
        return 0;
}

int cli_upgrade_print_node_images(const json_t *both_att, const uint8_t cid[static 32],
                                  const char *endpoint)
{
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(freep) char *text = NULL;
        _cleanup_(upgrade_done) Upgrade u = {};
        RpcClientConfig rc;
        char cid_hex[65];
        Diag d;
        int r;

        rpc_client_config_defaults(&rc);
        if (json_dump_compact(both_att, &text) < 0)
                return log_oom();
        diag_clear(&d);
        r = attest_policy_parse(text, strlen(text), "the policy of both images", &pol, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        cli_policy_bind_cluster(pol, cid);
        hex_encode_buf(cid, 32, cid_hex, sizeof(cid_hex));
        r = members_load(endpoint, pol, &rc, false, &u);
        if (r < 0)
                return r;
        printf("nodes (attested now; the image each one's PCRs match):\n");
        for (size_t i = 0; i < u.n_nodes; i++) {
                char why[512] = "", set[ATTEST_SET_NAME_MAX + 1] = "", k8s[VERSION_STRING_MAX];
                const UpgradeNode *x = &u.nodes[i];

                r = attest_member(x->endpoint, x->name, pol, cid_hex, &rc, set, k8s, why,
                                  sizeof(why));
                printf("  %-24s %-14s %s%s%s\n", x->name, x->role, r >= 0 ? "runs '" : "",
                       r >= 0 ? set : "did not attest: ", r >= 0 ? "'" : why);
        }
        return 0;
}

static size_t count_role(const Upgrade *u, const char *role)
{
        size_t n = 0;

        for (size_t i = 0; i < u->n_nodes; i++)
                n += strcmp(u->nodes[i].role, role) == 0;
        return n;
}

static void print_plan(const Upgrade *u, const NodeReplacer *rep, const char *config_path)
{
        bool single = count_role(u, "control-plane") == 1;
        size_t k = 0;

        printf("upgrade plan: image '%s' -> '%s' (%zu node(s); nodes replaced by %s)\n", u->from,
               u->to, u->n_nodes, rep->what);
        if (u->k8s_to[0])
                printf("  Kubernetes %s -> %s (the new image carries it): the control plane "
                       "first, whose bootstrapper runs 'kubeadm upgrade apply %s' before it "
                       "serves joins; then each other node, whose bootstrapper runs 'kubeadm "
                       "upgrade node' after its rejoin\n",
                       u->k8s_from, u->k8s_to, u->k8s_to);
        printf("  1. push policy version %" PRId64 " admitting both '%s' and '%s' (%s)\n",
               u->both_version, u->from, u->to, config_path);
        for (size_t i = 0; i < u->n_nodes; i++) {
                const UpgradeNode *x = &u->nodes[i];
                bool cp = strcmp(x->role, "control-plane") == 0;
                if (rep->roll_group && (i == 0 || strcmp(u->nodes[i - 1].role, x->role) != 0))
                        printf("  2.%zu terraform in %s/: %s = %s in %s, then init, plan and "
                               "apply: the %s group recreates its nodes one at a time%s\n",
                               ++k, TF_WORKSPACE, cp ? "image_id" : "worker_image_id", u->image_id,
                               TF_VARS_FILE, x->role, x->rebooted ? " (done)" : "");
                printf("  2.%zu %s %s (%s, %s)%s%s\n", ++k,
                       rep->roll_group ? "recreated by its group:" : "replace", x->name, x->role,
                       x->endpoint,
                       cp && single ? ": the single control plane, through the owner's "
                                      "recovery path ('cloister recover': attested, then handed "
                                      "the master secret); nothing can join or rejoin while it "
                                      "reboots"
                                    : "",
                       x->upgraded ? " (done)" : "");
                printf("      then wait until it is a member again, attested with '%s'%s%s\n",
                       u->to, u->k8s_to[0] ? ", running Kubernetes " : "", u->k8s_to);
        }
        printf("  3. push policy version %" PRId64 " admitting only '%s': a node still on '%s' is "
               "refused from then on\n",
               u->new_version, u->to, u->from);
}

static void print_stop(const Upgrade *u, const char *what)
{
        size_t n_done = 0;

        fprintf(stderr, "upgrade stopped at step %s: %s\n", step_names[u->step], what);
        fprintf(stderr, "  upgraded to '%s':", u->to);
        for (size_t i = 0; i < u->n_nodes; i++)
                if (u->nodes[i].upgraded) {
                        fprintf(stderr, " %s", u->nodes[i].name);
                        n_done++;
                }
        fprintf(stderr, "%s\n  not upgraded (still '%s' or not verified):", n_done ? "" : " none",
                u->from);
        for (size_t i = 0; i < u->n_nodes; i++)
                if (!u->nodes[i].upgraded)
                        fprintf(stderr, " %s%s", u->nodes[i].name,
                                u->nodes[i].rebooted ? " (rebooted, not verified)" : "");
        fprintf(stderr,
                "\n  the cluster admits both images (policy version %" PRId64 ") until the "
                "upgrade completes. Find the cause ('cloister verify --node ENDPOINT', "
                "'cloister logs --node ENDPOINT'), then run 'cloister upgrade apply' "
                "again: it resumes from " UPGRADE_STATE_FILE ".\n",
                u->both_version);
}

/* In-process verbs, with an argument vector as a user would type it. */
static int run_verb(int (*fn)(int, char **, void *), void *userdata, char **argv)
{
        int argc = 0;

        while (argv[argc])
                argc++;
        (void) fflush(stdout);
        return fn(argc, argv, userdata);
}

typedef struct ApplyArgs {
        const char *config, *ms, *state, *terraform;
        void *userdata;
        unsigned timeout_s;
        RpcClientConfig rc;
} ApplyArgs;

static int push(const ApplyArgs *a)
{
        char *argv[] = { (char *) "push",    (char *) "--config",
                         (char *) a->config, (char *) "--master-secret",
                         (char *) a->ms,     (char *) "--state-file",
                         (char *) a->state,  NULL };
        return run_verb(policy_push_verb, a->userdata, argv);
}

/* The single control plane after its reboot: serving recovery once it is up; handed the master
 * secret as 'cloister recover' does (attested first). Done once it is a member again (an
 * earlier run may have recovered it already). */
static int recover_until(const ApplyArgs *a, const UpgradeNode *x, const AttestPolicy *target,
                         const char *cid_hex, time_t deadline)
{
        const char *host = x->endpoint + strlen("https://");
        char *argv[] = { (char *) "recover", (char *) "--node",
                         (char *) host,      (char *) "--config",
                         (char *) a->config, (char *) "--master-secret",
                         (char *) a->ms,     (char *) "--state-file",
                         (char *) a->state,  NULL };
        char why[512], set[ATTEST_SET_NAME_MAX + 1], k8s[VERSION_STRING_MAX];
        int r;

        for (;;) {
                if (attest_member(x->endpoint, x->name, target, cid_hex, &a->rc, set, k8s, why,
                                  sizeof(why)) >= 0)
                        return 0;
                r = run_verb(verb_recover, a->userdata, argv);
                if (r >= 0)
                        return 0;
                if (time(NULL) >= deadline)
                        return r;
                log_info("%s: not recovered yet; trying again in %d s.", x->name, UPGRADE_POLL_S);
                (void) sleep(UPGRADE_POLL_S);
        }
}

static int wait_member(const ApplyArgs *a, const Upgrade *u, const UpgradeNode *x,
                       const AttestPolicy *target, const char *cid_hex, time_t deadline,
                       char ret_set[static ATTEST_SET_NAME_MAX + 1])
{
        char why[512] = "", set[ATTEST_SET_NAME_MAX + 1] = "", k8s[VERSION_STRING_MAX] = "";
        int r;

        for (;;) {
                r = attest_member(x->endpoint, x->name, target, cid_hex, &a->rc, set, k8s, why,
                                  sizeof(why));
                /* A version change: a member again only once its state disk runs the new
                 * release (its bootstrapper records it after kubeadm upgrade, before PCR 15). */
                if (r >= 0 && u->k8s_to[0] && strcmp(k8s, u->k8s_to) != 0) {
                        (void) snprintf(why, sizeof(why),
                                        "%s is a member but records Kubernetes %s, not %s", x->name,
                                        k8s[0] ? k8s : "(none)", u->k8s_to);
                        r = -EAGAIN;
                }
                if (r >= 0) {
                        (void) snprintf(ret_set, ATTEST_SET_NAME_MAX + 1, "%s",
                                        set[0] ? set : u->to);
                        return 0;
                }
                if (time(NULL) >= deadline) {
                        log_error("%s: not a member attested with '%s' after %u s: %s", x->name,
                                  u->to, a->timeout_s, why);
                        return -ETIMEDOUT;
                }
                log_debug("%s: not yet: %s", x->name, why);
                (void) sleep(UPGRADE_POLL_S);
        }
}

/* The target policy (new set alone) as a member shows it: PCR 15 the cluster's. */
static int target_policy(const Upgrade *u, const uint8_t cid[static 32], AttestPolicy **ret)
{
        _cleanup_(freep) char *text = NULL;
        Diag d;
        int r;

        if (json_dump_compact(json_object_get(u->target, "attestation"), &text) < 0)
                return log_oom();
        diag_clear(&d);
        r = attest_policy_parse(text, strlen(text), UPGRADE_STATE_FILE ": target", ret, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        cli_policy_bind_cluster(*ret, cid);
        return 0;
}

/* A cloud's group of role rolled to the new image by terraform; its nodes marked rebooted. */
static int roll_group(const ApplyArgs *a, Upgrade *u, const NodeReplacer *rep, const char *role)
{
        int r;

        printf("the %s group: image %s (terraform in %s/)\n", role, u->image_id, TF_WORKSPACE);
        r = rep->roll_group(a->terraform, role, u->image_id);
        if (r < 0) {
                char what[256];
                (void) snprintf(what, sizeof(what),
                                "terraform did not roll the %s group (above; its whole output: "
                                "%s/%s). Nothing was rolled that terraform did not report",
                                role, TF_WORKSPACE, TF_OUTPUT_LOG);
                print_stop(u, what);
                return r;
        }
        for (size_t j = 0; j < u->n_nodes; j++)
                if (strcmp(u->nodes[j].role, role) == 0)
                        u->nodes[j].rebooted = true;
        return upgrade_save(u);
}

static int replace_nodes(const ApplyArgs *a, Upgrade *u, const NodeReplacer *rep,
                         const uint8_t cid[static 32])
{
        _cleanup_(attest_policy_freep) AttestPolicy *target = NULL;
        _cleanup_(freep) char *policy_abs = realpath(UPGRADE_POLICY_FILE, NULL);
        char cid_hex[65], set[ATTEST_SET_NAME_MAX + 1];
        bool single = count_role(u, "control-plane") == 1;
        int r;

        if (!policy_abs)
                return log_error_errno(-errno, "%s: %m", UPGRADE_POLICY_FILE);
        r = target_policy(u, cid, &target);
        if (r < 0)
                return r;
        hex_encode_buf(cid, 32, cid_hex, sizeof(cid_hex));
        for (size_t i = 0; i < u->n_nodes; i++) {
                UpgradeNode *x = &u->nodes[i];
                bool cp = strcmp(x->role, "control-plane") == 0;
                time_t deadline = time(NULL) + a->timeout_s;

                if (x->upgraded)
                        continue;
                if (!x->rebooted && rep->roll_group) {
                        r = roll_group(a, u, rep, x->role);
                        if (r < 0)
                                return r;
                } else if (!x->rebooted) {
                        printf("%s: replacing (%s) with image '%s'%s\n", x->name, x->role, u->to,
                               cp && single ? ", then recovering it (the single control plane)"
                                            : "");
                        r = rep->replace(x->endpoint, u->to, u->k8s_to[0] ? u->k8s_to : NULL,
                                         policy_abs);
                        if (r < 0) {
                                print_stop(u, "a node could not be replaced");
                                return r;
                        }
                        x->rebooted = true;
                        r = upgrade_save(u);
                        if (r < 0)
                                return r;
                }
                if (cp && single) {
                        r = recover_until(a, x, target, cid_hex, deadline);
                        if (r < 0) {
                                print_stop(u, "the control plane was not recovered");
                                return r;
                        }
                }
                r = wait_member(a, u, x, target, cid_hex, deadline, set);
                if (r < 0) {
                        print_stop(u, "a node did not come back with the new image in time");
                        return r;
                }
                x->upgraded = true;
                r = upgrade_save(u);
                if (r < 0)
                        return r;
                /* Said once recorded: a run killed after this line resumes with the next node. */
                printf("%s: a member again, attested with measurement set '%s'\n", x->name, set);
        }
        return 0;
}

static void help(void)
{
        printf("Usage: cloister upgrade apply --measurements FILE|URL (--pubkey PUB.pem\n"
               "         [--signature-url URL] | --insecure-no-signature) [--config FILE]\n"
               "         [--master-secret FILE] [--state-file FILE] [--node-timeout SEC]\n"
               "         [--image-id ID [--terraform PATH]] [--kubernetes-version V] [--dry-run]\n"
               "       cloister upgrade apply        (resumes an interrupted upgrade)\n\n"
               "Moves the running cluster to a new image, node by node:\n"
               "  1. pushes a policy admitting the current and the new image, each a named\n"
               "     measurement set (named by its image version);\n"
               "  2. replaces the nodes one at a time, workers first; a single control plane\n"
               "     goes last, through the owner's recovery path ('cloister recover');\n"
               "  3. after each, waits until it is a member again, attested with the new set\n"
               "     (--node-timeout, default %d s), and stops otherwise, saying what is\n"
               "     upgraded, what is not, and how to resume;\n"
               "  4. pushes the policy admitting only the new image: a node still on the old\n"
               "     one is refused from then on.\n"
               "The new measurements file is taken exactly as 'cloister config\n"
               "fetch-measurements' takes it (signature over the exact bytes, default URL.sig;\n"
               "PCRs 4, 9, 11; measurementsVersion newer than the configuration's). It refuses\n"
               "to start while any node fails 'cloister verify --cluster'. Each step is\n"
               "recorded in the workspace's " UPGRADE_STATE_FILE " first: after an\n"
               "interruption, 'cloister upgrade apply' again resumes where it stopped.\n"
               "--dry-run prints the plan and changes nothing. Nodes are replaced by the\n"
               "cluster's kind: the namespace mini ('cloister mini reboot'); on GCP (a\n"
               "cluster made by 'cloister create'), --image-id names the new image: it goes\n"
               "into the Terraform workspace (" TF_WORKSPACE "/" TF_VARS_FILE "), the\n"
               "workers' group first (worker_image_id), then the control plane's (image_id),\n"
               "each applied by terraform and rolled by the managed instance group one node\n"
               "at a time. Azure, AWS and the VM mini are not supported yet (docs/upgrade.md).\n"
               "A new image that carries another Kubernetes release (its measurements file's\n"
               "kubernetesVersion) changes the cluster's only with --kubernetes-version V, V\n"
               "being that release and one step from the cluster's (the next minor version or\n"
               "a newer patch; never down, never a skipped minor version: refused before\n"
               "anything changes). The control plane then goes first ('kubeadm upgrade apply'\n"
               "by its bootstrapper, before it serves joins), then the workers ('kubeadm\n"
               "upgrade node' after their rejoin). Namespace mini only (docs/upgrade.md).\n"
               "While it runs, the workspace's " CLI_LOCK_FILE " refuses a second\n"
               "'upgrade apply' and 'policy push', naming the holder.\n\n"
               "  --measurements FILE|URL   the new image's signed measurements file\n"
               "  --pubkey PUB.pem          the key the image build signs with\n"
               "  --signature-url URL       the signature (default the file's URL + .sig)\n"
               "  --insecure-no-signature   take an unsigned file (development only)\n"
               "  --config FILE             default the workspace's " CLI_CONFIG_FILE_DEFAULT "\n"
               "  --master-secret FILE      default " MASTER_SECRET_FILE_DEFAULT "\n"
               "  --state-file FILE         default " CLI_STATE_FILE_DEFAULT "\n"
               "  --node-timeout SEC        per node (default %d)\n"
               "  --image-id ID             clouds: the new image (projects/P/global/images/I)\n"
               "  --terraform PATH          clouds: terraform or tofu (default: on PATH)\n"
               "  --kubernetes-version V    change Kubernetes to V, the release the new image\n"
               "                            carries (v1.MINOR.PATCH)\n"
               "  --dry-run                 print the plan only\n",
               UPGRADE_TIMEOUT_S, UPGRADE_TIMEOUT_S);
}

/* file:// URL of a path ('config fetch-measurements' takes URLs). */
static int source_url(const char *source, char **ret)
{
        _cleanup_(freep) char *abs = NULL;

        if (strstr(source, "://"))
                return (*ret = strdup(source)) ? 0 : log_oom();
        abs = realpath(source, NULL);
        if (!abs)
                return log_error_errno(-errno, "--measurements %s: %m", source);
        for (const char *p = abs; *p; p++)
                if (*p == '%' || *p == '?' || *p == '#' || (unsigned char) *p <= ' ')
                        return log_error_errno(-EINVAL,
                                               "--measurements %s: give a file:// URL for a "
                                               "path with spaces, %%, ? or #.",
                                               source);
        return asprintf(ret, "file://%s", abs) < 0 ? log_oom() : 0;
}

/* Whether the roll changes the Kubernetes release, into u->k8s_from and u->k8s_to (both "" if
 * not): current, the release the cluster runs (the configuration's kubernetesVersion, what
 * 'cloister apply' initialised it with); carried, the one the new image's signed measurements
 * file names (NULL: none); asked, --kubernetes-version (NULL: not given). A change must be asked
 * for, be what the image carries, and be one step kubeadm takes (docs/upgrade.md, "Kubernetes
 * versions"); every refusal comes before anything changes. */
static int kubernetes_change(const char *current, const char *carried, const char *asked,
                             Upgrade *u)
{
        char why[512];
        int step;

        u->k8s_from[0] = u->k8s_to[0] = '\0';
        if (asked && !carried)
                return log_error_errno(-EPERM,
                                       "upgrade apply: refused: --kubernetes-version %s, but the "
                                       "new image's measurements file names no Kubernetes "
                                       "release (kubernetesVersion), so nothing says the image "
                                       "carries %s. Give the measurements of an image built with "
                                       "%s (image/kubernetes.json; its build records the "
                                       "release). Nothing was changed.",
                                       asked, asked, asked);
        if (asked && carried && strcmp(asked, carried) != 0)
                return log_error_errno(-EPERM,
                                       "upgrade apply: refused: --kubernetes-version %s, but the "
                                       "new image carries Kubernetes %s (its signed measurements "
                                       "file says so). Give --kubernetes-version %s, or the "
                                       "measurements of an image that carries %s. Nothing was "
                                       "changed.",
                                       asked, carried, carried, asked);
        if (!carried || strcmp(carried, current) == 0)
                return 0; /* the image names no release, or the cluster's: an image roll only */
        if (!asked)
                return log_error_errno(-EPERM,
                                       "upgrade apply: refused: the new image carries Kubernetes "
                                       "%s and the cluster runs %s. A change of Kubernetes "
                                       "version is asked for explicitly: add "
                                       "--kubernetes-version %s (the control plane goes first, "
                                       "then the workers; docs/upgrade.md). Nothing was changed.",
                                       carried, current, carried);
        step = kubernetes_version_step(current, carried, why, sizeof(why));
        if (step < 0)
                return log_error_errno(step == -EINVAL ? -EINVAL : -EPERM,
                                       "upgrade apply: refused: Kubernetes %s -> %s: %s. Nothing "
                                       "was changed.",
                                       current, carried, why);
        (void) snprintf(u->k8s_from, sizeof(u->k8s_from), "%s", current);
        (void) snprintf(u->k8s_to, sizeof(u->k8s_to), "%s", carried);
        return 0;
}

/* Step 0: the new measurements into a copy of the configuration, through 'config
 * fetch-measurements'; the plan. Nothing of the cluster changes. */
static int upgrade_prepare(const ApplyArgs *a, const char *measurements, const char *pubkey,
                           const char *sig_url, bool insecure, const char *k8s_asked,
                           const char *target_path, const CliConfig *config, Upgrade *u)
{
        _cleanup_(freep) char *url = NULL, *text = NULL;
        _cleanup_(cli_config_done) CliConfig target = {};
        _cleanup_(json_decrefp) json_t *copy = NULL;
        const json_t *src;
        unsigned changed = 0;
        char *argv[16];
        size_t n = 0;
        Diag d;
        int r;

        /* One image in force: the roll's two sets are made from it. */
        if (json_object_get(json_object_get(config->json, "attestation"), "measurementSets"))
                return log_error_errno(-EBUSY,
                                       "%s: the policy admits several measurement sets already "
                                       "(an earlier upgrade not finished here?): push a policy of "
                                       "one image first ('cloister policy push'), then upgrade. "
                                       "Nothing was changed.",
                                       a->config);
        r = source_url(measurements, &url);
        if (r < 0)
                return r;
        copy = json_deep_copy(config->json);
        if (!copy || json_dump_pretty(copy, &text) < 0)
                return log_oom();
        r = write_file_atomic(target_path, text, strlen(text), 0600, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", target_path);
        argv[n++] = (char *) "fetch-measurements";
        argv[n++] = (char *) "--url";
        argv[n++] = url;
        argv[n++] = (char *) "--config";
        argv[n++] = (char *) target_path;
        if (insecure)
                argv[n++] = (char *) "--insecure-no-signature";
        if (pubkey) {
                argv[n++] = (char *) "--pubkey";
                argv[n++] = (char *) pubkey;
        }
        if (sig_url) {
                argv[n++] = (char *) "--signature-url";
                argv[n++] = (char *) sig_url;
        }
        argv[n] = NULL;
        printf("the new image's measurements (checked as 'cloister config fetch-measurements' "
               "checks them):\n");
        r = run_verb(verb_config_fetch_measurements, a->userdata, argv);
        if (r < 0)
                return log_error_errno(r, "The new measurements were not taken (above): nothing "
                                          "was changed.");
        r = cli_config_load(target_path, &target);
        if (r < 0)
                return r;
        r = kubernetes_change(config->kubernetes_version ?: CLI_KUBERNETES_VERSION,
                              target.measurements_source.kubernetes_version, k8s_asked, u);
        if (r < 0)
                return r;
        u->target = json_incref(target.json);
        src = json_object_get(target.json, "measurementsSource");
        cli_upgrade_set_name(config->measurements_source.present
                                     ? config->measurements_source.image_version
                                     : NULL,
                             "current", u->from);
        cli_upgrade_set_name(json_string_value(json_object_get(src, "imageVersion")), "new", u->to);
        if (strcmp(u->from, u->to) == 0)
                (void) snprintf(u->from, sizeof(u->from), "%.55s-previous", u->to);
        u->both = cli_upgrade_both_policy(json_object_get(config->json, "attestation"),
                                          json_object_get(target.json, "attestation"), u->from,
                                          u->to, &changed);
        if (!u->both)
                return log_oom();
        if (changed == 0)
                return log_error_errno(-EALREADY,
                                       "The new image's PCRs are the ones the policy enforces "
                                       "already: nothing to roll. 'cloister config "
                                       "fetch-measurements' records the new file.");
        /* As a join service will judge them. */
        {
                _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
                _cleanup_(freep) char *both = NULL;
                if (json_dump_compact(u->both, &both) < 0)
                        return log_oom();
                diag_clear(&d);
                r = attest_policy_parse(both, strlen(both), "the policy of both images", &p, &d);
                if (r >= 0)
                        r = attest_policy_check_cluster(p, "the policy of both images", &d);
                if (r < 0)
                        return log_error_errno(r, "%s", d.message);
        }
        u->both_version = config->policy_version + 1;
        u->new_version = config->policy_version + 2;
        (void) snprintf(u->source, sizeof(u->source), "%s", measurements);
        return 0;
}

int upgrade_apply_verb(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_CONFIG = 0x100,
                ARG_MEASUREMENTS,
                ARG_PUBKEY,
                ARG_SIGNATURE_URL,
                ARG_INSECURE,
                ARG_MS,
                ARG_STATE,
                ARG_TIMEOUT,
                ARG_DRY_RUN,
                ARG_IMAGE_ID,
                ARG_TERRAFORM,
                ARG_KUBERNETES,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "measurements", required_argument, NULL, ARG_MEASUREMENTS },
                { "pubkey", required_argument, NULL, ARG_PUBKEY },
                { "signature-url", required_argument, NULL, ARG_SIGNATURE_URL },
                { "insecure-no-signature", no_argument, NULL, ARG_INSECURE },
                { "master-secret", required_argument, NULL, ARG_MS },
                { "state-file", required_argument, NULL, ARG_STATE },
                { "node-timeout", required_argument, NULL, ARG_TIMEOUT },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "image-id", required_argument, NULL, ARG_IMAGE_ID },
                { "terraform", required_argument, NULL, ARG_TERRAFORM },
                { "kubernetes-version", required_argument, NULL, ARG_KUBERNETES },
                {},
        };
        const char *measurements = NULL, *pubkey = NULL, *sig_url = NULL, *image_id = NULL,
                   *k8s = NULL;
        ApplyArgs a = { .ms = MASTER_SECRET_FILE_DEFAULT,
                        .state = CLI_STATE_FILE_DEFAULT,
                        .userdata = userdata,
                        .timeout_s = UPGRADE_TIMEOUT_S };
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(upgrade_done) Upgrade u = {};
        const NodeReplacer *rep;
        char endpoint[CLI_URL_MAX], checkpoints[PATH_MAX], cloud[CLI_UPGRADE_CLOUD_MAX];
        char current_image[CLI_UPGRADE_IMAGE_ID_MAX + 1] = "";
        bool insecure = false, dry_run = false;
        uint8_t cid[32];
        Diag d;
        int c, r;

        /* Progress, line by line, even into a pipe: what was done is known if this is killed. */
        (void) setvbuf(stdout, NULL, _IOLBF, 0);
        rpc_client_config_defaults(&a.rc);
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_CONFIG:
                        a.config = optarg;
                        break;
                case ARG_MEASUREMENTS:
                        measurements = optarg;
                        break;
                case ARG_PUBKEY:
                        pubkey = optarg;
                        break;
                case ARG_SIGNATURE_URL:
                        sig_url = optarg;
                        break;
                case ARG_INSECURE:
                        insecure = true;
                        break;
                case ARG_MS:
                        a.ms = optarg;
                        break;
                case ARG_STATE:
                        a.state = optarg;
                        break;
                case ARG_TIMEOUT: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*optarg < '0' || *optarg > '9' || *end || v == 0 || v > 86400)
                                return log_error_errno(-EUSAGE,
                                                       "--node-timeout: seconds, 1 to 86400.");
                        a.timeout_s = (unsigned) v;
                        break;
                }
                case ARG_DRY_RUN:
                        dry_run = true;
                        break;
                case ARG_IMAGE_ID:
                        if (!cli_upgrade_image_id_ok(optarg))
                                return log_error_errno(-EUSAGE,
                                                       "--image-id: the new image's ID as the "
                                                       "cloud names it (1 to %d of A-Z a-z 0-9 / "
                                                       "_ . : -), e.g. "
                                                       "projects/P/global/images/I.",
                                                       CLI_UPGRADE_IMAGE_ID_MAX);
                        image_id = optarg;
                        break;
                case ARG_TERRAFORM:
                        a.terraform = optarg;
                        break;
                case ARG_KUBERNETES: {
                        KubernetesVersion kv;
                        if (kubernetes_version_parse(optarg, &kv) < 0)
                                return log_error_errno(-EUSAGE,
                                                       "--kubernetes-version: a Kubernetes "
                                                       "release v1.MINOR.PATCH, e.g. %s.",
                                                       CLI_KUBERNETES_VERSION);
                        k8s = optarg;
                        break;
                }
                default:
                        return log_error_errno(-EUSAGE, "See 'cloister upgrade apply --help'.");
                }
        (void) cli_workspace_config_default(NULL, &a.config);
        if (optind < argc || !a.config)
                return log_error_errno(-EUSAGE, "upgrade apply: run it in the cluster's workspace "
                                                "(or give --config FILE). See --help.");
        if (measurements && insecure == !!pubkey)
                return log_error_errno(-EUSAGE,
                                       "upgrade apply: give --pubkey PUB.pem (the key the image "
                                       "build signs with), or --insecure-no-signature.");
        if (insecure && sig_url)
                return log_error_errno(-EUSAGE, "--insecure-no-signature checks no signature: it "
                                                "cannot go with --signature-url.");

        if (image_id && !measurements)
                return log_error_errno(-EUSAGE, "--image-id goes with --measurements (the new "
                                                "image's signed measurements). See --help.");
        if (k8s && !measurements)
                return log_error_errno(-EUSAGE,
                                       "--kubernetes-version goes with --measurements (the "
                                       "signed measurements of the image that carries it). See "
                                       "--help.");
        /* One command changes the cluster at a time (a second 'upgrade apply', a 'policy
         * push'); a dry run changes nothing and takes no lock. */
        if (!dry_run) {
                r = cli_workspace_lock(a.state, "upgrade apply");
                if (r < 0)
                        return r;
        }
        r = cli_upgrade_cloud(a.state, cloud);
        if (r < 0)
                return r;

        r = upgrade_load(&u);
        if (r < 0)
                return r;
        if (r > 0 && u.step != STEP_DONE) {
                if (image_id && strcmp(image_id, u.image_id) != 0)
                        return log_error_errno(-EBUSY,
                                               "An upgrade to image %s is under way, at step %s: "
                                               "finish it first with 'cloister upgrade apply' "
                                               "(no --measurements, no --image-id), then start "
                                               "the next.",
                                               u.image_id[0] ? u.image_id : "(none)",
                                               step_names[u.step]);
                if (measurements && strcmp(measurements, u.source) != 0)
                        return log_error_errno(-EBUSY,
                                               "An upgrade to '%s' (from %s) is under way, at step "
                                               "%s: finish it first with 'cloister upgrade apply' "
                                               "(no --measurements), then start the next.",
                                               u.to, u.source, step_names[u.step]);
                if (k8s && strcmp(k8s, u.k8s_to) != 0)
                        return log_error_errno(-EBUSY,
                                               "An upgrade to '%s' (Kubernetes %s) is under way, "
                                               "at step %s: finish it first with 'cloister "
                                               "upgrade apply' (no --kubernetes-version), then "
                                               "start the next.",
                                               u.to, u.k8s_to[0] ? u.k8s_to : "unchanged",
                                               step_names[u.step]);
                printf("resuming the upgrade '%s' -> '%s'%s%s at step %s (" UPGRADE_STATE_FILE
                       ")\n",
                       u.from, u.to, u.k8s_to[0] ? ", Kubernetes " : "", u.k8s_to,
                       step_names[u.step]);
        } else {
                upgrade_done(&u);
                if (!measurements)
                        return log_error_errno(-EUSAGE,
                                               "upgrade apply: no upgrade under way here "
                                               "(" UPGRADE_STATE_FILE " records none unfinished): "
                                               "give --measurements FILE|URL to start one. See "
                                               "--help.");
        }

        r = cli_config_load(a.config, &config);
        if (r < 0)
                return r;
        rep = replacer_find(config.provider, cloud);
        if (!rep)
                return log_error_errno(-EOPNOTSUPP,
                                       "upgrade apply: the nodes of this cluster (provider %s%s) "
                                       "cannot be replaced yet: only the namespace mini and GCP "
                                       "are supported (docs/upgrade.md). Nothing was changed.",
                                       config.provider ?: "?",
                                       is_dir("cloister-mini-vm") ? ", VM mini" : "");
        if (rep->not_built)
                return log_error_errno(-EOPNOTSUPP,
                                       "upgrade apply: not built for %s: %s (docs/upgrade.md). "
                                       "Nothing was changed.",
                                       rep->what, rep->not_built);
        if (u.step == STEP_ADMIT_BOTH && !u.both) {
                /* Starting: a cloud needs the new image's ID, a local cluster takes none. */
                if (rep->roll_group && !image_id)
                        return log_error_errno(-EUSAGE,
                                               "upgrade apply: this cluster runs in %s: give "
                                               "--image-id ID, the new image as the cloud names "
                                               "it (registered with the TEE's features), with "
                                               "its --measurements. See --help.",
                                               cloud);
                if (!rep->roll_group && image_id)
                        return log_error_errno(-EUSAGE,
                                               "--image-id is for a cluster made by 'cloister "
                                               "create' (a cloud); this one's nodes are replaced "
                                               "by %s. See --help.",
                                               rep->what);
                if (rep->roll_group) {
                        r = cli_upgrade_cloud_check(image_id, a.terraform, current_image,
                                                    sizeof(current_image));
                        if (r < 0)
                                return r;
                        (void) snprintf(u.image_id, sizeof(u.image_id), "%s", image_id);
                }
        }
        r = cli_state_load(a.state, cid, endpoint, sizeof(endpoint));
        if (r < 0)
                return r;

        if (u.step == STEP_ADMIT_BOTH && !u.both) {
                char target_tmp[] = "/tmp/cloister-upgrade-XXXXXX";
                _cleanup_(freep) char *target_path = NULL;

                if (dry_run) {
                        if (!mkdtemp(target_tmp))
                                return log_error_errno(-errno, "mkdtemp: %m");
                        if (asprintf(&target_path, "%s/target.json", target_tmp) < 0)
                                return log_oom();
                }
                r = upgrade_prepare(&a, measurements, pubkey, sig_url, insecure, k8s,
                                    target_path ?: UPGRADE_TARGET_FILE, &config, &u);
                /* A cloud's groups roll the workers first: the reverse of what a Kubernetes
                 * version change needs. */
                if (r >= 0 && rep->roll_group && u.k8s_to[0])
                        r = log_error_errno(-EOPNOTSUPP,
                                            "upgrade apply: a Kubernetes version change is not "
                                            "built for %s: its groups roll the workers first, and "
                                            "the control plane must go first (docs/upgrade.md). "
                                            "Nothing was changed.",
                                            rep->what);
                if (target_path) {
                        (void) unlink(target_path);
                        (void) rmdir(target_tmp);
                } else if (r < 0)
                        (void) unlink(UPGRADE_TARGET_FILE);
                if (r < 0)
                        return r;
                diag_clear(&d);
                r = cli_policy_load(NULL, &config, &pol, &d);
                if (r < 0)
                        return log_error_errno(r, "%s", d.message);
                cli_policy_bind_cluster(pol, cid);
                r = members_load(endpoint, pol, &a.rc, u.k8s_to[0] != '\0', &u);
                if (r < 0) {
                        (void) unlink(UPGRADE_TARGET_FILE);
                        return r;
                }
                print_plan(&u, rep, a.config);
                if (dry_run) {
                        printf("dry run: nothing was changed.\n");
                        return 0;
                }
                /* Refuse while anything fails: a roll would hide it, or lose the node. */
                printf("every node must pass before anything changes: cloister verify --cluster\n");
                if (cli_checkpoints_path(a.state, checkpoints, sizeof(checkpoints)) < 0)
                        return log_oom();
                r = cli_verify_cluster(endpoint, NULL, &config, cid, &a.rc, OUTPUT_TEXT, NULL,
                                       checkpoints);
                if (r < 0)
                        (void) unlink(UPGRADE_TARGET_FILE);
                if (r < 0)
                        return log_error_errno(r, "upgrade apply: refused: the cluster does not "
                                                  "verify as it is (above). Repair or remove the "
                                                  "failing node first; nothing was changed.");
                r = upgrade_save(&u);
                if (r < 0)
                        return r;
        } else if (dry_run) {
                print_plan(&u, rep, a.config);
                printf("dry run: nothing was changed.\n");
                return 0;
        }

        if (u.step == STEP_ADMIT_BOTH) {
                printf("step 1: policy version %" PRId64 " admits both '%s' and '%s'\n",
                       u.both_version, u.from, u.to);
                r = json_write(UPGRADE_POLICY_FILE, u.both);
                if (r >= 0)
                        r = config_write(a.config, u.both, u.both_version, NULL, NULL);
                if (r < 0)
                        return r;
                r = push(&a);
                if (r < 0) {
                        print_stop(&u, "not every join service took the policy of both images");
                        return r;
                }
                u.step = STEP_REPLACE;
                r = upgrade_save(&u);
                if (r < 0)
                        return r;
        }
        if (u.step == STEP_REPLACE) {
                printf("step 2: the nodes, one at a time\n");
                r = replace_nodes(&a, &u, rep, cid);
                if (r < 0)
                        return r;
                u.step = STEP_ADMIT_NEW;
                r = upgrade_save(&u);
                if (r < 0)
                        return r;
        }
        if (u.step == STEP_ADMIT_NEW) {
                const json_t *att = json_object_get(u.target, "attestation");
                printf("step 3: policy version %" PRId64 " admits only '%s'\n", u.new_version,
                       u.to);
                r = json_write(UPGRADE_POLICY_FILE, att);
                if (r >= 0)
                        r = config_write(a.config, att, u.new_version,
                                         json_object_get(u.target, "measurementsSource"),
                                         u.k8s_to[0] ? u.k8s_to : NULL);
                if (r < 0)
                        return r;
                r = push(&a);
                if (r < 0) {
                        print_stop(&u, "not every join service took the policy of the new image");
                        return r;
                }
                u.step = STEP_DONE;
                r = upgrade_save(&u);
                if (r < 0)
                        return r;
                (void) unlink(UPGRADE_TARGET_FILE);
        }
        printf("upgrade done: every node runs '%s'%s%s; the cluster admits only '%s' (policy "
               "version %" PRId64 ")\n",
               u.to, u.k8s_to[0] ? " and Kubernetes " : "", u.k8s_to, u.to, u.new_version);
        return 0;
}
