/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/token-bucket.h"

static void test_token_bucket_allows_its_burst_then_its_rate(void **state)
{
        TokenBucket b;

        token_bucket_init(&b, 4, 3, 1000);
        for (int i = 0; i < 3; i++) {
                assert_true(token_bucket_ready(&b, 1000));
                token_bucket_spend(&b);
        }
        assert_false(token_bucket_ready(&b, 1000));
        /* 4 a second: one every 250 ms. */
        assert_int_equal(token_bucket_wait_ms(&b), 250);
        assert_false(token_bucket_ready(&b, 1249));
        assert_int_equal(token_bucket_wait_ms(&b), 1);
        assert_true(token_bucket_ready(&b, 1250));
        token_bucket_spend(&b);
        assert_false(token_bucket_ready(&b, 1250));
}

static void test_token_bucket_saves_no_more_than_its_burst(void **state)
{
        TokenBucket b;
        int n = 0;

        token_bucket_init(&b, 10, 2, 0);
        assert_true(token_bucket_full(&b, 0));
        token_bucket_spend(&b);
        assert_false(token_bucket_full(&b, 0));
        /* An hour idle: still two, not 36,000. */
        while (token_bucket_ready(&b, 3600 * 1000) && n < 100) {
                token_bucket_spend(&b);
                n++;
        }
        assert_int_equal(n, 2);
        assert_true(token_bucket_full(&b, 3600 * 1000 + 200));
}

static void test_token_bucket_refund_gives_back_one_token_up_to_the_burst(void **state)
{
        TokenBucket b;

        token_bucket_init(&b, 1, 2, 0);
        token_bucket_spend(&b);
        token_bucket_spend(&b);
        assert_false(token_bucket_ready(&b, 0));
        token_bucket_refund(&b);
        assert_true(token_bucket_ready(&b, 0));
        token_bucket_refund(&b);
        token_bucket_refund(&b);
        assert_true(token_bucket_full(&b, 0));
        token_bucket_spend(&b);
        token_bucket_spend(&b);
        assert_false(token_bucket_ready(&b, 0));
}

static void test_token_bucket_rate_zero_is_no_limit(void **state)
{
        TokenBucket b;

        token_bucket_init(&b, 0, 1, 0);
        for (int i = 0; i < 1000; i++) {
                assert_true(token_bucket_ready(&b, 0));
                token_bucket_spend(&b);
        }
        assert_int_equal(token_bucket_wait_ms(&b), 0);
}

static void test_token_bucket_clock_going_back_adds_nothing(void **state)
{
        TokenBucket b;

        token_bucket_init(&b, 1, 1, 5000);
        token_bucket_spend(&b);
        assert_false(token_bucket_ready(&b, 1000));
        assert_false(token_bucket_ready(&b, 1999));
        assert_true(token_bucket_ready(&b, 2000));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_token_bucket_allows_its_burst_then_its_rate),
                cmocka_unit_test(test_token_bucket_saves_no_more_than_its_burst),
                cmocka_unit_test(test_token_bucket_refund_gives_back_one_token_up_to_the_burst),
                cmocka_unit_test(test_token_bucket_rate_zero_is_no_limit),
                cmocka_unit_test(test_token_bucket_clock_going_back_adds_nothing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
