/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * sim-snp: a simulated AMD SEV-SNP device for tests and local clusters. It builds genuine
 * attestation report structures (ABI version 3 layout, Milan TCB encoding) and signs them with a
 * VCEK (ECDSA P-384) that chains to a generated ASK and ARK (RSA-4096, RSA-PSS SHA-384) carrying
 * the same X.509 extensions as AMD's, so the production verification path runs unchanged.
 *
 * Nothing about it is secret or trustworthy: the simulator's ARK is self-made. Verifiers accept
 * it only when a policy names that ARK explicitly; the built-in AMD roots never match it.
 */

#include <stdint.h>

#include "cloister/macro.h"

#define SNP_SIM_REPORT_SIZE 1184
#define SNP_SIM_PRODUCT     "Milan-B0"

typedef struct SnpSimTcb {
        uint8_t bootloader, tee, snp, microcode;
} SnpSimTcb;

typedef struct SnpSimConfig {
        uint64_t policy; /* guest policy; default 0x30000: SMT allowed, no debug, no migration agent
                          */
        uint32_t guest_svn;
        uint32_t vmpl;
        uint8_t family_id[16], image_id[16];
        uint8_t measurement[48];
        uint8_t host_data[32];
        uint8_t chip_id[64];
        SnpSimTcb tcb; /* reported, committed, current and launch TCB */
        uint64_t platform_info;
} SnpSimConfig;

void snp_sim_config_defaults(SnpSimConfig *c);

typedef struct SnpSimulator SnpSimulator;

/* Generates a fresh ARK, ASK and VCEK (about a second: two RSA-4096 keys). */
int snp_sim_new(const SnpSimConfig *config, SnpSimulator **ret);
SnpSimulator *snp_sim_free(SnpSimulator *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnpSimulator *, snp_sim_free);

/* A signed report carrying report_data (64 bytes: aTLS puts its 32-byte binding first). */
int snp_sim_report(SnpSimulator *s, const uint8_t report_data[static 64],
                   uint8_t ret[static SNP_SIM_REPORT_SIZE]);
/* Certificates: VCEK as DER; ASK + ARK as one PEM bundle (ASK first, as AMD's KDS serves it);
 * the ARK alone as PEM (what a policy must name to trust the simulator). malloc'ed. */
int snp_sim_vcek_der(SnpSimulator *s, uint8_t **ret, size_t *ret_size);
int snp_sim_chain_pem(SnpSimulator *s, char **ret);
int snp_sim_ark_pem(SnpSimulator *s, char **ret);
