/* SPDX-License-Identifier: Apache-2.0 */
/* What `wg show cloister0 endpoints|latest-handshakes|transfer` prints, as mesh_status_parse()
 * reads it for GET /v1/node (docs/mesh.md, "Status"). The first byte picks the kind; the input
 * is also merged as each kind in turn into one status, as the node does. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/json.h"
#include "cloister/mesh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        MeshStatus s = {};
        json_t *j = NULL;
        Diag d;

        if (size < 1)
                return 0;
        diag_clear(&d);
        (void) mesh_status_parse(&s, (MeshShow) (data[0] % (_MESH_SHOW_MAX + 1)), data + 1,
                                 size - 1, &d);
        for (int w = 0; w < _MESH_SHOW_MAX; w++)
                (void) mesh_status_parse(&s, (MeshShow) w, data + 1, size - 1, &d);
        if (s.n_peers > MESH_PEERS_MAX)
                abort();
        for (size_t i = 0; i < s.n_peers; i++)
                if (strlen(s.peers[i].endpoint) > MESH_ENDPOINT_MAX ||
                    s.peers[i].latest_handshake > INT64_MAX || s.peers[i].rx_bytes > INT64_MAX ||
                    s.peers[i].tx_bytes > INT64_MAX)
                        abort();
        if (mesh_status_to_json(&s, &j) >= 0)
                json_decref(j);
        mesh_status_done(&s);
        return 0;
}
