/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/luks.h"
#include "cloister/metadata.h"
#include "cloister/verbs.h"
#include "cloister/version.h"
#include "mapper.h"

#define KEY_FILE_MAX 4096

static const char *arg_device, *arg_partlabel, *arg_key_file, *arg_new_key_file, *arg_mount;
static const char *arg_first_boot_key = "/run/cloister/first-boot.key";
static const char *arg_name = MAPPER_DEFAULT_NAME;
static char *arg_binds[MAPPER_BINDS_MAX];
static size_t arg_n_binds;
static bool arg_json, arg_allow_locked;
static enum { INTEGRITY_AUTO, INTEGRITY_ON, INTEGRITY_OFF } arg_integrity = INTEGRITY_AUTO;
static char device[PATH_MAX];
/* --device auto: SMBIOS names the provider, whose state disk is looked for by its stable names
 * (lib/metadata/metadata-detect.c) for at most this long: udev makes the links as disks appear. */
static const char *arg_dmi_dir;
static unsigned arg_wait = 90;
static char auto_device[PATH_MAX];

/* The state disk of the provider SMBIOS names. */
static int find_auto_device(const char *root, MetadataProvider p)
{
        Diag d;
        int r;

        diag_clear(&d);
        if (p < 0) {
                r = metadata_provider_detect(arg_dmi_dir, &p, &d);
                if (r < 0)
                        return log_error_errno(r,
                                               "--device auto: %s. Give the disk's path "
                                               "(--device PATH) instead.",
                                               d.message);
        }
        r = metadata_state_disk_find(p, root, arg_wait * 1000, auto_device, sizeof(auto_device),
                                     &d);
        if (r < 0)
                return log_error_errno(r, "--device auto: %s. Else give its path (--device PATH).",
                                       d.message);
        log_info("disk-mapper: the %s state disk is %s", metadata_provider_to_string(p),
                 auto_device);
        return 0;
}

/* Keys are read straight into locked memory; the plain read buffer is wiped. */
static int read_key(const char *path, Secret **ret)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        size_t n;
        int r;

        r = read_full_file(path, KEY_FILE_MAX, &buf, &n);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read the key: %m", path);
        if (n == 0) {
                explicit_wipe(buf, n);
                return log_error_errno(-EINVAL, "%s: the key file is empty.", path);
        }
        r = secret_new_from(buf, n, ret);
        explicit_wipe(buf, n);
        return r < 0 ? log_error_errno(r, "Cannot lock memory for the key: %m") : 0;
}

static int log_diag(int r, const Diag *d)
{
        if (d->expected[0] || d->actual[0])
                return log_error_errno(r, "%s (expected %s, found %s)", d->message, d->expected,
                                       d->actual);
        return log_error_errno(r, "%s", d->message);
}

static int add_binds(const char *list)
{
        char buf[PATH_MAX];

        if (snprintf(buf, sizeof(buf), "%s", list) >= (int) sizeof(buf))
                return log_error_errno(-EUSAGE, "--bind: list too long.");
        for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
                if (arg_n_binds >= MAPPER_BINDS_MAX)
                        return log_error_errno(-EUSAGE, "--bind: at most %d paths.",
                                               MAPPER_BINDS_MAX);
                arg_binds[arg_n_binds] = strdup(p);
                if (!arg_binds[arg_n_binds])
                        return log_oom();
                arg_n_binds++;
        }
        return 0;
}

/* needs_device: the verb acts on a disk (all but close). */
static MapperChecks arg_checks = MAPPER_WRITE;
/* The verb that cannot run without --key-file (--new-key-file for rekey): checked with the other
 * usage errors, before the device is looked up or opened. */
static const char *arg_key_required_by, *arg_new_key_required_by;
/* Options only one verb takes. */
static bool verb_is_setup;

static int parse_options(int argc, char *argv[], bool needs_device, const char *usage)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "device", required_argument, NULL, 'd' },
                { "partlabel", required_argument, NULL, 'P' },
                { "key-file", required_argument, NULL, 'k' },
                { "new-key-file", required_argument, NULL, 'n' },
                { "name", required_argument, NULL, 'N' },
                { "mount", required_argument, NULL, 'm' },
                { "bind", required_argument, NULL, 'b' },
                { "output", required_argument, NULL, 'o' },
                { "integrity", required_argument, NULL, 'I' },
                { "first-boot-key", required_argument, NULL, 'F' },
                { "allow-locked", no_argument, NULL, 'L' },
                { "dmi-dir", required_argument, NULL, 'D' },
                {},
        };
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hd:k:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                case 'd':
                        arg_device = optarg;
                        break;
                case 'P':
                        arg_partlabel = optarg;
                        break;
                case 'k':
                        arg_key_file = optarg;
                        break;
                case 'n':
                        arg_new_key_file = optarg;
                        break;
                case 'N':
                        if (!*optarg || strchr(optarg, '/') || strlen(optarg) > 64)
                                return log_error_errno(-EUSAGE,
                                                       "--name '%s': a device-mapper name, no "
                                                       "'/', at most 64 characters.",
                                                       optarg);
                        arg_name = optarg;
                        break;
                case 'm':
                        if (optarg[0] != '/')
                                return log_error_errno(-EUSAGE, "--mount: an absolute path.");
                        arg_mount = optarg;
                        break;
                case 'b':
                        r = add_binds(optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'F':
                        if (optarg[0] != '/')
                                return log_error_errno(-EUSAGE,
                                                       "--first-boot-key: an absolute path.");
                        arg_first_boot_key = optarg;
                        break;
                case 'D':
                        arg_dmi_dir = optarg;
                        break;
                case 'L':
                        if (!verb_is_setup)
                                return log_error_errno(-EUSAGE,
                                                       "--allow-locked: only 'setup' takes it.");
                        arg_allow_locked = true;
                        break;
                case 'I':
                        if (strcmp(optarg, "auto") == 0)
                                arg_integrity = INTEGRITY_AUTO;
                        else if (strcmp(optarg, "on") == 0)
                                arg_integrity = INTEGRITY_ON;
                        else if (strcmp(optarg, "off") == 0)
                                arg_integrity = INTEGRITY_OFF;
                        else
                                return log_error_errno(
                                        -EUSAGE, "--integrity '%s': use auto, on or off.", optarg);
                        break;
                case 'o':
                        if (strcmp(optarg, "json") == 0)
                                arg_json = true;
                        else if (strcmp(optarg, "text") != 0)
                                return log_error_errno(-EUSAGE, "-o '%s': use text or json.",
                                                       optarg);
                        break;
                default:
                        return -EUSAGE;
                }
        }
        /* The device may also come as the one positional argument. */
        if (argc - optind > 1 || (argc - optind == 1 && arg_device))
                return log_error_errno(-EUSAGE, "%s: unexpected argument '%s'. See --help.",
                                       argv[0], argv[argc - 1]);
        if (argc - optind == 1)
                arg_device = argv[optind];
        if (arg_n_binds > 0 && !arg_mount)
                return log_error_errno(-EUSAGE, "--bind needs --mount.");
        if (arg_key_required_by && !arg_key_file)
                return log_error_errno(-EUSAGE, "%s: --key-file is required.", arg_key_required_by);
        if (arg_new_key_required_by && !arg_new_key_file)
                return log_error_errno(-EUSAGE, "%s: --new-key-file is required.",
                                       arg_new_key_required_by);
        if (needs_device && arg_device && strcmp(arg_device, "auto") == 0) {
                if (arg_partlabel)
                        return log_error_errno(-EUSAGE, "Give --device or --partlabel, not both.");
                r = find_auto_device(NULL, _METADATA_PROVIDER_INVALID);
                if (r < 0)
                        return r;
                arg_device = auto_device;
        }
        if (needs_device) {
                r = mapper_find_device(arg_device, arg_partlabel, arg_checks, device,
                                       sizeof(device));
                if (r < 0)
                        return r;
        }
        return 1;
}

#define DEVICE_OPTIONS                                                                             \
        "  -d --device PATH      the state disk: a block device or an image file\n"                \
        "     --device auto      or the disk the Terraform module attaches in the cloud SMBIOS\n"  \
        "                        names, by its stable name (see 'locate'; waits up to 90 s)\n"     \
        "     --partlabel LABEL  or the one partition with this GPT name\n"                        \
        "     --dmi-dir DIR      where auto reads SMBIOS (tests; default " METADATA_DMI_DIR ")\n"

static int verb_check_header(int argc, char *argv[], void *userdata)
{
        char uuid[LUKS_UUID_SIZE];
        LuksState st;
        Diag d;
        int r;

        arg_checks = MAPPER_READ_ONLY;
        r = parse_options(argc, argv, true,
                          "Usage: cloister-disk-mapper check-header --device PATH [--key-file F]\n"
                          "\n"
                          "Validates the LUKS2 header strictly against Cloister's one profile\n"
                          "and exits non-zero with the deviation. With --key-file, also checks\n"
                          "that the key opens it (nothing is activated).\n\n" DEVICE_OPTIONS);
        if (r <= 0)
                return r;
        diag_clear(&d);
        r = luks_validate(device, uuid, &st, &d);
        if (r < 0)
                return log_diag(r, &d);
        printf("%s: valid Cloister state disk, UUID %s, state %s\n", device, uuid,
               luks_state_to_string(st));
        if (arg_key_file) {
                _cleanup_(secret_freep) Secret *key = NULL;
                r = read_key(arg_key_file, &key);
                if (r < 0)
                        return r;
                r = luks_check_key(device, key, &d);
                if (r < 0)
                        return log_diag(r, &d);
                printf("%s: the key opens it\n", device);
        }
        return 0;
}

static int verb_format(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *key = NULL;
        char uuid[LUKS_UUID_SIZE];
        bool integrity;
        Diag d;
        int r;

        arg_checks = MAPPER_EXCLUSIVE;
        arg_key_required_by = "format";
        r = parse_options(argc, argv, true,
                          "Usage: cloister-disk-mapper format --device PATH --key-file F\n"
                          "                              [--integrity auto|on|off]\n"
                          "\n"
                          "LUKS2-formats a new state disk with one keyslot for F (the first-boot\n"
                          "key). Refuses a disk with a header that may hold data: an initialized\n"
                          "disk is formatted again only after 'reset'.\n"
                          "--integrity: authenticated mode (dm-integrity, HMAC-SHA256 per sector:\n"
                          "a changed sector reads as an I/O error, never as wrong data). 'auto'\n"
                          "(default) uses it where device-mapper and dm-integrity are loaded and\n"
                          "says so when it cannot; 'on' fails instead.\n\n" DEVICE_OPTIONS);
        if (r <= 0)
                return r;
        r = read_key(arg_key_file, &key);
        if (r < 0)
                return r;
        integrity = arg_integrity == INTEGRITY_ON ||
                    (arg_integrity == INTEGRITY_AUTO && luks_integrity_available());
        if (arg_integrity == INTEGRITY_ON && !luks_integrity_available())
                return log_error_errno(-EOPNOTSUPP,
                                       "--integrity on: device-mapper with dm-integrity is not "
                                       "available here (load dm-integrity, or use "
                                       "--integrity off).");
        if (arg_integrity == INTEGRITY_AUTO && !integrity)
                log_notice("disk-mapper: authenticated mode (dm-integrity) is not available "
                           "here; formatting without it: changed ciphertext would not be "
                           "detected.");
        diag_clear(&d);
        r = luks_format_flags(device, key, integrity ? LUKS_FORMAT_INTEGRITY : 0, uuid, &d);
        if (r < 0)
                return log_diag(r, &d);
        printf("%s: formatted, UUID %s, state new, %s\n", device, uuid,
               integrity ? "authenticated (" LUKS_INTEGRITY ")" : "not authenticated");
        return 0;
}

static int verb_rekey(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *old = NULL, *new = NULL;
        Diag d;
        int r;

        arg_new_key_required_by = "rekey";
        r = parse_options(argc, argv, true,
                          "Usage: cloister-disk-mapper rekey --device PATH --key-file OLD "
                          "--new-key-file NEW\n"
                          "\n"
                          "Replaces the keyslot: the new one is added and proven before the old\n"
                          "one is destroyed. Run again after an interruption; once the new key\n"
                          "opens the disk, --key-file may be omitted.\n\n" DEVICE_OPTIONS);
        if (r <= 0)
                return r;
        if ((arg_key_file && (r = read_key(arg_key_file, &old)) < 0) ||
            (r = read_key(arg_new_key_file, &new)) < 0)
                return r;
        diag_clear(&d);
        r = luks_rekey(device, old, new, &d);
        if (r < 0)
                return log_diag(r, &d);
        printf("%s: re-keyed, state initialized\n", device);
        return 0;
}

static int verb_reset(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *key = NULL;
        Diag d;
        int r;

        arg_key_required_by = "reset";
        r = parse_options(argc, argv, true,
                          "Usage: cloister-disk-mapper reset --device PATH --key-file F\n"
                          "\n"
                          "Marks the disk to be wiped: the next 'format' (at next boot) replaces\n"
                          "its header and volume key, which makes everything on it unreadable.\n"
                          "Needs a key that opens the disk.\n\n" DEVICE_OPTIONS);
        if (r <= 0)
                return r;
        r = read_key(arg_key_file, &key);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = luks_reset(device, key, &d);
        if (r < 0)
                return log_diag(r, &d);
        printf("%s: marked for reset; it is formatted again at next boot\n", device);
        return 0;
}

static int verb_open(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *key = NULL;
        char uuid[LUKS_UUID_SIZE];
        LuksState st = _LUKS_STATE_INVALID;
        Diag d;
        int r;

        arg_key_required_by = "open";
        r = parse_options(argc, argv, true,
                          "Usage: cloister-disk-mapper open --device PATH --key-file F [--name N]\n"
                          "                            [--mount DIR [--bind PATH[,PATH...]]]\n"
                          "\n"
                          "Validates the header, then activates /dev/mapper/N (default\n"
                          "" MAPPER_DEFAULT_NAME "). With --mount, mounts its file system on DIR\n"
                          "(created on first use only, while the disk is 'new') and bind-mounts\n"
                          "each --bind path from DIR/PATH (e.g. /var, /etc/kubernetes).\n\n"
                          "" DEVICE_OPTIONS);
        if (r <= 0)
                return r;
        r = read_key(arg_key_file, &key);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = luks_validate(device, uuid, &st, &d);
        if (r >= 0)
                r = luks_open(device, arg_name, key, &d);
        if (r < 0)
                return log_diag(r, &d);
        if (arg_mount) {
                r = mapper_mount(arg_name, st == LUKS_STATE_NEW, arg_mount, arg_binds, arg_n_binds);
                if (r < 0) {
                        (void) luks_close(arg_name, &d);
                        return r;
                }
        }
        printf("%s: open as /dev/mapper/%s%s%s\n", device, arg_name,
               arg_mount ? ", mounted on " : "", arg_mount ?: "");
        return 0;
}

static int verb_close(int argc, char *argv[], void *userdata)
{
        Diag d;
        int r;

        r = parse_options(argc, argv, false,
                          "Usage: cloister-disk-mapper close [--name N] [--mount DIR [--bind "
                          "PATH...]]\n"
                          "\n"
                          "Unmounts the --bind paths and DIR (if given), then deactivates\n"
                          "/dev/mapper/N (default " MAPPER_DEFAULT_NAME ").\n");
        if (r <= 0)
                return r;
        if (arg_mount) {
                r = mapper_unmount(arg_mount, arg_binds, arg_n_binds);
                if (r < 0)
                        return r;
        }
        diag_clear(&d);
        r = luks_close(arg_name, &d);
        if (r < 0)
                return log_diag(r, &d);
        printf("/dev/mapper/%s: closed\n", arg_name);
        return 0;
}

static int verb_status(int argc, char *argv[], void *userdata)
{
        char uuid[LUKS_UUID_SIZE] = "", backing[PATH_MAX];
        LuksState st = _LUKS_STATE_INVALID;
        bool active = false, integrity = false;
        Diag d;
        int r, valid;

        arg_checks = MAPPER_READ_ONLY;
        r = parse_options(argc, argv, true,
                          "Usage: cloister-disk-mapper status --device PATH [--name N] [-o "
                          "json]\n"
                          "\n"
                          "The disk's header verdict, UUID and state, and whether\n"
                          "/dev/mapper/N is active. Exit status 1 if the header is not valid.\n\n"
                          "" DEVICE_OPTIONS "  -o --output text|json\n");
        if (r <= 0)
                return r;
        diag_clear(&d);
        valid = luks_validate_ex(device, uuid, &st, &integrity, &d);
        (void) luks_active(arg_name, &active, backing, sizeof(backing));
        if (arg_json) {
                _cleanup_(json_decrefp) json_t *o =
                        json_pack("{s:s,s:b,s:s,s:b}", "device", device, "valid", valid >= 0,
                                  "name", arg_name, "active", active);
                _cleanup_(freep) char *text = NULL;
                if (!o)
                        return log_oom();
                if (valid >= 0) {
                        (void) json_object_set_new(o, "uuid", json_string(uuid));
                        (void) json_object_set_new(o, "state",
                                                   json_string(luks_state_to_string(st)));
                        (void) json_object_set_new(
                                o, "integrity", json_string(integrity ? LUKS_INTEGRITY : "none"));
                } else {
                        (void) json_object_set_new(o, "reason", json_string(d.message));
                        if (d.expected[0] || d.actual[0]) {
                                (void) json_object_set_new(o, "expected", json_string(d.expected));
                                (void) json_object_set_new(o, "actual", json_string(d.actual));
                        }
                }
                if (active)
                        (void) json_object_set_new(o, "backingDevice", json_string(backing));
                if (json_dump_pretty(o, &text) < 0)
                        return log_oom();
                printf("%s\n", text);
        } else {
                if (valid >= 0)
                        printf("device: %s\nheader: valid\nuuid:   %s\nstate:  %s\nintegrity: %s\n",
                               device, uuid, luks_state_to_string(st),
                               integrity ? LUKS_INTEGRITY : "none");
                else if (d.expected[0] || d.actual[0])
                        printf("device: %s\nheader: INVALID: %s (expected %s, found %s)\n", device,
                               d.message, d.expected, d.actual);
                else
                        printf("device: %s\nheader: INVALID: %s\n", device, d.message);
                printf("mapper: /dev/mapper/%s %s\n", arg_name, active ? "active" : "inactive");
        }
        return valid < 0 ? valid : 0;
}

/* The first-boot key lives on tmpfs only: it must not survive a reboot, or outlive the node's
 * join on a disk a host can read. */
static int check_tmpfs(const char *path)
{
        char dir[PATH_MAX];
        struct statfs sfs;
        char *slash;

        (void) snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash && slash != dir)
                *slash = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Cannot create %s: %m", dir);
        if (statfs(dir, &sfs) < 0)
                return log_error_errno(-errno, "%s: %m", dir);
        if ((unsigned long) sfs.f_type != TMPFS_MAGIC && (unsigned long) sfs.f_type != RAMFS_MAGIC)
                return log_error_errno(-EPERM,
                                       "%s is not on tmpfs: the first-boot key must never reach "
                                       "a disk; use a path under /run.",
                                       path);
        return 0;
}

/* --allow-locked: the disk's key is not here yet, and that is a normal boot (after a reboot,
 * an initialized disk waits for the join service or the owner). Nothing was opened, mounted or
 * written; the bootstrapper runs setup again once it holds the key. */
static int left_locked(const char *dev, const char *state)
{
        printf("%s: %s, left locked: its key comes from the join service (rejoin) or the owner "
               "(recover); the bootstrapper opens it\n",
               dev, state);
        return 0;
}

static int verb_setup(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *key = NULL;
        char uuid[LUKS_UUID_SIZE];
        LuksState st = _LUKS_STATE_INVALID;
        bool first_use = false, integrity = false, have_first = false, stale = false;
        Diag d;
        int r;

        arg_checks = MAPPER_EXCLUSIVE;
        verb_is_setup = true;
        r = parse_options(argc, argv, true,
                          "Usage: cloister-disk-mapper setup --device PATH --mount DIR [--bind "
                          "PATHS]\n"
                          "                             [--key-file DISK-KEY] [--first-boot-key "
                          "PATH]\n"
                          "                             [--integrity auto|on|off] "
                          "[--allow-locked]\n"
                          "\n"
                          "What a node runs at boot. A blank disk (or one left formatting, reset,\n"
                          "or 'new' whose first-boot key is gone with the last boot) is formatted\n"
                          "with a random first-boot key, kept only at --first-boot-key (on tmpfs,\n"
                          "default /run/cloister/first-boot.key) until the node joins and re-keys\n"
                          "it. A disk that is 'new' with its first-boot key still there, or\n"
                          "initialized and given its disk key (--key-file, from the join\n"
                          "service), is opened as it is. Then --mount and --bind as 'open'.\n"
                          "--allow-locked: an initialized disk (or one whose re-key needs its\n"
                          "disk key) given no --key-file is left locked, and setup succeeds: its\n"
                          "key comes later, from the join service (rejoin) or the owner\n"
                          "(recover), and the bootstrapper runs setup again with it. Without it,\n"
                          "such a disk fails setup.\n\n" DEVICE_OPTIONS);
        if (r <= 0)
                return r;
        if (!arg_mount)
                return log_error_errno(-EUSAGE, "setup: --mount is required.");
        r = check_tmpfs(arg_first_boot_key);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = luks_validate(device, uuid, &st, &d);
        have_first = access(arg_first_boot_key, F_OK) == 0;
        if (r >= 0 && st == LUKS_STATE_REKEYING && !arg_key_file && !have_first) {
                /* Cut short before the new keyslot existed (one keyslot left, the old one), and
                 * the first-boot key went with the reboot: nobody can open it; it never held
                 * more than pre-join data. With two keyslots the disk key is needed. */
                unsigned n = 0;
                r = luks_keyslot_count(device, &n, &d);
                if (r < 0)
                        return log_diag(r, &d);
                if (n != 1 && arg_allow_locked)
                        return left_locked(device, "being re-keyed");
                if (n != 1)
                        return log_error_errno(-ENOKEY,
                                               "%s was being re-keyed: its disk key comes from "
                                               "the join service (rejoin); pass it with "
                                               "--key-file.",
                                               device);
                stale = true;
        }
        if (!stale && r >= 0 &&
            (st == LUKS_STATE_INITIALIZED || (st == LUKS_STATE_REKEYING && arg_key_file))) {
                if (!arg_key_file && arg_allow_locked)
                        return left_locked(device, "initialized");
                if (!arg_key_file)
                        return log_error_errno(-ENOKEY,
                                               "%s is initialized: its key comes from the join "
                                               "service (rejoin); pass it with --key-file.",
                                               device);
                r = read_key(arg_key_file, &key);
                if (r < 0)
                        return r;
                if (st == LUKS_STATE_REKEYING) {
                        /* A re-key was cut short: finish it (with the first-boot key too, if
                         * it is still here and the new keyslot is not). */
                        _cleanup_(secret_freep) Secret *first = NULL;
                        if (have_first && read_key(arg_first_boot_key, &first) < 0)
                                return -EIO;
                        r = luks_rekey(device, first, key, &d);
                        if (r < 0)
                                return log_diag(r, &d);
                }
        } else if (!stale && r >= 0 && (st == LUKS_STATE_NEW || st == LUKS_STATE_REKEYING) &&
                   have_first) {
                r = read_key(arg_first_boot_key, &key);
                if (r < 0)
                        return r;
                first_use = true;
        } else {
                /* Blank, formatting, reset, or new without its key: nothing on it can be read by
                 * anyone any more. A header that is damaged or deviant is refused by format. */
                if (r < 0 && d.check[0] && strcmp(d.check, "luks-header") != 0)
                        return log_diag(r, &d);
                integrity = arg_integrity == INTEGRITY_ON ||
                            (arg_integrity == INTEGRITY_AUTO && luks_integrity_available());
                if (arg_integrity == INTEGRITY_ON && !integrity)
                        return log_error_errno(-EOPNOTSUPP,
                                               "--integrity on: dm-integrity is not available.");
                r = secret_new_random(32, &key);
                if (r < 0)
                        return log_error_errno(r, "Cannot make the first-boot key: %m");
                log_info("disk-mapper: %s: formatting (%s)", device,
                         stale                  ? "re-key cut short, no key left"
                         : st == LUKS_STATE_NEW ? "new, its first-boot key is gone"
                         : st >= 0 && r >= 0    ? luks_state_to_string(st)
                                                : "no usable header");
                diag_clear(&d);
                r = luks_format_flags(
                        device, key, LUKS_FORMAT_OVER_NEW | (integrity ? LUKS_FORMAT_INTEGRITY : 0),
                        uuid, &d);
                if (r < 0)
                        return log_diag(r, &d);
                r = write_file_atomic(arg_first_boot_key, secret_data_const(key), secret_size(key),
                                      0600, WRITE_FILE_SYNC);
                if (r < 0)
                        return log_error_errno(r, "Cannot keep the first-boot key at %s: %m",
                                               arg_first_boot_key);
                first_use = true;
        }
        diag_clear(&d);
        r = luks_open(device, arg_name, key, &d);
        if (r < 0)
                return log_diag(r, &d);
        r = mapper_mount(arg_name, first_use, arg_mount, arg_binds, arg_n_binds);
        if (r < 0) {
                (void) luks_close(arg_name, &d);
                return r;
        }
        printf("%s: ready as /dev/mapper/%s on %s%s\n", device, arg_name, arg_mount,
               first_use ? " (first boot: awaiting the disk key)" : "");
        return 0;
}

/* Which disk --device auto takes, and the names it looks for: read-only, for the owner and tests
 * (which compare the names with what the Terraform modules attach). */
static int verb_locate(int argc, char *argv[], void *userdata)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "provider", required_argument, NULL, 'p' },
                { "root", required_argument, NULL, 'r' },
                { "dmi-dir", required_argument, NULL, 'D' },
                { "wait", required_argument, NULL, 'w' },
                { "names", no_argument, NULL, 'n' },
                {},
        };
        MetadataProvider p = _METADATA_PROVIDER_INVALID;
        const char *root = NULL;
        bool names = false;
        char *end;
        int c, r;

        optind = 0;
        arg_wait = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister-disk-mapper locate [--provider P] [--names] "
                               "[--wait SEC]\n"
                               "\n"
                               "Prints the state disk '--device auto' takes: the disk the "
                               "Terraform\n"
                               "module attaches, found by its stable name in the cloud SMBIOS "
                               "names\n"
                               "(or --provider gcp|azure|aws|qemu). Opens and changes nothing.\n\n"
                               "  --names           print the names looked for, in order, "
                               "instead\n"
                               "  --wait SEC        look again until one exists, for at most "
                               "SEC s\n"
                               "                    (default 0: once)\n"
                               "  --dmi-dir DIR     where SMBIOS is read (tests; default\n"
                               "                    " METADATA_DMI_DIR ")\n"
                               "  --root DIR        look under DIR instead of / (tests)\n");
                        return 0;
                case 'p':
                        p = metadata_provider_from_string(optarg);
                        if (p < 0 || !metadata_state_disk_names(p))
                                return log_error_errno(-EUSAGE,
                                                       "--provider '%s': use gcp, azure, aws or "
                                                       "qemu.",
                                                       optarg);
                        break;
                case 'r':
                        root = optarg;
                        break;
                case 'D':
                        arg_dmi_dir = optarg;
                        break;
                case 'w':
                        errno = 0;
                        arg_wait = (unsigned) strtoul(optarg, &end, 10);
                        if (errno || *end || end == optarg || optarg[0] == '-' || arg_wait > 600)
                                return log_error_errno(-EUSAGE, "--wait: 0..600 seconds.");
                        break;
                case 'n':
                        names = true;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "locate: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (names) {
                Diag d;
                diag_clear(&d);
                if (p < 0 && (r = metadata_provider_detect(arg_dmi_dir, &p, &d)) < 0)
                        return log_error_errno(r, "%s. Name it: --provider gcp|azure|aws|qemu.",
                                               d.message);
                for (const char *const *n = metadata_state_disk_names(p); n && *n; n++)
                        printf("%s\n", *n);
                return 0;
        }
        r = find_auto_device(root, p);
        if (r < 0)
                return r;
        printf("%s\n", auto_device);
        return 0;
}

/* The provider SMBIOS names, for the image's generator (image/rootfs/usr/lib/systemd/
 * system-generators/cloister-provider-generator), which sets up the network by it: fw_cfg on
 * QEMU, DHCP (systemd-networkd) in a cloud. Reads SMBIOS only. */
static int verb_provider(int argc, char *argv[], void *userdata)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "dmi-dir", required_argument, NULL, 'D' },
                {},
        };
        MetadataProvider p;
        Diag d;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister-disk-mapper provider [--dmi-dir DIR]\n"
                               "\n"
                               "Prints where this node runs, as SMBIOS names it: gcp, azure, aws "
                               "or qemu\n"
                               "(the provider --metadata auto and --device auto use). Unknown "
                               "hardware\n"
                               "is refused, quoting what was read. Reads SMBIOS only.\n\n"
                               "  --dmi-dir DIR     where SMBIOS is read (tests; default\n"
                               "                    " METADATA_DMI_DIR ")\n");
                        return 0;
                case 'D':
                        arg_dmi_dir = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "provider: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        diag_clear(&d);
        r = metadata_provider_detect(arg_dmi_dir, &p, &d);
        if (r < 0)
                return log_error_errno(r, "%s.", d.message);
        printf("%s\n", metadata_provider_to_string(p));
        return 0;
}

/* udev's helper on Compute Engine (image/rootfs/usr/lib/udev/rules.d/65-cloister-gce-nvme.rules):
 * an NVMe persistent disk's device name, from its Identify Namespace data, for the link
 * /dev/disk/by-id/google-NAME that --device auto looks for. */
static int verb_gce_nvme_name(int argc, char *argv[], void *userdata)
{
        char name[METADATA_GCE_DEVICE_NAME_MAX];
        Diag d;
        int r;

        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf("Usage: cloister-disk-mapper gce-nvme-name DEVICE\n"
                       "\n"
                       "Prints the Compute Engine device name of the NVMe namespace DEVICE, from\n"
                       "its Identify Namespace data (what udev links as\n"
                       "/dev/disk/by-id/google-NAME on a GCP node). Reads, never writes.\n");
                return 0;
        }
        if (argc != 2)
                return log_error_errno(-EUSAGE, "gce-nvme-name: give one DEVICE. See --help.");
        if (argv[1][0] == '-')
                return log_error_errno(-EUSAGE, "gce-nvme-name: unknown option '%s'. See --help.",
                                       argv[1]);
        diag_clear(&d);
        r = metadata_gce_nvme_read(argv[1], name, &d);
        if (r < 0)
                return log_error_errno(r, "gce-nvme-name: %s.", d.message);
        printf("%s\n", name);
        return 0;
}

static const Verb verbs[] = {
        { "format", 0, VERB_ANY, verb_format, "LUKS2-format a new state disk --key-file F" },
        { "check-header", 0, VERB_ANY, verb_check_header,
          "validate a state disk's header strictly [--key-file F]" },
        { "check", 0, VERB_ANY, verb_check_header, "the same as check-header" },
        { "rekey", 0, VERB_ANY, verb_rekey,
          "replace the keyslot: --key-file OLD --new-key-file NEW" },
        { "open", 0, VERB_ANY, verb_open,
          "activate /dev/mapper/N [--mount DIR [--bind PATHS]] (device-mapper)" },
        { "close", 0, VERB_ANY, verb_close, "unmount and deactivate /dev/mapper/N" },
        { "status", 0, VERB_ANY, verb_status, "header verdict, state, mapping [-o json]" },
        { "reset", 0, VERB_ANY, verb_reset, "mark the disk to be wiped at next boot" },
        { "setup", 0, VERB_ANY, verb_setup,
          "at boot: format a blank disk with a first-boot key, or open it; mount" },
        { "locate", 0, VERB_ANY, verb_locate,
          "the state disk --device auto takes in this cloud [--names]" },
        { "provider", 0, VERB_ANY, verb_provider,
          "where this node runs, from SMBIOS: gcp, azure, aws or qemu" },
        { "gce-nvme-name", 0, VERB_ANY, verb_gce_nvme_name,
          "udev on GCP: an NVMe disk's device name DEVICE" },
        {},
};

static void help(void)
{
        printf("Usage: cloister-disk-mapper COMMAND --device PATH [OPTIONS]\n\n"
               "The node's encrypted state disk (LUKS2, one accepted profile).\n\nCommands:\n");
        verbs_print_help(verbs, NULL);
        printf("\nThe disk: --device PATH (block device or image file; a positional PATH works\n"
               "too), --device auto (the disk the Terraform module attaches in the cloud SMBIOS\n"
               "names: see 'locate') or --partlabel LABEL. A disk on the boot disk or in use\n"
               "is refused.\n"
               "Keys: --key-file PATH holds the raw key; '-' reads standard input. Keys never\n"
               "go on the command line. 'COMMAND --help' shows each command's options.\n"
               "Exit status: 0 success, 1 failure (one line on stderr says why), 2 a usage\n"
               "error (an unknown command or option, a missing or malformed argument).\n");
}

int main(int argc, char *argv[])
{
        int r;

        log_parse_environment();
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                help();
                return argc < 2 ? exit_status_from_errno(-EUSAGE) : 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("cloister-disk-mapper %s\n", CLOISTER_VERSION);
                return 0;
        }
        r = verbs_dispatch("cloister-disk-mapper", argc - 1, argv + 1, verbs, NULL);
        for (size_t i = 0; i < arg_n_binds; i++)
                free(arg_binds[i]);
        return exit_status_from_errno(r);
}
