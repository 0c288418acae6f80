/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Runs external programs (kubeadm, cryptsetup, ...) with an argument vector and explicit file
 * descriptors, never through a shell. */

#include <stddef.h>

/* Runs argv[0] (looked up in $PATH) with argv, stdin from /dev/null, stdout and stderr to the
 * log file path (or inherited if NULL), and waits. Returns its exit status (>= 0) or -errno if
 * it could not be started or was killed by a signal (-EINTR). */
int spawn_wait(char *const argv[], const char *output_log);

/* As spawn_wait(), with stdout and stderr each to its own file (or inherited if NULL). */
int spawn_wait_output(char *const argv[], const char *stdout_path, const char *stderr_path);

/* As spawn_wait_output(), with the size bytes at input on the child's stdin (through a pipe,
 * then end of file) instead of /dev/null: how a key reaches a program without touching its
 * command line, its environment or a file. The caller owns and wipes input; nothing is copied
 * (the pipe's kernel buffer is freed once the child has read it). Bytes the child does not read
 * are dropped: its exit status decides. A child that exits early never raises SIGPIPE in the
 * caller. */
int spawn_wait_input(char *const argv[], const void *input, size_t size, const char *stdout_path,
                     const char *stderr_path);
