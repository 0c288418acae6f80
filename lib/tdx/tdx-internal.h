/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <openssl/x509.h>

#include "cloister/reader.h"
#include "cloister/tdx.h"

/* The Intel SGX Root CA, PEM (its fingerprint is tdx_intel_root_sha256). */
extern const char tdx_intel_root_pem[];

/* ECDSA P-256/SHA-256 over data with a raw r ‖ s signature (big-endian, 32 bytes each). */
bool tdx_ecdsa_verify(EVP_PKEY *key, const uint8_t *data, size_t size, const uint8_t sig[64]);
/* A P-256 public key from x ‖ y. */
int tdx_p256_key(const uint8_t xy[64], EVP_PKEY **ret);
/* SHA-256 of the certificate's DER. */
void tdx_cert_sha256(X509 *x, uint8_t out[static 32]);
/* PEM certificates, each a whole "-----BEGIN CERTIFICATE-----" block; nothing but whitespace
 * and NULs around them. At most max. -EBADMSG otherwise. */
int tdx_load_pem_certs(const uint8_t *data, size_t size, size_t max, STACK_OF(X509) * *ret);
/* The CN of the subject (or issuer), "?" if none. */
const char *tdx_cert_cn(X509 *x, bool issuer, char *buf, size_t size);
bool tdx_cert_valid_at(X509 *x, time_t at);
/* One DER TLV: the tag and a reader over the content. */
int tdx_der_tlv(Reader *r, uint8_t *ret_tag, Reader *ret_content);
/* The PCK certificate's single SGX extension (1.2.840.113741.1.13.1), NULL if none or several. */
const ASN1_OCTET_STRING *tdx_sgx_extension(X509 *x);
