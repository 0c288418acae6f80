/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox_no_network() (lib/sandbox), what `cloister verify --bundle` runs under: each probe runs
 * in a child that installs the filter and then tries one thing; the exit status says what
 * happened (0: refused as it must be). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/sandbox.h"

typedef int (*Probe)(void);

static int in_offline_child(Probe probe, bool filtered)
{
        int status;
        pid_t pid;

        fflush(stdout);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (filtered && sandbox_no_network() < 0)
                        _exit(100);
                _exit(probe());
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

/* 0 if socket(AF_INET) is refused with EACCES, 1 if it works, 2 on another error. */
static int probe_inet_socket(void)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd >= 0)
                return 1;
        return errno == EACCES ? 0 : 2;
}

static int probe_unix_socket(void)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd >= 0)
                return 1;
        return errno == EACCES ? 0 : 2;
}

/* connect() on a socket made before the filter (an inherited descriptor) is refused too. */
static int inherited_fd = -1;

static int probe_connect_inherited(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons(9),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

        if (connect(inherited_fd, (struct sockaddr *) &a, sizeof(a)) == 0)
                return 1;
        return errno == EACCES ? 0 : 2;
}

/* Reading a file (the bundle) still works: 0 if it does. */
static int probe_read_file(void)
{
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        char c;

        if (fd < 0 || read(fd, &c, 1) != 1)
                return 1;
        (void) close(fd);
        return 0;
}

static void test_no_network_refuses_inet_and_unix_sockets(void **state)
{
        /* The positive control: without the filter, sockets are made. */
        assert_int_equal(in_offline_child(probe_inet_socket, false), 1);
        assert_int_equal(in_offline_child(probe_unix_socket, false), 1);
        assert_int_equal(in_offline_child(probe_inet_socket, true), 0);
        assert_int_equal(in_offline_child(probe_unix_socket, true), 0);
}

static void test_no_network_refuses_connect_on_an_inherited_socket(void **state)
{
        inherited_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(inherited_fd >= 0);
        assert_int_equal(in_offline_child(probe_connect_inherited, false), 1);
        assert_int_equal(in_offline_child(probe_connect_inherited, true), 0);
        (void) close(inherited_fd);
}

static void test_no_network_still_reads_files(void **state)
{
        assert_int_equal(in_offline_child(probe_read_file, true), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_network_refuses_inet_and_unix_sockets),
                cmocka_unit_test(test_no_network_refuses_connect_on_an_inherited_socket),
                cmocka_unit_test(test_no_network_still_reads_files),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
