/* SPDX-License-Identifier: Apache-2.0 */
/* Versions: parsing, the CLI/node support policy (docs/versions.md), os-release fields. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/fileio.h"
#include "cloister/macro.h"
#include "cloister/version.h"

#define OS_RELEASE_SIZE_MAX (64U * 1024U)
#define OS_RELEASE_LINE_MAX 512U

static int parse_number(const char **p, unsigned *ret)
{
        unsigned v = 0;
        size_t n = 0;

        while (**p >= '0' && **p <= '9') {
                if (++n > 5)
                        return -EINVAL;
                v = v * 10 + (unsigned) (**p - '0');
                (*p)++;
        }
        if (n == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

int cloister_version_parse(const char *s, CloisterVersion *ret)
{
        CloisterVersion v;
        const char *p = s;

        if (!s || strlen(s) >= VERSION_STRING_MAX)
                return -EINVAL;
        if (*p == 'v')
                p++;
        if (parse_number(&p, &v.major) < 0 || *p++ != '.' || parse_number(&p, &v.minor) < 0 ||
            *p++ != '.' || parse_number(&p, &v.patch) < 0)
                return -EINVAL;
        if (*p == '-' || *p == '+') {
                if (!p[1])
                        return -EINVAL;
                for (p++; *p; p++)
                        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                              (*p >= 'A' && *p <= 'Z') || *p == '.' || *p == '-'))
                                return -EINVAL;
        }
        if (*p)
                return -EINVAL;
        *ret = v;
        return 0;
}

int kubernetes_version_parse(const char *s, KubernetesVersion *ret)
{
        KubernetesVersion v;
        const char *p = s;
        unsigned major;

        if (!s || strlen(s) >= VERSION_STRING_MAX || *p++ != 'v')
                return -EINVAL;
        if (parse_number(&p, &major) < 0 || major != 1 || *p++ != '.' ||
            parse_number(&p, &v.minor) < 0 || *p++ != '.' || parse_number(&p, &v.patch) < 0 || *p)
                return -EINVAL;
        *ret = v;
        return 0;
}

int kubernetes_version_step(const char *from, const char *to, char *why, size_t n)
{
        KubernetesVersion f, t;

        if (kubernetes_version_parse(from, &f) < 0 || kubernetes_version_parse(to, &t) < 0) {
                (void) snprintf(why, n, "'%.*s' -> '%.*s': not Kubernetes versions v1.MINOR.PATCH",
                                VERSION_STRING_MAX, from ?: "", VERSION_STRING_MAX, to ?: "");
                return -EINVAL;
        }
        if (t.minor == f.minor && t.patch == f.patch)
                return 0;
        if (t.minor < f.minor || (t.minor == f.minor && t.patch < f.patch)) {
                (void) snprintf(why, n,
                                "%s is older than %s: Kubernetes is never downgraded (kubeadm "
                                "cannot; etcd's data may not be read by an older release). Stay "
                                "on %s, or move to a newer patch release of it",
                                to, from, from);
                return -EPERM;
        }
        if (t.minor > f.minor + 1) {
                (void) snprintf(why, n,
                                "%s skips a minor version from %s: kubeadm upgrades one minor "
                                "version at a time. Upgrade to a v1.%u release first, then to %s",
                                to, from, f.minor + 1, to);
                return -ERANGE;
        }
        return 1;
}

int cloister_version_skew(const char *cli, const char *node, char *why, size_t n)
{
        CloisterVersion c, v;

        if (cloister_version_parse(cli, &c) < 0 || cloister_version_parse(node, &v) < 0) {
                (void) snprintf(why, n, "'%.*s' is not a Cloister version (MAJOR.MINOR.PATCH)",
                                VERSION_STRING_MAX, node ?: "");
                return -EINVAL;
        }
        if (v.major != c.major) {
                (void) snprintf(why, n,
                                "another major version than this CLI's %s: use the CLI of the "
                                "nodes' release",
                                cli);
                return -ERANGE;
        }
        if (v.minor > c.minor) {
                (void) snprintf(why, n,
                                "newer than this CLI (%s): upgrade the CLI first, then the "
                                "nodes",
                                cli);
                return -ERANGE;
        }
        if (v.minor + 1 < c.minor) {
                (void) snprintf(why, n,
                                "more than one minor version behind this CLI (%s): upgrade the "
                                "nodes one minor version at a time, or use an older CLI",
                                cli);
                return -ERANGE;
        }
        return 0;
}

int os_release_parse(const char *text, size_t size, const char *key, char *buf, size_t buf_size)
{
        size_t klen = strlen(key);
        int found = -ENOENT;

        for (size_t pos = 0; pos < size;) {
                const char *line = text + pos, *nl = memchr(line, '\n', size - pos);
                size_t len = nl ? (size_t) (nl - line) : size - pos;
                const char *v;
                size_t vlen;

                pos += len + 1;
                if (len > OS_RELEASE_LINE_MAX)
                        return -EBADMSG;
                if (len <= klen || memcmp(line, key, klen) != 0 || line[klen] != '=')
                        continue;
                v = line + klen + 1;
                vlen = len - klen - 1;
                if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
                        v++;
                        vlen -= 2;
                }
                if (vlen == 0 || vlen >= VERSION_STRING_MAX || vlen >= buf_size)
                        return -EBADMSG;
                for (size_t i = 0; i < vlen; i++)
                        if ((unsigned char) v[i] < ' ' || v[i] == 0x7f || v[i] == '"' ||
                            v[i] == '\'' || v[i] == '\\')
                                return -EBADMSG;
                memcpy(buf, v, vlen);
                buf[vlen] = '\0';
                found = 0; /* the last assignment wins, as in a shell */
        }
        return found;
}

int os_release_get(const char *path, const char *key, char *buf, size_t buf_size)
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, OS_RELEASE_SIZE_MAX, &data, &size);
        if (r < 0)
                return r;
        return os_release_parse((const char *) data, size, key, buf, buf_size);
}
