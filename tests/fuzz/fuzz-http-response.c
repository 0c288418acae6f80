/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP response parser of the join service's re-attestation process (the bytes a member's
 * node sends back to GET /v1/node): on success the body must lie inside the input and end it,
 * with the status in range. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cloister/http-response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        HttpResponse resp;

        if (http_response_parse(data, size, &resp) < 0)
                return 0;
        if (resp.status < 100 || resp.status > 599 || resp.body < data ||
            resp.body + resp.body_size != data + size)
                abort();
        return 0;
}
