/* SPDX-License-Identifier: Apache-2.0 */
/* Option parsing shared by several verbs. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/log.h"
#include "cloister/rpc.h"

int cli_parse_timeout(const char *arg, RpcClientConfig *c)
{
        char *end;
        unsigned long t = strtoul(arg, &end, 10);

        if (*end || end == arg || t == 0 || t > 3600)
                return log_error_errno(-EINVAL, "--timeout '%s': 1..3600 seconds.", arg);
        c->total_timeout_ms = (unsigned) t * 1000;
        if (c->connect_timeout_ms > c->total_timeout_ms)
                c->connect_timeout_ms = c->total_timeout_ms;
        return 0;
}

int cli_parse_file_option(int argc, char *argv[], const char *usage, const char **file)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "file", required_argument, NULL, 'f' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hf:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                case 'f':
                        *file = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'. See --help.",
                                       argv[optind]);
        return 1;
}

int cli_node_url(const char *arg, char url[static CLI_URL_MAX])
{
        const char *close = strrchr(arg, ']');
        const char *colon = strrchr(arg, ':');
        bool has_port = colon && (arg[0] != '[' || (close && colon > close));

        if (strlen(arg) > 260 || strpbrk(arg, "/@?#\\ ") ||
            (arg[0] == '[' ? !close : (colon && strchr(arg, ':') != colon)))
                return log_error_errno(-EINVAL, "--node '%s': HOST[:PORT], IPv6 in [].", arg);
        (void) snprintf(url, CLI_URL_MAX, "https://%s%s", arg, has_port ? "" : ":9000");
        return 0;
}
