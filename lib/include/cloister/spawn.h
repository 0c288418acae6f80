/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Runs external programs (kubeadm, cryptsetup, ...) with an argument vector and explicit file
 * descriptors, never through a shell. */

/* Runs argv[0] (looked up in $PATH) with argv, stdin from /dev/null, stdout and stderr to the
 * log file path (or inherited if NULL), and waits. Returns its exit status (>= 0) or -errno if
 * it could not be started or was killed by a signal (-EINTR). */
int spawn_wait(char *const argv[], const char *output_log);

/* As spawn_wait(), with stdout and stderr each to its own file (or inherited if NULL). */
int spawn_wait_output(char *const argv[], const char *stdout_path, const char *stderr_path);
