/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A fresh swtpm per test: its own state directory, unix sockets, and an EK (optionally with an
 * EK certificate from a CA made for this instance). Stopped and removed by vtpm_stop(), and at
 * exit for any instance a failing test left behind. */

#include <stdbool.h>

typedef struct Vtpm {
        char dir[64];
        char tcti[256];
        char ca_cert[256]; /* PEM of the CA that signed the EK certificate ("" without one) */
        int pid;
} Vtpm;

int vtpm_start(Vtpm *v, bool with_ek_cert);
void vtpm_stop(Vtpm *v);
