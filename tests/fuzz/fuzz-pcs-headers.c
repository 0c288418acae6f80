/* SPDX-License-Identifier: Apache-2.0 */
/* What a PCS/PCCS (or KDS) answer's headers reach: the header line matcher of
 * rpc_http_get_headers(), the Retry-After parser, and the percent-decoding of the issuer chains
 * (URL-encoded PEM), whose result is then loaded as PEM certificates. */
#include <stdlib.h>
#include <string.h>

#include "cloister/rpc-cache.h"
#include "cloister/rpc.h"
#include "cloister/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const names[] = { "TCB-Info-Issuer-Chain",
                                             "SGX-Enclave-Identity-Issuer-Chain",
                                             "SGX-PCK-CRL-Issuer-Chain", "Retry-After" };
        const char *line = (const char *) data;
        uint8_t *out = NULL;
        size_t n = 0;

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const char *v;
                size_t vn;
                if (rpc_http_header_match(line, size, names[i], &v, &vn) == 1) {
                        if (v < line || vn > size || v + vn > line + size)
                                abort(); /* the value must lie inside the line */
                        char *s = strndup(v, vn);
                        unsigned secs;
                        if (s)
                                (void) rpc_retry_after_parse(s, &secs);
                        free(s);
                }
        }
        if (tdx_url_decode(data, size, RPC_HTTP_HEADER_MAX, &out, &n) >= 0) {
                if (n > size || memchr(out, 0, n))
                        abort(); /* never longer than the input, never a NUL */
                free(out);
        }
        return 0;
}
