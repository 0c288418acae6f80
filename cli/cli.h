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
int verb_init_secret(int argc, char *argv[], void *userdata);
int verb_verify(int argc, char *argv[], void *userdata);

typedef struct AttestReport AttestReport;
typedef struct Diag Diag;
/* Every check of a verification; verdict < 0 fail, > 0 incomplete, 0 pass. */
void cli_print_report_text(const AttestReport *rep, int verdict, const Diag *d);
int cli_print_report_json(const AttestReport *rep, int verdict, const Diag *d);
typedef struct RpcClientConfig RpcClientConfig;
/* --timeout SEC (1..3600) into the total (and, if larger, connect) timeout. */
int cli_parse_timeout(const char *arg, RpcClientConfig *c);
/* [--file FILE] and --help (prints usage, returns 0); 1 to go on, -errno on a usage error. */
int cli_parse_file_option(int argc, char *argv[], const char *usage, const char **file);
/* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC. */
int cli_parse_time(const char *s, time_t *ret);
