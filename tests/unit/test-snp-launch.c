/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SEV-SNP launch digest (lib/sevsnp/snp-launch.c). Each step is checked against bytes written
 * out here by hand from the specifications (SEV-SNP ABI PAGE_INFO, QEMU's SEV hashes table, AMD
 * APM vol. 2 table B-4 for the VMSA, edk2's GUIDed footer table), and the whole computation
 * against every case of ../shared/testdata/snp-measure/expected.json (the values of
 * virtee/sev-snp-measure and google/gce-tcb-verifier).
 */
#include <openssl/evp.h>

#include "helpers/unit.h"

#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/sev-snp.h"
#include "cloister/snp-launch.h"
#include "cloister/snp-measurements.h"

#define AMDSEV  "snp-measure/ovmf_AmdSev_suffix.bin"
#define OVMFX64 "snp-measure/ovmf_OvmfX64_suffix.bin"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &data, size), 0);
        return data;
}

/* SHA-384 straight from OpenSSL: the tests' own reference, not the code under test's. */
static void ref_sha384(const void *data, size_t n, uint8_t out[48])
{
        unsigned len = 48;
        assert_int_equal(EVP_Digest(data, n, out, &len, EVP_sha384(), NULL), 1);
}

static void assert_hex(const uint8_t *got, size_t n, const char *want)
{
        char h[2 * 256 + 1];
        assert_true(n <= 256);
        hex_encode_buf(got, n, h, sizeof(h));
        assert_string_equal(h, want);
}

/* --- one step at a time ------------------------------------------------------------------ */

/* ABI "PAGE_INFO", written out byte by byte: DIGEST_CUR | CONTENTS | 70 00 | type | 00 x5 | GPA. */
static void test_page_update_hashes_the_page_info_the_abi_lays_out(void **state)
{
        uint8_t ld[48], want[48], contents[48], info[0x70];

        for (int i = 0; i < 48; i++) {
                ld[i] = (uint8_t) i;
                contents[i] = (uint8_t) (0xA0 + i);
        }
        memcpy(info, ld, 48);
        memcpy(info + 48, contents, 48);
        memcpy(info + 96,
               (const uint8_t[]){ 0x70, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, /* GPA: */
                                  0x00, 0xf0, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00 },
               16);
        ref_sha384(info, sizeof(info), want);
        snp_ld_update(ld, SNP_PAGE_NORMAL, 0xFFFFF000, contents);
        assert_memory_equal(ld, want, 48);
}

/* A NORMAL page's CONTENTS is the SHA-384 of its 4096 bytes. */
static void test_normal_page_contents_are_the_pages_sha384(void **state)
{
        static uint8_t page[4096];
        uint8_t ld[48] = {}, want[48] = {}, info[0x70] = {};

        memset(page, 0x5A, sizeof(page));
        ref_sha384(page, sizeof(page), info + 48);
        info[96] = 0x70;
        info[98] = 1;
        info[104 + 1] = 0x20; /* GPA 0x2000 */
        ref_sha384(info, sizeof(info), want);
        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_NORMAL, 0x2000, page, sizeof(page)), 0);
        assert_memory_equal(ld, want, 48);
}

/* A ZERO page: CONTENTS all zero, PAGE_TYPE 3; two pages are two updates at ascending GPAs. */
static void test_zero_pages_measure_zero_contents_at_each_gpa(void **state)
{
        uint8_t ld[48] = {}, want[48] = {}, info[0x70] = {};

        for (uint32_t gpa = 0x800000; gpa <= 0x801000; gpa += 0x1000) {
                memset(info, 0, sizeof(info));
                memcpy(info, want, 48);
                info[96] = 0x70;
                info[98] = 3;
                info[104] = (uint8_t) gpa;
                info[105] = (uint8_t) (gpa >> 8);
                info[106] = (uint8_t) (gpa >> 16);
                ref_sha384(info, sizeof(info), want);
        }
        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_ZERO, 0x800000, NULL, 0x2000), 0);
        assert_memory_equal(ld, want, 48);
        /* The hand value of one ZERO page at GPA 0 from a zero digest, as a literal too. */
        memset(ld, 0, 48);
        memset(info, 0, sizeof(info));
        info[96] = 0x70;
        info[98] = 3;
        ref_sha384(info, sizeof(info), want);
        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_ZERO, 0, NULL, 0x1000), 0);
        assert_memory_equal(ld, want, 48);
}

static void test_page_updates_refuse_partial_pages_and_wrong_data(void **state)
{
        static uint8_t page[4096];
        uint8_t ld[48] = {}, before[48] = {};

        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_NORMAL, 0, page, 100), -EINVAL);
        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_NORMAL, 0x10, page, 4096), -EINVAL);
        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_NORMAL, 0, NULL, 4096), -EINVAL);
        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_ZERO, 0, page, 4096), -EINVAL);
        assert_int_equal(snp_ld_update_pages(ld, (SnpPageType) 7, 0, NULL, 4096), -EINVAL);
        assert_memory_equal(ld, before, 48);
}

/* The ABI's example in gce-tcb-verifier's TestUpdateData: three NORMAL pages at GPA 0, zero but
 * for "LGTM" x4 at both ends (expected.json, "ld-primitive"). */
static void test_three_normal_pages_give_the_gce_primitive_vector(void **state)
{
        static uint8_t pages[3 * 4096];
        uint8_t ld[48] = {};

        memcpy(pages, "LGTMLGTMLGTMLGTM", 16);
        memcpy(pages + sizeof(pages) - 16, "LGTMLGTMLGTMLGTM", 16);
        assert_int_equal(snp_ld_update_pages(ld, SNP_PAGE_NORMAL, 0, pages, sizeof(pages)), 0);
        assert_hex(ld, 48,
                   "cba1cd767c33b30f96271837dbbae4081a945464a5af397b9b0336b5d8759ee88cc6b62c05d915"
                   "c4424a9ac5747437d4");
}

/* QEMU's table: header GUID 9438d606-4f22-4cc9-b479-a793d411fd21 + length 168, then cmdline
 * (97d02dd8-...), initrd (44baf731-...), kernel (4de79437-...) each GUID + 50 + SHA-256, 8 zero
 * bytes of padding. GUIDs in EFI order (first three fields little-endian). */
static void test_hashes_table_is_qemus_guided_layout(void **state)
{
        static const char want[] =
                "06d63894224fc94cb479a793d411fd21"
                "a800"
                "d82dd09720bd944caa78e7714d36ab2a"
                "3200"
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
                "31f7ba442f3ad74b9af141e29169781d"
                "3200"
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                "3794e74dd2ab7f42b835d5b172d2045b"
                "3200"
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                "0000000000000000";
        uint8_t empty[32], cmdline[32], table[SNP_HASHES_TABLE_SIZE];
        char h[2 * SNP_HASHES_TABLE_SIZE + 1];

        crypto_sha256("", 0, empty);
        /* No command line and "" both hash the single NUL: SHA-256("\0") = 6e340b9c... */
        snp_cmdline_sha256(NULL, cmdline);
        assert_hex(cmdline, 32, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        snp_cmdline_sha256("", cmdline);
        snp_hashes_table(cmdline, empty, empty, table);
        hex_encode_buf(table, sizeof(table), h, sizeof(h));
        assert_string_equal(h, want);
}

/* The VMSA the hand way: every non-zero field at its APM table B-4 offset, all else zero. */
typedef struct Field {
        unsigned off, size;
        uint64_t value;
} Field;

static void vmsa_by_hand(const Field *f, size_t n, uint8_t page[4096])
{
        memset(page, 0, 4096);
        for (size_t i = 0; i < n; i++)
                for (unsigned b = 0; b < f[i].size; b++)
                        page[f[i].off + b] = (uint8_t) (f[i].value >> (8 * b));
}

static size_t vmsa_fields(SnpVmm vmm, bool bsp, uint32_t rdx, uint64_t features, Field *f)
{
        uint32_t eip = bsp ? 0xFFFFFFF0 : 0x0080B004;
        size_t n = 0;
#define SEG(o, sel, attr)                                                                          \
        f[n++] = (Field){ o, 2, sel }, f[n++] = (Field){ o + 2, 2, attr },                         \
        f[n++] = (Field){ o + 4, 4, 0xFFFF }
        SEG(0x00, 0, 0x93);
        SEG(0x10, 0xF000, vmm == SNP_VMM_EC2 && bsp ? 0x9A : 0x9B);
        f[n++] = (Field){ 0x18, 8, eip & 0xFFFF0000 };
        SEG(0x20, 0, vmm == SNP_VMM_EC2 ? 0x92 : 0x93);
        SEG(0x30, 0, 0x93);
        SEG(0x40, 0, 0x93);
        SEG(0x50, 0, 0x93);
        SEG(0x60, 0, 0);
        SEG(0x70, 0, 0x82);
        SEG(0x80, 0, 0);
        SEG(0x90, 0, vmm == SNP_VMM_EC2 ? 0x83 : 0x8B);
#undef SEG
        f[n++] = (Field){ 0xD0, 8, 0x1000 };
        f[n++] = (Field){ 0x148, 8, 0x40 };
        f[n++] = (Field){ 0x158, 8, 0x10 };
        f[n++] = (Field){ 0x160, 8, 0x400 };
        f[n++] = (Field){ 0x168, 8, 0xFFFF0FF0 };
        f[n++] = (Field){ 0x170, 8, 0x2 };
        f[n++] = (Field){ 0x178, 8, eip & 0xFFFF };
        f[n++] = (Field){ 0x268, 8, vmm == SNP_VMM_GCE ? 0x00070106 : 0x0007040600070406 };
        f[n++] = (Field){ 0x310, 8, vmm == SNP_VMM_QEMU ? rdx : 0x600 };
        f[n++] = (Field){ 0x3B0, 8, features };
        f[n++] = (Field){ 0x3E8, 8, 0x1 };
        if (vmm == SNP_VMM_QEMU) {
                f[n++] = (Field){ 0x408, 4, 0x1F80 };
                f[n++] = (Field){ 0x410, 2, 0x37F };
        }
        return n;
}

/* CPUID(1).EAX from family/model/stepping (AMD CPUID spec): family above 0xF goes to the
 * extended family, the model's high nibble to the extended model. */
static uint32_t signature(unsigned family, unsigned model, unsigned stepping)
{
        unsigned fam_lo = family > 0xF ? 0xF : family, fam_hi = family > 0xF ? family - 0xF : 0;
        return (fam_hi << 20) | ((model >> 4) << 16) | (fam_lo << 8) | ((model & 0xF) << 4) |
               stepping;
}

static void test_vmsa_page_per_vcpu_type_and_vmm_matches_the_hand_layout(void **state)
{
        static const struct {
                const char *name;
                unsigned family, model, stepping;
        } types[] = {
                { "EPYC", 23, 1, 2 },
                { "EPYC-v4", 23, 1, 2 },
                { "EPYC-Milan", 25, 1, 1 },
                { "EPYC-Genoa", 25, 17, 0 },
        };
        static uint8_t got[4096], want[4096];
        Field f[64];

        assert_int_equal(signature(23, 1, 2), 0x00800F12);
        assert_int_equal(signature(25, 17, 0), 0x00A10F10);
        for (size_t t = 0; t < ELEMENTSOF(types); t++) {
                uint32_t sig = 0;

                assert_int_equal(snp_vcpu_signature_from_name(types[t].name, &sig), 0);
                assert_int_equal(sig,
                                 signature(types[t].family, types[t].model, types[t].stepping));
                for (int vmm = 0; vmm < _SNP_VMM_MAX; vmm++)
                        for (int bsp = 0; bsp <= 1; bsp++) {
                                size_t n = vmsa_fields((SnpVmm) vmm, bsp, sig, 0x21, f);

                                vmsa_by_hand(f, n, want);
                                snp_vmsa_page((SnpVmm) vmm, bsp, 0x0080B004, sig, 0x21, got);
                                assert_memory_equal(got, want, 4096);
                        }
        }
}

static void test_unknown_vcpu_type_is_refused(void **state)
{
        uint32_t sig = 0xdeadbeef;

        assert_int_equal(snp_vcpu_signature_from_name("EPYC-v9", &sig), -EINVAL);
        assert_int_equal(snp_vcpu_signature_from_name("host", &sig), -EINVAL);
        assert_int_equal(sig, 0xdeadbeef);
        assert_int_equal(snp_vmm_from_string("QEMU"), SNP_VMM_QEMU);
        assert_int_equal(snp_vmm_from_string("kvmtool"), _SNP_VMM_INVALID);
}

/* --- the firmware's GUID table and SEV metadata ------------------------------------------- */

static void test_amdsev_firmware_metadata_is_read_as_edk2_lays_it_out(void **state)
{
        static const SnpFirmwareSection want[] = {
                { 0x800000, 0x9000, 1 }, { 0x80A000, 0x3000, 1 }, { 0x80D000, 0x1000, 2 },
                { 0x80E000, 0x1000, 3 }, { 0x80F000, 0x1000, 4 }, { 0x810000, 0x1000, 0x10 },
                { 0x811000, 0xF000, 1 },
        };
        _cleanup_(freep) uint8_t *fw = NULL;
        SnpFirmware info;
        size_t n;

        fw = load(AMDSEV, &n);
        assert_int_equal(snp_firmware_parse(fw, n, &info, NULL), 0);
        assert_int_equal(info.gpa, 0xFFFFF000);
        assert_true(info.has_reset_block);
        assert_int_equal(info.ap_eip, 0x0080B004);
        assert_true(info.has_hash_table);
        assert_int_equal(info.hash_table_gpa, 0x810C00);
        assert_int_equal(info.hash_table_size, 0x400);
        assert_true(info.has_metadata);
        assert_int_equal(info.n_sections, ELEMENTSOF(want));
        assert_memory_equal(info.sections, want, sizeof(want));
}

static void test_ovmfx64_firmware_has_no_kernel_hashes_section(void **state)
{
        _cleanup_(freep) uint8_t *fw = NULL;
        SnpFirmware info;
        size_t n;

        fw = load(OVMFX64, &n);
        assert_int_equal(snp_firmware_parse(fw, n, &info, NULL), 0);
        assert_true(info.has_metadata);
        assert_int_equal(info.n_sections, 6);
        assert_false(info.has_hash_table);
        for (size_t i = 0; i < info.n_sections; i++)
                assert_int_not_equal(info.sections[i].type, SNP_SECTION_KERNEL_HASHES);
        assert_int_equal(info.sections[5].gpa, 0x810000);
        assert_int_equal(info.sections[5].size, 0x10000);
}

/* Offsets into the 4 KiB AmdSev fixture: the footer's u16 table length at 0xFCE, the metadata
 * offset entry's u32 and the ASEV header found from it. */
static void test_malformed_guid_table_and_metadata_are_refused_with_a_reason(void **state)
{
        _cleanup_(freep) uint8_t *orig = NULL;
        uint8_t fw[4096];
        SnpFirmware info;
        size_t n, meta;
        Diag d;

        orig = load(AMDSEV, &n);
        assert_int_equal(n, 4096);
        assert_int_equal(snp_firmware_parse(orig, n, &info, NULL), 0);
        meta = n - info.metadata_offset;
        assert_memory_equal(orig + meta, "ASEV", 4);

        /* The table claims more bytes than the image has. */
        memcpy(fw, orig, n);
        fw[0xFCE] = 0xFF;
        fw[0xFCF] = 0xFF;
        diag_clear(&d);
        assert_int_equal(snp_firmware_parse(fw, n, &info, &d), -EBADMSG);
        assert_string_equal(d.check, "snp-firmware-format");
        assert_non_null(strstr(d.message, "outside the image"));

        /* The metadata's magic broken. */
        memcpy(fw, orig, n);
        fw[meta] = 'X';
        diag_clear(&d);
        assert_int_equal(snp_firmware_parse(fw, n, &info, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "ASEV"));

        /* A section count the length does not cover. */
        memcpy(fw, orig, n);
        fw[meta + 12] = 200;
        diag_clear(&d);
        assert_int_equal(snp_firmware_parse(fw, n, &info, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "sections"));

        /* An unknown section type (the first section's type field). */
        memcpy(fw, orig, n);
        fw[meta + 16 + 8] = 9;
        diag_clear(&d);
        assert_int_equal(snp_firmware_parse(fw, n, &info, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "type 0x9"));

        /* A section that is not whole pages. */
        memcpy(fw, orig, n);
        fw[meta + 16 + 4] = 0x10;
        diag_clear(&d);
        assert_int_equal(snp_firmware_parse(fw, n, &info, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "whole pages"));

        /* Not whole pages of firmware. */
        diag_clear(&d);
        assert_int_equal(snp_firmware_parse(orig, 4000, &info, &d), -EBADMSG);
        assert_string_equal(d.check, "snp-firmware-size");
}

/* --- the whole launch against the reference vectors --------------------------------------- */

typedef struct Case {
        const char *name, *mode, *ovmf, *vcpu_type, *vmm, *kernel, *initrd, *append, *expected;
        int64_t vcpus;
        uint64_t features;
} Case;

static const char *opt_string(const json_t *o, const char *key)
{
        const json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int input_for(const Case *c, uint8_t *fw, size_t n, SnpLaunchInput *in)
{
        uint8_t empty[32];

        *in = (SnpLaunchInput){ .firmware = fw,
                                .firmware_size = n,
                                .vcpus = (unsigned) c->vcpus,
                                .guest_features = c->features };
        in->vmm = snp_vmm_from_string(c->vmm);
        assert_true(in->vmm >= 0);
        if (c->vcpu_type)
                assert_int_equal(snp_vcpu_signature_from_name(c->vcpu_type, &in->vcpu_signature),
                                 0);
        if (c->kernel) {
                /* The vectors' kernel and initrd are /dev/null: empty files. */
                assert_string_equal(c->kernel, "/dev/null");
                assert_string_equal(c->initrd, "/dev/null");
                crypto_sha256("", 0, empty);
                in->direct_boot = true;
                memcpy(in->kernel_sha256, empty, 32);
                memcpy(in->initrd_sha256, empty, 32);
                snp_cmdline_sha256(c->append, in->cmdline_sha256);
        }
        return 0;
}

static void test_every_reference_vector_gives_its_measurement(void **state)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        json_t *cases, *o;
        size_t i, launches = 0, others = 0;

        assert_int_equal(
                json_parse_file(testdata_path("snp-measure/expected.json"), 1 << 20, &j, NULL), 0);
        cases = json_object_get(j, "cases");
        assert_true(json_array_size(cases) >= 8);
        json_array_foreach (cases, i, o) {
                Case c = {
                        .name = opt_string(o, "name"),
                        .mode = opt_string(o, "mode"),
                        .ovmf = opt_string(o, "ovmf"),
                        .vcpu_type = opt_string(o, "vcpu_type"),
                        .vmm = opt_string(o, "vmm_type"),
                        .kernel = opt_string(o, "kernel"),
                        .initrd = opt_string(o, "initrd"),
                        .append = opt_string(o, "append"),
                        .expected = opt_string(o, "expected"),
                        .vcpus = json_integer_value(json_object_get(o, "vcpus")),
                };
                char rel[256], h[97];
                _cleanup_(freep) uint8_t *fw = NULL;
                uint8_t ld[48];
                SnpLaunchInput in;
                size_t n;
                Diag d;

                assert_non_null(c.expected);
                print_message("  %s\n", c.name);
                if (strcmp(c.mode, "ld-primitive") == 0) {
                        others++; /* test_three_normal_pages_give_the_gce_primitive_vector */
                        continue;
                }
                (void) snprintf(rel, sizeof(rel), "snp-measure/%s", c.ovmf);
                fw = load(rel, &n);
                diag_clear(&d);
                if (strcmp(c.mode, "snp:ovmf-hash") == 0) {
                        assert_int_equal(snp_firmware_digest(fw, n, ld, &d), 0);
                        hex_encode_buf(ld, 48, h, sizeof(h));
                        assert_string_equal(h, c.expected);
                        others++;
                        continue;
                }
                assert_string_equal(c.mode, "snp");
                c.features = strtoull(opt_string(o, "guest_features"), NULL, 16);
                input_for(&c, fw, n, &in);
                assert_int_equal(snp_launch_digest(&in, ld, &d), 0);
                hex_encode_buf(ld, 48, h, sizeof(h));
                assert_string_equal(h, c.expected);
                launches++;
        }
        assert_int_equal(launches, 6);
        assert_int_equal(others, 2);
}

static void launch_amdsev(uint8_t *fw, size_t n, const uint8_t *seed, uint8_t ld[48])
{
        Case c = { .vmm = "qemu",
                   .vcpu_type = "EPYC-v4",
                   .vcpus = 4,
                   .features = 0x21,
                   .kernel = "/dev/null",
                   .initrd = "/dev/null",
                   .append = "" };
        SnpLaunchInput in;

        input_for(&c, fw, n, &in);
        in.firmware_digest = seed;
        assert_int_equal(snp_launch_digest(&in, ld, NULL), 0);
}

/* test_snp_with_multiple_vcpus_default: 4 vCPUs, EPYC-v4, 0x21, empty kernel/initrd/append. */
#define AMDSEV_4VCPU                                                                               \
        "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e241" \
        "4a631942"

static void test_one_changed_byte_anywhere_in_the_firmware_changes_or_refuses(void **state)
{
        _cleanup_(freep) uint8_t *fw = NULL;
        uint8_t ld[48];
        size_t n;

        fw = load(AMDSEV, &n);
        launch_amdsev(fw, n, NULL, ld);
        assert_hex(ld, 48, AMDSEV_4VCPU);
        /* Every byte of the image, one at a time: the digest differs, or the firmware is refused
         * (a byte of its GUID table or metadata); never the same value. */
        for (size_t i = 0; i < n; i++) {
                SnpLaunchInput in = { .firmware = fw,
                                      .firmware_size = n,
                                      .vcpus = 4,
                                      .vcpu_signature = 0x00800F12,
                                      .guest_features = 0x21 };
                uint8_t other[48];
                int r;

                fw[i] ^= 0x01;
                r = snp_launch_digest(&in, other, NULL);
                fw[i] ^= 0x01;
                if (r >= 0)
                        assert_memory_not_equal(other, ld, 48);
        }
}

static void test_firmware_digest_given_in_advance_gives_the_same_measurement(void **state)
{
        _cleanup_(freep) uint8_t *fw = NULL;
        uint8_t seed[48], ld[48];
        char h[97];
        size_t n;

        fw = load(AMDSEV, &n);
        assert_int_equal(snp_firmware_digest(fw, n, seed, NULL), 0);
        /* The page contents no longer matter, only the metadata: zero the code before it. */
        memset(fw, 0, 0x400);
        launch_amdsev(fw, n, seed, ld);
        assert_hex(ld, 48, AMDSEV_4VCPU);
        /* A different digest given in advance: a different measurement. */
        seed[0] ^= 1;
        launch_amdsev(fw, n, seed, ld);
        hex_encode_buf(ld, 48, h, sizeof(h));
        assert_string_not_equal(h, AMDSEV_4VCPU);
}

static void test_launch_refusals_name_their_reason(void **state)
{
        _cleanup_(freep) uint8_t *amdsev = NULL, *x64 = NULL;
        static uint8_t blank[8192];
        SnpLaunchInput in;
        uint8_t ld[48], poison[48];
        size_t n, nx;
        Diag d;

        amdsev = load(AMDSEV, &n);
        x64 = load(OVMFX64, &nx);
        memset(ld, 0xAA, 48);
        memcpy(poison, ld, 48);

        /* OvmfX64 with a kernel: its metadata has no SNP_KERNEL_HASHES section. */
        in = (SnpLaunchInput){
                .firmware = x64, .firmware_size = nx, .vcpus = 1, .direct_boot = true
        };
        diag_clear(&d);
        assert_int_equal(snp_launch_digest(&in, ld, &d), -EOPNOTSUPP);
        assert_string_equal(d.check, "snp-kernel-hashes");
        assert_non_null(strstr(d.message, "SNP_KERNEL_HASHES"));

        in = (SnpLaunchInput){ .firmware = amdsev, .firmware_size = n, .vcpus = 0 };
        diag_clear(&d);
        assert_int_equal(snp_launch_digest(&in, ld, &d), -ERANGE);
        assert_string_equal(d.check, "snp-vcpus");
        in.vcpus = SNP_LAUNCH_VCPUS_MAX + 1;
        assert_int_equal(snp_launch_digest(&in, ld, &d), -ERANGE);
        in.vcpus = SNP_LAUNCH_VCPUS_MAX;
        assert_int_equal(snp_launch_digest(&in, poison, NULL), 0);
        memset(poison, 0xAA, 48);

        /* Not a whole number of pages. */
        in = (SnpLaunchInput){ .firmware = amdsev, .firmware_size = n - 16, .vcpus = 1 };
        diag_clear(&d);
        assert_int_equal(snp_launch_digest(&in, ld, &d), -EBADMSG);
        assert_string_equal(d.check, "snp-firmware-size");

        /* No GUID table, so no SEV metadata (an image that is not OVMF). */
        in = (SnpLaunchInput){ .firmware = blank, .firmware_size = sizeof(blank), .vcpus = 1 };
        diag_clear(&d);
        assert_int_equal(snp_launch_digest(&in, ld, &d), -ENODATA);
        assert_string_equal(d.check, "snp-firmware-metadata");

        /* No SEV-ES reset block (its GUID broken): one vCPU is fine, more have no start
         * address. The reset block's GUID is the entry right before the footer's. */
        {
                _cleanup_(freep) uint8_t *copy = malloc(n);
                SnpFirmware info;
                const uint8_t reset_guid[4] = { 0xde, 0x71, 0xf7, 0x00 };
                uint8_t *g;

                assert_non_null(copy);
                memcpy(copy, amdsev, n);
                g = memmem(copy, n, reset_guid, sizeof(reset_guid));
                assert_non_null(g);
                g[0] ^= 0xFF;
                assert_int_equal(snp_firmware_parse(copy, n, &info, NULL), 0);
                assert_false(info.has_reset_block);
                in = (SnpLaunchInput){ .firmware = copy, .firmware_size = n, .vcpus = 1 };
                assert_int_equal(snp_launch_digest(&in, poison, NULL), 0);
                memset(poison, 0xAA, 48);
                in.vcpus = 2;
                diag_clear(&d);
                assert_int_equal(snp_launch_digest(&in, ld, &d), -ENODATA);
                assert_string_equal(d.check, "snp-firmware-reset-block");
        }

        /* A hash table block outside the SNP_KERNEL_HASHES page: the measured page would not
         * hold the table. The block's base is the first u32 of its entry (GUID 7255371f). */
        {
                _cleanup_(freep) uint8_t *copy = malloc(n);
                const uint8_t hash_guid[4] = { 0x1f, 0x37, 0x55, 0x72 };
                uint8_t *g;

                assert_non_null(copy);
                memcpy(copy, amdsev, n);
                g = memmem(copy, n, hash_guid, sizeof(hash_guid));
                assert_non_null(g);
                /* data (base, size) | u16 length | GUID: the base's second byte, 0x0C -> 0x1C */
                assert_int_equal(g[-2 - 8 + 1], 0x0C);
                g[-2 - 8 + 1] = 0x1C;
                in = (SnpLaunchInput){
                        .firmware = copy, .firmware_size = n, .vcpus = 1, .direct_boot = true
                };
                diag_clear(&d);
                assert_int_equal(snp_launch_digest(&in, ld, &d), -EBADMSG);
                assert_string_equal(d.check, "snp-kernel-hashes");
                in.direct_boot = false;
                assert_int_equal(snp_launch_digest(&in, poison, NULL), 0);
                memset(poison, 0xAA, 48);
        }

        /* Nothing was written on any refusal. */
        assert_memory_equal(ld, poison, 48);
}

/* 1, 8 and 64 vCPUs differ, and 4097 would be refused: each vCPU's VMSA is measured. */
static void test_each_vcpu_adds_a_vmsa_page(void **state)
{
        _cleanup_(freep) uint8_t *fw = NULL;
        uint8_t a[48], b[48], c[48];
        SnpLaunchInput in;
        size_t n;

        fw = load(AMDSEV, &n);
        in = (SnpLaunchInput){ .firmware = fw,
                               .firmware_size = n,
                               .vcpus = 1,
                               .vcpu_signature = 0x00800F12,
                               .guest_features = 1 };
        assert_int_equal(snp_launch_digest(&in, a, NULL), 0);
        in.vcpus = 2;
        assert_int_equal(snp_launch_digest(&in, b, NULL), 0);
        /* Two vCPUs = one vCPU's digest extended by the AP's VMSA, by hand. */
        uint8_t page[4096], hash[48];
        snp_vmsa_page(SNP_VMM_QEMU, false, 0x0080B004, 0x00800F12, 1, page);
        ref_sha384(page, sizeof(page), hash);
        memcpy(c, a, 48);
        snp_ld_update(c, SNP_PAGE_VMSA, 0xFFFFFFFFF000, hash);
        assert_memory_equal(b, c, 48);
}

/* --- the policy: snp.launchMeasurements, launch/committed TCB, CHIP_IDs on a real report -- */

typedef struct Seen {
        char names[32][DIAG_CHECK_MAX];
        char details[32][DIAG_MESSAGE_MAX];
        char expected[32][128];
        bool ok[32];
        size_t n;
} Seen;

static void seen_cb(void *userdata, const char *name, bool ok, const char *expected,
                    const char *actual, const char *detail)
{
        Seen *s = userdata;
        if (s->n >= 32)
                return;
        (void) snprintf(s->names[s->n], DIAG_CHECK_MAX, "%s", name);
        (void) snprintf(s->details[s->n], DIAG_MESSAGE_MAX, "%s", detail);
        (void) snprintf(s->expected[s->n], 128, "%s", expected ?: "");
        s->ok[s->n++] = ok;
}

static size_t seen_find(const Seen *s, const char *name, size_t from)
{
        for (size_t i = from; i < s->n; i++)
                if (strcmp(s->names[i], name) == 0)
                        return i;
        fail_msg("no check %s", name);
        return 0;
}

/* trustee-milan: reported, committed and launch TCB 3/0/8/115. */
static void milan_report(SnpReport *rep)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        size_t n;

        raw = load("snp/trustee-milan/report.bin", &n);
        assert_int_equal(snp_report_parse(raw, n, rep, NULL), 0);
}

static void entry(SnpLaunchEntry *e, const uint8_t m[48], unsigned vcpus, const char *type)
{
        *e = (SnpLaunchEntry){ .vcpus = vcpus, .guest_features = 1 };
        memcpy(e->measurement, m, 48);
        (void) snprintf(e->vcpu_type, sizeof(e->vcpu_type), "%s", type);
        (void) snprintf(e->vmm, sizeof(e->vmm), "qemu");
}

static void test_policy_names_the_launch_entry_a_real_report_matches(void **state)
{
        static const uint8_t other[48] = { 1 };
        SnpReport rep;
        SnpPolicy p;
        Seen seen = {};
        size_t i;

        milan_report(&rep);
        snp_policy_defaults(&p);
        entry(&p.launch[0], other, 1, "EPYC-v4");
        entry(&p.launch[1], rep.measurement, 8, "EPYC-Milan");
        p.n_launch = 2;
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, seen_cb, &seen, NULL),
                         0);
        i = seen_find(&seen, "snp-measurement", 0);
        assert_true(seen.ok[i]);
        assert_string_equal(seen.details[i], "the launch measurement is "
                                             "snp.launchMeasurements[1]: 8 vCPUs EPYC-Milan, "
                                             "qemu, guest features 0x1");
}

static void test_policy_mismatch_lists_every_allowed_value_next_to_the_actual(void **state)
{
        static const uint8_t a[48] = { 1 }, b[48] = { 2 };
        char ha[97], hb[97], hr[97];
        SnpReport rep;
        SnpPolicy p;
        Seen seen = {};
        size_t i;
        Diag d;

        milan_report(&rep);
        snp_policy_defaults(&p);
        entry(&p.launch[0], a, 1, "EPYC-v4");
        entry(&p.launch[1], b, 2, "EPYC-Genoa");
        p.n_launch = 2;
        hex_encode_buf(a, 48, ha, sizeof(ha));
        hex_encode_buf(b, 48, hb, sizeof(hb));
        hex_encode_buf(rep.measurement, 48, hr, sizeof(hr));
        diag_clear(&d);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, seen_cb, &seen, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-measurement");
        assert_string_equal(d.actual, hr);
        i = seen_find(&seen, "snp-measurement-listed", 0);
        assert_false(seen.ok[i]);
        assert_string_equal(seen.expected[i], ha);
        assert_non_null(strstr(seen.details[i], "1 vCPU EPYC-v4"));
        i = seen_find(&seen, "snp-measurement-listed", i + 1);
        assert_string_equal(seen.expected[i], hb);
        /* Plain snp.measurements count as well: one that differs is refused with the expected
         * value next to the actual one, the report's own accepted. */
        snp_policy_defaults(&p);
        memcpy(p.measurements[0], a, 48);
        p.n_measurements = 1;
        diag_clear(&d);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-measurement");
        assert_string_equal(d.expected, ha);
        assert_string_equal(d.actual, hr);
        memcpy(p.measurements[0], rep.measurement, 48);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, NULL), 0);
}

static void test_launch_and_committed_tcb_minimums_are_checked_not_only_the_reported(void **state)
{
        SnpReport rep;
        SnpPolicy p;
        Diag d;

        milan_report(&rep);
        snp_policy_defaults(&p);
        p.check_launch_tcb = true;
        p.min_launch_tcb = (SnpTcb){ .bootloader = 3, .snp = 8, .microcode = 115 };
        p.check_committed_tcb = true;
        p.min_committed_tcb = p.min_launch_tcb;
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, NULL), 0);
        /* The reported TCB alone would pass: only the launch TCB is raised. */
        p.min_launch_tcb.microcode = 116;
        diag_clear(&d);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-launch-tcb-microcode");
        p.min_launch_tcb.microcode = 115;
        p.min_committed_tcb.snp = 9;
        diag_clear(&d);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-committed-tcb-snp");
        assert_string_equal(d.actual, "8");
        /* A raw committed TCB below the launch one, as a rolled-back firmware would commit. */
        rep.committed_tcb_raw = 0x7307000000000003ULL;
        p.min_committed_tcb.snp = 8;
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, NULL),
                         -EPERM);
}

static void test_chip_id_allow_list_admits_only_listed_hosts(void **state)
{
        SnpReport rep;
        SnpPolicy p;
        Diag d;

        milan_report(&rep);
        snp_policy_defaults(&p);
        memset(p.chip_ids[0], 0xAB, 64);
        p.n_chip_ids = 1;
        diag_clear(&d);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-chip-id");
        memcpy(p.chip_ids[1], rep.chip_id, 64);
        p.n_chip_ids = 2;
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, NULL), 0);
}

/* HOST_DATA bound to the cluster: SHA-256("cloister/v1/snp-host-data" || cluster ID), checked
 * only once the verifier binds the cluster ID, refused before. */
static void test_host_data_bound_to_the_cluster_id(void **state)
{
        static const char context[] = "cloister/v1/snp-host-data";
        uint8_t id[32], other[32], buf[sizeof(context) - 1 + 32], want[32];
        unsigned len = 32;
        SnpReport rep;
        SnpPolicy p;
        Diag d;

        for (int i = 0; i < 32; i++) {
                id[i] = (uint8_t) i;
                other[i] = (uint8_t) (i + 1);
        }
        memcpy(buf, context, sizeof(context) - 1);
        memcpy(buf + sizeof(context) - 1, id, 32);
        assert_int_equal(EVP_Digest(buf, sizeof(buf), want, &len, EVP_sha256(), NULL), 1);
        milan_report(&rep);
        snp_host_data_for_cluster(id, rep.host_data);
        assert_memory_equal(rep.host_data, want, 32);

        snp_policy_defaults(&p);
        p.host_data_from_cluster = true;
        diag_clear(&d);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-host-data");
        assert_non_null(strstr(d.message, "no cluster ID"));
        snp_policy_bind_cluster(&p, id);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, NULL), 0);
        snp_policy_bind_cluster(&p, other);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, NULL),
                         -EPERM);
        /* Without the flag, binding changes nothing. */
        snp_policy_defaults(&p);
        snp_policy_bind_cluster(&p, other);
        assert_false(p.check_host_data);
}

static void test_launch_entries_parse_refuses_duplicates_and_unknown_types(void **state)
{
        static const char *const bad[] = {
                /* the same parameters twice */
                "{\"l\": [{\"measurement\": \"@\", \"vcpus\": 2, \"vmm\": \"gce\", "
                "\"guestFeatures\": \"0x1\"}, {\"measurement\": \"@\", \"vcpus\": 2, "
                "\"vmm\": \"gce\", \"guestFeatures\": \"0x1\"}]}",
                "{\"l\": [{\"measurement\": \"@\", \"vcpus\": 2, \"vmm\": \"qemu\", "
                "\"vcpuType\": \"EPYC-v9\", \"guestFeatures\": \"0x1\"}]}",
                "{\"l\": [{\"measurement\": \"@\", \"vcpus\": 2, \"vmm\": \"gce\", "
                "\"guestFeatures\": \"1\"}]}",
                "{\"l\": [{\"measurement\": \"@\", \"vcpus\": 2, \"vmm\": \"gce\", "
                "\"guestFeatures\": \"0x1\", \"extra\": 1}]}",
        };
        char zeros[97], doc[1024];
        SnpLaunchEntry out[4];
        size_t n = 99;

        memset(zeros, '0', 96);
        zeros[96] = 0;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(json_decrefp) json_t *j = NULL;
                Diag d;
                JsonCtx ctx = { .source = "t.json", .path = "", .diag = &d };

                size_t k = 0;

                /* Each @ stands for a 96-digit measurement. */
                for (const char *c = bad[i]; *c && k + 97 < sizeof(doc); c++)
                        if (*c == '@') {
                                memcpy(doc + k, zeros, 96);
                                k += 96;
                        } else
                                doc[k++] = *c;
                doc[k] = 0;
                assert_int_equal(json_parse_buffer(doc, strlen(doc), "t.json", &j, NULL), 0);
                diag_clear(&d);
                assert_int_equal(snp_launch_entries_parse(&ctx, j, "l", out, 4, &n), -EBADMSG);
                assert_int_equal(n, 99);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_page_update_hashes_the_page_info_the_abi_lays_out),
                cmocka_unit_test(test_normal_page_contents_are_the_pages_sha384),
                cmocka_unit_test(test_zero_pages_measure_zero_contents_at_each_gpa),
                cmocka_unit_test(test_page_updates_refuse_partial_pages_and_wrong_data),
                cmocka_unit_test(test_three_normal_pages_give_the_gce_primitive_vector),
                cmocka_unit_test(test_hashes_table_is_qemus_guided_layout),
                cmocka_unit_test(test_vmsa_page_per_vcpu_type_and_vmm_matches_the_hand_layout),
                cmocka_unit_test(test_unknown_vcpu_type_is_refused),
                cmocka_unit_test(test_amdsev_firmware_metadata_is_read_as_edk2_lays_it_out),
                cmocka_unit_test(test_ovmfx64_firmware_has_no_kernel_hashes_section),
                cmocka_unit_test(test_malformed_guid_table_and_metadata_are_refused_with_a_reason),
                cmocka_unit_test(test_every_reference_vector_gives_its_measurement),
                cmocka_unit_test(test_one_changed_byte_anywhere_in_the_firmware_changes_or_refuses),
                cmocka_unit_test(test_firmware_digest_given_in_advance_gives_the_same_measurement),
                cmocka_unit_test(test_launch_refusals_name_their_reason),
                cmocka_unit_test(test_each_vcpu_adds_a_vmsa_page),
                cmocka_unit_test(test_policy_names_the_launch_entry_a_real_report_matches),
                cmocka_unit_test(test_policy_mismatch_lists_every_allowed_value_next_to_the_actual),
                cmocka_unit_test(
                        test_launch_and_committed_tcb_minimums_are_checked_not_only_the_reported),
                cmocka_unit_test(test_chip_id_allow_list_admits_only_listed_hosts),
                cmocka_unit_test(test_host_data_bound_to_the_cluster_id),
                cmocka_unit_test(test_launch_entries_parse_refuses_duplicates_and_unknown_types),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
