/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the node's cloister0 reports per peer (docs/mesh.md, "Status"): endpoints, last
 * handshakes and transfer counters, read from `wg show` (never `dump`, which prints the private
 * key) for GET /v1/node and `cloister status`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/json.h"
#include "cloister/mesh.h"
#include "cloister/reader.h"
#include "cloister/spawn.h"

/* One line: its bytes up to (not including) the newline, which is required. */
static int next_line(Reader *r, const uint8_t **ret, size_t *ret_size)
{
        const uint8_t *nl = memchr(r->data + r->pos, '\n', reader_remaining(r));
        size_t n;
        int k;

        if (!nl)
                return -EBADMSG;
        n = (size_t) (nl - (r->data + r->pos));
        k = reader_bytes(r, n, ret);
        if (k >= 0)
                k = reader_skip(r, 1);
        *ret_size = n;
        return k;
}

/* A decimal of at most 19 digits that fits a JSON integer (int64). */
static int parse_u64(const uint8_t *p, size_t n, uint64_t *ret)
{
        uint64_t v = 0;

        if (n == 0 || n > 19)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9' ||
                    v > ((uint64_t) INT64_MAX - (uint64_t) (p[i] - '0')) / 10)
                        return -EBADMSG;
                v = v * 10 + (uint64_t) (p[i] - '0');
        }
        *ret = v;
        return 0;
}

static MeshPeerStatus *peer_of(MeshStatus *s, const uint8_t key[static MESH_KEY_SIZE])
{
        MeshPeerStatus *p;

        for (size_t i = 0; i < s->n_peers; i++)
                if (memcmp(s->peers[i].public_key, key, MESH_KEY_SIZE) == 0)
                        return &s->peers[i];
        if (s->n_peers >= MESH_PEERS_MAX)
                return NULL;
        if (!s->peers) {
                s->peers = calloc(MESH_PEERS_MAX, sizeof(*s->peers));
                if (!s->peers)
                        return NULL;
        }
        p = &s->peers[s->n_peers++];
        *p = (MeshPeerStatus){};
        memcpy(p->public_key, key, MESH_KEY_SIZE);
        return p;
}

/* Splits a line's fields at tabs: exactly n of them. */
static int fields(const uint8_t *line, size_t size, size_t n, const uint8_t *f[], size_t fn[])
{
        size_t k = 0, start = 0;

        for (size_t i = 0; i <= size; i++) {
                if (i < size && line[i] != '\t')
                        continue;
                if (k == n)
                        return -EBADMSG;
                f[k] = line + start;
                fn[k++] = i - start;
                start = i + 1;
        }
        return k == n ? 0 : -EBADMSG;
}

int mesh_status_parse(MeshStatus *s, MeshShow what, const void *data, size_t size, Diag *d)
{
        static const size_t n_fields[_MESH_SHOW_MAX] = {
                [MESH_SHOW_ENDPOINTS] = 2,
                [MESH_SHOW_LATEST_HANDSHAKES] = 2,
                [MESH_SHOW_TRANSFER] = 3,
        };
        Reader r = reader_init(data, size);
        unsigned line_no = 0;

        if ((unsigned) what >= _MESH_SHOW_MAX)
                return diag_fail(d, -EINVAL, "mesh-status", -1, "unknown wg show field");
        while (reader_remaining(&r) > 0) {
                const uint8_t *line, *f[3];
                size_t n, fn[3];
                char key_text[MESH_KEY_BASE64 + 1];
                uint8_t key[MESH_KEY_SIZE];
                MeshPeerStatus *p;

                line_no++;
                if (next_line(&r, &line, &n) < 0 || fields(line, n, n_fields[what], f, fn) < 0 ||
                    fn[0] != MESH_KEY_BASE64)
                        return diag_fail(d, -EBADMSG, "mesh-status", (int) line_no,
                                         "line %u of wg's output is not a key and %zu field(s)",
                                         line_no, n_fields[what] - 1);
                memcpy(key_text, f[0], MESH_KEY_BASE64);
                key_text[MESH_KEY_BASE64] = '\0';
                if (mesh_key_from_base64(key_text, key) < 0)
                        return diag_fail(d, -EBADMSG, "mesh-status", (int) line_no,
                                         "line %u of wg's output names no WireGuard key", line_no);
                p = peer_of(s, key);
                if (!p)
                        return diag_fail(d, -EMSGSIZE, "mesh-status", (int) line_no,
                                         "the device lists more than %d peers", MESH_PEERS_MAX);
                switch (what) {
                case MESH_SHOW_ENDPOINTS: {
                        char ep[MESH_ENDPOINT_MAX + 1];

                        if (fn[1] == 6 && memcmp(f[1], "(none)", 6) == 0) {
                                p->endpoint[0] = '\0';
                                break;
                        }
                        if (fn[1] == 0 || fn[1] > MESH_ENDPOINT_MAX)
                                return diag_fail(d, -EBADMSG, "mesh-status", (int) line_no,
                                                 "line %u: the endpoint's length is wrong",
                                                 line_no);
                        memcpy(ep, f[1], fn[1]);
                        ep[fn[1]] = '\0';
                        /* The device's endpoint is where a peer was last heard from: any
                         * literal address outside the mesh range, as mesh_doc_parse() takes. */
                        if (!mesh_endpoint_ok(ep))
                                return diag_fail(d, -EBADMSG, "mesh-status", (int) line_no,
                                                 "line %u: the endpoint is not ADDRESS:PORT",
                                                 line_no);
                        memcpy(p->endpoint, ep, fn[1] + 1);
                        break;
                }
                case MESH_SHOW_LATEST_HANDSHAKES:
                        if (parse_u64(f[1], fn[1], &p->latest_handshake) < 0)
                                return diag_fail(d, -EBADMSG, "mesh-status", (int) line_no,
                                                 "line %u: the handshake time is no number",
                                                 line_no);
                        break;
                case MESH_SHOW_TRANSFER:
                        if (parse_u64(f[1], fn[1], &p->rx_bytes) < 0 ||
                            parse_u64(f[2], fn[2], &p->tx_bytes) < 0)
                                return diag_fail(d, -EBADMSG, "mesh-status", (int) line_no,
                                                 "line %u: the transfer counters are no numbers",
                                                 line_no);
                        break;
                default:
                        break;
                }
        }
        return 0;
}

/* `wg show cloister0 WHAT`'s output, read whole (bounded). */
static int wg_show(const char *runtime_dir, const char *what, char **ret, size_t *ret_size, Diag *d)
{
        _cleanup_(freep) char *path = NULL;
        char *argv[] = { (char *) "wg", (char *) "show", (char *) MESH_DEVICE, (char *) what,
                         NULL };
        FILE *f;
        char *buf;
        long n;
        int r, fd;

        if (asprintf(&path, "%s/wg-show.XXXXXX", runtime_dir) < 0)
                return -ENOMEM;
        fd = mkstemp(path);
        if (fd < 0)
                return diag_fail(d, -errno, "mesh-status", -1, "cannot create %s", path);
        (void) close(fd);
        r = spawn_wait_output(argv, path, "/dev/null");
        f = r == 0 ? fopen(path, "re") : NULL;
        (void) unlink(path);
        if (!f)
                return diag_fail(d, -EIO, "mesh-status", -1,
                                 "'wg show %s %s' failed (%d): is the device up?", MESH_DEVICE,
                                 what, r);
        (void) fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        /* A key, a tab and two 20-digit counters per peer at most. */
        if (n < 0 || n > (long) MESH_PEERS_MAX * (MESH_KEY_BASE64 + MESH_ENDPOINT_MAX + 48)) {
                fclose(f);
                return diag_fail(d, -EMSGSIZE, "mesh-status", -1, "the device lists too much");
        }
        buf = calloc(1, (size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -ENOMEM;
        }
        fclose(f);
        *ret = buf;
        *ret_size = (size_t) n;
        return 0;
}

int mesh_status_read(const char *runtime_dir, MeshStatus *ret, Diag *d)
{
        static const char *const show[_MESH_SHOW_MAX] = {
                [MESH_SHOW_ENDPOINTS] = "endpoints",
                [MESH_SHOW_LATEST_HANDSHAKES] = "latest-handshakes",
                [MESH_SHOW_TRANSFER] = "transfer",
        };
        MeshStatus s = {};
        int r = 0;

        for (int w = 0; w < _MESH_SHOW_MAX && r >= 0; w++) {
                _cleanup_(freep) char *text = NULL;
                size_t n = 0;

                r = wg_show(runtime_dir, show[w], &text, &n, d);
                if (r >= 0)
                        r = mesh_status_parse(&s, (MeshShow) w, text, n, d);
        }
        if (r < 0) {
                mesh_status_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

int mesh_status_to_json(const MeshStatus *s, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        json_t *peers = json_array();

        doc = json_pack("{s:s,s:o}", "device", MESH_DEVICE, "peers", peers);
        if (!doc)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_peers; i++) {
                const MeshPeerStatus *p = &s->peers[i];
                char key[MESH_KEY_BASE64 + 1];
                json_t *o;

                mesh_key_to_base64(p->public_key, key);
                o = json_pack("{s:s,s:o,s:I,s:I,s:I}", "publicKey", key, "endpoint",
                              p->endpoint[0] ? json_string(p->endpoint) : json_null(),
                              "latestHandshake", (json_int_t) p->latest_handshake, "rxBytes",
                              (json_int_t) p->rx_bytes, "txBytes", (json_int_t) p->tx_bytes);
                if (!o || json_array_append_new(peers, o) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(doc);
        return 0;
}

void mesh_status_done(MeshStatus *s)
{
        free(s->peers);
        *s = (MeshStatus){};
}

json_t *mesh_status_report(const char *runtime_dir)
{
        MeshStatus s = {};
        json_t *doc = NULL;
        Diag d;

        diag_clear(&d);
        if (mesh_status_read(runtime_dir, &s, &d) >= 0 && mesh_status_to_json(&s, &doc) >= 0) {
                mesh_status_done(&s);
                return doc;
        }
        mesh_status_done(&s);
        return json_pack("{s:s,s:s}", "device", MESH_DEVICE, "error",
                         d.message[0] ? d.message : "cannot read the device");
}
