/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cloister/log.h"
#include "cloister/mastersecret.h"

static const char *arg_file = MASTER_SECRET_FILE_DEFAULT;

static int master_secret_generate_verb(int argc, char *argv[], void *userdata)
{
        _cleanup_(master_secret_freep) MasterSecret *m = NULL;
        Diag d;
        int r;

        r = cli_parse_file_option(
                argc, argv,
                "Usage: cloister master-secret generate [--file FILE]\n\n"
                "Creates a new master secret and salt (32 random bytes each) in FILE\n"
                "(default " MASTER_SECRET_FILE_DEFAULT "), mode 0600. Refuses to\n"
                "overwrite an existing file. Every key of a cluster derives from it:\n"
                "keep it offline and backed up.\n",
                &arg_file);
        if (r <= 0)
                return r;

        r = master_secret_generate(&m);
        if (r < 0)
                return log_error_errno(r, "Cannot generate a master secret: %m");
        diag_clear(&d);
        r = master_secret_write(m, arg_file, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        printf("Wrote a new master secret to %s (mode 0600). Back it up and keep it offline: "
               "without it a cluster that is fully down cannot be recovered.\n",
               arg_file);
        return 0;
}

static int master_secret_check_verb(int argc, char *argv[], void *userdata)
{
        _cleanup_(master_secret_freep) MasterSecret *m = NULL;
        struct stat st;
        Diag d;
        int r;

        r = cli_parse_file_option(argc, argv,
                                  "Usage: cloister master-secret check [--file FILE]\n\n"
                                  "Validates a master secret file without printing any secret.\n",
                                  &arg_file);
        if (r <= 0)
                return r;

        diag_clear(&d);
        r = master_secret_load(arg_file, &m, &d);
        if (r < 0) {
                if (!diag_failed(&d))
                        return log_error_errno(r, "%s: cannot load: %m", arg_file);
                return log_error_errno(r, "%s", d.message);
        }
        if (stat(arg_file, &st) == 0 && (st.st_mode & 0077))
                log_warning("%s is readable by group or others (mode %04o): run 'chmod 600 %s'.",
                            arg_file, (unsigned) (st.st_mode & 07777), arg_file);
        printf("%s: valid master secret (version %d)\n", arg_file, MASTER_SECRET_FILE_VERSION);
        return 0;
}

int verb_master_secret(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "generate", 0, VERB_ANY, master_secret_generate_verb,
                  "create a new master secret file (never overwrites)" },
                { "check", 0, VERB_ANY, master_secret_check_verb, "validate a master secret file" },
                {},
        };

        return verbs_dispatch("cloister master-secret", argc - 1, argv + 1, verbs, userdata);
}
