/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cloister/secret.h"

/* Standard alphabet with padding (RFC 4648 section 4). */
int base64_encode(const void *data, size_t size, char **ret);
/* Strict: length a multiple of 4, alphabet only, padding only at the end. -EBADMSG otherwise.
 * The output buffer is wiped and freed on failure. */
int base64_decode(const char *s, uint8_t **ret, size_t *ret_size);
/* Decodes into locked memory; -EBADMSG if the decoded size is not exactly size. */
int base64_decode_secret(const char *s, size_t size, Secret **ret);
