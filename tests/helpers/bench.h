/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the benchmarks in tests/bench/. */

/* The number of interleaved pairs from argv: 10..100000, else exit(2) with a message. */
int bench_pairs(const char *s);
/* Median of v[0..n) (sorts v). */
double bench_median(double *v, int n);
/* CLOCK_MONOTONIC seconds. */
double bench_now(void);
