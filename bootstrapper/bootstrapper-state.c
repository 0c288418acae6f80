/* SPDX-License-Identifier: Apache-2.0 */
/* The node's state directory when it lives on the encrypted state disk (--state-mount): after a
 * reboot the disk mapper leaves an initialized disk locked (its key is not on the node), and the
 * bootstrapper has it opened and mounted once the join service or the owner released the key. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/spawn.h"

#include "bootstrapper.h"

bool bootstrapper_node_state_exists(const Bootstrapper *b)
{
        _cleanup_(freep) char *path = NULL;

        return asprintf(&path, "%s/node-state.json", b->state_dir) >= 0 && access(path, F_OK) == 0;
}

int bootstrapper_is_mount_point(const char *dir, bool *ret)
{
        struct statx sx, parent;
        _cleanup_(freep) char *up = NULL;

        if (statx(AT_FDCWD, dir, 0, STATX_BASIC_STATS, &sx) < 0) {
                if (errno == ENOENT) {
                        *ret = false;
                        return 0;
                }
                return negative_errno();
        }
        if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
                *ret = !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
                return 0;
        }
        /* Kernels before 5.8: another device than the parent's (not bind mounts of the same file
         * system, which the disk mapper's mount never is: it is the mapped disk's ext4). */
        if (asprintf(&up, "%s/..", dir) < 0)
                return -ENOMEM;
        if (statx(AT_FDCWD, up, 0, STATX_BASIC_STATS, &parent) < 0)
                return negative_errno();
        *ret = sx.stx_dev_major != parent.stx_dev_major || sx.stx_dev_minor != parent.stx_dev_minor;
        return 0;
}

int bootstrapper_open_state(Bootstrapper *b, const Secret *disk_key)
{
        bool mounted = false;
        int r;

        if (!b->state_locked)
                return 0;
        /* The key goes through a pipe to the disk mapper's stdin: never a command line (which
         * /proc shows to everyone), an environment or a file. */
        char *const argv[] = { (char *) b->disk_mapper,
                               (char *) "setup",
                               (char *) "--device",
                               (char *) b->state_disk,
                               (char *) "--key-file",
                               (char *) "-",
                               (char *) "--mount",
                               (char *) b->state_mount,
                               b->state_bind ? (char *) "--bind" : NULL,
                               (char *) b->state_bind,
                               NULL };
        log_info("state disk: its key opens it; %s setup opens it and mounts it on %s%s%s",
                 b->disk_mapper, b->state_mount, b->state_bind ? " with binds " : "",
                 b->state_bind ?: "");
        r = spawn_wait_input(argv, secret_data_const(disk_key), secret_size(disk_key), NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot run the disk mapper %s: %m. Check --disk-mapper.",
                                       b->disk_mapper);
        if (r != 0)
                return log_error_errno(-EIO,
                                       "The disk mapper could not open and mount the state disk "
                                       "(exit status %d; its reason above).",
                                       r);
        r = bootstrapper_is_mount_point(b->state_mount, &mounted);
        if (r < 0 || !mounted)
                return log_error_errno(r < 0 ? r : -ENOTCONN,
                                       "The disk mapper succeeded but %s is not a mount point.",
                                       b->state_mount);
        b->state_locked = false;
        log_info("state disk: mounted on %s; the node state in %s is readable now", b->state_mount,
                 b->state_dir);
        return 0;
}

const char *bootstrapper_state(const Bootstrapper *b)
{
        /* Before "member": a join that failed after PCR 15 was extended did not make one. */
        if (__atomic_load_n(&b->join_failed, __ATOMIC_ACQUIRE))
                return "join-failed";
        if (__atomic_load_n(&b->initialized, __ATOMIC_ACQUIRE))
                return "member";
        switch (b->mode) {
        case BOOTSTRAPPER_MODE_INIT:
                return "uninitialized";
        case BOOTSTRAPPER_MODE_RECOVER:
                return "awaiting-recovery";
        default:
                return "joining";
        }
}

int bootstrapper_refusal_code(json_t **ret_response, const char *code, int r)
{
        json_decref(*ret_response);
        *ret_response = json_pack("{s:s}", "code", code);
        return r;
}

/* The cluster ID node-state.json records, for messages ("" if it is not readable: a locked
 * state disk, or no cluster yet). */
static void recorded_cluster(const Bootstrapper *b, char cid[static 65])
{
        _cleanup_(freep) char *path = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *s;

        cid[0] = '\0';
        if (asprintf(&path, "%s/node-state.json", b->state_dir) < 0 ||
            json_parse_file(path, 64 * 1024, &j, NULL) < 0)
                return;
        s = json_string_value(json_object_get(j, "clusterId"));
        if (s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64)
                (void) snprintf(cid, 65, "%s", s);
}

int bootstrapper_handle_wrong_state(void *userdata, const RpcRequest *req, json_t **ret_response,
                                    char *detail, size_t n)
{
        const Bootstrapper *b = userdata;
        const char *state = bootstrapper_state(b), *code;
        bool init = strcmp(req->path, "/v1/init") == 0;
        char cid[65], cluster[96];

        recorded_cluster(b, cid);
        (void) snprintf(cluster, sizeof(cluster), cid[0] ? "cluster %.16s..." : "a cluster", cid);
        if (strcmp(state, "awaiting-recovery") == 0) {
                code = "awaiting-recovery";
                (void) snprintf(detail, n,
                                "node %s was a control plane of %s and waits for 'cloister "
                                "recover' (its whole control plane was down): nothing to "
                                "initialise; run 'cloister recover --node %s'",
                                b->node_name, cluster, b->endpoint ?: "HOST");
        } else if (strcmp(state, "uninitialized") == 0) {
                code = "not-initialized";
                (void) snprintf(detail, n,
                                "node %s is in no cluster yet: nothing to recover; run 'cloister "
                                "apply --endpoint %s' to make it a cluster's first node",
                                b->node_name, b->endpoint ?: "HOST");
        } else {
                code = "already-member";
                (void) snprintf(detail, n,
                                "node %s is already a member of %s: nothing to %s; run "
                                "'cloister verify --node %s'",
                                b->node_name, cluster, init ? "initialise" : "recover",
                                b->endpoint ?: "HOST");
        }
        log_notice("bootstrapper: %s %s refused: %s", req->method, req->path, detail);
        return bootstrapper_refusal_code(ret_response, code, -EALREADY);
}
