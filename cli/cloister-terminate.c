/* SPDX-License-Identifier: Apache-2.0 */
/* cloister terminate: destroy what create made, keep the master secret and the configuration. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-terraform.h"
#include "cli.h"
#include "cloister/init-secret.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/mastersecret.h"

#define KUBECONFIG_DEFAULT "cloister-admin.conf"

/* The provider, uid and kubeconfig the state file records (defaults if it does not). */
static void state_facts(const char **provider, char uid[static 16], char *kubeconfig, size_t n)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *kc;
        Diag d;

        diag_clear(&d);
        *provider = NULL;
        (void) snprintf(kubeconfig, n, "%s", KUBECONFIG_DEFAULT);
        if (json_parse_file(TF_STATE_FILE, JSON_FILE_SIZE_MAX, &j, &d) < 0)
                return;
        kc = json_string_value(json_object_get(j, "kubeconfig"));
        if (kc && *kc && !strchr(kc, '/') && strlen(kc) < n)
                (void) snprintf(kubeconfig, n, "%s", kc);
        {
                json_t *infra = json_object_get(j, "infrastructure");
                const char *p = json_string_value(json_object_get(infra, "provider"));
                const char *u = json_string_value(json_object_get(infra, "uid"));
                if (u && strlen(u) == 8 && strspn(u, "0123456789abcdef") == 8)
                        memcpy(uid, u, 9);
                static const char *const known[] = { "gcp", "azure", "aws", NULL };
                for (size_t i = 0; p && known[i]; i++)
                        if (strcmp(p, known[i]) == 0)
                                *provider = known[i];
        }
}

int verb_terminate(int argc, char *argv[], void *userdata)
{
        enum { ARG_TERRAFORM = 0x100, ARG_TF_LOG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "yes", no_argument, NULL, 'y' },
                { "terraform", required_argument, NULL, ARG_TERRAFORM },
                { "tf-log", required_argument, NULL, ARG_TF_LOG },
                {},
        };
        const char *terraform = NULL, *tf_log = NULL, *provider;
        char uid[16], kubeconfig[256];
        Terraform tf = {};
        bool yes = false;
        int c, r;

        (void) userdata;
        optind = 0;
        while ((c = getopt_long(argc, argv, "hy", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister terminate [-y] [--terraform PATH] [--tf-log "
                               "LEVEL]\n\n"
                               "Destroys the cluster 'cloister create' made from this directory:\n"
                               "terraform init and destroy in " TF_WORKSPACE "/. Asks first\n"
                               "(unless -y). Only when the destroy succeeded are the "
                               "workspace,\n" TF_STATE_FILE
                               ", the kubeconfig and the init secret removed;\n"
                               "the master secret and the configuration are kept. Safe to run\n"
                               "again, e.g. after a destroy that failed.\n");
                        return 0;
                case 'y':
                        yes = true;
                        break;
                case ARG_TERRAFORM:
                        terraform = optarg;
                        break;
                case ARG_TF_LOG:
                        tf_log = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "terminate: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        uid[0] = '\0';
        state_facts(&provider, uid, kubeconfig, sizeof(kubeconfig));
        if (access(TF_WORKSPACE, F_OK) < 0) {
                printf("Nothing to terminate: %s/ does not exist here (terminated already, or "
                       "the cluster was not made by 'cloister create' in this directory).\n",
                       TF_WORKSPACE);
                return 0;
        }
        if (!uid[0])
                (void) tf_state_uid(uid);
        printf("You are about to terminate the cluster of %s/ (uid %s): every node and its state "
               "disk will be DESTROYED, and all data in the cluster LOST. The master secret (%s) "
               "and the configuration are kept.\n",
               TF_WORKSPACE, *uid ? uid : "unknown", MASTER_SECRET_FILE_DEFAULT);
        r = tf_ask("Terminate the cluster?", yes);
        if (r <= 0) {
                if (r == 0)
                        printf("Termination aborted: nothing was changed.\n");
                return r < 0 ? r : -ECANCELED;
        }
        r = tf_find(terraform, &tf);
        if (r >= 0 && tf_log)
                r = tf_set_log_level(tf_log);
        if (r >= 0) {
                printf("[1/2] terraform init\n");
                fflush(stdout);
                r = tf_run(&tf, NULL, TF_ARGS("init", "-input=false", "-no-color"));
        }
        if (r >= 0) {
                printf("[2/2] terraform destroy\n");
                fflush(stdout);
                r = tf_run(&tf, NULL,
                           TF_ARGS("destroy", "-input=false", "-no-color", "-auto-approve"));
        }
        tf_done(&tf);
        if (r < 0) {
                fprintf(stderr,
                        "The cluster was not (entirely) destroyed. %s/ and %s are kept: run "
                        "'cloister terminate' again (a destroy can fail while the cloud still "
                        "tears resources down), or delete what is left by hand.\n",
                        TF_WORKSPACE, TF_STATE_FILE);
                tf_print_manual_cleanup(provider ?: "", uid);
                return r;
        }
        r = tf_workspace_remove();
        if (r < 0)
                return r;
        {
                const char *files[] = { TF_STATE_FILE, kubeconfig, INIT_SECRET_FILE_DEFAULT, NULL };
                for (size_t i = 0; files[i]; i++)
                        if (unlink(files[i]) < 0 && errno != ENOENT)
                                log_warning("Cannot remove %s: %m. Remove it by hand.", files[i]);
        }
        printf("Cluster terminated: its cloud resources are destroyed. Kept: %s and the "
               "configuration.\n",
               MASTER_SECRET_FILE_DEFAULT);
        return 0;
}
