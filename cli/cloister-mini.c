/* SPDX-License-Identifier: Apache-2.0 */
/* `cloister mini`: runs the local-cluster script (scripts/mini) in place of this process. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/log.h"

/* The Makefile's default PREFIX; where `make install` would put the script. */
#ifndef CLOISTER_PREFIX
#define CLOISTER_PREFIX "/usr/local"
#endif
#define MINI_SCRIPT_INSTALLED CLOISTER_PREFIX "/lib/cloister/mini"

/* Cuts the last path component off p in place; false if there is none. */
static bool path_strip_last(char *p)
{
        char *slash = strrchr(p, '/');

        if (!slash || slash == p)
                return false;
        *slash = '\0';
        return true;
}

/* The build directory: build/bin/cloister → build. NULL if /proc/self/exe cannot be read. */
static char *build_dir(void)
{
        _cleanup_(freep) char *exe = realpath("/proc/self/exe", NULL);

        if (!exe || !path_strip_last(exe) || !path_strip_last(exe))
                return NULL;
        return TAKE_PTR(exe);
}

/* $CLOISTER_MINI_SCRIPT, else the build tree's scripts/mini, else the installed one beside this
 * binary (PREFIX/bin/cloister → PREFIX/lib/cloister/mini), else the default prefix's.
 * *ret_in_tree: the build tree's or $CLOISTER_MINI_SCRIPT (which then get $BUILD, this binary's
 * build directory); an installed script finds the binaries beside itself. */
static int find_script(const char *build, char **ret, bool *ret_in_tree)
{
        const char *env = getenv("CLOISTER_MINI_SCRIPT");
        _cleanup_(freep) char *tree = NULL, *repo = NULL, *beside = NULL;

        *ret_in_tree = false;
        if (env) {
                if (access(env, X_OK) < 0)
                        return log_error_errno(-errno, "$CLOISTER_MINI_SCRIPT=%s cannot be run: %m",
                                               env);
                *ret = strdup(env);
                *ret_in_tree = true;
                return *ret ? 0 : log_oom();
        }
        if (build) {
                repo = strdup(build);
                if (!repo)
                        return log_oom();
                /* build/bin/cloister, or build/san/bin/cloister: the nearest scripts/mini above
                 * the build directory. */
                for (int up = 0; up < 3 && path_strip_last(repo); up++) {
                        _cleanup_(freep) char *candidate = NULL;
                        if (asprintf(&candidate, "%s/scripts/mini", repo) < 0)
                                return log_oom();
                        if (access(candidate, X_OK) == 0) {
                                *ret = TAKE_PTR(candidate);
                                *ret_in_tree = true;
                                return 0;
                        }
                        if (!tree) /* the nearest, for the message */
                                tree = TAKE_PTR(candidate);
                }
                if (asprintf(&beside, "%s/lib/cloister/mini", build) < 0)
                        return log_oom();
                if (access(beside, X_OK) == 0) {
                        *ret = TAKE_PTR(beside);
                        return 0;
                }
        }
        if (access(MINI_SCRIPT_INSTALLED, X_OK) == 0) {
                *ret = strdup(MINI_SCRIPT_INSTALLED);
                return *ret ? 0 : log_oom();
        }
        return log_error_errno(
                -ENOENT,
                "The local-cluster script was not found: $CLOISTER_MINI_SCRIPT is "
                "unset, and neither %s (nor one further up), %s nor " MINI_SCRIPT_INSTALLED
                " is an executable file. Run 'make install' again, or set "
                "$CLOISTER_MINI_SCRIPT.",
                tree ?: "the build tree's scripts/mini (binary location unknown)",
                beside ?: "PREFIX/lib/cloister/mini");
}

static void help(void)
{
        printf("Usage: cloister mini up [--vm | --netns] [--nodes N] [--tee sim-tdx]\n"
               "                        [--kubernetes-version K] | down | status\n"
               "       cloister mini exec [--] COMMAND [ARG...]\n"
               "       cloister mini reboot NODE [--image-version V] [--kubernetes-version K]\n"
               "                            [--join-policy FILE]\n"
               "\n"
               "A local Cloister cluster on this machine, for trying it out and for tests:\n"
               "  up      check what it needs (root, swtpm, tpm2-tools, iproute2; QEMU, OVMF\n"
               "          and the node image for VMs; memory; disk) and name what is missing;\n"
               "          create the nodes, initialise node1 with 'cloister apply', let the\n"
               "          others join through it, verify the cluster, and say how to reach it\n"
               "  exec    run COMMAND in the owner's network namespace, in the workspace, with\n"
               "          these binaries first on PATH ('cloister mini exec -- cloister\n"
               "          verify --cluster'); the host's network is not changed; the exit\n"
               "          status is COMMAND's\n"
               "  down    stop every VM and process, remove the namespaces, the nodes and the\n"
               "          workspace files up wrote\n"
               "  status  which nodes run\n"
               "  reboot  namespace nodes: power-cycle NODE (its number or HOST[:PORT]) onto\n"
               "          the SIMULATED image version V (PCR 11 measures it; default the first\n"
               "          image), carrying Kubernetes K (default: the release it carried), its\n"
               "          TPM state and state disk kept; the bootstrapper starts again with\n"
               "          its options (--join-policy replaced if given). What 'cloister\n"
               "          upgrade apply' runs to replace a node of this cluster\n"
               "\n"
               "--vm (the default wherever VMs can boot: QEMU, OVMF and the node image from\n"
               "'make image'): each node is a QEMU VM booted from the image with OVMF and its\n"
               "own swtpm (real measured boot, dm-verity root, dm-crypt state disk); 2 nodes\n"
               "by default. Where VMs cannot boot, mini says why and falls back to --netns:\n"
               "each node is a process in its own network namespace whose boot is SIMULATED\n"
               "(a synthetic event log replayed into its swtpm); 3 nodes by default. Either\n"
               "way TPM attestation is real, the nodes' attestation keys are pinned by trust\n"
               "on first use (local only), and the host's network is not changed. Needs root.\n"
               "\n"
               "--tee sim-tdx (namespace nodes only; QEMU here has no TDX): the nodes attest\n"
               "with SIMULATED TDX instead: the production TDX verification, under a platform\n"
               "root made for this cluster that the owner's policy names; each node's TPM\n"
               "quotes beside it and names it as a member (docs/tdx.md).\n"
               "\n"
               "--kubernetes-version K (namespace nodes only): the simulated image carries\n"
               "Kubernetes K (its os-release says so, PCR 11 measures it, the kubeadm test\n"
               "double runs as K) and the cluster is applied with K; without it the image\n"
               "names no release. For 'cloister upgrade apply --kubernetes-version'\n"
               "(docs/upgrade.md, \"Kubernetes versions\").\n"
               "\n"
               "The workspace (the current directory, or 'cloister -C DIR mini ...') gets the\n"
               "owner's files as every command reads them: cloister.json (the policy),\n"
               "cloister-state.json, cloister-mastersecret.json, cloister-init-secret and\n"
               "cloister-admin.conf (VMs too); up refuses a workspace that holds another\n"
               "cluster's. The nodes live in its cloister-mini/ (VMs: cloister-mini-vm/);\n"
               "$MINI_DIR overrides where.\n"
               "\n"
               "Runs the script scripts/mini (installed: PREFIX/lib/cloister/mini) with these\n"
               "arguments; $CLOISTER_MINI_SCRIPT overrides where it is.\n");
}

int verb_mini(int argc, char *argv[], void *userdata)
{
        _cleanup_(freep) char *build = NULL, *script = NULL;
        _cleanup_(freep) char **args = NULL;
        bool in_tree;
        int r;

        bool exec = strcmp(argv[1], "exec") == 0, reboot = strcmp(argv[1], "reboot") == 0;

        /* --help anywhere (mini down --help too) prints help and runs nothing; after exec's
         * command it is the command's (mini exec -- cloister --help). */
        for (int i = 1; i < argc && !(exec && i > 2); i++)
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        help();
                        return 0;
                }
        /* The verb table guarantees argv[1]. */
        if (strcmp(argv[1], "up") != 0 && strcmp(argv[1], "down") != 0 &&
            strcmp(argv[1], "status") != 0 && !exec && !reboot)
                return log_error_errno(-EUSAGE,
                                       "cloister mini: unknown command '%s': use up, down, status, "
                                       "exec or reboot. See 'cloister mini --help'.",
                                       argv[1]);
        if (exec && (argc < 3 || (argc == 3 && strcmp(argv[2], "--") == 0)))
                return log_error_errno(-EUSAGE,
                                       "cloister mini exec: which command? 'cloister mini exec "
                                       "-- cloister status'.");
        if (exec && argv[2][0] == '-' && strcmp(argv[2], "--") != 0)
                return log_error_errno(-EUSAGE,
                                       "cloister mini exec: unknown option '%s': the command goes "
                                       "after '--' ('cloister mini exec -- COMMAND'). See "
                                       "'cloister mini --help'.",
                                       argv[2]);
        /* down and status take nothing: an unknown option must not tear a cluster down. */
        if (!exec && !reboot && strcmp(argv[1], "up") != 0 && argc > 2)
                return log_error_errno(-EUSAGE,
                                       "cloister mini %s: unexpected argument '%s'. See "
                                       "'cloister mini --help'.",
                                       argv[1], argv[2]);
        if (geteuid() != 0)
                return log_error_errno(-EPERM,
                                       "cloister mini %s needs root: the local cluster lives in "
                                       "network namespaces with a bridge, TPM simulators and "
                                       "loop-backed or VM disks. Run it as root (sudo cloister "
                                       "mini %s).",
                                       argv[1], argv[1]);
        build = build_dir();
        r = find_script(build, &script, &in_tree);
        if (r < 0 || !script)
                return r < 0 ? r : -ENOENT;
        if (in_tree && build && setenv("BUILD", build, /* overwrite= */ 0) < 0)
                return log_error_errno(-errno, "Cannot set $BUILD: %m");
        /* Messages name the command the user typed, not the script; with -C they give it. */
        if (setenv("CLOISTER_MINI_NAME", "cloister mini", /* overwrite= */ 1) < 0 ||
            setenv("CLOISTER_MINI_CD", cli_workspace_given() ? "1" : "0", /* overwrite= */ 1) < 0)
                return log_error_errno(-errno, "Cannot set the script's environment: %m");

        /* script, then every argument after "mini" unchanged. */
        args = calloc((size_t) argc + 1, sizeof(char *));
        if (!args)
                return log_oom();
        args[0] = script;
        for (int i = 1; i < argc; i++)
                args[i] = argv[i];
        (void) fflush(stdout);
        execv(script, args);
        return log_error_errno(-errno, "Cannot run %s: %m", script);
}
