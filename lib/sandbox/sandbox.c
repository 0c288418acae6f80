/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/sandbox.h"

/* no_new_privs, the bounding and ambient sets emptied. The bounding set keeps the effective
 * capabilities (the chroot and the uid change below still need them). */
static int drop_bounding_set(void)
{
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        /* Dropping needs CAP_SETPCAP, which goes last (the loop runs upwards, CAP_SETPCAP = 8 is
         * dropped from the bounding set only, not from the effective set). */
        for (int cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
                        return -errno;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        return 0;
}

/* The permitted, effective and inheritable sets cleared, and verified so. */
static int clear_capabilities(void)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2] = {};

        if (syscall(SYS_capset, &h, data) < 0)
                return -errno;
        /* Verify: a capability still effective means the drop did not take. */
        if (syscall(SYS_capget, &h, data) < 0)
                return -errno;
        if (data[0].effective || data[0].permitted || data[1].effective || data[1].permitted)
                return -EPERM;
        return 0;
}

int sandbox_drop_capabilities(void)
{
        int r = drop_bounding_set();

        return r < 0 ? r : clear_capabilities();
}

int sandbox_prepare_empty_root(const char *path)
{
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;
        DIR *dir;
        struct dirent *de;
        bool empty = true;

        if (!path || path[0] != '/')
                return -EINVAL;
        if (mkdir(path, 0555) < 0 && errno != EEXIST)
                return -errno;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* Only root may ever put anything there: owned by root, writable by no one else. */
        if (st.st_uid != 0 || (st.st_mode & 0022))
                return -EPERM;
        dir = fdopendir(fd);
        if (!dir)
                return -errno;
        fd = -EBADF; /* the DIR owns it now */
        while ((de = readdir(dir)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        empty = false;
        (void) closedir(dir);
        return empty ? 0 : -ENOTEMPTY;
}

int sandbox_drop_privileges(const char *root, uid_t uid, gid_t gid)
{
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        int pdeathsig = 0, r;

        if (!root || uid == 0 || gid == 0)
                return -EINVAL;
        /* A change of uid or gid clears the parent-death signal (prctl(2)): kept here. */
        if (prctl(PR_GET_PDEATHSIG, &pdeathsig, 0, 0, 0) < 0)
                return -errno;
        r = drop_bounding_set();
        if (r < 0)
                return r;
        if (chroot(root) < 0 || chdir("/") < 0)
                return -errno;
        /* Supplementary groups first (it needs CAP_SETGID), then the gid, the uid last. */
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                return -errno;
        /* The uid change cleared the capabilities; make sure, and verify the ids took. */
        r = clear_capabilities();
        if (r < 0)
                return r;
        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
                return -errno;
        if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid ||
            getgroups(0, NULL) != 0)
                return -EPERM;
        if (pdeathsig != 0 && prctl(PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0) < 0)
                return -errno;
        /* No way back to root. */
        if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0)
                return -EPERM;
        /* Not readable through /proc nor traceable by other processes of this uid. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(scmp_filter_ctx, seccomp_release);

/* What is not named below kills the process (a build may log instead, to find a missing call:
 * -DSANDBOX_UNLISTED_ACTION=SCMP_ACT_LOG, never a product build). */
#ifndef SANDBOX_UNLISTED_ACTION
#define SANDBOX_UNLISTED_ACTION SCMP_ACT_KILL_PROCESS
#endif

/* The calls a network process makes once it serves: an event loop and worker threads doing
 * TLS and HTTP on descriptors opened before the filter, memory, time, randomness, signals of its
 * own. Found by running the join service's tests (join, rejoin, members, audit, attacks), under
 * AddressSanitizer too, with the unlisted calls logged. Calls whose arguments matter (clone,
 * tgkill, prctl, ioctl, fcntl, mmap, mprotect) are allowed with conditions below, not here. */
static const char *const allowed[] = {
        /* I/O on open descriptors */
        "read",
        "readv",
        "pread64",
        "write",
        "writev",
        "pwrite64",
        "recvfrom",
        "recvmsg",
        "recvmmsg",
        "sendto",
        "sendmsg",
        "sendmmsg",
        "close",
        "shutdown",
        "accept",
        "accept4",
        "getsockname",
        "getpeername",
        "getsockopt",
        "lseek",
        "fstat",
        "dup",
        "dup3",
        "pipe2",
        /* waiting: the event loop, worker threads' queues, timers */
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_create1",
        "epoll_ctl",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "eventfd2",
        "timerfd_create",
        "timerfd_settime",
        "timerfd_gettime",
        "futex",
        "futex_waitv",
        "set_robust_list",
        "get_robust_list",
        "rseq",
        "set_tid_address",
        "sched_yield",
        "sched_getaffinity",
        "nanosleep",
        "clock_nanosleep",
        /* memory */
        "brk",
        "munmap",
        "mremap",
        "madvise",
        "mincore",
        "mlock", /* secrets in transit (a repeated init's master secret) stay out of swap */
        "munlock",
        /* time, randomness, identity */
        "clock_gettime",
        "clock_getres",
        "gettimeofday",
        "time",
        "getrandom",
        "getpid",
        "gettid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getresuid",
        "getresgid",
        "getgroups",
        "getrlimit",
        "getrusage",
        "uname",
        "sysinfo",
        /* signals of its own */
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "rt_sigtimedwait",
        "sigaltstack",
        "restart_syscall",
        /* ending a thread or the process */
        "exit",
        "exit_group",
};

/* Killed even if a later change allowed everything else: what only an attacker calls. */
static const char *const killed[] = {
        "execve",
        "execveat",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "setns",
        "unshare",
        "bpf",
        "keyctl",
        "add_key",
        "request_key",
        "perf_event_open",
        "userfaultfd",
        "fork",
        "vfork",
        "personality",
        "reboot",
        "swapon",
        "swapoff",
        "iopl",
        "ioperm",
        "open_by_handle_at",
        "name_to_handle_at",
        "pidfd_getfd",
        "kcmp",
        "process_madvise",
        /* io_uring performs opens, reads and connects of its own that the rules on the plain
         * calls never see. */
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        /* The new mount API. */
        "open_tree",
        "move_mount",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        "acct",
        "quotactl",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        /* Its identity is fixed (sandbox_drop_privileges()). */
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "setgroups",
        "setfsuid",
        "setfsgid",
        "capset",
};

/* Failed with EACCES: what a library may try in passing (and then does without), so that the
 * process goes on: opening, creating, renaming or removing a file (every file it needs is open
 * already or comes from its monitor), and new sockets (the journal's, when logging: the line
 * goes to stderr instead; it has no business connecting anywhere). */
static const char *const refused[] = {
        "open",
        "openat",
        "openat2",
        "creat",
        "rename",
        "renameat",
        "renameat2",
        "unlink",
        "unlinkat",
        "mkdir",
        "mkdirat",
        "link",
        "linkat",
        "symlink",
        "symlinkat",
        "truncate",
        "chmod",
        "fchmodat",
        "chown",
        "fchownat",
        "lchown",
        "mknod",
        "mknodat",
        /* Metadata of files by path, and socket files created by bind. */
        "utime",
        "utimes",
        "utimensat",
        "futimesat",
        "setxattr",
        "lsetxattr",
        "fsetxattr",
        "removexattr",
        "lremovexattr",
        "fremovexattr",
        "bind",
        "socket",
        "socketpair",
        "connect",
        "listen",
        "readlink",
        "readlinkat",
        "access",
        "faccessat",
        "faccessat2",
        "stat",
        "lstat",
};

static int add_named(scmp_filter_ctx ctx, const char *const *names, size_t n, uint32_t action)
{
        /* libseccomp takes no rule whose action is the default one: those are covered. */
        if (action == SANDBOX_UNLISTED_ACTION)
                return 0;
        for (size_t i = 0; i < n; i++) {
                int nr = seccomp_syscall_resolve_name(names[i]), r;

                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                r = seccomp_rule_add(ctx, action, nr, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *) a, y = *(const int *) b;
        return (x > y) - (x < y);
}

int sandbox_close_other_fds(const int *keep, size_t n)
{
        int sorted[64];
        unsigned first = 0;

        if (n > ELEMENTSOF(sorted))
                return -E2BIG;
        memcpy(sorted, keep, n * sizeof(int));
        qsort(sorted, n, sizeof(int), cmp_int);
        for (size_t i = 0; i <= n; i++) {
                unsigned next = i < n ? (unsigned) sorted[i] : ~0U;

                if (i < n && sorted[i] < 0)
                        continue;
                if (next > first && syscall(SYS_close_range, first, next - 1, 0) < 0)
                        return -errno;
                if (i < n)
                        first = next + 1;
        }
        return 0;
}

int sandbox_network_filter(void)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        /* A call both allowed and killed is a mistake in the lists: no filter at all. */
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                for (size_t j = 0; j < ELEMENTSOF(killed); j++)
                        if (strcmp(allowed[i], killed[j]) == 0)
                                return -EINVAL;
        ctx = seccomp_init(SANDBOX_UNLISTED_ACTION);
        if (!ctx)
                return -ENOMEM;
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r >= 0)
                r = add_named(ctx, allowed, ELEMENTSOF(allowed), SCMP_ACT_ALLOW);
        if (r >= 0)
                r = add_named(ctx, killed, ELEMENTSOF(killed), SCMP_ACT_KILL_PROCESS);
        if (r >= 0)
                r = add_named(ctx, refused, ELEMENTSOF(refused), SCMP_ACT_ERRNO(EACCES));
        if (r < 0)
                return r;
        /* Threads only: clone must carry CLONE_THREAD; a new process is killed. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
        if (r < 0)
                return r;
        if (SANDBOX_UNLISTED_ACTION != SCMP_ACT_KILL_PROCESS) {
                r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
                if (r < 0)
                        return r;
        }
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
                return r;
        /* Memory: never writable and executable at once (no code of the attacker's making). */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE, 0));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(mprotect), 1,
                                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(mmap), 1,
                                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC,
                                             PROT_WRITE | PROT_EXEC));
        if (r < 0)
                return r;
        /* Descriptor flags only (F_GETFL/F_SETFL/F_GETFD/F_SETFD, libevent's non-blocking
         * sockets); no duplicating past the limits, no locks, no leases. */
        for (size_t i = 0; i < 4; i++) {
                static const int cmds[] = { F_GETFL, F_SETFL, F_GETFD, F_SETFD };
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                                     SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t) cmds[i]));
                if (r < 0)
                        return r;
        }
        /* ioctl: the bytes waiting on a socket (libevent), and whether stdio is a terminal. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t) FIONREAD));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 1,
                                     SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t) TCGETS));
        if (r < 0)
                return r;
        /* Socket options: TCP_NODELAY only (what rpc-server.c sets, on the listening socket
         * before the filter; accepted sockets inherit it). Nothing else is set once it serves:
         * any other level or option fails with EPERM (TCP_ULP "tls" would hand the connection's
         * records to the kernel, SO_* could change buffers, marks or binding). */
        const uint32_t other_sockopt = SCMP_ACT_ERRNO(EPERM);
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
                             SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t) IPPROTO_TCP),
                             SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t) TCP_NODELAY));
        if (r >= 0)
                r = seccomp_rule_add(ctx, other_sockopt, SCMP_SYS(setsockopt), 1,
                                     SCMP_A1(SCMP_CMP_NE, (scmp_datum_t) IPPROTO_TCP));
        if (r >= 0)
                r = seccomp_rule_add(ctx, other_sockopt, SCMP_SYS(setsockopt), 1,
                                     SCMP_A2(SCMP_CMP_NE, (scmp_datum_t) TCP_NODELAY));
        if (r < 0)
                return r;
        /* Limits: its own only (pid 0); another process of the same uid is not its to change. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A0(SCMP_CMP_EQ, 0));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prlimit64), 1,
                                     SCMP_A0(SCMP_CMP_NE, 0));
        /* Metadata of open descriptors only: glibc's fstat() is newfstatat(fd, "", AT_EMPTY_PATH);
         * without the flag a path is looked up, and fails. (With it, a path is still looked up
         * relative to the descriptor: no directory descriptor is open, sandbox_close_other_fds(),
         * and the root is empty.) */
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                                     SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(newfstatat), 1,
                                     SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, 0));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(statx), 1,
                                     SCMP_A2(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(statx), 1,
                                     SCMP_A2(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, 0));
        if (r < 0)
                return r;
        /* Signals to other processes (kill(-1) as its uid would reach every process of that
         * uid); its own threads (tgkill with its own pid) keep working. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 0);
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t) getpid()));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(tgkill), 1,
                                     SCMP_A0(SCMP_CMP_NE, (scmp_datum_t) getpid()));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(tkill), 0);
        if (r < 0)
                return r;
        /* prctl: reading its state and naming threads; the death signal that ties it to the
         * monitor, and dumpability, stay as they are; the rest fails. */
        for (size_t i = 0; i < 5; i++) {
                static const int opts[] = { PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE,
                                            PR_GET_NO_NEW_PRIVS, PR_CAPBSET_READ };
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t) opts[i]));
                if (r < 0)
                        return r;
        }
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1,
                             SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG));
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1,
                                     SCMP_A0(SCMP_CMP_EQ, PR_SET_DUMPABLE));
        if (r < 0)
                return r;
        r = seccomp_load(ctx);
        if (r < 0)
                return r;
        return 0;
}

int sandbox_no_network(void)
{
        static const char *const network[] = { "socket", "socketpair", "connect" };
        static const char *const missing[] = { "io_uring_setup", "io_uring_enter",
                                               "io_uring_register" };
        const uint32_t refuse = SCMP_ACT_ERRNO(EACCES), missing_call = SCMP_ACT_ERRNO(ENOSYS);
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(network); i++) {
                int nr = seccomp_syscall_resolve_name(network[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = seccomp_rule_add(ctx, refuse, nr, 0);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(missing); i++) {
                int nr = seccomp_syscall_resolve_name(missing[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = seccomp_rule_add(ctx, missing_call, nr, 0);
                if (r < 0)
                        return r;
        }
        return seccomp_load(ctx);
}
