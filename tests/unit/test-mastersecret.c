/* SPDX-License-Identifier: Apache-2.0 */
#include <sys/stat.h>

#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/mastersecret.h"

static void path_in_tmp(char *buf, size_t n, const char *name)
{
        (void) snprintf(buf, n, "%s/%s", test_tmpdir(), name);
}

static void test_master_secret_write_then_load_round_trips(void **state)
{
        _cleanup_(master_secret_freep) MasterSecret *m = NULL, *l = NULL;
        char path[256];
        struct stat st;
        Diag d;

        path_in_tmp(path, sizeof(path), "rt.json");
        diag_clear(&d);
        assert_int_equal(master_secret_generate(&m), 0);
        assert_int_equal(master_secret_write(m, path, &d), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(master_secret_load(path, &l, &d), 0);
        assert_true(secret_equal(m->key, l->key));
        assert_memory_equal(m->salt, l->salt, MASTER_SALT_SIZE);
}

static void test_master_secret_write_never_overwrites(void **state)
{
        _cleanup_(master_secret_freep) MasterSecret *m = NULL;
        _cleanup_(freep) uint8_t *content = NULL;
        char path[256];
        size_t n;
        FILE *f;
        Diag d;

        path_in_tmp(path, sizeof(path), "exists.json");
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("old", f);
        fclose(f);
        diag_clear(&d);
        assert_int_equal(master_secret_generate(&m), 0);
        assert_int_equal(master_secret_write(m, path, &d), -EEXIST);
        assert_string_equal(d.check, "file-exists");
        assert_int_equal(read_full_file(path, 100, &content, &n), 0);
        assert_string_equal((char *) content, "old");
}

static void test_master_secret_load_failure_leaves_output_untouched(void **state)
{
        MasterSecret *m = (MasterSecret *) 0x1;
        char path[256];
        FILE *f;
        Diag d;

        path_in_tmp(path, sizeof(path), "bad.json");
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("{\"version\":1,\"key\":\"AAAA\",\"salt\":\"AAAA\"}", f);
        fclose(f);
        diag_clear(&d);
        assert_int_equal(master_secret_load(path, &m, &d), -EBADMSG);
        assert_ptr_equal(m, (MasterSecret *) 0x1);
        assert_non_null(strstr(d.message, ".key: expected base64 of exactly 32 bytes"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_master_secret_write_then_load_round_trips),
                cmocka_unit_test(test_master_secret_write_never_overwrites),
                cmocka_unit_test(test_master_secret_load_failure_leaves_output_untouched),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
