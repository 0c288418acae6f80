/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/metadata.h"
#include "cloister/rpc.h"

#define DEFAULT_GCP   "http://metadata.google.internal"
#define DEFAULT_AZURE "http://169.254.169.254"
#define DEFAULT_AWS   "http://169.254.169.254"
#define KEY_ROLE      "cloister-role"
#define KEY_ENDPOINT  "cloister-endpoint"
#define KEY_PEERS     "cloister-peers"
#define KEY_HASH      "cloister-init-secret-hash"
#define KEY_CLUSTER   "cloister-cluster-id"
#define KEY_CP_AUTH   "cloister-control-plane-authorization"
/* AWS only: the node's name when the owner chose it (a control plane created with an
 * authorization for that name); otherwise an AWS node's name is its instance ID. */
#define KEY_AWS_NAME "cloister-name"

static const char *const provider_names[_METADATA_PROVIDER_MAX] = {
        [METADATA_LOCAL] = "local",
        [METADATA_GCP] = "gcp",
        [METADATA_AZURE] = "azure",
        [METADATA_AWS] = "aws",
        /* QEMU's fw_cfg: local clusters of VMs */
        [METADATA_QEMU] = "qemu",
};
static const char *const role_names[_NODE_ROLE_MAX] = {
        [NODE_ROLE_CONTROL_PLANE] = "control-plane",
        [NODE_ROLE_WORKER] = "worker",
};

MetadataProvider metadata_provider_from_string(const char *s)
{
        for (int i = 0; s && i < _METADATA_PROVIDER_MAX; i++)
                if (strcmp(s, provider_names[i]) == 0)
                        return (MetadataProvider) i;
        return _METADATA_PROVIDER_INVALID;
}

const char *metadata_provider_to_string(MetadataProvider p)
{
        return p >= 0 && p < _METADATA_PROVIDER_MAX ? provider_names[p] : NULL;
}

const char *node_role_to_string(NodeRole r)
{
        return r >= 0 && r < _NODE_ROLE_MAX ? role_names[r] : NULL;
}

/* --- field checks: metadata is host-controlled ------------------------------------------------ */

static bool is_hostchar(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.';
}

static int set_name(NodeMetadata *m, const char *v, Diag *d)
{
        size_t n = v ? strlen(v) : 0;

        if (n == 0 || n >= METADATA_NAME_MAX || !is_hostchar(v[0]) || v[0] == '-' || v[0] == '.')
                return diag_fail(d, -EBADMSG, "metadata", -1,
                                 "node name is missing or not a host name of at most %d "
                                 "characters",
                                 METADATA_NAME_MAX - 1);
        for (size_t i = 0; i < n; i++)
                if (!is_hostchar(v[i]))
                        return diag_fail(d, -EBADMSG, "metadata", -1,
                                         "node name has a character other than letters, digits, "
                                         "'-' and '.'");
        memcpy(m->name, v, n + 1);
        return 0;
}

static int set_role(NodeMetadata *m, const char *v, Diag *d)
{
        for (int i = 0; v && i < _NODE_ROLE_MAX; i++)
                if (strcmp(v, role_names[i]) == 0) {
                        m->role = (NodeRole) i;
                        return 0;
                }
        return diag_fail(d, -EBADMSG, "metadata", -1,
                         "role is missing or not 'control-plane' or 'worker'");
}

/* host:port, host a DNS name, IPv4 address or [IPv6]. */
static bool endpoint_ok(const char *s, size_t n)
{
        const char *colon;
        char *end;
        unsigned long port;

        if (n == 0 || n >= METADATA_ENDPOINT_MAX)
                return false;
        colon = memrchr(s, ':', n);
        if (!colon || colon == s)
                return false;
        if (s[0] == '[') {
                if (colon[-1] != ']')
                        return false;
                for (const char *p = s + 1; p < colon - 1; p++)
                        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                              (*p >= 'A' && *p <= 'F') || *p == ':'))
                                return false;
        } else
                for (const char *p = s; p < colon; p++)
                        if (!is_hostchar(*p))
                                return false;
        if (colon + 1 >= s + n || colon[1] < '0' || colon[1] > '9')
                return false;
        port = strtoul(colon + 1, &end, 10);
        return end == s + n && port >= 1 && port <= 65535;
}

static int set_endpoint(NodeMetadata *m, const char *v, Diag *d)
{
        if (!v || !*v) {
                m->endpoint[0] = '\0';
                return 0;
        }
        if (!endpoint_ok(v, strlen(v)))
                return diag_fail(d, -EBADMSG, "metadata", -1,
                                 "endpoint is not host:port (port 1..65535)");
        (void) snprintf(m->endpoint, sizeof(m->endpoint), "%s", v);
        return 0;
}

static int add_peer(NodeMetadata *m, const char *s, size_t n, Diag *d)
{
        if (m->n_peers >= METADATA_PEERS_MAX)
                return diag_fail(d, -EBADMSG, "metadata", -1, "more than %d peers",
                                 METADATA_PEERS_MAX);
        if (!endpoint_ok(s, n))
                return diag_fail(d, -EBADMSG, "metadata", (int) m->n_peers,
                                 "peer %zu is not host:port", m->n_peers);
        memcpy(m->peers[m->n_peers], s, n);
        m->peers[m->n_peers++][n] = '\0';
        return 0;
}

/* "a:1,b:2" (cloud attributes and tags are strings). */
static int set_peers_list(NodeMetadata *m, const char *v, Diag *d)
{
        m->n_peers = 0;
        for (const char *p = v; p && *p;) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t) (comma - p) : strlen(p);
                int r = add_peer(m, p, n, d);
                if (r < 0)
                        return r;
                p = comma ? comma + 1 : NULL;
        }
        return 0;
}

static int set_hash(NodeMetadata *m, const char *v, Diag *d)
{
        int r;

        if (!v || !*v) {
                m->init_secret_hash[0] = '\0';
                return 0;
        }
        r = init_secret_hash_check(v, d);
        if (r < 0)
                return r;
        (void) snprintf(m->init_secret_hash, sizeof(m->init_secret_hash), "%s", v);
        return 0;
}

/* The cluster a joining node expects its join service to prove (PCR 15): not secret, and a
 * wrong one only makes the node refuse to join. */
static int set_cluster_id(NodeMetadata *m, const char *v, Diag *d)
{
        size_t n = v ? strlen(v) : 0;

        m->cluster_id[0] = '\0';
        if (n == 0)
                return 0;
        if (n != 2 * METADATA_CLUSTER_ID_SIZE || strspn(v, "0123456789abcdef") != n)
                return diag_fail(d, -EBADMSG, "metadata", -1,
                                 "the cluster ID must be 64 lowercase hex digits");
        memcpy(m->cluster_id, v, n + 1);
        return 0;
}

/* Checked by the join service (it holds the master secret); here only bounded and shaped. */
static int set_cp_auth(NodeMetadata *m, const char *v, Diag *d)
{
        size_t n = v ? strlen(v) : 0;

        m->cp_authorization[0] = '\0';
        if (n == 0)
                return 0;
        if (n >= sizeof(m->cp_authorization) ||
            strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
                return diag_fail(d, -EBADMSG, "metadata", -1,
                                 "the control-plane authorization is malformed: use what "
                                 "'cloister control-plane authorize' printed");
        memcpy(m->cp_authorization, v, n + 1);
        return 0;
}

static int set_all(NodeMetadata *m, const char *const v[static _METADATA_FIELD_MAX], Diag *d)
{
        int r;

        *m = (NodeMetadata){ .role = _NODE_ROLE_INVALID };
        if ((r = set_name(m, v[METADATA_FIELD_NAME], d)) < 0 ||
            (r = set_role(m, v[METADATA_FIELD_ROLE], d)) < 0 ||
            (r = set_endpoint(m, v[METADATA_FIELD_ENDPOINT], d)) < 0 ||
            (r = set_peers_list(m, v[METADATA_FIELD_PEERS], d)) < 0 ||
            (r = set_hash(m, v[METADATA_FIELD_HASH], d)) < 0 ||
            (r = set_cluster_id(m, v[METADATA_FIELD_CLUSTER], d)) < 0 ||
            (r = set_cp_auth(m, v[METADATA_FIELD_CP_AUTH], d)) < 0)
                return r;
        return 0;
}

/* --- local ------------------------------------------------------------------------------------ */

int metadata_parse_local(const void *data, size_t size, NodeMetadata *ret, Diag *d)
{
        static const char *const keys[] = { "name",
                                            "role",
                                            "endpoint",
                                            "peers",
                                            "initSecretHash",
                                            "clusterId",
                                            "controlPlaneAuthorization",
                                            NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonCtx ctx = { .source = "metadata", .path = "", .diag = d };
        const char *v[_METADATA_FIELD_MAX] = {};
        json_t *peers = NULL, *peer;
        NodeMetadata m;
        size_t i;
        int r;

        r = json_parse_buffer(data, size, "metadata", &j, d);
        if (r < 0)
                return r;
        /* Optional keys answer -ENOENT when absent. */
        if ((r = json_expect_object(&ctx, j)) < 0 || (r = json_check_keys(&ctx, j, keys)) < 0 ||
            (r = json_get_string(&ctx, j, "name", true, &v[METADATA_FIELD_NAME])) < 0 ||
            (r = json_get_string(&ctx, j, "role", true, &v[METADATA_FIELD_ROLE])) < 0 ||
            ((r = json_get_string(&ctx, j, "endpoint", false, &v[METADATA_FIELD_ENDPOINT])) < 0 &&
             r != -ENOENT) ||
            ((r = json_get_array(&ctx, j, "peers", false, &peers)) < 0 && r != -ENOENT) ||
            ((r = json_get_string(&ctx, j, "initSecretHash", false, &v[METADATA_FIELD_HASH])) < 0 &&
             r != -ENOENT) ||
            ((r = json_get_string(&ctx, j, "clusterId", false, &v[METADATA_FIELD_CLUSTER])) < 0 &&
             r != -ENOENT) ||
            ((r = json_get_string(&ctx, j, "controlPlaneAuthorization", false,
                                  &v[METADATA_FIELD_CP_AUTH])) < 0 &&
             r != -ENOENT))
                return r;
        r = set_all(&m, v, d);
        if (r < 0)
                return r;
        json_array_foreach (peers, i, peer) {
                const char *s = json_string_value(peer);
                if (!s)
                        return diag_fail(d, -EBADMSG, "metadata", (int) i,
                                         "peers[%zu] is not a string", i);
                r = add_peer(&m, s, strlen(s), d);
                if (r < 0)
                        return r;
        }
        *ret = m;
        return 0;
}

/* --- clouds ----------------------------------------------------------------------------------- */

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        (void) nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* One request, retried with backoff (0.25 s doubling to 2 s) while the service is unreachable
 * or answers 5xx, until deadline. 404 is an answer (absent), returned as status. */
static int fetch(const char *method, const char *url, const char *const *headers, uint64_t deadline,
                 uint8_t **ret, size_t *ret_size, long *ret_status, Diag *d)
{
        unsigned backoff = 250;

        for (;;) {
                uint64_t now = now_ms();
                unsigned left = deadline > now ? (unsigned) (deadline - now) : 1;
                int r;

                *ret = NULL;
                diag_clear(d);
                r = rpc_http_request(method, url, headers, METADATA_SIZE_MAX, MIN(left, 5000U), ret,
                                     ret_size, ret_status, d);
                if (r >= 0 && *ret_status < 500)
                        return 0;
                if (r >= 0) {
                        free(*ret);
                        *ret = NULL;
                        r = diag_fail(d, -EHOSTUNREACH, "metadata", -1, "%s answered %ld", url,
                                      *ret_status);
                }
                if (r != -EHOSTUNREACH || now_ms() + backoff >= deadline)
                        return r;
                log_debug("metadata: %s: %s; retrying in %u ms", url, d ? d->message : "", backoff);
                sleep_ms(backoff);
                backoff = MIN(backoff * 2, 2000U);
        }
}

static int fetch_json(const char *url, const char *const *headers, uint64_t deadline, json_t **ret,
                      Diag *d)
{
        _cleanup_(freep) uint8_t *body = NULL;
        size_t size = 0;
        long status = 0;
        int r;

        r = fetch("GET", url, headers, deadline, &body, &size, &status, d);
        if (r < 0)
                return r;
        if (status != 200)
                return diag_fail(d, -ENODATA, "metadata", -1, "%s answered %ld", url, status);
        return json_parse_buffer(body ?: (uint8_t *) "", size, "metadata", ret, d);
}

/* base + path into url[METADATA_URL_MAX]; a base URL too long for it is an error, never a
 * silently shortened request. */
#define METADATA_URL_MAX 512
static int make_url(char url[static METADATA_URL_MAX], const char *base, const char *path, Diag *d)
{
        int n = snprintf(url, METADATA_URL_MAX, "%s%s", base, path);
        if (n < 0 || n >= METADATA_URL_MAX)
                return diag_fail(d, -ENAMETOOLONG, "metadata", -1,
                                 "the metadata URL is longer than %d bytes", METADATA_URL_MAX - 1);
        return 0;
}

static const char *attr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static int parse_gcp(const json_t *j, NodeMetadata *ret, Diag *d)
{
        json_t *a = json_object_get(j, "attributes");
        const char *v[_METADATA_FIELD_MAX] = { attr(j, "name"),       attr(a, KEY_ROLE),
                                               attr(a, KEY_ENDPOINT), attr(a, KEY_PEERS),
                                               attr(a, KEY_HASH),     attr(a, KEY_CLUSTER),
                                               attr(a, KEY_CP_AUTH) };
        return set_all(ret, v, d);
}

static const char *azure_tag(const json_t *tags, const char *name)
{
        size_t i;
        json_t *t;

        json_array_foreach (tags, i, t)
                if (json_is_string(json_object_get(t, "name")) &&
                    strcmp(attr(t, "name"), name) == 0)
                        return attr(t, "value");
        return NULL;
}

static int parse_azure(const json_t *j, NodeMetadata *ret, Diag *d)
{
        json_t *c = json_object_get(j, "compute"), *tags = json_object_get(c, "tagsList");
        /* A scale set's instance is named SCALESET_INSTANCEID, and '_' is not in a host name;
         * its computer name is: the host name (prefix and instance number) Kubernetes knows it
         * by. A single VM's computer name is its name unless set otherwise. */
        const char *computer = attr(json_object_get(c, "osProfile"), "computerName");
        const char *v[_METADATA_FIELD_MAX] = {
                computer && computer[0] ? computer : attr(c, "name"),
                azure_tag(tags, KEY_ROLE),
                azure_tag(tags, KEY_ENDPOINT),
                azure_tag(tags, KEY_PEERS),
                azure_tag(tags, KEY_HASH),
                azure_tag(tags, KEY_CLUSTER),
                azure_tag(tags, KEY_CP_AUTH),
        };
        return set_all(ret, v, d);
}

/* The one-document services: where the document is, the header the service demands, and how
 * its fields are laid out. */
typedef struct CloudDocument {
        const char *default_base, *path;
        const char *const headers[2];
        int (*parse)(const json_t *j, NodeMetadata *ret, Diag *d);
} CloudDocument;

static const CloudDocument gcp = {
        DEFAULT_GCP,
        "/computeMetadata/v1/instance/?recursive=true",
        { "Metadata-Flavor: Google", NULL },
        parse_gcp,
};
static const CloudDocument azure = {
        DEFAULT_AZURE,
        "/metadata/instance?api-version=2021-02-01",
        { "Metadata: true", NULL },
        parse_azure,
};

static int fetch_document(const CloudDocument *doc, const char *base, uint64_t deadline,
                          NodeMetadata *ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        char url[METADATA_URL_MAX];
        int r;

        r = make_url(url, base ?: doc->default_base, doc->path, d);
        if (r >= 0)
                r = fetch_json(url, doc->headers, deadline, &j, d);
        return r < 0 ? r : doc->parse(j, ret, d);
}

int metadata_parse_cloud_json(MetadataProvider p, const void *data, size_t size, NodeMetadata *ret,
                              Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r;

        if (p != METADATA_GCP && p != METADATA_AZURE)
                return -EINVAL;
        r = json_parse_buffer(data, size, "metadata", &j, d);
        if (r < 0)
                return r;
        return p == METADATA_GCP ? parse_gcp(j, ret, d) : parse_azure(j, ret, d);
}

/* One IMDSv2 text value; *ret NULL (not an error) if absent (404). */
static int aws_get(const char *base, const char *path, const char *token_header, uint64_t deadline,
                   char **ret, Diag *d)
{
        const char *headers[] = { token_header, NULL };
        uint8_t *body = NULL;
        size_t size = 0;
        long status = 0;
        char url[METADATA_URL_MAX];
        int r;

        *ret = NULL;
        r = make_url(url, base, path, d);
        if (r < 0)
                return r;
        r = fetch("GET", url, headers, deadline, &body, &size, &status, d);
        if (r < 0)
                return r;
        if (status == 404) {
                free(body);
                return 0;
        }
        if (status != 200 || memchr(body ?: (uint8_t *) "", 0, size)) {
                free(body);
                return diag_fail(d, -EBADMSG, "metadata", -1, "%s answered %ld", url, status);
        }
        *ret = body ? (char *) body : strdup(""); /* read buffers carry a NUL after size */
        return *ret ? 0 : -ENOMEM;
}

static int fetch_aws(const char *base, uint64_t deadline, NodeMetadata *ret, Diag *d)
{
        static const char *const put_headers[] = { "X-aws-ec2-metadata-token-ttl-seconds: 60",
                                                   NULL };
        static const char *const tags[] = { "instance-id",
                                            "tags/instance/" KEY_ROLE,
                                            "tags/instance/" KEY_ENDPOINT,
                                            "tags/instance/" KEY_PEERS,
                                            "tags/instance/" KEY_HASH,
                                            "tags/instance/" KEY_CLUSTER,
                                            "tags/instance/" KEY_CP_AUTH };
        _Static_assert(ELEMENTSOF(tags) == _METADATA_FIELD_MAX, "one tag per metadata field");
        char *values[ELEMENTSOF(tags)] = {}, url[METADATA_URL_MAX], token_header[256];
        _cleanup_(freep) uint8_t *token = NULL;
        size_t size = 0;
        long status = 0;
        int r;

        base = base ?: DEFAULT_AWS;
        r = make_url(url, base, "/latest/api/token", d);
        if (r < 0)
                return r;
        r = fetch("PUT", url, put_headers, deadline, &token, &size, &status, d);
        if (r < 0)
                return r;
        if (status != 200 || size == 0 || size > 128 || memchr(token, '\n', size) ||
            memchr(token, '\r', size))
                return diag_fail(d, -EBADMSG, "metadata", -1, "%s: no IMDSv2 token (answered %ld)",
                                 url, status);
        (void) snprintf(token_header, sizeof(token_header), "X-aws-ec2-metadata-token: %.*s",
                        (int) size, (const char *) token);
        for (size_t i = 0; i < ELEMENTSOF(tags) && r >= 0; i++) {
                char path[128];
                (void) snprintf(path, sizeof(path), "/latest/meta-data/%s", tags[i]);
                r = aws_get(base, path, token_header, deadline, &values[i], d);
        }
        if (r >= 0 && !values[1])
                r = diag_fail(d, -ENODATA, "metadata", -1,
                              "instance tag " KEY_ROLE " is missing (are instance tags in "
                              "metadata enabled?)");
        /* A name the owner chose (and authorized) in advance wins over the instance ID. */
        if (r >= 0) {
                char *name = NULL;
                r = aws_get(base, "/latest/meta-data/tags/instance/" KEY_AWS_NAME, token_header,
                            deadline, &name, d);
                if (r >= 0 && name && name[0]) {
                        free(values[0]);
                        values[0] = name;
                } else
                        free(name);
        }
        if (r >= 0)
                r = set_all(ret, (const char *const *) values, d);
        for (size_t i = 0; i < ELEMENTSOF(tags); i++)
                free(values[i]);
        return r;
}

/* --- qemu ------------------------------------------------------------------------------------ */

/* The local form from QEMU's fw_cfg, as the guest's sysfs shows it. The host writes it like a
 * cloud writes its metadata service: the same bounded parser as a local file. */
static int fetch_qemu(const char *source, uint64_t deadline, NodeMetadata *ret, Diag *d)
{
        const char *path = source ?: METADATA_QEMU_FW_CFG;
        _cleanup_(freep) uint8_t *data = NULL;
        unsigned backoff = METADATA_QEMU_BACKOFF_FIRST_MS;
        uint64_t start = now_ms();
        size_t size = 0;
        int r;

        if (strncmp(path, "file://", 7) == 0)
                path += 7;
        if (path[0] != '/')
                return diag_fail(d, -EINVAL, "metadata", -1,
                                 "qemu: '%s' is neither an absolute file path nor a file:/// URL",
                                 source);
        for (;;) {
                uint64_t now;

                r = read_full_file(path, METADATA_SIZE_MAX, &data, &size);
                /* The fw_cfg driver (qemu_fw_cfg) may be loaded after this starts. */
                if (r != -ENOENT)
                        break;
                now = now_ms();
                if (now >= deadline)
                        return diag_fail(d, -ENOENT, "metadata", -1,
                                         "%s does not exist (looked for %.1f s): start the VM "
                                         "with -fw_cfg name=opt/cloister/metadata,file=FILE "
                                         "(FILE: the node's metadata JSON), and check that the "
                                         "guest kernel has qemu_fw_cfg",
                                         path, (double) (now - start) / 1000.0);
                log_debug("metadata: %s does not exist yet; looking again in %u ms", path, backoff);
                sleep_ms((unsigned) MIN((uint64_t) backoff, deadline - now));
                backoff = MIN(backoff * 2, METADATA_QEMU_BACKOFF_MAX_MS);
        }
        if (r < 0)
                return diag_fail(d, r, "metadata", -1, "%s: cannot read: %s", path, strerror(-r));
        return metadata_parse_local(data, size, ret, d);
}

int metadata_fetch(MetadataProvider p, const char *source, unsigned timeout_ms, NodeMetadata *ret,
                   Diag *d)
{
        uint64_t deadline = now_ms() + timeout_ms;
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size;
        int r;

        switch (p) {
        case METADATA_LOCAL:
                if (!source)
                        return diag_fail(d, -EINVAL, "metadata", -1,
                                         "the local provider needs a file");
                r = read_full_file(source, METADATA_SIZE_MAX, &data, &size);
                if (r < 0)
                        return diag_fail(d, r, "metadata", -1, "%s: cannot read: %s", source,
                                         strerror(-r));
                return metadata_parse_local(data, size, ret, d);
        case METADATA_GCP:
                return fetch_document(&gcp, source, deadline, ret, d);
        case METADATA_AZURE:
                return fetch_document(&azure, source, deadline, ret, d);
        case METADATA_AWS:
                return fetch_aws(source, deadline, ret, d);
        case METADATA_QEMU:
                return fetch_qemu(source, deadline, ret, d);
        default:
                return -EINVAL;
        }
}
