/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli-json.h"
#include "cli.h"
#include "cloister/cp-authorization.h"
#include "cloister/log.h"
#include "cloister/mastersecret.h"

#define VALID_DEFAULT_HOURS 24U

static void authorize_help(void)
{
        printf("Usage: cloister control-plane authorize NAME [--valid-for HOURS]\n"
               "                                      [--master-secret FILE] [-o text|json]\n\n"
               "A control plane receives the master secret, so only the owner decides which node\n"
               "may become one: this prints an authorization for the node NAME (its member\n"
               "name, a DNS-1123 label), made with the master secret. Set it in that node's\n"
               "metadata as cloister-control-plane-authorization (the local form:\n"
               "\"controlPlaneAuthorization\"); the join service admits the node as a control\n"
               "plane only with it, and only after attesting the node. It is not secret (it\n"
               "authorizes only NAME, and only an attested node), it expires, and once NAME is\n"
               "a member of a join service no other TPM can use it there (each join service\n"
               "keeps its own membership: authorize a control plane just before it joins, for\n"
               "no longer than it needs). The first control plane needs none: 'cloister apply'\n"
               "makes it.\n\n"
               "  --valid-for HOURS       1..%u (default %u)\n"
               "  --master-secret FILE    default " MASTER_SECRET_FILE_DEFAULT "\n",
               (unsigned) (CP_AUTHORIZATION_VALID_MAX_SEC / 3600), VALID_DEFAULT_HOURS);
}

static int authorize_verb(int argc, char *argv[], void *userdata)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "valid-for", required_argument, NULL, 'v' },
                { "master-secret", required_argument, NULL, 'm' },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        CliOptions *opts = userdata;
        const char *ms_path = MASTER_SECRET_FILE_DEFAULT, *name;
        _cleanup_(master_secret_freep) MasterSecret *ms = NULL;
        unsigned long hours = VALID_DEFAULT_HOURS;
        char token[CP_AUTHORIZATION_MAX], expiry[32];
        time_t not_after;
        struct tm tm;
        char *end;
        Diag d;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        authorize_help();
                        return 0;
                case 'v':
                        hours = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || hours == 0 ||
                            hours > CP_AUTHORIZATION_VALID_MAX_SEC / 3600)
                                return log_error_errno(-EUSAGE, "--valid-for: 1..%u hours.",
                                                       CP_AUTHORIZATION_VALID_MAX_SEC / 3600);
                        break;
                case 'm':
                        ms_path = optarg;
                        break;
                case 'o':
                        if (cli_parse_output_option(optarg, &opts->output) < 0)
                                return -EUSAGE;
                        break;
                default:
                        return log_error_errno(-EUSAGE, "See 'cloister control-plane authorize "
                                                        "--help'.");
                }
        if (optind != argc - 1)
                return log_error_errno(-EUSAGE, "Name exactly one node: cloister control-plane "
                                                "authorize NAME. See --help.");
        name = argv[optind];
        if (!cp_authorization_name_ok(name))
                return log_error_errno(-EUSAGE,
                                       "'%s' is not a member name: a DNS-1123 label (a-z, 0-9, "
                                       "'-', at most %d characters), as in the node's metadata.",
                                       name, CP_AUTHORIZATION_NAME_MAX);
        diag_clear(&d);
        r = master_secret_load(ms_path, &ms, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        not_after = time(NULL) + (time_t) hours * 3600;
        r = cp_authorization_make(ms->key, ms->salt, name, not_after, token);
        if (r < 0)
                return log_error_errno(r, "Cannot make the authorization: %m");
        (void) gmtime_r(&not_after, &tm);
        (void) strftime(expiry, sizeof(expiry), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (opts && opts->output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc =
                        result_new("cloister control-plane authorize");
                if (!doc ||
                    json_object_update_new(doc, json_pack("{s:s,s:s,s:s}", "name", name, "notAfter",
                                                          expiry, "authorization", token)) < 0 ||
                    result_print(doc) < 0)
                        return log_oom();
        } else {
                printf("%s\n", token);
                fprintf(stderr,
                        "Authorizes '%s' as a control plane until %s. Set it in the node's "
                        "metadata as cloister-control-plane-authorization.\n",
                        name, expiry);
        }
        return 0;
}

int verb_control_plane(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "authorize", 0, VERB_ANY, authorize_verb,
                  "let one node join as a control plane (prints the authorization)" },
                {},
        };
        return verbs_dispatch("cloister control-plane", argc - 1, argv + 1, verbs, userdata);
}
