/* SPDX-License-Identifier: Apache-2.0 */
/* cloister create: the cluster's cloud infrastructure through Terraform (terraform/<provider>). */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-terraform.h"
#include "cli.h"
#include "cloister/cp-authorization.h"
#include "cloister/fileio.h"
#include "cloister/init-secret.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/mastersecret.h"

#define INFRA_STRING_MAX  256
#define BOOTSTRAPPER_PORT 9000
#define TF_FAILED_LOG     "cloister-create-failed.log"
/* How long the authorizations 'create --workers' gives the further control planes last: they
 * join within minutes of being created; running 'create --workers' again renews them. */
#define CP_AUTHORIZATION_CREATE_VALID_SEC (24 * 3600)
#define CONTROL_PLANES_MAX                5

typedef enum InfraType { INFRA_STRING, INFRA_INT } InfraType;

/* One field of the configuration's "infrastructure" object and the module variable it sets. */
typedef struct InfraField {
        const char *key, *var;
        InfraType type;
        bool required;
        int64_t min, max;
        const char *hint;
} InfraField;

static const InfraField common_fields[] = {
        { "tee", "tee", INFRA_STRING, true, 0, 0, "the TEE of every node" },
        { "controlPlaneInstanceType", "control_plane_instance_type", INFRA_STRING, true, 0, 0,
          "a confidential VM type (docs/cloud.md lists them per cloud and TEE)" },
        { "workerInstanceType", "worker_instance_type", INFRA_STRING, true, 0, 0,
          "a confidential VM type (docs/cloud.md lists them per cloud and TEE)" },
        { "controlPlaneCount", "control_plane_count", INFRA_INT, false, 1, CONTROL_PLANES_MAX,
          "1, 3 or 5 (odd: etcd keeps a majority; 3 survive one failed control plane, 5 two)" },
        { "workerCount", "worker_count", INFRA_INT, false, 0, 100, "0 to 100" },
        { "stateDiskSizeGb", "state_disk_size_gb", INFRA_INT, false, 10, 16384, "10 to 16384" },
        { "imageId", "image_id", INFRA_STRING, false, 0, 0,
          "an image already registered with the TEE's features" },
        { "imageFile", "image_file", INFRA_STRING, false, 0, 0,
          "the cloud image 'make image' built, to upload" },
};
static const InfraField gcp_fields[] = {
        { "project", "project", INFRA_STRING, true, 0, 0, "the GCP project ID" },
        { "region", "region", INFRA_STRING, true, 0, 0, "a GCP region, e.g. europe-west4" },
        { "zone", "zone", INFRA_STRING, true, 0, 0,
          "a zone of region with the TEE's machine types, e.g. europe-west4-a" },
};
static const InfraField azure_fields[] = {
        { "subscriptionId", "subscription_id", INFRA_STRING, true, 0, 0,
          "the Azure subscription ID" },
        { "location", "location", INFRA_STRING, true, 0, 0,
          "an Azure region with confidential VMs, e.g. westeurope" },
        { "zone", "zone", INFRA_STRING, false, 0, 0, "an availability zone: 1, 2 or 3" },
};
static const InfraField aws_fields[] = {
        { "region", "region", INFRA_STRING, true, 0, 0,
          "an AWS region with SEV-SNP instances, e.g. eu-west-1" },
        { "zone", "zone", INFRA_STRING, true, 0, 0, "an availability zone of region" },
};

typedef struct CloudProvider {
        const char *name;
        const InfraField *fields;
        size_t n_fields;
        const char *const tees[3];
} CloudProvider;

static const CloudProvider providers[] = {
        { "gcp", gcp_fields, ELEMENTSOF(gcp_fields), { "snp", "tdx", NULL } },
        { "azure", azure_fields, ELEMENTSOF(azure_fields), { "snp", "tdx", NULL } },
        /* AWS sells SEV-SNP only. */
        { "aws", aws_fields, ELEMENTSOF(aws_fields), { "snp", NULL } },
};

/* The machine types that run each TEE, per cloud (fnmatch patterns). The modules refuse any
 * other at plan; checked here first so the error names the configuration's field. */
typedef struct TeeTypes {
        const char *provider, *tee;
        const char *const patterns[4];
        const char *example;
} TeeTypes;

static const TeeTypes tee_types[] = {
        { "gcp", "snp", { "n2d-*", NULL }, "n2d-standard-4 (AMD Milan or later)" },
        { "gcp", "tdx", { "c3-*", NULL }, "c3-standard-4" },
        { "azure",
          "snp",
          { "Standard_[DE]C*as_v5", "Standard_[DE]C*ads_v5", NULL },
          "Standard_DC4as_v5" },
        { "azure",
          "tdx",
          { "Standard_[DE]C*es_v5", "Standard_[DE]C*eds_v5", NULL },
          "Standard_DC4es_v5" },
        { "aws", "snp", { "m6a.*", "c6a.*", "r6a.*", NULL }, "m6a.xlarge" },
};

static int check_tee_type(const char *config_path, const char *provider, const char *tee,
                          const char *key, const char *type)
{
        for (size_t i = 0; i < ELEMENTSOF(tee_types); i++) {
                const TeeTypes *t = &tee_types[i];
                if (strcmp(t->provider, provider) != 0 || strcmp(t->tee, tee) != 0)
                        continue;
                for (size_t k = 0; t->patterns[k]; k++)
                        if (fnmatch(t->patterns[k], type, 0) == 0)
                                return 0;
                return log_error_errno(-EINVAL,
                                       "%s: .infrastructure.%s '%s' does not run %s nodes on %s "
                                       "(not a confidential type, or another TEE's): use e.g. "
                                       "%s.",
                                       config_path, key, type, tee, provider, t->example);
        }
        return log_error_errno(-EINVAL, "%s: %s does not offer tee '%s'.", config_path, provider,
                               tee);
}

typedef enum OutputType { OUTPUT_STRING, OUTPUT_STRING_LIST } OutputType;

/* The outputs create reads: every root module declares exactly these
 * (tests/integration/test_terraform_modules.py holds the two equal). */
static const struct {
        const char *name;
        OutputType type;
} create_outputs[] = {
        { "uid", OUTPUT_STRING },
        { "name", OUTPUT_STRING },
        { "endpoint", OUTPUT_STRING },
        { "instance_groups", OUTPUT_STRING_LIST },
        { "tee", OUTPUT_STRING },
        { "image_id", OUTPUT_STRING },
        { "cleanup_filter", OUTPUT_STRING },
};

static const CloudProvider *provider_find(const char *name)
{
        for (size_t i = 0; name && i < ELEMENTSOF(providers); i++)
                if (strcmp(providers[i].name, name) == 0)
                        return &providers[i];
        return NULL;
}

static bool printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        return false;
        return true;
}

static int infra_field(const char *config_path, const json_t *infra, const InfraField *f,
                       json_t *tfvars)
{
        json_t *v = json_object_get(infra, f->key);

        if (!v || json_is_null(v)) {
                if (f->required)
                        return log_error_errno(-EINVAL, "%s: .infrastructure.%s is not set: %s.",
                                               config_path, f->key, f->hint);
                return 0;
        }
        if (f->type == INFRA_INT) {
                json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
                if (!json_is_integer(v) || n < f->min || n > f->max)
                        return log_error_errno(-EINVAL,
                                               "%s: .infrastructure.%s: a whole number, %s.",
                                               config_path, f->key, f->hint);
                return json_object_set_new(tfvars, f->var, json_integer(n)) < 0 ? log_oom() : 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > INFRA_STRING_MAX ||
            strlen(json_string_value(v)) != json_string_length(v) ||
            !printable(json_string_value(v)))
                return log_error_errno(-EINVAL,
                                       "%s: .infrastructure.%s: a non-empty string of printable "
                                       "characters (at most %d): %s.",
                                       config_path, f->key, INFRA_STRING_MAX, f->hint);
        return json_object_set_new(tfvars, f->var, json_string(json_string_value(v))) < 0
                       ? log_oom()
                       : 0;
}

/* The module's variables from the configuration; the init-secret hash is added later. */
static int tfvars_from_config(const char *config_path, const CliConfig *config,
                              const CloudProvider *p, const char *name, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *tfvars = json_object();
        const char *keys[ELEMENTSOF(common_fields) + 8] = {};
        JsonCtx ctx = { .source = config_path, .path = "infrastructure" };
        const char *tee, *image_file;
        json_t *infra;
        size_t k = 0;
        bool tee_ok = false;
        Diag d;
        int r;

        if (!tfvars)
                return log_oom();
        infra = json_object_get(config->json, "infrastructure");
        if (!json_is_object(infra))
                return log_error_errno(-EINVAL,
                                       "%s has no \"infrastructure\" object: run 'cloister config "
                                       "generate %s --tee snp|tdx' and fill it in (docs/cloud.md).",
                                       config_path, p->name);
        for (size_t i = 0; i < ELEMENTSOF(common_fields); i++)
                keys[k++] = common_fields[i].key;
        for (size_t i = 0; i < p->n_fields; i++)
                keys[k++] = p->fields[i].key;
        diag_clear(&d);
        ctx.diag = &d;
        r = json_check_keys(&ctx, infra, keys);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        for (size_t i = 0; i < ELEMENTSOF(common_fields); i++)
                if ((r = infra_field(config_path, infra, &common_fields[i], tfvars)) < 0)
                        return r;
        for (size_t i = 0; i < p->n_fields; i++)
                if ((r = infra_field(config_path, infra, &p->fields[i], tfvars)) < 0)
                        return r;
        {
                json_t *n = json_object_get(tfvars, "control_plane_count");
                /* An even count adds a node etcd's quorum must wait for and survives no more
                 * failures than the odd count below it. */
                if (n && json_integer_value(n) % 2 == 0)
                        return log_error_errno(-EINVAL,
                                               "%s: .infrastructure.controlPlaneCount %" PRId64
                                               ": use 1, 3 or 5 (an odd number: etcd needs a "
                                               "majority, and %" PRId64 " survives no more "
                                               "failures than %" PRId64 ").",
                                               config_path, (int64_t) json_integer_value(n),
                                               (int64_t) json_integer_value(n),
                                               (int64_t) json_integer_value(n) - 1);
        }
        tee = json_string_value(json_object_get(tfvars, "tee"));
        for (size_t i = 0; p->tees[i]; i++)
                tee_ok = tee_ok || strcmp(tee, p->tees[i]) == 0;
        if (!tee_ok)
                return log_error_errno(-EINVAL, "%s: .infrastructure.tee '%s': %s offers %s.",
                                       config_path, tee, p->name,
                                       p->tees[1] ? "snp (AMD SEV-SNP) or tdx (Intel TDX)"
                                                  : "snp (AMD SEV-SNP) only");
        r = check_tee_type(
                config_path, p->name, tee, "controlPlaneInstanceType",
                json_string_value(json_object_get(tfvars, "control_plane_instance_type")));
        if (r >= 0)
                r = check_tee_type(
                        config_path, p->name, tee, "workerInstanceType",
                        json_string_value(json_object_get(tfvars, "worker_instance_type")));
        if (r < 0)
                return r;
        image_file = json_string_value(json_object_get(tfvars, "image_file"));
        if (!image_file == !json_object_get(tfvars, "image_id"))
                return log_error_errno(-EINVAL,
                                       "%s: set exactly one of .infrastructure.imageId (an image "
                                       "already registered) and .infrastructure.imageFile (the "
                                       "image built by 'make image', to upload).",
                                       config_path);
        if (image_file) {
                /* terraform runs in the workspace: the path must not depend on where it is. */
                _cleanup_(freep) char *abs = realpath(image_file, NULL);
                if (!abs)
                        return log_error_errno(-errno,
                                               "%s: .infrastructure.imageFile %s: %m. Build it "
                                               "with 'make image' or use imageId.",
                                               config_path, image_file);
                if (json_object_set_new(tfvars, "image_file", json_string(abs)) < 0)
                        return log_oom();
        }
        if (json_object_set_new(tfvars, "name", json_string(name)) < 0)
                return log_oom();
        *ret = TAKE_PTR(tfvars);
        return 0;
}

static bool cluster_name_ok(const char *s)
{
        size_t n = strlen(s);
        return n >= 1 && n <= 20 && s[0] >= 'a' && s[0] <= 'z' &&
               strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static bool endpoint_host_ok(const char *s)
{
        size_t n = strlen(s);
        return n >= 1 && n <= 253 &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n &&
               s[0] != '-' && s[0] != '.';
}

/* terraform output -json: each output create reads, with its type; what is recorded. */
static int read_outputs(const char *path, const char *provider, const char *tee, json_t **ret_infra)
{
        _cleanup_(json_decrefp) json_t *j = NULL, *infra = NULL;
        Diag d;
        int r;

        diag_clear(&d);
        r = json_parse_file(path, JSON_FILE_SIZE_MAX, &j, &d);
        if (r < 0)
                return log_error_errno(r, "Terraform's outputs: %s", d.message);
        infra = json_object();
        if (!infra || json_object_set_new(infra, "provider", json_string(provider)) < 0 ||
            json_object_set_new(infra, "workspace", json_string(TF_WORKSPACE)) < 0)
                return log_oom();
        for (size_t i = 0; i < ELEMENTSOF(create_outputs); i++) {
                const char *name = create_outputs[i].name;
                json_t *v = json_object_get(json_object_get(j, name), "value");
                size_t k;
                json_t *e;

                if (!v)
                        return log_error_errno(-EBADMSG,
                                               "Terraform's outputs lack '%s': %s/ does not hold "
                                               "the module this cloister expects.",
                                               name, TF_WORKSPACE);
                if (create_outputs[i].type == OUTPUT_STRING &&
                    (!json_is_string(v) || !printable(json_string_value(v)) ||
                     json_string_length(v) > INFRA_STRING_MAX))
                        return log_error_errno(-EBADMSG,
                                               "Terraform's output '%s' is not a string of "
                                               "printable characters.",
                                               name);
                if (create_outputs[i].type == OUTPUT_STRING_LIST) {
                        if (!json_is_array(v) || json_array_size(v) > 16)
                                return log_error_errno(-EBADMSG,
                                                       "Terraform's output '%s' is not a list "
                                                       "of strings.",
                                                       name);
                        json_array_foreach (v, k, e)
                                if (!json_is_string(e) || !printable(json_string_value(e)))
                                        return log_error_errno(-EBADMSG,
                                                               "Terraform's output '%s' is not "
                                                               "a list of strings.",
                                                               name);
                }
                if (json_object_set(infra, name, v) < 0)
                        return log_oom();
        }
        {
                const char *uid = json_string_value(json_object_get(infra, "uid"));
                const char *ep = json_string_value(json_object_get(infra, "endpoint"));
                const char *t = json_string_value(json_object_get(infra, "tee"));
                if (strlen(uid) != 8 || strspn(uid, "0123456789abcdef") != 8)
                        return log_error_errno(-EBADMSG,
                                               "Terraform's output 'uid' '%s' is not 8 hex "
                                               "digits.",
                                               uid);
                if (!endpoint_host_ok(ep))
                        return log_error_errno(-EBADMSG,
                                               "Terraform's output 'endpoint' '%s' is not a host "
                                               "name or IPv4 address.",
                                               ep);
                if (strcmp(t, tee) != 0)
                        return log_error_errno(-EBADMSG,
                                               "Terraform's output 'tee' is '%s', but '%s' was "
                                               "asked for.",
                                               t, tee);
        }
        *ret_infra = TAKE_PTR(infra);
        return 0;
}

static int write_state(const char *path, const char *name, json_t *infra)
{
        _cleanup_(json_decrefp) json_t *st = NULL;
        _cleanup_(freep) char *text = NULL, *endpoint = NULL;

        if (asprintf(&endpoint, "https://%s:%d",
                     json_string_value(json_object_get(infra, "endpoint")), BOOTSTRAPPER_PORT) < 0)
                return log_oom();
        st = json_pack("{s:i,s:s,s:s,s:s,s:O}", "version", 1, "status", "created", "clusterName",
                       name, "endpoint", endpoint, "infrastructure", infra);
        if (!st || json_dump_pretty(st, &text) < 0)
                return log_oom();
        return write_file_atomic(path, text, strlen(text), 0600,
                                 WRITE_FILE_EXCLUSIVE | WRITE_FILE_SYNC);
}

static void print_summary(const char *provider, const json_t *tfvars)
{
        int64_t cps = 1, workers = 1;
        json_t *v;

        if ((v = json_object_get(tfvars, "control_plane_count")))
                cps = json_integer_value(v);
        if ((v = json_object_get(tfvars, "worker_count")))
                workers = json_integer_value(v);
        printf("The following will be created in %s (every node a confidential VM, TEE %s):\n",
               provider, json_string_value(json_object_get(tfvars, "tee")));
        printf("  1 control-plane node of type %s\n",
               json_string_value(json_object_get(tfvars, "control_plane_instance_type")));
        if (cps > 1)
                printf("  %" PRId64 " further control-plane nodes of type %s, once 'cloister "
                       "apply' has initialised the cluster\n",
                       cps - 1,
                       json_string_value(json_object_get(tfvars, "control_plane_instance_type")));
        printf("  %" PRId64 " worker node%s of type %s, once 'cloister apply' has initialised "
               "the cluster\n",
               workers, workers == 1 ? "" : "s",
               json_string_value(json_object_get(tfvars, "worker_instance_type")));
        printf("  a load balancer for the API server (6443) and the bootstrapper (9000), the "
               "network and its firewall rules\n");
        if (json_object_get(tfvars, "image_file"))
                printf("  the image %s, uploaded and registered\n",
                       json_string_value(json_object_get(tfvars, "image_file")));
        fflush(stdout);
}

/* What create made before Terraform ran, removed when nothing of the cluster is left. */
typedef struct Created {
        const char *ms_path, *init_secret_path;
        bool ms, init_secret;
} Created;

static void remove_created(const Created *c, bool failed)
{
        /* Terraform's output outlives the workspace when something went wrong. */
        if (failed && rename(TF_WORKSPACE "/" TF_OUTPUT_LOG, TF_FAILED_LOG) == 0)
                fprintf(stderr, "Terraform's whole output: %s\n", TF_FAILED_LOG);
        if (c->init_secret)
                (void) unlink(c->init_secret_path);
        if (c->ms)
                (void) unlink(c->ms_path);
        (void) tf_workspace_remove();
}

/* After a failed or refused apply: destroy what Terraform created. The workspace (with its
 * state) is removed only once a destroy succeeded. */
static int roll_back(const Terraform *tf, const char *provider, const Created *created,
                     bool no_rollback, int error)
{
        char uid[16];
        int destroyed;

        (void) tf_state_uid(uid);
        if (no_rollback) {
                fprintf(stderr,
                        "--no-rollback: what Terraform created is kept, and %s/ with its state. "
                        "Fix the cause and run 'cloister terminate' to remove it.\n",
                        TF_WORKSPACE);
                tf_print_manual_cleanup(provider, uid);
                return error;
        }
        fprintf(stderr, "Rolling back: terraform destroy...\n");
        destroyed =
                tf_run(tf, NULL, TF_ARGS("destroy", "-input=false", "-no-color", "-auto-approve"));
        if (destroyed < 0) {
                fprintf(stderr,
                        "The rollback failed: resources of this cluster may be left. %s/ is "
                        "kept (it holds Terraform's state): run 'cloister terminate' to try "
                        "again, or delete them by hand.\n",
                        TF_WORKSPACE);
                tf_print_manual_cleanup(provider, uid);
                return error;
        }
        remove_created(created, true);
        fprintf(stderr,
                "Rollback succeeded: nothing of this cluster is left. Fix the cause above and run "
                "'cloister create' again.\n");
        return error;
}

/* The further control planes (all but the first, which 'cloister apply' initialised). A group
 * names its nodes itself, but an authorization names one node: so each gets a name chosen here,
 * <name>-cp-2 .. <name>-cp-N (name: the module's output, cluster name and uid), and the owner's
 * authorization for exactly that name, made with the master secret and valid for
 * CP_AUTHORIZATION_CREATE_VALID_SEC. They reach Terraform only in control_plane_authorizations in
 * the variables file (0600), and from there only that node's metadata: never an argument. */
static int authorize_control_planes(const json_t *infra, json_t *tfvars, size_t *ret_n)
{
        _cleanup_(master_secret_freep) MasterSecret *ms = NULL;
        _cleanup_(json_decrefp) json_t *auths = json_object();
        const char *prefix = json_string_value(json_object_get(infra, "name"));
        json_t *n = json_object_get(tfvars, "control_plane_count");
        int64_t count = n ? (int64_t) json_integer_value(n) : 1;
        time_t not_after = time(NULL) + CP_AUTHORIZATION_CREATE_VALID_SEC;
        Diag d;
        int r;

        if (!auths)
                return log_oom();
        if ((n && !json_is_integer(n)) || count < 1 || count > CONTROL_PLANES_MAX || count % 2 == 0)
                return log_error_errno(-EINVAL,
                                       "%s/%s: control_plane_count is not 1, 3 or 5: set "
                                       ".infrastructure.controlPlaneCount and run 'cloister "
                                       "create' for a new cluster.",
                                       TF_WORKSPACE, TF_VARS_FILE);
        if (count > 1) {
                if (!prefix)
                        return log_error_errno(-EINVAL,
                                               "%s records no cluster name (the module's output "
                                               "'name'): it was not written by 'cloister create'.",
                                               TF_STATE_FILE);
                diag_clear(&d);
                r = master_secret_load(MASTER_SECRET_FILE_DEFAULT, &ms, &d);
                if (r < 0)
                        return log_error_errno(r,
                                               "%s. The further control planes' authorizations "
                                               "are made with the cluster's master secret: run "
                                               "this where 'cloister create' made it.",
                                               d.message);
        }
        for (int64_t i = 2; i <= count; i++) {
                char node[CP_AUTHORIZATION_NAME_MAX + 2], token[CP_AUTHORIZATION_MAX];
                int k = snprintf(node, sizeof(node), "%s-cp-%" PRId64, prefix, i);

                if (k < 0 || (size_t) k >= sizeof(node) || !cp_authorization_name_ok(node))
                        return log_error_errno(-EINVAL,
                                               "%s: the cluster name '%s' gives no valid node "
                                               "name ('%s-cp-%" PRId64 "' is not a DNS-1123 label "
                                               "of at most %d characters).",
                                               TF_STATE_FILE, prefix, prefix, i,
                                               CP_AUTHORIZATION_NAME_MAX);
                r = cp_authorization_make(ms->key, ms->salt, node, not_after, token);
                if (r < 0)
                        return log_error_errno(r, "Cannot make the authorization for %s: %m", node);
                r = json_object_set_new(auths, node, json_string(token));
                explicit_wipe(token, sizeof(token));
                if (r < 0)
                        return log_oom();
        }
        if (json_object_set(tfvars, "control_plane_authorizations", auths) < 0)
                return log_oom();
        *ret_n = (size_t) (count - 1);
        return 0;
}

/* The second phase, once 'cloister apply' has initialised the cluster: the cluster ID goes into
 * the workers' metadata (a joining node must know which cluster's join service to trust), and
 * the worker group grows to its size. No rollback here: a destroy would take the initialised
 * control plane with it. */
static int create_workers(const char *terraform, const char *tf_log, bool yes)
{
        _cleanup_(json_decrefp) json_t *st = NULL, *tfvars = NULL, *infra = NULL;
        _cleanup_(freep) char *text = NULL;
        const char *status, *cid, *provider;
        size_t n_cps = 0;
        Terraform tf = {};
        Diag d;
        int r;

        diag_clear(&d);
        r = json_parse_file(TF_STATE_FILE, JSON_FILE_SIZE_MAX, &st, &d);
        if (r < 0)
                return log_error_errno(r, "%s (run 'cloister create', then 'cloister apply').",
                                       d.message);
        status = json_string_value(json_object_get(st, "status"));
        cid = json_string_value(json_object_get(st, "clusterId"));
        provider = json_string_value(
                json_object_get(json_object_get(st, "infrastructure"), "provider"));
        if (!provider || !provider_find(provider))
                return log_error_errno(-EINVAL, "%s records no cluster made by 'cloister create'.",
                                       TF_STATE_FILE);
        if (!status || strcmp(status, "initialized") != 0 || !cid || strlen(cid) != 64 ||
            strspn(cid, "0123456789abcdef") != 64)
                return log_error_errno(-EINVAL,
                                       "The cluster is not initialised yet (%s): run 'cloister "
                                       "apply' first; workers need its cluster ID.",
                                       TF_STATE_FILE);
        if (access(TF_WORKSPACE, F_OK) < 0)
                return log_error_errno(-ENOENT,
                                       "%s/ is missing: the cluster's Terraform state is gone.",
                                       TF_WORKSPACE);
        r = json_parse_file(TF_WORKSPACE "/" TF_VARS_FILE, JSON_FILE_SIZE_MAX, &tfvars, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (json_object_set_new(tfvars, "cluster_id", json_string(cid)) < 0)
                return log_oom();
        r = authorize_control_planes(json_object_get(st, "infrastructure"), tfvars, &n_cps);
        if (r < 0)
                return r;
        if (json_dump_pretty(tfvars, &text) < 0)
                return log_oom();
        r = tf_find(terraform, &tf);
        if (r >= 0 && tf_log)
                r = tf_set_log_level(tf_log);
        if (r >= 0)
                r = write_file_atomic(TF_WORKSPACE "/" TF_VARS_FILE, text, strlen(text), 0600,
                                      WRITE_FILE_SYNC);
        if (r >= 0) {
                printf("[1/3] terraform init\n");
                fflush(stdout);
                r = tf_run(&tf, NULL, TF_ARGS("init", "-input=false", "-no-color"));
        }
        if (r >= 0) {
                printf("[2/3] terraform plan\n");
                fflush(stdout);
                r = tf_run(&tf, NULL, TF_ARGS("plan", "-input=false", "-no-color", "-out=tfplan"));
        }
        if (r >= 0) {
                json_t *n = json_object_get(tfvars, "worker_count"), *v;
                const char *key;
                if (n_cps > 0) {
                        printf("%zu further control-plane node(s) of type %s will be created in "
                               "%s, each authorized by the master secret for its own name for "
                               "%d hours:",
                               n_cps,
                               json_string_value(
                                       json_object_get(tfvars, "control_plane_instance_type")),
                               provider, CP_AUTHORIZATION_CREATE_VALID_SEC / 3600);
                        json_object_foreach (
                                json_object_get(tfvars, "control_plane_authorizations"), key, v)
                                printf(" %s", key);
                        printf("\n");
                }
                printf("%" PRId64 " worker node(s) of type %s will be created in %s; they join "
                       "cluster %s through its join service.\n",
                       n ? (int64_t) json_integer_value(n) : (int64_t) 1,
                       json_string_value(json_object_get(tfvars, "worker_instance_type")), provider,
                       cid);
                r = tf_ask(n_cps > 0 ? "Create the further control planes and the workers?"
                                     : "Create the workers?",
                           yes);
                if (r == 0) {
                        printf("Aborted: nothing was changed.\n");
                        r = -ECANCELED;
                }
        }
        if (r >= 0) {
                printf("[3/3] terraform apply\n");
                fflush(stdout);
                r = tf_run(
                        &tf, NULL,
                        TF_ARGS("apply", "-input=false", "-no-color", "-auto-approve", "tfplan"));
        }
        if (r >= 0)
                r = tf_run(&tf, TF_WORKSPACE "/outputs.json", TF_ARGS("output", "-json"));
        if (r >= 0)
                r = read_outputs(TF_WORKSPACE "/outputs.json", provider,
                                 json_string_value(json_object_get(tfvars, "tee")), &infra);
        tf_done(&tf);
        if (r < 0 && r != -ECANCELED)
                fprintf(stderr,
                        "%s were not (all) created; the control plane is untouched. Fix the "
                        "cause and run 'cloister create --workers' again (it also renews the "
                        "control planes' authorizations).\n",
                        n_cps > 0 ? "The further control planes and the workers" : "The workers");
        if (r < 0)
                return r;
        printf("%s created: they join cluster %s ('cloister verify --cluster' shows them "
               "once admitted; one that does not join gives its log to 'cloister logs --node "
               "ADDR').\n",
               n_cps > 0 ? "Further control planes and workers" : "Workers", cid);
        return 0;
}

int verb_create(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_CONFIG = 0x100,
                ARG_TERRAFORM,
                ARG_MODULES,
                ARG_NO_ROLLBACK,
                ARG_TF_LOG,
                ARG_WORKERS
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "yes", no_argument, NULL, 'y' },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "terraform", required_argument, NULL, ARG_TERRAFORM },
                { "modules", required_argument, NULL, ARG_MODULES },
                { "no-rollback", no_argument, NULL, ARG_NO_ROLLBACK },
                { "tf-log", required_argument, NULL, ARG_TF_LOG },
                { "workers", no_argument, NULL, ARG_WORKERS },
                {},
        };
        const char *config_path = CLI_CONFIG_FILE_DEFAULT, *terraform = NULL, *modules = NULL,
                   *tf_log = NULL, *name;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(json_decrefp) json_t *tfvars = NULL, *infra = NULL;
        _cleanup_(master_secret_freep) MasterSecret *ms = NULL;
        _cleanup_(secret_freep) Secret *init_secret = NULL;
        _cleanup_(freep) char *module_dir = NULL, *text = NULL, *src = NULL;
        Created created = { .ms_path = MASTER_SECRET_FILE_DEFAULT,
                            .init_secret_path = INIT_SECRET_FILE_DEFAULT };
        char hash[INIT_SECRET_HASH_MAX];
        const CloudProvider *p;
        Terraform tf = {};
        bool yes = false, no_rollback = false, workers = false;
        Diag d;
        int c, r;

        (void) userdata;
        optind = 0;
        while ((c = getopt_long(argc, argv, "hy", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister create [--config FILE] [-y] [--terraform PATH]\n"
                               "         [--no-rollback] [--tf-log LEVEL] [--modules DIR]\n\n"
                               "Creates the cluster's cloud infrastructure (GCP, Azure or AWS:\n"
                               "the configuration's provider and its \"infrastructure\" object,\n"
                               "docs/cloud.md) with Terraform or OpenTofu (>= %d.%d, found on\n"
                               "PATH or given by --terraform): copies the module "
                               "into\n" TF_WORKSPACE
                               "/, writes its variables, runs init and plan, shows\n"
                               "what will be created and asks (unless -y), then applies and\n"
                               "records the outputs in " TF_STATE_FILE ". Generates the\n"
                               "master secret (" MASTER_SECRET_FILE_DEFAULT ") and the init\n"
                               "secret (" INIT_SECRET_FILE_DEFAULT "): only the init secret's\n"
                               "hash goes to Terraform and the nodes. Then run 'cloister "
                               "apply'.\n\n"
                               "If the apply fails, what was created is destroyed again (unless\n"
                               "--no-rollback); the workspace is removed only after a destroy\n"
                               "that succeeded. --tf-log TRACE|DEBUG|INFO|WARN|ERROR keeps\n"
                               "Terraform's log in " TF_WORKSPACE "/terraform.log.\n\n"
                               "       cloister create --workers [-y] [--terraform PATH]\n\n"
                               "After 'cloister apply': gives the workers the cluster ID and\n"
                               "creates them, and with controlPlaneCount 3 or 5 the further\n"
                               "control planes, named NAME-UID-cp-2.., each with the owner's\n"
                               "authorization for its name (made with " MASTER_SECRET_FILE_DEFAULT
                               ",\n"
                               "valid for 24 hours; running this again renews it). They join\n"
                               "through the join service.\n",
                               TF_VERSION_MIN_MAJOR, TF_VERSION_MIN_MINOR);
                        return 0;
                case 'y':
                        yes = true;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_TERRAFORM:
                        terraform = optarg;
                        break;
                case ARG_MODULES:
                        modules = optarg;
                        break;
                case ARG_NO_ROLLBACK:
                        no_rollback = true;
                        break;
                case ARG_TF_LOG:
                        tf_log = optarg;
                        break;
                case ARG_WORKERS:
                        workers = true;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "create: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (workers)
                return create_workers(terraform, tf_log, yes);

        /* Phase 1: inputs, all checked before anything is created. */
        r = cli_config_load_unset(config_path, &config);
        if (r < 0)
                return r;
        p = provider_find(config.provider);
        if (!p)
                return log_error_errno(-EINVAL,
                                       "%s: provider '%s': create makes cloud infrastructure "
                                       "(gcp, azure, aws); for a local cluster run 'cloister "
                                       "mini up'.",
                                       config_path, config.provider);
        name = config.cluster_name ?: CLI_CLUSTER_NAME_DEFAULT;
        if (!cluster_name_ok(name))
                return log_error_errno(-EINVAL,
                                       "%s: .clusterName '%s': 1 to 20 lowercase letters, digits "
                                       "and '-', starting with a letter (it prefixes every cloud "
                                       "resource's name).",
                                       config_path, name);
        r = tfvars_from_config(config_path, &config, p, name, &tfvars);
        if (r < 0)
                return r;
        if (access(TF_WORKSPACE, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s/ already exists: a cluster was created from this "
                                       "directory. Run 'cloister terminate' first, or create "
                                       "the new cluster in another directory.",
                                       TF_WORKSPACE);
        if (access(TF_STATE_FILE, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s already exists: it records another cluster. Run "
                                       "'cloister terminate', or create in another directory.",
                                       TF_STATE_FILE);
        if (access(MASTER_SECRET_FILE_DEFAULT, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s already exists: Cloister never overwrites a master "
                                       "secret (it may be another cluster's). Move it somewhere "
                                       "safe before creating a new cluster.",
                                       MASTER_SECRET_FILE_DEFAULT);
        if (access(INIT_SECRET_FILE_DEFAULT, F_OK) == 0)
                return log_error_errno(-EEXIST,
                                       "%s already exists: move it away; create makes a new one "
                                       "for the new cluster.",
                                       INIT_SECRET_FILE_DEFAULT);
        r = tf_find(terraform, &tf);
        if (r < 0)
                goto finish;
        r = tf_modules_dir(modules, p->name, &module_dir);
        if (r < 0)
                goto finish;
        if (tf_log && (r = tf_set_log_level(tf_log)) < 0)
                goto finish;
        printf("Using %s (%s), the module %s/%s.\n", tf.binary, tf.version, module_dir, p->name);

        /* Phase 2: the secrets. Only the init secret's hash leaves this process. */
        r = master_secret_generate(&ms);
        if (r < 0) {
                log_error_errno(r, "Cannot generate the master secret: %m");
                goto finish;
        }
        diag_clear(&d);
        r = master_secret_write(ms, MASTER_SECRET_FILE_DEFAULT, &d);
        if (r < 0) {
                log_error_errno(r, "%s", d.message);
                goto finish;
        }
        created.ms = true;
        r = init_secret_generate_file(INIT_SECRET_FILE_DEFAULT, &init_secret);
        if (r < 0) {
                log_error_errno(r, "Cannot write %s: %m", INIT_SECRET_FILE_DEFAULT);
                goto cleanup;
        }
        created.init_secret = true;
        r = init_secret_hash(init_secret, hash);
        if (r < 0) {
                log_error_errno(r, "Cannot hash the init secret: %m");
                goto cleanup;
        }
        if (json_object_set_new(tfvars, "init_secret_hash", json_string(hash)) < 0) {
                r = log_oom();
                goto cleanup;
        }

        /* Phase 3: the workspace. */
        if (asprintf(&src, "%s/%s", module_dir, p->name) < 0) {
                r = log_oom();
                goto cleanup;
        }
        r = tf_copy_module(src, TF_WORKSPACE);
        if (r < 0)
                goto cleanup;
        if (json_dump_pretty(tfvars, &text) < 0) {
                r = log_oom();
                goto cleanup;
        }
        r = write_file_atomic(TF_WORKSPACE "/" TF_VARS_FILE, text, strlen(text), 0600,
                              WRITE_FILE_EXCLUSIVE);
        if (r < 0) {
                log_error_errno(r, "Cannot write %s/%s: %m", TF_WORKSPACE, TF_VARS_FILE);
                goto cleanup;
        }

        /* Phase 4: terraform. Nothing exists in the cloud before apply. */
        printf("[1/4] terraform init (providers; output in %s)\n", tf.log);
        fflush(stdout);
        r = tf_run(&tf, NULL, TF_ARGS("init", "-input=false", "-no-color"));
        if (r < 0)
                goto nothing_created;
        printf("[2/4] terraform plan\n");
        fflush(stdout);
        r = tf_run(&tf, NULL, TF_ARGS("plan", "-input=false", "-no-color", "-out=tfplan"));
        if (r < 0)
                goto nothing_created;
        print_summary(p->name, tfvars);
        r = tf_ask("Create this cluster?", yes);
        if (r <= 0) {
                if (r == 0)
                        fprintf(stderr, "Creation aborted: nothing was created.\n");
                remove_created(&created, false);
                r = r < 0 ? r : -ECANCELED;
                goto finish;
        }
        printf("[3/4] terraform apply (confidential VMs take minutes to start)\n");
        fflush(stdout);
        r = tf_run(&tf, NULL,
                   TF_ARGS("apply", "-input=false", "-no-color", "-auto-approve", "tfplan"));
        if (r < 0) {
                r = roll_back(&tf, p->name, &created, no_rollback, r);
                goto finish;
        }
        printf("[4/4] reading the outputs\n");
        fflush(stdout);
        r = tf_run(&tf, TF_WORKSPACE "/outputs.json", TF_ARGS("output", "-json"));
        if (r >= 0)
                r = read_outputs(TF_WORKSPACE "/outputs.json", p->name,
                                 json_string_value(json_object_get(tfvars, "tee")), &infra);
        if (r >= 0) {
                r = write_state(TF_STATE_FILE, name, infra);
                if (r < 0)
                        log_error_errno(r, "Cannot write %s: %m", TF_STATE_FILE);
        }
        if (r < 0) {
                r = roll_back(&tf, p->name, &created, no_rollback, r);
                goto finish;
        }
        printf("Cloud infrastructure created: cluster %s, endpoint %s (uid %s).\n"
               "State: %s. Master secret: %s (keep it safe). Next: 'cloister apply --config %s',\n"
               "then 'cloister create --workers'.\n",
               json_string_value(json_object_get(infra, "name")),
               json_string_value(json_object_get(infra, "endpoint")),
               json_string_value(json_object_get(infra, "uid")), TF_STATE_FILE,
               MASTER_SECRET_FILE_DEFAULT, config_path);
        r = 0;
        goto finish;

nothing_created:
        fprintf(stderr, "Nothing was created in the cloud (the apply never ran). Fix the cause "
                        "above and run 'cloister create' again.\n");
cleanup:
        remove_created(&created, true);
finish:
        explicit_wipe(hash, sizeof(hash));
        tf_done(&tf);
        return r;
}
