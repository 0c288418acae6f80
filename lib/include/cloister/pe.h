/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * PE/COFF Authenticode digests of EFI binaries (Microsoft PE/COFF specification and "Windows
 * Authenticode Portable Executable Signature Format"): what UEFI firmware measures into PCR 4 for
 * a boot application, and what a signature covers. Parsed from untrusted bytes through the
 * bounded Reader.
 */

#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define PE_SIZE_MAX     (512U * 1024U * 1024U)
#define PE_SECTIONS_MAX 96 /* the PE/COFF specification's own limit */
#define PE_DIGEST_MAX   48

/* md: "SHA256" or "SHA384". */
int pe_authenticode(const uint8_t *data, size_t size, const char *md,
                    uint8_t ret[static PE_DIGEST_MAX], size_t *ret_size, Diag *d);
