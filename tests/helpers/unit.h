/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Everything a cmocka unit test needs, in the order cmocka.h requires. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first: keep it in its own include block. */
#include <cmocka.h>

/* Path of the shared test data (../shared/testdata from the project root), overridable with
 * $CLOISTER_TESTDATA. */
const char *testdata_dir(void);
/* testdata_dir() + "/" + rel, in a static buffer valid until the next call. */
const char *testdata_path(const char *rel);
/* A fresh temporary directory for this test process (removed at exit). */
const char *test_tmpdir(void);
