/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Verb tables for multi-command tools (after systemd's verbs.h). argv[0] of what a verb receives
 * is the verb's own name; min_args/max_args count the arguments after it. A verb that has
 * sub-verbs calls verbs_dispatch() again on its own arguments.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* A usage error: an unknown option or command, a missing argument, a bad value. Not an errno
 * (those end at 4095, MAX_ERRNO), so no failure passes for one; exit_status_from_errno() makes it
 * exit status 2. Return -EUSAGE only after logging the one line that says what to give. */
#define EUSAGE 4096

typedef int (*VerbFunction)(int argc, char *argv[], void *userdata);

typedef struct Verb {
        const char *name;
        unsigned min_args;
        unsigned max_args; /* VERB_ANY for no limit */
        VerbFunction fn;
        const char *help; /* one line, shown by --help */
} Verb;

#define VERB_ANY ((unsigned) -1)

/* Runs the verb named by argv[0]. An unknown verb or a wrong argument count prints one precise
 * line and a hint to `<program> --help`, and returns -EUSAGE. */
int verbs_dispatch(const char *program, int argc, char *argv[], const Verb verbs[], void *userdata);
/* The verb a mistyped name most likely meant (a prefix of it, or at most two edits), or NULL. */
const char *verbs_suggest(const Verb verbs[], const char *typed);
/* Prints "  name  help" lines of a verb table. */
void verbs_print_help(const Verb verbs[], const char *prefix);

typedef enum OutputFormat {
        OUTPUT_TEXT,
        OUTPUT_JSON,
        _OUTPUT_FORMAT_MAX,
        _OUTPUT_FORMAT_INVALID = -EINVAL,
} OutputFormat;

OutputFormat output_format_from_string(const char *s);
/* Maps a negative errno to a process exit status: 0 on success, 2 for -EUSAGE (a usage error),
 * 1 for any other failure. */
int exit_status_from_errno(int r);

/* "ADDR:PORT" (the last colon separates the port; port 0 allowed). Splits s in place. */
int parse_listen_address(char *s, const char **ret_address, uint16_t *ret_port);
