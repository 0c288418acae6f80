/* SPDX-License-Identifier: Apache-2.0 */
/* The versions a node reports over aTLS (GET /v1/node), docs/versions.md. */
#include <string.h>

#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/version.h"

static json_t *field(const char *os_release, const char *key)
{
        char v[VERSION_STRING_MAX];
        int r = os_release_get(os_release, key, v, sizeof(v));

        if (r < 0) {
                log_debug("%s: no usable %s (%s)", os_release, key, strerror(-r));
                return json_null();
        }
        return json_string(v);
}

json_t *node_versions_json(const char *os_release)
{
        return json_pack("{s:s,s:o,s:o}", "cloister", CLOISTER_VERSION, "image",
                         field(os_release ?: OS_RELEASE_DEFAULT, "IMAGE_VERSION"), "kubernetes",
                         field(os_release ?: OS_RELEASE_DEFAULT, "KUBERNETES_VERSION"));
}
