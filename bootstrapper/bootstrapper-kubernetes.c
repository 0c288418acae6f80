/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes release a node's state disk runs (docs/upgrade.md, "Kubernetes versions"):
 * recorded in node-state.json at init and join; on a later boot of a member, the release its
 * image carries (os-release KUBERNETES_VERSION) is held against it. The same: nothing to do. The
 * next minor version (or a newer patch release): kubeadm upgrade, before the node counts as a
 * member again (before PCR 15): `kubeadm upgrade apply V` on the first control plane (the cluster
 * is still older), `kubeadm upgrade node` on every other node once the control plane runs V.
 * Anything else (a downgrade, a skipped minor version, a kubelet newer than the control plane)
 * is refused, and the node does not come back.
 */
#include <stdio.h>
#include <string.h>

#include "bootstrapper.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/spawn.h"
#include "cloister/version.h"

int bootstrapper_image_kubernetes(const Bootstrapper *b, char buf[static VERSION_STRING_MAX])
{
        KubernetesVersion v;
        int r;

        r = os_release_get(b->os_release ?: OS_RELEASE_DEFAULT, "KUBERNETES_VERSION", buf,
                           VERSION_STRING_MAX);
        if (r < 0)
                return r;
        return kubernetes_version_parse(buf, &v) < 0 ? -EBADMSG : 0;
}

static int node_state_load(const Bootstrapper *b, char **ret_path, json_t **ret)
{
        _cleanup_(freep) char *path = NULL;
        Diag d;
        int r;

        if (asprintf(&path, "%s/node-state.json", b->state_dir) < 0)
                return -ENOMEM;
        diag_clear(&d);
        r = json_parse_file(path, 64 * 1024, ret, &d);
        if (r < 0)
                return r;
        if (!json_is_object(*ret))
                return -EBADMSG;
        *ret_path = TAKE_PTR(path);
        return 0;
}

int bootstrapper_record_kubernetes(const Bootstrapper *b, const char *version)
{
        _cleanup_(freep) char *path = NULL, *text = NULL;
        _cleanup_(json_decrefp) json_t *st = NULL;
        int r;

        r = node_state_load(b, &path, &st);
        if (r < 0)
                return r;
        if (json_object_set_new(st, "kubernetesVersion", json_string(version)) < 0 ||
            json_dump_compact(st, &text) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
}

static int run_upgrade(Bootstrapper *b, bool apply, bool control_plane, const char *version)
{
        _cleanup_(freep) char *kubeconfig = NULL, *logpath = NULL;
        int r;

        /* A control plane's kubeadm acts as the cluster's admin; a worker's with its kubelet's
         * credentials, as kubeadm does when a node has no admin.conf. */
        if (asprintf(&kubeconfig, "%s/%s", b->state_dir,
                     control_plane ? "admin.conf" : "kubelet.conf") < 0 ||
            asprintf(&logpath, "%s/kubeadm.log", b->state_dir) < 0)
                return -ENOMEM;
        char *const argv_apply[] = { (char *) b->kubeadm, (char *) "upgrade",
                                     (char *) "apply",    (char *) version,
                                     (char *) "--yes",    (char *) "--kubeconfig",
                                     kubeconfig,          NULL };
        char *const argv_node[] = { (char *) b->kubeadm,     (char *) "upgrade", (char *) "node",
                                    (char *) "--kubeconfig", kubeconfig,         NULL };
        log_info("kubernetes: kubeadm upgrade %s (node %s, to Kubernetes %s)",
                 apply ? "apply" : "node", b->node_name, version);
        r = spawn_wait(apply ? argv_apply : argv_node, logpath);
        if (r != 0)
                return log_error_errno(r < 0 ? r : -EIO, "kubeadm upgrade %s failed (see %s).",
                                       apply ? "apply" : "node", logpath);
        return 0;
}

int bootstrapper_kubernetes_follow(Bootstrapper *b, const char *cluster, char *why, size_t n)
{
        _cleanup_(freep) char *path = NULL;
        _cleanup_(json_decrefp) json_t *st = NULL;
        char image[VERSION_STRING_MAX], step_why[512];
        const char *recorded, *role;
        bool control_plane, apply;
        int r, step;

        r = bootstrapper_image_kubernetes(b, image);
        if (r == -ENOENT)
                return 0; /* the image names no release: nothing to hold the disk's against */
        if (r < 0) {
                (void) snprintf(why, n,
                                "the image's os-release (%s) has a KUBERNETES_VERSION "
                                "that is not v1.MINOR.PATCH: a broken image",
                                b->os_release ?: OS_RELEASE_DEFAULT);
                return r;
        }
        r = node_state_load(b, &path, &st);
        if (r < 0) {
                (void) snprintf(why, n, "the node state cannot be read");
                return r;
        }
        recorded = json_string_value(json_object_get(st, "kubernetesVersion"));
        role = json_string_value(json_object_get(st, "role"));
        control_plane = role && strcmp(role, "control-plane") == 0;
        if (!recorded) {
                log_notice("kubernetes: the node state records no Kubernetes version (made "
                           "before versions were recorded): recording this image's %s",
                           image);
                return bootstrapper_record_kubernetes(b, image);
        }
        step = kubernetes_version_step(recorded, image, step_why, sizeof(step_why));
        if (step == 0)
                return 0;
        if (step < 0) {
                (void) snprintf(why, n,
                                "this image carries Kubernetes %s, but the state disk runs %s: "
                                "%s; boot an image that carries %s or the next minor version",
                                image, recorded, step_why, recorded);
                return step == -ERANGE || step == -EPERM ? -EPERM : step;
        }
        /* The cluster's release (the join service's node state, in its rejoin answer). None
         * (recovery: the single control plane) or an older one: this control plane is the
         * first on the new release and upgrades the cluster. Otherwise the cluster must run
         * this image's release already: no kubelet newer than its API server (Kubernetes'
         * version skew policy). */
        apply = control_plane && (!cluster || kubernetes_version_step(cluster, image, step_why,
                                                                      sizeof(step_why)) == 1);
        if (!apply && (!cluster || strcmp(cluster, image) != 0)) {
                (void) snprintf(why, n,
                                "this image carries Kubernetes %s, but the cluster's control plane "
                                "runs %s: the control plane is upgraded first (no kubelet may be "
                                "newer than the API server); upgrade it, then reboot this node "
                                "again",
                                image, cluster ?: "a release its join service did not say");
                return -EPERM;
        }
        r = run_upgrade(b, apply, control_plane, image);
        if (r < 0) {
                (void) snprintf(why, n, "kubeadm upgrade %s to %s failed (%s/kubeadm.log)",
                                apply ? "apply" : "node", image, b->state_dir);
                return r;
        }
        r = bootstrapper_record_kubernetes(b, image);
        if (r < 0) {
                (void) snprintf(why, n, "cannot record Kubernetes %s in %s", image, path);
                return r;
        }
        log_info("kubernetes: %s runs Kubernetes %s now (was %s)", b->node_name, image, recorded);
        return 0;
}
