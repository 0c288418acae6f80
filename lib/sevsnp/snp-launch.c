/* SPDX-License-Identifier: Apache-2.0 */
/* The SEV-SNP launch digest computed offline (snp-launch.h; docs/snp.md, "Launch measurement"). */
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "cloister/crypto.h"
#include "cloister/reader.h"
#include "cloister/snp-launch.h"

#define FOUR_GIB UINT64_C(0x100000000)

static const char *const vmm_names[_SNP_VMM_MAX] = {
        [SNP_VMM_QEMU] = "qemu",
        [SNP_VMM_EC2] = "ec2",
        [SNP_VMM_GCE] = "gce",
};

const char *snp_vmm_to_string(SnpVmm v)
{
        return v >= 0 && v < _SNP_VMM_MAX ? vmm_names[v] : NULL;
}

SnpVmm snp_vmm_from_string(const char *s)
{
        for (int i = 0; i < _SNP_VMM_MAX; i++)
                if (strcasecmp(vmm_names[i], s) == 0)
                        return (SnpVmm) i;
        return _SNP_VMM_INVALID;
}

/* CPUID(1).EAX = (ext family << 20) | (ext model << 16) | (family << 8) | (model << 4) | stepping
 * of QEMU's named models (target/i386/cpu.c): EPYC family 23 model 1 stepping 2, Rome 23/49/0,
 * Milan 25/1/1, Genoa 25/17/0, Turin 26/0/0. */
static const struct {
        const char *name;
        uint32_t signature;
} vcpu_types[] = {
        { "EPYC", 0x00800F12 },          { "EPYC-v1", 0x00800F12 },
        { "EPYC-v2", 0x00800F12 },       { "EPYC-v3", 0x00800F12 },
        { "EPYC-v4", 0x00800F12 },       { "EPYC-IBPB", 0x00800F12 },
        { "EPYC-Rome", 0x00830F10 },     { "EPYC-Milan", 0x00A00F11 },
        { "EPYC-Milan-v1", 0x00A00F11 }, { "EPYC-Milan-v2", 0x00A00F11 },
        { "EPYC-Genoa", 0x00A10F10 },    { "EPYC-Genoa-v1", 0x00A10F10 },
        { "EPYC-Turin", 0x00B00F00 },
};

int snp_vcpu_signature_from_name(const char *name, uint32_t *ret)
{
        for (size_t i = 0; i < ELEMENTSOF(vcpu_types); i++)
                if (strcasecmp(vcpu_types[i].name, name) == 0) {
                        *ret = vcpu_types[i].signature;
                        return 0;
                }
        return -EINVAL;
}

const char *snp_vcpu_type_name(size_t i)
{
        return i < ELEMENTSOF(vcpu_types) ? vcpu_types[i].name : NULL;
}

const char *snp_section_type_to_string(uint32_t type)
{
        switch (type) {
        case SNP_SECTION_SEC_MEM:
                return "SNP_SEC_MEM";
        case SNP_SECTION_SECRETS:
                return "SNP_SECRETS";
        case SNP_SECTION_CPUID:
                return "CPUID";
        case SNP_SECTION_SVSM_CAA:
                return "SVSM_CAA";
        case SNP_SECTION_KERNEL_HASHES:
                return "SNP_KERNEL_HASHES";
        default:
                return NULL;
        }
}

static void put_le16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
        put_le16(p, (uint16_t) v);
        put_le16(p + 2, (uint16_t) (v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}

/* Two SHA-384s per page (its contents, then PAGE_INFO): one context, fetched once and reused
 * for every page of a call, keeps a firmware's digest close to hashing the file once
 * (tests/bench/bench-snp-launch.c). */
static EVP_MD *sha384_md;
static pthread_once_t sha384_once = PTHREAD_ONCE_INIT;

static void sha384_fetch(void)
{
        sha384_md = EVP_MD_fetch(NULL, "SHA384", NULL);
}

__attribute__((destructor)) static void sha384_free(void)
{
        EVP_MD_free(sha384_md);
        sha384_md = NULL;
}

static EVP_MD_CTX *hasher_new(void)
{
        EVP_MD_CTX *ctx;

        (void) pthread_once(&sha384_once, sha384_fetch);
        ctx = sha384_md ? EVP_MD_CTX_new() : NULL;
        /* A built-in digest cannot fail short of memory exhaustion or corruption. */
        if (!ctx)
                abort();
        return ctx;
}

static void hasher_digest(EVP_MD_CTX *ctx, const void *data, size_t size,
                          uint8_t out[static SNP_LD_SIZE])
{
        unsigned n = 0;

        if (EVP_DigestInit_ex(ctx, sha384_md, NULL) != 1 ||
            EVP_DigestUpdate(ctx, data, size) != 1 || EVP_DigestFinal_ex(ctx, out, &n) != 1 ||
            n != SNP_LD_SIZE)
                abort();
}

static void sha384(const void *data, size_t size, uint8_t out[static SNP_LD_SIZE])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = hasher_new();
        hasher_digest(ctx, data, size, out);
}

static void ld_update(EVP_MD_CTX *ctx, uint8_t ld[static SNP_LD_SIZE], SnpPageType type,
                      uint64_t gpa, const uint8_t contents[static SNP_LD_SIZE])
{
        uint8_t info[SNP_PAGE_INFO_SIZE] = {};

        /* ABI, "PAGE_INFO": DIGEST_CUR 0x00, CONTENTS 0x30, LENGTH 0x60, PAGE_TYPE 0x62,
         * IMI_PAGE 0x63 and VMPL3..1_PERMS 0x64..0x66 zero at launch, reserved 0x67, GPA 0x68. */
        memcpy(info, ld, SNP_LD_SIZE);
        memcpy(info + 0x30, contents, SNP_LD_SIZE);
        put_le16(info + 0x60, SNP_PAGE_INFO_SIZE);
        info[0x62] = (uint8_t) type;
        put_le64(info + 0x68, gpa);
        hasher_digest(ctx, info, sizeof(info), ld);
}

void snp_ld_update(uint8_t ld[static SNP_LD_SIZE], SnpPageType type, uint64_t gpa,
                   const uint8_t contents[static SNP_LD_SIZE])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = hasher_new();
        ld_update(ctx, ld, type, gpa, contents);
}

int snp_ld_update_pages(uint8_t ld[static SNP_LD_SIZE], SnpPageType type, uint64_t gpa,
                        const uint8_t *data, size_t size)
{
        static const uint8_t zero[SNP_LD_SIZE] = {};
        bool hashed = type == SNP_PAGE_NORMAL || type == SNP_PAGE_VMSA;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        uint8_t contents[SNP_LD_SIZE];

        if (size % SNP_PAGE_SIZE != 0 || gpa % SNP_PAGE_SIZE != 0 || hashed != (data != NULL) ||
            type < SNP_PAGE_NORMAL || type > SNP_PAGE_CPUID)
                return -EINVAL;
        ctx = hasher_new();
        for (size_t off = 0; off < size; off += SNP_PAGE_SIZE) {
                if (hashed)
                        hasher_digest(ctx, data + off, SNP_PAGE_SIZE, contents);
                ld_update(ctx, ld, type, gpa + off, hashed ? contents : zero);
        }
        return 0;
}

void snp_cmdline_sha256(const char *cmdline, uint8_t ret[static 32])
{
        const char *s = cmdline ? cmdline : "";

        /* QEMU hashes the command line with its NUL (x86_load_linux, SEV hashes). */
        crypto_sha256(s, strlen(s) + 1, ret);
}

/* GUIDs in EFI byte order: the first three fields little-endian. */
static void put_guid(uint8_t *p, uint32_t a, uint16_t b, uint16_t c, const uint8_t d[8])
{
        put_le32(p, a);
        put_le16(p + 4, b);
        put_le16(p + 6, c);
        memcpy(p + 8, d, 8);
}

/* QEMU target/i386/sev.c, "SEV hash table": a header GUID and length, then one entry
 * {GUID, u16 length 50, SHA-256} each for the command line, the initrd and the kernel. */
void snp_hashes_table(const uint8_t cmdline_sha256[static 32],
                      const uint8_t initrd_sha256[static 32],
                      const uint8_t kernel_sha256[static 32],
                      uint8_t ret[static SNP_HASHES_TABLE_SIZE])
{
        /* 9438d606-4f22-4cc9-b479-a793d411fd21 */
        static const uint8_t h4[8] = { 0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21 };
        /* 97d02dd8-bd20-4c94-aa78-e7714d36ab2a */
        static const uint8_t c4[8] = { 0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a };
        /* 44baf731-3a2f-4bd7-9af1-41e29169781d */
        static const uint8_t i4[8] = { 0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d };
        /* 4de79437-abd2-427f-b835-d5b172d2045b */
        static const uint8_t k4[8] = { 0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b };
        const struct {
                uint32_t a;
                uint16_t b, c;
                const uint8_t *d;
                const uint8_t *hash;
        } entries[] = {
                { 0x97d02dd8, 0xbd20, 0x4c94, c4, cmdline_sha256 },
                { 0x44baf731, 0x3a2f, 0x4bd7, i4, initrd_sha256 },
                { 0x4de79437, 0xabd2, 0x427f, k4, kernel_sha256 },
        };
        uint8_t *p = ret;

        memset(ret, 0, SNP_HASHES_TABLE_SIZE);
        put_guid(p, 0x9438d606, 0x4f22, 0x4cc9, h4);
        put_le16(p + 16, 18 + 3 * 50);
        p += 18;
        for (size_t i = 0; i < ELEMENTSOF(entries); i++, p += 50) {
                put_guid(p, entries[i].a, entries[i].b, entries[i].c, entries[i].d);
                put_le16(p + 16, 50);
                memcpy(p + 18, entries[i].hash, 32);
        }
}

/* A VMCB segment (AMD APM vol. 2, table B-4): selector, attributes, limit, base. */
static void put_seg(uint8_t *page, size_t off, uint16_t sel, uint16_t attr, uint32_t limit,
                    uint64_t base)
{
        put_le16(page + off, sel);
        put_le16(page + off + 2, attr);
        put_le32(page + off + 4, limit);
        put_le64(page + off + 8, base);
}

void snp_vmsa_page(SnpVmm vmm, bool bsp, uint32_t ap_eip, uint32_t vcpu_signature,
                   uint64_t guest_features, uint8_t ret[static SNP_PAGE_SIZE])
{
        uint32_t eip = bsp ? 0xFFFFFFF0U : ap_eip;
        /* What differs per hypervisor (research: KVM's reset state, EC2's and GCE's as the
         * reference tools model them, each reproduced on their published values). */
        uint16_t cs_attr = vmm == SNP_VMM_EC2 && bsp ? 0x9A : 0x9B;
        uint16_t ss_attr = vmm == SNP_VMM_EC2 ? 0x92 : 0x93;
        uint16_t tr_attr = vmm == SNP_VMM_EC2 ? 0x83 : 0x8B;
        uint64_t g_pat = vmm == SNP_VMM_GCE ? UINT64_C(0x00070106) : UINT64_C(0x0007040600070406);
        uint64_t rdx = vmm == SNP_VMM_QEMU ? vcpu_signature : 0x600;

        memset(ret, 0, SNP_PAGE_SIZE);
        put_seg(ret, 0x00, 0, 0x93, 0xFFFF, 0); /* ES */
        put_seg(ret, 0x10, 0xF000, cs_attr, 0xFFFF, eip & 0xFFFF0000U);
        put_seg(ret, 0x20, 0, ss_attr, 0xFFFF, 0);
        put_seg(ret, 0x30, 0, 0x93, 0xFFFF, 0); /* DS */
        put_seg(ret, 0x40, 0, 0x93, 0xFFFF, 0); /* FS */
        put_seg(ret, 0x50, 0, 0x93, 0xFFFF, 0); /* GS */
        put_seg(ret, 0x60, 0, 0, 0xFFFF, 0);    /* GDTR */
        put_seg(ret, 0x70, 0, 0x82, 0xFFFF, 0); /* LDTR */
        put_seg(ret, 0x80, 0, 0, 0xFFFF, 0);    /* IDTR */
        put_seg(ret, 0x90, 0, tr_attr, 0xFFFF, 0);
        put_le64(ret + 0x0D0, 0x1000);     /* EFER.SVME, set by KVM */
        put_le64(ret + 0x148, 0x40);       /* CR4.MCE, set by KVM */
        put_le64(ret + 0x158, 0x10);       /* CR0.ET */
        put_le64(ret + 0x160, 0x400);      /* DR7 */
        put_le64(ret + 0x168, 0xFFFF0FF0); /* DR6 */
        put_le64(ret + 0x170, 0x2);        /* RFLAGS */
        put_le64(ret + 0x178, eip & 0xFFFFU);
        put_le64(ret + 0x268, g_pat);
        put_le64(ret + 0x310, rdx);
        put_le64(ret + 0x3B0, guest_features);
        put_le64(ret + 0x3E8, 0x1); /* XCR0 */
        if (vmm == SNP_VMM_QEMU) {
                /* KVM_SEV_INIT2 (Linux 6.10 and later) syncs the FPU reset state into the VMSA. */
                put_le32(ret + 0x408, 0x1F80); /* MXCSR */
                put_le16(ret + 0x410, 0x37F);  /* x87 FCW */
        }
}

/* --- the firmware's GUIDed table and SEV metadata ------------------------------------------ */

typedef struct Guid {
        uint8_t b[16];
} Guid;

#define GUID_INIT(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                                         \
        {                                                                                          \
                {                                                                                  \
                        (uint8_t)(a), (uint8_t) ((a) >> 8), (uint8_t) ((a) >> 16),                 \
                                (uint8_t) ((a) >> 24), (uint8_t) (b), (uint8_t) ((b) >> 8),        \
                                (uint8_t) (c), (uint8_t) ((c) >> 8), d0, d1, d2, d3, d4, d5, d6,   \
                                d7                                                                 \
                }                                                                                  \
        }

/* edk2 OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm */
static const Guid guid_footer =
        GUID_INIT(0x96b582de, 0x1fb2, 0x45f7, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d);
static const Guid guid_reset_block =
        GUID_INIT(0x00f771de, 0x1a7e, 0x4fcb, 0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e);
static const Guid guid_metadata =
        GUID_INIT(0xdc886566, 0x984a, 0x4798, 0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc);
static const Guid guid_hash_table =
        GUID_INIT(0x7255371f, 0x3a3b, 0x4b04, 0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54);

#define TABLE_END_GAP  32U         /* AP jump, 'VTF\0' and the reset vector after the table */
#define ENTRY_HEADER   18U         /* u16 length, GUID */
#define METADATA_MAGIC 0x56455341U /* "ASEV" */

static int fw_bad(Diag *d, const char *what, size_t offset)
{
        return diag_fail(d, -EBADMSG, "snp-firmware-format", -1,
                         "firmware: %s (at byte %zu of the image)", what, offset);
}

/* The u32 (and, if ret2, a second u32) of an entry whose data must be exactly that long. */
static int entry_u32s(Reader *data, size_t at, uint32_t *ret, uint32_t *ret2, Diag *d)
{
        size_t want = ret2 ? 8 : 4;

        if (reader_remaining(data) != want)
                return fw_bad(d, "a GUID table entry has the wrong length for its GUID", at);
        if (reader_u32le(data, ret) < 0 || (ret2 && reader_u32le(data, ret2) < 0))
                return fw_bad(d, "a GUID table entry is truncated", at);
        return 0;
}

static int parse_metadata(const uint8_t *data, size_t size, SnpFirmware *fw, Diag *d)
{
        uint32_t magic, length, version, count;
        uint64_t total = 0;
        size_t start;
        Reader r, m;

        if (fw->metadata_offset < 16 || fw->metadata_offset > size)
                return fw_bad(d, "the SEV metadata offset points outside the image",
                              size - TABLE_END_GAP);
        start = size - fw->metadata_offset;
        r = reader_init(data + start, fw->metadata_offset);
        if (reader_u32le(&r, &magic) < 0 || reader_u32le(&r, &length) < 0 ||
            reader_u32le(&r, &version) < 0 || reader_u32le(&r, &count) < 0)
                return fw_bad(d, "the SEV metadata header is truncated", start);
        if (magic != METADATA_MAGIC)
                return fw_bad(d, "the SEV metadata does not start with 'ASEV'", start);
        if (version != 1)
                return diag_fail(d, -EBADMSG, "snp-firmware-format", -1,
                                 "firmware: SEV metadata version %u (only version 1 is known)",
                                 version);
        if (count > SNP_FIRMWARE_SECTIONS_MAX)
                return diag_fail(d, -EBADMSG, "snp-firmware-format", -1,
                                 "firmware: %u SEV metadata sections (at most %u)", count,
                                 SNP_FIRMWARE_SECTIONS_MAX);
        if (length != 16 + 12 * count)
                return fw_bad(d, "the SEV metadata length does not match its section count", start);
        r = reader_init(data + start, fw->metadata_offset);
        if (reader_skip(&r, 16) < 0 || reader_sub(&r, length - 16, &m) < 0)
                return fw_bad(d, "the SEV metadata runs past the end of the image", start);
        for (uint32_t i = 0; i < count; i++) {
                SnpFirmwareSection *s = &fw->sections[i];

                if (reader_u32le(&m, &s->gpa) < 0 || reader_u32le(&m, &s->size) < 0 ||
                    reader_u32le(&m, &s->type) < 0)
                        return fw_bad(d, "an SEV metadata section is truncated", start);
                if (!snp_section_type_to_string(s->type))
                        return diag_fail(d, -EBADMSG, "snp-firmware-format", i,
                                         "firmware: SEV metadata section %u has type 0x%x, which "
                                         "this program does not know how a hypervisor measures",
                                         i, s->type);
                if (s->size == 0 || s->gpa % SNP_PAGE_SIZE || s->size % SNP_PAGE_SIZE ||
                    (uint64_t) s->gpa + s->size > FOUR_GIB)
                        return diag_fail(d, -EBADMSG, "snp-firmware-format", i,
                                         "firmware: SEV metadata section %u (GPA 0x%x, size 0x%x) "
                                         "is not whole pages below 4 GiB",
                                         i, s->gpa, s->size);
                if ((s->type == SNP_SECTION_SECRETS || s->type == SNP_SECTION_CPUID ||
                     s->type == SNP_SECTION_KERNEL_HASHES) &&
                    s->size != SNP_PAGE_SIZE)
                        return diag_fail(d, -EBADMSG, "snp-firmware-format", i,
                                         "firmware: SEV metadata section %u (%s) is 0x%x bytes, "
                                         "not one page",
                                         i, snp_section_type_to_string(s->type), s->size);
                total += s->size;
                if (total > SNP_FIRMWARE_SECTION_BYTES_MAX)
                        return diag_fail(d, -EBADMSG, "snp-firmware-format", i,
                                         "firmware: SEV metadata sections cover more than %u "
                                         "bytes",
                                         SNP_FIRMWARE_SECTION_BYTES_MAX);
        }
        fw->n_sections = count;
        fw->has_metadata = true;
        return 0;
}

int snp_firmware_parse(const uint8_t *data, size_t size, SnpFirmware *ret, Diag *d)
{
        SnpFirmware fw = { .size = size };
        bool seen_reset = false, seen_meta = false, seen_hash = false;
        const uint8_t *guid;
        uint16_t table_len;
        size_t end, start;
        Reader r;
        int k;

        if (size > SNP_FIRMWARE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "snp-firmware-size", -1,
                                 "firmware: %zu bytes, more than the %u this program reads", size,
                                 SNP_FIRMWARE_SIZE_MAX);
        if (size == 0 || size % SNP_PAGE_SIZE != 0)
                return diag_fail(d, -EBADMSG, "snp-firmware-size", -1,
                                 "firmware: %zu bytes is not a whole number of 4 KiB pages (the "
                                 "hypervisor measures whole pages: is this the -bios image?)",
                                 size);
        fw.gpa = FOUR_GIB - size;

        /* The footer entry: u16 table length, then its GUID, ending 32 bytes before the end. */
        end = size - TABLE_END_GAP;
        r = reader_init(data + end - ENTRY_HEADER, ENTRY_HEADER);
        if (reader_u16le(&r, &table_len) < 0 || reader_bytes(&r, 16, &guid) < 0)
                return fw_bad(d, "truncated footer", end - ENTRY_HEADER);
        if (memcmp(guid, guid_footer.b, 16) != 0) {
                *ret = fw; /* no GUID table: no SEV metadata, no reset block */
                return 0;
        }
        if (table_len < ENTRY_HEADER || table_len > end)
                return fw_bad(d, "the GUID table's length runs outside the image",
                              end - ENTRY_HEADER);
        start = end - table_len;
        /* Walk backwards from the footer: each entry is data, u16 length (data + 18), GUID. */
        for (size_t pos = end - ENTRY_HEADER; pos > start;) {
                uint16_t len;
                Reader data_reader;

                if (pos - start < ENTRY_HEADER)
                        return fw_bad(d, "a GUID table entry header is truncated", start);
                r = reader_init(data + pos - ENTRY_HEADER, ENTRY_HEADER);
                if (reader_u16le(&r, &len) < 0 || reader_bytes(&r, 16, &guid) < 0)
                        return fw_bad(d, "a GUID table entry header is truncated", pos);
                if (len < ENTRY_HEADER || len > pos - start)
                        return fw_bad(d, "a GUID table entry's length runs outside the table",
                                      pos - ENTRY_HEADER);
                data_reader = reader_init(data + pos - len, len - ENTRY_HEADER);
                k = 0;
                if (memcmp(guid, guid_reset_block.b, 16) == 0) {
                        k = seen_reset ? fw_bad(d, "two SEV-ES reset blocks", pos - len)
                                       : entry_u32s(&data_reader, pos - len, &fw.ap_eip, NULL, d);
                        fw.has_reset_block = seen_reset = true;
                } else if (memcmp(guid, guid_metadata.b, 16) == 0) {
                        k = seen_meta ? fw_bad(d, "two SEV metadata offsets", pos - len)
                                      : entry_u32s(&data_reader, pos - len, &fw.metadata_offset,
                                                   NULL, d);
                        seen_meta = true;
                } else if (memcmp(guid, guid_hash_table.b, 16) == 0) {
                        k = seen_hash ? fw_bad(d, "two SEV hash table blocks", pos - len)
                                      : entry_u32s(&data_reader, pos - len, &fw.hash_table_gpa,
                                                   &fw.hash_table_size, d);
                        seen_hash = true;
                }
                if (k < 0)
                        return k;
                pos -= len;
        }
        /* A zero base or size: a build without the hashes table (OvmfPkgX64 and others). */
        fw.has_hash_table = seen_hash && fw.hash_table_gpa != 0 && fw.hash_table_size != 0;
        if (fw.has_hash_table &&
            ((fw.hash_table_gpa & (SNP_PAGE_SIZE - 1)) + SNP_HASHES_TABLE_SIZE > SNP_PAGE_SIZE ||
             fw.hash_table_size < SNP_HASHES_TABLE_SIZE))
                return diag_fail(d, -EBADMSG, "snp-firmware-format", -1,
                                 "firmware: the SEV hash table block (GPA 0x%x, size 0x%x) cannot "
                                 "hold the %u-byte table within one page",
                                 fw.hash_table_gpa, fw.hash_table_size, SNP_HASHES_TABLE_SIZE);
        if (seen_meta) {
                k = parse_metadata(data, size, &fw, d);
                if (k < 0)
                        return k;
        }
        *ret = fw;
        return 0;
}

/* --- the whole launch ---------------------------------------------------------------------- */

int snp_firmware_digest(const uint8_t *firmware, size_t size, uint8_t ret[static SNP_LD_SIZE],
                        Diag *d)
{
        uint8_t ld[SNP_LD_SIZE] = {};

        if (size == 0 || size % SNP_PAGE_SIZE != 0 || size > SNP_FIRMWARE_SIZE_MAX)
                return diag_fail(d, -EBADMSG, "snp-firmware-size", -1,
                                 "firmware: %zu bytes is not 1 to %u whole 4 KiB pages", size,
                                 SNP_FIRMWARE_SIZE_MAX / SNP_PAGE_SIZE);
        if (snp_ld_update_pages(ld, SNP_PAGE_NORMAL, FOUR_GIB - size, firmware, size) < 0)
                return -EINVAL;
        memcpy(ret, ld, SNP_LD_SIZE);
        return 0;
}

static bool has_section(const SnpFirmware *fw, uint32_t type)
{
        for (size_t i = 0; i < fw->n_sections; i++)
                if (fw->sections[i].type == type)
                        return true;
        return false;
}

/* One metadata section, as the hypervisor passes it to SNP_LAUNCH_UPDATE (QEMU
 * snp_populate_metadata_pages; EC2 and GCE as the reference tools model them). */
static int measure_section(uint8_t ld[static SNP_LD_SIZE], const SnpFirmwareSection *s,
                           const SnpLaunchInput *in, const SnpFirmware *fw)
{
        switch (s->type) {
        case SNP_SECTION_SEC_MEM:
                /* GCE's hypervisor gives pre-validated RAM as UNMEASURED pages (gce-tcb-verifier
                 * sev/ld_from_ovmf.go), QEMU and EC2 as ZERO pages. */
                return snp_ld_update_pages(
                        ld, in->vmm == SNP_VMM_GCE ? SNP_PAGE_UNMEASURED : SNP_PAGE_ZERO, s->gpa,
                        NULL, s->size);
        case SNP_SECTION_SVSM_CAA:
                return snp_ld_update_pages(ld, SNP_PAGE_ZERO, s->gpa, NULL, s->size);
        case SNP_SECTION_SECRETS:
                return snp_ld_update_pages(ld, SNP_PAGE_SECRETS, s->gpa, NULL, SNP_PAGE_SIZE);
        case SNP_SECTION_CPUID:
                /* EC2 measures the CPUID page after every other section. */
                if (in->vmm == SNP_VMM_EC2)
                        return 0;
                return snp_ld_update_pages(ld, SNP_PAGE_CPUID, s->gpa, NULL, SNP_PAGE_SIZE);
        case SNP_SECTION_KERNEL_HASHES: {
                uint8_t page[SNP_PAGE_SIZE] = {};

                /* Without direct boot (or QEMU's kernel-hashes=off) the page is zero. */
                if (!in->direct_boot)
                        return snp_ld_update_pages(ld, SNP_PAGE_ZERO, s->gpa, NULL, s->size);
                snp_hashes_table(in->cmdline_sha256, in->initrd_sha256, in->kernel_sha256,
                                 page + (fw->hash_table_gpa & (SNP_PAGE_SIZE - 1)));
                return snp_ld_update_pages(ld, SNP_PAGE_NORMAL, s->gpa, page, SNP_PAGE_SIZE);
        }
        default:
                return -EINVAL; /* snp_firmware_parse() lets no other type through */
        }
}

int snp_launch_digest(const SnpLaunchInput *in, uint8_t ret[static SNP_LD_SIZE], Diag *d)
{
        uint8_t ld[SNP_LD_SIZE] = {}, vmsa[2][SNP_PAGE_SIZE], vmsa_hash[2][SNP_LD_SIZE];
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        SnpFirmware fw = {};
        int r;

        if (in->vcpus == 0 || in->vcpus > SNP_LAUNCH_VCPUS_MAX)
                return diag_fail(d, -ERANGE, "snp-vcpus", -1, "%u vCPUs: the count must be 1 to %u",
                                 in->vcpus, SNP_LAUNCH_VCPUS_MAX);
        if (in->vmm < 0 || in->vmm >= _SNP_VMM_MAX)
                return diag_fail(d, -EINVAL, "snp-vmm", -1, "unknown VMM type %d", in->vmm);
        r = snp_firmware_parse(in->firmware, in->firmware_size, &fw, d);
        if (r < 0)
                return r;
        if (!fw.has_metadata)
                return diag_fail(d, -ENODATA, "snp-firmware-metadata", -1,
                                 "firmware: no SEV metadata (no 'ASEV' section list in its GUID "
                                 "table): not a firmware an SEV-SNP guest can boot (Debian's "
                                 "*_4M images have none: use OVMF.fd or an AmdSevX64 build)");
        if (in->vcpus > 1 && !fw.has_reset_block)
                return diag_fail(d, -ENODATA, "snp-firmware-reset-block", -1,
                                 "firmware: no SEV-ES reset block: the start address of the "
                                 "%u application processors is unknown",
                                 in->vcpus - 1);
        if (in->direct_boot && (!has_section(&fw, SNP_SECTION_KERNEL_HASHES) || !fw.has_hash_table))
                return diag_fail(d, -EOPNOTSUPP, "snp-kernel-hashes", -1,
                                 "firmware: a kernel was given but the firmware's SEV metadata "
                                 "has no SNP_KERNEL_HASHES section%s: the kernel, initrd and "
                                 "command line would not be measured. Use an AmdSevX64 build, "
                                 "or boot without --kernel",
                                 has_section(&fw, SNP_SECTION_KERNEL_HASHES)
                                         ? " with a hash table block"
                                         : "");

        /* QEMU writes the table at the hash block's address and measures the section's page:
         * they must be the same page, or the measured page would not hold the table. */
        for (size_t i = 0; in->direct_boot && i < fw.n_sections; i++)
                if (fw.sections[i].type == SNP_SECTION_KERNEL_HASHES &&
                    fw.sections[i].gpa != (fw.hash_table_gpa & ~(SNP_PAGE_SIZE - 1)))
                        return diag_fail(d, -EBADMSG, "snp-kernel-hashes", (int) i,
                                         "firmware: the SEV hash table block (GPA 0x%x) is not "
                                         "in the SNP_KERNEL_HASHES page (GPA 0x%x)",
                                         fw.hash_table_gpa, fw.sections[i].gpa);

        /* 1. The firmware's pages at 4 GiB - size, or the digest a provider published. */
        if (in->firmware_digest)
                memcpy(ld, in->firmware_digest, SNP_LD_SIZE);
        else if (snp_ld_update_pages(ld, SNP_PAGE_NORMAL, fw.gpa, in->firmware, fw.size) < 0)
                return -EINVAL;
        /* 2. The metadata sections in the firmware's order. */
        for (size_t i = 0; i < fw.n_sections; i++) {
                r = measure_section(ld, &fw.sections[i], in, &fw);
                if (r < 0)
                        return r;
        }
        if (in->vmm == SNP_VMM_EC2)
                for (size_t i = 0; i < fw.n_sections; i++)
                        if (fw.sections[i].type == SNP_SECTION_CPUID)
                                (void) snp_ld_update_pages(ld, SNP_PAGE_CPUID, fw.sections[i].gpa,
                                                           NULL, SNP_PAGE_SIZE);
        /* 3. One VMSA per vCPU: the BSP's, then the same AP page for every other one. Both
         * pages are hashed once: the cost per vCPU is one PAGE_INFO digest. */
        for (int i = 0; i < 2; i++) {
                snp_vmsa_page(in->vmm, i == 0, fw.ap_eip, in->vcpu_signature, in->guest_features,
                              vmsa[i]);
                sha384(vmsa[i], SNP_PAGE_SIZE, vmsa_hash[i]);
        }
        ctx = hasher_new();
        for (unsigned v = 0; v < in->vcpus; v++)
                ld_update(ctx, ld, SNP_PAGE_VMSA, SNP_VMSA_GPA, vmsa_hash[v == 0 ? 0 : 1]);
        memcpy(ret, ld, SNP_LD_SIZE);
        return 0;
}
