/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/init-secret.h"

static Secret *make(uint8_t fill)
{
        uint8_t raw[INIT_SECRET_SIZE];
        Secret *s = NULL;

        memset(raw, fill, sizeof(raw));
        assert_int_equal(secret_new_from(raw, sizeof(raw), &s), 0);
        return s;
}

static void test_init_secret_hash_verifies_and_rejects_another(void **state)
{
        _cleanup_(secret_freep) Secret *a = make(1), *b = make(2);
        char hash[INIT_SECRET_HASH_MAX], again[INIT_SECRET_HASH_MAX];
        Diag d;

        assert_int_equal(init_secret_hash(a, hash), 0);
        assert_true(strncmp(hash, "scrypt$15$8$1$", 14) == 0);
        assert_int_equal(init_secret_verify(a, hash, &d), 0);
        diag_clear(&d);
        assert_int_equal(init_secret_verify(b, hash, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "init-secret");
        /* A fresh salt each time: two hashes of one secret differ, both verify. */
        assert_int_equal(init_secret_hash(a, again), 0);
        assert_string_not_equal(hash, again);
        assert_int_equal(init_secret_verify(a, again, NULL), 0);
}

/* Computed independently with Python's hashlib.scrypt (OpenSSL underneath, but through its own
 * parameter handling): scrypt(b"\x01" * 32, salt=bytes(range(16)), n=2**14, r=8, p=1, 32). */
static void test_init_secret_matches_independent_scrypt(void **state)
{
        _cleanup_(secret_freep) Secret *a = make(1), *b = make(2);
        const char *vector = "scrypt$14$8$1$000102030405060708090a0b0c0d0e0f$"
                             "1cbc81b236c9417628f7cc2a5c3190aea3650258a5b5ba1a66509ce2d1a6d871";

        assert_int_equal(init_secret_verify(a, vector, NULL), 0);
        assert_int_equal(init_secret_verify(b, vector, NULL), -EKEYREJECTED);
}

static void test_init_secret_malformed_hashes_are_refused(void **state)
{
        _cleanup_(secret_freep) Secret *a = make(1);
        static const char *const bad[] = {
                "",
                "bcrypt$15$8$1$00$00",
                "scrypt$13$8$1$000102030405060708090a0b0c0d0e0f$"
                "0000000000000000000000000000000000000000000000000000000000000000",
                "scrypt$21$8$1$000102030405060708090a0b0c0d0e0f$"
                "0000000000000000000000000000000000000000000000000000000000000000",
                "scrypt$15$99$1$000102030405060708090a0b0c0d0e0f$"
                "0000000000000000000000000000000000000000000000000000000000000000",
                "scrypt$15$8$1$0001020304050607$"
                "0000000000000000000000000000000000000000000000000000000000000000",
                "scrypt$15$8$1$000102030405060708090a0b0c0d0e0f$zz",
                "scrypt$15$8$1$000102030405060708090a0b0c0d0e0f$"
                "00000000000000000000000000000000000000000000000000000000000000000",
                "scrypt$1500000000000000000000$8$1$000102030405060708090a0b0c0d0e0f$"
                "0000000000000000000000000000000000000000000000000000000000000000",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Diag d;
                diag_clear(&d);
                assert_int_equal(init_secret_verify(a, bad[i], &d), -EBADMSG);
                assert_string_equal(d.check, "init-secret-hash");
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_secret_hash_verifies_and_rejects_another),
                cmocka_unit_test(test_init_secret_matches_independent_scrypt),
                cmocka_unit_test(test_init_secret_malformed_hashes_are_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
