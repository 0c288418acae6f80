/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Confinement of a process that parses attacker bytes (the join service's network process,
 * docs/join.md "Privilege separation"). libseccomp is used here only.
 */

/* No capabilities, now or after an exec: the bounding and ambient sets emptied, the permitted,
 * effective and inheritable sets cleared, no_new_privs set. Capabilities are per thread: call it
 * before the process starts threads. */
int sandbox_drop_capabilities(void);

/*
 * The seccomp filter of a network-facing process, on every thread (TSYNC). Kills the process on
 * a syscall that only an attacker would make: execve/execveat, ptrace, process_vm_readv/writev,
 * fork (clone without CLONE_THREAD), module and kexec calls, mount/chroot/setns/unshare, bpf,
 * keyctl, perf_event_open, userfaultfd. Fails with EACCES what a library might try in passing:
 * opening, creating, renaming or removing any file (every file the process needs is open
 * already or comes from its monitor). clone3 fails with ENOSYS (so that threads are created
 * with clone, whose flags the filter can see). Sockets are not filtered: the swtpm TCTI connects
 * anew for every TPM command.
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
