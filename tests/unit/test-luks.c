/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/luks.h"

/* LUKS2 headers on image files (no device-mapper needed for header work; activation and
 * mounting happen only inside a guest). */

static char path[256];

static void fresh_image(void)
{
        int fd;

        (void) snprintf(path, sizeof(path), "%s/disk.img", test_tmpdir());
        (void) unlink(path);
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 32 * 1024 * 1024), 0);
        close(fd);
}

/* cryptsetup(8) as the hostile host: adds a keyslot, or reformats with another profile. */
static int cryptsetup(char *const argv[])
{
        pid_t pid = fork();
        int status;

        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1), dup2(null, 2);
                execvp("cryptsetup", argv);
                _exit(127);
        }
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static Secret *key_of(uint8_t byte)
{
        uint8_t k[32];
        Secret *s = NULL;

        memset(k, byte, sizeof(k));
        assert_int_equal(secret_new_from(k, sizeof(k), &s), 0);
        return s;
}

static void write_keyfile(const char *file, uint8_t byte)
{
        uint8_t k[32];
        FILE *f = fopen(file, "we");

        memset(k, byte, sizeof(k));
        fwrite(k, 1, sizeof(k), f);
        fclose(f);
}

static void test_luks_format_validate_and_key(void **state)
{
        _cleanup_(secret_freep) Secret *k1 = key_of(1), *k2 = key_of(2);
        char uuid[LUKS_UUID_SIZE], uuid2[LUKS_UUID_SIZE];
        LuksState st;
        Diag d;

        fresh_image();
        diag_clear(&d);
        assert_int_equal(luks_format(path, k1, uuid, &d), 0);
        assert_int_equal(strlen(uuid), 36);
        assert_int_equal(luks_validate(path, uuid2, &st, &d), 0);
        assert_string_equal(uuid, uuid2);
        assert_int_equal(st, LUKS_STATE_NEW);
        assert_int_equal(luks_check_key(path, k1, &d), 0);
        assert_int_equal(luks_check_key(path, k2, &d), -EKEYREJECTED);
        /* Never formats over an existing header. */
        assert_int_equal(luks_format(path, k2, uuid2, &d), -EEXIST);
        assert_int_equal(luks_check_key(path, k1, &d), 0);
}

static void test_luks_rekey_swaps_keys_and_marks_initialized(void **state)
{
        _cleanup_(secret_freep) Secret *k1 = key_of(1), *k2 = key_of(2);
        char uuid[LUKS_UUID_SIZE];
        LuksState st;
        Diag d;

        fresh_image();
        diag_clear(&d);
        assert_int_equal(luks_format(path, k1, uuid, &d), 0);
        assert_int_equal(luks_rekey(path, k2, k1, &d), -EKEYREJECTED); /* wrong current key */
        assert_int_equal(luks_check_key(path, k1, &d), 0);
        assert_int_equal(luks_rekey(path, k1, k2, &d), 0);
        assert_int_equal(luks_check_key(path, k2, &d), 0);
        assert_int_equal(luks_check_key(path, k1, &d), -EKEYREJECTED);
        assert_int_equal(luks_validate(path, uuid, &st, &d), 0); /* still exactly one keyslot */
        assert_int_equal(st, LUKS_STATE_INITIALIZED);
}

static void test_luks_header_with_an_extra_keyslot_is_refused(void **state)
{
        _cleanup_(secret_freep) Secret *k1 = key_of(1);
        char uuid[LUKS_UUID_SIZE], kf[300], kf2[300];
        Diag d;

        fresh_image();
        assert_int_equal(luks_format(path, k1, uuid, &d), 0);
        (void) snprintf(kf, sizeof(kf), "%s/k1", test_tmpdir());
        (void) snprintf(kf2, sizeof(kf2), "%s/evil", test_tmpdir());
        write_keyfile(kf, 1);
        write_keyfile(kf2, 0x66);
        char *const argv[] = { "cryptsetup", "luksAddKey", "--batch-mode",
                               "--pbkdf",    "pbkdf2",     "--pbkdf-force-iterations",
                               "1000",       "--key-file", kf,
                               path,         kf2,          NULL };
        assert_int_equal(cryptsetup(argv), 0);
        diag_clear(&d);
        assert_int_equal(luks_validate(path, uuid, NULL, &d), -EPERM);
        assert_string_equal(d.check, "luks-keyslots");
        assert_string_equal(d.actual, "2");
        /* ... and no key is tried against such a header. */
        assert_int_equal(luks_check_key(path, k1, &d), -EPERM);
}

static void test_luks_header_with_a_weak_cipher_or_other_profile_is_refused(void **state)
{
        static const char *const profiles[][4] = {
                { "aes-cbc-essiv:sha256", "256", "512", "cipher" },
                { "aes-xts-plain64", "256", "4096", "cipher" },
                { "aes-xts-plain64", "512", "512", "sector size" },
        };
        char kf[300], uuid[LUKS_UUID_SIZE];
        Diag d;

        (void) snprintf(kf, sizeof(kf), "%s/k1", test_tmpdir());
        write_keyfile(kf, 1);
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++) {
                fresh_image();
                char *const argv[] = { "cryptsetup",
                                       "luksFormat",
                                       "--batch-mode",
                                       "--type",
                                       "luks2",
                                       "--cipher",
                                       (char *) profiles[i][0],
                                       "--key-size",
                                       (char *) profiles[i][1],
                                       "--sector-size",
                                       (char *) profiles[i][2],
                                       "--pbkdf",
                                       "pbkdf2",
                                       "--pbkdf-force-iterations",
                                       "1000",
                                       "--key-file",
                                       kf,
                                       path,
                                       NULL };
                assert_int_equal(cryptsetup(argv), 0);
                diag_clear(&d);
                assert_int_equal(luks_validate(path, uuid, NULL, &d), -EPERM);
                if (!strstr(d.message, profiles[i][3]))
                        fail_msg("profile %zu: '%s' lacks '%s'", i, d.message, profiles[i][3]);
        }
}

static void test_luks_header_without_our_token_is_refused(void **state)
{
        char kf[300], uuid[LUKS_UUID_SIZE];
        Diag d;

        (void) snprintf(kf, sizeof(kf), "%s/k1", test_tmpdir());
        write_keyfile(kf, 1);
        fresh_image();
        char *const argv[] = { "cryptsetup",
                               "luksFormat",
                               "--batch-mode",
                               "--type",
                               "luks2",
                               "--cipher",
                               "aes-xts-plain64",
                               "--key-size",
                               "512",
                               "--sector-size",
                               "4096",
                               "--pbkdf",
                               "pbkdf2",
                               "--pbkdf-force-iterations",
                               "1000",
                               "--key-file",
                               kf,
                               path,
                               NULL };
        assert_int_equal(cryptsetup(argv), 0);
        diag_clear(&d);
        assert_int_equal(luks_validate(path, uuid, NULL, &d), -EPERM);
        assert_string_equal(d.check, "luks-token");
}

static void test_luks_not_a_luks_device_is_refused(void **state)
{
        char uuid[LUKS_UUID_SIZE];
        Diag d;

        fresh_image();
        diag_clear(&d);
        assert_int_equal(luks_validate(path, uuid, NULL, &d), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_luks_format_validate_and_key),
                cmocka_unit_test(test_luks_rekey_swaps_keys_and_marks_initialized),
                cmocka_unit_test(test_luks_header_with_an_extra_keyslot_is_refused),
                cmocka_unit_test(test_luks_header_with_a_weak_cipher_or_other_profile_is_refused),
                cmocka_unit_test(test_luks_header_without_our_token_is_refused),
                cmocka_unit_test(test_luks_not_a_luks_device_is_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
