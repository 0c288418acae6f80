/* SPDX-License-Identifier: Apache-2.0 */
/* The join service's network process confinement (lib/sandbox): each probe runs in a child that
 * drops its capabilities, installs the filter and then tries one thing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/sandbox.h"

typedef int (*Probe)(void);

/* The child's fate: exit status (>= 0) or -signal. */
static int in_sandbox(Probe probe)
{
        int status;
        pid_t pid;

        fflush(stdout);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (sandbox_drop_capabilities() < 0 || sandbox_network_filter() < 0)
                        _exit(100);
                _exit(probe());
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static int probe_nothing(void)
{
        return 0;
}

static int probe_execve(void)
{
        char *const argv[] = { (char *) "/bin/true", NULL };

        (void) execv("/bin/true", argv);
        return 1; /* refused without being killed: still wrong */
}

static int probe_ptrace(void)
{
        (void) ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        return 1;
}

static int probe_fork(void)
{
        pid_t p = fork();
        if (p == 0)
                _exit(0);
        return 1;
}

/* Opening any file fails (EACCES), the master secret's first of all. */
static int probe_open(void)
{
        const char *path = getenv("SANDBOX_TEST_FILE");
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd >= 0)
                return 1;
        return errno == EACCES ? 0 : 2;
}

static int probe_create(void)
{
        char path[512];
        int fd;

        (void) snprintf(path, sizeof(path), "%s/new-file", test_tmpdir());
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        return fd < 0 && errno == EACCES ? 0 : 1;
}

static void *thread_main(void *arg)
{
        return arg;
}

/* What the process needs keeps working: threads, reads and writes on open descriptors. */
static int probe_threads_and_io(void)
{
        pthread_t t;
        void *ret = NULL;
        int p[2];
        char c = 0;

        if (pthread_create(&t, NULL, thread_main, (void *) 42) != 0 || pthread_join(t, &ret) != 0 ||
            ret != (void *) 42)
                return 1;
        if (pipe(p) < 0 || write(p[1], "x", 1) != 1 || read(p[0], &c, 1) != 1 || c != 'x')
                return 2;
        return 0;
}

/* Even /proc/self is closed to it (the kernel's view of its capabilities is read by the parent,
 * test_sandbox_leaves_no_capability). */
static int probe_proc_self(void)
{
        FILE *f = fopen("/proc/self/status", "re");
        return f ? 3 : 0;
}

/* io_uring opens, reads and connects on its own, unseen by the rules on the plain calls. */
static int probe_io_uring(void)
{
        char params[120] = {}; /* struct io_uring_params, zeroed */

        (void) syscall(__NR_io_uring_setup, 4, params);
        return 1;
}

/* The process runs as root: kill(-1) would reach every process of the node. */
static int probe_kill_others(void)
{
        if (kill(getppid(), 0) == 0 || errno != EPERM)
                return 1;
        if (kill(-1, 0) == 0 || errno != EPERM)
                return 2;
        /* Its own threads still: raise() signals itself through tgkill. */
        return raise(0) == 0 ? 0 : 3;
}

/* bind() of a unix socket creates a file; the network process never binds (its socket is made
 * before the filter), nor makes a new socket or connects anywhere (the TPM is its monitor's). */
static int probe_bind_unix(void)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        (void) snprintf(a.sun_path, sizeof(a.sun_path), "%s", getenv("SANDBOX_TEST_SOCK"));
        if (fd >= 0 || errno != EACCES)
                return 1;
        /* On a descriptor that is no socket: the filter answers before the kernel would say
         * EBADF. */
        return bind(-1, (struct sockaddr *) &a, sizeof(a)) < 0 && errno == EACCES ? 0 : 2;
}

static int probe_socket_connect(void)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd >= 0 || errno != EACCES)
                return 1;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 || errno != EACCES)
                return 2;
        (void) snprintf(a.sun_path, sizeof(a.sun_path), "/run/systemd/journal/socket");
        return connect(-1, (struct sockaddr *) &a, sizeof(a)) < 0 && errno == EACCES ? 0 : 3;
}

/* A TCP socket made before the filter (as the network process's are). */
static int pre_socket = -1;

/* setsockopt: TCP_NODELAY only; TCP_ULP (kernel TLS) and any SOL_SOCKET option fail with
 * EPERM. */
static int probe_setsockopt_only_tcp_nodelay(void)
{
        int one = 1;

        if (setsockopt(pre_socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
                return 1;
        if (setsockopt(pre_socket, IPPROTO_TCP, TCP_ULP, "tls", 3) == 0 || errno != EPERM)
                return 2;
        if (setsockopt(pre_socket, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 ||
            errno != EPERM)
                return 3;
        return 0;
}

/* --- the allow-list: what it does not name kills the process --- */

static int probe_unlisted_getcpu(void)
{
        unsigned cpu;

        (void) syscall(SYS_getcpu, &cpu, NULL, NULL);
        return 1; /* not killed: the call was allowed */
}

static int probe_unlisted_sync(void)
{
        sync();
        return 1;
}

static int probe_unlisted_ioctl(void)
{
        int p[2];

        if (pipe(p) < 0)
                return 2;
        (void) ioctl(p[0], FIOCLEX);
        return 1;
}

static int probe_unlisted_fcntl_lock(void)
{
        struct flock l = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
        int p[2];

        if (pipe(p) < 0)
                return 2;
        (void) fcntl(p[0], F_SETLK, &l);
        return 1;
}

static int probe_unlisted_setuid(void)
{
        (void) syscall(SYS_setresuid, 0, 0, 0);
        return 1;
}

/* Never writable and executable memory; the dumpable flag and the death signal stay. */
static int probe_no_wx_memory_nor_dumpable(void)
{
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);

        if (m != MAP_FAILED || errno != EACCES)
                return 1;
        m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return 2; /* the allowed kind works */
        if (mprotect(m, 4096, PROT_READ | PROT_EXEC) == 0 || errno != EACCES)
                return 3;
        if (mprotect(m, 4096, PROT_READ) < 0)
                return 4;
        if (prctl(PR_SET_DUMPABLE, 1) == 0 || errno != EPERM)
                return 5;
        return 0;
}

/* Its own limits, yes; another process's (the parent here, the same uid), no. */
static int probe_prlimit_only_its_own(void)
{
        struct rlimit rl;

        if (prlimit(0, RLIMIT_NOFILE, NULL, &rl) < 0)
                return 1;
        if (prlimit(getppid(), RLIMIT_NOFILE, NULL, &rl) == 0 || errno != EPERM)
                return 2;
        return 0;
}

/* fstat() of an open descriptor works; a stat by path (no AT_EMPTY_PATH) fails, even of a
 * file that exists. */
static int probe_stat_only_open_descriptors(void)
{
        struct stat st;
        struct statx stx;

        if (fstat(1, &st) < 0)
                return 1;
        if (fstatat(AT_FDCWD, "/etc/passwd", &st, 0) == 0 || errno != EACCES)
                return 2;
        if (statx(AT_FDCWD, "/etc/passwd", 0, STATX_BASIC_STATS, &stx) == 0 || errno != EACCES)
                return 3;
        if (statx(1, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0)
                return 4;
        return 0;
}

/* The death signal that ties it to the monitor cannot be undone. */
static int probe_clear_pdeathsig(void)
{
        return prctl(PR_SET_PDEATHSIG, 0) < 0 && errno == EPERM ? 0 : 1;
}

static void test_sandbox_kills_the_process_on_io_uring(void **state)
{
        assert_int_equal(in_sandbox(probe_io_uring), -SIGSYS);
}

static void test_sandbox_refuses_signals_to_other_processes_binds_and_pdeathsig(void **state)
{
        char path[108];

        (void) snprintf(path, sizeof(path), "%s/s.sock", test_tmpdir()); /* made here, not there */
        assert_int_equal(setenv("SANDBOX_TEST_SOCK", path, 1), 0);
        assert_int_equal(in_sandbox(probe_kill_others), 0);
        assert_int_equal(in_sandbox(probe_bind_unix), 0);
        assert_int_equal(in_sandbox(probe_clear_pdeathsig), 0);
}

static void test_sandbox_refuses_new_sockets_and_connects(void **state)
{
        assert_int_equal(in_sandbox(probe_socket_connect), 0);
}

static void test_sandbox_sets_only_tcp_nodelay_on_a_socket(void **state)
{
        pre_socket = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(pre_socket >= 0);
        /* The positive control: outside, TCP_ULP fails otherwise (no connection) and
         * SO_REUSEADDR succeeds. */
        assert_int_not_equal(probe_setsockopt_only_tcp_nodelay(), 0);
        assert_int_equal(in_sandbox(probe_setsockopt_only_tcp_nodelay), 0);
        (void) close(pre_socket);
        pre_socket = -1;
}

static void test_sandbox_kills_the_process_on_a_call_not_on_the_allow_list(void **state)
{
        /* The positive control: outside the sandbox each probe returns (1: not killed). */
        assert_int_equal(probe_unlisted_getcpu(), 1);
        assert_int_equal(in_sandbox(probe_unlisted_getcpu), -SIGSYS);
        assert_int_equal(in_sandbox(probe_unlisted_sync), -SIGSYS);
        assert_int_equal(in_sandbox(probe_unlisted_setuid), -SIGSYS);
}

static void test_sandbox_allows_fcntl_and_ioctl_only_with_the_listed_commands(void **state)
{
        assert_int_equal(in_sandbox(probe_unlisted_ioctl), -SIGSYS);
        assert_int_equal(in_sandbox(probe_unlisted_fcntl_lock), -SIGSYS);
}

static void test_sandbox_refuses_writable_executable_memory_and_dumpable(void **state)
{
        assert_int_equal(in_sandbox(probe_no_wx_memory_nor_dumpable), 0);
}

static void test_sandbox_changes_only_its_own_limits_and_stats_only_open_descriptors(void **state)
{
        /* The positive control: outside the sandbox both succeed where the sandbox refuses. */
        assert_int_equal(probe_prlimit_only_its_own(), 2);
        assert_int_equal(probe_stat_only_open_descriptors(), 2);
        assert_int_equal(in_sandbox(probe_prlimit_only_its_own), 0);
        assert_int_equal(in_sandbox(probe_stat_only_open_descriptors), 0);
}

static void test_sandbox_close_other_fds_keeps_exactly_the_listed_descriptors(void **state)
{
        int status;
        pid_t pid;

        fflush(stdout);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int dir = open("/", O_RDONLY | O_DIRECTORY), a = dup(1), b = dup(1), c = dup(1);
                int keep[] = { 0, 1, 2, b, -1 };

                if (dir < 0 || a < 0 || b < 0 || c < 0)
                        _exit(10);
                if (sandbox_close_other_fds(keep, sizeof(keep) / sizeof(keep[0])) < 0)
                        _exit(11);
                /* b and stdio stay; the directory and the others are gone. */
                if (fcntl(b, F_GETFD) < 0 || fcntl(1, F_GETFD) < 0)
                        _exit(12);
                if (fcntl(dir, F_GETFD) == 0 || errno != EBADF || fcntl(a, F_GETFD) == 0 ||
                    fcntl(c, F_GETFD) == 0)
                        _exit(13);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_sandbox_kills_the_process_on_execve(void **state)
{
        assert_int_equal(in_sandbox(probe_execve), -SIGSYS);
}

static void test_sandbox_kills_the_process_on_ptrace(void **state)
{
        assert_int_equal(in_sandbox(probe_ptrace), -SIGSYS);
}

static void test_sandbox_kills_the_process_on_fork(void **state)
{
        assert_int_equal(in_sandbox(probe_fork), -SIGSYS);
}

static void test_sandbox_refuses_to_open_a_secret_file(void **state)
{
        char path[512];
        FILE *f;

        (void) snprintf(path, sizeof(path), "%s/master-secret.json", test_tmpdir());
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("{\"key\": \"secret\"}", f);
        fclose(f);
        assert_int_equal(setenv("SANDBOX_TEST_FILE", path, 1), 0);
        /* The positive control: outside the sandbox the file opens. */
        assert_int_equal(probe_open(), 1);
        assert_int_equal(in_sandbox(probe_open), 0);
        assert_int_equal(in_sandbox(probe_create), 0);
        assert_int_equal(in_sandbox(probe_proc_self), 0);
}

static void test_sandbox_keeps_threads_and_open_descriptors_working(void **state)
{
        assert_int_equal(in_sandbox(probe_nothing), 0);
        assert_int_equal(in_sandbox(probe_threads_and_io), 0);
}

static void test_sandbox_leaves_no_capability(void **state)
{
        int p[2], status;
        char line[4096];
        pid_t pid;

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c;
                if (sandbox_drop_capabilities() < 0)
                        _exit(100);
                (void) close(p[1]);
                /* held until the parent has looked */
                _exit(read(p[0], &c, 1) >= 0 ? 0 : 1);
        }
        (void) close(p[0]);
        /* Wait until the child is past the drop: its bounding set is empty. */
        for (int i = 0; i < 200; i++) {
                char path[64];
                FILE *f;
                bool empty = false;

                (void) snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
                f = fopen(path, "re");
                assert_non_null(f);
                while (fgets(line, sizeof(line), f))
                        if (strncmp(line, "CapBnd:", 7) == 0)
                                empty = strtoull(line + 7, NULL, 16) == 0;
                fclose(f);
                if (empty)
                        break;
                usleep(10000);
        }
        {
                char path[64];
                FILE *f;
                unsigned long long eff = 1, prm = 1, bnd = 1;
                int nnp = 0;

                (void) snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
                f = fopen(path, "re");
                assert_non_null(f);
                while (fgets(line, sizeof(line), f)) {
                        (void) sscanf(line, "CapEff: %llx", &eff);
                        (void) sscanf(line, "CapPrm: %llx", &prm);
                        (void) sscanf(line, "CapBnd: %llx", &bnd);
                        (void) sscanf(line, "NoNewPrivs: %d", &nnp);
                }
                fclose(f);
                assert_true(eff == 0 && prm == 0 && bnd == 0);
                assert_int_equal(nnp, 1);
        }
        (void) close(p[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* --- the unprivileged uid and the empty root (sandbox_drop_privileges) --- */

static char root_only_file[512], root_only_sock[108], empty_root[512];

/* A probe run after sandbox_drop_privileges(root, 65534, 65534) in a child: its exit status. */
static int as_nobody(const char *root, Probe probe)
{
        int status;
        pid_t pid;

        fflush(stdout);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
                    sandbox_drop_privileges(root, 65534, 65534) < 0)
                        _exit(100);
                _exit(probe());
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static int open_errno(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                (void) close(fd);
                return 0;
        }
        return errno;
}

static int connect_errno(const char *path)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

        if (fd < 0)
                return -1;
        (void) snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
        r = connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 ? errno : 0;
        (void) close(fd);
        return r;
}

/* The uid change clears the parent-death signal; sandbox_drop_privileges() keeps it. */
static int probe_pdeathsig_kept(void)
{
        int sig = 0;

        return prctl(PR_GET_PDEATHSIG, &sig) == 0 && sig == SIGKILL ? 0 : 1;
}

static int probe_identity(void)
{
        uid_t r, e, s;
        gid_t gr, ge, gs;

        if (getresuid(&r, &e, &s) < 0 || r != 65534 || e != 65534 || s != 65534)
                return 1;
        if (getresgid(&gr, &ge, &gs) < 0 || gr != 65534 || ge != 65534 || gs != 65534)
                return 2;
        if (getgroups(0, NULL) != 0)
                return 3;
        if (setuid(0) == 0 || setgid(0) == 0)
                return 4;
        return prctl(PR_GET_DUMPABLE) == 0 ? 0 : 5;
}

/* The uid alone (root "/"): a root-only file and a root-only socket refuse it. */
static int probe_uid_alone(void)
{
        if (open_errno(root_only_file) != EACCES)
                return 1;
        return connect_errno(root_only_sock) == EACCES ? 0 : 2;
}

/* In the empty root, no path of the machine exists. */
static int probe_empty_root(void)
{
        DIR *d;
        struct dirent *de;
        int n = 0;

        if (open_errno(root_only_file) != ENOENT || connect_errno(root_only_sock) != ENOENT)
                return 1;
        if (open_errno("/etc/passwd") != ENOENT || open_errno("/proc/self/status") != ENOENT)
                return 2;
        d = opendir("/");
        if (!d)
                return 3;
        while ((de = readdir(d)))
                n++;
        (void) closedir(d);
        return n == 2 ? 0 : 4; /* "." and ".." */
}

static int pipe_fds[2];

/* A descriptor opened before the drop keeps working. */
static int probe_open_descriptor(void)
{
        return write(pipe_fds[1], "y", 1) == 1 ? 0 : 1;
}

static void make_root_only_file_and_socket(void)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        FILE *f;
        int fd;

        (void) snprintf(root_only_file, sizeof(root_only_file), "%s/root-only", test_tmpdir());
        f = fopen(root_only_file, "we");
        assert_non_null(f);
        fputs("secret", f);
        fclose(f);
        assert_int_equal(chmod(root_only_file, 0600), 0);
        (void) snprintf(root_only_sock, sizeof(root_only_sock), "%s/r.sock", test_tmpdir());
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        (void) snprintf(a.sun_path, sizeof(a.sun_path), "%s", root_only_sock);
        (void) unlink(root_only_sock);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 8), 0); /* kept open for the test's life */
        assert_int_equal(chmod(root_only_sock, 0700), 0);
        /* The positive control: reachable before the drop. */
        assert_int_equal(open_errno(root_only_file), 0);
        assert_int_equal(connect_errno(root_only_sock), 0);
        (void) snprintf(empty_root, sizeof(empty_root), "%s/empty", test_tmpdir());
        assert_int_equal(sandbox_prepare_empty_root(empty_root), 0);
}

static void test_sandbox_drop_privileges_sets_the_uid_gid_and_clears_groups(void **state)
{
        if (geteuid() != 0)
                skip();
        make_root_only_file_and_socket();
        assert_int_equal(as_nobody(empty_root, probe_identity), 0);
        assert_int_equal(as_nobody(empty_root, probe_pdeathsig_kept), 0);
}

static void test_sandbox_uid_alone_keeps_a_root_only_file_and_socket_closed(void **state)
{
        if (geteuid() != 0)
                skip();
        make_root_only_file_and_socket();
        assert_int_equal(as_nobody("/", probe_uid_alone), 0);
}

static void test_sandbox_empty_root_hides_every_path_and_keeps_descriptors(void **state)
{
        char c = 0;

        if (geteuid() != 0)
                skip();
        make_root_only_file_and_socket();
        assert_int_equal(as_nobody(empty_root, probe_empty_root), 0);
        assert_int_equal(pipe(pipe_fds), 0);
        assert_int_equal(as_nobody(empty_root, probe_open_descriptor), 0);
        assert_int_equal(read(pipe_fds[0], &c, 1), 1);
        assert_int_equal(c, 'y');
        (void) close(pipe_fds[0]);
        (void) close(pipe_fds[1]);
}

static void test_sandbox_refuses_root_as_the_unprivileged_identity(void **state)
{
        assert_int_equal(sandbox_drop_privileges("/", 0, 65534), -EINVAL);
        assert_int_equal(sandbox_drop_privileges("/", 65534, 0), -EINVAL);
        assert_int_equal(sandbox_drop_privileges(NULL, 65534, 65534), -EINVAL);
}

static void test_sandbox_empty_root_must_be_empty_and_root_only(void **state)
{
        char dir[512], file[600];
        FILE *f;

        if (geteuid() != 0)
                skip();
        (void) snprintf(dir, sizeof(dir), "%s/not-empty", test_tmpdir());
        assert_int_equal(sandbox_prepare_empty_root(dir), 0); /* made, empty */
        (void) snprintf(file, sizeof(file), "%s/x", dir);
        f = fopen(file, "we");
        assert_non_null(f);
        fclose(f);
        assert_int_equal(sandbox_prepare_empty_root(dir), -ENOTEMPTY);
        assert_int_equal(unlink(file), 0);
        assert_int_equal(chmod(dir, 0775), 0);
        assert_int_equal(sandbox_prepare_empty_root(dir), -EPERM);
        assert_int_equal(chmod(dir, 0755), 0);
        assert_int_equal(chown(dir, 65534, 0), 0);
        assert_int_equal(sandbox_prepare_empty_root(dir), -EPERM);
        assert_int_equal(chown(dir, 0, 0), 0);
        assert_int_equal(sandbox_prepare_empty_root(dir), 0);
        assert_int_equal(sandbox_prepare_empty_root("relative"), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sandbox_kills_the_process_on_execve),
                cmocka_unit_test(test_sandbox_kills_the_process_on_ptrace),
                cmocka_unit_test(test_sandbox_kills_the_process_on_fork),
                cmocka_unit_test(test_sandbox_kills_the_process_on_io_uring),
                cmocka_unit_test(test_sandbox_refuses_new_sockets_and_connects),
                cmocka_unit_test(test_sandbox_sets_only_tcp_nodelay_on_a_socket),
                cmocka_unit_test(test_sandbox_kills_the_process_on_a_call_not_on_the_allow_list),
                cmocka_unit_test(test_sandbox_allows_fcntl_and_ioctl_only_with_the_listed_commands),
                cmocka_unit_test(test_sandbox_refuses_writable_executable_memory_and_dumpable),
                cmocka_unit_test(
                        test_sandbox_changes_only_its_own_limits_and_stats_only_open_descriptors),
                cmocka_unit_test(test_sandbox_close_other_fds_keeps_exactly_the_listed_descriptors),
                cmocka_unit_test(
                        test_sandbox_refuses_signals_to_other_processes_binds_and_pdeathsig),
                cmocka_unit_test(test_sandbox_refuses_to_open_a_secret_file),
                cmocka_unit_test(test_sandbox_keeps_threads_and_open_descriptors_working),
                cmocka_unit_test(test_sandbox_leaves_no_capability),
                cmocka_unit_test(test_sandbox_drop_privileges_sets_the_uid_gid_and_clears_groups),
                cmocka_unit_test(test_sandbox_uid_alone_keeps_a_root_only_file_and_socket_closed),
                cmocka_unit_test(test_sandbox_empty_root_hides_every_path_and_keeps_descriptors),
                cmocka_unit_test(test_sandbox_refuses_root_as_the_unprivileged_identity),
                cmocka_unit_test(test_sandbox_empty_root_must_be_empty_and_root_only),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
