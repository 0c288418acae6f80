/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/audit-log.h"
#include "cloister/fileio.h"
#include "cloister/json.h"

/*
 * Known-answer vector: a three-entry log written by Python from the format in docs/audit-log.md
 *   line = json.dumps(entry, sort_keys=True, separators=(",", ":"))
 *   hash = sha256(json.dumps(entry without "hash", same options).encode()).hexdigest()
 * Entry 2's reason holds quotes, a slash, a backslash, BMP characters and one outside the BMP
 * (a surrogate pair). KAT_FORGED_LINE2 is entry 3 renumbered as 2 with its hash recomputed, as
 * someone who removed entry 2 would write it: everything but prev is self-consistent.
 */
#define KAT_LINE1                                                                                  \
        "{\"event\":\"init\",\"evidenceDigest\":\"ababababababababababababababababababababab"      \
        "ababababababababababab\",\"hash\":\"de4fe35ea347e5ce5ee340cbafb0a5e8be2c8b977fb7"         \
        "0c91549395d858df640e\",\"node\":\"cp-0\",\"policyDigest\":\"cdcdcdcdcdcdcdcdcdcdcdcd"     \
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\",\"prev\":\"00000000000000000000000000"         \
        "00000000000000000000000000000000000000\",\"reason\":\"\",\"role\":\"control-plane\",\""   \
        "seq\":1,\"time\":\"2026-11-23T12:00:00Z\",\"verdict\":\"admitted\"}\n"
#define KAT_LINE2                                                                                  \
        "{\"event\":\"refusal\",\"evidenceDigest\":\"\",\"hash\":\"8a92b4d50abf91bb6a1515a6dea43"  \
        "f55a9e6f6f0db6ca7b37f92ab1f590a2320\",\"node\":\"[fd00::4]:9000\",\"policyDigest\":"      \
        "\"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\",\"prev\":\"d"        \
        "e4fe35ea347e5ce5ee340cbafb0a5e8be2c8b977fb70c91549395d858df640e\",\"reason\":\"p"         \
        "olicy \\\"prod/v2\\\" refused: PCR 4 \\u2260 expected \\u2014 caf\\u00e9 \\ud83d\\ude"    \
        "00 "                                                                                      \
        "a\\\\b\",\"role\":\"\",\"seq\":2,\"time\":\"2026-11-23T12:01:02Z\",\"verdict\":"          \
        "\"refused\""                                                                              \
        "}\n"
#define KAT_LINE3                                                                                  \
        "{\"event\":\"admission\",\"evidenceDigest\":\"ababababababababababababababababababa"      \
        "bababababababababababababab\",\"hash\":\"3a039580b7a54177ec2a0508962350f62489b32"         \
        "b0430237994e579c2372deeff\",\"node\":\"worker-1\",\"policyDigest\":\"cdcdcdcdcdcdcdc"     \
        "dcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\",\"prev\":\"8a92b4d50abf91bb6"         \
        "a1515a6dea43f55a9e6f6f0db6ca7b37f92ab1f590a2320\",\"reason\":\"ok\",\"role\":\"worke"     \
        "r\",\"seq\":3,\"time\":\"2026-11-23T12:02:03Z\",\"verdict\":\"admitted\"}\n"
#define KAT_HEAD "3a039580b7a54177ec2a0508962350f62489b32b0430237994e579c2372deeff"
#define KAT_FORGED_LINE2                                                                           \
        "{\"event\":\"admission\",\"evidenceDigest\":\"ababababababababababababababababababa"      \
        "bababababababababababababab\",\"hash\":\"ba57b525ede9d812fa34b887c35f3a5175e8f4b"         \
        "f2257e844e26217cf5931e3f6\",\"node\":\"worker-1\",\"policyDigest\":\"cdcdcdcdcdcdcdc"     \
        "dcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\",\"prev\":\"8a92b4d50abf91bb6"         \
        "a1515a6dea43f55a9e6f6f0db6ca7b37f92ab1f590a2320\",\"reason\":\"ok\",\"role\":\"worke"     \
        "r\",\"seq\":2,\"time\":\"2026-11-23T12:02:03Z\",\"verdict\":\"admitted\"}\n"

static const char kat_log[] = KAT_LINE1 KAT_LINE2 KAT_LINE3;

static const AuditEntry admission = {
        .event = "admission",
        .node = "worker-1",
        .role = "worker",
        .evidence_digest = "abababababababababababababababababababababababababababababababab",
        .policy_digest = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
        .verdict = "admitted",
        .reason = "",
};

/* A fresh log path per test (the files are removed with the test's temporary directory). */
static const char *log_path(const char *name)
{
        static char buf[256];
        (void) snprintf(buf, sizeof(buf), "%s/%s.log", test_tmpdir(), name);
        return buf;
}

static void head_path_of(const char *path, char buf[static 300])
{
        (void) snprintf(buf, 300, "%s.head", path);
}

static void write_bytes(const char *path, const void *data, size_t size)
{
        assert_int_equal(write_file_atomic(path, data, size, 0600, 0), 0);
}

static char *read_text(const char *path, size_t *ret_size)
{
        uint8_t *data = NULL;
        size_t size;
        assert_int_equal(read_full_file(path, 64U * 1024U * 1024U, &data, &size), 0);
        if (ret_size)
                *ret_size = size;
        return (char *) data;
}

/* Appends entries with reasons "first", "second", ... */
static void append_n(const char *path, unsigned n)
{
        static const char *const reasons[] = { "first", "second", "third", "fourth", "fifth" };
        for (unsigned i = 0; i < n; i++) {
                AuditEntry e = admission;
                Diag d;

                e.reason = i < ELEMENTSOF(reasons) ? reasons[i] : "more";
                if (i == 1) {
                        e.event = "refusal";
                        e.verdict = "refused";
                        e.role = "";
                        e.evidence_digest = "";
                }
                diag_clear(&d);
                assert_int_equal(audit_log_append(path, &e, &d), 0);
        }
}

/* The log's lines (each with its newline) in a NULL-terminated array of at most 16. */
typedef struct Lines {
        char *text;
        char *line[17];
        size_t n;
} Lines;

static void lines_read(const char *path, Lines *l)
{
        char *p;

        *l = (Lines){ .text = read_text(path, NULL) };
        for (p = l->text; *p && l->n < 16;) {
                char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) + 1 : strlen(p);

                l->line[l->n] = strndup(p, len);
                assert_non_null(l->line[l->n]);
                l->n++;
                p += len;
        }
}

static void lines_write(const char *path, const Lines *l)
{
        _cleanup_(freep) char *out = NULL;
        size_t size = 0;

        /* Sized from the lines, which edits may have made longer than the text read. */
        for (size_t i = 0; i < l->n; i++)
                size += l->line[i] ? strlen(l->line[i]) : 0;
        out = malloc(size + 1);
        assert_non_null(out);
        size = 0;
        for (size_t i = 0; i < l->n; i++)
                if (l->line[i]) {
                        memcpy(out + size, l->line[i], strlen(l->line[i]));
                        size += strlen(l->line[i]);
                }
        write_bytes(path, out, size);
}

static void lines_free(Lines *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->line[i]);
        free(l->text);
}

/* Replaces the first from in s (which must occur) by to; returns a new string. */
static char *replace(const char *s, const char *from, const char *to)
{
        const char *at = strstr(s, from);
        char *out;

        assert_non_null(at);
        assert_true(asprintf(&out, "%.*s%s%s", (int) (at - s), s, to, at + strlen(from)) >= 0);
        return out;
}

static void assert_verify_fails(const char *path, int error, const char *check, int index,
                                const char *needle)
{
        AuditLogSummary sum;
        Diag d;

        memset(&sum, 0xaa, sizeof(sum));
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), error);
        assert_string_equal(d.check, check);
        assert_int_equal(d.index, index);
        if (!strstr(d.message, needle))
                fail_msg("\"%s\" not in \"%s\"", needle, d.message);
        /* Output is written only on success. */
        for (size_t i = 0; i < sizeof(sum); i++)
                assert_int_equal(((uint8_t *) &sum)[i], 0xaa);
}

static void assert_buffer_fails(const char *data, size_t size, int error, const char *check,
                                int index, const char *needle)
{
        Diag d;

        diag_clear(&d);
        assert_int_equal(audit_log_verify_buffer(data, size, "t.log", NULL, &d), error);
        assert_string_equal(d.check, check);
        assert_int_equal(d.index, index);
        if (!strstr(d.message, needle))
                fail_msg("\"%s\" not in \"%s\"", needle, d.message);
}

static void test_audit_log_appends_verify_and_count_admissions_and_refusals(void **state)
{
        const char *path = log_path("basic");
        _cleanup_(freep) char *head = NULL;
        char hp[300];
        AuditLogSummary sum;
        struct stat st;
        Lines l;
        Diag d;

        append_n(path, 3);
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 3);
        assert_int_equal(sum.admitted, 2);
        assert_int_equal(sum.refused, 1);
        /* The head is the last line's hash, and the head file says so too. */
        lines_read(path, &l);
        assert_int_equal(l.n, 3);
        assert_non_null(strstr(l.line[2], sum.head));
        assert_non_null(strstr(l.line[2], "\"seq\":3,"));
        assert_non_null(strstr(l.line[0], "\"prev\":\""
                                          "0000000000000000000000000000000000000000"
                                          "000000000000000000000000\""));
        lines_free(&l);
        head_path_of(path, hp);
        head = read_text(hp, NULL);
        assert_non_null(strstr(head, sum.head));
        assert_non_null(strstr(head, "\"seq\":3"));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_audit_log_hashes_and_bytes_match_python_known_answer(void **state)
{
        const char *path = log_path("kat");
        char hp[300], head[128];
        AuditLogSummary sum;
        Diag d;

        /* The buffer verifier recomputes every hash with its own serialiser and compares the
         * line with it byte for byte: passing means C and Python agree on both. */
        diag_clear(&d);
        assert_int_equal(audit_log_verify_buffer(kat_log, strlen(kat_log), "kat", &sum, &d), 0);
        assert_int_equal(sum.entries, 3);
        assert_int_equal(sum.refused, 1);
        assert_string_equal(sum.head, KAT_HEAD);

        /* The same through the file, with a head file as Python would write it. */
        write_bytes(path, kat_log, strlen(kat_log));
        head_path_of(path, hp);
        (void) snprintf(head, sizeof(head), "{\"hash\":\"%s\",\"seq\":3}\n", KAT_HEAD);
        write_bytes(hp, head, strlen(head));
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_string_equal(sum.head, KAT_HEAD);

        /* And append continues Python's chain. */
        assert_int_equal(audit_log_append(path, &admission, &d), 0);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 4);
}

static void test_audit_log_detects_removed_middle_line(void **state)
{
        const char *path = log_path("removed");
        Lines l;

        append_n(path, 3);
        lines_read(path, &l);
        free(l.line[1]);
        l.line[1] = NULL;
        lines_write(path, &l);
        lines_free(&l);
        assert_verify_fails(path, -EBADMSG, "audit-seq", 2,
                            "line 2: seq is 3, expected 2: an entry was removed");
}

static void test_audit_log_detects_removed_first_line(void **state)
{
        const char *path = log_path("removed-first");
        Lines l;

        append_n(path, 3);
        lines_read(path, &l);
        free(l.line[0]);
        l.line[0] = NULL;
        lines_write(path, &l);
        lines_free(&l);
        assert_verify_fails(path, -EBADMSG, "audit-seq", 1, "line 1: seq is 2, expected 1");
}

static void test_audit_log_detects_swapped_lines(void **state)
{
        const char *path = log_path("swapped");
        char *t;
        Lines l;

        append_n(path, 3);
        lines_read(path, &l);
        t = l.line[1];
        l.line[1] = l.line[2];
        l.line[2] = t;
        lines_write(path, &l);
        lines_free(&l);
        assert_verify_fails(path, -EBADMSG, "audit-seq", 2, "reordered");
}

static void test_audit_log_detects_removed_entry_with_renumbered_successor_by_prev(void **state)
{
        static const char forged[] = KAT_LINE1 KAT_FORGED_LINE2;
        Diag d;

        assert_buffer_fails(forged, strlen(forged), -EBADMSG, "audit-prev", 2,
                            "line 2: prev does not match line 1's hash: an entry was removed or "
                            "reordered");
        /* expected/actual carry the two hashes. */
        diag_clear(&d);
        (void) audit_log_verify_buffer(forged, strlen(forged), "t.log", NULL, &d);
        assert_string_equal(d.expected,
                            "de4fe35ea347e5ce5ee340cbafb0a5e8be2c8b977fb70c91549395d858df640e");
        assert_string_equal(d.actual,
                            "8a92b4d50abf91bb6a1515a6dea43f55a9e6f6f0db6ca7b37f92ab1f590a2320");
}

static void test_audit_log_detects_edited_reason(void **state)
{
        const char *path = log_path("edited");
        Lines l;
        char *edited;

        append_n(path, 3);
        lines_read(path, &l);
        edited = replace(l.line[1], "\"reason\":\"second\"", "\"reason\":\"secund\"");
        free(l.line[1]);
        l.line[1] = edited;
        lines_write(path, &l);
        lines_free(&l);
        assert_verify_fails(path, -EBADMSG, "audit-hash", 2,
                            "line 2: its hash does not match its content: the entry was altered");
}

static void test_audit_log_detects_truncated_tail_through_head_file(void **state)
{
        const char *path = log_path("truncated");
        Lines l;

        append_n(path, 3);
        lines_read(path, &l);
        free(l.line[2]);
        l.line[2] = NULL;
        lines_write(path, &l);
        lines_free(&l);
        assert_verify_fails(path, -EBADMSG, "audit-head", -1, "the log ends at entry 2 but");
        assert_verify_fails(path, -EBADMSG, "audit-head", -1, "entries were removed from the end");
}

static void test_audit_log_refuses_to_append_to_truncated_log(void **state)
{
        /* Otherwise the next entry would take the removed one's place and hide the cut. */
        const char *path = log_path("truncated-append");
        _cleanup_(freep) char *before = NULL, *after = NULL;
        Lines l;
        Diag d;

        append_n(path, 3);
        lines_read(path, &l);
        free(l.line[2]);
        l.line[2] = NULL;
        lines_write(path, &l);
        lines_free(&l);
        before = read_text(path, NULL);
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &admission, &d), -EBADMSG);
        assert_string_equal(d.check, "audit-head");
        assert_non_null(strstr(d.message, "refusing to extend a damaged audit log"));
        after = read_text(path, NULL);
        assert_string_equal(before, after);
}

static void test_audit_log_refuses_to_append_after_corrupted_last_line(void **state)
{
        const char *path = log_path("corrupt-tail");
        _cleanup_(freep) char *before = NULL, *after = NULL;
        Lines l;
        Diag d;
        char *edited;

        append_n(path, 3);
        lines_read(path, &l);
        edited = replace(l.line[2], "\"reason\":\"third\"", "\"reason\":\"thirt\"");
        free(l.line[2]);
        l.line[2] = edited;
        lines_write(path, &l);
        lines_free(&l);
        before = read_text(path, NULL);
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &admission, &d), -EBADMSG);
        assert_string_equal(d.check, "audit-hash");
        assert_non_null(strstr(d.message, "refusing to extend a damaged audit log"));
        assert_non_null(strstr(d.message, "the last line: its hash does not match"));
        after = read_text(path, NULL);
        assert_string_equal(before, after);
}

static void test_audit_log_refuses_to_append_after_half_written_line(void **state)
{
        const char *path = log_path("half-line");
        _cleanup_(freep) char *text = NULL, *after = NULL;
        size_t size;
        Diag d;

        append_n(path, 2);
        text = read_text(path, &size);
        write_bytes(path, text, size - 40);
        assert_verify_fails(path, -EBADMSG, "audit-syntax", 2, "line 2 has no newline");
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &admission, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "the last line has no newline"));
        after = read_text(path, NULL);
        assert_int_equal(strlen(after), size - 40);
}

static void test_audit_log_refuses_overlong_line(void **state)
{
        const char *path = log_path("overlong");
        _cleanup_(freep) char *big = NULL, *text = NULL;
        size_t size;
        Diag d;

        /* One line of AUDIT_LINE_MAX + 1 bytes after two good ones: in memory, through the
         * file reader, and at the tail where append looks. */
        append_n(path, 2);
        text = read_text(path, &size);
        big = malloc(size + AUDIT_LINE_MAX + 2);
        assert_non_null(big);
        memcpy(big, text, size);
        memset(big + size, 'x', AUDIT_LINE_MAX + 1);
        big[size + AUDIT_LINE_MAX + 1] = '\n';
        assert_buffer_fails(big, size + AUDIT_LINE_MAX + 2, -EMSGSIZE, "audit-line-size", 3,
                            "line 3 is longer than 4096 bytes");
        write_bytes(path, big, size + AUDIT_LINE_MAX + 2);
        assert_verify_fails(path, -EMSGSIZE, "audit-line-size", 3, "line 3 is longer than");
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &admission, &d), -EMSGSIZE);
        assert_string_equal(d.check, "audit-line-size");

        /* Without a newline at all, the reader stops after AUDIT_LINE_MAX + 1 bytes. */
        assert_buffer_fails(big + size, AUDIT_LINE_MAX + 1, -EMSGSIZE, "audit-line-size", 1,
                            "line 1 is longer than");
}

static void test_audit_log_accepts_line_of_exactly_the_limit_as_a_length(void **state)
{
        /* AUDIT_LINE_MAX bytes pass the length check (and fail later, as JSON). */
        _cleanup_(freep) char *line = malloc(AUDIT_LINE_MAX + 1);

        assert_non_null(line);
        memset(line, 'x', AUDIT_LINE_MAX);
        line[AUDIT_LINE_MAX] = '\n';
        assert_buffer_fails(line, AUDIT_LINE_MAX + 1, -EBADMSG, "audit-syntax", 1,
                            "line 1 is not JSON");
}

static void test_audit_log_reader_handles_lines_across_read_chunks(void **state)
{
        /* 300 entries (~130 KiB) span several 64 KiB reads; a line over the limit that starts
         * in one read and ends in the next is still caught. */
        const char *path = log_path("chunks");
        _cleanup_(freep) char *text = NULL, *big = NULL;
        AuditLogSummary sum, bsum;
        size_t size;
        Diag d;

        append_n(path, 300);
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 300);
        text = read_text(path, &size);
        assert_true(size > 2 * 64 * 1024);
        assert_int_equal(audit_log_verify_buffer(text, size, "t.log", &bsum, &d), 0);
        assert_string_equal(sum.head, bsum.head);

        big = malloc(size + 70000);
        assert_non_null(big);
        memcpy(big, text, size);
        memset(big + size, 'x', 70000);
        write_bytes(path, big, size + 70000);
        assert_verify_fails(path, -EMSGSIZE, "audit-line-size", 301, "line 301 is longer than");
}

static void test_audit_log_refuses_unknown_and_missing_keys(void **state)
{
        _cleanup_(freep) char *unknown = replace(KAT_LINE1, "{", "{\"comment\":\"x\",");
        _cleanup_(freep) char *missing = replace(KAT_LINE1, "\"reason\":\"\",", "");
        _cleanup_(freep) char *odd = replace(KAT_LINE1, "{", "{\"\\u001b[2J\":1,");

        assert_buffer_fails(unknown, strlen(unknown), -EBADMSG, "audit-keys", 1,
                            "line 1 has an unknown key \"comment\"");
        assert_buffer_fails(missing, strlen(missing), -EBADMSG, "audit-keys", 1,
                            "line 1 has no \"reason\"");
        /* A key a peer could have chosen is not echoed raw into the message. */
        assert_buffer_fails(odd, strlen(odd), -EBADMSG, "audit-keys", 1, "(unprintable)");
}

static void test_audit_log_refuses_malformed_values(void **state)
{
        static const struct {
                const char *line, *from, *to, *check, *needle;
        } cases[] = {
                { KAT_LINE1, "2026-11-23T12:00:00Z", "2026-02-30T12:00:00Z", "audit-value",
                  "time is not a UTC time" },
                { KAT_LINE1, "2026-11-23T12:00:00Z", "2026-11-23 12:00:00Z", "audit-value",
                  "time is not" },
                { KAT_LINE1, "2026-11-23T12:00:00Z", "2026-11-23T24:00:00Z", "audit-value",
                  "time is not" },
                { KAT_LINE1, "\"event\":\"init\"", "\"event\":\"boot\"", "audit-value",
                  "event is not init, admission" },
                { KAT_LINE1, "\"verdict\":\"admitted\"", "\"verdict\":\"maybe\"", "audit-value",
                  "verdict is not admitted or refused" },
                { KAT_LINE2, "\"verdict\":\"refused\"", "\"verdict\":\"admitted\"", "audit-value",
                  "verdict is not refused, as a refusal's must be" },
                { KAT_LINE1, "\"role\":\"control-plane\"", "\"role\":\"master\"", "audit-value",
                  "role is not" },
                { KAT_LINE1, "\"evidenceDigest\":\"abab", "\"evidenceDigest\":\"ABab",
                  "audit-value", "evidenceDigest is not 64 lowercase hex" },
                { KAT_LINE1, "\"policyDigest\":\"cdcd", "\"policyDigest\":\"cd", "audit-value",
                  "policyDigest is not" },
                { KAT_LINE1, "\"prev\":\"0000", "\"prev\":\"000", "audit-value", "prev is not 64" },
                { KAT_LINE1, "\"hash\":\"de4f", "\"hash\":\"e4f", "audit-value", "hash is not 64" },
                { KAT_LINE1, "\"node\":\"cp-0\"", "\"node\":\"cp-\\u00e9\"", "audit-value",
                  "node is not printable ASCII" },
                { KAT_LINE1, "\"reason\":\"\"", "\"reason\":\"\\u001b[2J\"", "audit-value",
                  "reason is over 1024 bytes, not UTF-8 or holds control characters" },
                { KAT_LINE1, "\"reason\":\"\"", "\"reason\":\"a\\u0000b\"", "audit-syntax",
                  "line 1 is not JSON" },
                { KAT_LINE1, "\"seq\":1", "\"seq\":\"1\"", "audit-value", "seq is not an integer" },
                { KAT_LINE1, "\"seq\":1", "\"seq\":1.0", "audit-value", "seq is not an integer" },
                { KAT_LINE1, "\"seq\":1", "\"seq\":0", "audit-value", "seq is outside" },
                { KAT_LINE1, "\"seq\":1", "\"seq\":10000001", "audit-value", "seq is outside" },
                { KAT_LINE1, "\"node\":\"cp-0\"", "\"node\":7", "audit-value",
                  "node is not a string" },
                { KAT_LINE1, "{", "[", "audit-syntax", "is not JSON" },
                { KAT_LINE1, "\"event\":\"init\"", "\"event\":\"init\",\"event\":\"init\"",
                  "audit-syntax", "is not JSON" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *bad = replace(cases[i].line, cases[i].from, cases[i].to);
                Diag d;

                diag_clear(&d);
                assert_int_equal(audit_log_verify_buffer(bad, strlen(bad), "t.log", NULL, &d),
                                 -EBADMSG);
                if (strcmp(d.check, cases[i].check) != 0 || !strstr(d.message, cases[i].needle))
                        fail_msg("case %zu: [%s] %s", i, d.check, d.message);
        }
}

static void test_audit_log_refuses_non_canonical_spelling_of_a_valid_entry(void **state)
{
        /* Same content, same hash, other bytes: uppercase \u-escapes (what jansson writes), a
         * space, keys out of order, a needless escape of '/'. */
        _cleanup_(freep) char *upper = replace(KAT_LINE2, "caf\\u00e9", "caf\\u00E9");
        _cleanup_(freep) char *space = replace(KAT_LINE1, "\"seq\":1", "\"seq\": 1");
        _cleanup_(freep) char *slash = replace(KAT_LINE2, "prod/v2", "prod\\/v2");
        _cleanup_(freep) char *order0 = replace(KAT_LINE1, "\"event\":\"init\",", "");
        _cleanup_(freep) char *order =
                replace(order0, "\"verdict\"", "\"event\":\"init\",\"verdict\"");
        _cleanup_(freep) char *upper_log = NULL, *slash_log = NULL;

        assert_true(asprintf(&upper_log, "%s%s", KAT_LINE1, upper) > 0);
        assert_true(asprintf(&slash_log, "%s%s", KAT_LINE1, slash) > 0);
        assert_buffer_fails(upper_log, strlen(upper_log), -EBADMSG, "audit-syntax", 2,
                            "line 2 is not in canonical form");
        assert_buffer_fails(space, strlen(space), -EBADMSG, "audit-syntax", 1, "canonical");
        assert_buffer_fails(order, strlen(order), -EBADMSG, "audit-syntax", 1, "canonical");
        assert_buffer_fails(slash_log, strlen(slash_log), -EBADMSG, "audit-syntax", 2, "canonical");
}

static void test_audit_log_detects_missing_stale_and_rewritten_head_file(void **state)
{
        const char *path = log_path("heads");
        _cleanup_(freep) char *head1 = NULL;
        char hp[300], bad[160];

        head_path_of(path, hp);
        append_n(path, 1);
        head1 = read_text(hp, NULL);
        append_n(path, 2);

        /* Stale: names entry 1 of 3. */
        write_bytes(hp, head1, strlen(head1));
        assert_verify_fails(path, -EBADMSG, "audit-head", -1, "the head file is stale");
        /* Rewritten: right seq, another hash. */
        (void) snprintf(bad, sizeof(bad), "{\"hash\":\"%064d\",\"seq\":3}", 7);
        write_bytes(hp, bad, strlen(bad));
        assert_verify_fails(path, -EBADMSG, "audit-head", -1, "does not match the hash of entry 3");
        /* Malformed. */
        write_bytes(hp, "{\"seq\":3}", 9);
        assert_verify_fails(path, -EBADMSG, "audit-head", -1, "the head file is malformed");
        write_bytes(hp, "{\"hash\":\"x\",\"seq\":3,\"more\":1}", 29);
        assert_verify_fails(path, -EBADMSG, "audit-head", -1, "unknown key");
        /* Removed. */
        assert_int_equal(unlink(hp), 0);
        assert_verify_fails(path, -EBADMSG, "audit-head", -1, "is missing but the log has 3");
}

static void test_audit_log_accepts_head_one_entry_behind_after_interrupted_append(void **state)
{
        /* An append that stopped between the log's fsync and the head's rename. */
        const char *path = log_path("lagging");
        _cleanup_(freep) char *head2 = NULL, *head4 = NULL;
        AuditLogSummary sum;
        char hp[300];
        Diag d;

        head_path_of(path, hp);
        append_n(path, 2);
        head2 = read_text(hp, NULL);
        append_n(path, 1);
        write_bytes(hp, head2, strlen(head2));
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 3);
        /* The next append brings the head up to date. */
        assert_int_equal(audit_log_append(path, &admission, &d), 0);
        head4 = read_text(hp, NULL);
        assert_non_null(strstr(head4, "\"seq\":4"));
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 4);

        /* The same before the first head file was ever written. */
        path = log_path("lagging-first");
        head_path_of(path, hp);
        append_n(path, 1);
        assert_int_equal(unlink(hp), 0);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 1);
}

static void test_audit_log_empty_log_verifies_and_missing_log_is_enoent(void **state)
{
        const char *path = log_path("empty");
        AuditLogSummary sum;
        Diag d;

        write_bytes(path, "", 0);
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 0);
        assert_string_equal(sum.head, "");
        assert_verify_fails(log_path("absent"), -ENOENT, "audit-file", -1, "cannot open");
}

static void test_audit_log_append_refuses_invalid_entry_before_creating_the_log(void **state)
{
        static const struct {
                const char *event, *verdict, *role, *digest;
        } cases[] = {
                { "boot", "admitted", "worker", "" },
                { NULL, "admitted", "worker", "" },
                { "admission", "maybe", "worker", "" },
                { "admission", NULL, "worker", "" },
                { "refusal", "admitted", "", "" },
                { "admission", "admitted", "master", "" },
                { "admission", "admitted", "worker",
                  "ABABABABABABABABABABABABABABABABABABABAB"
                  "ABABABABABABABABABABABAB" },
                { "admission", "admitted", "worker", "abab" },
        };
        const char *path = log_path("invalid");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AuditEntry e = admission;
                Diag d;

                e.event = cases[i].event;
                e.verdict = cases[i].verdict;
                e.role = cases[i].role;
                e.evidence_digest = cases[i].digest;
                diag_clear(&d);
                assert_int_equal(audit_log_append(path, &e, &d), -EINVAL);
                assert_string_equal(d.check, "audit-entry");
                assert_int_equal(access(path, F_OK), -1);
        }
}

static void test_audit_log_append_sanitises_and_truncates_peer_text_safely(void **state)
{
        const char *path = log_path("sanitise");
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_(freep) char *reason = NULL, *node = NULL;
        const char *r, *n;
        AuditLogSummary sum;
        AuditEntry e = admission;
        Lines l;
        Diag d;

        /* 1200 bytes of 2-byte characters: cut at a character boundary below 1024 bytes. */
        reason = malloc(1300);
        node = malloc(400);
        assert_non_null(reason);
        assert_non_null(node);
        (void) strcpy(reason, "a\tb\nc\r\x01\x7f\xc2\x85\xff|");
        for (int i = 0; i < 600; i++)
                strcat(reason, "\xc3\xa9");
        memset(node, 'n', 300);
        node[0] = '\x1b';
        node[1] = (char) 0xc3;
        node[2] = (char) 0xa9;
        node[300] = '\0';
        e.reason = reason;
        e.node = node;
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &e, &d), 0);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);

        lines_read(path, &l);
        assert_int_equal(json_parse_buffer(l.line[0], strlen(l.line[0]), "t", &o, &d), 0);
        lines_free(&l);
        r = json_string_value(json_object_get(o, "reason"));
        n = json_string_value(json_object_get(o, "node"));
        /* Tab, LF, CR a space; other C0, DEL, C1 and invalid UTF-8 one '?' each. */
        assert_memory_equal(r, "a b c ????|\xc3\xa9", 13);
        assert_true(strlen(r) <= AUDIT_REASON_MAX);
        assert_true(strlen(r) >= AUDIT_REASON_MAX - 4);
        assert_string_equal(r + strlen(r) - 5, "\xc3\xa9...");
        /* Node: printable ASCII only, one '?' per character, 253 bytes ending in "...". */
        assert_int_equal(strlen(n), AUDIT_NODE_MAX);
        assert_memory_equal(n, "??nnn", 5);
        assert_string_equal(n + AUDIT_NODE_MAX - 4, "n...");
}

static void test_audit_log_largest_entry_fits_a_line(void **state)
{
        /* node at its limit in characters that escape to two bytes, reason at its limit in
         * characters outside the BMP (4 bytes in UTF-8, 12 escaped). */
        const char *path = log_path("largest");
        char node[AUDIT_NODE_MAX + 1], reason[AUDIT_REASON_MAX + 1] = "";
        AuditEntry e = admission;
        AuditLogSummary sum;
        Lines l;
        Diag d;

        memset(node, '"', AUDIT_NODE_MAX);
        node[AUDIT_NODE_MAX] = '\0';
        for (unsigned i = 0; i < AUDIT_REASON_MAX / 4; i++)
                strcat(reason, "\xf0\x9f\x98\x80");
        e.node = node;
        e.reason = reason;
        e.role = "control-plane";
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &e, &d), 0);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        lines_read(path, &l);
        /* 4024 bytes at seq 10000000 (8 digits), so 4017 at seq 1; nothing was cut. */
        assert_int_equal(strlen(l.line[0]), 4017 + 1);
        assert_null(strstr(l.line[0], "..."));
        lines_free(&l);
}

static void test_audit_log_undoes_a_partial_write(void **state)
{
        /* A file size limit 100 bytes past the end makes write() stop short, as a full disk
         * would: the half line is taken back and the log stays verifiable. */
        const char *path = log_path("partial");
        _cleanup_(freep) char *before = NULL, *after = NULL;
        AuditLogSummary sum;
        size_t size;
        int status;
        pid_t pid;
        Diag d;

        append_n(path, 2);
        before = read_text(path, &size);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct rlimit rl = { .rlim_cur = size + 100, .rlim_max = size + 100 };

                (void) signal(SIGXFSZ, SIG_IGN);
                if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                        _exit(2);
                diag_clear(&d);
                _exit(audit_log_append(path, &admission, &d) == -EIO &&
                                      strcmp(d.check, "audit-file") == 0
                              ? 0
                              : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        after = read_text(path, NULL);
        assert_string_equal(before, after);
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 2);
        assert_int_equal(audit_log_append(path, &admission, &d), 0);
}

static void test_audit_log_concurrent_appenders_keep_one_chain(void **state)
{
        const char *path = log_path("concurrent");
        AuditLogSummary sum;
        pid_t pids[4];
        Diag d;

        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        for (int k = 0; k < 50; k++)
                                if (audit_log_append(path, &admission, NULL) < 0)
                                        _exit(1);
                        _exit(0);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                int status;
                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 200);
}

/* Policy updates (docs/policy-update.md): a policy-update entry is always admitted with an empty
 * role; appended and verified, or refused before the log exists. */
static void test_audit_log_policy_update_entries_are_admitted_without_a_role(void **state)
{
        const char *path = log_path("policy-update");
        AuditEntry e = admission;
        AuditLogSummary sum;
        Diag d;

        e.event = "policy-update";
        e.role = "";
        e.evidence_digest = "";
        e.reason = "policy version 2 (sha256:cd) replaces version 1 (sha256:ab)";
        e.verdict = "refused";
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &e, &d), -EINVAL);
        assert_int_equal(access(path, F_OK), -1);
        e.verdict = "admitted";
        e.role = "worker";
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &e, &d), -EINVAL);
        assert_non_null(strstr(d.message, "policy-update"));
        assert_int_equal(access(path, F_OK), -1);
        e.role = "";
        diag_clear(&d);
        assert_int_equal(audit_log_append(path, &e, &d), 0);
        assert_int_equal(audit_log_append(path, &admission, &d), 0);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 2);
}

static void test_audit_log_entry_format_continues_a_chain_as_append_would(void **state)
{
        char *line = NULL, hash[AUDIT_HASH_HEX_SIZE], *log = NULL;
        AuditLogSummary sum;
        AuditEntry bad = admission;
        Diag d;

        (void) state;
        /* Entry 4 after Python's three: the four verify as one log, and its hash is the head. */
        diag_clear(&d);
        assert_int_equal(audit_log_entry_format(&admission, 4, KAT_HEAD, &line, hash, &d), 0);
        assert_true(asprintf(&log, "%s%s", kat_log, line) > 0);
        assert_int_equal(audit_log_verify_buffer(log, strlen(log), "formatted", &sum, &d), 0);
        assert_int_equal(sum.entries, 4);
        assert_string_equal(sum.head, hash);
        free(log);
        free(line);
        /* The wrong seq or prev does not chain; the caller's bad values are refused. */
        line = NULL;
        assert_int_equal(audit_log_entry_format(&admission, 5, KAT_HEAD, &line, hash, &d), 0);
        assert_true(asprintf(&log, "%s%s", kat_log, line) > 0);
        assert_int_equal(audit_log_verify_buffer(log, strlen(log), "formatted", &sum, &d),
                         -EBADMSG);
        free(log);
        free(line);
        line = NULL;
        assert_int_equal(audit_log_entry_format(&admission, 4, "00", &line, hash, &d), -EINVAL);
        assert_int_equal(audit_log_entry_format(&admission, 0, KAT_HEAD, &line, hash, &d),
                         -EMSGSIZE);
        bad.verdict = "maybe";
        assert_int_equal(audit_log_entry_format(&bad, 4, KAT_HEAD, &line, hash, &d), -EINVAL);
        assert_null(line);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_audit_log_appends_verify_and_count_admissions_and_refusals),
                cmocka_unit_test(test_audit_log_hashes_and_bytes_match_python_known_answer),
                cmocka_unit_test(test_audit_log_detects_removed_middle_line),
                cmocka_unit_test(test_audit_log_detects_removed_first_line),
                cmocka_unit_test(test_audit_log_detects_swapped_lines),
                cmocka_unit_test(
                        test_audit_log_detects_removed_entry_with_renumbered_successor_by_prev),
                cmocka_unit_test(test_audit_log_detects_edited_reason),
                cmocka_unit_test(test_audit_log_detects_truncated_tail_through_head_file),
                cmocka_unit_test(test_audit_log_refuses_to_append_to_truncated_log),
                cmocka_unit_test(test_audit_log_refuses_to_append_after_corrupted_last_line),
                cmocka_unit_test(test_audit_log_refuses_to_append_after_half_written_line),
                cmocka_unit_test(test_audit_log_refuses_overlong_line),
                cmocka_unit_test(test_audit_log_accepts_line_of_exactly_the_limit_as_a_length),
                cmocka_unit_test(test_audit_log_reader_handles_lines_across_read_chunks),
                cmocka_unit_test(test_audit_log_refuses_unknown_and_missing_keys),
                cmocka_unit_test(test_audit_log_refuses_malformed_values),
                cmocka_unit_test(test_audit_log_refuses_non_canonical_spelling_of_a_valid_entry),
                cmocka_unit_test(test_audit_log_detects_missing_stale_and_rewritten_head_file),
                cmocka_unit_test(
                        test_audit_log_accepts_head_one_entry_behind_after_interrupted_append),
                cmocka_unit_test(test_audit_log_empty_log_verifies_and_missing_log_is_enoent),
                cmocka_unit_test(
                        test_audit_log_append_refuses_invalid_entry_before_creating_the_log),
                cmocka_unit_test(test_audit_log_policy_update_entries_are_admitted_without_a_role),
                cmocka_unit_test(test_audit_log_append_sanitises_and_truncates_peer_text_safely),
                cmocka_unit_test(test_audit_log_largest_entry_fits_a_line),
                cmocka_unit_test(test_audit_log_undoes_a_partial_write),
                cmocka_unit_test(test_audit_log_concurrent_appenders_keep_one_chain),
                cmocka_unit_test(test_audit_log_entry_format_continues_a_chain_as_append_would),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
