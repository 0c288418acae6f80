/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A GCP disk's device name from its NVMe Identify Namespace data (NVM Express Base
 * Specification, Identify Namespace data structure: bytes 384..4095 are vendor specific). On
 * Compute Engine that area holds a JSON object with "device_name" (what Google's
 * google_nvme_id reads, then links /dev/disk/by-id/google-NAME). The bytes come from the host.
 */
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cloister/json.h"
#include "cloister/macro.h"
#include "cloister/metadata.h"

int metadata_gce_nvme_device_name(const void *identify_ns, size_t size,
                                  char ret[static METADATA_GCE_DEVICE_NAME_MAX], Diag *d)
{
        static const char *const keys[] = { "device_name", "disk_type", NULL };
        const uint8_t *area = (const uint8_t *) identify_ns + METADATA_GCE_NVME_VENDOR_OFFSET;
        size_t n, max = METADATA_NVME_IDENTIFY_SIZE - METADATA_GCE_NVME_VENDOR_OFFSET;
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *name;
        const uint8_t *nul;
        int r;

        if (size != METADATA_NVME_IDENTIFY_SIZE)
                return diag_fail(d, -EBADMSG, "gce-nvme", -1,
                                 "Identify Namespace data is %zu bytes, not %d", size,
                                 METADATA_NVME_IDENTIFY_SIZE);
        /* The JSON ends at the first NUL (the rest of the area is zero). */
        nul = memchr(area, 0, max);
        n = nul ? (size_t) (nul - area) : max;
        if (n == 0)
                return diag_fail(d, -ENODATA, "gce-nvme", -1,
                                 "no Compute Engine disk information in the vendor-specific "
                                 "area (not a Compute Engine persistent disk?)");
        r = json_parse_buffer(area, n, "gce-nvme", &j, d);
        if (r < 0)
                return r;
        name = json_string_value(json_object_get(j, "device_name"));
        if (!json_is_object(j) || !name)
                return diag_fail(d, -EBADMSG, "gce-nvme", -1,
                                 "the vendor-specific area is not an object with a "
                                 "device_name string");
        /* Only the keys Compute Engine writes; an unknown one may change the meaning. */
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
                bool known = false;
                for (size_t i = 0; keys[i]; i++)
                        known = known || strcmp(json_object_iter_key(it), keys[i]) == 0;
                if (!known)
                        return diag_fail(d, -EBADMSG, "gce-nvme", -1,
                                         "unknown key in the vendor-specific area");
        }
        n = strlen(name);
        if (n == 0 || n >= METADATA_GCE_DEVICE_NAME_MAX ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n)
                return diag_fail(d, -EBADMSG, "gce-nvme", -1,
                                 "device_name is not 1..%d of letters, digits, '_' and '-'",
                                 METADATA_GCE_DEVICE_NAME_MAX - 1);
        memcpy(ret, name, n + 1);
        return 0;
}

int metadata_gce_nvme_read(const char *path, char ret[static METADATA_GCE_DEVICE_NAME_MAX], Diag *d)
{
        uint8_t data[METADATA_NVME_IDENTIFY_SIZE] = {};
        struct nvme_admin_cmd cmd = {};
        int fd, nsid, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return diag_fail(d, -errno, "gce-nvme", -1, "%s: cannot open: %s", path,
                                 strerror(errno));
        nsid = ioctl(fd, NVME_IOCTL_ID);
        if (nsid <= 0) {
                r = nsid < 0 ? -errno : -ENOTTY;
                (void) close(fd);
                return diag_fail(d, r, "gce-nvme", -1, "%s is not an NVMe namespace: %s", path,
                                 strerror(-r));
        }
        cmd.opcode = 0x06; /* Identify */
        cmd.nsid = (uint32_t) nsid;
        cmd.addr = (uint64_t) (uintptr_t) data;
        cmd.data_len = sizeof(data);
        cmd.cdw10 = 0; /* CNS 0: Identify Namespace */
        r = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &cmd);
        (void) close(fd);
        if (r != 0)
                return diag_fail(d, r < 0 ? -errno : -EIO, "gce-nvme", -1,
                                 "%s: Identify Namespace failed (%s)", path,
                                 r < 0 ? strerror(errno) : "NVMe status");
        return metadata_gce_nvme_device_name(data, sizeof(data), ret, d);
}
