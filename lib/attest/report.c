/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/hex.h"

void attest_report_done(AttestReport *r)
{
        if (!r)
                return;
        free(r->checks);
        *r = (AttestReport){};
}

CheckResult *report_add(AttestReport *r, const char *name, int index, CheckStatus status,
                        bool enforced, const char *format, ...)
{
        CheckResult *c, *n;
        va_list ap;

        if (!r)
                return NULL;
        n = reallocarray(r->checks, r->n_checks + 1, sizeof(*r->checks));
        if (!n)
                return NULL;
        r->checks = n;
        c = &r->checks[r->n_checks++];
        memset(c, 0, sizeof(*c));
        (void) snprintf(c->name, sizeof(c->name), "%s", name);
        c->index = index;
        c->status = status;
        c->enforced = enforced;
        va_start(ap, format);
        (void) vsnprintf(c->detail, sizeof(c->detail), format, ap);
        va_end(ap);
        return c;
}

void report_set_hex(CheckResult *c, const void *expected, size_t en, const void *actual, size_t an)
{
        if (!c)
                return;
        if (expected)
                hex_encode_buf(expected, en, c->expected, sizeof(c->expected));
        if (actual)
                hex_encode_buf(actual, an, c->actual, sizeof(c->actual));
}

int report_fail(AttestReport *r, Diag *d, int error, const char *name, int index,
                const void *expected, size_t en, const void *actual, size_t an, const char *format,
                ...)
{
        char msg[DIAG_MESSAGE_MAX];
        CheckResult *c;
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        c = report_add(r, name, index, CHECK_FAIL, true, "%s", msg);
        report_set_hex(c, expected, en, actual, an);
        /* Keep the first failure: it is the cause, later ones are usually consequences. */
        if (d && !diag_failed(d)) {
                (void) diag_fail(d, error, name, index, "%s", msg);
                if (expected || actual)
                        diag_set_values_hex(d, expected, expected ? en : 0, actual,
                                            actual ? an : 0);
        }
        return error;
}

void attest_report_record(void *userdata, const char *name, bool ok, const char *expected,
                          const char *actual, const char *detail)
{
        CheckResult *res =
                report_add(userdata, name, -1, ok ? CHECK_PASS : CHECK_FAIL, true, "%s", detail);

        if (res) {
                (void) snprintf(res->expected, sizeof(res->expected), "%s", expected ?: "");
                (void) snprintf(res->actual, sizeof(res->actual), "%s", actual ?: "");
        }
}
