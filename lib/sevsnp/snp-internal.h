/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "cloister/sev-snp.h"

typedef struct SnpBuiltinRoot {
        const char *product;
        const char *pem;
        const char *sha256; /* of the DER, lowercase hex */
} SnpBuiltinRoot;

extern const SnpBuiltinRoot snp_builtin_roots[];
