/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node finds its cloud (and so its metadata service and its state disk) from SMBIOS, as the
 * kernel shows it in /sys/class/dmi/id. One row per provider below: the values that identify
 * it and the names its state disk has. Sources of the values:
 *   - GCP: product_name "Google Compute Engine" (cloud-init tools/ds-identify, dscheck_GCE) and
 *     sys_vendor "Google" (Google's metadata client, isRunningOnGCE);
 *   - Azure: chassis_asset_tag "7783-7084-3265-9085-8269-3286-77", the tag every Azure VM carries
 *     (cloud-init ds-identify is_azure_chassis, DataSourceAzure AZURE_CHASSIS_ASSET_TAG), with
 *     sys_vendor "Microsoft Corporation": Hyper-V outside Azure has the vendor without the tag;
 *   - AWS: sys_vendor "Amazon EC2" on Nitro instances, the only ones with SEV-SNP (systemd
 *     src/basic/virt.c, dmi_vendor_table: VIRTUALIZATION_AMAZON);
 *   - QEMU: sys_vendor "QEMU", QEMU's SMBIOS default with TCG and KVM alike (systemd virt.c:
 *     VIRTUALIZATION_QEMU).
 */
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/metadata.h"

typedef enum DmiField {
        DMI_SYS_VENDOR,
        DMI_PRODUCT_NAME,
        DMI_BIOS_VENDOR,
        DMI_BOARD_VENDOR,
        DMI_CHASSIS_ASSET_TAG,
        _DMI_FIELD_MAX,
} DmiField;

static const char *const dmi_files[_DMI_FIELD_MAX] = {
        [DMI_SYS_VENDOR] = "sys_vendor",
        [DMI_PRODUCT_NAME] = "product_name",
        [DMI_BIOS_VENDOR] = "bios_vendor",
        [DMI_BOARD_VENDOR] = "board_vendor",
        [DMI_CHASSIS_ASSET_TAG] = "chassis_asset_tag",
};

#define AZURE_CHASSIS_ASSET_TAG "7783-7084-3265-9085-8269-3286-77"
/* The VMBus SCSI controller Azure attaches data disks to ("scsi1" in Azure's own udev rules;
 * the OS disk is on f8b3781a-...), as systemd's path_id writes it: the device_id without
 * braces and dashes (handle_scsi_hyperv). */
#define AZURE_DATA_CONTROLLER "f8b3781b1e824818a1c363d806ec15bb"

#define PLATFORM_MATCH_MAX   2
#define STATE_DISK_NAMES_MAX 3

typedef struct Platform {
        MetadataProvider provider;
        /* Every one must hold; the first is always sys_vendor (so no two rows overlap). */
        struct {
                DmiField field;
                const char *value;
        } match[PLATFORM_MATCH_MAX];
        size_t n_match;
        /* Tried in order; NULL-terminated. */
        const char *state_disk[STATE_DISK_NAMES_MAX + 1];
} Platform;

static const Platform platforms[] = {
        {
                METADATA_GCP,
                { { DMI_SYS_VENDOR, "Google" }, { DMI_PRODUCT_NAME, "Google Compute Engine" } },
                2,
                /* Google's udev rules (google-guest-configs) if the image has them, else
                 * systemd's own SCSI link: Compute Engine's disk serial is
                 * 0Google_PersistentDisk_DEVICE_NAME. */
                { "/dev/disk/by-id/google-" METADATA_STATE_DISK_GCP_DEVICE_NAME,
                  "/dev/disk/by-id/"
                  "scsi-0Google_PersistentDisk_" METADATA_STATE_DISK_GCP_DEVICE_NAME,
                  NULL },
        },
        {
                METADATA_AZURE,
                { { DMI_SYS_VENDOR, "Microsoft Corporation" },
                  { DMI_CHASSIS_ASSET_TAG, AZURE_CHASSIS_ASSET_TAG } },
                2,
                /* Azure's udev rules (WALinuxAgent, azure-vm-utils) if present, else systemd's
                 * by-path link of LUN 0 on the data-disk controller. */
                { "/dev/disk/azure/scsi1/lun" METADATA_STATE_DISK_AZURE_LUN,
                  "/dev/disk/by-path/*-vmbus-" AZURE_DATA_CONTROLLER
                  "-lun-" METADATA_STATE_DISK_AZURE_LUN,
                  NULL },
        },
        {
                METADATA_AWS,
                { { DMI_SYS_VENDOR, "Amazon EC2" } },
                1,
                /* An EBS volume is an NVMe namespace whose controller's vendor-specific
                 * identify data holds the device name of the block device mapping; Debian's
                 * amazon-ec2-utils (in the image) links that name to it. */
                { METADATA_STATE_DISK_AWS_DEVICE_NAME, NULL },
        },
        {
                METADATA_QEMU,
                { { DMI_SYS_VENDOR, "QEMU" } },
                1,
                { "/dev/disk/by-partlabel/" METADATA_STATE_DISK_QEMU_PARTLABEL, NULL },
        },
};

/* One sysfs value: at most METADATA_DMI_VALUE_MAX bytes (a longer file is refused, never cut
 * to something that matches), the kernel's trailing newline and spaces dropped. An absent file
 * is "" (not every platform has every field). */
static int read_dmi_value(const char *dir, const char *name,
                          char value[static METADATA_DMI_VALUE_MAX + 1], Diag *d)
{
        char path[PATH_MAX];
        size_t n = 0;
        int fd;

        value[0] = '\0';
        if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path))
                return diag_fail(d, -ENAMETOOLONG, "dmi", -1, "%s/%s: path too long", dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0
                                       : diag_fail(d, -errno, "dmi", -1, "%s: cannot read: %s",
                                                   path, strerror(errno));
        /* One byte more than the bound, to tell "exactly the bound" from "longer". */
        while (n <= METADATA_DMI_VALUE_MAX) {
                char buf[METADATA_DMI_VALUE_MAX + 1];
                ssize_t k = read(fd, buf, METADATA_DMI_VALUE_MAX + 1 - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        (void) close(fd);
                        return diag_fail(d, r, "dmi", -1, "%s: cannot read: %s", path,
                                         strerror(-r));
                }
                if (k == 0)
                        break;
                if (n + (size_t) k > METADATA_DMI_VALUE_MAX) {
                        (void) close(fd);
                        return diag_fail(d, -EMSGSIZE, "dmi", -1,
                                         "%s is longer than %d bytes: no SMBIOS value of a known "
                                         "provider is; refusing to guess the cloud",
                                         path, METADATA_DMI_VALUE_MAX);
                }
                memcpy(value + n, buf, (size_t) k);
                n += (size_t) k;
        }
        (void) close(fd);
        /* Compared as C strings below: an embedded NUL would make "QEMU\0..." equal "QEMU". */
        if (memchr(value, '\0', n))
                return diag_fail(d, -EBADMSG, "dmi", -1,
                                 "%s holds a NUL byte: no SMBIOS string does; refusing to guess "
                                 "the cloud",
                                 path);
        while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == ' '))
                n--;
        value[n] = '\0';
        return 0;
}

/* For messages: printable ASCII as is, the rest as \xNN, cut at 48 bytes of input. */
static void quote(const char *s, char *buf, size_t size)
{
        size_t o = 0;

        for (size_t i = 0; i < 48 && s[i] && o + 5 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= ' ' && c < 0x7f && c != '\'' && c != '\\')
                        buf[o++] = (char) c;
                else
                        o += (size_t) snprintf(buf + o, size - o, "\\x%02x", c);
        }
        buf[o] = '\0';
}

static bool platform_matches(const Platform *p, char values[][METADATA_DMI_VALUE_MAX + 1])
{
        for (size_t i = 0; i < p->n_match; i++)
                if (strcmp(values[p->match[i].field], p->match[i].value) != 0)
                        return false;
        return true;
}

int metadata_provider_detect(const char *dmi_dir, MetadataProvider *ret, Diag *d)
{
        char values[_DMI_FIELD_MAX][METADATA_DMI_VALUE_MAX + 1];
        char seen[DIAG_MESSAGE_MAX] = "", q[5 * 48 + 1];
        const char *dir = dmi_dir ?: METADATA_DMI_DIR;
        size_t o = 0;
        int r;

        if (access(dir, F_OK) < 0)
                return diag_fail(d, -ENOENT, "dmi", -1,
                                 "%s does not exist (no SMBIOS: not a VM of a known provider?)",
                                 dir);
        for (int f = 0; f < _DMI_FIELD_MAX; f++) {
                r = read_dmi_value(dir, dmi_files[f], values[f], d);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(platforms); i++)
                if (platform_matches(&platforms[i], values)) {
                        log_debug("metadata: SMBIOS says %s (sys_vendor '%s')",
                                  metadata_provider_to_string(platforms[i].provider),
                                  values[DMI_SYS_VENDOR]);
                        *ret = platforms[i].provider;
                        return 0;
                }
        for (int f = 0; f < _DMI_FIELD_MAX && o < sizeof(seen); f++) {
                quote(values[f], q, sizeof(q));
                o += (size_t) snprintf(seen + o, sizeof(seen) - o, "%s%s '%s'", f ? ", " : "",
                                       dmi_files[f], q);
        }
        /* A row whose vendor matched but not the rest (Hyper-V outside Azure, for one). */
        for (size_t i = 0; i < ELEMENTSOF(platforms); i++)
                if (strcmp(values[DMI_SYS_VENDOR], platforms[i].match[0].value) == 0)
                        return diag_fail(d, -ENXIO, "dmi", -1,
                                         "SMBIOS in %s has %s's sys_vendor but not its other "
                                         "values (%s): not recognised as %s",
                                         dir, metadata_provider_to_string(platforms[i].provider),
                                         seen, metadata_provider_to_string(platforms[i].provider));
        return diag_fail(d, -ENXIO, "dmi", -1,
                         "no known provider's SMBIOS values in %s (%s): GCP, Azure, AWS (Nitro) "
                         "and QEMU are recognised",
                         dir, seen);
}

static const Platform *platform_of(MetadataProvider p)
{
        for (size_t i = 0; i < ELEMENTSOF(platforms); i++)
                if (platforms[i].provider == p)
                        return &platforms[i];
        return NULL;
}

const char *const *metadata_state_disk_names(MetadataProvider p)
{
        const Platform *pl = platform_of(p);
        return pl ? pl->state_disk : NULL;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* 1: found (ret set), 0: none of the names exists, < 0: refused. */
static int find_once(const Platform *pl, const char *root, char *ret, size_t size, Diag *d)
{
        for (size_t i = 0; pl->state_disk[i]; i++) {
                char pattern[PATH_MAX];
                glob_t g = {};
                int r;

                if (snprintf(pattern, sizeof(pattern), "%s%s", root, pl->state_disk[i]) >=
                    (int) sizeof(pattern))
                        return diag_fail(d, -ENAMETOOLONG, "state-disk", -1, "%s: path too long",
                                         root);
                r = glob(pattern, GLOB_NOSORT, NULL, &g);
                if (r == GLOB_NOMATCH) {
                        globfree(&g);
                        continue;
                }
                if (r != 0) {
                        globfree(&g);
                        return diag_fail(d, r == GLOB_NOSPACE ? -ENOMEM : -EIO, "state-disk", -1,
                                         "cannot look for %s", pattern);
                }
                if (g.gl_pathc != 1) {
                        r = diag_fail(d, -ENOTUNIQ, "state-disk", -1,
                                      "%s matches %zu devices (%s, %s, ...): refusing to choose "
                                      "one",
                                      pattern, (size_t) g.gl_pathc, g.gl_pathv[0], g.gl_pathv[1]);
                        globfree(&g);
                        return r;
                }
                if (snprintf(ret, size, "%s", g.gl_pathv[0]) >= (int) size) {
                        globfree(&g);
                        return diag_fail(d, -ENAMETOOLONG, "state-disk", -1, "path too long");
                }
                globfree(&g);
                return 1;
        }
        return 0;
}

int metadata_state_disk_find(MetadataProvider p, const char *root, unsigned timeout_ms, char *ret,
                             size_t size, Diag *d)
{
        const Platform *pl = platform_of(p);
        uint64_t start = now_ms(), deadline = start + timeout_ms;
        unsigned backoff = 100;
        char path[PATH_MAX], names[DIAG_MESSAGE_MAX / 2] = "";
        size_t o = 0;
        int r;

        if (!pl)
                return diag_fail(d, -EINVAL, "state-disk", -1,
                                 "the %s provider has no fixed state disk",
                                 metadata_provider_to_string(p) ?: "?");
        root = root ?: "";
        for (;;) {
                uint64_t now;

                r = find_once(pl, root, path, sizeof(path), d);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
                now = now_ms();
                if (now >= deadline) {
                        for (size_t i = 0; pl->state_disk[i] && o < sizeof(names); i++)
                                o += (size_t) snprintf(names + o, sizeof(names) - o, "%s%s%s",
                                                       i ? ", " : "", root, pl->state_disk[i]);
                        return diag_fail(d, -ENOENT, "state-disk", -1,
                                         "no %s state disk after %.1f s (looked for %s): check "
                                         "that the disk the Terraform module makes is attached",
                                         metadata_provider_to_string(p),
                                         (double) (now - start) / 1000.0, names);
                }
                log_debug("state disk: none of the %s names exists yet; looking again in %u ms",
                          metadata_provider_to_string(p), backoff);
                struct timespec ts = { .tv_sec = MIN((uint64_t) backoff, deadline - now) / 1000,
                                       .tv_nsec = (long) (MIN((uint64_t) backoff, deadline - now) %
                                                          1000) *
                                                  1000000L };
                (void) nanosleep(&ts, NULL);
                backoff = MIN(backoff * 2, 2000U);
        }
        if (snprintf(ret, size, "%s", path) >= (int) size)
                return diag_fail(d, -ENAMETOOLONG, "state-disk", -1, "%s: path too long", path);
        return 0;
}
