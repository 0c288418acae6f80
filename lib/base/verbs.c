/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/log.h"
#include "cloister/verbs.h"

int verbs_dispatch(const char *program, int argc, char *argv[], const Verb verbs[], void *userdata)
{
        unsigned n;

        if (argc <= 0 || !argv[0]) {
                log_error("%s: missing command. See '%s --help'.", program, program);
                return -EINVAL;
        }
        if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
                printf("Usage: %s COMMAND [OPTIONS]\n\nCommands:\n", program);
                verbs_print_help(verbs, NULL);
                return 0;
        }
        for (const Verb *v = verbs; v->name; v++) {
                if (strcmp(v->name, argv[0]) != 0)
                        continue;
                n = (unsigned) argc - 1;
                if (n < v->min_args) {
                        log_error("%s %s: too few arguments. See '%s --help'.", program, v->name,
                                  program);
                        return -EINVAL;
                }
                if (v->max_args != VERB_ANY && n > v->max_args) {
                        log_error(
                                "%s %s: too many arguments ('%s' is unexpected). See '%s --help'.",
                                program, v->name, argv[v->max_args + 1], program);
                        return -EINVAL;
                }
                return v->fn(argc, argv, userdata);
        }
        log_error("%s: unknown command '%s'. See '%s --help'.", program, argv[0], program);
        return -EINVAL;
}

void verbs_print_help(const Verb verbs[], const char *prefix)
{
        for (const Verb *v = verbs; v->name; v++)
                printf("  %s%-24s %s\n", prefix ?: "", v->name, v->help ?: "");
}

OutputFormat output_format_from_string(const char *s)
{
        if (!s)
                return _OUTPUT_FORMAT_INVALID;
        if (strcmp(s, "text") == 0)
                return OUTPUT_TEXT;
        if (strcmp(s, "json") == 0)
                return OUTPUT_JSON;
        return _OUTPUT_FORMAT_INVALID;
}

int exit_status_from_errno(int r)
{
        if (r >= 0)
                return 0;
        return 1;
}

int parse_listen_address(char *s, const char **ret_address, uint16_t *ret_port)
{
        char *colon = strrchr(s, ':'), *end;
        unsigned long port;

        if (!colon || colon == s)
                return -EINVAL;
        port = strtoul(colon + 1, &end, 10);
        if (*end || end == colon + 1 || port > 65535)
                return -EINVAL;
        *colon = '\0';
        *ret_address = s;
        *ret_port = (uint16_t) port;
        return 0;
}
