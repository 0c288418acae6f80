/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * sim-tdx: a simulated Intel TDX platform for tests and local clusters. It builds genuine quote
 * structures (version 4, TD 1.0 body, certification data type 6 wrapping type 5) signed by an
 * attestation key that a simulated QE report binds, signed in turn by a PCK certificate with
 * real SGX extensions, under a generated root CA (ECDSA P-256 throughout, as Intel's). It also
 * signs the collateral (TCB info, QE identity, both CRLs) the production verifier requires, valid
 * from a day before it was made to thirty days after. So the production verification path runs
 * unchanged.
 *
 * Nothing about it is secret or trustworthy: the root is self-made. Verifiers accept it only when
 * a policy names that root explicitly (sim-tdx's trustedRoot); the built-in Intel root never
 * matches it.
 */

#include <stdint.h>

#include "cloister/macro.h"
#include "cloister/tdx.h"

typedef struct TdxSimConfig {
        uint8_t mr_td[48];
        uint8_t rtmr[4][48];
        uint8_t mr_config_id[48];
        uint64_t td_attributes; /* default SEPT_VE_DISABLE */
        uint64_t xfam;          /* default 0xe7 (x87, SSE, AVX, AVX-512 state) */
        /* The simulated platform's root: its certificate and private key as PEM (what
         * tdx_sim_root_export() wrote: then the PCK Platform CA's certificate and key follow),
         * so that every node of a local cluster chains to the one root its policy names, through
         * one PCK CA as under Intel's. NULL: a new root. Each simulator still makes its own PCK,
         * i.e. is its own CPU. */
        const char *root_pem;
} TdxSimConfig;

void tdx_sim_config_defaults(TdxSimConfig *c);

typedef struct TdxSimulator TdxSimulator;

int tdx_sim_new(const TdxSimConfig *config, TdxSimulator **ret);
TdxSimulator *tdx_sim_free(TdxSimulator *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(TdxSimulator *, tdx_sim_free);

/* A signed quote carrying report_data (aTLS puts its 32-byte binding first). malloc'ed. */
int tdx_sim_quote(TdxSimulator *s, const uint8_t report_data[static 64], uint8_t **ret,
                  size_t *ret_size);
/* The collateral for the simulator's platform; the buffers belong to the simulator (valid until
 * tdx_sim_free; do not free them). */
int tdx_sim_collateral(TdxSimulator *s, TdxCollateral *ret);
/* The root CA as PEM (what a policy must name to trust the simulator). malloc'ed. */
int tdx_sim_root_pem(TdxSimulator *s, char **ret);
/* The root CA and its private key, then the PCK CA and its key, as PEM, for
 * TdxSimConfig.root_pem. malloc'ed. */
int tdx_sim_root_export(TdxSimulator *s, char **ret);
