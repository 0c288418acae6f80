/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-json.h"
#include "cli.h"
#include "cloister-version.h" /* generated: the commit, its date, tpm2-tss */
#include "cloister/crypto.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/version.h"

static int verb_help(int argc, char *argv[], void *userdata);
static void help(void);
static int verb_version(int argc, char *argv[], void *userdata);

static const Verb verbs[] = {
        { "master-secret", 1, VERB_ANY, verb_master_secret,
          "generate | check: the owner's master secret file" },
        { "attestation", 1, VERB_ANY, verb_attestation,
          "issue | show | verify | verify-report: attestation evidence offline" },
        { "init-secret", 1, VERB_ANY, verb_init_secret,
          "generate | hash: the secret that proves the owner to a new node" },
        { "create", 0, VERB_ANY, verb_create,
          "the cluster's cloud infrastructure (GCP, Azure, AWS) with Terraform" },
        { "apply", 0, VERB_ANY, verb_apply,
          "attest the first node and initialise the cluster over aTLS" },
        { "recover", 0, VERB_ANY, verb_recover,
          "after a full outage: attest control planes, hand them the master secret" },
        { "status", 0, VERB_ANY, verb_status,
          "the cluster's members, roles, last admission and policy digest" },
        { "verify", 0, VERB_ANY, verb_verify,
          "attest a node now and print every check (PCRs, cluster ID in PCR 15)" },
        { "logs", 0, VERB_ANY, verb_logs,
          "a node's bootstrapper log of this boot, for its owner (attested first)" },
        { "policy", 1, VERB_ANY, verb_policy,
          "test | push: which nodes a new policy would refuse; change the cluster's policy" },
        { "node", 1, VERB_ANY, verb_node,
          "remove: take a member out of the cluster's membership (owner-authenticated)" },
        { "upgrade", 1, VERB_ANY, verb_upgrade,
          "check: which PCRs a new image's signed measurements file changes" },
        { "control-plane", 1, VERB_ANY, verb_control_plane,
          "authorize: let the owner make a further node a control plane" },
        { "config", 1, VERB_ANY, verb_config,
          "generate | fetch-measurements: a cluster configuration (policy, defaults)" },
        { "terminate", 0, VERB_ANY, verb_terminate,
          "destroy what create made; keeps the master secret and the configuration" },
        { "mini", 1, VERB_ANY, verb_mini,
          "up | down | status | exec: a local cluster in network namespaces or VMs (root)" },
        { "help", 0, 1, verb_help, "this list, or a command's own help: 'cloister help verify'" },
        { "version", 0, 1, verb_version,
          "the version, commit, and the OpenSSL and tpm2-tss it runs with" },
        {},
};

/* 'cloister help VERB' is 'cloister VERB --help'. */
static int verb_help(int argc, char *argv[], void *userdata)
{
        char *args[] = { argc > 1 ? argv[1] : NULL, (char *) "--help", NULL };

        if (argc <= 1) {
                help();
                return 0;
        }
        return verbs_dispatch("cloister", 2, args, verbs, userdata);
}

static int print_version(OutputFormat output)
{
        if (output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *o = json_pack(
                        "{s:i,s:s,s:s,s:s,s:s,s:s,s:s}", "schemaVersion", RESULT_SCHEMA_VERSION,
                        "command", "cloister version", "version", CLOISTER_VERSION, "commit",
                        CLOISTER_COMMIT, "commitDate", CLOISTER_COMMIT_DATE, "openssl",
                        crypto_library_version(), "tpm2Tss", CLOISTER_TSS2_VERSION);
                if (!o || result_print(o) < 0)
                        return log_oom();
                return 0;
        }
        printf("cloister %s\n"
               "commit    %s (%s)\n"
               "OpenSSL   %s\n"
               "tpm2-tss  %s (built against)\n",
               CLOISTER_VERSION, CLOISTER_COMMIT, CLOISTER_COMMIT_DATE, crypto_library_version(),
               CLOISTER_TSS2_VERSION);
        return 0;
}

static int verb_version(int argc, char *argv[], void *userdata)
{
        const CliOptions *o = userdata;

        if (argc > 1) {
                if (strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)
                        return log_error_errno(-EUSAGE,
                                               "cloister version: unexpected argument '%s'. See "
                                               "'cloister version --help'.",
                                               argv[1]);
                printf("Usage: cloister [-o text|json] version\n\n"
                       "The version, the commit it was built from and that commit's date, the\n"
                       "OpenSSL library in use and the tpm2-tss it was built against.\n");
                return 0;
        }
        return print_version(o->output);
}

/* The command as its help is asked for: "verify", or "attestation verify" for a verb with
 * sub-verbs. */
static void command_name(int argc, char *argv[], char *buf, size_t n)
{
        const Verb *v = NULL;

        for (const Verb *p = verbs; p->name; p++)
                if (strcmp(p->name, argv[0]) == 0)
                        v = p;
        if (v && v->min_args > 0 && argc > 1 && argv[1][0] != '-')
                (void) snprintf(buf, n, "%s %s", argv[0], argv[1]);
        else
                (void) snprintf(buf, n, "%s", argv[0]);
}

static void help(void)
{
        printf("Usage: cloister [OPTIONS] COMMAND ...\n"
               "\n"
               "Create, verify and recover confidential Kubernetes clusters.\n"
               "\n"
               "Commands:\n");
        verbs_print_help(verbs, NULL);
        printf("\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "  -o --output=FORMAT     text (default) or json\n"
               "  -v --verbose           Debug logging (never shows secrets)\n"
               "  -C --workspace=DIR     Run as if started in DIR (before or after the\n"
               "                         command): the workspace whose cloister.json,\n"
               "                         cloister-state.json, secrets and kubeconfig give\n"
               "                         every command its defaults\n"
               "     --debug             Append a debug-level log of this run (and of the\n"
               "                         cloister commands it starts: $CLOISTER_DEBUG=1)\n"
               "                         to the workspace's cloister-debug.log (0600;\n"
               "                         never a secret), anywhere on the command line\n"
               "\n"
               "Run 'cloister COMMAND --help' for a command's own options.\n"
               "\n"
               "Exit status: 0 success, 1 failure (one error line says why, and the\n"
               "verdict line where there is one), 2 usage error (an unknown command or\n"
               "option, a missing argument, a malformed value: nothing was done).\n");
}

static int parse_argv(int argc, char *argv[], CliOptions *o)
{
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "output", required_argument, NULL, 'o' },
                { "verbose", no_argument, NULL, 'v' },
                {},
        };
        int c;

        /* '+': stop at the first non-option, the command; its options are its own. */
        while ((c = getopt_long(argc, argv, "+ho:v", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        return print_version(o->output);
                case 'o':
                        o->output = output_format_from_string(optarg);
                        if (o->output < 0)
                                return log_error_errno(-EUSAGE,
                                                       "Unknown output format '%s': use text or "
                                                       "json.",
                                                       optarg);
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return -EUSAGE;
                }
        }
        return 1;
}

int main(int argc, char *argv[])
{
        CliOptions o = { .output = OUTPUT_TEXT };
        _cleanup_(freep) char *command_line = NULL;
        _cleanup_(closep) int debug_fd = -1;
        const char *workspace, *env_debug;
        char command[128];
        bool debug;
        int r;

        log_parse_environment();
        command_line = cli_command_line(argc, argv);
        r = cli_global_options(&argc, argv, &workspace, &debug);
        if (r >= 0 && workspace)
                r = cli_workspace_enter(workspace);
        /* Set by --debug for the commands a run starts ('mini up' and 'mini exec'). */
        env_debug = getenv("CLOISTER_DEBUG");
        debug = debug || (env_debug && strcmp(env_debug, "1") == 0);
        if (r >= 0 && debug) {
                debug_fd = cli_debug_log_open(command_line ?: "cloister",
                                              CLOISTER_VERSION " (commit " CLOISTER_COMMIT ")");
                r = MIN(debug_fd, 0);
        }
        if (r < 0)
                return exit_status_from_errno(r);
        r = parse_argv(argc, argv, &o);
        if (r <= 0)
                return exit_status_from_errno(r);
        if (optind >= argc) {
                log_error("cloister: missing command. See 'cloister --help'.");
                return exit_status_from_errno(-EUSAGE);
        }
        /* -o json: a verb without a result document refuses it; a failure leaves an error
         * document on stdout (cli-json.c, docs/json.md). */
        command_name(argc - optind, argv + optind, command, sizeof(command));
        r = cli_json_begin(&o, argc - optind, argv + optind);
        if (r >= 0)
                r = verbs_dispatch("cloister", argc - optind, argv + optind, verbs, &o);
        /* getopt said what was wrong (an unknown option, one without its value) on a line of its
         * own: the error line names the command and where its options are. */
        if (r == -EUSAGE && !log_last_error()[0])
                log_error("cloister %s: a usage error (see above). See 'cloister %s --help'.",
                          command, command);
        r = cli_json_finish(&o, r);
        log_debug("Exit status %d%s%s.", exit_status_from_errno(r), r < 0 ? ": " : "",
                  r < 0 && r != -EUSAGE ? strerror(-r)
                  : r == -EUSAGE        ? "usage error"
                                        : "");
        return exit_status_from_errno(r);
}
