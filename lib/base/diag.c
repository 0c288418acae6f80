/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cloister/diag.h"
#include "cloister/hex.h"

void diag_clear(Diag *d)
{
        if (!d)
                return;
        memset(d, 0, sizeof(*d));
        d->index = -1;
}

int diag_fail(Diag *d, int error, const char *check, int index, const char *format, ...)
{
        va_list ap;

        if (!d)
                return error;
        diag_clear(d);
        (void) snprintf(d->check, sizeof(d->check), "%s", check);
        d->index = index;
        va_start(ap, format);
        (void) vsnprintf(d->message, sizeof(d->message), format, ap);
        va_end(ap);
        return error;
}

void diag_set_values(Diag *d, const char *expected, const char *actual)
{
        if (!d)
                return;
        (void) snprintf(d->expected, sizeof(d->expected), "%s", expected ?: "");
        (void) snprintf(d->actual, sizeof(d->actual), "%s", actual ?: "");
}

void diag_set_values_hex(Diag *d, const void *expected, size_t expected_size, const void *actual,
                         size_t actual_size)
{
        if (!d)
                return;
        hex_encode_buf(expected, expected_size, d->expected, sizeof(d->expected));
        hex_encode_buf(actual, actual_size, d->actual, sizeof(d->actual));
}

void diag_format(const Diag *d, char *buf, size_t size)
{
        char index[32] = "";

        if (d->index >= 0)
                (void) snprintf(index, sizeof(index), ", index %d", d->index);
        if (d->expected[0] || d->actual[0])
                (void) snprintf(buf, size, "%s [check %s%s: expected %s, actual %s]", d->message,
                                d->check, index, d->expected, d->actual);
        else
                (void) snprintf(buf, size, "%s [check %s%s]", d->message, d->check, index);
}
