/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloister/macro.h"
#include "cloister/spawn.h"

static int open_output(const char *path)
{
        return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* In the child: stdin from in_fd (or /dev/null), stdout and stderr as asked, then exec. Only
 * async-signal-safe calls: the parent may have threads. */
_Noreturn static void child_exec(char *const argv[], int in_fd, const char *stdout_path,
                                 const char *stderr_path)
{
        int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY | O_CLOEXEC);

        /* dup2() leaves the copy without close-on-exec; the original closes at exec. (If it
         * already is fd 0, dup2() does nothing: clear the flag itself.) */
        if (in < 0 || (in == STDIN_FILENO ? fcntl(in, F_SETFD, 0) : dup2(in, STDIN_FILENO)) < 0)
                _exit(126);
        if (stdout_path) {
                int out = open_output(stdout_path);
                if (out < 0 || dup2(out, STDOUT_FILENO) < 0)
                        _exit(126);
        }
        if (stderr_path) {
                int err = open_output(stderr_path);
                if (err < 0 || dup2(err, STDERR_FILENO) < 0)
                        _exit(126);
        }
        /* Nothing else of ours leaks into the child (the TPM, listening sockets, files holding
         * keys): whatever lacks close-on-exec gets it now. */
        (void) close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        /* Nor our blocked signals: a caller that waits for SIGTERM with sigwaitinfo() (the join
         * service's monitor) would otherwise start a child that cannot be stopped with it. */
        {
                sigset_t none;

                (void) sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
        }
        execvp(argv[0], argv);
        _exit(127);
}

static int wait_child(pid_t pid)
{
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (WIFEXITED(status))
                return WEXITSTATUS(status) == 127 ? -ENOENT : WEXITSTATUS(status);
        return -EINTR;
}

int spawn_wait_output(char *const argv[], const char *stdout_path, const char *stderr_path)
{
        pid_t pid;

        if (!argv || !argv[0])
                return -EINVAL;
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0)
                child_exec(argv, -1, stdout_path, stderr_path);
        return wait_child(pid);
}

int spawn_wait(char *const argv[], const char *output_log)
{
        return spawn_wait_output(argv, output_log, output_log);
}

/* Writes all of data to fd; a reader that went away is -EPIPE, never a SIGPIPE for the whole
 * process: the signal is blocked in this thread while writing, and one this write raised is
 * taken back before the mask is restored (a library must not change the process's disposition). */
static int write_all_nosigpipe(int fd, const uint8_t *data, size_t size)
{
        sigset_t pipe_set, old, pending;
        bool was_pending;
        int r = 0;

        (void) sigemptyset(&pipe_set);
        (void) sigaddset(&pipe_set, SIGPIPE);
        (void) sigemptyset(&pending);
        (void) sigpending(&pending);
        was_pending = sigismember(&pending, SIGPIPE) == 1;
        (void) pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        while (size > 0) {
                ssize_t n = write(fd, data, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        break;
                }
                data += n;
                size -= (size_t) n;
        }
        if (r == -EPIPE && !was_pending) {
                const struct timespec zero = {};
                (void) sigtimedwait(&pipe_set, NULL, &zero);
        }
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}

int spawn_wait_input(char *const argv[], const void *input, size_t size, const char *stdout_path,
                     const char *stderr_path)
{
        int fds[2], r;
        pid_t pid;

        if (!argv || !argv[0] || (!input && size > 0))
                return -EINVAL;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                (void) close(fds[0]);
                (void) close(fds[1]);
                return r;
        }
        if (pid == 0)
                child_exec(argv, fds[0], stdout_path, stderr_path);
        (void) close(fds[0]);
        /* A child that stops reading early (it failed, or needed less) is not an error here:
         * its exit status says how it went. */
        (void) write_all_nosigpipe(fds[1], input, size);
        (void) close(fds[1]);
        return wait_child(pid);
}
