/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * AMD SEV-SNP attestation reports: parsing (SEV-SNP Firmware ABI, "ATTESTATION_REPORT"),
 * signature (ECDSA P-384/SHA-384, little-endian r/s), certificate chain VCEK/VLEK → ASK/ASVK →
 * ARK (RSA-PSS) against built-in AMD ARKs or ARKs a policy names, VCEK extensions against the
 * report, AMD's CRL, and guest policy checks. docs/snp.md has the details.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cloister/diag.h"
#include "cloister/macro.h"

#define SNP_REPORT_SIZE 1184
#define SNP_SIGNED_SIZE 0x2A0
#define SNP_CHAIN_MAX   (64U * 1024U)

typedef enum SnpProduct {
        SNP_PRODUCT_MILAN,
        SNP_PRODUCT_GENOA,
        SNP_PRODUCT_TURIN,
        _SNP_PRODUCT_MAX,
        _SNP_PRODUCT_INVALID = -EINVAL,
} SnpProduct;

const char *snp_product_to_string(SnpProduct p);

typedef struct SnpTcb {
        uint8_t bootloader, tee, snp, microcode, fmc; /* fmc: Turin only */
        uint64_t raw;
} SnpTcb;

typedef struct SnpReport {
        uint32_t version;
        uint32_t guest_svn;
        uint64_t policy;
        uint8_t family_id[16], image_id[16];
        uint32_t vmpl;
        uint32_t signature_algo;
        uint64_t current_tcb_raw, reported_tcb_raw, committed_tcb_raw, launch_tcb_raw;
        uint64_t platform_info;
        bool author_key_en, mask_chip_key;
        uint8_t signing_key; /* 0 VCEK, 1 VLEK, 7 none */
        uint8_t report_data[64];
        uint8_t measurement[48];
        uint8_t host_data[32];
        uint8_t id_key_digest[48], author_key_digest[48];
        uint8_t report_id[32], report_id_ma[32];
        uint8_t cpuid_fam, cpuid_mod, cpuid_step; /* version >= 3 */
        uint8_t chip_id[64];
        uint8_t current_build, current_minor, current_major;
        uint8_t committed_build, committed_minor, committed_major;
        uint8_t signature_r[72], signature_s[72]; /* little-endian */
} SnpReport;

/* Guest policy bits (ABI, "GUEST_POLICY"). */
#define SNP_POLICY_SMT           (1ULL << 16)
#define SNP_POLICY_RESERVED_1    (1ULL << 17)
#define SNP_POLICY_MIGRATE_MA    (1ULL << 18)
#define SNP_POLICY_DEBUG         (1ULL << 19)
#define SNP_POLICY_SINGLE_SOCKET (1ULL << 20)

int snp_report_parse(const uint8_t *data, size_t size, SnpReport *ret, Diag *d);
/* The product from the report's CPUID fields (version 3 and later); -ENOENT if unknown. */
int snp_report_product(const SnpReport *r, SnpProduct *ret);
/* Decodes a TCB_VERSION for the product (Turin has an FMC byte and another layout). */
SnpTcb snp_tcb_decode(uint64_t raw, SnpProduct product);

/* Trust anchors: the built-in AMD ARKs plus any the caller adds (PEM). */
typedef struct SnpTrust SnpTrust;

int snp_trust_new(bool builtin_roots, SnpTrust **ret);
SnpTrust *snp_trust_free(SnpTrust *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnpTrust *, snp_trust_free);
/* Trusts the ARK certificates in pem (e.g. the sim-snp ARK a policy names). */
int snp_trust_add_ark_pem(SnpTrust *t, const char *pem, size_t size);
/* An AMD CRL (PEM or DER), checked against the ARK that signed it; require_fresh refuses a CRL
 * past its nextUpdate at the verification time. */
int snp_trust_set_crl(SnpTrust *t, const uint8_t *data, size_t size, bool require_fresh);

/*
 * Authenticity: chain (ASK/ASVK + optional ARK, PEM or DER, any order) up to a trusted ARK, the
 * VCEK/VLEK (DER or PEM) signed by that ASK/ASVK, all valid at time at (0 = now), CRL if set,
 * VCEK extensions equal to the report (product, reported TCB, chip ID), the signer type equal to
 * the report's, and the report's signature. On success *ret_product is the product.
 */
int snp_verify_report(const SnpReport *report, const uint8_t *raw, size_t raw_size,
                      const uint8_t *vcek, size_t vcek_size, const uint8_t *chain,
                      size_t chain_size, const SnpTrust *trust, time_t at, SnpProduct *ret_product,
                      Diag *d);

/* Verified VCEK/ASK chains are cached process-wide (16 entries, keyed by the certificate bytes;
 * time, trust set, CRL and report checks still run on every call). For tests. */
void snp_chain_cache_flush(void);

/* Guest policy checks. */
#define SNP_POLICY_MEASUREMENTS_MAX 16
#define SNP_POLICY_LAUNCH_MAX       64
#define SNP_POLICY_CHIP_IDS_MAX     64
#define SNP_LAUNCH_VCPU_TYPE_MAX    24
#define SNP_LAUNCH_VMM_MAX          8

/* One allowed launch measurement with what it was computed for (`cloister-measure snp-launch`,
 * the measurements file's and the policy's snp.launchMeasurements). */
typedef struct SnpLaunchEntry {
        uint8_t measurement[48];
        unsigned vcpus;
        char vcpu_type[SNP_LAUNCH_VCPU_TYPE_MAX]; /* "" where the VMM ignores it (ec2, gce) */
        char vmm[SNP_LAUNCH_VMM_MAX];             /* qemu, ec2, gce */
        uint64_t guest_features;
} SnpLaunchEntry;

/* "4 vCPUs EPYC-v4, qemu, guest features 0x1" */
void snp_launch_entry_describe(const SnpLaunchEntry *e, char *buf, size_t size);

typedef struct SnpPolicy {
        bool allow_debug;
        bool allow_migration_agent;
        bool allow_smt;
        int vmpl; /* required VMPL, -1 for any */
        SnpTcb min_tcb;
        uint32_t min_guest_svn;
        uint8_t measurements[SNP_POLICY_MEASUREMENTS_MAX][48];
        size_t n_measurements; /* 0: any measurement */
        bool check_host_data;
        uint8_t host_data[32];
        /* HOST_DATA must be snp_host_data_for_cluster() of the cluster's ID: a verifier that
         * knows the ID binds it with snp_policy_bind_cluster(); until then the check fails. */
        bool host_data_from_cluster;
        uint8_t id_key_digests[SNP_POLICY_MEASUREMENTS_MAX][48];
        size_t n_id_key_digests; /* 0: any */
        /* Launch measurements computed from the firmware, each with its parameters; the
         * MEASUREMENT must be one of these or of measurements[]. */
        SnpLaunchEntry launch[SNP_POLICY_LAUNCH_MAX];
        size_t n_launch;
        /* The TCB the guest was launched with, and the one the firmware committed to (no
         * rollback below it), against minimums: not only the reported TCB. */
        bool check_launch_tcb, check_committed_tcb;
        SnpTcb min_launch_tcb, min_committed_tcb;
        /* CHIP_IDs allowed (dedicated hosts); 0: any. */
        uint8_t chip_ids[SNP_POLICY_CHIP_IDS_MAX][64];
        size_t n_chip_ids;
} SnpPolicy;

void snp_policy_defaults(SnpPolicy *p);

/* HOST_DATA for the nodes that join cluster cluster_id (32 bytes):
 * SHA-256("cloister/v1/snp-host-data" || cluster ID), what the owner sets at launch
 * (QEMU sev-snp-guest host-data=, the provider's API) where the platform lets them. */
#define SNP_HOST_DATA_CONTEXT "cloister/v1/snp-host-data"
void snp_host_data_for_cluster(const uint8_t cluster_id[static 32], uint8_t ret[static 32]);
/* With host_data_from_cluster set: HOST_DATA must be the value for cluster_id. */
void snp_policy_bind_cluster(SnpPolicy *p, const uint8_t cluster_id[static 32]);

typedef void (*SnpCheckFunc)(void *userdata, const char *name, bool ok, const char *expected,
                             const char *actual, const char *detail);

/* Every check by name ("snp-debug", "snp-tcb-microcode", "snp-measurement", "snp-report-data",
 * ...). report_data: the 64 bytes REPORT_DATA must equal (constant time), or NULL to skip.
 * Returns 0 or the errno of the first failure (-EPERM policy, -ESTALE report data). */
int snp_check_policy(const SnpReport *r, SnpProduct product, const SnpPolicy *p,
                     const uint8_t *report_data, SnpCheckFunc cb, void *userdata, Diag *d);
