/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Evidence bundles (docs/bundle.md): one versioned file of named entries (bytes), each listed in
 * a manifest with its SHA-256. What the entries mean (evidence, nonce, key, policy, audit logs)
 * is the CLI's business; this module only writes the container and reads it back strictly:
 *
 *     {"entries":{NAME:BASE64,...},"format":"cloister-bundle","manifest":{NAME:SHA256HEX,...},
 *      "version":1}
 *
 * serialised compactly with sorted keys and one final newline. A bundle is read only if every
 * entry matches its manifest digest, the manifest names exactly the entries, and the file is
 * byte for byte the form this module writes: an edit anywhere fails, naming what no longer
 * holds. The manifest is no signature (anyone can recompute it): what makes a bundle
 * trustworthy is the hardware signature inside each evidence document.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/macro.h"

#define BUNDLE_FORMAT  "cloister-bundle"
#define BUNDLE_VERSION 1
/* Limits of the reader, declared next to it: the whole file, the entries, one entry, a name. */
#define BUNDLE_SIZE_MAX       (128U * 1024U * 1024U)
#define BUNDLE_ENTRIES_MAX    4096U
#define BUNDLE_ENTRY_SIZE_MAX (64U * 1024U * 1024U)
#define BUNDLE_NAME_MAX       128U

typedef struct Bundle Bundle;

Bundle *bundle_new(void);
Bundle *bundle_free(Bundle *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Bundle *, bundle_free);

/* Adds (a copy of) an entry. Names: 1..BUNDLE_NAME_MAX of [a-z0-9._/-], not starting with '/';
 * -EINVAL for another name, -EEXIST for a name already there, -EMSGSIZE over the limits. */
int bundle_add(Bundle *b, const char *name, const void *data, size_t size);
/* An entry's bytes (owned by the bundle); -ENOENT if there is none of that name. */
int bundle_get(const Bundle *b, const char *name, const uint8_t **ret, size_t *ret_size);
size_t bundle_count(const Bundle *b);
/* The canonical file, NUL-terminated (the NUL not counted in *ret_size). */
int bundle_serialize(const Bundle *b, char **ret, size_t *ret_size);
/* Reads a bundle file: -EBADMSG (d says what no longer holds) for anything but the exact form
 * bundle_serialize() writes with every digest matching; -EMSGSIZE over the limits;
 * -EPROTONOSUPPORT for another format or version. */
int bundle_parse(const uint8_t *data, size_t size, Bundle **ret, Diag *d);
