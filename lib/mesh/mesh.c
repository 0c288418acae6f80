/* SPDX-License-Identifier: Apache-2.0 */
/* The WireGuard mesh between attested members (docs/mesh.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/base64.h"
#include "cloister/crypto.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/mesh.h"
#include "cloister/spawn.h"

/* --- keys ---------------------------------------------------------------------------------- */

int mesh_key_generate(MeshKey *ret)
{
        _cleanup_(secret_freep) Secret *priv = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *pkey = NULL;
        size_t n = MESH_KEY_SIZE, m = MESH_KEY_SIZE;
        uint8_t pub[MESH_KEY_SIZE];
        int r;

        r = secret_new(MESH_KEY_SIZE, &priv);
        if (r < 0)
                return r;
        ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
        if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1 ||
            EVP_PKEY_get_raw_private_key(pkey, secret_data(priv), &n) != 1 ||
            EVP_PKEY_get_raw_public_key(pkey, pub, &m) != 1 || n != MESH_KEY_SIZE ||
            m != MESH_KEY_SIZE)
                r = crypto_log_errors(-EIO, "X25519 key generation");
        /* The EVP key's own copy of the private half is cleansed by OpenSSL on free. */
        EVP_PKEY_free(pkey);
        EVP_PKEY_CTX_free(ctx);
        if (r < 0)
                return r;
        ret->private_key = TAKE_PTR(priv);
        memcpy(ret->public_key, pub, MESH_KEY_SIZE);
        return 0;
}

void mesh_key_done(MeshKey *k)
{
        if (!k)
                return;
        k->private_key = secret_free(k->private_key);
        explicit_wipe(k->public_key, sizeof(k->public_key));
}

void mesh_key_to_base64(const uint8_t key[static MESH_KEY_SIZE],
                        char ret[static MESH_KEY_BASE64 + 1])
{
        (void) EVP_EncodeBlock((unsigned char *) ret, key, MESH_KEY_SIZE);
        ret[MESH_KEY_BASE64] = '\0';
}

int mesh_key_from_base64(const char *s, uint8_t ret[static MESH_KEY_SIZE])
{
        uint8_t buf[MESH_KEY_SIZE + 3];

        /* 32 bytes are exactly 43 base64 digits and one '=': nothing else is a key. */
        if (!s || strlen(s) != MESH_KEY_BASE64 || s[MESH_KEY_BASE64 - 1] != '=' ||
            s[MESH_KEY_BASE64 - 2] == '=')
                return -EBADMSG;
        if (EVP_DecodeBlock(buf, (const unsigned char *) s, MESH_KEY_BASE64) != MESH_KEY_SIZE + 1)
                return -EBADMSG;
        memcpy(ret, buf, MESH_KEY_SIZE);
        return 0;
}

/* --- the document -------------------------------------------------------------------------- */

static const char *const mesh_backend_table[_MESH_BACKEND_MAX] = {
        [MESH_BACKEND_KERNEL] = "kernel",
        [MESH_BACKEND_USERSPACE] = "userspace",
};

const char *mesh_backend_to_string(MeshBackend b)
{
        return b >= 0 && b < _MESH_BACKEND_MAX ? mesh_backend_table[b] : NULL;
}

MeshBackend mesh_backend_from_string(const char *s)
{
        for (int i = 0; s && i < _MESH_BACKEND_MAX; i++)
                if (strcmp(s, mesh_backend_table[i]) == 0)
                        return (MeshBackend) i;
        return _MESH_BACKEND_INVALID;
}

bool mesh_address_ok(const char *s)
{
        struct in_addr a;
        uint32_t h;

        if (!s || strlen(s) > MESH_ADDRESS_MAX || inet_pton(AF_INET, s, &a) != 1)
                return false;
        h = ntohl(a.s_addr);
        /* 10.77.0.0/16, neither .0.0 nor .255.255 */
        return (h & 0xffff0000U) == 0x0a4d0000U && (h & 0xffffU) != 0 && (h & 0xffffU) != 0xffffU;
}

int mesh_address_of(unsigned n, char ret[static MESH_ADDRESS_MAX + 1])
{
        if (n < 1 || n > MESH_PEERS_MAX)
                return -ERANGE;
        (void) snprintf(ret, MESH_ADDRESS_MAX + 1, "10.77.%u.%u", n / 256, n % 256);
        return 0;
}

bool mesh_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > MESH_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* IPv4:PORT or [IPv6]:PORT, a literal address (no name to resolve) and a port 1..65535. */
bool mesh_endpoint_ok(const char *s)
{
        char host[MESH_ADDRESS_MAX + 1];
        const char *colon, *h = s;
        size_t hn;
        char *end;
        long port;
        uint8_t buf[16] = {};

        if (strlen(s) > MESH_ENDPOINT_MAX || !(colon = strrchr(s, ':')))
                return false;
        hn = (size_t) (colon - s);
        if (s[0] == '[') {
                if (hn < 3 || s[hn - 1] != ']')
                        return false;
                h = s + 1;
                hn -= 2;
        }
        if (hn == 0 || hn > MESH_ADDRESS_MAX)
                return false;
        memcpy(host, h, hn);
        host[hn] = '\0';
        if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, buf) != 1)
                return false;
        /* Not the unspecified address, and not inside the mesh range: the tunnel's own packets
         * would be routed into the tunnel. */
        {
                static const uint8_t zero[16];
                if (memcmp(buf, zero, s[0] == '[' ? 16 : 4) == 0 ||
                    (s[0] != '[' && buf[0] == 10 && buf[1] == 77))
                        return false;
        }
        if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            strlen(colon + 1) > 5)
                return false;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

/* A shortest pod range: a node's pod range is a slice of the cluster's (a /24 by default); a
 * shorter prefix would route a large part of the address space into the tunnel. */
#define POD_CIDR_PREFIX_MIN 16

/* ADDRESS/PREFIX, IPv4, the network address itself (no host bits), the prefix
 * POD_CIDR_PREFIX_MIN..32, not overlapping the mesh range. ret_net and ret_prefix may be NULL. */
static bool pod_cidr_parse(const char *s, uint32_t *ret_net, unsigned *ret_prefix)
{
        char host[MESH_ADDRESS_MAX + 1];
        const char *slash = strchr(s, '/');
        struct in_addr a;
        uint32_t net, mask;
        size_t hn;
        char *end;
        long prefix;

        if (!slash || strlen(s) > MESH_ADDRESS_MAX + 4)
                return false;
        hn = (size_t) (slash - s);
        if (hn == 0 || hn > MESH_ADDRESS_MAX)
                return false;
        memcpy(host, s, hn);
        host[hn] = '\0';
        if (inet_pton(AF_INET, host, &a) != 1)
                return false;
        if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
            strlen(slash + 1) > 2)
                return false;
        prefix = strtol(slash + 1, &end, 10);
        if (*end != '\0' || prefix < POD_CIDR_PREFIX_MIN || prefix > 32)
                return false;
        net = ntohl(a.s_addr);
        mask = prefix == 32 ? 0xffffffffU : ~(0xffffffffU >> prefix);
        /* Host bits set, or any overlap with 10.77.0.0/16 (the prefix is at least 16, so an
         * overlap means its first 16 bits are the mesh range's). */
        if ((net & ~mask) != 0 || (net & 0xffff0000U) == 0x0a4d0000U)
                return false;
        if (ret_net)
                *ret_net = net;
        if (ret_prefix)
                *ret_prefix = (unsigned) prefix;
        return true;
}

static bool cidr_ok(const char *s)
{
        return pod_cidr_parse(s, NULL, NULL);
}

/* true if the IPv4 endpoint (ADDRESS:PORT) lies inside the pod range: its tunnel packets would be
 * routed into the tunnel. An IPv6 endpoint never does. */
static bool pod_cidr_holds_endpoint(const char *cidr, const char *endpoint)
{
        char host[MESH_ADDRESS_MAX + 1];
        const char *colon = strrchr(endpoint, ':');
        size_t hn = colon ? (size_t) (colon - endpoint) : 0;
        struct in_addr a;
        uint32_t net;
        unsigned prefix;

        if (!cidr[0] || endpoint[0] == '[' || hn == 0 || hn > MESH_ADDRESS_MAX ||
            !pod_cidr_parse(cidr, &net, &prefix))
                return false;
        memcpy(host, endpoint, hn);
        host[hn] = '\0';
        if (inet_pton(AF_INET, host, &a) != 1)
                return false;
        return (ntohl(a.s_addr) & (prefix == 32 ? 0xffffffffU : ~(0xffffffffU >> prefix))) == net;
}

static bool pod_cidrs_overlap(const char *x, const char *y)
{
        uint32_t nx, ny, mask;
        unsigned px, py;

        if (!x[0] || !y[0] || !pod_cidr_parse(x, &nx, &px) || !pod_cidr_parse(y, &ny, &py))
                return false;
        mask = ~(0xffffffffU >> (px < py ? px : py));
        return (nx & mask) == (ny & mask);
}

static int get_text(const JsonCtx *ctx, const json_t *o, const char *key, bool required,
                    bool (*ok)(const char *), char *buf, size_t size)
{
        const char *v = NULL;
        int r;

        r = json_get_string(ctx, o, key, required, &v);
        if (r == -ENOENT && !required) {
                buf[0] = '\0';
                return 0;
        }
        if (r < 0)
                return r;
        if (strlen(v) >= size || !ok(v))
                return diag_fail(ctx->diag, -EBADMSG, "mesh-document", -1,
                                 "%s%s.%s: '%.*s' is not a valid value", ctx->source, ctx->path,
                                 key, 64, v);
        memcpy(buf, v, strlen(v) + 1);
        return 0;
}

int mesh_doc_parse(const void *data, size_t size, MeshDoc *ret, Diag *d)
{
        static const char *const keys[] = { "version", "self", "address", "peers", NULL };
        static const char *const peer_keys[] = { "name",    "publicKey", "endpoint",
                                                 "address", "podCidr",   NULL };
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { .source = "mesh document", .path = "", .diag = d };
        MeshDoc m = {};
        json_t *list = NULL, *p;
        int64_t version = 0;
        size_t i;
        int r;

        if (size > MESH_DOC_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "mesh-document", -1,
                                 "the mesh document is %zu bytes, more than %u", size,
                                 MESH_DOC_SIZE_MAX);
        r = json_parse_buffer(data, size, "mesh document", &doc, d);
        if (r < 0)
                return r;
        if ((r = json_check_keys(&ctx, doc, keys)) < 0 ||
            (r = json_get_int(&ctx, doc, "version", true, 1, 1, &version)) < 0 ||
            (r = get_text(&ctx, doc, "self", true, mesh_name_ok, m.self, sizeof(m.self))) < 0 ||
            (r = get_text(&ctx, doc, "address", true, mesh_address_ok, m.address,
                          sizeof(m.address))) < 0 ||
            (r = json_get_array(&ctx, doc, "peers", true, &list)) < 0)
                return r;
        if (json_array_size(list) > MESH_PEERS_MAX)
                return diag_fail(d, -EMSGSIZE, "mesh-document", -1,
                                 "the mesh document lists %zu peers, more than %d",
                                 json_array_size(list), MESH_PEERS_MAX);
        m.peers = calloc(json_array_size(list) ?: 1, sizeof(MeshPeer));
        if (!m.peers)
                return -ENOMEM;
        json_array_foreach (list, i, p) {
                MeshPeer *peer = &m.peers[i];
                char path[32], key[MESH_KEY_BASE64 + 1];
                JsonCtx pc = ctx;

                (void) snprintf(path, sizeof(path), ".peers[%zu]", i);
                pc.path = path;
                if ((r = json_check_keys(&pc, p, peer_keys)) < 0 ||
                    (r = get_text(&pc, p, "name", true, mesh_name_ok, peer->name,
                                  sizeof(peer->name))) < 0 ||
                    (r = get_text(&pc, p, "endpoint", true, mesh_endpoint_ok, peer->endpoint,
                                  sizeof(peer->endpoint))) < 0 ||
                    (r = get_text(&pc, p, "address", true, mesh_address_ok, peer->address,
                                  sizeof(peer->address))) < 0 ||
                    (r = get_text(&pc, p, "podCidr", false, cidr_ok, peer->pod_cidr,
                                  sizeof(peer->pod_cidr))) < 0)
                        goto fail;
                {
                        const char *k = NULL;
                        r = json_get_string(&pc, p, "publicKey", true, &k);
                        if (r < 0)
                                goto fail;
                        if (strlen(k) >= sizeof(key) ||
                            mesh_key_from_base64(k, peer->public_key) < 0) {
                                r = diag_fail(d, -EBADMSG, "mesh-document", (int) i,
                                              "mesh document%s.publicKey is not a WireGuard key "
                                              "(base64 of 32 bytes)",
                                              path);
                                goto fail;
                        }
                }
                /* A pod range holding the peer's own underlay endpoint would route its tunnel
                 * packets into the tunnel. */
                if (pod_cidr_holds_endpoint(peer->pod_cidr, peer->endpoint)) {
                        r = diag_fail(d, -EBADMSG, "mesh-document", (int) i,
                                      "mesh document%s.podCidr holds the peer's own endpoint",
                                      path);
                        goto fail;
                }
                /* One key, one address, one name, one pod range per peer: a second entry would
                 * take over the first's traffic (WireGuard routes an address to one peer), and a
                 * pod range holding another peer's underlay endpoint would take its tunnel. */
                for (size_t j = 0; j < i; j++)
                        if (memcmp(m.peers[j].public_key, peer->public_key, MESH_KEY_SIZE) == 0 ||
                            strcmp(m.peers[j].address, peer->address) == 0 ||
                            strcmp(m.peers[j].name, peer->name) == 0 ||
                            pod_cidrs_overlap(m.peers[j].pod_cidr, peer->pod_cidr) ||
                            pod_cidr_holds_endpoint(m.peers[j].pod_cidr, peer->endpoint) ||
                            pod_cidr_holds_endpoint(peer->pod_cidr, m.peers[j].endpoint)) {
                                r = diag_fail(d, -EBADMSG, "mesh-document", (int) i,
                                              "mesh document%s repeats the name, key, address or "
                                              "pod range of peers[%zu], or its pod range holds "
                                              "the other's endpoint",
                                              path, j);
                                goto fail;
                        }
                m.n_peers++;
        }
        *ret = m;
        return 0;
fail:
        free(m.peers);
        return r;
}

void mesh_doc_done(MeshDoc *m)
{
        if (!m)
                return;
        free(m->peers);
        *m = (MeshDoc){};
}

/* --- applying it --------------------------------------------------------------------------- */

static int run(Diag *d, char *const argv[])
{
        int r = spawn_wait(argv, NULL);

        if (r == 0)
                return 0;
        if (r == -ENOENT)
                return diag_fail(d, -ENOENT, "mesh-apply", -1,
                                 "'%s' is not installed (the mesh needs iproute2, wireguard-tools "
                                 "and nftables)",
                                 argv[0]);
        return diag_fail(d, r < 0 ? r : -EIO, "mesh-apply", -1, "'%s %s %s' failed (%d)", argv[0],
                         argv[1] ?: "", argv[2] ?: "", r);
}

/* Exit status 0 if the command succeeds, quietly: for "does it exist" probes. */
static bool quiet_ok(char *const argv[])
{
        return spawn_wait_output(argv, "/dev/null", "/dev/null") == 0;
}

/* The table that keeps the mesh range closed: anything to or from MESH_NETWORK that does not
 * pass through cloister0 is dropped, whether the device exists or not. Replaced whole in one
 * nft transaction (the file is read by nft -f from stdin). */
static int apply_drop_rule(Diag *d)
{
        static const char rules[] =
                "table inet cloister-mesh\n"
                "delete table inet cloister-mesh\n"
                "table inet cloister-mesh {\n"
                "  chain output {\n"
                "    type filter hook output priority 0; policy accept;\n"
                "    ip daddr " MESH_NETWORK " oifname != \"" MESH_DEVICE "\" drop\n"
                "    ip saddr " MESH_NETWORK " oifname != { \"" MESH_DEVICE "\", \"lo\" } drop\n"
                "  }\n"
                "  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                "    ip saddr " MESH_NETWORK " iifname != { \"" MESH_DEVICE "\", \"lo\" } drop\n"
                "    ip daddr " MESH_NETWORK " iifname != { \"" MESH_DEVICE "\", \"lo\" } drop\n"
                "  }\n"
                "  chain forward {\n"
                "    type filter hook forward priority 0; policy accept;\n"
                "    ip daddr " MESH_NETWORK " oifname != \"" MESH_DEVICE "\" drop\n"
                "  }\n"
                "}\n";
        char *argv[] = { (char *) "nft", (char *) "-f", (char *) "-", NULL };
        int r = spawn_wait_input(argv, rules, sizeof(rules) - 1, NULL, NULL);

        if (r == 0)
                return 0;
        return diag_fail(d, r < 0 ? r : -EIO, "mesh-drop-rule", -1,
                         "cannot install the nftables table cloister-mesh (%d): the mesh stays "
                         "down",
                         r);
}

int mesh_close(Diag *d)
{
        return apply_drop_rule(d);
}

static int make_device(MeshBackend backend, Diag *d)
{
        char *show[] = { (char *) "ip", (char *) "link", (char *) "show", (char *) MESH_DEVICE,
                         NULL };
        char *kernel[] = { (char *) "ip",
                           (char *) "link",
                           (char *) "add",
                           (char *) MESH_DEVICE,
                           (char *) "type",
                           (char *) "wireguard",
                           NULL };
        char *user[] = { (char *) "wireguard-go", (char *) MESH_DEVICE, NULL };

        if (quiet_ok(show))
                return 0;
        return run(d, backend == MESH_BACKEND_KERNEL ? kernel : user);
}

/* The peers the device has now, as base64 keys one a line (`wg show cloister0 peers`). */
static int current_peers(const char *runtime_dir, char **ret, Diag *d)
{
        _cleanup_(freep) char *path = NULL;
        char *argv[] = { (char *) "wg", (char *) "show", (char *) MESH_DEVICE, (char *) "peers",
                         NULL };
        FILE *f;
        char *buf;
        long n;
        int r;

        if (asprintf(&path, "%s/peers.XXXXXX", runtime_dir) < 0)
                return -ENOMEM;
        {
                int fd = mkstemp(path);
                if (fd < 0)
                        return diag_fail(d, -errno, "mesh-apply", -1, "cannot create %s", path);
                (void) close(fd);
        }
        r = spawn_wait_output(argv, path, "/dev/null");
        f = r == 0 ? fopen(path, "re") : NULL;
        (void) unlink(path);
        if (!f)
                return diag_fail(d, -EIO, "mesh-apply", -1, "'wg show %s peers' failed (%d)",
                                 MESH_DEVICE, r);
        (void) fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        /* One line of 45 bytes per peer, and a device holds at most the document's peers plus
         * what an earlier document left. */
        if (n < 0 || n > 2L * MESH_PEERS_MAX * (MESH_KEY_BASE64 + 1)) {
                fclose(f);
                return diag_fail(d, -EMSGSIZE, "mesh-apply", -1, "the device lists too many peers");
        }
        buf = calloc(1, (size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -ENOMEM;
        }
        fclose(f);
        *ret = buf;
        return 0;
}

int mesh_apply(MeshBackend backend, const MeshKey *key, const MeshDoc *doc, const char *runtime_dir,
               Diag *d)
{
        _cleanup_(freep) char *have = NULL, *cidr = NULL;
        char port[8], mark[12];
        int r;

        if (!mesh_backend_to_string(backend) || !key->private_key || !mesh_address_ok(doc->address))
                return diag_fail(d, -EINVAL, "mesh-apply", -1, "nothing to apply");
        /* Closed first: whatever fails below, the mesh range never carries plain traffic. */
        r = apply_drop_rule(d);
        if (r < 0)
                return r;
        r = make_device(backend, d);
        if (r < 0)
                return r;
        (void) snprintf(port, sizeof(port), "%d", MESH_PORT);
        (void) snprintf(mark, sizeof(mark), "%d", MESH_FWMARK);
        {
                /* The private key goes through a pipe on wg's stdin: never a command line, an
                 * environment or a file. */
                char *argv[] = { (char *) "wg",
                                 (char *) "set",
                                 (char *) MESH_DEVICE,
                                 (char *) "private-key",
                                 (char *) "/dev/stdin",
                                 (char *) "listen-port",
                                 port,
                                 (char *) "fwmark",
                                 mark,
                                 NULL };
                _cleanup_(secret_freep) Secret *text = NULL;

                /* wg reads a key file as WireGuard's base64 text: encoded in locked memory. */
                r = secret_new(MESH_KEY_BASE64 + 1, &text);
                if (r < 0)
                        return r;
                (void) EVP_EncodeBlock(secret_data(text), secret_data(key->private_key),
                                       MESH_KEY_SIZE);
                r = spawn_wait_input(argv, secret_data(text), MESH_KEY_BASE64, NULL, NULL);
                if (r != 0)
                        return diag_fail(d, r < 0 ? r : -EIO, "mesh-apply", -1,
                                         "'wg set %s private-key' failed (%d)", MESH_DEVICE, r);
        }
        if (asprintf(&cidr, "%s/16", doc->address) < 0)
                return -ENOMEM;
        {
                char *addr[] = { (char *) "ip", (char *) "address", (char *) "replace",
                                 cidr,          (char *) "dev",     (char *) MESH_DEVICE,
                                 NULL };
                char *up[] = { (char *) "ip",        (char *) "link", (char *) "set",
                               (char *) MESH_DEVICE, (char *) "up",   NULL };
                if ((r = run(d, addr)) < 0 || (r = run(d, up)) < 0)
                        return r;
        }
        /* Exactly the document's peers: those the device has and the document does not (an
         * evicted member) go first. */
        r = current_peers(runtime_dir, &have, d);
        if (r < 0)
                return r;
        for (char *line = have, *next; line && *line; line = next) {
                uint8_t k[MESH_KEY_SIZE];
                bool keep = false;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (mesh_key_from_base64(line, k) < 0)
                        continue;
                for (size_t i = 0; i < doc->n_peers && !keep; i++)
                        keep = memcmp(doc->peers[i].public_key, k, MESH_KEY_SIZE) == 0;
                if (!keep) {
                        char *argv[] = { (char *) "wg",
                                         (char *) "set",
                                         (char *) MESH_DEVICE,
                                         (char *) "peer",
                                         line,
                                         (char *) "remove",
                                         NULL };
                        r = run(d, argv);
                        if (r < 0)
                                return r;
                        log_info("mesh: peer %s removed (no longer a member)", line);
                }
        }
        for (size_t i = 0; i < doc->n_peers; i++) {
                const MeshPeer *p = &doc->peers[i];
                char k[MESH_KEY_BASE64 + 1], allowed[2 * (MESH_ADDRESS_MAX + 5) + 2];

                if (memcmp(p->public_key, key->public_key, MESH_KEY_SIZE) == 0 ||
                    strcmp(p->address, doc->address) == 0)
                        continue; /* this node */
                mesh_key_to_base64(p->public_key, k);
                (void) snprintf(allowed, sizeof(allowed), "%s/32%s%s", p->address,
                                p->pod_cidr[0] ? "," : "", p->pod_cidr);
                {
                        char *argv[] = { (char *) "wg",
                                         (char *) "set",
                                         (char *) MESH_DEVICE,
                                         (char *) "peer",
                                         k,
                                         (char *) "endpoint",
                                         (char *) p->endpoint,
                                         (char *) "allowed-ips",
                                         allowed,
                                         (char *) "persistent-keepalive",
                                         (char *) "25",
                                         NULL };
                        r = run(d, argv);
                        if (r < 0)
                                return r;
                }
                if (p->pod_cidr[0]) {
                        char *route[] = { (char *) "ip",
                                          (char *) "route",
                                          (char *) "replace",
                                          (char *) p->pod_cidr,
                                          (char *) "dev",
                                          (char *) MESH_DEVICE,
                                          NULL };
                        r = run(d, route);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int mesh_down(void)
{
        char *argv[] = { (char *) "ip", (char *) "link", (char *) "del", (char *) MESH_DEVICE,
                         NULL };

        return quiet_ok(argv) ? 0 : -ENODEV;
}
