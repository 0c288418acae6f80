/* SPDX-License-Identifier: Apache-2.0 */
/* A GCP disk's NVMe Identify Namespace data, which the host writes: the device name parsed
 * from its vendor-specific area (lib/metadata/metadata-gce-nvme.c). The input is the area
 * (bytes 384..4095), zero-padded or cut to its size. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloister/metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t ns[METADATA_NVME_IDENTIFY_SIZE];
        char name[METADATA_GCE_DEVICE_NAME_MAX];
        size_t max = sizeof(ns) - METADATA_GCE_NVME_VENDOR_OFFSET;

        memset(ns, 0, sizeof(ns));
        memcpy(ns + METADATA_GCE_NVME_VENDOR_OFFSET, data, size < max ? size : max);
        if (metadata_gce_nvme_device_name(ns, sizeof(ns), name, NULL) == 0 &&
            (name[0] == '\0' || strlen(name) >= sizeof(name) || strchr(name, '/')))
                __builtin_trap(); /* a name is never empty, long or a path */
        return 0;
}
