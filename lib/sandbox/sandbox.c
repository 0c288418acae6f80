/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
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
        int r;

        if (!root || uid == 0 || gid == 0)
                return -EINVAL;
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
        /* No way back to root. */
        if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0)
                return -EPERM;
        /* Not readable through /proc nor traceable by other processes of this uid. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
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
