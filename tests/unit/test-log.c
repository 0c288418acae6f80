/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/unit.h"

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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
