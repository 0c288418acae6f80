/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/reader.h"

static const uint8_t sample[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09 };

static void test_reader_decodes_little_and_big_endian(void **state)
{
        Reader r = reader_init(sample, sizeof(sample));
        uint16_t a;
        uint32_t b;
        uint16_t c;

        assert_int_equal(reader_u16le(&r, &a), 0);
        assert_int_equal(a, 0x0201);
        assert_int_equal(reader_u32be(&r, &b), 0);
        assert_int_equal(b, 0x03040506);
        assert_int_equal(reader_u16le(&r, &c), 0);
        assert_int_equal(c, 0x0807);
        assert_int_equal(reader_remaining(&r), 1);
}

static void test_reader_short_read_fails_without_advancing(void **state)
{
        Reader r = reader_init(sample, 3);
        uint32_t v = 0xdeadbeef;
        uint64_t w = 0xdeadbeef;

        assert_int_equal(reader_u32le(&r, &v), -EBADMSG);
        assert_int_equal(v, 0xdeadbeef); /* output untouched on failure */
        assert_int_equal(reader_offset(&r), 0);
        assert_int_equal(reader_u64be(&r, &w), -EBADMSG);
        assert_int_equal(reader_skip(&r, 4), -EBADMSG);
        assert_int_equal(reader_offset(&r), 0);
        assert_int_equal(reader_skip(&r, 3), 0);
        assert_int_equal(reader_expect_end(&r), 0);
}

static void test_reader_rejects_trailing_data(void **state)
{
        Reader r = reader_init(sample, sizeof(sample));
        assert_int_equal(reader_skip(&r, 8), 0);
        assert_int_equal(reader_expect_end(&r), -EBADMSG);
}

static void test_reader_sub_confines_and_advances_parent(void **state)
{
        Reader r = reader_init(sample, sizeof(sample)), sub;
        uint32_t v;

        assert_int_equal(reader_sub(&r, 2, &sub), 0);
        assert_int_equal(reader_offset(&r), 2);
        assert_int_equal(reader_u32le(&sub, &v), -EBADMSG);
        assert_int_equal(reader_sub(&r, 100, &sub), -EBADMSG);
        assert_int_equal(reader_offset(&r), 2);
}

static void test_reader_tpm2b_length_past_end_fails_and_restores(void **state)
{
        static const uint8_t buf[] = { 0x00, 0x05, 0xaa, 0xbb };
        static const uint8_t ok[] = { 0x00, 0x02, 0xaa, 0xbb };
        Reader r = reader_init(buf, sizeof(buf));
        const uint8_t *p;
        uint16_t n;

        assert_int_equal(reader_tpm2b(&r, &p, &n), -EBADMSG);
        assert_int_equal(reader_offset(&r), 0);
        r = reader_init(ok, sizeof(ok));
        assert_int_equal(reader_tpm2b(&r, &p, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(p[1], 0xbb);
        assert_int_equal(reader_expect_end(&r), 0);
}

static void test_reader_huge_length_does_not_overflow(void **state)
{
        Reader r = reader_init(sample, sizeof(sample));
        assert_int_equal(reader_skip(&r, 1), 0);
        assert_int_equal(reader_skip(&r, SIZE_MAX), -EBADMSG);
        assert_int_equal(reader_offset(&r), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reader_decodes_little_and_big_endian),
                cmocka_unit_test(test_reader_short_read_fails_without_advancing),
                cmocka_unit_test(test_reader_rejects_trailing_data),
                cmocka_unit_test(test_reader_sub_confines_and_advances_parent),
                cmocka_unit_test(test_reader_tpm2b_length_past_end_fails_and_restores),
                cmocka_unit_test(test_reader_huge_length_does_not_overflow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
