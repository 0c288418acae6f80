/* SPDX-License-Identifier: Apache-2.0 */
#include <endian.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/journal.h"
#include "cloister/log.h"

typedef struct Captured {
        int count, level, error;
        char message[512];
} Captured;

static void capture(int level, int error, const char *message, void *userdata)
{
        Captured *c = userdata;
        c->count++;
        c->level = level;
        c->error = error;
        (void) snprintf(c->message, sizeof(c->message), "%s", message);
}

static int setup(void **state)
{
        static Captured c;
        memset(&c, 0, sizeof(c));
        log_set_sink(capture, &c);
        log_set_max_level(LOG_INFO);
        *state = &c;
        return 0;
}

static int teardown(void **state)
{
        log_set_sink(NULL, NULL);
        log_set_max_level(LOG_INFO);
        return 0;
}

static void test_log_error_errno_returns_negative_error_and_formats_m(void **state)
{
        Captured *c = *state;
        int r = log_error_errno(-ENOENT, "Failed to open '%s': %m", "x.json");

        assert_int_equal(r, -ENOENT);
        assert_int_equal(c->count, 1);
        assert_int_equal(c->level, LOG_ERR);
        assert_int_equal(c->error, ENOENT);
        assert_string_equal(c->message, "Failed to open 'x.json': No such file or directory");
}

static void test_log_positive_errno_is_normalised(void **state)
{
        assert_int_equal(log_error_errno(EPERM, "x"), -EPERM);
}

static void test_log_below_max_level_is_dropped_but_still_returns_error(void **state)
{
        Captured *c = *state;

        log_debug("not shown");
        assert_int_equal(c->count, 0);
        assert_int_equal(log_debug_errno(-EIO, "not shown either"), -EIO);
        assert_int_equal(c->count, 0);
        log_set_max_level(LOG_DEBUG);
        log_debug("shown %d", 1);
        assert_int_equal(c->count, 1);
        assert_string_equal(c->message, "shown 1");
}

/* cloister --debug: every record in the file, the console unchanged at its own level. */
static void test_log_file_gets_debug_records_the_console_does_not(void **state)
{
        Captured *c = *state;
        char path[] = "/tmp/test-log-XXXXXX", buf[1024] = {};
        int fd = mkstemp(path);
        ssize_t n;

        assert_true(fd >= 0);
        log_set_file(fd);
        log_debug("only in the file %d", 7);
        assert_int_equal(c->count, 0);
        log_info("in both");
        assert_int_equal(c->count, 1);
        assert_string_equal(c->message, "in both");
        /* -v after --debug: the console shows debug records too; the file still gets them. */
        log_set_max_level(LOG_DEBUG);
        log_debug("verbose");
        assert_int_equal(c->count, 2);
        log_set_file(-1);
        log_set_max_level(LOG_INFO);
        log_debug("after");
        assert_int_equal(c->count, 2);
        n = pread(fd, buf, sizeof(buf) - 1, 0);
        assert_true(n > 0);
        assert_non_null(strstr(buf, "Z debug: only in the file 7\n"));
        assert_non_null(strstr(buf, "Z info: in both\n"));
        assert_non_null(strstr(buf, "Z debug: verbose\n"));
        assert_null(strstr(buf, "after"));
        (void) close(fd);
        (void) unlink(path);
}

static void test_log_preserves_errno(void **state)
{
        errno = EAGAIN;
        log_info("hello");
        assert_int_equal(errno, EAGAIN);
}

static void test_log_long_message_is_truncated_not_overrun(void **state)
{
        Captured *c = *state;
        char big[5000];

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        log_info("%s", big);
        assert_int_equal(c->count, 1);
        assert_true(strlen(c->message) > 100);
}

static void test_log_level_from_string_parses_names(void **state)
{
        assert_int_equal(log_level_from_string("debug"), LOG_DEBUG);
        assert_int_equal(log_level_from_string("warning"), LOG_WARNING);
        assert_int_equal(log_level_from_string("err"), LOG_ERR);
        assert_int_equal(log_level_from_string("error"), LOG_ERR);
        assert_int_equal(log_level_from_string("loud"), -EINVAL);
        assert_int_equal(log_level_from_string(NULL), -EINVAL);
}

static void test_log_target_journal_only_when_journal_stream_matches_stderr(void **state)
{
        struct stat st;
        char buf[64];

        log_set_target(LOG_TARGET_AUTO);
        unsetenv("JOURNAL_STREAM");
        assert_int_equal(log_get_effective_target(), LOG_TARGET_STDERR);

        /* A JOURNAL_STREAM that names some other file (inherited by a child whose stderr was
         * redirected) must not divert logs to the journal. */
        setenv("JOURNAL_STREAM", "1:2", 1);
        assert_int_equal(log_get_effective_target(), LOG_TARGET_STDERR);

        assert_int_equal(fstat(STDERR_FILENO, &st), 0);
        (void) snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long) st.st_dev,
                        (unsigned long long) st.st_ino);
        setenv("JOURNAL_STREAM", buf, 1);
        assert_int_equal(log_get_effective_target(), LOG_TARGET_JOURNAL);
        unsetenv("JOURNAL_STREAM");
}

/* A datagram socket bound at path (or, for a name starting with '@', in the abstract namespace),
 * receiving with a timeout. */
static int bind_datagram(const char *name)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = 5 };
        size_t n = strlen(name);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0 && n < sizeof(sa.sun_path));
        memcpy(sa.sun_path, name, n);
        if (name[0] == '@')
                sa.sun_path[0] = 0;
        else
                (void) unlink(name);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa,
                              (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n +
                                           (name[0] == '@' ? 0 : 1))),
                         0);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        return fd;
}

/* The value of field key in a native-protocol datagram, decoded as systemd-journald does
 * ("KEY=value\n", or "KEY\n" + 64-bit little-endian length + value + "\n"); NULL if absent. */
static const char *journal_field(const char *dgram, size_t size, const char *key, char *out,
                                 size_t out_size)
{
        size_t k = strlen(key), i = 0;

        while (i < size) {
                const char *nl = memchr(dgram + i, '\n', size - i);
                const char *eq = memchr(dgram + i, '=', size - i);
                size_t vstart, vlen;

                assert_non_null(nl);
                if (eq && eq < nl) { /* KEY=value\n */
                        vstart = (size_t) (eq - dgram) + 1;
                        vlen = (size_t) (nl - eq) - 1;
                        if ((size_t) (eq - dgram) - i == k && memcmp(dgram + i, key, k) == 0)
                                goto found;
                        i = (size_t) (nl - dgram) + 1;
                } else { /* KEY\n<le64><value>\n */
                        uint64_t le;
                        size_t klen = (size_t) (nl - dgram) - i;

                        assert_true((size_t) (nl - dgram) + 1 + 8 <= size);
                        memcpy(&le, nl + 1, 8);
                        vlen = (size_t) le64toh(le);
                        vstart = (size_t) (nl - dgram) + 1 + 8;
                        assert_true(vstart + vlen + 1 <= size && dgram[vstart + vlen] == '\n');
                        if (klen == k && memcmp(dgram + i, key, k) == 0)
                                goto found;
                        i = vstart + vlen + 1;
                }
                continue;
        found:
                assert_true(vlen < out_size);
                memcpy(out, dgram + vstart, vlen);
                out[vlen] = 0;
                return out;
        }
        return NULL;
}

static void test_log_to_journal_sends_message_priority_errno_and_code_location(void **state)
{
        char path[256], dgram[8192], v[512];
        ssize_t n;
        int fd;

        (void) snprintf(path, sizeof(path), "%s/journal.sock", test_tmpdir());
        fd = bind_datagram(path);
        log_set_journal_socket(path);
        log_set_target(LOG_TARGET_JOURNAL);

        assert_int_equal(log_error_errno(-ENOENT, "first line\nsecond: %m"), -ENOENT);
        n = recv(fd, dgram, sizeof(dgram), 0);
        assert_true(n > 0);
        /* A value with a newline travels in the binary form, whole. */
        assert_string_equal(journal_field(dgram, (size_t) n, "MESSAGE", v, sizeof(v)),
                            "first line\nsecond: No such file or directory");
        assert_string_equal(journal_field(dgram, (size_t) n, "PRIORITY", v, sizeof(v)), "3");
        assert_string_equal(journal_field(dgram, (size_t) n, "ERRNO", v, sizeof(v)), "2");
        assert_string_equal(journal_field(dgram, (size_t) n, "CODE_FUNC", v, sizeof(v)),
                            "test_log_to_journal_sends_message_priority_errno_and_code_location");
        assert_non_null(
                strstr(journal_field(dgram, (size_t) n, "CODE_FILE", v, sizeof(v)), "test-log.c"));
        assert_string_equal(journal_field(dgram, (size_t) n, "SYSLOG_IDENTIFIER", v, sizeof(v)),
                            program_invocation_short_name);

        /* Without an error there is no ERRNO field. */
        log_warning("plain");
        n = recv(fd, dgram, sizeof(dgram), 0);
        assert_true(n > 0);
        assert_string_equal(journal_field(dgram, (size_t) n, "MESSAGE", v, sizeof(v)), "plain");
        assert_string_equal(journal_field(dgram, (size_t) n, "PRIORITY", v, sizeof(v)), "4");
        assert_null(journal_field(dgram, (size_t) n, "ERRNO", v, sizeof(v)));

        log_set_journal_socket(NULL);
        log_set_target(LOG_TARGET_AUTO);
        (void) close(fd);
        (void) unlink(path);
}

static void test_log_without_a_journal_socket_keeps_the_line_on_stderr(void **state)
{
        char path[256], out[256], buf[512] = "";
        int saved = dup(STDERR_FILENO), fd;
        ssize_t n;

        (void) snprintf(path, sizeof(path), "%s/no-journal.sock", test_tmpdir());
        (void) snprintf(out, sizeof(out), "%s/stderr.txt", test_tmpdir());
        fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0 && saved >= 0);
        assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        log_set_journal_socket(path);
        log_set_target(LOG_TARGET_JOURNAL);
        log_error("kept although the journal is gone");
        (void) fflush(stderr);
        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        log_set_journal_socket(NULL);
        log_set_target(LOG_TARGET_AUTO);
        n = pread(fd, buf, sizeof(buf) - 1, 0);
        assert_true(n > 0);
        assert_string_equal(buf, "error: kept although the journal is gone\n");
        (void) close(fd);
        (void) close(saved);
}

static void test_journal_record_that_does_not_fit_is_refused_not_truncated(void **state)
{
        JournalRecord rec = JOURNAL_RECORD_INIT;
        char big[5000];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_true(journal_record_add(&rec, "PRIORITY", "6"));
        assert_false(journal_record_add(&rec, "MESSAGE", big));
        /* Later fields that would fit do not revive it. */
        assert_false(journal_record_add(&rec, "CODE_LINE", "1"));
        assert_int_equal(journal_record_send(&rec, "/nonexistent"), -EMSGSIZE);
}

static void test_service_notify_reaches_a_path_and_an_abstract_socket(void **state)
{
        char path[256], abstract[64], buf[64];
        ssize_t n;
        int fd;

        unsetenv("NOTIFY_SOCKET");
        assert_int_equal(service_manager_notify("READY=1"), 0);

        (void) snprintf(path, sizeof(path), "%s/notify.sock", test_tmpdir());
        fd = bind_datagram(path);
        setenv("NOTIFY_SOCKET", path, 1);
        assert_int_equal(service_manager_notify("READY=1"), 1);
        n = recv(fd, buf, sizeof(buf), 0);
        assert_int_equal(n, 7);
        assert_memory_equal(buf, "READY=1", 7);
        (void) close(fd);
        (void) unlink(path);

        (void) snprintf(abstract, sizeof(abstract), "@cloister-test-notify-%d", (int) getpid());
        fd = bind_datagram(abstract);
        setenv("NOTIFY_SOCKET", abstract, 1);
        assert_int_equal(service_manager_notify("STOPPING=1"), 1);
        n = recv(fd, buf, sizeof(buf), 0);
        assert_int_equal(n, 10);
        assert_memory_equal(buf, "STOPPING=1", 10);
        (void) close(fd);

        /* Neither a path nor an abstract name: refused, nothing sent anywhere. */
        setenv("NOTIFY_SOCKET", "relative.sock", 1);
        assert_int_equal(service_manager_notify("READY=1"), -EINVAL);
        unsetenv("NOTIFY_SOCKET");
}

static void test_log_ring_keeps_whole_recent_records_within_its_size(void **state)
{
        _cleanup_(freep) char *text = NULL;
        size_t size = 0;
        bool dropped = true;

        assert_int_equal(log_ring_read(&text, &size, &dropped), -ENODATA); /* off */
        assert_int_equal(log_ring_enable(64), 0);
        log_info("first %d", 1);
        log_warning("second");
        assert_int_equal(log_ring_read(&text, &size, &dropped), 0);
        assert_string_equal(text, "info: first 1\nwarning: second\n");
        assert_false(dropped);
        free(TAKE_PTR(text));
        /* Past 64 bytes the oldest whole records go; the newest is always whole. */
        log_info("third, a longer record to push the first ones out");
        assert_int_equal(log_ring_read(&text, &size, &dropped), 0);
        assert_string_equal(text, "info: third, a longer record to push the first ones out\n");
        assert_true(dropped && size <= 64);
        free(TAKE_PTR(text));
        /* A record larger than the ring is not kept at all (nor cut). */
        log_info("%0100d", 7);
        assert_int_equal(log_ring_read(&text, &size, &dropped), 0);
        assert_null(strstr(text, "0000000007"));
        assert_int_equal(log_ring_enable(0), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_log_error_errno_returns_negative_error_and_formats_m, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_positive_errno_is_normalised, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_log_below_max_level_is_dropped_but_still_returns_error, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_log_preserves_errno, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_log_file_gets_debug_records_the_console_does_not, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_long_message_is_truncated_not_overrun,
                                                setup, teardown),
                cmocka_unit_test(test_log_level_from_string_parses_names),
                cmocka_unit_test_setup_teardown(
                        test_log_ring_keeps_whole_recent_records_within_its_size, setup, teardown),
                cmocka_unit_test(test_log_target_journal_only_when_journal_stream_matches_stderr),
                cmocka_unit_test(
                        test_log_to_journal_sends_message_priority_errno_and_code_location),
                cmocka_unit_test(test_log_without_a_journal_socket_keeps_the_line_on_stderr),
                cmocka_unit_test(test_journal_record_that_does_not_fit_is_refused_not_truncated),
                cmocka_unit_test(test_service_notify_reaches_a_path_and_an_abstract_socket),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
