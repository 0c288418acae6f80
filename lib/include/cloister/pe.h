/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * PE/COFF images of EFI binaries (Microsoft PE/COFF specification and "Windows Authenticode
 * Portable Executable Signature Format"): the Authenticode digest firmware measures into PCR 4
 * for a boot application, the digest a signature covers, and the sections a unified kernel image
 * (UKI) carries. Parsed from untrusted bytes through the bounded Reader.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define PE_SIZE_MAX     (512U * 1024U * 1024U)
#define PE_SECTIONS_MAX 96 /* the PE/COFF specification's own limit */
#define PE_DIGEST_MAX   48

typedef struct PeSection {
        char name[9]; /* the 8-byte name field, NUL-terminated here */
        uint32_t virtual_size, virtual_address;
        uint32_t raw_size, raw_offset; /* SizeOfRawData, PointerToRawData */
} PeSection;

/* A parsed image; points into the caller's buffer, which must outlive it. */
typedef struct PeImage {
        const uint8_t *data;
        size_t size;
        uint16_t machine;   /* COFF Machine: 0x8664 x86-64, 0xaa64 arm64, ... */
        size_t checksum_at; /* file offset of the optional header's CheckSum */
        size_t certdir_at;  /* file offset of the certificate table entry, 0 if none */
        size_t size_of_headers;
        uint32_t cert_offset, cert_size; /* the certificate table (file offset, size) */
        unsigned n_sections;
        PeSection sections[PE_SECTIONS_MAX]; /* in section-table order */
} PeImage;

/* Validates headers and the section table: every section's file data inside the file and after
 * the headers, no two sections' data overlapping, the certificate table last and after all
 * section data. -EBADMSG with the reason in d otherwise. */
int pe_parse(const uint8_t *data, size_t size, PeImage *ret, Diag *d);

/* The first section with this exact name, or NULL. */
const PeSection *pe_find_section(const PeImage *pe, const char *name);

/* md: "SHA256" or "SHA384". */
int pe_authenticode(const uint8_t *data, size_t size, const char *md,
                    uint8_t ret[static PE_DIGEST_MAX], size_t *ret_size, Diag *d);

/*
 * The digest the image's own Authenticode signature covers: the messageDigest of the
 * SpcIndirectDataContent inside the PKCS#7 SignedData of the first WIN_CERTIFICATE. Only the
 * digest is read; neither the signature nor its chain is checked here (firmware and shim do
 * that against their own keys). ret_md gets "SHA256", "SHA384" or "SHA1".
 * -ENODATA if the image carries no signature.
 */
int pe_signed_digest(const uint8_t *data, size_t size, const char **ret_md,
                     uint8_t ret[static PE_DIGEST_MAX], size_t *ret_size, Diag *d);
