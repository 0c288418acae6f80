/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/log.h"

int crypto_log_errors(int error, const char *what)
{
        unsigned long e;

        while ((e = ERR_get_error()) != 0) {
                char buf[256];
                ERR_error_string_n(e, buf, sizeof(buf));
                log_debug("%s: OpenSSL: %s", what, buf);
        }
        return error;
}

/* Fetching an algorithm takes the provider store's lock and a lookup: do it once per digest for
 * the process (the fetched objects are immutable and thread-safe). */
static const char *const md_names[] = { "SHA1", "SHA256", "SHA384", "SHA512" };
static EVP_MD *md_cache[ELEMENTSOF(md_names)];
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch_all(void)
{
        for (size_t i = 0; i < ELEMENTSOF(md_names); i++)
                md_cache[i] = EVP_MD_fetch(NULL, md_names[i], NULL);
}

static const EVP_MD *md_get(const char *name)
{
        (void) pthread_once(&md_once, md_fetch_all);
        for (size_t i = 0; i < ELEMENTSOF(md_names); i++)
                if (strcmp(md_names[i], name) == 0)
                        return md_cache[i];
        return NULL;
}

__attribute__((destructor)) static void md_free_all(void)
{
        for (size_t i = 0; i < ELEMENTSOF(md_names); i++)
                md_cache[i] = (EVP_MD_free(md_cache[i]), NULL);
}

int crypto_digest(const char *md_name, const IoVec *parts, size_t n_parts, uint8_t *out,
                  size_t out_size)
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        const EVP_MD *md;
        unsigned int n = 0;
        int r = -EIO;

        md = md_get(md_name);
        if (!md)
                return crypto_log_errors(-EOPNOTSUPP, md_name);
        if ((size_t) EVP_MD_get_size(md) != out_size) {
                r = -EINVAL;
                goto finish;
        }
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1)
                goto finish;
        for (size_t i = 0; i < n_parts; i++)
                if (parts[i].size > 0 && EVP_DigestUpdate(ctx, parts[i].data, parts[i].size) != 1)
                        goto finish;
        if (EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != out_size)
                goto finish;
        r = 0;
finish:
        return r < 0 ? crypto_log_errors(r, "digest") : 0;
}

void crypto_sha256(const void *data, size_t size, uint8_t out[static SHA256_DIGEST_SIZE])
{
        unsigned int n = SHA256_DIGEST_SIZE;
        /* EVP_Digest with a built-in algorithm cannot fail short of memory corruption. */
        if (EVP_Digest(data, size, out, &n, md_get("SHA256"), NULL) != 1)
                abort();
}

int crypto_x509_pem_spki_sha256(const void *pem, size_t size,
                                uint8_t out[static SHA256_DIGEST_SIZE])
{
        _cleanup_(BIO_freep) BIO *bio = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        unsigned char *der = NULL;
        int n;

        if (size > INT_MAX)
                return -EMSGSIZE;
        bio = BIO_new_mem_buf(pem, (int) size);
        if (!bio)
                return -ENOMEM;
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x)
                return crypto_log_errors(-EBADMSG, "PEM certificate");
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        if (n <= 0)
                return crypto_log_errors(-EIO, "SubjectPublicKeyInfo");
        crypto_sha256(der, (size_t) n, out);
        OPENSSL_free(der);
        return 0;
}

const char *crypto_library_version(void)
{
        return OpenSSL_version(OPENSSL_VERSION);
}
