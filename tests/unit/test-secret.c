/* SPDX-License-Identifier: Apache-2.0 */
#include <sys/resource.h>

#include "helpers/unit.h"

#include "cloister/secret.h"

/* /proc/self/status VmLck in kB: proves the pages are really locked. */
static long vm_locked_kb(void)
{
        char line[256];
        long kb = -1;
        FILE *f = fopen("/proc/self/status", "re");

        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

static void test_secret_new_is_zeroed_and_locked(void **state)
{
        _cleanup_(secret_freep) Secret *s = NULL;
        long before = vm_locked_kb();

        assert_int_equal(secret_new(100, &s), 0);
        assert_int_equal(secret_size(s), 100);
        for (size_t i = 0; i < 100; i++)
                assert_int_equal(secret_data(s)[i], 0);
#ifndef __SANITIZE_ADDRESS__
        /* ASan intercepts mlock() and makes it a no-op, so VmLck proves locking only without it. */
        assert_true(vm_locked_kb() >= before + 4);
#endif
        s = secret_free(s);
        assert_null(s);
        assert_int_equal(vm_locked_kb(), before);
}

static void test_secret_rejects_zero_and_oversize(void **state)
{
        Secret *s = (Secret *) 0x1;

        assert_int_equal(secret_new(0, &s), -EINVAL);
        assert_int_equal(secret_new(SECRET_SIZE_MAX + 1, &s), -EINVAL);
        assert_ptr_equal(s, (Secret *) 0x1);
}

static void test_secret_random_differs(void **state)
{
        _cleanup_(secret_freep) Secret *a = NULL, *b = NULL;

        assert_int_equal(secret_new_random(32, &a), 0);
        assert_int_equal(secret_new_random(32, &b), 0);
        assert_false(secret_equal(a, b));
}

static void test_secret_equal_compares_content_and_size(void **state)
{
        _cleanup_(secret_freep) Secret *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        assert_int_equal(secret_new_from("abcdef", 6, &a), 0);
        assert_int_equal(secret_new_from("abcdef", 6, &b), 0);
        assert_int_equal(secret_new_from("abcdeg", 6, &c), 0);
        assert_int_equal(secret_new_from("abcde", 5, &d), 0);
        assert_true(secret_equal(a, b));
        assert_false(secret_equal(a, c));
        assert_false(secret_equal(a, d));
        assert_false(secret_equal(a, NULL));
        assert_true(memeq_consttime("xyz", "xyz", 3));
        assert_false(memeq_consttime("xyz", "xyZ", 3));
}

static void test_secret_free_null_is_noop(void **state)
{
        assert_null(secret_free(NULL));
}

static void test_explicit_wipe_clears(void **state)
{
        uint8_t buf[32];
        memset(buf, 0xaa, sizeof(buf));
        explicit_wipe(buf, sizeof(buf));
        for (size_t i = 0; i < sizeof(buf); i++)
                assert_int_equal(buf[i], 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_secret_new_is_zeroed_and_locked),
                cmocka_unit_test(test_secret_rejects_zero_and_oversize),
                cmocka_unit_test(test_secret_random_differs),
                cmocka_unit_test(test_secret_equal_compares_content_and_size),
                cmocka_unit_test(test_secret_free_null_is_noop),
                cmocka_unit_test(test_explicit_wipe_clears),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
