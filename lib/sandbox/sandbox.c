/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/sandbox.h"

int sandbox_drop_capabilities(void)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2] = {};

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        /* The bounding set: dropping needs CAP_SETPCAP, which goes last below. */
        for (int cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
                        return -errno;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        if (syscall(SYS_capset, &h, data) < 0)
                return -errno;
        /* Verify: a capability still effective means the drop did not take. */
        if (syscall(SYS_capget, &h, data) < 0)
                return -errno;
        if (data[0].effective || data[0].permitted || data[1].effective || data[1].permitted)
                return -EPERM;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(scmp_filter_ctx, seccomp_release);

int sandbox_network_filter(void)
{
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
                /* io_uring performs opens, reads and connects of its own that the rules on the
                 * plain calls never see. */
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
        };
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
        };
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(killed); i++) {
                int nr = seccomp_syscall_resolve_name(killed[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                int nr = seccomp_syscall_resolve_name(refused[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), nr, 0);
                if (r < 0)
                        return r;
        }
        /* Threads only: clone must carry CLONE_THREAD; a new process is killed. */
        r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
        if (r < 0)
                return r;
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
                return r;
        /* Signals to other processes (the process runs as root: kill(-1) would reach every
         * process of the node); its own threads (tgkill with its own pid) keep working. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 0);
        if (r < 0)
                return r;
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(tgkill), 1,
                             SCMP_A0(SCMP_CMP_NE, (scmp_datum_t) getpid()));
        if (r < 0)
                return r;
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(tkill), 0);
        if (r < 0)
                return r;
        /* The death signal that ties it to the monitor stays. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1,
                             SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG));
        if (r < 0)
                return r;
        r = seccomp_load(ctx);
        if (r < 0)
                return r;
        return 0;
}

int sandbox_no_network(void)
{
        static const char *const refused[] = { "socket", "socketpair", "connect" };
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
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                int nr = seccomp_syscall_resolve_name(refused[i]);
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
