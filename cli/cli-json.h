/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* -o json for the cloister CLI: the shared envelope (cloister/json-result.h, docs/json.md), the
 * verbs that print it, and the error object a failed verb leaves on stdout. */

#include "cli.h"
#include "cloister/json-result.h"

typedef struct AttestReport AttestReport;

/* "cloister VERB [SUBVERB]" of a verb's argv (argv[0] the verb), for the "command" field. */
void cli_json_command(int argc, char *argv[], char buf[static 64]);
/* Before the verb runs (its options are permuted by then): remembers the command for an error
 * document; for a verb with a result document, notes its own -o json in o (so that an error in an
 * option before it still gives an error document); with -o json given before a verb that prints
 * none, returns -EINVAL (logged, naming the verbs that print JSON); 0 otherwise. */
int cli_json_begin(CliOptions *o, int argc, char *argv[]);
/* After the verb returned r: with -o json (given before or after the verb) and a failure before
 * any document was printed, prints the error document. Returns r. */
int cli_json_finish(const CliOptions *o, int r);

/* A check's result in the schema's words (pass, fail, warn, skip, pending). */
const char *cli_check_result(int status);
/* The document of one attestation: every check of rep and the verdict (verdict < 0 fail, > 0
 * incomplete, 0 pass) with freshness. NULL if out of memory. */
json_t *cli_report_json(const char *command, const AttestReport *rep, int verdict, const Diag *d,
                        CliFreshness freshness);
