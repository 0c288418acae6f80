/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <time.h>

#include "cloister/verbs.h"

/* Options shared by every verb of `cloister`. */
typedef struct CliOptions {
        OutputFormat output;
} CliOptions;

int verb_master_secret(int argc, char *argv[], void *userdata);
int verb_attestation(int argc, char *argv[], void *userdata);
int verb_verify_report(int argc, char *argv[], void *userdata);
int verb_apply(int argc, char *argv[], void *userdata);
/* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC. */
int cli_parse_time(const char *s, time_t *ret);
