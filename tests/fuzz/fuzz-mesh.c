/* SPDX-License-Identifier: Apache-2.0 */
/* The mesh document a node receives from its join service (docs/mesh.md), and WireGuard keys in
 * their base64 text form. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/mesh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        MeshDoc m = {};
        Diag d;

        diag_clear(&d);
        if (mesh_doc_parse(data, size, &m, &d) >= 0) {
                /* What apply would use: every peer's strings are terminated and in bounds. */
                for (size_t i = 0; i < m.n_peers; i++) {
                        char k[MESH_KEY_BASE64 + 1];
                        uint8_t back[MESH_KEY_SIZE];

                        mesh_key_to_base64(m.peers[i].public_key, k);
                        if (mesh_key_from_base64(k, back) < 0 ||
                            memcmp(back, m.peers[i].public_key, MESH_KEY_SIZE) != 0 ||
                            !mesh_address_ok(m.peers[i].address) ||
                            strlen(m.peers[i].endpoint) > MESH_ENDPOINT_MAX)
                                abort();
                }
                mesh_doc_done(&m);
        }
        if (size <= 64) {
                char s[65];
                uint8_t k[MESH_KEY_SIZE];

                memcpy(s, data, size);
                s[size] = '\0';
                (void) mesh_key_from_base64(s, k);
                (void) mesh_address_ok(s);
        }
        return 0;
}
