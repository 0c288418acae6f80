/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/pe.h"

/* Hostile variants of a real EFI binary (Debian's systemd-boot, installed by install-deps). */
#define EFI "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

static uint8_t *load(size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(EFI, PE_SIZE_MAX, &data, size), 0);
        return data;
}

static uint32_t u32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
               (uint32_t) p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v, p[1] = (uint8_t) (v >> 8), p[2] = (uint8_t) (v >> 16),
        p[3] = (uint8_t) (v >> 24);
}

static void test_pe_every_truncation_fails_cleanly(void **state)
{
        _cleanup_(freep) uint8_t *data = NULL;
        uint8_t digest[PE_DIGEST_MAX];
        size_t size, n;

        data = load(&size);
        assert_int_equal(pe_authenticode(data, size, "SHA256", digest, &n, NULL), 0);
        /* Every cut inside the headers and the first section is refused (headers or a section
         * past EOF); later cuts may leave a valid file (trailing data) but must never crash. */
        for (size_t cut = 0; cut < size; cut += (cut < 4096 ? 1 : 997)) {
                int r = pe_authenticode(data, cut, "SHA256", digest, &n, NULL);
                if (cut < 4096)
                        assert_int_equal(r, -EBADMSG);
                else
                        assert_true(r == 0 || r == -EBADMSG);
        }
}

static void test_pe_absurd_section_count_sizes_and_overlaps_are_refused(void **state)
{
        _cleanup_(freep) uint8_t *data = NULL;
        uint8_t digest[PE_DIGEST_MAX];
        size_t size, n, coff, table;
        uint16_t opt_size;
        Diag d;

        data = load(&size);
        coff = u32(data + 0x3C) + 4;
        opt_size = (uint16_t) (data[coff + 16] | data[coff + 17] << 8);
        table = coff + 20 + opt_size;

        /* 0xFFFF sections */
        data[coff + 2] = 0xff, data[coff + 3] = 0xff;
        assert_int_equal(pe_authenticode(data, size, "SHA256", digest, &n, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "number of sections"));
        free(data);

        /* the first section's SizeOfRawData far past EOF */
        data = load(&size);
        put32(data + table + 16, 0x7fffffff);
        assert_int_equal(pe_authenticode(data, size, "SHA256", digest, &n, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "past the end"));
        free(data);

        /* the second section starts inside the first */
        data = load(&size);
        put32(data + table + 40 + 20, u32(data + table + 20) + 1);
        assert_int_equal(pe_authenticode(data, size, "SHA256", digest, &n, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "overlap"));
        free(data);

        /* e_lfanew pointing outside the file */
        data = load(&size);
        put32(data + 0x3C, 0xfffffff0);
        assert_int_equal(pe_authenticode(data, size, "SHA256", digest, &n, &d), -EBADMSG);
}

static void test_pe_certificate_table_must_end_the_file(void **state)
{
        _cleanup_(freep) uint8_t *data = NULL;
        uint8_t digest[PE_DIGEST_MAX];
        size_t size, n, opt;
        uint16_t magic;
        Diag d;

        data = load(&size);
        opt = u32(data + 0x3C) + 24;
        magic = (uint16_t) (data[opt] | data[opt + 1] << 8);
        size_t certdir = opt + (magic == 0x20b ? 112 : 96) + 32;
        put32(data + certdir, 16); /* offset inside the headers */
        put32(data + certdir + 4, 64);
        assert_int_equal(pe_authenticode(data, size, "SHA256", digest, &n, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "certificate table"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pe_every_truncation_fails_cleanly),
                cmocka_unit_test(test_pe_absurd_section_count_sizes_and_overlaps_are_refused),
                cmocka_unit_test(test_pe_certificate_table_must_end_the_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
