/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloister/audit-log.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/timestamp.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
/* The file is read in chunks of this size plus room for one line left over from the last. */
#define AUDIT_READ_CHUNK (64U * 1024U)
#define AUDIT_HEAD_MAX   256U

/* Keys in canonical order (sorted by code point, as json.dumps(sort_keys=True) orders them). */
typedef enum AuditField {
        AUDIT_FIELD_EVENT,
        AUDIT_FIELD_EVIDENCE_DIGEST,
        AUDIT_FIELD_HASH,
        AUDIT_FIELD_NODE,
        AUDIT_FIELD_POLICY_DIGEST,
        AUDIT_FIELD_PREV,
        AUDIT_FIELD_REASON,
        AUDIT_FIELD_ROLE,
        AUDIT_FIELD_SEQ,
        AUDIT_FIELD_TIME,
        AUDIT_FIELD_VERDICT,
        _AUDIT_FIELD_MAX,
} AuditField;

static const char *const field_names[_AUDIT_FIELD_MAX] = {
        [AUDIT_FIELD_EVENT] = "event",
        [AUDIT_FIELD_EVIDENCE_DIGEST] = "evidenceDigest",
        [AUDIT_FIELD_HASH] = "hash",
        [AUDIT_FIELD_NODE] = "node",
        [AUDIT_FIELD_POLICY_DIGEST] = "policyDigest",
        [AUDIT_FIELD_PREV] = "prev",
        [AUDIT_FIELD_REASON] = "reason",
        [AUDIT_FIELD_ROLE] = "role",
        [AUDIT_FIELD_SEQ] = "seq",
        [AUDIT_FIELD_TIME] = "time",
        [AUDIT_FIELD_VERDICT] = "verdict",
};

static const char *const events[] = {
        "init",
        "admission",
        "rejoin",
        "recovery",
        "refusal",
        /* Policy updates (docs/policy-update.md): the owner's policy put in force, always
         * "admitted", role "", the old and new version and digest in its reason. */
        "policy-update",
        /* Continuous re-attestation (docs/reattestation.md). */
        "reattest-failed",
        "reattest-unreachable",
        "reattest-passed",
        "eviction",
        /* A member's WireGuard key registered or changed (docs/mesh.md). */
        "mesh-key",
        /* The owner removed a member (docs/membership.md): always "refused" (the member is
         * no more), the member's name and role, who asked in the reason. */
        "removal",
        NULL,
};
static const char *const verdicts[] = { "admitted", "refused", NULL };
static const char *const roles[] = { "control-plane", "worker", "", NULL };

/* One entry; the strings belong to whoever made it (a parsed json_t, or append's buffers). */
typedef struct AuditRecord {
        int64_t seq;
        const char *field[_AUDIT_FIELD_MAX]; /* NULL at AUDIT_FIELD_SEQ */
} AuditRecord;

/* The canonical serialisation of one entry, bounded by AUDIT_LINE_MAX. */
typedef struct LineBuf {
        char data[AUDIT_LINE_MAX + 1];
        size_t size;
        bool overflow;
} LineBuf;

static bool one_of(const char *s, const char *const *set)
{
        for (; *set; set++)
                if (strcmp(s, *set) == 0)
                        return true;
        return false;
}

static bool is_hex64(const char *s)
{
        return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static bool is_digest(const char *s)
{
        return s[0] == '\0' || is_hex64(s);
}

/* One UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
 * Returns its length, 0 if s does not start with a valid one. */
static size_t utf8_decode(const char *s, size_t n, uint32_t *ret)
{
        static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        const uint8_t *u = (const uint8_t *) s;
        size_t len;
        uint32_t cp;

        if (n == 0)
                return 0;
        if (u[0] < 0x80) {
                *ret = u[0];
                return 1;
        }
        if ((u[0] & 0xe0) == 0xc0) {
                len = 2;
                cp = u[0] & 0x1f;
        } else if ((u[0] & 0xf0) == 0xe0) {
                len = 3;
                cp = u[0] & 0x0f;
        } else if ((u[0] & 0xf8) == 0xf0) {
                len = 4;
                cp = u[0] & 0x07;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (u[i] & 0x3f);
        }
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret = cp;
        return len;
}

/* C0, DEL and C1: nothing a reason needs, and what a terminal would act on. */
static bool is_control(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

/* What append stores: node printable ASCII, reason UTF-8 without control characters; each at
 * most max bytes. */
static bool text_ok(const char *s, size_t max, bool ascii_only)
{
        size_t n = strlen(s);

        if (n > max)
                return false;
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t k = utf8_decode(s + i, n - i, &cp);

                if (k == 0 || is_control(cp) || (ascii_only && cp >= 0x80))
                        return false;
                i += k;
        }
        return true;
}

/* Makes text_ok(buf, max, ascii_only) hold for any input: invalid UTF-8 and control characters
 * become '?' (tab, CR, LF a space), and a value over max bytes is cut at a character boundary
 * and ends in "...". buf has max + 1 bytes. */
static void text_sanitize(const char *s, size_t max, bool ascii_only, char *buf)
{
        size_t n = strlen(s), out = 0, i = 0;

        assert(max >= 3);
        while (i < n) {
                char one[4];
                size_t k, w;
                uint32_t cp;

                k = utf8_decode(s + i, n - i, &cp);
                if (k == 0) {
                        one[0] = '?';
                        w = 1;
                        k = 1;
                } else if (cp == '\t' || cp == '\n' || cp == '\r') {
                        one[0] = ' ';
                        w = 1;
                } else if (is_control(cp) || (ascii_only && cp >= 0x80)) {
                        one[0] = '?';
                        w = 1;
                } else {
                        memcpy(one, s + i, k);
                        w = k;
                }
                if (out + w > max) {
                        /* Back off to a character boundary that leaves room for the marker. */
                        while (out > max - 3) {
                                out--;
                                while (out > 0 && ((uint8_t) buf[out] & 0xc0) == 0x80)
                                        out--;
                        }
                        memcpy(buf + out, "...", 3);
                        out += 3;
                        break;
                }
                memcpy(buf + out, one, w);
                out += w;
                i += k;
        }
        buf[out] = '\0';
}

/* RFC 3339 UTC whole seconds, a date that exists (lib/base/timestamp.c). */
static bool time_ok(const char *s)
{
        time_t t;

        return timestamp_parse_utc(s, &t) >= 0;
}

static void buf_put(LineBuf *b, const char *s, size_t n)
{
        if (b->overflow || n > AUDIT_LINE_MAX - b->size) {
                b->overflow = true;
                return;
        }
        memcpy(b->data + b->size, s, n);
        b->size += n;
        b->data[b->size] = '\0';
}

static void buf_put_u16_escape(LineBuf *b, uint32_t u)
{
        static const char hex[] = "0123456789abcdef";
        const char e[6] = {
                '\\',        'u', hex[(u >> 12) & 0xf], hex[(u >> 8) & 0xf], hex[(u >> 4) & 0xf],
                hex[u & 0xf]
        };

        buf_put(b, e, sizeof(e));
}

/* A JSON string escaped as Python's json.dumps(ensure_ascii=True) does (json/encoder.py,
 * py_encode_basestring_ascii): printable ASCII as is except '"' and '\', the five short
 * escapes, everything else \uxxxx in lowercase hex, as a UTF-16 surrogate pair above U+FFFF. */
static int buf_put_string(LineBuf *b, const char *s)
{
        size_t n = strlen(s);

        buf_put(b, "\"", 1);
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t k = utf8_decode(s + i, n - i, &cp);

                if (k == 0)
                        return -EBADMSG;
                i += k;
                switch (cp) {
                case '"':
                        buf_put(b, "\\\"", 2);
                        break;
                case '\\':
                        buf_put(b, "\\\\", 2);
                        break;
                case '\b':
                        buf_put(b, "\\b", 2);
                        break;
                case '\f':
                        buf_put(b, "\\f", 2);
                        break;
                case '\n':
                        buf_put(b, "\\n", 2);
                        break;
                case '\r':
                        buf_put(b, "\\r", 2);
                        break;
                case '\t':
                        buf_put(b, "\\t", 2);
                        break;
                default:
                        if (cp >= 0x20 && cp < 0x7f) {
                                char c = (char) cp;
                                buf_put(b, &c, 1);
                        } else if (cp < 0x10000)
                                buf_put_u16_escape(b, cp);
                        else {
                                buf_put_u16_escape(b, 0xd800 | ((cp - 0x10000) >> 10));
                                buf_put_u16_escape(b, 0xdc00 | ((cp - 0x10000) & 0x3ff));
                        }
                }
        }
        buf_put(b, "\"", 1);
        return 0;
}

/* The canonical form, with or without "hash": -EMSGSIZE past AUDIT_LINE_MAX. */
static int record_serialize(const AuditRecord *rec, bool with_hash, LineBuf *b)
{
        *b = (LineBuf){};
        buf_put(b, "{", 1);
        for (AuditField f = 0; f < _AUDIT_FIELD_MAX; f++) {
                char seq[24];
                int r;

                if (f == AUDIT_FIELD_HASH && !with_hash)
                        continue;
                if (b->size > 1)
                        buf_put(b, ",", 1);
                buf_put(b, "\"", 1);
                buf_put(b, field_names[f], strlen(field_names[f]));
                buf_put(b, "\":", 2);
                if (f == AUDIT_FIELD_SEQ) {
                        (void) snprintf(seq, sizeof(seq), "%" PRId64, rec->seq);
                        buf_put(b, seq, strlen(seq));
                        continue;
                }
                r = buf_put_string(b, rec->field[f]);
                if (r < 0)
                        return r;
        }
        buf_put(b, "}", 1);
        return b->overflow ? -EMSGSIZE : 0;
}

static int record_hash(const AuditRecord *rec, char ret[static AUDIT_HASH_HEX_SIZE])
{
        LineBuf b;
        uint8_t digest[SHA256_DIGEST_SIZE];
        int r;

        r = record_serialize(rec, false, &b);
        if (r < 0)
                return r;
        crypto_sha256(b.data, b.size, digest);
        hex_encode_buf(digest, sizeof(digest), ret, AUDIT_HASH_HEX_SIZE);
        return 0;
}

/* A key named in a message: peers write keys too, so only short printable ones are quoted. */
static const char *printable_key(const char *k)
{
        return strlen(k) <= 32 && text_ok(k, 32, true) ? k : "(unprintable)";
}

/* The value rules, shared by verify (on what it reads) and append (on what it writes). Returns
 * the offending field with why it is wrong, or _AUDIT_FIELD_MAX if all hold. */
static AuditField record_check_values(const AuditRecord *rec, char *why, size_t why_size)
{
        const char *const *f = rec->field;

        if (rec->seq < 1 || rec->seq > (int64_t) AUDIT_ENTRIES_MAX) {
                (void) snprintf(why, why_size, "is outside [1, %u]", AUDIT_ENTRIES_MAX);
                return AUDIT_FIELD_SEQ;
        }
        if (!time_ok(f[AUDIT_FIELD_TIME])) {
                (void) snprintf(why, why_size, "is not a UTC time YYYY-MM-DDTHH:MM:SSZ");
                return AUDIT_FIELD_TIME;
        }
        if (!one_of(f[AUDIT_FIELD_EVENT], events)) {
                (void) snprintf(why, why_size,
                                "is not init, admission, rejoin, recovery, refusal, "
                                "policy-update or another known event");
                return AUDIT_FIELD_EVENT;
        }
        if (!text_ok(f[AUDIT_FIELD_NODE], AUDIT_NODE_MAX, true)) {
                (void) snprintf(why, why_size, "is not printable ASCII of at most %u bytes",
                                AUDIT_NODE_MAX);
                return AUDIT_FIELD_NODE;
        }
        if (!one_of(f[AUDIT_FIELD_ROLE], roles)) {
                (void) snprintf(why, why_size, "is not control-plane, worker or empty");
                return AUDIT_FIELD_ROLE;
        }
        if (!is_digest(f[AUDIT_FIELD_EVIDENCE_DIGEST])) {
                (void) snprintf(why, why_size, "is not 64 lowercase hex digits or empty");
                return AUDIT_FIELD_EVIDENCE_DIGEST;
        }
        if (!is_digest(f[AUDIT_FIELD_POLICY_DIGEST])) {
                (void) snprintf(why, why_size, "is not 64 lowercase hex digits or empty");
                return AUDIT_FIELD_POLICY_DIGEST;
        }
        if (!one_of(f[AUDIT_FIELD_VERDICT], verdicts)) {
                (void) snprintf(why, why_size, "is not admitted or refused");
                return AUDIT_FIELD_VERDICT;
        }
        if (strcmp(f[AUDIT_FIELD_EVENT], "refusal") == 0 &&
            strcmp(f[AUDIT_FIELD_VERDICT], "refused") != 0) {
                (void) snprintf(why, why_size, "is not refused, as a refusal's must be");
                return AUDIT_FIELD_VERDICT;
        }
        /* Policy updates: one shape only. */
        if (strcmp(f[AUDIT_FIELD_EVENT], "policy-update") == 0 &&
            (strcmp(f[AUDIT_FIELD_VERDICT], "admitted") != 0 || f[AUDIT_FIELD_ROLE][0])) {
                (void) snprintf(why, why_size,
                                "is not admitted with an empty role, as a "
                                "policy-update's must be");
                return AUDIT_FIELD_VERDICT;
        }
        /* Re-attestation: a failure, unreachability or an eviction is refused, a recovery
         * admitted (docs/reattestation.md). */
        if (strncmp(f[AUDIT_FIELD_EVENT], "reattest-", 9) == 0 ||
            strcmp(f[AUDIT_FIELD_EVENT], "eviction") == 0 ||
            strcmp(f[AUDIT_FIELD_EVENT], "removal") == 0) {
                const char *want = strcmp(f[AUDIT_FIELD_EVENT], "reattest-passed") == 0 ? "admitted"
                                                                                        : "refused";
                if (strcmp(f[AUDIT_FIELD_VERDICT], want) != 0) {
                        (void) snprintf(why, why_size, "is not %s, as a %s's must be", want,
                                        f[AUDIT_FIELD_EVENT]);
                        return AUDIT_FIELD_VERDICT;
                }
        }
        if (!text_ok(f[AUDIT_FIELD_REASON], AUDIT_REASON_MAX, false)) {
                (void) snprintf(why, why_size,
                                "is over %u bytes, not UTF-8 or holds control characters",
                                AUDIT_REASON_MAX);
                return AUDIT_FIELD_REASON;
        }
        if (!is_hex64(f[AUDIT_FIELD_PREV])) {
                (void) snprintf(why, why_size, "is not 64 lowercase hex digits");
                return AUDIT_FIELD_PREV;
        }
        if (f[AUDIT_FIELD_HASH] && !is_hex64(f[AUDIT_FIELD_HASH])) {
                (void) snprintf(why, why_size, "is not 64 lowercase hex digits");
                return AUDIT_FIELD_HASH;
        }
        return _AUDIT_FIELD_MAX;
}

/*
 * Everything one line says about itself: length, JSON, exactly our keys with the right types,
 * values, its own hash, canonical form. where is "line N" or "the last line" in messages; index
 * is N or -1. The strings in ret point into *ret_json.
 */
static int record_parse_line(const char *source, const char *where, int index, const char *line,
                             size_t len, json_t **ret_json, AuditRecord *ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *o = NULL;
        AuditRecord rec = {};
        char computed[AUDIT_HASH_HEX_SIZE];
        char why[96];
        const char *key;
        json_t *v = NULL;
        AuditField bad;
        LineBuf b;
        Diag jd;
        int r;

        if (len > AUDIT_LINE_MAX)
                return diag_fail(d, -EMSGSIZE, "audit-line-size", index,
                                 "%s: %s is longer than %u bytes", source, where, AUDIT_LINE_MAX);
        diag_clear(&jd);
        r = json_parse_buffer(line, len, "entry", &o, &jd);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "audit-syntax", index, "%s: %s is not JSON (%s)",
                                 source, where, jd.message);
        if (!json_is_object(o))
                return diag_fail(d, -EBADMSG, "audit-syntax", index, "%s: %s is not a JSON object",
                                 source, where);
        json_object_foreach (o, key, v) {
                AuditField f = 0;

                while (f < _AUDIT_FIELD_MAX && strcmp(field_names[f], key) != 0)
                        f++;
                if (f == _AUDIT_FIELD_MAX)
                        return diag_fail(d, -EBADMSG, "audit-keys", index,
                                         "%s: %s has an unknown key \"%s\"", source, where,
                                         printable_key(key));
                if (f == AUDIT_FIELD_SEQ) {
                        if (!json_is_integer(v))
                                return diag_fail(d, -EBADMSG, "audit-value", index,
                                                 "%s: %s: seq is not an integer", source, where);
                        rec.seq = json_integer_value(v);
                        continue;
                }
                /* An embedded NUL would make C see another string than the JSON holds. */
                if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                        return diag_fail(d, -EBADMSG, "audit-value", index,
                                         "%s: %s: %s is not a string", source, where, key);
                rec.field[f] = json_string_value(v);
        }
        for (AuditField f = 0; f < _AUDIT_FIELD_MAX; f++)
                if (f == AUDIT_FIELD_SEQ ? !json_object_get(o, "seq") : !rec.field[f])
                        return diag_fail(d, -EBADMSG, "audit-keys", index, "%s: %s has no \"%s\"",
                                         source, where, field_names[f]);
        bad = record_check_values(&rec, why, sizeof(why));
        if (bad != _AUDIT_FIELD_MAX)
                return diag_fail(d, -EBADMSG, "audit-value", index, "%s: %s: %s %s", source, where,
                                 field_names[bad], why);
        r = record_hash(&rec, computed);
        if (r < 0)
                return diag_fail(d, r, "audit-line-size", index, "%s: %s does not fit in %u bytes",
                                 source, where, AUDIT_LINE_MAX);
        if (strcmp(computed, rec.field[AUDIT_FIELD_HASH]) != 0) {
                (void) diag_fail(d, -EBADMSG, "audit-hash", index,
                                 "%s: %s: its hash does not match its content: the entry was "
                                 "altered",
                                 source, where);
                diag_set_values(d, computed, rec.field[AUDIT_FIELD_HASH]);
                return -EBADMSG;
        }
        /* The bytes are a function of the content: no second spelling of the same entry. */
        r = record_serialize(&rec, true, &b);
        if (r < 0 || b.size != len || memcmp(b.data, line, len) != 0)
                return diag_fail(d, -EBADMSG, "audit-syntax", index,
                                 "%s: %s is not in canonical form (compact, keys sorted, "
                                 "\\u-escapes in lowercase)",
                                 source, where);
        *ret_json = TAKE_PTR(o);
        *ret = rec;
        return 0;
}

/* One line in its place in the chain. */
static int chain_line(AuditLogChain *c, const char *line, size_t len, Diag *d)
{
        _cleanup_(json_decrefp) json_t *o = NULL;
        char where[32], want[24], have[24];
        size_t lineno = c->lines + 1;
        int index = (int) lineno;
        AuditRecord rec = {};
        int r;

        if (lineno > AUDIT_ENTRIES_MAX)
                return diag_fail(d, -EMSGSIZE, "audit-entries", -1, "%s: more than %u entries",
                                 c->source, AUDIT_ENTRIES_MAX);
        (void) snprintf(where, sizeof(where), "line %zu", lineno);
        r = record_parse_line(c->source, where, index, line, len, &o, &rec, d);
        if (r < 0)
                return r;
        /* Set by record_parse_line() on success (the analyser cannot see diag_fail() fail). */
        assert(rec.field[AUDIT_FIELD_PREV] && rec.field[AUDIT_FIELD_HASH] &&
               rec.field[AUDIT_FIELD_VERDICT]);
        if ((uint64_t) rec.seq != lineno) {
                (void) diag_fail(d, -EBADMSG, "audit-seq", index,
                                 "%s: line %zu: seq is %" PRId64 ", expected %zu: an entry was "
                                 "removed, duplicated or reordered",
                                 c->source, lineno, rec.seq, lineno);
                (void) snprintf(want, sizeof(want), "%zu", lineno);
                (void) snprintf(have, sizeof(have), "%" PRId64, rec.seq);
                diag_set_values(d, want, have);
                return -EBADMSG;
        }
        if (strcmp(rec.field[AUDIT_FIELD_PREV], c->last) != 0) {
                if (lineno == 1)
                        (void) diag_fail(d, -EBADMSG, "audit-prev", index,
                                         "%s: line 1: prev is not 64 zeros: entries were removed "
                                         "from the start",
                                         c->source);
                else
                        (void) diag_fail(d, -EBADMSG, "audit-prev", index,
                                         "%s: line %zu: prev does not match line %zu's hash: an "
                                         "entry was removed or reordered",
                                         c->source, lineno, lineno - 1);
                diag_set_values(d, c->last, rec.field[AUDIT_FIELD_PREV]);
                return -EBADMSG;
        }
        memcpy(c->before, c->last, sizeof(c->before));
        memcpy(c->last, rec.field[AUDIT_FIELD_HASH], sizeof(c->last));
        if (strcmp(rec.field[AUDIT_FIELD_VERDICT], "admitted") == 0)
                c->admitted++;
        else
                c->refused++;
        c->lines = lineno;
        return 0;
}

void audit_log_chain_init(AuditLogChain *c, const char *source)
{
        *c = (AuditLogChain){ .source = source };
        memcpy(c->last, ZERO_HASH, sizeof(c->last));
        memcpy(c->before, ZERO_HASH, sizeof(c->before));
}

int audit_log_chain_feed(AuditLogChain *c, const void *bytes, size_t size, bool final,
                         size_t *ret_used, Diag *d)
{
        const char *data = bytes;
        size_t used = 0;
        int r;

        while (used < size) {
                size_t left = size - used, scan = MIN(left, (size_t) AUDIT_LINE_MAX + 1);
                const char *nl = memchr(data + used, '\n', scan);

                if (!nl && scan > AUDIT_LINE_MAX)
                        return diag_fail(d, -EMSGSIZE, "audit-line-size", (int) (c->lines + 1),
                                         "%s: line %zu is longer than %u bytes", c->source,
                                         c->lines + 1, AUDIT_LINE_MAX);
                if (!nl) {
                        if (final)
                                return diag_fail(d, -EBADMSG, "audit-syntax", (int) (c->lines + 1),
                                                 "%s: line %zu has no newline: the log was cut "
                                                 "short in the middle of an entry",
                                                 c->source, c->lines + 1);
                        break;
                }
                r = chain_line(c, data + used, (size_t) (nl - (data + used)), d);
                if (r < 0)
                        return r;
                used = (size_t) (nl - data) + 1;
        }
        *ret_used = used;
        return 0;
}

void audit_log_chain_summary(const AuditLogChain *c, AuditLogSummary *ret)
{
        *ret = (AuditLogSummary){ .entries = c->lines,
                                  .admitted = c->admitted,
                                  .refused = c->refused };
        if (c->lines > 0)
                memcpy(ret->head, c->last, sizeof(ret->head));
}

int audit_log_verify_buffer(const void *data, size_t size, const char *source, AuditLogSummary *ret,
                            Diag *d)
{
        AuditLogChain c;
        size_t used;
        int r;

        audit_log_chain_init(&c, source ?: "audit log");
        r = audit_log_chain_feed(&c, data, size, true, &used, d);
        if (r < 0)
                return r;
        if (ret)
                audit_log_chain_summary(&c, ret);
        return 0;
}

/* -ENOENT if there is no head file (d untouched): the state before the first entry. */
static int head_read(const char *hp, int64_t *ret_seq, char ret_hash[static AUDIT_HASH_HEX_SIZE],
                     Diag *d)
{
        static const char *const keys[] = { "hash", "seq", NULL };
        _cleanup_(json_decrefp) json_t *o = NULL;
        JsonCtx ctx = { .source = hp, .path = "" };
        const char *hash = NULL;
        int64_t seq = 0;
        Diag jd;
        int r;

        diag_clear(&jd);
        ctx.diag = &jd;
        r = json_parse_file(hp, AUDIT_HEAD_MAX, &o, &jd);
        if (r == -ENOENT)
                return -ENOENT;
        if (r < 0 && r != -EBADMSG && r != -EMSGSIZE)
                return diag_fail(d, r, "audit-head", -1, "%s", jd.message);
        if (r >= 0)
                r = json_check_keys(&ctx, o, keys);
        if (r >= 0)
                r = json_get_int(&ctx, o, "seq", true, 1, (int64_t) AUDIT_ENTRIES_MAX, &seq);
        if (r >= 0)
                r = json_get_string(&ctx, o, "hash", true, &hash);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "audit-head", -1, "the head file is malformed: %s",
                                 jd.message);
        if (!is_hex64(hash))
                return diag_fail(d, -EBADMSG, "audit-head", -1,
                                 "%s: hash is not 64 lowercase hex digits", hp);
        *ret_seq = seq;
        memcpy(ret_hash, hash, AUDIT_HASH_HEX_SIZE);
        return 0;
}

/*
 * The head file against the end of the log: it names the last entry, or the one before when an
 * append stopped between writing the log and replacing the head. No head file stands for entry
 * 0, whose hash is the first entry's prev (zeros). last and before are the last entry's hash
 * and prev.
 */
static int head_check(const char *hp, int head_r, int64_t head_seq, const char *head_hash,
                      size_t entries, const char *last, const char *before, Diag *d)
{
        char want[AUDIT_HASH_HEX_SIZE + 32], have[AUDIT_HASH_HEX_SIZE + 32];

        if (head_r == -ENOENT) {
                head_seq = 0;
                head_hash = ZERO_HASH;
        }
        if ((uint64_t) head_seq == entries && strcmp(head_hash, last) == 0)
                return 0;
        if ((uint64_t) head_seq + 1 == entries && strcmp(head_hash, before) == 0) {
                log_debug("%s names entry %" PRId64 ", the log has one more: an append was "
                          "interrupted before the head file was replaced",
                          hp, head_seq);
                return 0;
        }
        if (head_r == -ENOENT)
                (void) diag_fail(d, -EBADMSG, "audit-head", -1,
                                 "%s is missing but the log has %zu entries: it was removed", hp,
                                 entries);
        else if ((uint64_t) head_seq > entries)
                (void) diag_fail(d, -EBADMSG, "audit-head", -1,
                                 "the log ends at entry %zu but %s names entry %" PRId64
                                 ": entries were removed from the end",
                                 entries, hp, head_seq);
        else if ((uint64_t) head_seq + 1 < entries)
                (void) diag_fail(d, -EBADMSG, "audit-head", -1,
                                 "%s names entry %" PRId64 " but the log goes on to entry %zu: "
                                 "the head file is stale or was replaced",
                                 hp, head_seq, entries);
        else
                (void) diag_fail(d, -EBADMSG, "audit-head", -1,
                                 "%s does not match the hash of entry %" PRId64
                                 ": the log was rewritten",
                                 hp, head_seq);
        (void) snprintf(want, sizeof(want), "seq %zu hash %s", entries, entries > 0 ? last : "");
        (void) snprintf(have, sizeof(have), "seq %" PRId64 " hash %s", head_seq,
                        head_r == -ENOENT ? "" : head_hash);
        diag_set_values(d, want, have);
        return -EBADMSG;
}

static int head_path(const char *path, char **ret)
{
        return asprintf(ret, "%s.head", path) < 0 ? -ENOMEM : 0;
}

static int lock_fd(int fd, int operation)
{
        while (flock(fd, operation) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

int audit_log_verify(const char *path, AuditLogSummary *ret, Diag *d)
{
        _cleanup_(freep) char *buf = NULL, *hp = NULL;
        _cleanup_(closep) int fd = -EBADF;
        char head_hash[AUDIT_HASH_HEX_SIZE];
        const size_t bufsize = AUDIT_READ_CHUNK + AUDIT_LINE_MAX + 1;
        size_t have = 0;
        int64_t head_seq = 0;
        AuditLogChain c;
        struct stat st;
        int r;

        r = head_path(path, &hp);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                return diag_fail(d, r, "audit-file", -1, "%s: cannot open: %s", path, strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                return diag_fail(d, r, "audit-file", -1, "%s: cannot stat: %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return diag_fail(d, -EBADFD, "audit-file", -1, "%s: not a regular file", path);
        /* Appenders hold LOCK_EX from reading the tail to replacing the head: under LOCK_SH the
         * log and its head file are seen as one append left them. */
        r = lock_fd(fd, LOCK_SH);
        if (r < 0)
                return diag_fail(d, r, "audit-file", -1, "%s: cannot lock: %s", path, strerror(-r));
        buf = malloc(bufsize);
        if (!buf)
                return -ENOMEM;
        audit_log_chain_init(&c, path);
        for (;;) {
                size_t used = 0;
                ssize_t n;

                n = read(fd, buf + have, bufsize - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = negative_errno();
                        return diag_fail(d, r, "audit-file", -1, "%s: cannot read: %s", path,
                                         strerror(-r));
                }
                have += (size_t) n;
                r = audit_log_chain_feed(&c, buf, have, n == 0, &used, d);
                if (r < 0)
                        return r;
                if (n == 0)
                        break;
                /* What is left is the start of a line of at most AUDIT_LINE_MAX bytes. */
                memmove(buf, buf + used, have - used);
                have -= used;
        }
        r = head_read(hp, &head_seq, head_hash, d);
        if (r < 0 && r != -ENOENT)
                return r;
        r = head_check(hp, r, head_seq, head_hash, c.lines, c.last, c.before, d);
        if (r < 0)
                return r;
        if (ret)
                audit_log_chain_summary(&c, ret);
        return 0;
}

/*
 * The last line of the log open at fd, checked on its own (its link to the line before is
 * verify's business: an append reads a bounded tail, not the whole log). An empty log yields
 * seq 0 with zero hashes. last and before get the entry's hash and prev.
 */
static int tail_read(int fd, const char *path, off_t size, int64_t *ret_seq,
                     char last[static AUDIT_HASH_HEX_SIZE], char before[static AUDIT_HASH_HEX_SIZE],
                     Diag *d)
{
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_(freep) char *buf = NULL;
        const size_t bufsize = AUDIT_LINE_MAX + 2;
        AuditRecord rec = {};
        const char *start;
        off_t from;
        ssize_t n;
        int r;

        if (size == 0) {
                *ret_seq = 0;
                memcpy(last, ZERO_HASH, AUDIT_HASH_HEX_SIZE);
                memcpy(before, ZERO_HASH, AUDIT_HASH_HEX_SIZE);
                return 0;
        }
        buf = malloc(bufsize);
        if (!buf)
                return -ENOMEM;
        /* The newline ending the line before, the last line, its newline. */
        from = size > (off_t) bufsize ? size - (off_t) bufsize : 0;
        n = pread(fd, buf, (size_t) (size - from), from);
        if (n < 0) {
                r = negative_errno();
                return diag_fail(d, r, "audit-file", -1, "%s: cannot read: %s", path, strerror(-r));
        }
        if (n != size - from)
                return diag_fail(d, -EIO, "audit-file", -1, "%s: short read", path);
        if (buf[n - 1] != '\n')
                return diag_fail(d, -EBADMSG, "audit-syntax", -1,
                                 "%s: the last line has no newline: the log was cut short in the "
                                 "middle of an entry",
                                 path);
        start = memrchr(buf, '\n', (size_t) n - 1);
        if (!start && from > 0)
                return diag_fail(d, -EMSGSIZE, "audit-line-size", -1,
                                 "%s: the last line is longer than %u bytes", path, AUDIT_LINE_MAX);
        start = start ? start + 1 : buf;
        r = record_parse_line(path, "the last line", -1, start, (size_t) (buf + n - 1 - start), &o,
                              &rec, d);
        if (r < 0)
                return r;
        assert(rec.field[AUDIT_FIELD_PREV] && rec.field[AUDIT_FIELD_HASH]);
        *ret_seq = rec.seq;
        memcpy(last, rec.field[AUDIT_FIELD_HASH], AUDIT_HASH_HEX_SIZE);
        memcpy(before, rec.field[AUDIT_FIELD_PREV], AUDIT_HASH_HEX_SIZE);
        return 0;
}

/* Prefixes d's message with why the append was refused (cut at the end if need be). */
static int refuse_append(Diag *d, int r)
{
        static const char prefix[] = "refusing to extend a damaged audit log: ";
        const size_t p = sizeof(prefix) - 1;
        size_t n;

        if (!d)
                return r;
        n = MIN(strnlen(d->message, sizeof(d->message) - 1), sizeof(d->message) - 1 - p);
        memmove(d->message + p, d->message, n);
        memcpy(d->message, prefix, p);
        d->message[p + n] = '\0';
        return r;
}

static void utc_now(char buf[static 21])
{
        time_t t = time(NULL);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
                memcpy(buf, "1970-01-01T00:00:00Z", 21);
}

/* The record of caller-given entry e at seq after prev, its node and reason sanitized into the
 * caller's node and reason buffers and its time now into the caller's now (rec points into
 * them); -EINVAL naming the field if a value is not one a log may hold. */
static int record_from_entry(AuditRecord *rec, const AuditEntry *e, int64_t seq, const char *prev,
                             char node[static AUDIT_NODE_MAX + 1],
                             char reason[static AUDIT_REASON_MAX + 1], char now[static 21], Diag *d)
{
        char why[96];
        AuditField bad;

        text_sanitize(e->node ?: "", AUDIT_NODE_MAX, true, node);
        text_sanitize(e->reason ?: "", AUDIT_REASON_MAX, false, reason);
        utc_now(now);
        *rec = (AuditRecord){
                .seq = seq,
                .field = {
                        [AUDIT_FIELD_EVENT] = e->event ?: "",
                        [AUDIT_FIELD_EVIDENCE_DIGEST] = e->evidence_digest ?: "",
                        [AUDIT_FIELD_NODE] = node,
                        [AUDIT_FIELD_POLICY_DIGEST] = e->policy_digest ?: "",
                        [AUDIT_FIELD_PREV] = prev,
                        [AUDIT_FIELD_REASON] = reason,
                        [AUDIT_FIELD_ROLE] = e->role ?: "",
                        [AUDIT_FIELD_TIME] = now,
                        [AUDIT_FIELD_VERDICT] = e->verdict ?: "",
                },
        };
        bad = record_check_values(rec, why, sizeof(why));
        if (bad != _AUDIT_FIELD_MAX)
                return diag_fail(d, -EINVAL, "audit-entry", -1, "invalid audit entry: %s %s",
                                 field_names[bad], why);
        return 0;
}

int audit_log_append(const char *path, const AuditEntry *e, Diag *d)
{
        _cleanup_(freep) char *hp = NULL;
        _cleanup_(closep) int fd = -EBADF;
        char prev[AUDIT_HASH_HEX_SIZE], before[AUDIT_HASH_HEX_SIZE], hash[AUDIT_HASH_HEX_SIZE],
                head_hash[AUDIT_HASH_HEX_SIZE], now[21], node[AUDIT_NODE_MAX + 1],
                reason[AUDIT_REASON_MAX + 1], head[AUDIT_HEAD_MAX];
        int64_t tail_seq = 0, head_seq = 0;
        AuditRecord rec = {};
        struct stat st;
        LineBuf line;
        ssize_t n;
        int r, head_r;

        assert(path && e);
        /* The caller's own values are checked before anything is opened. */
        r = record_from_entry(&rec, e, 1, ZERO_HASH, node, reason, now, d);
        if (r < 0)
                return r;

        r = head_path(path, &hp);
        if (r < 0)
                return r;
        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = negative_errno();
                return diag_fail(d, r, "audit-file", -1, "%s: cannot open: %s", path, strerror(-r));
        }
        r = lock_fd(fd, LOCK_EX);
        if (r < 0)
                return diag_fail(d, r, "audit-file", -1, "%s: cannot lock: %s", path, strerror(-r));
        /* Only under the lock: another appender may have grown the file since open(). */
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                return diag_fail(d, r, "audit-file", -1, "%s: cannot stat: %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return diag_fail(d, -EBADFD, "audit-file", -1, "%s: not a regular file", path);
        r = tail_read(fd, path, st.st_size, &tail_seq, prev, before, d);
        if (r < 0)
                return refuse_append(d, r);
        /* Without this, a log cut short and then appended to would hide the cut for good. */
        head_r = head_read(hp, &head_seq, head_hash, d);
        if (head_r < 0 && head_r != -ENOENT)
                return refuse_append(d, head_r);
        r = head_check(hp, head_r, head_seq, head_hash, (size_t) tail_seq, prev, before, d);
        if (r < 0)
                return refuse_append(d, r);
        if (tail_seq >= (int64_t) AUDIT_ENTRIES_MAX)
                return diag_fail(d, -EMSGSIZE, "audit-entries", -1,
                                 "%s holds %u entries, the most a log may: start a new one", path,
                                 AUDIT_ENTRIES_MAX);

        rec.seq = tail_seq + 1;
        rec.field[AUDIT_FIELD_PREV] = prev;
        r = record_hash(&rec, hash);
        if (r >= 0) {
                rec.field[AUDIT_FIELD_HASH] = hash;
                r = record_serialize(&rec, true, &line);
        }
        if (r < 0)
                /* Cannot happen within the limits (4024 bytes at most); kept as a check. */
                return diag_fail(d, r, "audit-line-size", -1, "the entry does not fit in %u bytes",
                                 AUDIT_LINE_MAX);
        line.data[line.size++] = '\n';

        /* One write() of the whole line at the end (O_APPEND). A short or failed write or
         * fsync() is undone, so the log never keeps half a line. */
        n = write(fd, line.data, line.size);
        if (n != (ssize_t) line.size || fsync(fd) < 0) {
                r = n < 0 || (size_t) n == line.size ? negative_errno() : -EIO;
                if (ftruncate(fd, st.st_size) < 0)
                        log_debug_errno(negative_errno(), "%s: cannot undo a partial write: %m",
                                        path);
                return diag_fail(d, r, "audit-file", -1, "%s: cannot write: %s", path,
                                 strerror(-r));
        }
        (void) snprintf(head, sizeof(head), "{\"hash\":\"%s\",\"seq\":%" PRId64 "}\n", hash,
                        rec.seq);
        r = write_file_atomic(hp, head, strlen(head), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return diag_fail(d, r, "audit-head", -1,
                                 "entry %" PRId64 " is in %s, but %s could not be replaced: %s",
                                 rec.seq, path, hp, strerror(-r));
        return 0;
}

int audit_log_entry_format(const AuditEntry *e, int64_t seq, const char *prev, char **ret_line,
                           char ret_hash[static AUDIT_HASH_HEX_SIZE], Diag *d)
{
        char hash[AUDIT_HASH_HEX_SIZE], now[21], node[AUDIT_NODE_MAX + 1],
                reason[AUDIT_REASON_MAX + 1];
        AuditRecord rec;
        LineBuf line;
        char *out;
        int r;

        assert(e && prev && ret_line);
        if (seq < 1 || seq > (int64_t) AUDIT_ENTRIES_MAX)
                return diag_fail(d, -EMSGSIZE, "audit-entries", -1,
                                 "entry %" PRId64 " is beyond the %u entries a log may hold", seq,
                                 AUDIT_ENTRIES_MAX);
        if (!is_hex64(prev))
                return diag_fail(d, -EINVAL, "audit-entry", -1, "prev is not a hash");
        r = record_from_entry(&rec, e, seq, prev, node, reason, now, d);
        if (r < 0)
                return r;
        r = record_hash(&rec, hash);
        if (r >= 0) {
                rec.field[AUDIT_FIELD_HASH] = hash;
                r = record_serialize(&rec, true, &line);
        }
        if (r < 0)
                return diag_fail(d, r, "audit-line-size", -1, "the entry does not fit in %u bytes",
                                 AUDIT_LINE_MAX);
        out = malloc(line.size + 2);
        if (!out)
                return -ENOMEM;
        memcpy(out, line.data, line.size);
        out[line.size] = '\n';
        out[line.size + 1] = 0;
        memcpy(ret_hash, hash, AUDIT_HASH_HEX_SIZE);
        *ret_line = out;
        return 0;
}

int audit_log_entry_ending_at(const char *path, off_t end, int64_t *ret_seq,
                              char ret_hash[static AUDIT_HASH_HEX_SIZE], off_t *ret_end, Diag *d)
{
        _cleanup_(closep) int fd = -EBADF;
        char last[AUDIT_HASH_HEX_SIZE], before[AUDIT_HASH_HEX_SIZE];
        int64_t seq = 0;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                return diag_fail(d, r, "audit-file", -1, "%s: cannot open: %s", path, strerror(-r));
        }
        r = lock_fd(fd, LOCK_SH);
        if (r < 0)
                return diag_fail(d, r, "audit-file", -1, "%s: cannot lock: %s", path, strerror(-r));
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                return diag_fail(d, r, "audit-file", -1, "%s: cannot stat: %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return diag_fail(d, -EBADFD, "audit-file", -1, "%s: not a regular file", path);
        if (end < 0)
                end = st.st_size;
        if (st.st_size < end)
                return diag_fail(d, -ESPIPE, "audit-file", -1,
                                 "%s holds %lld bytes, fewer than the %lld it held before", path,
                                 (long long) st.st_size, (long long) end);
        r = tail_read(fd, path, end, &seq, last, before, d);
        if (r < 0)
                return r;
        *ret_seq = seq;
        memcpy(ret_hash, last, AUDIT_HASH_HEX_SIZE);
        if (ret_end)
                *ret_end = end;
        return 0;
}
