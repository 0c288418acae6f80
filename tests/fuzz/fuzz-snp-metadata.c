/* SPDX-License-Identifier: Apache-2.0 */
/* The firmware's GUIDed footer table and SEV metadata (snp_firmware_parse()), and a launch
 * digest over whatever parsed. The input is the end of a firmware image, where both live: it is
 * placed at the end of a whole number of 4 KiB pages (the parser's first check), and the raw
 * bytes are also given as they are. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/snp-launch.h"

#define FUZZ_IMAGE_MAX (64U * 1024U)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t padded = (size + SNP_PAGE_SIZE - 1) / SNP_PAGE_SIZE * SNP_PAGE_SIZE;
        SnpFirmware fw;
        uint8_t *image, ld[SNP_LD_SIZE];

        (void) snp_firmware_parse(data, size, &fw, NULL);
        if (size == 0 || padded > FUZZ_IMAGE_MAX)
                return 0;
        image = calloc(1, padded);
        if (!image)
                return 0;
        memcpy(image + padded - size, data, size);
        if (snp_firmware_parse(image, padded, &fw, NULL) >= 0 && fw.has_metadata) {
                /* The first byte picks a VMM and direct boot; the digest must not fail for any
                 * other reason than the ones snp_launch_digest() documents: firmware whose
                 * metadata does not fit the pages it describes (-EBADMSG), a missing section
                 * (-ENODATA), a combination it does not model (-EOPNOTSUPP). */
                SnpLaunchInput in = { .firmware = image,
                                      .firmware_size = padded,
                                      .vcpus = 1 + data[0] % 3,
                                      .vcpu_signature = 0x00800F12,
                                      .vmm = (SnpVmm) ((data[0] >> 2) % _SNP_VMM_MAX),
                                      .guest_features = 1,
                                      .direct_boot = data[0] & 0x80 };
                int r = snp_launch_digest(&in, ld, NULL);
                if (r < 0 && r != -EBADMSG && r != -ENODATA && r != -EOPNOTSUPP)
                        abort();
        }
        free(image);
        return 0;
}
