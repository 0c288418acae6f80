/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister upgrade check: what a new image would change. The configuration's current PCR
 * expectations against a new signed measurements file, checked as 'config fetch-measurements'
 * checks one (signature over the exact bytes before parsing, the same parse rule, the version
 * against the configuration's measurementsSource); nothing is written (docs/policy-update.md).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-upgrade.h"
#include "cli.h"
#include "cloister/attest.h"
#include "cloister/evidence.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/measurements.h"
#include "cloister/version.h"

static void check_help(void)
{
        printf("Usage: cloister upgrade check --measurements FILE (--pubkey PUB.pem\n"
               "         [--signature FILE] | --insecure-no-signature) [--config FILE]\n"
               "         [--state-file FILE]\n\n"
               "What moving the cluster to a new image would change, before anything does:\n"
               "the configuration's PCR expectations against the new image's measurements\n"
               "file (what 'cloister-measure image IMAGE -o json' prints, signed with\n"
               "'cloister-measure sign'). Checked as 'cloister config fetch-measurements'\n"
               "checks it: the signature over the exact bytes before anything is parsed\n"
               "(default FILE.sig), PCR 4, 9 and 11 present and any other PCR predicted zero,\n"
               "and its measurementsVersion newer than the one the configuration records.\n"
               "Prints one line per PCR (unchanged, or old -> new) and which PCRs change:\n"
               "nodes booted from the new image are refused by the current policy until a\n"
               "policy that admits them is pushed ('cloister upgrade apply'). In a cluster's\n"
               "workspace (a state file recording an initialised cluster) it then attests\n"
               "every member and says which image each runs: the current or the new one.\n"
               "Nothing is written. Exit 0 when the file is newer and checks out, 1\n"
               "otherwise.\n\n"
               "  --config FILE             default the workspace's " CLI_CONFIG_FILE_DEFAULT "\n"
               "  --state-file FILE         default " CLI_STATE_FILE_DEFAULT " (if it exists)\n"
               "  --insecure-no-signature   take an unsigned file (development only)\n");
}

static void pcr_text(const PcrExpectation *e, char buf[static 80])
{
        char hex[65];

        if (!e->present) {
                (void) snprintf(buf, 80, "(not checked)");
                return;
        }
        hex_encode_buf(e->expected, 32, hex, sizeof(hex));
        (void) snprintf(buf, 80, "%s%s", hex, e->warn_only ? " (warn-only)" : "");
}

/* Which image each member runs, if the workspace has a cluster: attested with the policy of
 * both images (the configuration's and m's PCRs as two measurement sets). */
static int print_node_images(const CliConfig *config, const MeasurementsFile *m,
                             const char *state_path, bool state_given)
{
        _cleanup_(json_decrefp) json_t *new_att = NULL, *both = NULL;
        const CliMeasurementsSource *src = &config->measurements_source;
        char endpoint[CLI_URL_MAX], from[ATTEST_SET_NAME_MAX + 1], to[ATTEST_SET_NAME_MAX + 1];
        uint8_t cid[32];
        unsigned changed;
        json_t *ms;
        int r;

        r = cli_workspace_cluster(state_path, state_given, cid, endpoint, sizeof(endpoint));
        if (r <= 0)
                return r;
        if (json_object_get(json_object_get(config->json, "attestation"), "measurementSets")) {
                printf("\nAn upgrade is under way (the policy admits several measurement sets): "
                       "'cloister verify --cluster' shows which node runs which image.\n");
                return 0;
        }
        new_att = json_deep_copy(json_object_get(config->json, "attestation"));
        ms = json_object_get(new_att, "measurements");
        if (!json_is_object(ms))
                return 0;
        for (unsigned i = 0; i < EVIDENCE_PCR_COUNT; i++)
                if (i != 15 && m->pcrs[i].present &&
                    cli_measurements_set_pcr(ms, i, m->pcrs[i].expected, m->pcrs[i].warn_only) < 0)
                        return log_oom();
        cli_upgrade_set_name(src->present ? src->image_version : NULL, "current", from);
        cli_upgrade_set_name(m->image_version, "new", to);
        if (strcmp(from, to) == 0)
                return 0; /* the same version: no roll to tell apart */
        both = cli_upgrade_both_policy(json_object_get(config->json, "attestation"), new_att, from,
                                       to, &changed);
        if (!both)
                return log_oom();
        if (changed == 0)
                return 0;
        printf("\n");
        r = cli_upgrade_print_node_images(both, cid, endpoint);
        return r == -ENOMEM ? r : 0; /* an unreachable cluster was said; the file checked out */
}

static int upgrade_check_verb(int argc, char *argv[], void *userdata)
{
        enum {
                ARG_CONFIG = 0x100,
                ARG_MEASUREMENTS,
                ARG_PUBKEY,
                ARG_SIGNATURE,
                ARG_INSECURE,
                ARG_STATE
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "measurements", required_argument, NULL, ARG_MEASUREMENTS },
                { "pubkey", required_argument, NULL, ARG_PUBKEY },
                { "signature", required_argument, NULL, ARG_SIGNATURE },
                { "insecure-no-signature", no_argument, NULL, ARG_INSECURE },
                { "state-file", required_argument, NULL, ARG_STATE },
                {},
        };
        const char *config_path = NULL, *path = NULL, *pubkey = NULL, *sig_path = NULL,
                   *state_path = CLI_STATE_FILE_DEFAULT;
        bool state_given = false;
        _cleanup_(cli_config_done) CliConfig config = {};
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        _cleanup_(freep) uint8_t *data = NULL, *sig = NULL, *pub = NULL;
        _cleanup_(freep) char *default_sig = NULL;
        size_t size = 0, sig_size = 0, pub_size = 0;
        const CliMeasurementsSource *src;
        bool insecure = false;
        char changed[128] = "";
        unsigned n_changed = 0;
        Diag d;
        int c, r;

        (void) userdata;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        check_help();
                        return 0;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_MEASUREMENTS:
                        path = optarg;
                        break;
                case ARG_PUBKEY:
                        pubkey = optarg;
                        break;
                case ARG_SIGNATURE:
                        sig_path = optarg;
                        break;
                case ARG_INSECURE:
                        insecure = true;
                        break;
                case ARG_STATE:
                        state_path = optarg;
                        state_given = true;
                        break;
                default:
                        return log_error_errno(-EUSAGE, "See 'cloister upgrade check --help'.");
                }
        (void) cli_workspace_config_default(NULL, &config_path);
        if (optind < argc || !path || !config_path)
                return log_error_errno(-EUSAGE, "upgrade check: give --measurements FILE (and "
                                                "--config FILE outside the workspace). See "
                                                "--help.");
        if (insecure == !!pubkey || (insecure && sig_path))
                return log_error_errno(-EUSAGE,
                                       "upgrade check: give --pubkey PUB.pem (the key the image "
                                       "build signs with), or --insecure-no-signature alone.");

        r = cli_config_load(config_path, &config);
        if (r < 0)
                return r;
        /* TDX evidence without collateral: the user's cache, fetched when missing or stale. */
        r = cli_tdx_collateral_setup(NULL, NULL, &config, false);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = attest_policy_parse(config.policy, strlen(config.policy), config.policy_source, &pol,
                                &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        /* A variant with PCRs pins the image ones (attest_policy_check_cluster()). */
        if (!pol->pcrs[4].present && !pol->pcrs[9].present && !pol->pcrs[11].present)
                return log_error_errno(-EINVAL,
                                       "%s: a %s configuration checks nodes by their launch "
                                       "measurement, not by PCRs: compare launch measurements "
                                       "instead.",
                                       config_path, attest_variant_to_string(pol->variant));

        /* The signature over the exact bytes, before any of them is parsed. */
        r = read_full_file(path, MEASUREMENTS_FILE_SIZE_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m (at most %u bytes).", path,
                                       MEASUREMENTS_FILE_SIZE_MAX);
        if (insecure)
                log_warning("INSECURE: %s is taken without a signature: whoever could change it "
                            "chose what this check compares with.",
                            path);
        else {
                if (!sig_path) {
                        if (asprintf(&default_sig, "%s.sig", path) < 0)
                                return log_oom();
                        sig_path = default_sig;
                }
                r = read_full_file(sig_path, MEASUREMENTS_SIGNATURE_MAX, &sig, &sig_size);
                if (r < 0)
                        return log_error_errno(r,
                                               "%s: cannot read the signature: %m (publish the "
                                               ".sig 'cloister-measure sign' writes, or name it "
                                               "with --signature).",
                                               sig_path);
                r = read_full_file(pubkey, 16384, &pub, &pub_size);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read: %m", pubkey);
                diag_clear(&d);
                r = measurements_verify(data, size, sig, sig_size, pub, pub_size, &d);
                if (r < 0)
                        return log_error_errno(r, "%s: %s", path, d.message);
        }
        r = cli_measurements_parse(data, size, path, &m);
        if (r < 0)
                return r;

        /* Rollback: a signature proves who made a file, not that it is the latest. */
        src = &config.measurements_source;
        if (m->format_version < 2 || m->measurements_version <= 0)
                return log_error_errno(-EPROTONOSUPPORT,
                                       "%s has no measurementsVersion (format 1): ask its "
                                       "publisher for a format-2 file ('cloister-measure image "
                                       "IMAGE -o json --measurements-version N', signed again).",
                                       path);
        if (src->present && m->measurements_version < src->version)
                return log_error_errno(-ESTALE,
                                       "measurements version %" PRId64 " is older than version "
                                       "%" PRId64 ", which %s already holds: not an upgrade.",
                                       m->measurements_version, src->version, config_path);
        if (src->present && m->measurements_version == src->version &&
            memcmp(m->sha256, src->sha256, sizeof(m->sha256)) != 0)
                return log_error_errno(-EEXIST,
                                       "measurements version %" PRId64 " is held by %s with other "
                                       "bytes: the publisher signed two files with one version; "
                                       "ask which is right.",
                                       m->measurements_version, config_path);

        printf("current: %s\n", src->present ? src->image : "(no measurements file recorded)");
        printf("new:     %s %s%s, measurements version %" PRId64 ", created %s (%s)\n", m->image,
               m->image_version ?: "", measurements_image_kind_note(m->image_kind),
               m->measurements_version, m->created,
               insecure ? "NOT signature-checked" : "signature verified");
        for (unsigned i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                const PcrExpectation *cur = &pol->pcrs[i], *new = &m->pcrs[i];
                char a[80], b[80];

                /* PCR 15 is the cluster's (its ID), never the image's. */
                if (i == 15 || (!cur->present && !new->present))
                        continue;
                pcr_text(cur, a);
                if (!new->present) {
                        printf("PCR %u: %s (not in the file: unchanged)\n", i, a);
                        continue;
                }
                pcr_text(new, b);
                if (cur->present &&
                    cur->warn_only == new->warn_only &&memcmp(cur->expected, new->expected, 32) ==
                            0) {
                        printf("PCR %u: %s (unchanged)\n", i, a);
                        continue;
                }
                printf("PCR %u: %s -> %s (changes)\n", i, a, b);
                (void) snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed),
                                "%s%u", n_changed ? ", " : "", i);
                n_changed++;
        }
        if (n_changed == 0)
                printf("No PCR changes: nodes of the new image pass the current policy.\n");
        else
                printf("%u PCR(s) change: %s. Nodes booted from the new image are refused by the "
                       "current policy until a policy that admits them is pushed ('cloister "
                       "policy push').\n",
                       n_changed, changed);
        if (m->kubernetes_version) {
                /* The release the image carries against the cluster's (docs/upgrade.md,
                 * "Kubernetes versions"): what 'upgrade apply' will ask for, or refuse. */
                const char *cur = config.kubernetes_version ?: CLI_KUBERNETES_VERSION;
                char why[512];
                int step = kubernetes_version_step(cur, m->kubernetes_version, why, sizeof(why));

                if (step == 0)
                        printf("Kubernetes: %s (unchanged)\n", cur);
                else if (step > 0)
                        printf("Kubernetes: %s -> %s (changes: 'cloister upgrade apply "
                               "--kubernetes-version %s' moves the control plane first, then the "
                               "workers)\n",
                               cur, m->kubernetes_version, m->kubernetes_version);
                else
                        printf("Kubernetes: %s -> %s: 'cloister upgrade apply' refuses it: %s\n",
                               cur, m->kubernetes_version, why);
        }
        return print_node_images(&config, m, state_path, state_given);
}

int verb_upgrade(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "check", 0, VERB_ANY, upgrade_check_verb,
                  "which PCRs a new image (its signed measurements file) changes" },
                { "apply", 0, VERB_ANY, upgrade_apply_verb,
                  "moves the cluster to a new image, node by node (resumable)" },
                {},
        };

        return verbs_dispatch("cloister upgrade", argc - 1, argv + 1, verbs, userdata);
}
