/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <openssl/evp.h>

#include "cloister/secret.h"

/* atls_context_unseal() with the context's key and its SPKI (atls-seal.c). */
int atls_unseal_with_key(EVP_PKEY *key, const uint8_t *spki, size_t spki_size, const char *label,
                         const uint8_t *sealed, size_t size, Secret **ret);
