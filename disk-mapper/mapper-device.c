/* SPDX-License-Identifier: Apache-2.0 */
/* Finding the state disk, and refusing the ones it must never be. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cloister/fileio.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "mapper.h"

#define UEVENT_MAX 4096

static void closedirp(DIR **d)
{
        if (*d)
                (void) closedir(*d);
}

/* The value of KEY= in a sysfs uevent file, or "" if absent. */
static void uevent_value(const char *uevent, const char *key, char *buf, size_t size)
{
        size_t klen = strlen(key);
        const char *p = uevent;

        buf[0] = '\0';
        while (p && *p) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t) (eol - p) : strlen(p);
                if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        (void) snprintf(buf, size, "%.*s", (int) (len - klen - 1), p + klen + 1);
                        return;
                }
                p = eol ? eol + 1 : NULL;
        }
}

static int find_by_partlabel(const char *label, char *ret, size_t size)
{
        _cleanup_(closedirp) DIR *d = opendir("/sys/class/block");
        struct dirent *de;
        int found = 0;

        if (!d)
                return log_error_errno(-errno, "Cannot list /sys/class/block: %m");
        while ((de = readdir(d))) {
                char path[PATH_MAX], name[256], dev[256];
                _cleanup_(freep) uint8_t *text = NULL;
                size_t n;

                if (de->d_name[0] == '.')
                        continue;
                (void) snprintf(path, sizeof(path), "/sys/class/block/%s/uevent", de->d_name);
                if (read_full_file(path, UEVENT_MAX, &text, &n) < 0)
                        continue;
                uevent_value((const char *) text, "PARTNAME", name, sizeof(name));
                if (strcmp(name, label) != 0)
                        continue;
                uevent_value((const char *) text, "DEVNAME", dev, sizeof(dev));
                if (found++)
                        return log_error_errno(-ENOTUNIQ,
                                               "More than one partition is named '%s': refusing "
                                               "to guess; give --device.",
                                               label);
                (void) snprintf(ret, size, "/dev/%s", dev);
        }
        if (!found)
                return log_error_errno(-ENODEV,
                                       "No partition is named '%s' (GPT partition name); give "
                                       "--device or check the disk is attached.",
                                       label);
        return 0;
}

#define DISKS_MAX 16

/* The sysfs directory of a block device. */
static int sysfs_dir(dev_t dev, char *ret, size_t size)
{
        char path[64];

        (void) snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev), minor(dev));
        if (!realpath(path, ret))
                return -errno;
        (void) size;
        return 0;
}

/* "major:minor" of the whole disk under a sysfs block directory (the parent of a partition). */
static int disk_of_dir(const char *dir, char *ret, size_t size)
{
        char path[PATH_MAX + 16], real[PATH_MAX];
        _cleanup_(freep) uint8_t *text = NULL;
        size_t n;

        (void) snprintf(real, sizeof(real), "%s", dir);
        (void) snprintf(path, sizeof(path), "%s/partition", real);
        if (access(path, F_OK) == 0) {
                char *slash = strrchr(real, '/');
                if (slash)
                        *slash = '\0';
        }
        (void) snprintf(path, sizeof(path), "%s/dev", real);
        if (read_full_file(path, 4096, &text, &n) < 0)
                return -ENOENT;
        (void) snprintf(ret, size, "%.*s", (int) strcspn((const char *) text, "\n"), text);
        return 0;
}

/* The physical disks under a block device: through device-mapper/md "slaves" (dm-verity,
 * dm-crypt, LVM) down to whole disks. */
static int underlying_disks(const char *dir, char disks[][32], size_t *n, unsigned depth)
{
        char path[PATH_MAX + 16];
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        bool any = false;

        if (depth > 8)
                return -ELOOP;
        (void) snprintf(path, sizeof(path), "%s/slaves", dir);
        d = opendir(path);
        while (d && (de = readdir(d))) {
                char sub[PATH_MAX + 300], real[PATH_MAX];
                if (de->d_name[0] == '.')
                        continue;
                (void) snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                if (!realpath(sub, real))
                        return -errno;
                any = true;
                int r = underlying_disks(real, disks, n, depth + 1);
                if (r < 0)
                        return r;
        }
        if (any)
                return 0;
        if (*n >= DISKS_MAX)
                return -E2BIG;
        return disk_of_dir(dir, disks[(*n)++], 32);
}

/* Held by device-mapper or md (holders/): an active mapping, LVM, RAID. */
static bool held(const char *dir)
{
        _cleanup_(closedirp) DIR *h = NULL;
        char path[PATH_MAX + 16];
        struct dirent *de;

        (void) snprintf(path, sizeof(path), "%s/holders", dir);
        h = opendir(path);
        while (h && (de = readdir(h)))
                if (de->d_name[0] != '.')
                        return true;
        return false;
}

/* Mounted itself, or a partition of it mounted. When this cannot be told: "mounted". */
static bool mounted(dev_t dev)
{
        _cleanup_(freep) uint8_t *text = NULL;
        char want[32];
        size_t n;

        if (read_full_file("/proc/self/mountinfo", 4U * 1024U * 1024U, &text, &n) < 0)
                return true;
        (void) snprintf(want, sizeof(want), " %u:", major(dev));
        for (char *line = (char *) text; line && *line;) {
                char *eol = strchr(line, '\n'), *p = line;
                unsigned ma, mi;
                if (eol)
                        *eol = '\0';
                /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...": the device or one of its partitions
                 * (same major; partitions follow the disk's minor). */
                p = strchr(p, ' ');
                p = p ? strchr(p + 1, ' ') : NULL;
                if (p && sscanf(p, " %u:%u ", &ma, &mi) == 2 && ma == major(dev)) {
                        char part[PATH_MAX + 64];
                        if (mi == minor(dev))
                                return true;
                        (void) snprintf(part, sizeof(part), "/sys/dev/block/%u:%u/partition", ma,
                                        mi);
                        char parent[PATH_MAX], self[PATH_MAX], link[64];
                        (void) snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", ma, mi);
                        if (access(part, F_OK) == 0 && realpath(link, parent)) {
                                char *slash = strrchr(parent, '/');
                                if (slash)
                                        *slash = '\0';
                                if (sysfs_dir(dev, self, sizeof(self)) == 0 &&
                                    strcmp(parent, self) == 0)
                                        return true;
                        }
                }
                line = eol ? eol + 1 : NULL;
        }
        return false;
}

int mapper_find_device(const char *path, const char *partlabel, MapperChecks checks, char *ret,
                       size_t size)
{
        static const char *const system_paths[] = { "/", "/usr", "/boot", "/boot/efi" };
        char dir[PATH_MAX], mine[DISKS_MAX][32];
        size_t n_mine = 0;
        struct stat st, sys;
        int r;

        if (path && partlabel)
                return log_error_errno(-EINVAL, "Give --device or --partlabel, not both.");
        if (!path && !partlabel)
                return log_error_errno(-EINVAL,
                                       "No state disk given: use --device PATH or --partlabel "
                                       "LABEL.");
        if (partlabel) {
                r = find_by_partlabel(partlabel, ret, size);
                if (r < 0)
                        return r;
        } else
                (void) snprintf(ret, size, "%s", path);

        if (stat(ret, &st) < 0)
                return log_error_errno(-errno, "%s: %m", ret);
        if (S_ISREG(st.st_mode))
                return 0; /* an image file (tests, local clusters) */
        if (!S_ISBLK(st.st_mode))
                return log_error_errno(-ENOTBLK, "%s is neither a block device nor a file.", ret);
        if (checks == MAPPER_READ_ONLY)
                return 0; /* reading a header harms nothing */
        if (sysfs_dir(st.st_rdev, dir, sizeof(dir)) < 0 ||
            underlying_disks(dir, mine, &n_mine, 0) < 0)
                return log_error_errno(-ENODEV,
                                       "%s: cannot tell from sysfs which disk it is on: refusing "
                                       "(a state disk must be recognisably its own disk).",
                                       ret);
        if (mounted(st.st_rdev))
                return log_error_errno(-EBUSY,
                                       "%s is mounted (or a partition of it is): refusing to use "
                                       "a device that is in use.",
                                       ret);
        if (checks == MAPPER_EXCLUSIVE && held(dir))
                return log_error_errno(-EBUSY,
                                       "%s is held by device-mapper or md (an active mapping, "
                                       "LVM, RAID): refusing to format it.",
                                       ret);
        for (size_t i = 0; i < ELEMENTSOF(system_paths); i++) {
                char sysdir[PATH_MAX], theirs[DISKS_MAX][32];
                size_t n_theirs = 0;

                if (stat(system_paths[i], &sys) < 0 || major(sys.st_dev) == 0)
                        continue; /* absent, or a virtual file system (tmpfs, initramfs) */
                if (sysfs_dir(sys.st_dev, sysdir, sizeof(sysdir)) < 0 ||
                    underlying_disks(sysdir, theirs, &n_theirs, 0) < 0)
                        continue; /* not a block device (overlay, network file system) */
                for (size_t a = 0; a < n_mine; a++)
                        for (size_t b = 0; b < n_theirs; b++)
                                if (strcmp(mine[a], theirs[b]) == 0)
                                        return log_error_errno(
                                                -EPERM,
                                                "%s is on the boot disk (which holds %s): "
                                                "refusing; the state disk must be its own disk.",
                                                ret, system_paths[i]);
        }
        return 0;
}
