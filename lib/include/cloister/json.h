/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * JSON on jansson: the only module that includes jansson.h's parser. Parsing is bounded (size,
 * depth, duplicate keys refused) and typed getters report errors into a Diag whose message names
 * the source (file name), the line and column for syntax errors, and the offending key with its
 * path for schema errors: "policy.json: .measurements.4.expected: expected a string".
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/secret.h"

#define JSON_DEPTH_MAX 32
/* Default size limit for JSON files the user hands us (policies, configs). */
#define JSON_FILE_SIZE_MAX (1024U * 1024U)

/* json_decrefp() for _cleanup_ comes with jansson >= 2.9. */

/* Context for schema errors: where the object came from and its path within the document. */
typedef struct JsonCtx {
        const char *source; /* file name or a label such as "evidence" */
        const char *path;   /* "" for the root, ".a.b" below it */
        Diag *diag;
} JsonCtx;

/* Builds the context for member key of ctx's object (path buffer supplied by the caller). */
JsonCtx json_ctx_child(const JsonCtx *ctx, const char *key, char *buf, size_t bufsize);

int json_parse_buffer(const void *data, size_t size, const char *source, json_t **ret, Diag *d);
/* -EMSGSIZE for files over max_size; errno-style errors name the file in d. */
int json_parse_file(const char *path, size_t max_size, json_t **ret, Diag *d);

/* -EBADMSG unless j is an object whose keys are all in keys (NULL-terminated). */
int json_check_keys(const JsonCtx *ctx, const json_t *j, const char *const *keys);
int json_expect_object(const JsonCtx *ctx, const json_t *j);

/* Getters: -ENOENT if absent and !required (output untouched), -EBADMSG on a wrong type/range. */
int json_get_object(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                    json_t **ret);
int json_get_array(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                   json_t **ret);
int json_get_string(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                    const char **ret);
int json_get_bool(const JsonCtx *ctx, const json_t *o, const char *key, bool required, bool *ret);
int json_get_int(const JsonCtx *ctx, const json_t *o, const char *key, bool required, int64_t min,
                 int64_t max, int64_t *ret);
/* Lowercase or uppercase hex of exactly size bytes. */
int json_get_hex_exact(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                       void *buf, size_t size);
/* Base64 of at most max_size bytes; a new malloc'ed buffer. */
int json_get_base64(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                    size_t max_size, uint8_t **ret, size_t *ret_size);
/* Base64 of exactly size bytes, decoded straight into locked memory. */
int json_get_base64_secret(const JsonCtx *ctx, const json_t *o, const char *key, size_t size,
                           Secret **ret);

/* Compact serialisation with sorted keys; NUL-terminated. */
int json_dump_compact(const json_t *j, char **ret);
/* Indented for humans. */
int json_dump_pretty(const json_t *j, char **ret);
