/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/log.h"
#include "cloister/verbs.h"

/* Optimal string alignment distance (edits, with a swap of two neighbours as one), capped: only
 * small distances matter. */
static unsigned edit_distance(const char *a, const char *b)
{
        enum { MAX = 32 };
        size_t la = strlen(a), lb = strlen(b);
        unsigned d[MAX + 1][MAX + 1];

        if (la > MAX || lb > MAX)
                return UINT32_MAX;
        for (size_t i = 0; i <= la; i++)
                d[i][0] = (unsigned) i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
                        if (d[i - 1][j] + 1 < best)
                                best = d[i - 1][j] + 1;
                        if (d[i][j - 1] + 1 < best)
                                best = d[i][j - 1] + 1;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                            d[i - 2][j - 2] + 1 < best)
                                best = d[i - 2][j - 2] + 1;
                        d[i][j] = best;
                }
        return d[la][lb];
}

const char *verbs_suggest(const Verb verbs[], const char *typed)
{
        const char *best = NULL;
        unsigned best_d = UINT32_MAX;
        bool tie = false;

        for (const Verb *v = verbs; v->name; v++) {
                unsigned dist = edit_distance(typed, v->name);
                /* A prefix of one verb ("ver" for "verify") or at most two edits, and never more
                 * edits than half the word (so "ab" does not suggest "apply"). */
                if (strlen(typed) >= 3 && strncmp(v->name, typed, strlen(typed)) == 0)
                        dist = 1;
                if (dist > 2 || 2 * dist > strlen(v->name))
                        continue;
                if (dist < best_d) {
                        best = v->name;
                        best_d = dist;
                        tie = false;
                } else if (dist == best_d)
                        tie = true; /* "ver": verify or version? Name neither. */
        }
        return tie ? NULL : best;
}

int verbs_dispatch(const char *program, int argc, char *argv[], const Verb verbs[], void *userdata)
{
        const char *suggestion;
        unsigned n;

        if (argc <= 0 || !argv[0]) {
                log_error("%s: missing command. See '%s --help'.", program, program);
                return -EUSAGE;
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
                        return -EUSAGE;
                }
                if (v->max_args != VERB_ANY && n > v->max_args) {
                        log_error(
                                "%s %s: too many arguments ('%s' is unexpected). See '%s --help'.",
                                program, v->name, argv[v->max_args + 1], program);
                        return -EUSAGE;
                }
                return v->fn(argc, argv, userdata);
        }
        suggestion = verbs_suggest(verbs, argv[0]);
        if (suggestion)
                log_error("%s: unknown command '%s'. Did you mean '%s'? See '%s --help'.", program,
                          argv[0], suggestion, program);
        else
                log_error("%s: unknown command '%s'. See '%s --help'.", program, argv[0], program);
        return -EUSAGE;
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
        return r == -EUSAGE ? 2 : 1;
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
