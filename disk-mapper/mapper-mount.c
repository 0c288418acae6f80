/* SPDX-License-Identifier: Apache-2.0 */
/* The file system on the mapped state disk, and the writable paths bound from it. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/spawn.h"
#include "mapper.h"

#define EXT4_MAGIC_OFFSET 1080 /* superblock at 1024, s_magic at +56 */
#define EXT4_MAGIC        0xEF53
#define FS_LABEL          "cloister-state"

static int has_ext4(const char *dev, bool *ret)
{
        uint8_t m[2];
        int fd = open(dev, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = pread(fd, m, sizeof(m), EXT4_MAGIC_OFFSET);
        (void) close(fd);
        if (n != (ssize_t) sizeof(m))
                return n < 0 ? -errno : -EIO;
        *ret = (m[0] | (m[1] << 8)) == EXT4_MAGIC;
        return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];

        if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        return mkdir(buf, mode) < 0 && errno != EEXIST ? -errno : 0;
}

static int bind_one(const char *dir, const char *target)
{
        char src[PATH_MAX];
        struct stat st;
        int r;

        if (target[0] != '/' || strstr(target, ".."))
                return log_error_errno(-EINVAL, "--bind %s: give an absolute path without '..'.",
                                       target);
        (void) snprintf(src, sizeof(src), "%s%s", dir, target);
        if (stat(src, &st) < 0) {
                /* First use: seed from what the read-only root ships at target. */
                r = mkdir_p(src, 0755);
                if (r < 0)
                        return log_error_errno(r, "Cannot create %s: %m", src);
                if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
                        char from[PATH_MAX];
                        (void) snprintf(from, sizeof(from), "%s/.", target);
                        char *argv[] = { (char *) "cp", (char *) "-a", from, src, NULL };
                        r = spawn_wait(argv, NULL);
                        if (r != 0)
                                return log_error_errno(r < 0 ? r : -EIO, "Cannot seed %s from %s.",
                                                       src, target);
                }
        }
        r = mkdir_p(target, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create mount point %s: %m", target);
        if (mount(src, target, NULL, MS_BIND, NULL) < 0)
                return log_error_errno(-errno, "Cannot bind %s to %s: %m", src, target);
        log_info("disk-mapper: %s is now on the encrypted state disk", target);
        return 0;
}

int mapper_mount(const char *name, bool first_use, const char *dir, char *const *binds,
                 size_t n_binds)
{
        char dev[PATH_MAX];
        bool fs = false;
        int r;

        (void) snprintf(dev, sizeof(dev), "/dev/mapper/%s", name);
        r = has_ext4(dev, &fs);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %m", dev);
        if (!fs) {
                /* Never implicitly on a disk that may hold data: a missing file system on an
                 * initialized disk means damage or tampering, and a new one would erase the
                 * evidence and whatever is left. */
                if (!first_use)
                        return log_error_errno(-EUCLEAN,
                                               "%s holds no file system although the disk is "
                                               "initialized: refusing to create one (data may be "
                                               "damaged; inspect it, or 'reset' the disk to "
                                               "start over).",
                                               dev);
                char *argv[] = { (char *) "mkfs.ext4", (char *) "-q", (char *) "-L",
                                 (char *) FS_LABEL,    dev,           NULL };
                log_info("disk-mapper: creating the file system on %s (first use)", dev);
                r = spawn_wait(argv, NULL);
                if (r != 0)
                        return log_error_errno(r < 0 ? r : -EIO, "mkfs.ext4 %s failed.", dev);
        }
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", dir);
        if (mount(dev, dir, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0)
                return log_error_errno(-errno, "Cannot mount %s on %s: %m", dev, dir);
        for (size_t i = 0; i < n_binds; i++) {
                r = bind_one(dir, binds[i]);
                if (r < 0) {
                        (void) mapper_unmount(dir, binds, i);
                        return r;
                }
        }
        return 0;
}

int mapper_unmount(const char *dir, char *const *binds, size_t n_binds)
{
        int ret = 0;

        for (size_t i = n_binds; i > 0; i--)
                if (umount2(binds[i - 1], UMOUNT_NOFOLLOW) < 0 && errno != EINVAL &&
                    errno != ENOENT)
                        ret = log_error_errno(-errno, "Cannot unmount %s: %m", binds[i - 1]);
        if (dir && umount2(dir, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
                ret = log_error_errno(-errno, "Cannot unmount %s: %m", dir);
        return ret;
}
