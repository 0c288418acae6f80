/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sys/types.h>

/*
 * Confinement of a process that parses attacker bytes (the join service's network process,
 * docs/join.md "Privilege separation"). libseccomp is used here only.
 */

/* No capabilities, now or after an exec: the bounding and ambient sets emptied, the permitted,
 * effective and inheritable sets cleared, no_new_privs set. Capabilities are per thread: call it
 * before the process starts threads. */
int sandbox_drop_capabilities(void);

/* Makes path (absolute) an empty directory only root can write to (created 0555 if missing):
 * -EPERM if it is not owned by root or is writable by group or others, -ENOTEMPTY if it holds
 * anything. The root a confined process is shut in (sandbox_drop_privileges()). */
int sandbox_prepare_empty_root(const char *path);

/* What sandbox_drop_capabilities() does, and in between: chroot into root (an empty directory,
 * sandbox_prepare_empty_root()) and chdir to it, the supplementary groups cleared, the real,
 * effective and saved gid and uid set to gid and uid (neither may be 0: -EINVAL), each verified,
 * the way back to uid 0 verified closed, the process no longer dumpable (no other process of
 * that uid can read its memory or trace it), its parent-death signal kept (the uid change
 * clears it: the caller checks getppid() again after). Call it before the process starts
 * threads; descriptors open before it keep working. */
int sandbox_drop_privileges(const char *root, uid_t uid, gid_t gid);

/* Closes every descriptor of the process but the n in keep (any order; stdio is not kept unless
 * listed): a confined process must hold nothing it was not given on purpose (a directory
 * descriptor inherited from before the chroot would name files outside it). */
int sandbox_close_other_fds(const int *keep, size_t n);

/*
 * The seccomp filter of a network-facing process, on every thread (TSYNC): an allow-list. A call
 * it does not name kills the process (SIGSYS). Allowed: I/O on open descriptors, waiting (poll,
 * epoll, futex), memory (never writable and executable at once), time, randomness, its own
 * signals, threads (clone with CLONE_THREAD; clone3 fails with ENOSYS so that glibc uses clone,
 * whose flags the filter sees), fcntl and ioctl with listed commands only, a few prctl reads.
 * Fails with EACCES what a library might try in passing: opening, creating, renaming or removing
 * any file, new sockets, bind and connect (every file and socket the process needs is open
 * already; everything else comes from its monitor). Fails with EPERM: signals to other
 * processes, PR_SET_PDEATHSIG, PR_SET_DUMPABLE.
 */
int sandbox_network_filter(void);

/*
 * No network, for a process that must work offline (`cloister verify --bundle`): socket(),
 * socketpair() and connect() fail with EACCES from now on, on every thread (TSYNC), and io_uring
 * (which connects on its own) with ENOSYS; nothing else changes. Sets no_new_privs. What a bundle
 * verification needs is in the file it reads, so a library that tries to fetch anything fails
 * instead of reaching out.
 */
int sandbox_no_network(void);
