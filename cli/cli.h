/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "cloister/verbs.h"

/* Options shared by every verb of `cloister`. */
typedef struct CliOptions {
        OutputFormat output;
} CliOptions;

int verb_master_secret(int argc, char *argv[], void *userdata);
int verb_attestation(int argc, char *argv[], void *userdata);
