/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Lowercase hex of size bytes into a new string. */
int hex_encode(const void *data, size_t size, char **ret);
/* Lowercase hex into buf (bufsize bytes incl. NUL); truncated with "..." if it does not fit. */
void hex_encode_buf(const void *data, size_t size, char *buf, size_t bufsize);
/* The value of one hex digit [0-9a-fA-F], or -1. */
int hex_digit_value(char c);
/* Strict: even length, [0-9a-fA-F] only. -EBADMSG otherwise. */
int hex_decode(const char *s, uint8_t **ret, size_t *ret_size);
/* Decodes exactly size bytes into buf; -EBADMSG if s is not 2*size hex digits. */
int hex_decode_exact(const char *s, void *buf, size_t size);
