/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/mastersecret.h"

MasterSecret *master_secret_free(MasterSecret *m)
{
        if (!m)
                return NULL;
        secret_free(m->key);
        explicit_wipe(m->salt, sizeof(m->salt));
        free(m);
        return NULL;
}

int master_secret_generate(MasterSecret **ret)
{
        _cleanup_(master_secret_freep) MasterSecret *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        r = secret_new_random(MASTER_SECRET_SIZE, &m->key);
        if (r < 0)
                return r;
        if (RAND_bytes(m->salt, sizeof(m->salt)) != 1)
                return -EIO;
        *ret = TAKE_PTR(m);
        return 0;
}

int master_secret_write(const MasterSecret *m, const char *path, Diag *d)
{
        /* Formatted by hand into locked memory: a JSON library would leave copies of the key in
         * ordinary heap buffers that nobody wipes. */
        _cleanup_(secret_freep) Secret *text = NULL;
        char key64[45], salt64[45];
        int r, n;

        r = secret_new(256, &text);
        if (r < 0)
                return diag_fail(d, r, "secret-memory", -1, "cannot allocate locked memory");
        (void) EVP_EncodeBlock((unsigned char *) key64, secret_data_const(m->key),
                               MASTER_SECRET_SIZE);
        (void) EVP_EncodeBlock((unsigned char *) salt64, m->salt, MASTER_SALT_SIZE);
        n = snprintf((char *) secret_data(text), secret_size(text),
                     "{\n  \"version\": %d,\n  \"key\": \"%s\",\n  \"salt\": \"%s\"\n}\n",
                     MASTER_SECRET_FILE_VERSION, key64, salt64);
        explicit_wipe(key64, sizeof(key64));
        explicit_wipe(salt64, sizeof(salt64));
        if (n < 0 || (size_t) n >= secret_size(text))
                return -EINVAL;

        r = write_file_atomic(path, secret_data(text), (size_t) n, 0600,
                              WRITE_FILE_EXCLUSIVE | WRITE_FILE_SYNC);
        if (r == -EEXIST)
                return diag_fail(d, r, "file-exists", -1,
                                 "%s already exists; refusing to overwrite a master secret "
                                 "(move it away first if you really mean to replace it)",
                                 path);
        if (r < 0)
                return diag_fail(d, r, "file-write", -1, "%s: cannot write: %s", path,
                                 strerror(-r));
        return 0;
}

static int master_secret_from_json(const json_t *j, const char *source, MasterSecret **ret, Diag *d)
{
        static const char *const keys[] = { "version", "key", "salt", NULL };
        _cleanup_(master_secret_freep) MasterSecret *m = NULL;
        _cleanup_(secret_freep) Secret *salt = NULL;
        JsonCtx ctx = { .source = source, .path = "", .diag = d };
        int64_t version;
        int r;

        r = json_check_keys(&ctx, j, keys);
        if (r < 0)
                return r;
        r = json_get_int(&ctx, j, "version", true, MASTER_SECRET_FILE_VERSION,
                         MASTER_SECRET_FILE_VERSION, &version);
        if (r < 0)
                return r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        r = json_get_base64_secret(&ctx, j, "key", MASTER_SECRET_SIZE, &m->key);
        if (r < 0)
                return r;
        r = json_get_base64_secret(&ctx, j, "salt", MASTER_SALT_SIZE, &salt);
        if (r < 0)
                return r;
        memcpy(m->salt, secret_data(salt), MASTER_SALT_SIZE);

        *ret = TAKE_PTR(m);
        return 0;
}

int master_secret_parse(const void *data, size_t size, const char *source, MasterSecret **ret,
                        Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r;

        if (size > MASTER_SECRET_FILE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "file-size", -1,
                                 "%s: larger than the limit of %u bytes", source,
                                 MASTER_SECRET_FILE_SIZE_MAX);
        r = json_parse_buffer(data, size, source, &j, d);
        if (r < 0)
                return r;
        return master_secret_from_json(j, source, ret, d);
}

int master_secret_load(const char *path, MasterSecret **ret, Diag *d)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r;

        r = json_parse_file(path, MASTER_SECRET_FILE_SIZE_MAX, &j, d);
        if (r < 0)
                return r;
        return master_secret_from_json(j, path, ret, d);
}
