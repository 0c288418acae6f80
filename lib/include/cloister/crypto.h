/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* OpenSSL helpers: digests, error translation and cleanup functions for OpenSSL types. */

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/macro.h"

#define SHA256_DIGEST_SIZE 32
#define SHA384_DIGEST_SIZE 48

/* A (pointer, length) pair for digesting several pieces in one call. */
typedef struct IoVec {
        const void *data;
        size_t size;
} IoVec;

/* md is "SHA256", "SHA384", "SHA1"; out must hold EVP_MD_get_size() bytes. */
int crypto_digest(const char *md, const IoVec *parts, size_t n_parts, uint8_t *out,
                  size_t out_size);
void crypto_sha256(const void *data, size_t size, uint8_t out[static SHA256_DIGEST_SIZE]);
/* SHA-256 of the SubjectPublicKeyInfo of the first certificate in a PEM buffer (kubeadm's CA
 * pin, "--discovery-token-ca-cert-hash sha256:..."). */
int crypto_x509_pem_spki_sha256(const void *pem, size_t size,
                                uint8_t out[static SHA256_DIGEST_SIZE]);

/* Logs (at debug level) and clears OpenSSL's error queue; returns error for chaining. */
int crypto_log_errors(int error, const char *what);
/* The OpenSSL library in use ("OpenSSL 3.0.17 1 Jul 2025"). */
const char *crypto_library_version(void);

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF *, EVP_KDF_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF_CTX *, EVP_KDF_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);
