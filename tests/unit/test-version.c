/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include <stdlib.h>
#include <unistd.h>

#include "cloister/json.h"
#include "cloister/macro.h"
#include "cloister/version.h"

static void test_version_parse_accepts_releases_and_suffixes_only(void **state)
{
        static const char *const good[] = { "0.1.0", "v1.30.0", "12.0.99999", "1.2.3-rc.1",
                                            "1.2.3+build.5" };
        static const char *const bad[] = { "",           "1.2",    "1.2.3.4", "1..3",
                                           "a.b.c",      "1.2.3-", "1.2.3 ",  "1.2.3-\n",
                                           "123456.0.0", "-1.2.3", "1.2.3-ü" };
        CloisterVersion v = { 7, 7, 7 };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_int_equal(cloister_version_parse(good[i], &v), 0);
        assert_int_equal(cloister_version_parse("v1.30.2", &v), 0);
        assert_int_equal(v.major, 1);
        assert_int_equal(v.minor, 30);
        assert_int_equal(v.patch, 2);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                v = (CloisterVersion){ 7, 7, 7 };
                assert_int_equal(cloister_version_parse(bad[i], &v), -EINVAL);
                assert_int_equal(v.major, 7); /* untouched on failure */
        }
}

/* docs/versions.md: same major, the node at most one minor behind the CLI, never ahead. */
static void test_version_skew_follows_the_support_policy(void **state)
{
        static const struct {
                const char *cli, *node;
                int r;
                const char *why;
        } cases[] = {
                { "0.1.0", "0.1.0", 0, NULL },
                { "0.1.0", "0.1.7", 0, NULL }, /* patch versions: always */
                { "0.2.3", "0.1.0", 0, NULL }, /* one minor behind */
                { "0.3.0", "0.1.9", -ERANGE, "more than one minor version behind" },
                { "0.1.0", "0.2.0", -ERANGE, "newer than this CLI" },
                { "1.0.0", "0.9.0", -ERANGE, "another major version" },
                { "0.1.0", "banana", -EINVAL, "is not a Cloister version" },
        };
        char why[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                why[0] = '\0';
                assert_int_equal(
                        cloister_version_skew(cases[i].cli, cases[i].node, why, sizeof(why)),
                        cases[i].r);
                if (cases[i].why)
                        assert_non_null(strstr(why, cases[i].why));
        }
}

static void test_os_release_parse_reads_quoted_and_bare_values_and_refuses_bad_ones(void **state)
{
        static const char text[] = "NAME=\"Debian GNU/Linux\"\n"
                                   "IMAGE_ID=cloister-node\n"
                                   "IMAGE_VERSION=\"v0.1.0-12-gabc\"\n"
                                   "KUBERNETES_VERSION='v1.30.0'\n";
        char buf[VERSION_STRING_MAX];

        assert_int_equal(os_release_parse(text, strlen(text), "IMAGE_VERSION", buf, sizeof(buf)),
                         0);
        assert_string_equal(buf, "v0.1.0-12-gabc");
        assert_int_equal(
                os_release_parse(text, strlen(text), "KUBERNETES_VERSION", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "v1.30.0");
        assert_int_equal(os_release_parse(text, strlen(text), "IMAGE", buf, sizeof(buf)), -ENOENT);
        /* A value with a control character, an escape, or longer than a version may be. */
        assert_int_equal(
                os_release_parse("IMAGE_VERSION=\"a\tb\"\n", 20, "IMAGE_VERSION", buf, sizeof(buf)),
                -EBADMSG);
        assert_int_equal(
                os_release_parse("IMAGE_VERSION=a\\nb\n", 19, "IMAGE_VERSION", buf, sizeof(buf)),
                -EBADMSG);
        {
                char longer[200];
                int n = snprintf(longer, sizeof(longer), "IMAGE_VERSION=%0100d\n", 1);
                assert_int_equal(
                        os_release_parse(longer, (size_t) n, "IMAGE_VERSION", buf, sizeof(buf)),
                        -EBADMSG);
        }
        /* Not NUL-terminated: only size bytes are read. */
        assert_int_equal(
                os_release_parse("IMAGE_VERSION=1.2.3XXXX", 19, "IMAGE_VERSION", buf, sizeof(buf)),
                0);
        assert_string_equal(buf, "1.2.3");
}

/* versions.imageKind (image/README.md, "Kubernetes"): CLOISTER_IMAGE_KIND when it is cloud or
 * test; test for the kubeadm double's VARIANT_ID; null for anything else. */
static void test_node_versions_image_kind_is_cloud_test_or_null(void **state)
{
        static const struct {
                const char *os_release, *kind;
        } cases[] = {
                { "IMAGE_VERSION=v1\nCLOISTER_IMAGE_KIND=cloud\n", "cloud" },
                { "IMAGE_VERSION=v1\nCLOISTER_IMAGE_KIND=\"test\"\n", "test" },
                { "IMAGE_VERSION=v1\nVARIANT_ID=kubeadm-double\n", "test" },
                { "IMAGE_VERSION=v1\nCLOISTER_IMAGE_KIND=production\n", NULL },
                { "IMAGE_VERSION=v1\nCLOISTER_IMAGE_KIND=production\nVARIANT_ID=kubeadm-double\n",
                  NULL },
                { "IMAGE_VERSION=v1\n", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char path[] = "/tmp/test-version-osrel-XXXXXX";
                int fd = mkstemp(path);
                json_t *v, *k;

                assert_true(fd >= 0);
                assert_int_equal(write(fd, cases[i].os_release, strlen(cases[i].os_release)),
                                 (ssize_t) strlen(cases[i].os_release));
                close(fd);
                v = node_versions_json(path);
                unlink(path);
                assert_non_null(v);
                k = json_object_get(v, "imageKind");
                if (cases[i].kind)
                        assert_string_equal(json_string_value(k), cases[i].kind);
                else
                        assert_true(json_is_null(k));
                assert_string_equal(json_string_value(json_object_get(v, "image")), "v1");
                json_decref(v);
        }
}

/* kubeadm's rule (docs/upgrade.md, "Kubernetes versions"): one minor version at a time, never
 * down; patch releases of the same minor version freely upward. */
static void test_kubernetes_version_step_takes_one_minor_at_a_time_and_never_down(void **state)
{
        static const struct {
                const char *from, *to;
                int r;
                const char *why;
        } cases[] = {
                { "v1.35.1", "v1.35.1", 0, NULL },
                { "v1.34.3", "v1.35.1", 1, NULL }, /* the next minor version */
                { "v1.34.3", "v1.35.0", 1, NULL }, /* any patch release of it */
                { "v1.35.0", "v1.35.1", 1, NULL }, /* a patch release */
                { "v1.33.9", "v1.35.1", -ERANGE, "skips a minor version" },
                { "v1.33.9", "v1.35.1", -ERANGE, "Upgrade to a v1.34 release first" },
                { "v1.35.1", "v1.34.3", -EPERM, "never downgraded" },
                { "v1.35.1", "v1.35.0", -EPERM, "is older than v1.35.1" },
                { "v1.35", "v1.35.1", -EINVAL, "not Kubernetes versions" },
                { "v2.0.0", "v2.0.1", -EINVAL, NULL },
                { "v1.35.1", "1.36.0", -EINVAL, NULL },
                { "v1.35.1", "v1.36.0-rc.1", -EINVAL, NULL },
        };
        KubernetesVersion v = { 7, 7 };
        char why[256];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                why[0] = '\0';
                assert_int_equal(
                        kubernetes_version_step(cases[i].from, cases[i].to, why, sizeof(why)),
                        cases[i].r);
                if (cases[i].why)
                        assert_non_null(strstr(why, cases[i].why));
        }
        assert_int_equal(kubernetes_version_parse("v1.35.100000", &v), -EINVAL);
        assert_int_equal(v.minor, 7); /* untouched on failure */
        assert_int_equal(kubernetes_version_parse("v1.35.1", &v), 0);
        assert_int_equal(v.minor, 35);
        assert_int_equal(v.patch, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_version_parse_accepts_releases_and_suffixes_only),
                cmocka_unit_test(test_version_skew_follows_the_support_policy),
                cmocka_unit_test(
                        test_os_release_parse_reads_quoted_and_bare_values_and_refuses_bad_ones),
                cmocka_unit_test(test_node_versions_image_kind_is_cloud_test_or_null),
                cmocka_unit_test(
                        test_kubernetes_version_step_takes_one_minor_at_a_time_and_never_down),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
