/* SPDX-License-Identifier: Apache-2.0 */
/* Node metadata from QEMU's fw_cfg (a file the guest's qemu_fw_cfg driver shows in sysfs):
 * host-controlled like a cloud's metadata service, so parsed by the same bounded local parser;
 * absent while the driver is not loaded yet, so looked for again with backoff. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/macro.h"
#include "cloister/metadata.h"

#define GOOD                                                                                       \
        "{\"name\": \"node-1\", \"role\": \"worker\", \"peers\": [\"10.0.0.2:9000\"], "            \
        "\"clusterId\": \"" HEX64 "\"}"
#define HEX64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static char *tmp_path(const char *name)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", test_tmpdir(), name) > 0);
        (void) unlink(p);
        return p;
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void poison(NodeMetadata *m)
{
        memset(m, 0xa5, sizeof(*m));
}

static bool poisoned(const NodeMetadata *m)
{
        const uint8_t *p = (const uint8_t *) m;

        for (size_t i = 0; i < sizeof(*m); i++)
                if (p[i] != 0xa5)
                        return false;
        return true;
}

static void test_metadata_provider_qemu_round_trips(void **state)
{
        assert_int_equal(metadata_provider_from_string("qemu"), METADATA_QEMU);
        assert_string_equal(metadata_provider_to_string(METADATA_QEMU), "qemu");
        assert_int_equal(metadata_provider_from_string("qemu-fw-cfg"), -EINVAL);
}

static void test_metadata_qemu_reads_the_local_form_from_a_path_and_a_file_url(void **state)
{
        _cleanup_(freep) char *path = tmp_path("fw-cfg-raw"), *url = NULL;
        NodeMetadata m;
        Diag d;

        write_text(path, GOOD);
        diag_clear(&d);
        assert_int_equal(metadata_fetch(METADATA_QEMU, path, 1000, &m, &d), 0);
        assert_string_equal(m.name, "node-1");
        assert_int_equal(m.role, NODE_ROLE_WORKER);
        assert_int_equal(m.n_peers, 1);
        assert_string_equal(m.peers[0], "10.0.0.2:9000");
        assert_string_equal(m.cluster_id, HEX64);

        assert_true(asprintf(&url, "file://%s", path) > 0);
        poison(&m);
        assert_int_equal(metadata_fetch(METADATA_QEMU, url, 1000, &m, &d), 0);
        assert_string_equal(m.name, "node-1");
}

static void test_metadata_qemu_absent_file_fails_after_the_timeout_naming_fw_cfg(void **state)
{
        _cleanup_(freep) char *path = tmp_path("never-there");
        uint64_t start = now_ms(), took;
        NodeMetadata m;
        Diag d;

        poison(&m);
        diag_clear(&d);
        assert_int_equal(metadata_fetch(METADATA_QEMU, path, 700, &m, &d), -ENOENT);
        took = now_ms() - start;
        /* Waited the whole timeout (backoff 200, 400, then what is left), not much longer. */
        assert_true(took >= 650 && took < 1500);
        assert_non_null(strstr(d.message, path));
        assert_non_null(strstr(d.message, "-fw_cfg name=opt/cloister/metadata,file="));
        assert_true(poisoned(&m));
}

static void *create_later(void *path)
{
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 300 * 1000000L };
        _cleanup_(freep) char *tmp = NULL;

        (void) nanosleep(&ts, NULL);
        /* Appears whole, as a sysfs file does once the driver is loaded. */
        if (asprintf(&tmp, "%s.tmp", (char *) path) < 0)
                return NULL;
        write_text(tmp, GOOD);
        (void) rename(tmp, path);
        return NULL;
}

static void test_metadata_qemu_file_that_appears_late_is_found_with_backoff(void **state)
{
        _cleanup_(freep) char *path = tmp_path("late");
        uint64_t start = now_ms(), took;
        pthread_t t;
        NodeMetadata m;
        Diag d;

        assert_int_equal(pthread_create(&t, NULL, create_later, path), 0);
        diag_clear(&d);
        assert_int_equal(metadata_fetch(METADATA_QEMU, path, 10000, &m, &d), 0);
        took = now_ms() - start;
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_string_equal(m.name, "node-1");
        /* Looked at 0, 200 and 600 ms: found at the third look, long before the timeout. */
        assert_true(took >= 300 && took < 1500);
}

static void test_metadata_qemu_is_parsed_strictly(void **state)
{
        static const struct {
                const char *json, *why;
        } bad[] = {
                { "{\"name\": \"n\", \"role\": \"admin\"}", "role" },
                { "{\"name\": \"n\", \"role\": \"worker\", \"extra\": 1}", "extra" },
                { "{\"name\": \"n; rm -rf /\", \"role\": \"worker\"}", "node name" },
                { "{\"name\": \"n\", \"role\": \"worker\", \"peers\": [\"a b:1\"]}", "peer 0" },
                { "{\"name\": \"n\", \"role\": \"worker\", \"clusterId\": \"XY\"}", "cluster ID" },
                { "[1, 2]", "" },
                { "{\"name\": \"n\",", "" },
        };
        _cleanup_(freep) char *path = tmp_path("bad");

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                NodeMetadata m;
                Diag d;

                write_text(path, bad[i].json);
                poison(&m);
                diag_clear(&d);
                assert_int_equal(metadata_fetch(METADATA_QEMU, path, 5000, &m, &d), -EBADMSG);
                assert_non_null(strstr(d.message, bad[i].why));
                assert_true(poisoned(&m));
        }
}

static void test_metadata_qemu_other_errors_are_not_retried(void **state)
{
        _cleanup_(freep) char *big = tmp_path("big");
        uint64_t start = now_ms();
        NodeMetadata m;
        Diag d;
        int fd;

        /* Larger than any metadata: refused before it is read, at once. */
        fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, METADATA_SIZE_MAX + 1), 0);
        (void) close(fd);
        diag_clear(&d);
        assert_int_equal(metadata_fetch(METADATA_QEMU, big, 5000, &m, &d), -EMSGSIZE);
        diag_clear(&d);
        assert_int_equal(metadata_fetch(METADATA_QEMU, test_tmpdir(), 5000, &m, &d), -EISDIR);
        assert_true(now_ms() - start < 1000);
}

static void test_metadata_qemu_refuses_what_is_not_a_file(void **state)
{
        NodeMetadata m;
        Diag d;

        diag_clear(&d);
        assert_int_equal(metadata_fetch(METADATA_QEMU, "http://10.0.0.1/metadata", 1000, &m, &d),
                         -EINVAL);
        assert_non_null(strstr(d.message, "file:///"));
        assert_int_equal(metadata_fetch(METADATA_QEMU, "relative/raw", 1000, &m, &d), -EINVAL);
        assert_int_equal(metadata_fetch(METADATA_QEMU, "file://host/raw", 1000, &m, &d), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_metadata_provider_qemu_round_trips),
                cmocka_unit_test(
                        test_metadata_qemu_reads_the_local_form_from_a_path_and_a_file_url),
                cmocka_unit_test(
                        test_metadata_qemu_absent_file_fails_after_the_timeout_naming_fw_cfg),
                cmocka_unit_test(test_metadata_qemu_file_that_appears_late_is_found_with_backoff),
                cmocka_unit_test(test_metadata_qemu_is_parsed_strictly),
                cmocka_unit_test(test_metadata_qemu_other_errors_are_not_retried),
                cmocka_unit_test(test_metadata_qemu_refuses_what_is_not_a_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
