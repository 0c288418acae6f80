/* SPDX-License-Identifier: Apache-2.0 */
/* Host-controlled node metadata: the local JSON form, GCP's and Azure's documents, and the
 * init-secret hash string they carry. The first byte picks the parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/init-secret.h"
#include "cloister/metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        NodeMetadata m;
        char *s;

        if (size < 1)
                return 0;
        switch (data[0] % 4) {
        case 0:
                (void) metadata_parse_local(data + 1, size - 1, &m, NULL);
                break;
        case 1:
                (void) metadata_parse_cloud_json(METADATA_GCP, data + 1, size - 1, &m, NULL);
                break;
        case 2:
                (void) metadata_parse_cloud_json(METADATA_AZURE, data + 1, size - 1, &m, NULL);
                break;
        default:
                s = malloc(size);
                if (!s)
                        return 0;
                memcpy(s, data + 1, size - 1);
                s[size - 1] = '\0';
                (void) init_secret_hash_check(s, NULL);
                free(s);
        }
        return 0;
}
