/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "helpers/bench.h"

int bench_pairs(const char *s)
{
        char *end;
        unsigned long v = strtoul(s, &end, 10);

        if (*s == 0 || *end != 0 || v < 10 || v > 100000) {
                fprintf(stderr, "bench: pairs must be 10..100000, not '%s'\n", s);
                exit(2);
        }
        return (int) v;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
        qsort(v, (size_t) n, sizeof(double), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
