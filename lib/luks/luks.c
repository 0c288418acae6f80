/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <libcryptsetup.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/luks.h"

static int validate_metadata(const json_t *j, LuksState *ret_state, Diag *d);

static const char *const state_names[_LUKS_STATE_MAX] = {
        [LUKS_STATE_NEW] = "new",
        [LUKS_STATE_INITIALIZED] = "initialized",
        [LUKS_STATE_FORMATTING] = "formatting",
        [LUKS_STATE_REKEYING] = "rekeying",
        [LUKS_STATE_RESET] = "reset",
};

/* Crash-safety tests kill the process between header writes. Only test builds (which define
 * CLOISTER_FAULT_INJECTION) have the hook; product binaries do not contain it. */
#ifdef CLOISTER_FAULT_INJECTION
#define FAULT_EXIT 99
static void fault_point(const char *step)
{
        const char *f = getenv("CLOISTER_FAULT");
        if (f && strcmp(f, step) == 0)
                _exit(FAULT_EXIT);
}
#else
static void fault_point(const char *step)
{
        (void) step;
}
#endif

const char *luks_state_to_string(LuksState s)
{
        return s >= 0 && s < _LUKS_STATE_MAX ? state_names[s] : NULL;
}

static void crypt_freep(struct crypt_device **cd)
{
        if (*cd)
                crypt_free(*cd);
}

/* libcryptsetup prints its own errors to stderr by default; ours carry the reason, its go to the
 * debug log. */
static void crypt_log_to_debug(int level, const char *msg, void *userdata)
{
        log_debug("libcryptsetup: %.*s", (int) strcspn(msg, "\n"), msg);
}

static void quiet_crypt_once(void)
{
        crypt_set_log_callback(NULL, crypt_log_to_debug, NULL);
}

static void quiet_crypt(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        (void) pthread_once(&once, quiet_crypt_once);
}

/* A LUKS magic at the primary header or at any place LUKS2 may put its secondary header (16 KiB
 * to 4 MiB, powers of two): a disk that once was LUKS, even if its header no longer loads, may
 * hold data. */
static bool has_luks_magic(const char *path)
{
        static const uint8_t magic1[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
        static const uint8_t magic2[6] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };
        static const off_t at[] = { 0,      16384,  32768,   65536,   131072,
                                    262144, 524288, 1048576, 2097152, 4194304 };
        uint8_t buf[6];
        bool found = false;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        for (size_t i = 0; i < sizeof(at) / sizeof(at[0]) && !found; i++)
                found = pread(fd, buf, sizeof(buf), at[i]) == (ssize_t) sizeof(buf) &&
                        (memcmp(buf, magic1, 6) == 0 || memcmp(buf, magic2, 6) == 0);
        (void) close(fd);
        return found;
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

/* Whether an existing header may be formatted over: it can hold no data (no keyslot, or an
 * interrupted format) or its owner reset it. */
static bool may_format_over(struct crypt_device *cd, const char *path, bool over_new, Diag *d)
{
        char uuid[LUKS_UUID_SIZE];
        LuksState state = _LUKS_STATE_INVALID;
        Diag ignored;

        if (crypt_keyslot_max(CRYPT_LUKS2) > 0) {
                bool any = false;
                for (int i = 0; i < crypt_keyslot_max(CRYPT_LUKS2); i++)
                        any = any || crypt_keyslot_status(cd, i) >= CRYPT_SLOT_ACTIVE;
                if (!any)
                        return true;
        }
        diag_clear(&ignored);
        if (luks_validate(path, uuid, &state, &ignored) < 0)
                return false;
        return state == LUKS_STATE_FORMATTING || state == LUKS_STATE_RESET ||
               (over_new && (state == LUKS_STATE_NEW || state == LUKS_STATE_REKEYING));
}

bool luks_integrity_available(void)
{
        return access("/dev/mapper/control", F_OK) == 0 &&
               access("/sys/module/dm_integrity", F_OK) == 0;
}

/* Writes every sector once through a temporary private mapping, so each has a valid tag (what
 * cryptsetup's luksFormat --integrity does unless told not to). */
static int integrity_wipe(struct crypt_device *cd, const char *path, const Secret *key, Diag *d)
{
        char name[64], dev[96];
        int r;

        (void) snprintf(name, sizeof(name), "cloister-wipe-%d", (int) getpid());
        (void) snprintf(dev, sizeof(dev), "/dev/mapper/%s", name);
        r = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT,
                                         (const char *) secret_data_const(key), secret_size(key),
                                         CRYPT_ACTIVATE_PRIVATE | CRYPT_ACTIVATE_NO_JOURNAL);
        if (r < 0)
                return diag_fail(d, r, "luks-format", -1,
                                 "%s: cannot activate for the integrity wipe: %s (device-mapper "
                                 "with dm-integrity and dm-crypt is needed)",
                                 path, strerror(-r));
        r = crypt_wipe(cd, dev, CRYPT_WIPE_ZERO, 0, 0, 1024 * 1024, 0, NULL, NULL);
        (void) crypt_deactivate(cd, name);
        if (r < 0)
                return diag_fail(d, r, "luks-format", -1, "%s: the integrity wipe failed: %s", path,
                                 strerror(-r));
        return 0;
}

int luks_format(const char *path, const Secret *key, char uuid[static LUKS_UUID_SIZE], Diag *d)
{
        return luks_format_flags(path, key, 0, uuid, d);
}

int luks_format_flags(const char *path, const Secret *key, LuksFormatFlags flags,
                      char uuid[static LUKS_UUID_SIZE], Diag *d)
{
        bool integrity = flags & LUKS_FORMAT_INTEGRITY;
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct crypt_params_luks2 params = {
                .sector_size = LUKS_SECTOR_SIZE,
                .integrity = integrity ? LUKS_INTEGRITY : NULL,
        };
        int r;
        quiet_crypt();

        r = crypt_init(&cd, path);
        if (r < 0)
                return diag_fail(d, r, "luks-open", -1, "%s: cannot open: %s", path, strerror(-r));
        if (crypt_load(cd, CRYPT_LUKS, NULL) < 0 && has_luks_magic(path))
                return diag_fail(d, -EEXIST, "luks-format", -1,
                                 "%s carries a LUKS header that does not load (damaged or "
                                 "truncated): refusing to format over data that may be "
                                 "recoverable; wipe it deliberately if it is not",
                                 path);
        if (crypt_load(cd, CRYPT_LUKS, NULL) == 0) {
                if (!may_format_over(cd, path, flags & LUKS_FORMAT_OVER_NEW, d))
                        return diag_fail(d, -EEXIST, "luks-format", -1,
                                         "%s already holds a LUKS header that may hold data; "
                                         "refusing to format over it (a Cloister disk is "
                                         "formatted again only after 'reset')",
                                         path);
                crypt_free(cd);
                cd = NULL;
                r = crypt_init(&cd, path);
                if (r < 0)
                        return diag_fail(d, r, "luks-open", -1, "%s: cannot open: %s", path,
                                         strerror(-r));
        }
        /* Header first, then the token saying "formatting", then the keyslot, then "new": a
         * power cut anywhere leaves either no keyslot or the "formatting" token, both of which
         * the next format may overwrite (no data can be on it). */
        r = set_pbkdf(cd);
        if (r >= 0)
                r = crypt_format(cd, CRYPT_LUKS2, LUKS_CIPHER, LUKS_CIPHER_MODE, NULL, NULL,
                                 integrity ? LUKS_VOLUME_KEY_SIZE_INTEGRITY : LUKS_VOLUME_KEY_SIZE,
                                 &params);
        fault_point("format-header");
        if (r >= 0)
                r = set_token(cd, LUKS_STATE_FORMATTING);
        fault_point("format-token");
        if (r >= 0)
                r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0,
                                                    (const char *) secret_data_const(key),
                                                    secret_size(key));
        fault_point("format-keyslot");
        if (r < 0)
                return diag_fail(d, r, "luks-format", -1, "%s: formatting failed: %s", path,
                                 strerror(-r));
        if (integrity) {
                r = integrity_wipe(cd, path, key, d);
                if (r < 0)
                        return r; /* still "formatting": the next format may start over */
        }
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
        LuksState st = _LUKS_STATE_INVALID;
        int64_t key_size = LUKS_VOLUME_KEY_SIZE;
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
        /* Either no integrity, or exactly authenticated mode's: HMAC-SHA256 tags, no journal
         * encryption or integrity of its own (the default dm-integrity journal). */
        {
                json_t *integ = json_object_get(seg, "integrity");
                if (integ) {
                        JsonCtx ci = json_ctx_child(&cs, "integrity", buf, sizeof(buf));
                        static const char *const ikeys[] = { "type", "journal_encryption",
                                                             "journal_integrity", NULL };
                        if ((r = json_check_keys(&ci, integ, ikeys)) < 0 ||
                            (r = check_str(&ci, integ, "type", LUKS_INTEGRITY, "integrity", d)) <
                                    0 ||
                            (r = check_str(&ci, integ, "journal_encryption", "none",
                                           "integrity journal encryption", d)) < 0 ||
                            (r = check_str(&ci, integ, "journal_integrity", "none",
                                           "integrity journal integrity", d)) < 0)
                                return r;
                        key_size = LUKS_VOLUME_KEY_SIZE_INTEGRITY;
                }
        }

        /* Exactly one token, ours; its state says how many keyslots there may be. */
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
                if (strcmp(state, state_names[i]) == 0)
                        st = (LuksState) i;
        if (st < 0)
                return diag_fail(d, -EPERM, "luks-token", -1,
                                 "the Cloister token's state '%s' is unknown", state);

        /* Exactly one keyslot: a host that adds one would hold a second way in. Only a re-key
         * in progress has two (old and new), only an interrupted format may have none. */
        {
                size_t have = json_object_size(keyslots);
                bool ok = have == 1 || (st == LUKS_STATE_REKEYING && have == 2) ||
                          (st == LUKS_STATE_FORMATTING && have == 0);
                if (!ok) {
                        (void) snprintf(n, sizeof(n), "%zu", have);
                        r = diag_fail(d, -EPERM, "luks-keyslots", -1,
                                      "the LUKS2 header must have exactly one keyslot");
                        diag_set_values(d, st == LUKS_STATE_REKEYING ? "1 or 2" : "1", n);
                        return r;
                }
        }
        json_object_foreach (keyslots, k, ks) {
                JsonCtx ck = json_ctx_child(&root, "keyslots.slot", buf, sizeof(buf));
                if ((r = check_str(&ck, ks, "type", "luks2", "keyslot type", d)) < 0 ||
                    (r = json_get_int(&ck, ks, "key_size", true, 0, 1024, &v)) < 0)
                        return r;
                if (v != key_size)
                        return diag_fail(d, -EPERM, "luks-keyslots", -1,
                                         "the keyslot's key is not %d bits", (int) key_size * 8);
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
        if (json_object_size(digests) > 1 ||
            (json_object_size(digests) == 0 && json_object_size(keyslots) > 0))
                return diag_fail(d, -EPERM, "luks-header", -1,
                                 "the LUKS2 header must have exactly one digest");
        *ret_state = st;
        return 0;
}

int luks_validate(const char *path, char uuid[static LUKS_UUID_SIZE], LuksState *ret_state, Diag *d)
{
        return luks_validate_ex(path, uuid, ret_state, NULL, d);
}

/* Loads the header once and validates exactly what was loaded: callers key, re-key and activate
 * through this same crypt_device, never through a second read a host could answer differently. */
static int load_validated(const char *path, struct crypt_device **ret_cd,
                          char uuid[static LUKS_UUID_SIZE], LuksState *ret_state,
                          bool *ret_integrity, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *cipher, *mode;
        bool integrity;
        LuksState state = _LUKS_STATE_INVALID;
        int r;

        quiet_crypt();
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
        {
                struct crypt_params_integrity ip = {};
                integrity = crypt_get_integrity_info(cd, &ip) == 0 && ip.tag_size > 0;
        }
        if (!cipher || !mode || strcmp(cipher, LUKS_CIPHER) != 0 ||
            strcmp(mode, LUKS_CIPHER_MODE) != 0 ||
            crypt_get_volume_key_size(cd) !=
                    (integrity ? LUKS_VOLUME_KEY_SIZE_INTEGRITY : LUKS_VOLUME_KEY_SIZE)) {
                char got[96];
                (void) snprintf(got, sizeof(got), "%s-%s, %d-bit key", cipher ?: "?", mode ?: "?",
                                crypt_get_volume_key_size(cd) * 8);
                r = diag_fail(d, -EPERM, "luks-header", -1,
                              "%s: the cipher is not the expected profile", path);
                diag_set_values(d,
                                integrity ? "aes-xts-plain64, 768-bit key (with integrity)"
                                          : "aes-xts-plain64, 512-bit key",
                                got);
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
        /* Canonical only (cryptsetup writes lowercase): the UUID names the disk's key and its
         * member; two spellings of one UUID must never be two disks (the header's checksum has
         * no key, so the host can rewrite it). */
        if (!kdf_uuid_is_valid(crypt_get_uuid(cd)) ||
            strspn(crypt_get_uuid(cd), "0123456789abcdef-") != strlen(crypt_get_uuid(cd)))
                return diag_fail(d, -EPERM, "luks-header", -1,
                                 "%s: the LUKS2 UUID is malformed (not a lowercase UUID)", path);
        (void) snprintf(uuid, LUKS_UUID_SIZE, "%s", crypt_get_uuid(cd));
        if (ret_state)
                *ret_state = state;
        if (ret_integrity)
                *ret_integrity = integrity;
        if (ret_cd)
                *ret_cd = TAKE_PTR(cd);
        return 0;
}

int luks_validate_ex(const char *path, char uuid[static LUKS_UUID_SIZE], LuksState *ret_state,
                     bool *ret_integrity, Diag *d)
{
        return load_validated(path, NULL, uuid, ret_state, ret_integrity, d);
}

static int open_validated(const char *path, struct crypt_device **ret, Diag *d)
{
        char uuid[LUKS_UUID_SIZE];
        return load_validated(path, ret, uuid, NULL, NULL, d);
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

static bool key_opens(struct crypt_device *cd, int slot, const Secret *key)
{
        return key &&
               crypt_activate_by_passphrase(cd, NULL, slot, (const char *) secret_data_const(key),
                                            secret_size(key), 0) >= 0;
}

static int slot_of(struct crypt_device *cd, const Secret *key)
{
        if (!key)
                return -ENOKEY;
        return crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT,
                                            (const char *) secret_data_const(key), secret_size(key),
                                            0);
}

/* Destroys every keyslot but keep; then the disk is initialized. */
static int finish_rekey(struct crypt_device *cd, const char *path, int keep, Diag *d)
{
        int r = 0;

        for (int i = 0; i < crypt_keyslot_max(CRYPT_LUKS2) && r >= 0; i++)
                if (i != keep && crypt_keyslot_status(cd, i) >= CRYPT_SLOT_ACTIVE)
                        r = crypt_keyslot_destroy(cd, i);
        fault_point("rekey-destroy");
        if (r >= 0)
                r = set_token(cd, LUKS_STATE_INITIALIZED);
        if (r < 0)
                return diag_fail(d, r, "luks-rekey", -1, "%s: cannot retire the old keyslot: %s",
                                 path, strerror(-r));
        return 0;
}

int luks_rekey(const char *path, const Secret *old_key, const Secret *new_key, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        char uuid[LUKS_UUID_SIZE];
        LuksState state = _LUKS_STATE_INVALID;
        int old_slot, new_slot, r;

        r = load_validated(path, &cd, uuid, &state, NULL, d);
        if (r < 0)
                return r;

        switch (state) {
        case LUKS_STATE_INITIALIZED:
                if (slot_of(cd, new_key) >= 0)
                        return 0; /* done before: nothing to do */
                return diag_fail(d, -EKEYREJECTED, "luks-key", -1,
                                 "%s: already initialized, and not with this key", path);
        case LUKS_STATE_REKEYING:
                /* Interrupted: if the new keyslot exists, only finishing is left. */
                new_slot = slot_of(cd, new_key);
                if (new_slot >= 0)
                        return finish_rekey(cd, path, new_slot, d);
                break;
        case LUKS_STATE_NEW:
                break;
        default:
                return diag_fail(d, -EPERM, "luks-state", -1,
                                 "%s: state '%s' cannot be re-keyed (format it first)", path,
                                 luks_state_to_string(state));
        }

        old_slot = slot_of(cd, old_key);
        if (old_slot < 0)
                return diag_fail(d, -EKEYREJECTED, "luks-key", -1,
                                 "%s: the current key does not open the disk", path);
        r = set_token(cd, LUKS_STATE_REKEYING);
        fault_point("rekey-token");
        if (r >= 0)
                r = set_pbkdf(cd);
        if (r >= 0)
                new_slot = r = crypt_keyslot_add_by_passphrase(
                        cd, CRYPT_ANY_SLOT, (const char *) secret_data_const(old_key),
                        secret_size(old_key), (const char *) secret_data_const(new_key),
                        secret_size(new_key));
        if (r < 0)
                return diag_fail(d, r, "luks-rekey", -1, "%s: cannot add the new keyslot: %s", path,
                                 strerror(-r));
        fault_point("rekey-add");
        /* Prove the new slot before the old one goes. */
        if (!key_opens(cd, new_slot, new_key)) {
                (void) crypt_keyslot_destroy(cd, new_slot);
                (void) set_token(cd, state);
                return diag_fail(d, -EIO, "luks-rekey", -1,
                                 "%s: the new keyslot does not open the disk; kept the old one",
                                 path);
        }
        return finish_rekey(cd, path, new_slot, d);
}

int luks_reset(const char *path, const Secret *key, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r;

        r = open_validated(path, &cd, d);
        if (r < 0)
                return r;
        if (slot_of(cd, key) < 0)
                return diag_fail(d, -EKEYREJECTED, "luks-key", -1,
                                 "%s: the key does not open the disk; reset needs it", path);
        r = set_token(cd, LUKS_STATE_RESET);
        return r < 0 ? diag_fail(d, r, "luks-reset", -1, "%s: cannot mark it reset", path) : 0;
}

/* After activation: the live dm-crypt mapping must be the profile the header promised (a second
 * line of defence should libcryptsetup ever re-read a header the host changed meanwhile). */
static int check_active(const char *name, bool integrity, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct crypt_params_integrity ip = {};
        const char *cipher, *mode;
        bool live_integrity;

        if (crypt_init_by_name(&cd, name) < 0)
                return diag_fail(d, -EIO, "luks-open", -1, "cannot inspect /dev/mapper/%s", name);
        cipher = crypt_get_cipher(cd);
        mode = crypt_get_cipher_mode(cd);
        live_integrity = crypt_get_integrity_info(cd, &ip) == 0 && ip.tag_size > 0;
        if (!cipher || !mode || strcmp(cipher, LUKS_CIPHER) != 0 ||
            strcmp(mode, LUKS_CIPHER_MODE) != 0 || live_integrity != integrity ||
            crypt_get_volume_key_size(cd) !=
                    (integrity ? LUKS_VOLUME_KEY_SIZE_INTEGRITY : LUKS_VOLUME_KEY_SIZE))
                return diag_fail(d, -EPERM, "luks-header", -1,
                                 "/dev/mapper/%s is not the validated profile; closed it", name);
        return 0;
}

int luks_open(const char *path, const char *name, const Secret *key, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        char uuid[LUKS_UUID_SIZE];
        LuksState state = _LUKS_STATE_INVALID;
        bool integrity = false;
        int r;

        r = load_validated(path, &cd, uuid, &state, &integrity, d);
        if (r < 0)
                return r;
        if (state == LUKS_STATE_FORMATTING || state == LUKS_STATE_RESET)
                return diag_fail(d, -EPERM, "luks-state", -1,
                                 "%s: state '%s': it holds no data to open; format it", path,
                                 luks_state_to_string(state));
        r = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT,
                                         (const char *) secret_data_const(key), secret_size(key),
                                         0);
        if (r == -EPERM)
                return diag_fail(d, -EKEYREJECTED, "luks-key", -1,
                                 "%s: the key does not open the disk", path);
        if (r == -EEXIST || r == -EBUSY)
                return diag_fail(d, -EEXIST, "luks-open", -1, "/dev/mapper/%s is already active",
                                 name);
        if (r < 0)
                return diag_fail(d, r, "luks-open", -1,
                                 "%s: cannot activate /dev/mapper/%s: %s (device-mapper and "
                                 "dm-crypt are needed)",
                                 path, name, strerror(-r));
        r = check_active(name, integrity, d);
        if (r < 0) {
                (void) crypt_deactivate(cd, name);
                return r;
        }
        return 0;
}

int luks_close(const char *name, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r;

        quiet_crypt();
        r = crypt_init_by_name(&cd, name);
        if (r < 0 || crypt_status(cd, name) < CRYPT_ACTIVE)
                return diag_fail(d, -ENODEV, "luks-close", -1, "/dev/mapper/%s is not active",
                                 name);
        r = crypt_deactivate(cd, name);
        if (r < 0)
                return diag_fail(d, r, "luks-close", -1, "cannot deactivate /dev/mapper/%s: %s",
                                 name, strerror(-r));
        return 0;
}

int luks_active(const char *name, bool *ret_active, char *ret_device, size_t size)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        quiet_crypt();

        *ret_active = false;
        if (ret_device && size)
                ret_device[0] = '\0';
        if (access("/dev/mapper/control", F_OK) < 0)
                return 0; /* no device-mapper here: nothing can be active */
        if (crypt_init_by_name(&cd, name) < 0 || crypt_status(cd, name) < CRYPT_ACTIVE)
                return 0;
        *ret_active = true;
        if (ret_device && size)
                (void) snprintf(ret_device, size, "%s", crypt_get_device_name(cd) ?: "");
        return 0;
}

int luks_keyslot_count(const char *path, unsigned *ret, Diag *d)
{
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        unsigned n = 0;
        int r = open_validated(path, &cd, d);

        if (r < 0)
                return r;
        for (int i = 0; i < crypt_keyslot_max(CRYPT_LUKS2); i++)
                n += crypt_keyslot_status(cd, i) >= CRYPT_SLOT_ACTIVE;
        *ret = n;
        return 0;
}
