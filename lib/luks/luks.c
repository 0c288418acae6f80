/* SPDX-License-Identifier: Apache-2.0 */
#include <libcryptsetup.h>
#include <stdio.h>
#include <string.h>

#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/luks.h"

static int validate_metadata(const json_t *j, LuksState *ret_state, Diag *d);

static const char *const state_names[_LUKS_STATE_MAX] = {
        [LUKS_STATE_NEW] = "new",
        [LUKS_STATE_INITIALIZED] = "initialized",
};

const char *luks_state_to_string(LuksState s)
{
        return s >= 0 && s < _LUKS_STATE_MAX ? state_names[s] : NULL;
}

static void crypt_freep(struct crypt_device **cd)
{
        if (*cd)
                crypt_free(*cd);
}

/* Cheap PBKDF for full-entropy keys (see the header); no benchmark, so format is fast and
 * deterministic in cost. */
static int set_pbkdf(struct crypt_device *cd)
{
        const struct crypt_pbkdf_type pbkdf = {
                .type = CRYPT_KDF_PBKDF2,
                .hash = "sha256",
                .iterations = LUKS_PBKDF_ITERATIONS,
                .flags = CRYPT_PBKDF_NO_BENCHMARK,
        };
        return crypt_set_pbkdf_type(cd, &pbkdf);
}

static int set_token(struct crypt_device *cd, LuksState state)
{
        char json[256];

        /* LUKS2 tokens must name their type and the keyslots they concern. */
        (void) snprintf(json, sizeof(json),
                        "{\"type\":\"" LUKS_TOKEN_TYPE "\",\"keyslots\":[],\"version\":%d,"
                        "\"state\":\"%s\"}",
                        LUKS_FORMAT_VERSION, luks_state_to_string(state));
        return crypt_token_json_set(cd, 0, json) == 0 ? 0 : -EIO;
}

int luks_format(const char *path, const Secret *key, char uuid[static LUKS_UUID_SIZE], Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct crypt_params_luks2 params = { .sector_size = LUKS_SECTOR_SIZE };
        int r;

        r = crypt_init(&cd, path);
        if (r < 0)
                return diag_fail(d, r, "luks-open", -1, "%s: cannot open: %s", path, strerror(-r));
        if (crypt_load(cd, CRYPT_LUKS, NULL) == 0)
                return diag_fail(d, -EEXIST, "luks-format", -1,
                                 "%s already holds a LUKS header; refusing to format over it",
                                 path);
        r = set_pbkdf(cd);
        if (r >= 0)
                r = crypt_format(cd, CRYPT_LUKS2, LUKS_CIPHER, LUKS_CIPHER_MODE, NULL, NULL,
                                 LUKS_VOLUME_KEY_SIZE, &params);
        if (r >= 0)
                r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0,
                                                    (const char *) secret_data_const(key),
                                                    secret_size(key));
        if (r >= 0)
                r = set_token(cd, LUKS_STATE_NEW);
        if (r < 0)
                return diag_fail(d, r, "luks-format", -1, "%s: formatting failed: %s", path,
                                 strerror(-r));
        (void) snprintf(uuid, LUKS_UUID_SIZE, "%s", crypt_get_uuid(cd) ?: "");
        return 0;
}

static int check_str(const JsonCtx *c, const json_t *o, const char *key, const char *want,
                     const char *what, Diag *d)
{
        const char *v;
        int r = json_get_string(c, o, key, true, &v);

        if (r < 0)
                return r;
        if (strcmp(v, want) != 0) {
                (void) diag_fail(d, -EPERM, "luks-header", -1,
                                 "the LUKS2 header's %s is not the expected profile", what);
                diag_set_values(d, want, v);
                return -EPERM;
        }
        return 0;
}

/* The header's JSON metadata (LUKS2 on-disk format, "JSON area") against the profile. */
int luks_validate_metadata_json(const char *json, size_t size, LuksState *ret_state, Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = json_parse_buffer(json, size, "LUKS2 header", &j, d);

        return r < 0 ? r : validate_metadata(j, ret_state, d);
}

static int validate_metadata(const json_t *j, LuksState *ret_state, Diag *d)
{
        JsonCtx root = { .source = "LUKS2 header", .path = "", .diag = d };
        json_t *segments, *keyslots, *tokens, *digests, *seg, *ks, *tok, *kdf, *area;
        const char *k, *state;
        char n[16], buf[96];
        int64_t v;
        int r;

        if ((r = json_get_object(&root, j, "segments", true, &segments)) < 0 ||
            (r = json_get_object(&root, j, "keyslots", true, &keyslots)) < 0 ||
            (r = json_get_object(&root, j, "tokens", true, &tokens)) < 0 ||
            (r = json_get_object(&root, j, "digests", true, &digests)) < 0)
                return r;
        if (json_object_size(segments) != 1 || !(seg = json_object_get(segments, "0"))) {
                (void) snprintf(n, sizeof(n), "%zu", json_object_size(segments));
                r = diag_fail(d, -EPERM, "luks-header", -1,
                              "the LUKS2 header must have exactly one data segment");
                diag_set_values(d, "1", n);
                return r;
        }
        JsonCtx cs = json_ctx_child(&root, "segments.0", buf, sizeof(buf));
        if ((r = check_str(&cs, seg, "type", "crypt", "segment type", d)) < 0 ||
            (r = check_str(&cs, seg, "encryption", LUKS_CIPHER "-" LUKS_CIPHER_MODE, "cipher", d)) <
                    0 ||
            (r = check_str(&cs, seg, "size", "dynamic", "segment size", d)) < 0)
                return r;
        r = json_get_int(&cs, seg, "sector_size", true, 0, 1 << 20, &v);
        if (r < 0)
                return r;
        if (v != LUKS_SECTOR_SIZE) {
                (void) snprintf(n, sizeof(n), "%lld", (long long) v);
                r = diag_fail(d, -EPERM, "luks-header", -1,
                              "the data segment's sector size is not the expected profile");
                diag_set_values(d, "4096", n);
                return r;
        }
        if (json_object_get(seg, "integrity"))
                return diag_fail(d, -EPERM, "luks-header", -1,
                                 "the data segment has integrity settings this profile does not "
                                 "use");

        /* Exactly one keyslot: a host that adds one would hold a second way in. */
        if (json_object_size(keyslots) != 1) {
                (void) snprintf(n, sizeof(n), "%zu", json_object_size(keyslots));
                r = diag_fail(d, -EPERM, "luks-keyslots", -1,
                              "the LUKS2 header must have exactly one keyslot");
                diag_set_values(d, "1", n);
                return r;
        }
        json_object_foreach (keyslots, k, ks) {
                JsonCtx ck = json_ctx_child(&root, "keyslots.slot", buf, sizeof(buf));
                if ((r = check_str(&ck, ks, "type", "luks2", "keyslot type", d)) < 0 ||
                    (r = json_get_int(&ck, ks, "key_size", true, 0, 1024, &v)) < 0)
                        return r;
                if (v != LUKS_VOLUME_KEY_SIZE)
                        return diag_fail(d, -EPERM, "luks-keyslots", -1,
                                         "the keyslot's key is not 512 bits");
                if ((r = json_get_object(&ck, ks, "kdf", true, &kdf)) < 0 ||
                    (r = json_get_object(&ck, ks, "area", true, &area)) < 0)
                        return r;
                JsonCtx cf = json_ctx_child(&ck, "kdf", buf, sizeof(buf));
                if ((r = check_str(&cf, kdf, "type", "pbkdf2", "keyslot KDF", d)) < 0 ||
                    (r = check_str(&cf, kdf, "hash", "sha256", "keyslot KDF hash", d)) < 0 ||
                    (r = json_get_int(&cf, kdf, "iterations", true, 1, INT32_MAX, &v)) < 0)
                        return r;
                if (v < LUKS_PBKDF_ITERATIONS)
                        return diag_fail(d, -EPERM, "luks-keyslots", -1,
                                         "the keyslot's PBKDF2 iteration count is below %d",
                                         LUKS_PBKDF_ITERATIONS);
                JsonCtx ca = json_ctx_child(&ck, "area", buf, sizeof(buf));
                if ((r = check_str(&ca, area, "encryption", LUKS_CIPHER "-" LUKS_CIPHER_MODE,
                                   "keyslot area cipher", d)) < 0)
                        return r;
        }
        if (json_object_size(digests) != 1)
                return diag_fail(d, -EPERM, "luks-header", -1,
                                 "the LUKS2 header must have exactly one digest");

        /* Exactly one token, ours. */
        if (json_object_size(tokens) != 1 || !(tok = json_object_get(tokens, "0")))
                return diag_fail(d, -EPERM, "luks-token", -1,
                                 "the LUKS2 header must carry exactly one Cloister token");
        JsonCtx ct = json_ctx_child(&root, "tokens.0", buf, sizeof(buf));
        if ((r = check_str(&ct, tok, "type", LUKS_TOKEN_TYPE, "token type", d)) < 0 ||
            (r = json_get_int(&ct, tok, "version", true, LUKS_FORMAT_VERSION, LUKS_FORMAT_VERSION,
                              &v)) < 0 ||
            (r = json_get_string(&ct, tok, "state", true, &state)) < 0)
                return r;
        for (int i = 0; i < _LUKS_STATE_MAX; i++)
                if (strcmp(state, state_names[i]) == 0) {
                        *ret_state = (LuksState) i;
                        return 0;
                }
        return diag_fail(d, -EPERM, "luks-token", -1, "the Cloister token's state '%s' is unknown",
                         state);
}

int luks_validate(const char *path, char uuid[static LUKS_UUID_SIZE], LuksState *ret_state, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *cipher, *mode;
        LuksState state = _LUKS_STATE_INVALID;
        int r;

        r = crypt_init(&cd, path);
        if (r < 0)
                return diag_fail(d, r, "luks-open", -1, "%s: cannot open: %s", path, strerror(-r));
        r = crypt_load(cd, CRYPT_LUKS2, NULL);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "luks-header", -1,
                                 "%s: no valid LUKS2 header (LUKS1 and damaged headers are "
                                 "refused)",
                                 path);
        cipher = crypt_get_cipher(cd);
        mode = crypt_get_cipher_mode(cd);
        if (!cipher || !mode || strcmp(cipher, LUKS_CIPHER) != 0 ||
            strcmp(mode, LUKS_CIPHER_MODE) != 0 ||
            crypt_get_volume_key_size(cd) != LUKS_VOLUME_KEY_SIZE) {
                char got[96];
                (void) snprintf(got, sizeof(got), "%s-%s, %d-bit key", cipher ?: "?", mode ?: "?",
                                crypt_get_volume_key_size(cd) * 8);
                r = diag_fail(d, -EPERM, "luks-header", -1,
                              "%s: the cipher is not the expected profile", path);
                diag_set_values(d, "aes-xts-plain64, 512-bit key", got);
                return r;
        }
        {
                const char *dump = NULL;
                /* The whole metadata, as libcryptsetup parsed and checksum-verified it. */
                r = crypt_dump_json(cd, &dump, 0);
                if (r < 0 || !dump)
                        return diag_fail(d, -EBADMSG, "luks-header", -1,
                                         "%s: cannot read the LUKS2 metadata", path);
                r = json_parse_buffer(dump, strlen(dump), "LUKS2 header", &j, d);
                if (r < 0)
                        return r;
        }
        r = validate_metadata(j, &state, d);
        if (r < 0)
                return r;
        if (!kdf_uuid_is_valid(crypt_get_uuid(cd)))
                return diag_fail(d, -EPERM, "luks-header", -1, "%s: the LUKS2 UUID is malformed",
                                 path);
        (void) snprintf(uuid, LUKS_UUID_SIZE, "%s", crypt_get_uuid(cd));
        if (ret_state)
                *ret_state = state;
        return 0;
}

static int open_validated(const char *path, struct crypt_device **ret, Diag *d)
{
        char uuid[LUKS_UUID_SIZE];
        int r = luks_validate(path, uuid, NULL, d);

        if (r < 0)
                return r;
        r = crypt_init(ret, path);
        if (r >= 0)
                r = crypt_load(*ret, CRYPT_LUKS2, NULL);
        return r < 0 ? diag_fail(d, r, "luks-open", -1, "%s: cannot load", path) : 0;
}

int luks_check_key(const char *path, const Secret *key, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r;

        r = open_validated(path, &cd, d);
        if (r < 0)
                return r;
        /* Name NULL: verify the passphrase without activating anything. */
        r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT,
                                         (const char *) secret_data_const(key), secret_size(key),
                                         0);
        if (r < 0)
                return diag_fail(d, -EKEYREJECTED, "luks-key", -1,
                                 "%s: the key does not open the disk", path);
        return 0;
}

int luks_rekey(const char *path, const Secret *old_key, const Secret *new_key, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int old_slot, new_slot, r;

        r = open_validated(path, &cd, d);
        if (r < 0)
                return r;
        old_slot = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT,
                                                (const char *) secret_data_const(old_key),
                                                secret_size(old_key), 0);
        if (old_slot < 0)
                return diag_fail(d, -EKEYREJECTED, "luks-key", -1,
                                 "%s: the current key does not open the disk", path);
        r = set_pbkdf(cd);
        if (r >= 0)
                new_slot = r = crypt_keyslot_add_by_passphrase(
                        cd, CRYPT_ANY_SLOT, (const char *) secret_data_const(old_key),
                        secret_size(old_key), (const char *) secret_data_const(new_key),
                        secret_size(new_key));
        if (r < 0)
                return diag_fail(d, r, "luks-rekey", -1, "%s: cannot add the new keyslot: %s", path,
                                 strerror(-r));
        /* Prove the new slot before the old one goes. */
        r = crypt_activate_by_passphrase(cd, NULL, new_slot,
                                         (const char *) secret_data_const(new_key),
                                         secret_size(new_key), 0);
        if (r < 0) {
                (void) crypt_keyslot_destroy(cd, new_slot);
                return diag_fail(d, -EIO, "luks-rekey", -1,
                                 "%s: the new keyslot does not open the disk; kept the old one",
                                 path);
        }
        r = crypt_keyslot_destroy(cd, old_slot);
        if (r >= 0)
                r = set_token(cd, LUKS_STATE_INITIALIZED);
        if (r < 0)
                return diag_fail(d, r, "luks-rekey", -1, "%s: cannot retire the old keyslot: %s",
                                 path, strerror(-r));
        return 0;
}
