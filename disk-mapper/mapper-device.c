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

/* The whole disk a block device belongs to, as "major:minor" of the disk. */
static int whole_disk(dev_t dev, char *ret, size_t size)
{
        char path[PATH_MAX + 16], real[PATH_MAX], buf[64];
        _cleanup_(freep) uint8_t *text = NULL;
        size_t n;

        (void) snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev), minor(dev));
        if (!realpath(path, real))
                return -errno;
        (void) snprintf(path, sizeof(path), "%s/partition", real);
        if (access(path, F_OK) == 0) {
                char *slash = strrchr(real, '/');
                if (slash)
                        *slash = '\0';
        }
        (void) snprintf(path, sizeof(path), "%s/dev", real);
        if (read_full_file(path, sizeof(buf), &text, &n) < 0)
                return -ENOENT;
        (void) snprintf(ret, size, "%.*s", (int) strcspn((const char *) text, "\n"), text);
        return 0;
}

/* Whether dev (or a partition on it) is mounted: /proc/self/mountinfo's third field. */
static bool is_mounted(dev_t dev)
{
        _cleanup_(freep) uint8_t *text = NULL;
        char want[32];
        size_t n;

        if (read_full_file("/proc/self/mountinfo", 4U * 1024U * 1024U, &text, &n) < 0)
                return false;
        (void) snprintf(want, sizeof(want), " %u:%u ", major(dev), minor(dev));
        for (char *line = (char *) text; line && *line;) {
                char *eol = strchr(line, '\n'), *p = line;
                if (eol)
                        *eol = '\0';
                /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ..." */
                p = strchr(p, ' ');
                p = p ? strchr(p + 1, ' ') : NULL;
                if (p && strncmp(p, want, strlen(want)) == 0)
                        return true;
                line = eol ? eol + 1 : NULL;
        }
        return false;
}

int mapper_find_device(const char *path, const char *partlabel, char *ret, size_t size)
{
        static const char *const system_paths[] = { "/", "/usr", "/boot", "/boot/efi" };
        char disk[64], other[64];
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
        if (is_mounted(st.st_rdev))
                return log_error_errno(
                        -EBUSY, "%s is mounted: refusing to use a device that is in use.", ret);
        if (whole_disk(st.st_rdev, disk, sizeof(disk)) < 0)
                return 0; /* no sysfs entry (e.g. a device-mapper node): nothing to compare */
        for (size_t i = 0; i < ELEMENTSOF(system_paths); i++) {
                if (stat(system_paths[i], &sys) < 0 || major(sys.st_dev) == 0)
                        continue; /* absent, or a virtual file system (tmpfs, initramfs) */
                if (whole_disk(sys.st_dev, other, sizeof(other)) == 0 && strcmp(disk, other) == 0)
                        return log_error_errno(-EPERM,
                                               "%s is on the boot disk (which holds %s): "
                                               "refusing; the state disk must be its own disk.",
                                               ret, system_paths[i]);
        }
        return 0;
}
