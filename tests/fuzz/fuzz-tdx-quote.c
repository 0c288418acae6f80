/* SPDX-License-Identifier: Apache-2.0 */
/* TDX quote parsing (header, v4/v5 body, signature data, certification data), then the whole
 * authenticity path on whatever parsed: PEM chain splitting, certificates, the SGX extension,
 * the QE report and quote signatures. The root the quote carries is trusted here (as a test root
 * is), so that inputs get past the pinned-root check into the later parsers; then the default
 * policy's checks. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The last PEM certificate of the quote's chain and its SHA-256, or NULL. */
static char *last_root(const TdxQuote *q, uint8_t fp[32])
{
        static const char begin[] = "-----BEGIN CERTIFICATE-----";
        const uint8_t *p = q->pck_chain, *last = NULL;
        size_t n = q->pck_chain_size;
        char *pem;
        BIO *b;
        X509 *x;

        while ((p = memmem(p, n - (size_t) (p - q->pck_chain), begin, strlen(begin)))) {
                last = p;
                p += strlen(begin);
        }
        if (!last)
                return NULL;
        pem = strndup((const char *) last, n - (size_t) (last - q->pck_chain));
        b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
        x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        ERR_clear_error();
        if (!x) {
                free(pem);
                return NULL;
        }
        {
                unsigned char *der = NULL;
                int len = i2d_X509(x, &der);
                if (len > 0)
                        crypto_sha256(der, (size_t) len, fp);
                OPENSSL_free(der);
        }
        X509_free(x);
        return pem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t report_data[64];
        TdxVerifyOptions o = { .at = 1893456000 };
        TdxVerification v;
        TdxPolicy p;
        TdxQuote q;
        uint8_t fp[32];
        char *root;

        if (tdx_quote_parse(data, size, &q, NULL) < 0)
                return 0;
        (void) tdx_verify_quote(&q, data, size, NULL, &o, &v, NULL, NULL, NULL);
        root = last_root(&q, fp);
        if (root) {
                o.root_pem = root;
                o.root_sha256 = fp;
                (void) tdx_verify_quote(&q, data, size, NULL, &o, &v, NULL, NULL, NULL);
                free(root);
        }
        tdx_policy_defaults(&p);
        (void) tdx_check_policy(&q, NULL, &p, report_data, NULL, NULL, NULL);
        return 0;
}
