/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "cli.h"
#include "cloister/init-secret.h"
#include "cloister/log.h"

static int print_hash(const Secret *s)
{
        char hash[INIT_SECRET_HASH_MAX];
        int r = init_secret_hash(s, hash);

        if (r < 0)
                return log_error_errno(r, "Cannot hash the init secret: %m");
        printf("%s\n", hash);
        return 0;
}

static int init_secret_generate_verb(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *s = NULL;
        const char *file = INIT_SECRET_FILE_DEFAULT;
        int r;

        r = cli_parse_file_option(
                argc, argv,
                "Usage: cloister init-secret generate [--file FILE]\n\n"
                "Creates the init secret (32 random bytes, base64) in FILE (default\n"
                "" INIT_SECRET_FILE_DEFAULT "), mode 0600, never overwriting, and prints its\n"
                "scrypt hash: put that into the first node's metadata as\n"
                "cloister-init-secret-hash; 'cloister apply --init-secret-file FILE' then\n"
                "proves you are the owner.\n",
                &file);
        if (r <= 0)
                return r;
        r = init_secret_generate_file(file, &s);
        if (r == -EEXIST)
                return log_error_errno(r, "%s already exists: refusing to overwrite it.", file);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", file);
        return print_hash(s);
}

static int init_secret_hash_verb(int argc, char *argv[], void *userdata)
{
        _cleanup_(secret_freep) Secret *s = NULL;
        const char *file = INIT_SECRET_FILE_DEFAULT;
        Diag d;
        int r;

        r = cli_parse_file_option(
                argc, argv,
                "Usage: cloister init-secret hash [--file FILE]\n\n"
                "Prints a new scrypt hash (fresh salt) of the init secret in FILE.\n",
                &file);
        if (r <= 0)
                return r;
        diag_clear(&d);
        r = init_secret_load(file, &s, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        return print_hash(s);
}

int verb_init_secret(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "generate", 0, VERB_ANY, init_secret_generate_verb,
                  "create the init secret and print its hash for the node metadata" },
                { "hash", 0, VERB_ANY, init_secret_hash_verb,
                  "print a hash of an existing init secret" },
                {},
        };
        return verbs_dispatch("cloister init-secret", argc - 1, argv + 1, verbs, userdata);
}
