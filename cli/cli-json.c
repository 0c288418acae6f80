/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's -o json: which verbs print a result document, the error document, attestation
 * reports as documents (docs/json.md). */
#include <stdio.h>
#include <string.h>

#include "cli-json.h"
#include "cloister/attest.h"
#include "cloister/log.h"

/* The verbs that print a result document with -o json ("VERB" or "VERB SUBVERB"). */
static const char *const json_verbs[] = {
        "version",
        "status",
        "verify",
        "verify --cluster",
        "attestation verify",
        "attestation verify-report",
        "control-plane authorize",
        "policy test",
        "policy push",
        "node remove",
};

/* Verbs whose first argument is a sub-verb. */
static const char *const parent_verbs[] = {
        "attestation", "control-plane", "config",  "master-secret", "init-secret",
        "mini",        "policy",        "upgrade", "node",
};

void cli_json_command(int argc, char *argv[], char buf[static 64])
{
        bool parent = false;

        for (size_t i = 0; argc > 0 && i < ELEMENTSOF(parent_verbs); i++)
                parent = parent || strcmp(argv[0], parent_verbs[i]) == 0;
        if (argc <= 0)
                (void) snprintf(buf, 64, "cloister");
        else if (strcmp(argv[0], "verify") == 0) {
                bool cluster = false;
                for (int i = 1; i < argc; i++)
                        cluster = cluster || strcmp(argv[i], "--cluster") == 0;
                (void) snprintf(buf, 64, "cloister verify%s", cluster ? " --cluster" : "");
        } else if (parent && argc > 1 && argv[1][0] != '-')
                (void) snprintf(buf, 64, "cloister %.24s %.24s", argv[0], argv[1]);
        else
                (void) snprintf(buf, 64, "cloister %.40s", argv[0]);
}

static char json_command[64] = "cloister";

/* The verb's own -o json (-o json, -ojson, --output json, --output=json), wherever it stands:
 * an error in an option before it must still give an error document. */
static bool verb_asks_json(int argc, char *argv[])
{
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) &&
                     i + 1 < argc && strcmp(argv[i + 1], "json") == 0) ||
                    strcmp(argv[i], "-ojson") == 0 || strcmp(argv[i], "--output=json") == 0)
                        return true;
        return false;
}

int cli_json_begin(CliOptions *o, int argc, char *argv[])
{
        const char *verb;

        cli_json_command(argc, argv, json_command);
        if (argc <= 0)
                return 0;
        verb = json_command + strlen("cloister ");
        for (size_t i = 0; i < ELEMENTSOF(json_verbs); i++)
                if (strcmp(verb, json_verbs[i]) == 0) {
                        if (verb_asks_json(argc, argv))
                                o->output = OUTPUT_JSON;
                        return 0;
                }
        /* The verb's own -o json too (mini's exec passes its arguments on: not that). */
        if (o->output != OUTPUT_JSON && strcmp(argv[0], "mini") != 0 && verb_asks_json(argc, argv))
                o->output = OUTPUT_JSON;
        if (o->output != OUTPUT_JSON)
                return 0;
        /* Help is text, whatever -o says. */
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
                        return 0;
        return log_error_errno(-EUSAGE,
                               "%s prints no JSON result: drop -o json (these print one, "
                               "docs/json.md: cloister version, status, verify, attestation "
                               "verify, attestation verify-report, control-plane authorize).",
                               json_command);
}

int cli_json_finish(const CliOptions *o, int r)
{
        if (o->output != OUTPUT_JSON || r >= 0)
                return r;
        return result_print_error(json_command, r);
}

const char *cli_check_result(int status)
{
        switch (status) {
        case CHECK_PASS:
                return "pass";
        case CHECK_FAIL:
                return "fail";
        case CHECK_WARN:
                return "warn";
        case CHECK_SKIPPED:
                return "skip";
        default:
                return "pending";
        }
}

json_t *cli_report_json(const char *command, const AttestReport *rep, int verdict, const Diag *d,
                        CliFreshness freshness)
{
        _cleanup_(json_decrefp) json_t *doc = result_new(command);
        json_t *checks = json_array();

        if (!doc || !checks || json_object_set_new(doc, "checks", checks) < 0)
                return NULL;
        for (size_t i = 0; i < rep->n_checks; i++) {
                const CheckResult *c = &rep->checks[i];
                if (result_add_check(doc, c->name, c->index, cli_check_result(c->status),
                                     c->enforced, c->expected, c->actual, c->detail) < 0)
                        return NULL;
        }
        if (result_set_verdict(doc,
                               verdict < 0   ? "fail"
                               : verdict > 0 ? "incomplete"
                                             : "pass",
                               verdict < 0   ? d->message
                               : verdict > 0 ? "the attestation key is not yet proven to be in "
                                               "the certified TPM (credential activation needs "
                                               "the live TPM)"
                                             : NULL,
                               verdict < 0 ? d : NULL,
                               freshness == CLI_FRESHNESS_CHECKED ? "checked" : "not-checked") < 0)
                return NULL;
        return TAKE_PTR(doc);
}
