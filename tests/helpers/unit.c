/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/unit.h"

const char *testdata_dir(void)
{
        const char *e = getenv("CLOISTER_TESTDATA");
        return e ? e : "../shared/testdata";
}

const char *testdata_path(const char *rel)
{
        static char buf[PATH_MAX];
        (void) snprintf(buf, sizeof(buf), "%s/%s", testdata_dir(), rel);
        return buf;
}

static char tmpdir[64];

static void tmpdir_remove(void)
{
        char *argv[] = { (char *) "rm", (char *) "-rf", tmpdir, NULL };
        pid_t pid;

        if (!tmpdir[0])
                return;
        pid = fork();
        if (pid == 0) {
                execvp("rm", argv);
                _exit(127);
        }
        if (pid > 0)
                (void) waitpid(pid, NULL, 0);
}

const char *test_tmpdir(void)
{
        if (!tmpdir[0]) {
                (void) snprintf(tmpdir, sizeof(tmpdir), "/tmp/cloister-test-XXXXXX");
                if (!mkdtemp(tmpdir))
                        abort();
                atexit(tmpdir_remove);
        }
        return tmpdir;
}
