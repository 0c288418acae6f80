/* SPDX-License-Identifier: Apache-2.0 */
#include <signal.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/macro.h"
#include "cloister/spawn.h"

static char *tmp_file(const char *name)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", test_tmpdir(), name) > 0);
        (void) unlink(p);
        return p;
}

static void read_file(const char *path, uint8_t **ret, size_t *ret_size)
{
        assert_int_equal(read_full_file(path, 4U << 20, ret, ret_size), 0);
}

static void test_spawn_wait_input_feeds_the_bytes_then_end_of_file(void **state)
{
        /* Binary, with a NUL inside: a key, not a string. */
        static const uint8_t key[32] = { 0x00, 0x01, 0xff, 'k', 0x00, 0x7f, 0x80, 0x0a };
        _cleanup_(freep) char *out = tmp_file("cat.out");
        _cleanup_(freep) uint8_t *got = NULL;
        char *const argv[] = { (char *) "cat", NULL };
        size_t n = 0;

        assert_int_equal(spawn_wait_input(argv, key, sizeof(key), out, NULL), 0);
        read_file(out, &got, &n);
        assert_int_equal(n, sizeof(key));
        assert_memory_equal(got, key, sizeof(key));
}

static void test_spawn_wait_input_more_than_a_pipe_holds(void **state)
{
        const size_t size = 1U << 20;
        _cleanup_(freep) uint8_t *big = malloc(size), *got = NULL;
        _cleanup_(freep) char *out = tmp_file("big.out");
        char *const argv[] = { (char *) "cat", NULL };
        size_t n = 0;

        assert_non_null(big);
        for (size_t i = 0; i < size; i++)
                big[i] = (uint8_t) (i * 7);
        assert_int_equal(spawn_wait_input(argv, big, size, out, NULL), 0);
        read_file(out, &got, &n);
        assert_int_equal(n, size);
        assert_memory_equal(got, big, size);
}

static void
test_spawn_wait_input_child_that_does_not_read_is_its_exit_status_not_sigpipe(void **state)
{
        const size_t size = 1U << 20;
        _cleanup_(freep) uint8_t *big = calloc(1, size);
        char *const argv[] = { (char *) "sh", (char *) "-c", (char *) "exit 3", NULL };
        sigset_t mask, pending;

        assert_non_null(big);
        /* Were SIGPIPE raised, this test process would die with the default disposition. */
        assert_int_equal(spawn_wait_input(argv, big, size, NULL, NULL), 3);
        assert_int_equal(sigpending(&pending), 0);
        assert_false(sigismember(&pending, SIGPIPE));
        /* The caller's signal mask is restored. */
        assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
        assert_false(sigismember(&mask, SIGPIPE));
}

static void test_spawn_wait_input_child_sees_the_input_on_stdin_and_no_other_pipe(void **state)
{
        /* The only pipe the child holds is its stdin (fd 0): the write end stays with us. */
        _cleanup_(freep) char *out = tmp_file("fds.out"), *err = tmp_file("fds.err");
        _cleanup_(freep) uint8_t *got = NULL;
        char *const argv[] = { (char *) "sh", (char *) "-c",
                               (char *) "cat >/dev/null; for f in /proc/$$/fd/*; do "
                                        "printf '%s ' \"${f##*/}\"; readlink \"$f\"; done; true",
                               NULL };
        size_t n = 0, pipes = 0;

        assert_int_equal(spawn_wait_input(argv, "x", 1, out, err), 0);
        read_file(out, &got, &n);
        for (char *line = (char *) got, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (strstr(line, "pipe:")) {
                        pipes++;
                        assert_true(strncmp(line, "0 ", 2) == 0);
                }
        }
        assert_int_equal(pipes, 1);
}

static void test_spawn_wait_input_empty_input_is_end_of_file(void **state)
{
        _cleanup_(freep) char *out = tmp_file("empty.out");
        _cleanup_(freep) uint8_t *got = NULL;
        char *const argv[] = { (char *) "wc", (char *) "-c", NULL };
        size_t n = 0;

        assert_int_equal(spawn_wait_input(argv, NULL, 0, out, NULL), 0);
        read_file(out, &got, &n);
        assert_int_equal(atoi((char *) got), 0);
}

static void test_spawn_wait_input_refuses_bad_arguments_and_missing_programs(void **state)
{
        char *const none[] = { NULL };
        char *const missing[] = { (char *) "/nonexistent/cloister-no-such-program", NULL };
        char *const cat[] = { (char *) "cat", NULL };

        assert_int_equal(spawn_wait_input(NULL, "x", 1, NULL, NULL), -EINVAL);
        assert_int_equal(spawn_wait_input(none, "x", 1, NULL, NULL), -EINVAL);
        assert_int_equal(spawn_wait_input(cat, NULL, 1, NULL, NULL), -EINVAL);
        assert_int_equal(spawn_wait_input(missing, "x", 1, NULL, NULL), -ENOENT);
}

static void test_spawn_wait_stdin_is_dev_null(void **state)
{
        _cleanup_(freep) char *out = tmp_file("null.out");
        _cleanup_(freep) uint8_t *got = NULL;
        char *const argv[] = { (char *) "wc", (char *) "-c", NULL };
        size_t n = 0;

        assert_int_equal(spawn_wait_output(argv, out, NULL), 0);
        read_file(out, &got, &n);
        assert_int_equal(atoi((char *) got), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spawn_wait_input_feeds_the_bytes_then_end_of_file),
                cmocka_unit_test(test_spawn_wait_input_more_than_a_pipe_holds),
                cmocka_unit_test(
                        test_spawn_wait_input_child_that_does_not_read_is_its_exit_status_not_sigpipe),
                cmocka_unit_test(
                        test_spawn_wait_input_child_sees_the_input_on_stdin_and_no_other_pipe),
                cmocka_unit_test(test_spawn_wait_input_empty_input_is_end_of_file),
                cmocka_unit_test(test_spawn_wait_input_refuses_bad_arguments_and_missing_programs),
                cmocka_unit_test(test_spawn_wait_stdin_is_dev_null),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
