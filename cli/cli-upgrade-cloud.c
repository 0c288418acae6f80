/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 'cloister upgrade apply' on a cluster made by 'cloister create' (docs/upgrade.md, "Clouds"):
 * the new image goes into the Terraform workspace's variables, one group at a time (the
 * workers through worker_image_id, then the control plane through image_id), and terraform
 * applies it; the group's update policy recreates its nodes one at a time, each under its name
 * with its state disk and address. Terraform runs by argument vector (cli-terraform.c), in the
 * same workspace as create, never through a shell.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-terraform.h"
#include "cli-upgrade.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"

int cli_upgrade_cloud(const char *state_path, char provider[static CLI_UPGRADE_CLOUD_MAX])
{
        _cleanup_(json_decrefp) json_t *st = NULL;
        const char *p;
        Diag d;
        int r;

        provider[0] = '\0';
        if (access(state_path, F_OK) < 0)
                return 0;
        diag_clear(&d);
        r = json_parse_file(state_path, JSON_FILE_SIZE_MAX, &st, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        p = json_string_value(json_object_get(json_object_get(st, "infrastructure"), "provider"));
        if (!p)
                return 0;
        if (strlen(p) >= CLI_UPGRADE_CLOUD_MAX ||
            strspn(p, "abcdefghijklmnopqrstuvwxyz") != strlen(p))
                return log_error_errno(-EBADMSG,
                                       "%s: infrastructure.provider is not a cloud's "
                                       "name.",
                                       state_path);
        (void) snprintf(provider, CLI_UPGRADE_CLOUD_MAX, "%s", p);
        return 1;
}

bool cli_upgrade_image_id_ok(const char *id)
{
        size_t n = id ? strlen(id) : 0;

        /* As the clouds name images: projects/P/global/images/I, a self link, an ARM ID, an
         * AMI. Nothing that terraform or a JSON reader could take for something else. */
        return n >= 1 && n <= CLI_UPGRADE_IMAGE_ID_MAX &&
               strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.:-") ==
                       n &&
               id[0] != '-';
}

static int tfvars_load(json_t **ret)
{
        Diag d;
        int r;

        if (access(TF_WORKSPACE, F_OK) < 0)
                return log_error_errno(-ENOENT,
                                       "%s/ is missing: the cluster's Terraform workspace (made "
                                       "by 'cloister create') is not here. Run this where the "
                                       "cluster was created.",
                                       TF_WORKSPACE);
        diag_clear(&d);
        r = json_parse_file(TF_WORKSPACE "/" TF_VARS_FILE, JSON_FILE_SIZE_MAX, ret, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (!json_is_object(*ret))
                return log_error_errno(-EBADMSG, "%s/%s is not a JSON object.", TF_WORKSPACE,
                                       TF_VARS_FILE);
        return 0;
}

int cli_upgrade_cloud_check(const char *image_id, const char *terraform, char *ret_current,
                            size_t current_size)
{
        _cleanup_(json_decrefp) json_t *tfvars = NULL;
        const json_t *n;
        const char *cur, *file, *workers;
        Terraform tf = {};
        int r;

        r = tfvars_load(&tfvars);
        if (r < 0)
                return r;
        n = json_object_get(tfvars, "control_plane_count");
        /* The further control planes are single instances (terraform/<cloud>/modules/
         * control_plane_nodes) that a new template never replaces: they would stay on the old
         * image, and the final policy would refuse them at their next rejoin. */
        if (n && (!json_is_integer(n) || json_integer_value(n) != 1))
                return log_error_errno(-EOPNOTSUPP,
                                       "upgrade apply: this cluster has %s control planes: "
                                       "the further ones are single instances that a new "
                                       "image does not replace (the roll would leave them on "
                                       "the old image, refused by the final policy). Only a "
                                       "cluster of one control plane is upgraded yet "
                                       "(docs/upgrade.md). Nothing was changed.",
                                       json_is_integer(n) ? "several" : "an unknown number of");
        cur = json_string_value(json_object_get(tfvars, "image_id"));
        file = json_string_value(json_object_get(tfvars, "image_file"));
        workers = json_string_value(json_object_get(tfvars, "worker_image_id"));
        if (!(cur && *cur) == !(file && *file))
                return log_error_errno(-EBADMSG,
                                       "%s/%s sets %s of image_id and image_file: it was not "
                                       "written by 'cloister create'.",
                                       TF_WORKSPACE, TF_VARS_FILE, cur ? "both" : "neither");
        if (cur && strcmp(cur, image_id) == 0 && !(workers && *workers))
                return log_error_errno(-EALREADY,
                                       "--image-id %s: the cluster runs that image already "
                                       "(%s/%s). Give the new image's ID.",
                                       image_id, TF_WORKSPACE, TF_VARS_FILE);
        /* Terraform is needed at step 2: found (and its version checked) before step 1. */
        r = tf_find(terraform, &tf);
        tf_done(&tf);
        if (r < 0)
                return log_error_errno(r, "upgrade apply: Terraform is needed to roll the "
                                          "nodes (above). Nothing was changed.");
        (void) snprintf(ret_current, current_size, "%s", cur ?: file);
        return 0;
}

int cli_upgrade_cloud_roll(const char *terraform, const char *role, const char *image_id)
{
        _cleanup_(json_decrefp) json_t *tfvars = NULL;
        _cleanup_(freep) char *text = NULL;
        bool cp = strcmp(role, "control-plane") == 0;
        Terraform tf = {};
        int r;

        r = tfvars_load(&tfvars);
        if (r < 0)
                return r;
        if (cp) {
                /* The cluster's image: the workers run it already (worker_image_id), so only
                 * the control plane's template changes. An uploaded image_file is no longer
                 * used by any node and goes with it. */
                if (json_object_set_new(tfvars, "image_id", json_string(image_id)) < 0)
                        return log_oom();
                (void) json_object_del(tfvars, "image_file");
                (void) json_object_del(tfvars, "worker_image_id");
        } else if (json_object_set_new(tfvars, "worker_image_id", json_string(image_id)) < 0)
                return log_oom();
        if (json_dump_pretty(tfvars, &text) < 0)
                return log_oom();
        r = tf_find(terraform, &tf);
        if (r < 0)
                return r;
        r = write_file_atomic(TF_WORKSPACE "/" TF_VARS_FILE, text, strlen(text), 0600,
                              WRITE_FILE_SYNC);
        if (r < 0)
                log_error_errno(r, "Cannot write %s/%s: %m", TF_WORKSPACE, TF_VARS_FILE);
        if (r >= 0) {
                printf("  terraform init (%s)\n", tf.binary);
                r = tf_run(&tf, NULL, TF_ARGS("init", "-input=false", "-no-color"));
        }
        if (r >= 0) {
                printf("  terraform plan: the %s group's image -> %s\n", role, image_id);
                r = tf_run(&tf, NULL, TF_ARGS("plan", "-input=false", "-no-color", "-out=tfplan"));
        }
        if (r >= 0) {
                printf("  terraform apply: the %s group recreates its nodes one at a time\n", role);
                (void) fflush(stdout);
                r = tf_run(
                        &tf, NULL,
                        TF_ARGS("apply", "-input=false", "-no-color", "-auto-approve", "tfplan"));
        }
        tf_done(&tf);
        return r;
}
