/* SPDX-License-Identifier: Apache-2.0 */
/* The version record of the owner's policy updates (policy-update.h, docs/policy-update.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/attest.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/policy-update.h"

/* The policy travels as a JSON string: every byte may become a six-byte \u escape. */
#define RECORD_SIZE_MAX (6U * ATTEST_POLICY_SIZE_MAX + 4096U)

static void digest_hex(const void *data, size_t size, char ret[static 65])
{
        uint8_t digest[SHA256_DIGEST_SIZE];

        crypto_sha256(data, size, digest);
        hex_encode_buf(digest, sizeof(digest), ret, 65);
}

void policy_update_record_done(PolicyUpdateRecord *rec)
{
        free(rec->text);
        *rec = (PolicyUpdateRecord){};
}

int policy_update_record_load(const char *dir, PolicyUpdateRecord *ret, Diag *d)
{
        static const char *const keys[] = { "version", "policyDigest", "policy", NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) char *path = NULL;
        const char *digest = NULL, *text = NULL;
        PolicyUpdateRecord rec = {};
        JsonCtx ctx = { .path = "", .diag = d };
        size_t size;
        int r;

        if (asprintf(&path, "%s/%s", dir, POLICY_UPDATE_RECORD_FILE) < 0)
                return diag_fail(d, -ENOMEM, "policy-record", -1, "out of memory");
        ctx.source = path;
        r = read_full_file(path, RECORD_SIZE_MAX, &data, &size);
        if (r == -ENOENT) {
                *ret = rec;
                return 0;
        }
        if (r < 0)
                return diag_fail(d, r, "policy-record", -1, "%s: cannot read: %s", path,
                                 strerror(-r));
        r = json_parse_buffer(data, size, path, &j, d);
        if (r >= 0)
                r = json_check_keys(&ctx, j, keys);
        if (r >= 0)
                r = json_get_int(&ctx, j, "version", true, 1, POLICY_UPDATE_VERSION_MAX,
                                 &rec.version);
        if (r >= 0)
                r = json_get_string(&ctx, j, "policyDigest", true, &digest);
        if (r >= 0)
                r = json_get_string(&ctx, j, "policy", true, &text);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "policy-record", -1, "%s is damaged", path);
        rec.size = json_string_length(json_object_get(j, "policy"));
        digest_hex(text, rec.size, rec.digest);
        if (strcmp(rec.digest, digest) != 0 || memchr(text, 0, rec.size))
                return diag_fail(d, -EBADMSG, "policy-record", -1,
                                 "%s is damaged: its policy does not have its digest", path);
        rec.text = strdup(text);
        if (!rec.text)
                return diag_fail(d, -ENOMEM, "policy-record", -1, "out of memory");
        *ret = rec;
        return 0;
}

int policy_update_record_write(const char *dir, int64_t version, const char *text, size_t size,
                               Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_(freep) char *path = NULL, *out = NULL;
        char digest[65];
        int r;

        if (version < 1 || version > POLICY_UPDATE_VERSION_MAX || memchr(text, 0, size))
                return diag_fail(d, -EINVAL, "policy-record", -1, "not a version record");
        digest_hex(text, size, digest);
        j = json_pack("{s:I,s:s,s:s%}", "version", (json_int_t) version, "policyDigest", digest,
                      "policy", text, size);
        if (!j || asprintf(&path, "%s/%s", dir, POLICY_UPDATE_RECORD_FILE) < 0 ||
            json_dump_compact(j, &out) < 0)
                return diag_fail(d, -ENOMEM, "policy-record", -1, "out of memory");
        r = write_file_atomic(path, out, strlen(out), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return diag_fail(d, r, "policy-record", -1, "cannot write %s: %s", path,
                                 strerror(-r));
        return 0;
}
