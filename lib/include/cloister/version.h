/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Cloister's version, the versions a node reports (GET /v1/node: "versions"), and the support
 * policy for a CLI and the nodes it talks to (docs/versions.md): the same major version, and a
 * node at most one minor version behind the CLI, never ahead of it.
 */

#include <stdbool.h>
#include <stddef.h>

#define CLOISTER_VERSION "0.1.0"
/* The node's os-release, where the image build records IMAGE_VERSION and KUBERNETES_VERSION. */
#define OS_RELEASE_DEFAULT "/etc/os-release"
/* Longest version string a node may report (and os-release value read). */
#define VERSION_STRING_MAX 64

typedef struct CloisterVersion {
        unsigned major, minor, patch;
} CloisterVersion;

/* "MAJOR.MINOR.PATCH", each 0..99999, optionally followed by "-" or "+" and [0-9A-Za-z.-]
 * (a pre-release or build suffix, ignored). -EINVAL otherwise. */
int cloister_version_parse(const char *s, CloisterVersion *ret);
/* 0 if a CLI of version cli supports a node of version node; -ERANGE if the skew is beyond the
 * support policy, with why ("the node is newer than this CLI: ...") and the next step in why;
 * -EINVAL if node is not a version (why says so). */
int cloister_version_skew(const char *cli, const char *node, char *why, size_t why_size);

/* A Kubernetes release version: "v1.MINOR.PATCH" (each 0..99999, no suffix). */
typedef struct KubernetesVersion {
        unsigned minor, patch;
} KubernetesVersion;

int kubernetes_version_parse(const char *s, KubernetesVersion *ret);
/* Whether a cluster (or a node) running from may move to to, as kubeadm upgrades one: one minor
 * version at a time, never down (Kubernetes' version skew policy). 0: the same version (nothing
 * to do); 1: a step kubeadm takes (a newer patch release of the same minor version, or the next
 * minor version); -ERANGE: it skips a minor version; -EPERM: to is older (a downgrade);
 * -EINVAL: either is not a version. On < 0, why says which, and the next step. */
int kubernetes_version_step(const char *from, const char *to, char *why, size_t why_size);

/* The value of key in an os-release(5) text (KEY=value, KEY="value" or KEY='value'; lines over
 * 512 bytes, and values with control characters or over VERSION_STRING_MAX - 1 bytes, are
 * refused): -ENOENT if absent, -EBADMSG if malformed. */
int os_release_parse(const char *text, size_t size, const char *key, char *buf, size_t buf_size);
/* The same from a file (at most 64 KiB). */
int os_release_get(const char *path, const char *key, char *buf, size_t buf_size);

typedef struct json_t json_t;
/* What a node reports as "versions" in GET /v1/node (lib/json/json-versions.c):
 * {"cloister": CLOISTER_VERSION, "image": IMAGE_VERSION, "kubernetes": KUBERNETES_VERSION,
 *  "imageKind": "cloud" | "test"}, all but the first from the os-release file (null where it has
 * none; imageKind from CLOISTER_IMAGE_KIND); NULL if out of memory. */
json_t *node_versions_json(const char *os_release);
