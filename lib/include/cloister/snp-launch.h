/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The SEV-SNP launch digest (an attestation report's MEASUREMENT) computed offline from the
 * inputs the hypervisor measures: the firmware's pages, the sections its SEV metadata lists, the
 * direct-boot hashes table and one VMSA per vCPU. Every step is exposed so that it can be tested
 * on its own. docs/snp.md, "Launch measurement", has the sources and the traps.
 *
 * SEV-SNP Firmware ABI (AMD pub. 56860), SNP_LAUNCH_UPDATE: every page extends the digest as
 *   LD := SHA-384(PAGE_INFO), PAGE_INFO = { DIGEST_CUR = LD, CONTENTS, LENGTH 0x70, PAGE_TYPE,
 *                                           IMI 0, VMPL3..1 perms 0, reserved 0, GPA }
 * with CONTENTS = SHA-384(page) for NORMAL and VMSA pages, zero for the others.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define SNP_LD_SIZE        48
#define SNP_PAGE_SIZE      4096U
#define SNP_PAGE_INFO_SIZE 0x70U
/* KVM measures every VMSA at this GPA (Linux arch/x86/kvm/svm/sev.c, INITIAL_VMSA_GPA). */
#define SNP_VMSA_GPA UINT64_C(0xFFFFFFFFF000)
/* Upper bound of KVM's vCPUs per VM on x86-64 (CONFIG_KVM_MAX_NR_VCPUS, at most 4096). */
#define SNP_LAUNCH_VCPUS_MAX 4096U
/* The firmware is mapped right below 4 GiB (QEMU -bios); this program reads at most 64 MiB. */
#define SNP_FIRMWARE_SIZE_MAX (64U * 1024U * 1024U)
/* Limits of the firmware's SEV metadata this parser accepts (real firmware: 5 to 7 sections of
 * at most 68 KiB together). */
#define SNP_FIRMWARE_SECTIONS_MAX      64U
#define SNP_FIRMWARE_SECTION_BYTES_MAX (64U * 1024U * 1024U)
/* The direct-boot hashes table: 168 bytes padded to a 16-byte multiple. */
#define SNP_HASHES_TABLE_SIZE 176U

/* PAGE_INFO.PAGE_TYPE (ABI, "Page types"). */
typedef enum SnpPageType {
        SNP_PAGE_NORMAL = 1,
        SNP_PAGE_VMSA = 2,
        SNP_PAGE_ZERO = 3,
        SNP_PAGE_UNMEASURED = 4,
        SNP_PAGE_SECRETS = 5,
        SNP_PAGE_CPUID = 6,
} SnpPageType;

/* Section types of the firmware's SEV metadata (edk2 OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm)
 */
typedef enum SnpSectionType {
        SNP_SECTION_SEC_MEM = 1,
        SNP_SECTION_SECRETS = 2,
        SNP_SECTION_CPUID = 3,
        SNP_SECTION_SVSM_CAA = 4,
        SNP_SECTION_KERNEL_HASHES = 0x10,
} SnpSectionType;

/* Which hypervisor launches the guest: they measure different initial states. */
typedef enum SnpVmm {
        SNP_VMM_QEMU, /* QEMU/KVM, host kernel >= 6.10 (KVM_SEV_INIT2) */
        SNP_VMM_EC2,
        SNP_VMM_GCE,
        _SNP_VMM_MAX,
        _SNP_VMM_INVALID = -EINVAL,
} SnpVmm;

const char *snp_vmm_to_string(SnpVmm v);
/* "qemu", "ec2", "gce", any case. */
SnpVmm snp_vmm_from_string(const char *s);

/* The CPUID(1).EAX signature of a QEMU vCPU model ("EPYC-v4", ...), the VMSA's RDX under QEMU.
 * -EINVAL for a name this table does not hold. */
int snp_vcpu_signature_from_name(const char *name, uint32_t *ret);
/* The i-th known model name, NULL past the end (for --help). */
const char *snp_vcpu_type_name(size_t i);

/* --- the steps --------------------------------------------------------------------------- */

/* One SNP_LAUNCH_UPDATE: ld := SHA-384(PAGE_INFO(ld, contents, type, gpa)). */
void snp_ld_update(uint8_t ld[static SNP_LD_SIZE], SnpPageType type, uint64_t gpa,
                   const uint8_t contents[static SNP_LD_SIZE]);
/* size/4096 pages from gpa on, in order. NORMAL and VMSA pages hash data (size bytes); the other
 * types take data NULL (their CONTENTS are zero). -EINVAL if size is not a whole number of pages
 * or data does not fit the type. */
int snp_ld_update_pages(uint8_t ld[static SNP_LD_SIZE], SnpPageType type, uint64_t gpa,
                        const uint8_t *data, size_t size);

/* SHA-256 of the command line as QEMU hashes it: its bytes and the terminating NUL ("" and no
 * command line are both the single byte 0). */
void snp_cmdline_sha256(const char *cmdline, uint8_t ret[static 32]);
/* QEMU's SEV hashes table (GUIDed: header, cmdline, initrd, kernel), zero-padded to 176 bytes. */
void snp_hashes_table(const uint8_t cmdline_sha256[static 32],
                      const uint8_t initrd_sha256[static 32],
                      const uint8_t kernel_sha256[static 32],
                      uint8_t ret[static SNP_HASHES_TABLE_SIZE]);

/* The initial VMSA page of one vCPU: the BSP starts at 0xFFFFFFF0, an AP at the firmware's
 * SEV-ES reset address. vcpu_signature is RDX under QEMU (EC2 and GCE put 0x600 there). */
void snp_vmsa_page(SnpVmm vmm, bool bsp, uint32_t ap_eip, uint32_t vcpu_signature,
                   uint64_t guest_features, uint8_t ret[static SNP_PAGE_SIZE]);

/* --- the firmware ------------------------------------------------------------------------ */

typedef struct SnpFirmwareSection {
        uint32_t gpa;
        uint32_t size;
        uint32_t type; /* SnpSectionType */
} SnpFirmwareSection;

typedef struct SnpFirmware {
        size_t size;
        uint64_t gpa; /* 4 GiB - size */
        bool has_reset_block;
        uint32_t ap_eip; /* SEV-ES reset block: where APs start */
        bool has_metadata;
        uint32_t metadata_offset; /* from the end of the image */
        SnpFirmwareSection sections[SNP_FIRMWARE_SECTIONS_MAX];
        size_t n_sections;
        bool has_hash_table;
        uint32_t hash_table_gpa, hash_table_size;
} SnpFirmware;

/*
 * The GUIDed table at the end of an OVMF image (edk2 ResetVectorVtf0.asm) and the SEV metadata
 * ("ASEV") it points to. Untrusted bytes: every offset and length is checked. A firmware without
 * the table or without the metadata parses (has_metadata false); snp_launch_digest() refuses it.
 * -EBADMSG malformed, -EMSGSIZE larger than SNP_FIRMWARE_SIZE_MAX, reason in d.
 */
int snp_firmware_parse(const uint8_t *data, size_t size, SnpFirmware *ret, Diag *d);
const char *snp_section_type_to_string(uint32_t type);

/* --- the whole launch -------------------------------------------------------------------- */

typedef struct SnpLaunchInput {
        const uint8_t *firmware; /* the -bios image: always parsed for its metadata */
        size_t firmware_size;
        /* The digest after the firmware's own pages, as a provider publishes it; NULL: computed
         * from firmware. */
        const uint8_t *firmware_digest;
        unsigned vcpus;
        uint32_t vcpu_signature;
        SnpVmm vmm;
        uint64_t guest_features;
        bool direct_boot; /* the three hashes below go into the kernel-hashes page */
        uint8_t kernel_sha256[32], initrd_sha256[32], cmdline_sha256[32];
} SnpLaunchInput;

/* The digest of the firmware's pages alone, at GPA 4 GiB - size (what --firmware-digest takes). */
int snp_firmware_digest(const uint8_t *firmware, size_t size, uint8_t ret[static SNP_LD_SIZE],
                        Diag *d);
/*
 * MEASUREMENT for in. Refuses (reason in d): a firmware that is not whole pages or has no SEV
 * metadata (-EBADMSG, -ENODATA), more than one vCPU without an AP reset address (-ENODATA),
 * direct boot with a firmware without an SNP kernel-hashes section or hashes-table block
 * (-EOPNOTSUPP), a vCPU count of 0 or above SNP_LAUNCH_VCPUS_MAX (-ERANGE).
 */
int snp_launch_digest(const SnpLaunchInput *in, uint8_t ret[static SNP_LD_SIZE], Diag *d);
