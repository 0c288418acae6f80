/* SPDX-License-Identifier: Apache-2.0 */
/* The evidence bundle container (cloister/bundle.h, docs/bundle.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/base64.h"
#include "cloister/bundle.h"
#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/json.h"

typedef struct BundleEntry {
        char *name;
        uint8_t *data;
        size_t size;
} BundleEntry;

struct Bundle {
        BundleEntry *entries;
        size_t n_entries;
};

Bundle *bundle_new(void)
{
        return calloc(1, sizeof(Bundle));
}

Bundle *bundle_free(Bundle *b)
{
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n_entries; i++) {
                free(b->entries[i].name);
                free(b->entries[i].data);
        }
        free(b->entries);
        free(b);
        return NULL;
}

static bool name_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > BUNDLE_NAME_MAX || name[0] == '/')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
                      strchr("._/-", name[i])))
                        return false;
        return true;
}

static const BundleEntry *entry_find(const Bundle *b, const char *name)
{
        for (size_t i = 0; i < b->n_entries; i++)
                if (strcmp(b->entries[i].name, name) == 0)
                        return &b->entries[i];
        return NULL;
}

int bundle_add(Bundle *b, const char *name, const void *data, size_t size)
{
        BundleEntry *n, e = {};

        if (!name_valid(name))
                return -EINVAL;
        if (entry_find(b, name))
                return -EEXIST;
        if (b->n_entries >= BUNDLE_ENTRIES_MAX || size > BUNDLE_ENTRY_SIZE_MAX)
                return -EMSGSIZE;
        e.name = strdup(name);
        e.data = malloc(size ?: 1);
        if (!e.name || !e.data) {
                free(e.name);
                free(e.data);
                return -ENOMEM;
        }
        if (size > 0)
                memcpy(e.data, data, size);
        e.size = size;
        n = realloc(b->entries, (b->n_entries + 1) * sizeof(BundleEntry));
        if (!n) {
                free(e.name);
                free(e.data);
                return -ENOMEM;
        }
        b->entries = n;
        b->entries[b->n_entries++] = e;
        return 0;
}

int bundle_get(const Bundle *b, const char *name, const uint8_t **ret, size_t *ret_size)
{
        const BundleEntry *e = entry_find(b, name);

        if (!e)
                return -ENOENT;
        *ret = e->data;
        *ret_size = e->size;
        return 0;
}

size_t bundle_count(const Bundle *b)
{
        return b->n_entries;
}

int bundle_serialize(const Bundle *b, char **ret, size_t *ret_size)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *text = NULL;
        json_t *entries = json_object(), *manifest = json_object();
        char *out;
        size_t n;

        doc = json_pack("{s:s,s:i,s:o,s:o}", "format", BUNDLE_FORMAT, "version", BUNDLE_VERSION,
                        "entries", entries, "manifest", manifest);
        if (!doc)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_entries; i++) {
                const BundleEntry *e = &b->entries[i];
                _cleanup_(freep) char *b64 = NULL;
                uint8_t digest[SHA256_DIGEST_SIZE];
                char hex[2 * SHA256_DIGEST_SIZE + 1];

                crypto_sha256(e->data, e->size, digest);
                hex_encode_buf(digest, sizeof(digest), hex, sizeof(hex));
                if (base64_encode(e->data, e->size, &b64) < 0 ||
                    json_object_set_new(entries, e->name, json_string(b64)) < 0 ||
                    json_object_set_new(manifest, e->name, json_string(hex)) < 0)
                        return -ENOMEM;
        }
        if (json_dump_compact(doc, &text) < 0)
                return -ENOMEM;
        n = strlen(text);
        out = malloc(n + 2);
        if (!out)
                return -ENOMEM;
        memcpy(out, text, n);
        out[n] = '\n';
        out[n + 1] = 0;
        *ret = out;
        *ret_size = n + 1;
        return 0;
}

int bundle_parse(const uint8_t *data, size_t size, Bundle **ret, Diag *d)
{
        static const char *const keys[] = { "entries", "format", "manifest", "version", NULL };
        _cleanup_(bundle_freep) Bundle *b = NULL;
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *canonical = NULL;
        JsonCtx ctx = { .source = "bundle", .path = "", .diag = d };
        json_t *entries = NULL, *manifest = NULL, *v;
        const char *format = NULL, *name;
        size_t canonical_size;
        int64_t version = 0;
        int r;

        if (size > BUNDLE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "bundle-size", -1,
                                 "the bundle is larger than %u bytes", BUNDLE_SIZE_MAX);
        r = json_parse_buffer(data, size, "bundle", &doc, d);
        if (r < 0)
                return r;
        r = json_expect_object(&ctx, doc);
        if (r >= 0)
                r = json_get_string(&ctx, doc, "format", true, &format);
        if (r >= 0)
                r = json_get_int(&ctx, doc, "version", true, 0, INT32_MAX, &version);
        if (r < 0)
                return r;
        if (strcmp(format, BUNDLE_FORMAT) != 0 || version != BUNDLE_VERSION)
                return diag_fail(d, -EPROTONOSUPPORT, "bundle-format", -1,
                                 "not a %s version %d file (format \"%.64s\", version %lld)",
                                 BUNDLE_FORMAT, BUNDLE_VERSION, format, (long long) version);
        r = json_check_keys(&ctx, doc, keys);
        if (r >= 0)
                r = json_get_object(&ctx, doc, "manifest", true, &manifest);
        if (r >= 0)
                r = json_get_object(&ctx, doc, "entries", true, &entries);
        if (r < 0)
                return r;
        if (json_object_size(entries) > BUNDLE_ENTRIES_MAX)
                return diag_fail(d, -EMSGSIZE, "bundle-entries", -1,
                                 "the bundle holds more than %u entries", BUNDLE_ENTRIES_MAX);
        b = bundle_new();
        if (!b)
                return -ENOMEM;
        json_object_foreach (manifest, name, v)
                if (!json_object_get(entries, name))
                        return diag_fail(d, -EBADMSG, "bundle-manifest", -1,
                                         "the manifest lists '%.*s', which the bundle does not "
                                         "hold",
                                         (int) BUNDLE_NAME_MAX, name);
        json_object_foreach (entries, name, v) {
                const char *hex = json_string_value(json_object_get(manifest, name));
                const char *b64 = json_string_value(v);
                _cleanup_(freep) uint8_t *bytes = NULL;
                uint8_t want[SHA256_DIGEST_SIZE], got[SHA256_DIGEST_SIZE];
                size_t n = 0;

                if (!name_valid(name))
                        return diag_fail(d, -EBADMSG, "bundle-entry", -1,
                                         "an entry's name is not one a bundle uses");
                if (!hex)
                        return diag_fail(d, -EBADMSG, "bundle-manifest", -1,
                                         "the entry '%s' is not in the manifest", name);
                if (strlen(hex) != 2 * SHA256_DIGEST_SIZE ||
                    hex_decode_exact(hex, want, sizeof(want)) < 0)
                        return diag_fail(d, -EBADMSG, "bundle-manifest", -1,
                                         "the manifest's digest of '%s' is not 64 hex digits",
                                         name);
                if (!b64 || strlen(b64) > (BUNDLE_ENTRY_SIZE_MAX / 3 + 1) * 4 ||
                    base64_decode(b64, &bytes, &n) < 0)
                        return diag_fail(d, -EBADMSG, "bundle-entry", -1,
                                         "the entry '%s' is not base64", name);
                crypto_sha256(bytes, n, got);
                if (memcmp(want, got, sizeof(want)) != 0) {
                        r = diag_fail(d, -EBADMSG, "bundle-manifest", -1,
                                      "the entry '%s' does not match its manifest digest: the "
                                      "bundle was changed after it was written",
                                      name);
                        diag_set_values_hex(d, want, sizeof(want), got, sizeof(got));
                        return r;
                }
                r = bundle_add(b, name, bytes, n);
                if (r < 0)
                        return diag_fail(d, r, "bundle-entry", -1, "the entry '%s' is refused",
                                         name);
        }
        /* Every digest holds; the file must also be exactly what bundle_serialize() writes from
         * these entries, so that no byte (spacing, escapes, another base64 spelling of the same
         * bytes, uppercase hex) changes without notice. */
        r = bundle_serialize(b, &canonical, &canonical_size);
        if (r < 0)
                return r;
        if (canonical_size != size || memcmp(canonical, data, size) != 0) {
                size_t at = 0;
                while (at < size && at < canonical_size && canonical[at] == (char) data[at])
                        at++;
                return diag_fail(d, -EBADMSG, "bundle-canonical", -1,
                                 "the bundle differs from the form cloister writes at byte %zu: "
                                 "it was changed after it was written",
                                 at);
        }
        *ret = TAKE_PTR(b);
        return 0;
}
