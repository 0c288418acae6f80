/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define MAPPER_DEFAULT_NAME "cloister-state"
#define MAPPER_BINDS_MAX    16

typedef enum MapperChecks {
        MAPPER_READ_ONLY, /* status, check-header: nothing is refused */
        MAPPER_WRITE,     /* open, rekey, reset: not on the boot disk, not mounted */
        MAPPER_EXCLUSIVE, /* format, setup: also not held by device-mapper or md */
} MapperChecks;

/* The state disk: an explicit path, or the one partition whose GPT name is label (read from
 * sysfs, so it works without udev). For block devices, checks as above; the boot disk is the
 * one under /, /usr, /boot or /boot/efi, found through device-mapper layers (dm-verity). A
 * device whose disk sysfs cannot name is refused. ret gets the path. */
int mapper_find_device(const char *path, const char *partlabel, MapperChecks checks, char *ret,
                       size_t size);

/* After open: the file system on /dev/mapper/<name> is mounted at dir (created on first use
 * only, when the disk is still "new": an initialized disk without one is refused, never
 * re-created), then each path in binds is bind-mounted from dir/<path> (seeded once from the
 * read-only root's content). */
int mapper_mount(const char *name, bool first_use, const char *dir, char *const *binds,
                 size_t n_binds);
/* Undoes mapper_mount(): the binds in reverse order, then dir. Missing mounts are skipped. */
int mapper_unmount(const char *dir, char *const *binds, size_t n_binds);
