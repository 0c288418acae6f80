/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloister/macro.h"
#include "cloister/spawn.h"

static int open_output(const char *path)
{
        return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

int spawn_wait_output(char *const argv[], const char *stdout_path, const char *stderr_path)
{
        int status;
        pid_t pid;

        if (!argv || !argv[0])
                return -EINVAL;
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (in < 0 || dup2(in, STDIN_FILENO) < 0)
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
                /* Nothing else of ours leaks into the child (the TPM, listening sockets, files
                 * holding keys): whatever lacks close-on-exec gets it now. */
                (void) close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                execvp(argv[0], argv);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (WIFEXITED(status))
                return WEXITSTATUS(status) == 127 ? -ENOENT : WEXITSTATUS(status);
        return -EINTR;
}

int spawn_wait(char *const argv[], const char *output_log)
{
        return spawn_wait_output(argv, output_log, output_log);
}
