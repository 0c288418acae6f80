/* SPDX-License-Identifier: Apache-2.0 */
/* TDX collateral from a PCS cache: the header parsing and URL-decoding of the issuer chains, and
 * tdx_pcs_collateral() offline over a cache laid out as a fetch leaves it (Intel's collateral of
 * ../shared/testdata/tdx/dcapqvl-b0c06f-uptodate): fresh, stale, missing. */
#include <sys/stat.h>
#include <time.h>

#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/rpc-cache.h"
#include "cloister/rpc.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"

#define UPTODATE "tdx/dcapqvl-b0c06f-uptodate/"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &data, size), 0);
        return data;
}

/* Percent-encodes everything but letters and digits, as a PCS may. */
static char *encode(const uint8_t *in, size_t n)
{
        char *out = malloc(3 * n + 1), *p = out;
        assert_non_null(out);
        for (size_t i = 0; i < n; i++) {
                if ((in[i] >= 'A' && in[i] <= 'Z') || (in[i] >= 'a' && in[i] <= 'z') ||
                    (in[i] >= '0' && in[i] <= '9'))
                        *p++ = (char) in[i];
                else
                        p += sprintf(p, "%%%02X", in[i]);
        }
        *p = 0;
        return out;
}

static void test_pcs_issuer_chain_url_decoding(void **state)
{
        size_t n, dn;
        uint8_t *pem = load(UPTODATE "tcb_info_issuer_chain.pem", &n), *out;
        char *enc = encode(pem, n);

        assert_int_equal(tdx_url_decode((uint8_t *) enc, strlen(enc), 65536, &out, &dn), 0);
        assert_int_equal(dn, n);
        assert_memory_equal(out, pem, n);
        free(out);
        /* '+' is base64, not a space. */
        assert_int_equal(tdx_url_decode((const uint8_t *) "a+b%2Fc", 7, 64, &out, &dn), 0);
        assert_int_equal(dn, 5);
        assert_memory_equal(out, "a+b/c", 5);
        free(out);
        assert_int_equal(tdx_url_decode((const uint8_t *) "ab%00cd", 7, 64, &out, &dn), -EBADMSG);
        assert_int_equal(tdx_url_decode((const uint8_t *) "ab%2", 4, 64, &out, &dn), -EBADMSG);
        assert_int_equal(tdx_url_decode((const uint8_t *) "ab%zz", 5, 64, &out, &dn), -EBADMSG);
        assert_int_equal(tdx_url_decode((const uint8_t *) "abc", 3, 2, &out, &dn), -EMSGSIZE);
        free(enc);
        free(pem);
}

static void test_pcs_response_headers_are_matched_strictly(void **state)
{
        const char *v;
        size_t vn;
        unsigned s;
        static const char ok[] = "tcb-info-issuer-chain:  -----BEGIN%20 \r\n";
        static const char crlf[] = "TCB-Info-Issuer-Chain: a\rb\r\n";
        static const char nul[] = "TCB-Info-Issuer-Chain: a\0b\r\n";

        assert_int_equal(rpc_http_header_match(ok, strlen(ok), "TCB-Info-Issuer-Chain", &v, &vn),
                         1);
        assert_int_equal(vn, strlen("-----BEGIN%20"));
        assert_memory_equal(v, "-----BEGIN%20", vn);
        assert_int_equal(rpc_http_header_match(ok, strlen(ok), "TCB-Info-Issuer", &v, &vn), 0);
        assert_int_equal(rpc_http_header_match(ok, strlen(ok), "SGX-PCK-CRL-Issuer-Chain", &v, &vn),
                         0);
        assert_int_equal(
                rpc_http_header_match(crlf, strlen(crlf), "TCB-Info-Issuer-Chain", &v, &vn),
                -EBADMSG);
        assert_int_equal(
                rpc_http_header_match(nul, sizeof(nul) - 1, "TCB-Info-Issuer-Chain", &v, &vn),
                -EBADMSG);
        assert_int_equal(rpc_retry_after_parse("120", &s), 0);
        assert_int_equal(s, 120);
        assert_int_equal(rpc_retry_after_parse("", &s), -EINVAL);
        assert_int_equal(rpc_retry_after_parse("-1", &s), -EINVAL);
        assert_int_equal(rpc_retry_after_parse("Wed, 21 Oct 2026 07:28:00 GMT", &s), -EINVAL);
        assert_int_equal(rpc_retry_after_parse("1234567890", &s), -EINVAL);
}

static void put(const char *dir, const char *rel, const void *data, size_t n)
{
        char path[4096];
        (void) snprintf(path, sizeof(path), "%s/%s", dir, rel);
        assert_int_equal(write_file_atomic(path, data, n, 0644, 0), 0);
}

static void put_file(const char *dir, const char *rel, const char *src, bool as_header)
{
        size_t n;
        uint8_t *d = load(src, &n);
        if (as_header) {
                char *e = encode(d, n);
                put(dir, rel, e, strlen(e));
                free(e);
        } else
                put(dir, rel, d, n);
        free(d);
}

static void test_pcs_cache_serves_offline_reports_stale_and_missing(void **state)
{
        char dir[4096], sub[4200];
        TdxCollateral *col = NULL, *files = NULL;
        TdxPcsConfig c;
        TdxPcsResult res;
        size_t qn;
        uint8_t *raw = load(UPTODATE "quote.bin", &qn);
        time_t at, later;
        TdxQuote q;
        Diag d;

        assert_int_equal(tdx_quote_parse(raw, qn, &q, &d), 0);
        assert_int_equal(timestamp_parse_utc("2025-07-19T10:00:34Z", &at), 0);
        assert_int_equal(timestamp_parse_utc("2025-08-20T00:00:00Z", &later), 0);
        (void) snprintf(dir, sizeof(dir), "%s/pcs-cache", test_tmpdir());
        tdx_pcs_config_defaults(&c);
        c.base_url = "http://127.0.0.1:9/tdx/certification/v4"; /* nothing listens */
        c.cache_dir = dir;
        c.offline = true;

        /* Empty: the missing item is named. */
        assert_int_equal(tdx_pcs_collateral(&c, &q, at, &col, &res, &d), -ENOENT);
        assert_non_null(strstr(d.message, "TCB info"));
        assert_non_null(strstr(d.message, "--collateral DIR"));

        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(sub, sizeof(sub), "%s/fmspc-b0c06f000000", dir);
        assert_int_equal(mkdir(sub, 0755), 0);
        put_file(dir, "fmspc-b0c06f000000/tcb_info.json", UPTODATE "tcb_info.json", false);
        put_file(dir, "fmspc-b0c06f000000/tcb_info_issuer_chain.hdr",
                 UPTODATE "tcb_info_issuer_chain.pem", true);
        put_file(dir, "qe_identity.json", UPTODATE "qe_identity.json", false);
        put_file(dir, "qe_identity_issuer_chain.hdr", UPTODATE "qe_identity_issuer_chain.pem",
                 true);
        put_file(dir, "pck_crl-platform.der", UPTODATE "pck_crl.der", false);
        put_file(dir, "pck_crl-platform_issuer_chain.hdr", UPTODATE "pck_crl_issuer_chain.pem",
                 true);
        put_file(dir, "root_ca_crl.der", UPTODATE "root_ca_crl.der", false);

        /* Fresh at the verification time: the same bytes as the files, no request. */
        assert_int_equal(tdx_pcs_collateral(&c, &q, at, &col, &res, &d), 0);
        assert_string_equal(res.fmspc, "b0c06f000000");
        assert_string_equal(res.ca, "platform");
        assert_int_equal(res.stale, 0);
        assert_int_equal(res.fetched, 0);
        assert_int_equal(tdx_collateral_load_dir(testdata_path(UPTODATE), &files, &d), 0);
        assert_int_equal(col->tcb_info_chain_size, files->tcb_info_chain_size);
        assert_memory_equal(col->tcb_info_chain, files->tcb_info_chain, files->tcb_info_chain_size);
        assert_int_equal(col->pck_crl_chain_size, files->pck_crl_chain_size);
        assert_int_equal(col->root_crl_size, files->root_crl_size);
        TdxVerifyOptions o = { .at = at };
        TdxVerification v;
        assert_int_equal(tdx_verify_quote(&q, raw, qn, col, &o, &v, NULL, NULL, &d), 0);
        col = tdx_collateral_free(col);

        /* A month later, offline: the cached items are returned, three counted stale. */
        assert_int_equal(tdx_pcs_collateral(&c, &q, later, &col, &res, &d), 0);
        assert_int_equal(res.stale, 3);
        assert_non_null(strstr(res.stale_note, "past its nextUpdate"));
        assert_non_null(strstr(res.stale_note, "run without --offline"));
        o.at = later;
        assert_int_equal(tdx_verify_quote(&q, raw, qn, col, &o, &v, NULL, NULL, &d), -ESTALE);
        col = tdx_collateral_free(col);
        assert_int_equal(tdx_pcs_requests(), 0);

        /* A chain header that is not URL-encoded text is refused, never used. */
        put(dir, "qe_identity_issuer_chain.hdr", "%0", 2);
        assert_int_equal(tdx_pcs_collateral(&c, &q, at, &col, &res, &d), -EBADMSG);
        assert_string_equal(d.check, "tdx-pcs-issuer-chain");

        tdx_collateral_free(files);
        free(raw);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pcs_issuer_chain_url_decoding),
                cmocka_unit_test(test_pcs_response_headers_are_matched_strictly),
                cmocka_unit_test(test_pcs_cache_serves_offline_reports_stale_and_missing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
