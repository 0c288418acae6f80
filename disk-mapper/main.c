/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cloister/fileio.h"
#include "cloister/log.h"
#include "cloister/luks.h"
#include "cloister/verbs.h"

#define CLOISTER_VERSION "0.1.0"
#define KEY_FILE_MAX     4096

static const char *arg_key_file, *arg_new_key_file;

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

static int parse_options(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "key-file", required_argument, NULL, 'k' },
                { "new-key-file", required_argument, NULL, 'n' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hk:n:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("See 'cloister-disk-mapper --help'.\n");
                        return 0;
                case 'k':
                        arg_key_file = optarg;
                        break;
                case 'n':
                        arg_new_key_file = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (argc - optind != 1)
                return log_error_errno(-EINVAL, "%s: expected exactly one DEVICE. See --help.",
                                       argv[0]);
        return 1;
}

static int verb_check(int argc, char *argv[], void *userdata)
{
        char uuid[LUKS_UUID_SIZE];
        LuksState st;
        Diag d;
        int r;

        r = parse_options(argc, argv);
        if (r <= 0)
                return r;
        diag_clear(&d);
        r = luks_validate(argv[optind], uuid, &st, &d);
        if (r < 0) {
                if (d.expected[0] || d.actual[0])
                        return log_error_errno(r, "%s (expected %s, found %s)", d.message,
                                               d.expected, d.actual);
                return log_error_errno(r, "%s", d.message);
        }
        printf("%s: valid Cloister state disk, UUID %s, state %s\n", argv[optind], uuid,
               luks_state_to_string(st));
        if (arg_key_file) {
                _cleanup_(secret_freep) Secret *key = NULL;
                r = read_key(arg_key_file, &key);
                if (r < 0)
                        return r;
                r = luks_check_key(argv[optind], key, &d);
                if (r < 0)
                        return log_error_errno(r, "%s", d.message);
                printf("%s: the key opens it\n", argv[optind]);
        }
        return 0;
}

static int verb_format(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *key = NULL;
        char uuid[LUKS_UUID_SIZE];
        Diag d;
        int r;

        r = parse_options(argc, argv);
        if (r <= 0)
                return r;
        if (!arg_key_file)
                return log_error_errno(-EINVAL, "format: --key-file is required.");
        r = read_key(arg_key_file, &key);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = luks_format(argv[optind], key, uuid, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        printf("%s: formatted, UUID %s, state new\n", argv[optind], uuid);
        return 0;
}

static int verb_rekey(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *old = NULL, *new = NULL;
        Diag d;
        int r;

        r = parse_options(argc, argv);
        if (r <= 0)
                return r;
        if (!arg_key_file || !arg_new_key_file)
                return log_error_errno(-EINVAL,
                                       "rekey: --key-file and --new-key-file are required.");
        if ((r = read_key(arg_key_file, &old)) < 0 || (r = read_key(arg_new_key_file, &new)) < 0)
                return r;
        diag_clear(&d);
        r = luks_rekey(argv[optind], old, new, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        printf("%s: re-keyed, state initialized\n", argv[optind]);
        return 0;
}

static const Verb verbs[] = {
        { "check", 1, VERB_ANY, verb_check,
          "validate a state disk's header strictly [--key-file]" },
        { "format", 1, VERB_ANY, verb_format, "LUKS2-format a new state disk --key-file F" },
        { "rekey", 1, VERB_ANY, verb_rekey,
          "replace the keyslot: --key-file OLD --new-key-file NEW" },
        {},
};

static void help(void)
{
        printf("Usage: cloister-disk-mapper COMMAND DEVICE [OPTIONS]\n\n"
               "The node's encrypted state disk (LUKS2, one accepted profile).\n\nCommands:\n");
        verbs_print_help(verbs, NULL);
        printf("\nKey files hold the raw key; '-' reads standard input.\n"
               "Opening and mounting need device-mapper and run on nodes only (not built yet).\n");
}

int main(int argc, char *argv[])
{
        int r;

        log_parse_environment();
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                help();
                return argc < 2 ? 1 : 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("cloister-disk-mapper %s\n", CLOISTER_VERSION);
                return 0;
        }
        r = verbs_dispatch("cloister-disk-mapper", argc - 1, argv + 1, verbs, NULL);
        return exit_status_from_errno(r);
}
