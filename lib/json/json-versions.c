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

/* The image's kind (image/README.md, "Kubernetes"): CLOISTER_IMAGE_KIND, cloud or test; test
 * also for the kubeadm double's VARIANT_ID (images built before the field); else null. */
static json_t *image_kind(const char *os_release)
{
        char v[VERSION_STRING_MAX];

        if (os_release_get(os_release, "CLOISTER_IMAGE_KIND", v, sizeof(v)) >= 0)
                return strcmp(v, "cloud") == 0 || strcmp(v, "test") == 0 ? json_string(v)
                                                                         : json_null();
        if (os_release_get(os_release, "VARIANT_ID", v, sizeof(v)) >= 0 &&
            strcmp(v, "kubeadm-double") == 0)
                return json_string("test");
        return json_null();
}

json_t *node_versions_json(const char *os_release)
{
        const char *f = os_release ?: OS_RELEASE_DEFAULT;

        return json_pack("{s:s,s:o,s:o,s:o}", "cloister", CLOISTER_VERSION, "image",
                         field(f, "IMAGE_VERSION"), "kubernetes", field(f, "KUBERNETES_VERSION"),
                         "imageKind", image_kind(f));
}
