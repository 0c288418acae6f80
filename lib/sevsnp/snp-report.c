/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "cloister/reader.h"
#include "snp-internal.h"

static const char *const product_names[_SNP_PRODUCT_MAX] = {
        [SNP_PRODUCT_MILAN] = "Milan",
        [SNP_PRODUCT_GENOA] = "Genoa",
        [SNP_PRODUCT_TURIN] = "Turin",
};

const char *snp_product_to_string(SnpProduct p)
{
        return p >= 0 && p < _SNP_PRODUCT_MAX ? product_names[p] : NULL;
}

SnpTcb snp_tcb_decode(uint64_t raw, SnpProduct product)
{
        SnpTcb t = { .raw = raw };

        if (product == SNP_PRODUCT_TURIN) {
                /* Turin: FMC, bootloader, TEE, SNP, reserved[3], microcode. */
                t.fmc = (uint8_t) raw;
                t.bootloader = (uint8_t) (raw >> 8);
                t.tee = (uint8_t) (raw >> 16);
                t.snp = (uint8_t) (raw >> 24);
        } else {
                /* Milan/Genoa: bootloader, TEE, reserved[4], SNP, microcode. */
                t.bootloader = (uint8_t) raw;
                t.tee = (uint8_t) (raw >> 8);
                t.snp = (uint8_t) (raw >> 48);
        }
        t.microcode = (uint8_t) (raw >> 56);
        return t;
}

static int bad(Diag *d, const char *what)
{
        return diag_fail(d, -EBADMSG, "snp-report-format", -1, "SNP report: %s", what);
}

int snp_report_parse(const uint8_t *data, size_t size, SnpReport *ret, Diag *d)
{
        Reader r = reader_init(data, size);
        SnpReport s = {};
        uint32_t key_info, reserved;
        uint8_t b;

        if (size != SNP_REPORT_SIZE)
                return diag_fail(d, size > SNP_REPORT_SIZE ? -EMSGSIZE : -EBADMSG,
                                 "snp-report-format", -1, "SNP report: %zu bytes, expected %d",
                                 size, SNP_REPORT_SIZE);
        /* All reads are within the fixed size checked above; each is still bounds-checked. */
        if (reader_u32le(&r, &s.version) < 0 || reader_u32le(&r, &s.guest_svn) < 0 ||
            reader_u64le(&r, &s.policy) < 0 || reader_copy(&r, s.family_id, 16) < 0 ||
            reader_copy(&r, s.image_id, 16) < 0 || reader_u32le(&r, &s.vmpl) < 0 ||
            reader_u32le(&r, &s.signature_algo) < 0 || reader_u64le(&r, &s.current_tcb_raw) < 0 ||
            reader_u64le(&r, &s.platform_info) < 0 || reader_u32le(&r, &key_info) < 0 ||
            reader_u32le(&r, &reserved) < 0 || reader_copy(&r, s.report_data, 64) < 0 ||
            reader_copy(&r, s.measurement, 48) < 0 || reader_copy(&r, s.host_data, 32) < 0 ||
            reader_copy(&r, s.id_key_digest, 48) < 0 ||
            reader_copy(&r, s.author_key_digest, 48) < 0 || reader_copy(&r, s.report_id, 32) < 0 ||
            reader_copy(&r, s.report_id_ma, 32) < 0 || reader_u64le(&r, &s.reported_tcb_raw) < 0)
                return bad(d, "truncated");
        /* Versions 2 (ABI < 1.55), 3 (adds CPUID at 0x188) and 5 (Turin-era, 1.58) share this
         * layout for every field decoded here; anything else is refused. */
        if (s.version != 2 && s.version != 3 && s.version != 5)
                return diag_fail(d, -EBADMSG, "snp-report-version", -1,
                                 "SNP report: unsupported version %u (2, 3 and 5 are known)",
                                 s.version);
        if (s.signature_algo != 1)
                return diag_fail(d, -EBADMSG, "snp-report-format", -1,
                                 "SNP report: signature algorithm %u is not ECDSA P-384/SHA-384",
                                 s.signature_algo);
        if (s.vmpl > 3)
                return bad(d, "VMPL above 3");
        if ((key_info >> 5) != 0 || reserved != 0)
                return bad(d, "reserved signer-info bits are set");
        s.author_key_en = key_info & 1;
        s.mask_chip_key = (key_info >> 1) & 1;
        s.signing_key = (key_info >> 2) & 7;
        if (s.signing_key != 0 && s.signing_key != 1 && s.signing_key != 7)
                return bad(d, "unknown signing key type");
        if (!(s.policy & SNP_POLICY_RESERVED_1))
                return bad(d, "guest policy bit 17 (reserved, must be one) is clear");

        if (s.version >= 3) {
                if (reader_u8(&r, &s.cpuid_fam) < 0 || reader_u8(&r, &s.cpuid_mod) < 0 ||
                    reader_u8(&r, &s.cpuid_step) < 0 || reader_skip(&r, 0x1A0 - 0x18B) < 0)
                        return bad(d, "truncated");
        } else if (reader_skip(&r, 0x1A0 - 0x188) < 0)
                return bad(d, "truncated");
        if (reader_copy(&r, s.chip_id, 64) < 0 || reader_u64le(&r, &s.committed_tcb_raw) < 0 ||
            reader_u8(&r, &s.current_build) < 0 || reader_u8(&r, &s.current_minor) < 0 ||
            reader_u8(&r, &s.current_major) < 0 || reader_u8(&r, &b) < 0 ||
            reader_u8(&r, &s.committed_build) < 0 || reader_u8(&r, &s.committed_minor) < 0 ||
            reader_u8(&r, &s.committed_major) < 0 || reader_u8(&r, &b) < 0 ||
            reader_u64le(&r, &s.launch_tcb_raw) < 0 ||
            reader_skip(&r, SNP_SIGNED_SIZE - 0x1F8) < 0 ||
            reader_copy(&r, s.signature_r, 72) < 0 || reader_copy(&r, s.signature_s, 72) < 0 ||
            reader_skip(&r, SNP_REPORT_SIZE - 0x330) < 0 || reader_expect_end(&r) < 0)
                return bad(d, "truncated");
        *ret = s;
        return 0;
}

int snp_report_product(const SnpReport *r, SnpProduct *ret)
{
        if (r->version < 3)
                return -ENOENT;
        /* Family 19h: models 00h-0Fh Milan, 10h-1Fh and A0h-AFh Genoa; family 1Ah: Turin. */
        if (r->cpuid_fam == 0x19 && r->cpuid_mod < 0x10)
                *ret = SNP_PRODUCT_MILAN;
        else if (r->cpuid_fam == 0x19 && ((r->cpuid_mod >= 0x10 && r->cpuid_mod < 0x20) ||
                                          (r->cpuid_mod >= 0xA0 && r->cpuid_mod < 0xB0)))
                *ret = SNP_PRODUCT_GENOA;
        else if (r->cpuid_fam == 0x1A)
                *ret = SNP_PRODUCT_TURIN;
        else
                return -ENOENT;
        return 0;
}
