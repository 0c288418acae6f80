/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Driving terraform (or tofu) for `cloister create` and `cloister terminate`: found on PATH or
 * given, its version checked, always run by argument vector with -chdir into the workspace,
 * never through a shell; its output goes to a log in the workspace. */

#include <stdbool.h>

#define TF_WORKSPACE  "cloister-terraform"
#define TF_OUTPUT_LOG "terraform-output.log"
#define TF_VARS_FILE  "terraform.tfvars.json"
#define TF_STATE_FILE "cloister-state.json"
/* The oldest release whose behaviour create relies on (-chdir, output -json, plan -out with
 * apply of the saved plan, variable validation and preconditions). */
#define TF_VERSION_MIN_MAJOR 1
#define TF_VERSION_MIN_MINOR 5

typedef struct Terraform {
        char *binary;     /* what is run (a path) */
        char version[32]; /* as it reports it */
        char log[4096];   /* TF_WORKSPACE/TF_OUTPUT_LOG */
} Terraform;

/* given (--terraform PATH) or terraform, then tofu, on PATH; checks `version -json`. Logs one
 * line that names the fix on failure. */
int tf_find(const char *given, Terraform *tf);
void tf_done(Terraform *tf);
/* TF_LOG=level and TF_LOG_PATH=<workspace>/terraform.log for the runs that follow. */
int tf_set_log_level(const char *level);
/* Runs BINARY -chdir=TF_WORKSPACE args... (a NULL-terminated array: TF_ARGS("init", ...));
 * stdout to stdout_path (or the log), stderr to the log. Returns 0, or -EPROTO after printing
 * Terraform's error lines and naming the log; -ENOENT if the binary could not be run. */
int tf_run(const Terraform *tf, const char *stdout_path, const char *const args[]);
#define TF_ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
/* The directory holding the module of provider (gcp, azure, aws): given, or
 * $CLOISTER_TERRAFORM_MODULES, or next to the binary (../share/cloister/terraform, then the
 * source tree's terraform/). */
int tf_modules_dir(const char *given, const char *provider, char **ret);
/* Copies the module directory src (its .tf and .hcl files and sub-directories) to dst. */
int tf_copy_module(const char *src, const char *dst);
/* Removes the workspace and everything in it. */
int tf_workspace_remove(void);
/* The cluster's uid from the workspace's terraform.tfstate (random_id.uid), if it has one. */
int tf_state_uid(char uid[static 16]);
/* How to find what is left of a cluster by hand, per provider. */
void tf_print_manual_cleanup(const char *provider, const char *uid);
/* Asks question on the terminal; refuses (-EINVAL) without one unless yes. 1 yes, 0 no. */
int tf_ask(const char *question, bool yes);
