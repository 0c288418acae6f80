/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/snp-guest.h"

static const uint8_t vcek_guid[16] = { 0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45,
                                       0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd };
static const uint8_t ask_guid[16] = { 0x79, 0xb3, 0xb7, 0x4a, 0xac, 0xbb, 0xe4, 0x4f,
                                      0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82 };

static size_t entry(uint8_t *p, const uint8_t guid[16], uint32_t off, uint32_t len)
{
        memcpy(p, guid, 16);
        memcpy(p + 16, &off, 4); /* little-endian host */
        memcpy(p + 20, &len, 4);
        return 24;
}

static void test_snp_cert_table_finds_vcek_and_ask(void **state)
{
        static const uint8_t zero[16];
        uint8_t t[256] = {};
        size_t o = 0;
        SnpCertTable ct;

        o += entry(t + o, vcek_guid, 100, 10);
        o += entry(t + o, ask_guid, 110, 20);
        o += entry(t + o, zero, 0, 0);
        memset(t + 100, 0xaa, 10);
        assert_int_equal(snp_cert_table_parse(t, sizeof(t), &ct, NULL), 0);
        assert_ptr_equal(ct.vcek, t + 100);
        assert_int_equal(ct.vcek_size, 10);
        assert_ptr_equal(ct.ask, t + 110);
        assert_null(ct.ark);
}

static void test_snp_cert_table_rejects_bad_entries(void **state)
{
        static const uint8_t zero[16];
        uint8_t t[128] = {};
        SnpCertTable ct;
        Diag d;

        /* out of range */
        entry(t, vcek_guid, 120, 20);
        entry(t + 24, zero, 0, 0);
        assert_int_equal(snp_cert_table_parse(t, sizeof(t), &ct, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "outside"));
        /* offset + length overflow */
        entry(t, vcek_guid, 0xfffffff0, 0x20);
        assert_int_equal(snp_cert_table_parse(t, sizeof(t), &ct, &d), -EBADMSG);
        /* duplicate */
        entry(t, vcek_guid, 72, 8);
        entry(t + 24, vcek_guid, 80, 8);
        entry(t + 48, zero, 0, 0);
        assert_int_equal(snp_cert_table_parse(t, sizeof(t), &ct, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "duplicate"));
        /* no terminator */
        assert_int_equal(snp_cert_table_parse(t, 30, &ct, &d), -EBADMSG);
}

static void test_snp_guest_report_outside_a_guest_says_so(void **state)
{
        uint8_t rd[64] = {}, *report = NULL, *certs = NULL;
        size_t n, cn;
        Diag d;

        diag_clear(&d);
        /* This machine is no SEV-SNP guest: a clear error, never a fake report. */
        assert_true(snp_guest_get_report(rd, &report, &n, &certs, &cn, &d) < 0);
        assert_null(report);
        assert_non_null(strstr(d.message, "SEV-SNP guest") ?: strstr(d.message, "SNP_GET_REPORT"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_snp_cert_table_finds_vcek_and_ask),
                cmocka_unit_test(test_snp_cert_table_rejects_bad_entries),
                cmocka_unit_test(test_snp_guest_report_outside_a_guest_says_so),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
