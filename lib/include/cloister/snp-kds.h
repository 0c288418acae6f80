/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Certificates from AMD's Key Distribution Service (KDS): the VCEK for (product, chip ID,
 * reported TCB) and the ASK+ARK chain per product, with an on-disk cache so a verifier fetches
 * each at most once (a join path never waits on AMD once warm). KDS answers are
 * self-authenticating (they must chain to a trusted ARK), so the cache needs no integrity of its
 * own; it is written atomically.
 */

#include <stdbool.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/sev-snp.h"

#define SNP_KDS_URL_DEFAULT "https://kdsintf.amd.com"

typedef struct SnpKdsConfig {
        const char *base_url;  /* SNP_KDS_URL_DEFAULT unless testing */
        const char *cache_dir; /* NULL: no cache */
        bool offline;          /* cache only, never the network */
        unsigned timeout_ms;
        unsigned retries;    /* on HTTP 429 / 5xx / transport errors */
        unsigned backoff_ms; /* first wait; doubles; KDS allows ~1 request per 10 s */
} SnpKdsConfig;

void snp_kds_config_defaults(SnpKdsConfig *c);

/* Counts network requests made by this process (for tests: "zero fetches once cached"). */
unsigned snp_kds_requests(void);

/* VCEK (DER) for the report's chip ID and reported TCB. */
int snp_kds_get_vcek(const SnpKdsConfig *c, SnpProduct product, const SnpReport *report,
                     uint8_t **ret, size_t *ret_size, Diag *d);
/* ASK + ARK (PEM) of the product (VCEK chain; vlek: the ASVK chain). */
int snp_kds_get_chain(const SnpKdsConfig *c, SnpProduct product, bool vlek, uint8_t **ret,
                      size_t *ret_size, Diag *d);
