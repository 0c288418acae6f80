/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/base64.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/init-secret.h"

#define SALT_SIZE 16
#define HASH_SIZE 32

typedef struct Parsed {
        unsigned log2n, r, p;
        uint8_t salt[SALT_SIZE], hash[HASH_SIZE];
} Parsed;

static int parse_uint(const char **p, unsigned min, unsigned max, unsigned *ret)
{
        unsigned v = 0;
        const char *s = *p;

        if (*s < '0' || *s > '9')
                return -EBADMSG;
        while (*s >= '0' && *s <= '9' && v <= max)
                v = v * 10 + (unsigned) (*s++ - '0');
        if (v < min || v > max || *s != '$')
                return -EBADMSG;
        *p = s + 1;
        *ret = v;
        return 0;
}

static int parse(const char *encoded, Parsed *ret, Diag *d)
{
        const char *p = encoded;
        char salt[2 * SALT_SIZE + 1];
        bool ok = false;

        if (!encoded || strlen(encoded) >= INIT_SECRET_HASH_MAX ||
            strncmp(encoded, "scrypt$", 7) != 0)
                return diag_fail(d, -EBADMSG, "init-secret-hash", -1,
                                 "the init-secret hash is not 'scrypt$...'");
        p += 7;
        if (parse_uint(&p, INIT_SECRET_LOG2N_MIN, INIT_SECRET_LOG2N_MAX, &ret->log2n) < 0 ||
            parse_uint(&p, 1, 8, &ret->r) < 0 || parse_uint(&p, 1, 2, &ret->p) < 0)
                return diag_fail(d, -EBADMSG, "init-secret-hash", -1,
                                 "the init-secret hash's cost parameters are malformed or out "
                                 "of bounds (log2 N %d..%d, r 1..8, p 1..2)",
                                 INIT_SECRET_LOG2N_MIN, INIT_SECRET_LOG2N_MAX);
        if (strlen(p) == 2 * SALT_SIZE + 1 + 2 * HASH_SIZE && p[2 * SALT_SIZE] == '$') {
                memcpy(salt, p, 2 * SALT_SIZE);
                salt[2 * SALT_SIZE] = '\0';
                ok = hex_decode_exact(salt, ret->salt, SALT_SIZE) == 0 &&
                     hex_decode_exact(p + 2 * SALT_SIZE + 1, ret->hash, HASH_SIZE) == 0;
        }
        if (!ok)
                return diag_fail(d, -EBADMSG, "init-secret-hash", -1,
                                 "the init-secret hash's salt or digest is malformed");
        return 0;
}

static int scrypt(const Secret *secret, const Parsed *params, uint8_t out[static HASH_SIZE])
{
        uint64_t n = UINT64_C(1) << params->log2n;
        uint64_t maxmem = 128 * (uint64_t) params->r * (n + (uint64_t) params->p + 2) + 4096;

        return EVP_PBE_scrypt((const char *) secret_data_const(secret), secret_size(secret),
                              params->salt, SALT_SIZE, n, params->r, params->p, maxmem, out,
                              HASH_SIZE) == 1
                       ? 0
                       : -EIO;
}

int init_secret_hash(const Secret *secret, char out[static INIT_SECRET_HASH_MAX])
{
        Parsed p = { .log2n = INIT_SECRET_LOG2N, .r = INIT_SECRET_R, .p = INIT_SECRET_P };
        char salt[2 * SALT_SIZE + 1], hash[2 * HASH_SIZE + 1];
        int r;

        if (RAND_bytes(p.salt, SALT_SIZE) != 1)
                return -EIO;
        r = scrypt(secret, &p, p.hash);
        if (r < 0)
                return r;
        hex_encode_buf(p.salt, SALT_SIZE, salt, sizeof(salt));
        hex_encode_buf(p.hash, HASH_SIZE, hash, sizeof(hash));
        (void) snprintf(out, INIT_SECRET_HASH_MAX, "scrypt$%u$%u$%u$%s$%s", p.log2n, p.r, p.p, salt,
                        hash);
        return 0;
}

int init_secret_hash_check(const char *encoded, Diag *d)
{
        Parsed p = { 0 };
        return parse(encoded, &p, d);
}

int init_secret_verify(const Secret *secret, const char *encoded, Diag *d)
{
        uint8_t got[HASH_SIZE];
        Parsed p = { 0 };
        int r;

        r = parse(encoded, &p, d);
        if (r < 0)
                return r;
        r = scrypt(secret, &p, got);
        if (r < 0)
                return diag_fail(d, r, "init-secret", -1, "cannot compute scrypt");
        r = CRYPTO_memcmp(got, p.hash, HASH_SIZE) == 0
                    ? 0
                    : diag_fail(d, -EKEYREJECTED, "init-secret", -1,
                                "the init secret does not match the node's metadata");
        OPENSSL_cleanse(got, sizeof(got));
        return r;
}

int init_secret_generate_file(const char *path, Secret **ret)
{
        _cleanup_(secret_freep) Secret *s = NULL;
        char *b64 = NULL, *line = NULL;
        int r;

        r = secret_new_random(INIT_SECRET_SIZE, &s);
        if (r < 0)
                return r;
        r = base64_encode(secret_data_const(s), INIT_SECRET_SIZE, &b64);
        if (r < 0)
                return r;
        if (asprintf(&line, "%s\n", b64) < 0)
                line = NULL;
        explicit_wipe(b64, strlen(b64));
        free(b64);
        if (!line)
                return -ENOMEM;
        r = write_file_atomic(path, line, strlen(line), 0600,
                              WRITE_FILE_EXCLUSIVE | WRITE_FILE_SYNC);
        explicit_wipe(line, strlen(line));
        free(line);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int init_secret_load(const char *path, Secret **ret, Diag *d)
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t n;
        int r;

        r = read_full_file(path, 1024, &data, &n);
        if (r < 0)
                return diag_fail(d, r, "init-secret", -1, "%s: cannot read the init secret: %s",
                                 path, strerror(-r));
        while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
                data[--n] = '\0';
        r = base64_decode_secret((const char *) data, INIT_SECRET_SIZE, ret);
        explicit_wipe(data, n);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "init-secret", -1,
                                 "%s: not an init secret (one line of base64, 32 bytes)", path);
        return 0;
}
