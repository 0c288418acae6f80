/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Diagnostics for verdicts that need more than an errno: which check failed, at which index
 * (PCR, event, certificate), what was expected and what was found, and one human sentence.
 * Verifiers fill one only on failure; the CLI prints it and -o json serialises it.
 * The buffers are fixed: values longer than they are truncated, never overrun.
 */

#include "cloister/macro.h"

#define DIAG_CHECK_MAX   64
#define DIAG_VALUE_MAX   200
#define DIAG_MESSAGE_MAX 512

typedef struct Diag {
        char check[DIAG_CHECK_MAX];
        int index; /* -1 when the check has no index */
        char expected[DIAG_VALUE_MAX];
        char actual[DIAG_VALUE_MAX];
        char message[DIAG_MESSAGE_MAX];
} Diag;

void diag_clear(Diag *d);
/* Records a failure and returns error (a negative errno), so: return diag_fail(d, -EPERM, ...). */
int diag_fail(Diag *d, int error, const char *check, int index, const char *format, ...)
        _printf_(5, 6);
/* Adds expected/actual values to the last failure. Either may be NULL. */
void diag_set_values(Diag *d, const char *expected, const char *actual);
void diag_set_values_hex(Diag *d, const void *expected, size_t expected_size, const void *actual,
                         size_t actual_size);
/* One line: "message [check NAME, index N: expected E, actual A]". */
void diag_format(const Diag *d, char *buf, size_t size);
/* true if a failure is recorded. */
static inline int diag_failed(const Diag *d)
{
        return d && d->check[0] != 0;
}
