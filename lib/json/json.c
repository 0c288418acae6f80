/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cloister/base64.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"

/*
 * jansson keeps copies of every string it parses (master secret, join tickets, keys in RPC
 * bodies). Its allocator is replaced with one that remembers each block's size and wipes the
 * block on free, so those copies do not linger in freed heap memory.
 */
typedef struct WipeHeader {
        size_t size;
        max_align_t align_; /* keeps the payload aligned like malloc's */
} WipeHeader;

static void *json_wipe_malloc(size_t size)
{
        WipeHeader *h;

        if (size > SIZE_MAX - sizeof(WipeHeader))
                return NULL;
        h = malloc(sizeof(WipeHeader) + size);
        if (!h)
                return NULL;
        h->size = size;
        return (uint8_t *) h + sizeof(WipeHeader);
}

static void json_wipe_free(void *p)
{
        WipeHeader *h;

        if (!p)
                return;
        h = (WipeHeader *) ((uint8_t *) p - sizeof(WipeHeader));
        explicit_wipe(p, h->size);
        free(h);
}

__attribute__((constructor)) static void json_install_allocator(void)
{
        json_set_alloc_funcs(json_wipe_malloc, json_wipe_free);
}

JsonCtx json_ctx_child(const JsonCtx *ctx, const char *key, char *buf, size_t bufsize)
{
        (void) snprintf(buf, bufsize, "%s.%s", ctx->path ?: "", key);
        return (JsonCtx){ .source = ctx->source, .path = buf, .diag = ctx->diag };
}

static int json_depth(const json_t *j, unsigned depth)
{
        const char *k;
        json_t *v = NULL;
        size_t i;

        if (depth > JSON_DEPTH_MAX)
                return -EMSGSIZE;
        if (json_is_object(j)) {
                json_object_foreach ((json_t *) j, k, v) {
                        int r = json_depth(v, depth + 1);
                        if (r < 0)
                                return r;
                }
        } else if (json_is_array(j)) {
                json_array_foreach (j, i, v) {
                        int r = json_depth(v, depth + 1);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* jansson's error text quotes the offending input ("near '...'"), which may be host bytes: a
 * control byte (ESC, CR, BEL) in it would reach the journal and the serial console raw. Every
 * byte outside printable ASCII becomes \xNN. */
static void json_escape_error(const char *text, char *buf, size_t size)
{
        size_t n = 0;

        for (const unsigned char *c = (const unsigned char *) text; *c && n + 5 < size; c++) {
                if (*c >= 0x20 && *c < 0x7f)
                        buf[n++] = (char) *c;
                else
                        n += (size_t) snprintf(buf + n, size - n, "\\x%02x", *c);
        }
        buf[n] = '\0';
}

int json_parse_buffer(const void *data, size_t size, const char *source, json_t **ret, Diag *d)
{
        char text[4 * JSON_ERROR_TEXT_LENGTH + 1];
        json_error_t err;
        json_t *j;

        /* JSON_REJECT_DUPLICATES: two values for one key would let two parsers disagree. */
        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &err);
        if (!j) {
                json_escape_error(err.text, text, sizeof(text));
                return diag_fail(d, -EBADMSG, "json-syntax", -1, "%s:%d:%d: %s", source, err.line,
                                 err.column, text);
        }
        if (json_depth(j, 0) < 0) {
                json_decref(j);
                return diag_fail(d, -EBADMSG, "json-depth", -1, "%s: nesting deeper than %d levels",
                                 source, JSON_DEPTH_MAX);
        }
        *ret = j;
        return 0;
}

int json_parse_file(const char *path, size_t max_size, json_t **ret, Diag *d)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        size_t size;
        int r;

        r = read_full_file(path, max_size, &buf, &size);
        if (r == -EMSGSIZE)
                return diag_fail(d, r, "file-size", -1,
                                 "%s: file larger than the limit of %zu bytes", path, max_size);
        if (r < 0)
                return diag_fail(d, r, "file-read", -1, "%s: cannot read: %s", path, strerror(-r));
        if (size == 0)
                return diag_fail(d, -EBADMSG, "json-syntax", -1, "%s: file is empty", path);
        r = json_parse_buffer(buf, size, path, ret, d);
        /* The file may hold secrets (master secret, tickets): do not leave them in the heap. */
        explicit_wipe(buf, size);
        return r;
}

static int json_type_error(const JsonCtx *ctx, const char *key, const char *what)
{
        (void) diag_fail(ctx->diag, -EBADMSG, "json-schema", -1, "%s: %s.%s: %s", ctx->source,
                         ctx->path ?: "", key, what);
        return -EBADMSG;
}

int json_expect_object(const JsonCtx *ctx, const json_t *j)
{
        if (!json_is_object(j))
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s: expected an object", ctx->source,
                                 (ctx->path && *ctx->path) ? ctx->path : "top level");
        return 0;
}

int json_check_keys(const JsonCtx *ctx, const json_t *j, const char *const *keys)
{
        const char *k;
        json_t *v = NULL;
        int r;

        r = json_expect_object(ctx, j);
        if (r < 0)
                return r;
        json_object_foreach ((json_t *) j, k, v) {
                bool found = false;
                for (const char *const *p = keys; *p; p++)
                        if (strcmp(*p, k) == 0) {
                                found = true;
                                break;
                        }
                if (!found)
                        return json_type_error(ctx, k, "unknown key");
        }
        return 0;
}

static int json_lookup(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                       json_t **ret)
{
        json_t *v = json_object_get(o, key);
        if (!v) {
                if (required)
                        return json_type_error(ctx, key, "required key is missing");
                return -ENOENT;
        }
        *ret = v;
        return 0;
}

int json_get_object(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                    json_t **ret)
{
        json_t *v = NULL;
        int r = json_lookup(ctx, o, key, required, &v);
        if (r < 0)
                return r;
        if (!json_is_object(v))
                return json_type_error(ctx, key, "expected an object");
        *ret = v;
        return 0;
}

int json_get_array(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                   json_t **ret)
{
        json_t *v = NULL;
        int r = json_lookup(ctx, o, key, required, &v);
        if (r < 0)
                return r;
        if (!json_is_array(v))
                return json_type_error(ctx, key, "expected an array");
        *ret = v;
        return 0;
}

int json_get_string(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                    const char **ret)
{
        json_t *v = NULL;
        int r = json_lookup(ctx, o, key, required, &v);
        if (r < 0)
                return r;
        if (!json_is_string(v))
                return json_type_error(ctx, key, "expected a string");
        /* Embedded NULs would make C see a different string than the JSON says. */
        if (strlen(json_string_value(v)) != json_string_length(v))
                return json_type_error(ctx, key, "string contains a NUL character");
        *ret = json_string_value(v);
        return 0;
}

int json_get_bool(const JsonCtx *ctx, const json_t *o, const char *key, bool required, bool *ret)
{
        json_t *v = NULL;
        int r = json_lookup(ctx, o, key, required, &v);
        if (r < 0)
                return r;
        if (!json_is_boolean(v))
                return json_type_error(ctx, key, "expected true or false");
        *ret = json_is_true(v);
        return 0;
}

int json_get_int(const JsonCtx *ctx, const json_t *o, const char *key, bool required, int64_t min,
                 int64_t max, int64_t *ret)
{
        json_int_t i;
        json_t *v = NULL;
        int r = json_lookup(ctx, o, key, required, &v);
        if (r < 0)
                return r;
        if (!json_is_integer(v))
                return json_type_error(ctx, key, "expected an integer");
        i = json_integer_value(v);
        if (i < min || i > max) {
                char what[128];
                (void) snprintf(what, sizeof(what), "%lld is outside [%" PRId64 ", %" PRId64 "]",
                                (long long) i, min, max);
                return json_type_error(ctx, key, what);
        }
        *ret = (int64_t) i;
        return 0;
}

int json_get_hex_exact(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                       void *buf, size_t size)
{
        const char *s;
        int r = json_get_string(ctx, o, key, required, &s);
        if (r < 0)
                return r;
        if (hex_decode_exact(s, buf, size) < 0) {
                char what[96];
                (void) snprintf(what, sizeof(what), "expected %zu hex digits", size * 2);
                return json_type_error(ctx, key, what);
        }
        return 0;
}

int json_get_base64(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                    size_t max_size, uint8_t **ret, size_t *ret_size)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        const char *s;
        size_t n;
        int r = json_get_string(ctx, o, key, required, &s);
        if (r < 0)
                return r;
        if (strlen(s) / 4 * 3 > max_size + 2) {
                char what[96];
                (void) snprintf(what, sizeof(what), "value longer than %zu bytes", max_size);
                return json_type_error(ctx, key, what);
        }
        if (base64_decode(s, &buf, &n) < 0)
                return json_type_error(ctx, key, "not valid base64");
        if (n > max_size) {
                char what[96];
                (void) snprintf(what, sizeof(what), "value longer than %zu bytes", max_size);
                return json_type_error(ctx, key, what);
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int json_get_base64_secret(const JsonCtx *ctx, const json_t *o, const char *key, size_t size,
                           Secret **ret)
{
        const char *s;
        int r = json_get_string(ctx, o, key, true, &s);
        if (r < 0)
                return r;
        r = base64_decode_secret(s, size, ret);
        if (r == -EBADMSG) {
                char what[96];
                (void) snprintf(what, sizeof(what), "expected base64 of exactly %zu bytes", size);
                return json_type_error(ctx, key, what);
        }
        return r;
}

static int json_dump_flags(const json_t *j, size_t flags, char **ret)
{
        json_malloc_t m;
        json_free_t f;
        char *s, *copy;
        size_t n;

        /* json_dumps() allocates with jansson's allocator (ours, above); hand out a plain
         * malloc() copy so callers free it like every other string, and wipe the original. */
        s = json_dumps(j, flags);
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        copy = malloc(n + 1);
        if (copy)
                memcpy(copy, s, n + 1);
        json_get_alloc_funcs(&m, &f);
        explicit_wipe(s, n);
        f(s);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int json_dump_compact(const json_t *j, char **ret)
{
        return json_dump_flags(j, JSON_COMPACT | JSON_SORT_KEYS, ret);
}

int json_dump_pretty(const json_t *j, char **ret)
{
        return json_dump_flags(j, JSON_INDENT(2) | JSON_SORT_KEYS, ret);
}
