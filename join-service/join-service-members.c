/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/mesh.h"

#include "join-service.h"

/* members.json: {"version": 1, "members": [{"name", "role", "endpoint", "diskUuid",
 * "akDigest", "admitted"}]}, the nodes this join service admitted (and the node itself), on the
 * encrypted state disk. Written whole and renamed into place. */
#define MEMBERS_SIZE_MAX (4U * 1024U * 1024U)

static int members_path(JoinService *js, char **ret)
{
        return asprintf(ret, "%s/members.json", js->state_dir) < 0 ? -ENOMEM : 0;
}

int members_load_local(JoinService *js, json_t **ret)
{
        static const char *const keys[] = { "version", "members", NULL };
        _cleanup_(freep) char *path = NULL;
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx ctx = { .path = "" };
        json_t *list = NULL;
        Diag d;
        int r;

        r = members_path(js, &path);
        if (r < 0)
                return r;
        diag_clear(&d);
        ctx.source = path;
        ctx.diag = &d;
        r = json_parse_file(path, MEMBERS_SIZE_MAX, &doc, &d);
        if (r == -ENOENT) {
                *ret = json_pack("{s:i,s:[]}", "version", 1, "members");
                return *ret ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = json_check_keys(&ctx, doc, keys);
        if (r >= 0)
                r = json_get_array(&ctx, doc, "members", true, &list);
        if (r < 0)
                return log_error_errno(r, "join-service: %s", d.message);
        *ret = TAKE_PTR(doc);
        return 0;
}

/* The member whose field equals value (any case, for UUIDs: the key derivation lowercases). */
static const json_t *members_find_by(const json_t *doc, const char *field, const char *value,
                                     bool any_case)
{
        const json_t *list = json_object_get(doc, "members"), *m;
        size_t i;

        json_array_foreach (list, i, m) {
                const char *v = json_string_value(json_object_get(m, field));
                if (v && (any_case ? strcasecmp(v, value) : strcmp(v, value)) == 0)
                        return m;
        }
        return NULL;
}

/* With etcd, the cluster's membership there is authoritative: read it (a failure is the caller's
 * to refuse on: fail closed) and keep a copy in members.json as the cache the re-attestation
 * process and a restart read. */
int members_load_diag(JoinService *js, json_t **ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *path = NULL, *text = NULL;
        int r;

        if (!js->etcd)
                return members_load_local(js, ret);
        r = join_etcd_members_load(js, &doc, d);
        if (r < 0)
                return r;
        r = members_path(js, &path);
        if (r >= 0)
                r = json_dump_pretty(doc, &text);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                log_warning_errno(r, "join-service: cannot write the membership cache: %m");
        *ret = TAKE_PTR(doc);
        return 0;
}

int members_load(JoinService *js, json_t **ret)
{
        Diag d;
        int r;

        diag_clear(&d);
        r = members_load_diag(js, ret, &d);
        if (r < 0 && js->etcd)
                log_error("join-service: the cluster's membership in etcd cannot be read: %s",
                          d.message);
        return r;
}

const json_t *members_find(const json_t *doc, const char *name)
{
        return members_find_by(doc, "name", name, false);
}

const json_t *members_find_disk(const json_t *doc, const char *disk_uuid)
{
        return members_find_by(doc, "diskUuid", disk_uuid, true);
}

const json_t *members_find_ak(const json_t *doc, const char *ak_digest)
{
        return members_find_by(doc, "akDigest", ak_digest, false);
}

int members_record(JoinService *js, const char *name, const char *role, const char *endpoint,
                   const char *disk_uuid, const char *ak_digest)
{
        _cleanup_(json_decrefp) json_t *doc = NULL, *entry = NULL, *mesh_address = NULL,
                                       *wg_key = NULL;
        _cleanup_(freep) char *path = NULL, *text = NULL;
        json_t *list, *m;
        char now[32];
        time_t t = time(NULL);
        struct tm tm;
        size_t i;
        int r;

        r = members_load_local(js, &doc);
        if (r < 0)
                return r;
        (void) gmtime_r(&t, &tm);
        (void) strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
        list = json_object_get(doc, "members");
        /* A name is one member: a node that joins again (a new disk, a new machine) replaces
         * its old record. The same node (the same attestation key) keeps its mesh address and
         * WireGuard key (docs/mesh.md). */
        json_array_foreach (list, i, m)
                if (strcmp(json_string_value(json_object_get(m, "name")) ?: "", name) == 0) {
                        if (ak_digest && ak_digest[0] &&
                            strcmp(json_string_value(json_object_get(m, "akDigest")) ?: "",
                                   ak_digest) == 0) {
                                mesh_address = json_incref(json_object_get(m, "meshAddress"));
                                wg_key = json_incref(json_object_get(m, "wgPublicKey"));
                        }
                        (void) json_array_remove(list, i);
                        break;
                }
        entry = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", name, "role", role, "endpoint",
                          endpoint, "diskUuid", disk_uuid, "akDigest", ak_digest ?: "", "admitted",
                          now);
        if (!entry || (mesh_address && json_object_set(entry, "meshAddress", mesh_address) < 0) ||
            (wg_key && json_object_set(entry, "wgPublicKey", wg_key) < 0) ||
            json_array_append_new(list, TAKE_PTR(entry)) < 0)
                return -ENOMEM;
        r = members_path(js, &path);
        if (r >= 0)
                r = json_dump_pretty(doc, &text);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
}

int members_set_mesh(JoinService *js, const char *name, const char *wg_key,
                     char ret_address[static MESH_ADDRESS_MAX + 1])
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *path = NULL, *text = NULL;
        const json_t *list, *m;
        json_t *member = NULL;
        const char *have, *key;
        size_t i;
        int r;

        r = members_load(js, &doc);
        if (r < 0)
                return r;
        list = json_object_get(doc, "members");
        json_array_foreach (list, i, m)
                if (strcmp(json_string_value(json_object_get(m, "name")) ?: "", name) == 0)
                        member = (json_t *) m;
        if (!member)
                return -ENOENT;
        have = json_string_value(json_object_get(member, "meshAddress"));
        key = json_string_value(json_object_get(member, "wgPublicKey"));
        if (have && mesh_address_ok(have) && key && strcmp(key, wg_key) == 0) {
                (void) snprintf(ret_address, MESH_ADDRESS_MAX + 1, "%s", have);
                return 0; /* nothing changed: no write */
        }
        if (!have || !mesh_address_ok(have)) {
                /* The lowest host number no member holds. */
                char candidate[MESH_ADDRESS_MAX + 1] = "";
                for (unsigned n = 1; n <= MESH_PEERS_MAX && !candidate[0]; n++) {
                        bool taken = false;
                        (void) mesh_address_of(n, candidate);
                        json_array_foreach (list, i, m)
                                taken = taken ||
                                        strcmp(json_string_value(json_object_get(m, "meshAddress"))
                                                       ?: "",
                                               candidate) == 0;
                        if (taken)
                                candidate[0] = '\0';
                }
                if (!candidate[0])
                        return -ENOSPC;
                if (json_object_set_new(member, "meshAddress", json_string(candidate)) < 0)
                        return -ENOMEM;
                have = json_string_value(json_object_get(member, "meshAddress"));
        }
        if (json_object_set_new(member, "wgPublicKey", json_string(wg_key)) < 0)
                return -ENOMEM;
        (void) snprintf(ret_address, MESH_ADDRESS_MAX + 1, "%s", have);
        r = members_path(js, &path);
        if (r >= 0)
                r = json_dump_pretty(doc, &text);
        if (r < 0)
                return r;
        r = write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
        return r < 0 ? r : 1;
}
