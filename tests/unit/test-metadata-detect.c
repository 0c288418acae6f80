/* SPDX-License-Identifier: Apache-2.0 */
/* The node's cloud from SMBIOS (lib/metadata/metadata-detect.c), from a directory standing in
 * for /sys/class/dmi/id, and the state disk found by its stable names under a directory standing
 * in for /. Values per provider: cloud-init's tools/ds-identify (dscheck_GCE, is_azure_chassis),
 * systemd's src/basic/virt.c dmi_vendor_table ("Amazon EC2", "QEMU"). */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/macro.h"
#include "cloister/metadata.h"

#define AZURE_TAG "7783-7084-3265-9085-8269-3286-77"

static unsigned counter;

/* A fresh directory under the test's tmpdir. */
static char *fresh_dir(const char *what)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s-%u", test_tmpdir(), what, counter++) > 0);
        assert_int_equal(mkdir(p, 0700), 0);
        return p;
}

static void put(const char *dir, const char *name, const char *text)
{
        char path[512];
        FILE *f;

        (void) snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* A DMI directory as the kernel shows it: each value followed by a newline. NULL: absent. */
static char *dmi(const char *sys_vendor, const char *product_name, const char *bios_vendor,
                 const char *asset_tag)
{
        char *dir = fresh_dir("dmi"), line[256];
        const char *const names[] = { "sys_vendor", "product_name", "bios_vendor",
                                      "chassis_asset_tag" };
        const char *const values[] = { sys_vendor, product_name, bios_vendor, asset_tag };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (values[i]) {
                        (void) snprintf(line, sizeof(line), "%s\n", values[i]);
                        put(dir, names[i], line);
                }
        return dir;
}

static int detect(const char *dir, MetadataProvider *p, Diag *d)
{
        *p = (MetadataProvider) 0x5a5a;
        diag_clear(d);
        return metadata_provider_detect(dir, p, d);
}

static void test_detect_names_each_cloud_from_its_own_smbios_values(void **state)
{
        /* As the providers' VMs show them (board_vendor etc. as found there, where known). */
        static const struct {
                const char *sys_vendor, *product_name, *bios_vendor, *tag;
                MetadataProvider want;
        } cases[] = {
                { "Google", "Google Compute Engine", "Google", "", METADATA_GCP },
                { "Microsoft Corporation", "Virtual Machine", "Microsoft Corporation", AZURE_TAG,
                  METADATA_AZURE },
                { "Amazon EC2", "m6a.large", "Amazon EC2", "Amazon EC2", METADATA_AWS },
                { "QEMU", "Standard PC (Q35 + ICH9, 2009)", "EDK II", NULL, METADATA_QEMU },
                /* QEMU with KVM: the same SMBIOS defaults. */
                { "QEMU", "Standard PC (i440FX + PIIX, 1996)", "SeaBIOS", NULL, METADATA_QEMU },
        };
        MetadataProvider p;
        Diag d;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *dir = dmi(cases[i].sys_vendor, cases[i].product_name,
                                                 cases[i].bios_vendor, cases[i].tag);
                assert_int_equal(detect(dir, &p, &d), 0);
                assert_int_equal(p, cases[i].want);
        }
}

static void test_detect_refuses_hyper_v_without_azure_s_asset_tag(void **state)
{
        _cleanup_(freep) char *dir =
                dmi("Microsoft Corporation", "Virtual Machine", "Microsoft Corporation",
                    "0000-0000-0000-0000-0000-0000-00");
        _cleanup_(freep) char *none = dmi("Microsoft Corporation", "Virtual Machine", NULL, NULL);
        MetadataProvider p;
        Diag d;

        assert_int_equal(detect(dir, &p, &d), -ENXIO);
        assert_int_equal(p, 0x5a5a); /* not written on failure */
        assert_non_null(strstr(d.message, "azure's sys_vendor but not its other values"));
        assert_non_null(strstr(d.message, "chassis_asset_tag '0000-0000-0000-0000-0000-0000-00'"));
        assert_int_equal(detect(none, &p, &d), -ENXIO);
}

static void test_detect_needs_every_value_of_a_row(void **state)
{
        /* GCP needs both values; a near miss of either is not GCP. */
        _cleanup_(freep) char *vendor_only = dmi("Google", "Something Else", NULL, NULL);
        _cleanup_(freep) char *product_only = dmi("Googlе", "Google Compute Engine", NULL, NULL);
        _cleanup_(freep) char *prefix = dmi("Google Inc", "Google Compute Engine", NULL, NULL);
        _cleanup_(freep) char *tag_on_other = dmi("QEMU-ish", NULL, NULL, AZURE_TAG);
        MetadataProvider p;
        Diag d;

        assert_int_equal(detect(vendor_only, &p, &d), -ENXIO);
        assert_non_null(strstr(d.message, "gcp's sys_vendor"));
        assert_int_equal(detect(product_only, &p, &d), -ENXIO);
        /* The Cyrillic 'е' is quoted as bytes, not passed through. */
        assert_non_null(strstr(d.message, "sys_vendor 'Googl\\xd0\\xb5'"));
        assert_int_equal(detect(prefix, &p, &d), -ENXIO);
        assert_int_equal(detect(tag_on_other, &p, &d), -ENXIO);
}

static void test_detect_refuses_unknown_hardware_quoting_what_it_read(void **state)
{
        _cleanup_(freep) char *dir = dmi("Dell Inc.", "PowerEdge R650", "Dell Inc.", NULL);
        _cleanup_(freep) char *empty = fresh_dir("dmi-empty");
        MetadataProvider p;
        Diag d;

        assert_int_equal(detect(dir, &p, &d), -ENXIO);
        assert_non_null(strstr(d.message, "sys_vendor 'Dell Inc.'"));
        assert_non_null(strstr(d.message, "product_name 'PowerEdge R650'"));
        assert_non_null(strstr(d.message, "GCP, Azure, AWS (Nitro) and QEMU are recognised"));
        /* No file at all: every value empty, nothing matches. */
        assert_int_equal(detect(empty, &p, &d), -ENXIO);
        assert_non_null(strstr(d.message, "sys_vendor ''"));
}

static void test_detect_refuses_a_missing_dmi_directory(void **state)
{
        _cleanup_(freep) char *dir = NULL;
        MetadataProvider p;
        Diag d;

        assert_true(asprintf(&dir, "%s/no-such-dmi", test_tmpdir()) > 0);
        assert_int_equal(detect(dir, &p, &d), -ENOENT);
        assert_non_null(strstr(d.message, "does not exist"));
        assert_int_equal(p, 0x5a5a);
}

static void test_detect_refuses_an_oversized_value_rather_than_cutting_it(void **state)
{
        /* "QEMU" followed by padding: cut to the bound it would still not match, but a value
         * longer than any provider's is garbage the host wrote, refused as such. */
        _cleanup_(freep) char *dir = fresh_dir("dmi-big");
        _cleanup_(freep) char *exact = fresh_dir("dmi-exact");
        char big[METADATA_DMI_VALUE_MAX + 2], full[METADATA_DMI_VALUE_MAX + 1];
        MetadataProvider p;
        Diag d;

        memset(big, 'Q', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0'; /* METADATA_DMI_VALUE_MAX + 1 bytes */
        put(dir, "sys_vendor", big);
        assert_int_equal(detect(dir, &p, &d), -EMSGSIZE);
        assert_non_null(strstr(d.message, "sys_vendor is longer than 128 bytes"));
        assert_int_equal(p, 0x5a5a);

        /* Exactly the bound is read (and is no provider's). */
        memset(full, 'Q', sizeof(full) - 1);
        full[sizeof(full) - 1] = '\0';
        put(exact, "sys_vendor", full);
        assert_int_equal(detect(exact, &p, &d), -ENXIO);
}

static void test_detect_refuses_an_embedded_nul_and_drops_only_trailing_newlines(void **state)
{
        static const char garbage[] = { 'Q', 'E', 'M', 'U', '\0', 'x', '\n' };
        _cleanup_(freep) char *dir = fresh_dir("dmi-nul");
        _cleanup_(freep) char *nl = dmi("QEMU\n\n", NULL, NULL, NULL);
        char path[512];
        MetadataProvider p;
        Diag d;
        int fd;

        /* An embedded NUL: "QEMU\0x" is not "QEMU" (compared as a C string it would be). */
        (void) snprintf(path, sizeof(path), "%s/sys_vendor", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, garbage, sizeof(garbage)), (ssize_t) sizeof(garbage));
        (void) close(fd);
        assert_int_equal(detect(dir, &p, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "NUL byte"));
        assert_int_equal(p, 0x5a5a);
        /* Trailing newlines (the kernel's) and spaces are dropped, nothing else. */
        assert_int_equal(detect(nl, &p, &d), 0);
        assert_int_equal(p, METADATA_QEMU);
}

static void test_detect_refuses_an_unreadable_value(void **state)
{
        _cleanup_(freep) char *dir = fresh_dir("dmi-dir-as-value");
        char sub[512];
        MetadataProvider p;
        Diag d;

        /* sys_vendor is a directory: reading it fails (EISDIR), and that is said. */
        (void) snprintf(sub, sizeof(sub), "%s/sys_vendor", dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(detect(dir, &p, &d), -EISDIR);
        assert_non_null(strstr(d.message, "cannot read"));
}

/* --- the state disk ------------------------------------------------------------------------ */

static void make_file(const char *root, const char *path)
{
        char full[1024], *slash;
        int fd;

        (void) snprintf(full, sizeof(full), "%s%s", root, path);
        for (slash = strchr(full + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                (void) mkdir(full, 0700);
                *slash = '/';
        }
        fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        (void) close(fd);
}

static void test_state_disk_is_found_by_each_provider_s_stable_name(void **state)
{
        static const struct {
                MetadataProvider p;
                const char *link;
        } cases[] = {
                { METADATA_GCP, "/dev/disk/by-id/google-state-disk" },
                { METADATA_GCP, "/dev/disk/by-id/scsi-0Google_PersistentDisk_state-disk" },
                { METADATA_AZURE, "/dev/disk/azure/scsi1/lun0" },
                { METADATA_AZURE, "/dev/disk/by-path/"
                                  "acpi-VMBUS:00-vmbus-f8b3781b1e824818a1c363d806ec15bb-lun-0" },
                { METADATA_AWS, "/dev/sdb" },
                { METADATA_QEMU, "/dev/disk/by-partlabel/cloister-state" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *root = fresh_dir("root"), *want = NULL;
                char found[1024];
                Diag d;

                make_file(root, cases[i].link);
                assert_true(asprintf(&want, "%s%s", root, cases[i].link) > 0);
                diag_clear(&d);
                assert_int_equal(
                        metadata_state_disk_find(cases[i].p, root, 0, found, sizeof(found), &d), 0);
                assert_string_equal(found, want);
        }
}

static void test_state_disk_is_not_another_disk_of_the_same_cloud(void **state)
{
        /* Azure: LUN 1, or LUN 0 on the OS disk's controller (f8b3781a), is not the state disk;
         * GCP: another device name is not; AWS: /dev/sdc is not. */
        static const struct {
                MetadataProvider p;
                const char *link;
        } cases[] = {
                { METADATA_AZURE, "/dev/disk/by-path/"
                                  "acpi-VMBUS:00-vmbus-f8b3781b1e824818a1c363d806ec15bb-lun-1" },
                { METADATA_AZURE, "/dev/disk/by-path/"
                                  "acpi-VMBUS:00-vmbus-f8b3781a1e824818a1c363d806ec15bb-lun-0" },
                { METADATA_GCP, "/dev/disk/by-id/google-persistent-disk-0" },
                { METADATA_AWS, "/dev/sdc" },
                { METADATA_QEMU, "/dev/disk/by-partlabel/cloister-root" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *root = fresh_dir("other");
                char found[1024] = "untouched";
                Diag d;

                make_file(root, cases[i].link);
                diag_clear(&d);
                assert_int_equal(
                        metadata_state_disk_find(cases[i].p, root, 0, found, sizeof(found), &d),
                        -ENOENT);
                assert_string_equal(found, "untouched");
                assert_non_null(strstr(d.message, "check that the disk the Terraform module"));
        }
}

static void test_state_disk_refuses_a_name_that_matches_two_devices(void **state)
{
        _cleanup_(freep) char *root = fresh_dir("two");
        char found[1024];
        Diag d;

        make_file(root, "/dev/disk/by-path/acpi-VMBUS:00-vmbus-f8b3781b1e824818a1c363d806ec15bb-"
                        "lun-0");
        make_file(root, "/dev/disk/by-path/acpi-VMBUS:01-vmbus-f8b3781b1e824818a1c363d806ec15bb-"
                        "lun-0");
        diag_clear(&d);
        assert_int_equal(
                metadata_state_disk_find(METADATA_AZURE, root, 0, found, sizeof(found), &d),
                -ENOTUNIQ);
        assert_non_null(strstr(d.message, "matches 2 devices"));
}

static void test_state_disk_local_has_none(void **state)
{
        char found[64];
        Diag d;

        assert_null(metadata_state_disk_names(METADATA_LOCAL));
        diag_clear(&d);
        assert_int_equal(
                metadata_state_disk_find(METADATA_LOCAL, NULL, 0, found, sizeof(found), &d),
                -EINVAL);
}

typedef struct Late {
        const char *root;
} Late;

static void *appear_late(void *arg)
{
        const Late *l = arg;
        struct timespec ts = { .tv_nsec = 600 * 1000 * 1000 };

        (void) nanosleep(&ts, NULL);
        make_file(l->root, "/dev/sdb");
        return NULL;
}

static void test_state_disk_that_appears_late_is_waited_for(void **state)
{
        _cleanup_(freep) char *root = fresh_dir("late");
        char found[1024];
        pthread_t t;
        Late l = { root };
        Diag d;

        assert_int_equal(pthread_create(&t, NULL, appear_late, &l), 0);
        diag_clear(&d);
        assert_int_equal(
                metadata_state_disk_find(METADATA_AWS, root, 10000, found, sizeof(found), &d), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_non_null(strstr(found, "/dev/sdb"));
}

/* --- GCP over NVMe: the device name in the Identify Namespace data ---------------------------- */

/* Identify Namespace data with text in the vendor-specific area (offset 384), zero elsewhere. */
static void identify_ns(uint8_t data[static METADATA_NVME_IDENTIFY_SIZE], const char *vendor)
{
        memset(data, 0, METADATA_NVME_IDENTIFY_SIZE);
        data[0] = 0x40; /* NSZE: the bytes before the area are not read */
        memcpy(data + METADATA_GCE_NVME_VENDOR_OFFSET, vendor, strlen(vendor));
}

static void test_gce_nvme_device_name_is_read_from_the_vendor_specific_area(void **state)
{
        uint8_t data[METADATA_NVME_IDENTIFY_SIZE];
        char name[METADATA_GCE_DEVICE_NAME_MAX];
        Diag d;

        /* As Compute Engine writes it (what google_nvme_id parses). */
        identify_ns(data, "{\"device_name\":\"state-disk\",\"disk_type\":\"PERSISTENT\"}");
        diag_clear(&d);
        assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data), name, &d), 0);
        assert_string_equal(name, "state-disk");
        identify_ns(data, "{\"device_name\": \"persistent-disk-0\"}");
        assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data), name, &d), 0);
        assert_string_equal(name, "persistent-disk-0");
}

static void test_gce_nvme_refuses_what_is_not_a_strict_device_name(void **state)
{
        static const struct {
                const char *vendor;
                int r;
        } cases[] = {
                { "", -ENODATA },                                 /* not a Compute Engine PD */
                { "{\"disk_type\":\"PERSISTENT\"}", -EBADMSG },   /* no name */
                { "{\"device_name\":7}", -EBADMSG },              /* not a string */
                { "[\"device_name\",\"state-disk\"]", -EBADMSG }, /* not an object */
                { "{\"device_name\":\"\"}", -EBADMSG },
                { "{\"device_name\":\"../../sda\"}", -EBADMSG }, /* a path in a link name */
                { "{\"device_name\":\"state disk\"}", -EBADMSG },
                { "{\"device_name\":\"state-disk\",\"link\":\"x\"}", -EBADMSG }, /* unknown key */
                { "{\"device_name\":\"state-disk\"", -EBADMSG },                 /* truncated */
                { "{\"device_name\":\"a\",\"device_name\":\"b\"}", -EBADMSG },   /* twice */
        };
        uint8_t data[METADATA_NVME_IDENTIFY_SIZE];
        char name[METADATA_GCE_DEVICE_NAME_MAX];
        char long_name[128];
        Diag d;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                identify_ns(data, cases[i].vendor);
                strcpy(name, "untouched");
                diag_clear(&d);
                assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data), name, &d),
                                 cases[i].r);
                assert_string_equal(name, "untouched");
        }
        /* 63 characters are a name, 64 are not. */
        (void) snprintf(long_name, sizeof(long_name), "{\"device_name\":\"%063d\"}", 0);
        identify_ns(data, long_name);
        assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data), name, &d), 0);
        (void) snprintf(long_name, sizeof(long_name), "{\"device_name\":\"%064d\"}", 0);
        identify_ns(data, long_name);
        assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data), name, &d), -EBADMSG);
        /* Only whole Identify data. */
        identify_ns(data, "{\"device_name\":\"state-disk\"}");
        assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data) - 1, name, &d), -EBADMSG);
}

static void test_gce_nvme_area_filled_to_its_end_is_read_within_it(void **state)
{
        /* No NUL in the whole area: the JSON may not run past the structure's end. */
        uint8_t data[METADATA_NVME_IDENTIFY_SIZE];
        char name[METADATA_GCE_DEVICE_NAME_MAX];
        Diag d;

        memset(data, ' ', sizeof(data));
        memcpy(data + METADATA_GCE_NVME_VENDOR_OFFSET, "{\"device_name\":\"state-disk\"}", 28);
        diag_clear(&d);
        assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data), name, &d), 0);
        assert_string_equal(name, "state-disk");
        data[sizeof(data) - 1] = '}';
        assert_int_equal(metadata_gce_nvme_device_name(data, sizeof(data), name, &d), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_detect_names_each_cloud_from_its_own_smbios_values),
                cmocka_unit_test(test_detect_refuses_hyper_v_without_azure_s_asset_tag),
                cmocka_unit_test(test_detect_needs_every_value_of_a_row),
                cmocka_unit_test(test_detect_refuses_unknown_hardware_quoting_what_it_read),
                cmocka_unit_test(test_detect_refuses_a_missing_dmi_directory),
                cmocka_unit_test(test_detect_refuses_an_oversized_value_rather_than_cutting_it),
                cmocka_unit_test(
                        test_detect_refuses_an_embedded_nul_and_drops_only_trailing_newlines),
                cmocka_unit_test(test_detect_refuses_an_unreadable_value),
                cmocka_unit_test(test_state_disk_is_found_by_each_provider_s_stable_name),
                cmocka_unit_test(test_state_disk_is_not_another_disk_of_the_same_cloud),
                cmocka_unit_test(test_state_disk_refuses_a_name_that_matches_two_devices),
                cmocka_unit_test(test_state_disk_local_has_none),
                cmocka_unit_test(test_state_disk_that_appears_late_is_waited_for),
                cmocka_unit_test(test_gce_nvme_device_name_is_read_from_the_vendor_specific_area),
                cmocka_unit_test(test_gce_nvme_refuses_what_is_not_a_strict_device_name),
                cmocka_unit_test(test_gce_nvme_area_filled_to_its_end_is_read_within_it),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
