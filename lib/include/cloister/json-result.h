/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Machine-readable results: what every tool prints with -o json (docs/json.md is normative,
 * docs/json-result.schema.json the schema the tests validate against). One envelope, one shape
 * for a check and for a verdict, one error object:
 *
 *   {"schemaVersion": 1, "command": "cloister verify", <the command's fields>,
 *    "checks": [{"name", "index", "result", "enforced", "expected", "actual", "detail"}],
 *    "verdict": {"result", "reason", "check", "index", "expected", "actual", "freshness"}}
 *
 *   {"schemaVersion": 1, "command": "cloister verify",
 *    "error": {"message", "code", "cause", "nextStep"}}
 *
 * A check's result is pass, fail, warn (a warn-only check that differed), skip or pending; a
 * verdict's is pass, fail or incomplete. A value that does not apply is null, never "" or "-".
 */

#include <stdbool.h>
#include <stddef.h>

#include "cloister/diag.h"
#include "cloister/json.h"

#define RESULT_SCHEMA_VERSION 1
/* cause and nextStep of an error object, each at most this long with its NUL. */
#define RESULT_TEXT_MAX 2048

/* {"schemaVersion": 1, "command": command}: command names the program and its verbs
 * ("cloister attestation verify", "cloister-measure eventlog replay"). NULL if out of memory. */
json_t *result_new(const char *command);

/* One check. index < 0: null. expected/actual NULL or "": null. detail NULL: "". */
json_t *result_check_new(const char *name, int index, const char *result, bool enforced,
                         const char *expected, const char *actual, const char *detail);
/* Appends a check to doc's "checks" array (created on first use); -ENOMEM. */
int result_add_check(json_t *doc, const char *name, int index, const char *result, bool enforced,
                     const char *expected, const char *actual, const char *detail);
/* The verdict object. reason NULL: null. d (may be NULL) gives check, index, expected and actual
 * of a failure; freshness NULL: null ("checked" or "not-checked" otherwise). */
json_t *result_verdict_new(const char *result, const char *reason, const Diag *d,
                           const char *freshness);
/* Sets doc's "verdict"; -ENOMEM. */
int result_set_verdict(json_t *doc, const char *result, const char *reason, const Diag *d,
                       const char *freshness);

/* Prints doc (indented, sorted keys) on stdout and remembers that a document was printed. */
int result_print(const json_t *doc);
/* Whether result_print() printed a document in this process. */
bool result_printed(void);

/* Splits a one-line error message ("cause: next step", "cause; check ...", "cause. See ...")
 * at the first clause that starts with an imperative ("give", "check", "run", "see", ...). Without
 * one, cause is the whole message and next_step is empty. Never fails; truncates. */
void result_error_split(const char *message, char cause[static RESULT_TEXT_MAX],
                        char next_step[static RESULT_TEXT_MAX]);
/* {"schemaVersion": 1, "command": command, "error": {...}}: message as logged (NULL: the
 * errno's text), code the errno's name ("ECONNREFUSED"), cause and nextStep as split above;
 * without a next step in the message, a default for the errno that names command. */
json_t *result_error_new(const char *command, int error, const char *message);
/* Prints the error document for error with the last message this process logged at error level
 * (log_last_error()), unless a document was printed already. Returns error. */
int result_print_error(const char *command, int error);
