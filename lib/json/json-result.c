/* SPDX-License-Identifier: Apache-2.0 */
/* The -o json result envelope, checks, verdicts and error objects (docs/json.md). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cloister/json-result.h"
#include "cloister/log.h"
#include "cloister/verbs.h"

static bool printed;

json_t *result_new(const char *command)
{
        return json_pack("{s:i,s:s}", "schemaVersion", RESULT_SCHEMA_VERSION, "command", command);
}

static json_t *string_or_null(const char *s)
{
        return s && *s ? json_string(s) : json_null();
}

json_t *result_check_new(const char *name, int index, const char *result, bool enforced,
                         const char *expected, const char *actual, const char *detail)
{
        return json_pack("{s:s,s:o,s:s,s:b,s:o,s:o,s:s}", "name", name, "index",
                         index >= 0 ? json_integer(index) : json_null(), "result", result,
                         "enforced", enforced, "expected", string_or_null(expected), "actual",
                         string_or_null(actual), "detail", detail ?: "");
}

int result_add_check(json_t *doc, const char *name, int index, const char *result, bool enforced,
                     const char *expected, const char *actual, const char *detail)
{
        json_t *checks = json_object_get(doc, "checks"), *c;

        if (!checks) {
                checks = json_array();
                if (!checks || json_object_set_new(doc, "checks", checks) < 0)
                        return -ENOMEM;
        }
        c = result_check_new(name, index, result, enforced, expected, actual, detail);
        if (!c || json_array_append_new(checks, c) < 0)
                return -ENOMEM;
        return 0;
}

json_t *result_verdict_new(const char *result, const char *reason, const Diag *d,
                           const char *freshness)
{
        bool failed = diag_failed(d);

        return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "result", result, "reason",
                         string_or_null(reason), "check", string_or_null(failed ? d->check : NULL),
                         "index", failed && d->index >= 0 ? json_integer(d->index) : json_null(),
                         "expected", string_or_null(failed ? d->expected : NULL), "actual",
                         string_or_null(failed ? d->actual : NULL), "freshness",
                         string_or_null(freshness));
}

int result_set_verdict(json_t *doc, const char *result, const char *reason, const Diag *d,
                       const char *freshness)
{
        json_t *v = result_verdict_new(result, reason, d, freshness);

        if (!v || json_object_set_new(doc, "verdict", v) < 0)
                return -ENOMEM;
        return 0;
}

int result_print(const json_t *doc)
{
        _cleanup_(freep) char *text = NULL;

        if (!doc || json_dump_pretty(doc, &text) < 0)
                return -ENOMEM;
        printf("%s\n", text);
        (void) fflush(stdout);
        printed = true;
        return 0;
}

bool result_printed(void)
{
        return printed;
}

/* The words a next step starts with in this project's messages. */
static const char *const imperatives[] = {
        "add",  "ask",   "call",    "check",    "choose", "copy",    "create",  "delete",  "drop",
        "edit", "fetch", "fix",     "generate", "give",   "install", "make",    "mount",   "name",
        "pass", "pick",  "provide", "reboot",   "remove", "rerun",   "restart", "restore", "run",
        "see",  "set",   "start",   "take",     "try",    "update",  "use",     "wait",    "write",
};

static bool starts_imperative(const char *p)
{
        for (size_t i = 0; i < ELEMENTSOF(imperatives); i++) {
                size_t n = strlen(imperatives[i]);
                if (strncasecmp(p, imperatives[i], n) == 0 && !isalpha((unsigned char) p[n]) &&
                    p[n] != '-')
                        return true;
        }
        return false;
}

void result_error_split(const char *message, char cause[static RESULT_TEXT_MAX],
                        char next_step[static RESULT_TEXT_MAX])
{
        static const char *const seps[] = { ": ", "; ", ". ", ", " };
        const char *best = NULL, *next = NULL;
        size_t len;

        message = message ?: "";
        for (const char *p = message; *p && !best; p++)
                for (size_t i = 0; i < ELEMENTSOF(seps); i++) {
                        size_t n = strlen(seps[i]);
                        if (strncmp(p, seps[i], n) == 0 && starts_imperative(p + n)) {
                                best = p;
                                next = p + n;
                                break;
                        }
                }
        len = best ? (size_t) (best - message) : strlen(message);
        /* The cause without its closing period; the next step as a sentence. */
        while (len > 0 && message[len - 1] == '.')
                len--;
        (void) snprintf(cause, RESULT_TEXT_MAX, "%.*s", (int) len, message);
        if (!next) {
                next_step[0] = '\0';
                return;
        }
        (void) snprintf(next_step, RESULT_TEXT_MAX, "%s", next);
        next_step[0] = (char) toupper((unsigned char) next_step[0]);
        len = strlen(next_step);
        if (len > 0 && len + 1 < RESULT_TEXT_MAX && next_step[len - 1] != '.' &&
            next_step[len - 1] != ')')
                (void) snprintf(next_step + len, RESULT_TEXT_MAX - len, ".");
}

static void default_next_step(const char *command, int error, char next[static RESULT_TEXT_MAX])
{
        switch (error) {
        case EUSAGE:
        case EINVAL:
                (void) snprintf(next, RESULT_TEXT_MAX, "See '%s --help'.", command);
                break;
        case ENOENT:
        case EACCES:
        case EISDIR:
                (void) snprintf(next, RESULT_TEXT_MAX,
                                "Check the path named in the message and its permissions.");
                break;
        case ECONNREFUSED:
        case EHOSTUNREACH:
        case ETIMEDOUT:
        case ECONNRESET:
                (void) snprintf(next, RESULT_TEXT_MAX,
                                "Check the address and port, and that the node is up; then try "
                                "again.");
                break;
        default:
                (void) snprintf(next, RESULT_TEXT_MAX,
                                "Run it again with -v for the details; docs/troubleshooting.md "
                                "lists the messages with their causes and fixes.");
        }
}

json_t *result_error_new(const char *command, int error, const char *message)
{
        _cleanup_(freep) char *cause = malloc(RESULT_TEXT_MAX), *next = malloc(RESULT_TEXT_MAX);
        const char *code;
        json_t *doc;

        if (error < 0)
                error = -error;
        if (!cause || !next)
                return NULL;
        if (!message || !*message)
                message = strerror(error ?: EIO);
        result_error_split(message, cause, next);
        if (!next[0])
                default_next_step(command, error, next);
        /* EUSAGE (verbs.h) is Cloister's own: a usage error, exit status 2. */
        code = error == EUSAGE ? "EUSAGE" : error ? strerrorname_np(error) : NULL;
        doc = result_new(command);
        if (doc &&
            json_object_set_new(doc, "error",
                                json_pack("{s:s,s:s,s:s,s:s}", "message", message, "code",
                                          code ?: "EIO", "cause", cause, "nextStep", next)) < 0)
                return json_decref(doc), NULL;
        return doc;
}

int result_print_error(const char *command, int error)
{
        json_t *doc;

        if (printed)
                return error;
        doc = result_error_new(command, error, log_last_error());
        if (!doc || result_print(doc) < 0)
                (void) log_oom();
        json_decref(doc);
        return error;
}
