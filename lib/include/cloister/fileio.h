/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Reads a whole file of at most max_size bytes. A larger file is refused with -EMSGSIZE before
 * it is read. The buffer gets one extra NUL byte (not counted in *ret_size) so text parsers can
 * use it directly. path "-" reads standard input.
 */
int read_full_file(const char *path, size_t max_size, uint8_t **ret, size_t *ret_size);

typedef enum WriteFileFlags {
        WRITE_FILE_EXCLUSIVE = 1 << 0, /* fail with -EEXIST if path exists */
        WRITE_FILE_SYNC = 1 << 1,      /* fsync file and directory */
} WriteFileFlags;

/*
 * Writes data to path through a temporary file in the same directory and rename(), so readers
 * see the old or the new content, never a mix. mode applies from creation on (no window with
 * wider permissions). With WRITE_FILE_EXCLUSIVE the final link is made with link(), which fails
 * if path exists, so an existing file is never replaced.
 */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
                      WriteFileFlags flags);
