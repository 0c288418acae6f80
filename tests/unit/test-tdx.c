/* SPDX-License-Identifier: Apache-2.0 */
/* TDX quotes recorded on real Intel platforms and Intel's collateral of their day,
 * ../shared/testdata/tdx (README there gives every expected outcome used here). */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <time.h>

#include "helpers/unit.h"

#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &data, size), 0);
        return data;
}

static time_t utc(const char *s)
{
        time_t t;
        assert_int_equal(timestamp_parse_utc(s, &t), 0);
        return t;
}

static TdxCollateral *collateral(const char *dir)
{
        TdxCollateral *c = NULL;
        Diag d;
        assert_int_equal(tdx_collateral_load_dir(testdata_path(dir), &c, &d), 0);
        return c;
}

/* Parses and verifies a quote file; the result of the first failing step. */
static int verify_file(const char *rel, const TdxCollateral *col, time_t at, TdxVerification *v,
                       Diag *d)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxVerifyOptions o = { .at = at };
        TdxQuote q;
        size_t n;
        int r;

        raw = load(rel, &n);
        diag_clear(d);
        r = tdx_quote_parse(raw, n, &q, d);
        if (r < 0)
                return r;
        return tdx_verify_quote(&q, raw, n, col, &o, v, NULL, NULL, d);
}

static void test_tdx_builtin_root_is_the_intel_sgx_root_ca_of_the_testdata(void **state)
{
        _cleanup_(freep) uint8_t *pem = NULL;
        size_t n;
        BIO *b;
        X509 *x;
        unsigned char *der = NULL;
        int len;
        uint8_t fp[32];
        char hex[65];

        pem = load("tdx/intel-sgx-root-ca.pem", &n);
        b = BIO_new_mem_buf(pem, (int) n);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        assert_non_null(x);
        len = i2d_X509(x, &der);
        crypto_sha256(der, (size_t) len, fp);
        assert_memory_equal(fp, tdx_intel_root_sha256, 32);
        hex_encode_buf(fp, 32, hex, sizeof(hex));
        /* The README's 44:A0:19:6B:...:74:D3. */
        assert_true(strncmp(hex, "44a0196b2b99f889", 16) == 0);
        assert_true(strcmp(hex + 60, "74d3") == 0);
        OPENSSL_free(der);
        X509_free(x);
        BIO_free(b);
}

static void test_tdx_spr_v4_quote_verifies_at_capture_time_with_its_fields(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxVerifyOptions o = { .at = utc("2023-07-01T00:00:00Z") };
        TdxVerification v;
        TdxQuote q;
        size_t n;
        Diag d;

        raw = load("tdx/spr-e4-quote-v4.dat", &n);
        assert_int_equal(n, 4974);
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), 0);
        assert_int_equal(q.version, 4);
        assert_int_equal(q.body_type, 2);
        assert_int_equal(q.trailing, 39);
        assert_int_equal(q.signed_size, 632);
        assert_int_equal(q.qe_auth_size, 32);
        assert_int_equal(q.td_attributes, 0x0000000040000000ULL);
        assert_int_equal(q.xfam, 0x0000000000061ae7ULL);
        if (tdx_verify_quote(&q, raw, n, NULL, &o, &v, NULL, NULL, &d) < 0)
                fail_msg("%s [%s]", d.message, d.check);
        assert_string_equal(v.pck_ca, "Intel SGX PCK Platform CA");
        assert_false(v.collateral);
}

static void test_tdx_spr_v4_quote_is_refused_after_its_pck_chain_expired(void **state)
{
        TdxVerification v;
        Diag d;

        assert_int_equal(
                verify_file("tdx/spr-e4-quote-v4.dat", NULL, utc("2029-09-21T00:00:00Z"), &v, &d),
                -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-pck-validity");
        assert_int_equal(
                verify_file("tdx/spr-e4-quote-v4.dat", NULL, utc("2029-09-19T00:00:00Z"), &v, &d),
                0);
}

static void test_tdx_v5_quote_with_td15_body_verifies(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxVerifyOptions o = { .at = utc("2026-02-03T00:00:00Z") };
        TdxQuote q;
        size_t n;
        Diag d;

        raw = load("tdx/quote-v5-sample.dat", &n);
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), 0);
        assert_int_equal(q.version, 5);
        assert_int_equal(q.body_type, 3);
        assert_int_equal(q.signed_size, 48 + 6 + 648);
        assert_int_equal(q.trailing, 0);
        if (tdx_verify_quote(&q, raw, n, NULL, &o, NULL, NULL, NULL, &d) < 0)
                fail_msg("%s [%s]", d.message, d.check);
}

static void test_tdx_gce_and_collateral_quotes_verify(void **state)
{
        static const struct {
                const char *file, *at;
        } quotes[] = {
                { "tdx/gce-cos113/quote.dat", "2025-02-20T10:55:27Z" },
                { "tdx/dcapqvl-b0c06f-uptodate/quote.bin", "2025-07-19T10:00:34Z" },
                { "tdx/zkdcap-00806f05/quote.bin", "2025-02-20T10:55:27Z" },
        };
        TdxVerification v;
        Diag d;

        for (size_t i = 0; i < ELEMENTSOF(quotes); i++)
                if (verify_file(quotes[i].file, NULL, utc(quotes[i].at), &v, &d) < 0)
                        fail_msg("%s: %s [%s]", quotes[i].file, d.message, d.check);
}

static void test_tdx_one_byte_negatives_are_refused_naming_the_check(void **state)
{
        /* ../shared/testdata/tdx/negative: spr-e4-quote-v4.dat with one byte changed. */
        static const struct {
                const char *file;
                int error;
                const char *check;
        } cases[] = {
                { "version_byte", -EBADMSG, "tdx-quote-version" },
                { "signed_data_size", -EBADMSG, "tdx-quote-size" },
                { "certchain_byte", -EBADMSG, "tdx-pck-chain" },
                { "root_cert_byte", -EKEYREJECTED, "tdx-pck-root" },
                { "intermediate_cert_byte", -EKEYREJECTED, "tdx-pck-intermediate" },
                { "pck_cert_byte", -EKEYREJECTED, "tdx-pck-signature" },
                { "header_byte", -EKEYREJECTED, "tdx-quote-signature" },
                { "td_body_byte", -EKEYREJECTED, "tdx-quote-signature" },
        };
        TdxVerification v;
        char path[128];
        Diag d;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r;
                (void) snprintf(path, sizeof(path), "tdx/negative/tdx_SPR_E4.%s.dat",
                                cases[i].file);
                r = verify_file(path, NULL, utc("2023-07-01T00:00:00Z"), &v, &d);
                if (r != cases[i].error || strcmp(d.check, cases[i].check) != 0)
                        fail_msg("%s: got %d [%s] %s, expected %d [%s]", cases[i].file, r, d.check,
                                 d.message, cases[i].error, cases[i].check);
        }
}

static void test_tdx_quote_parse_refuses_every_truncation_without_writing_output(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxQuote q, poison;
        size_t n;
        Diag d;

        raw = load("tdx/spr-e4-quote-v4.dat", &n);
        memset(&poison, 0xA5, sizeof(poison));
        /* The signature data ends at 4935; bytes after it are tolerated. */
        for (size_t len = 0; len < 4935; len++) {
                q = poison;
                if (tdx_quote_parse(raw, len, &q, &d) != -EBADMSG)
                        fail_msg("a quote cut to %zu bytes was not refused", len);
                assert_memory_equal(&q, &poison, sizeof(q));
        }
        assert_int_equal(tdx_quote_parse(raw, 4935, &q, &d), 0);
        assert_int_equal(q.trailing, 0);
}

static void test_tdx_quote_parse_refuses_sgx_quotes_other_tees_and_oversize(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        _cleanup_(freep) uint8_t *big = NULL;
        TdxQuote q;
        size_t n;
        Diag d;

        raw = load("tdx/spr-e4-quote-v4.dat", &n);
        raw[0] = 3; /* SGX quote version */
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), -EBADMSG);
        assert_string_equal(d.check, "tdx-quote-version");
        raw[0] = 4;
        raw[4] = 0x00; /* TEE type SGX */
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), -EBADMSG);
        assert_string_equal(d.check, "tdx-quote-format");
        raw[4] = 0x81;
        raw[2] = 3; /* ECDSA-384 */
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), -EBADMSG);
        raw[2] = 2;
        big = calloc(1, TDX_QUOTE_SIZE_MAX + 1);
        memcpy(big, raw, n);
        assert_int_equal(tdx_quote_parse(big, TDX_QUOTE_SIZE_MAX + 1, &q, &d), -EMSGSIZE);
        assert_int_equal(tdx_quote_parse(big, TDX_QUOTE_SIZE_MAX, &q, &d), 0);
}

static void test_tdx_every_bit_flip_in_the_signed_part_fails(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxVerifyOptions o = { .at = utc("2023-07-01T00:00:00Z") };
        TdxQuote q;
        size_t n;
        Diag d;

        raw = load("tdx/spr-e4-quote-v4.dat", &n);
        /* One bit per byte of the 632 signed bytes, rotating the bit. */
        for (size_t i = 0; i < 632; i++) {
                raw[i] ^= (uint8_t) (1 << (i % 8));
                if (tdx_quote_parse(raw, n, &q, &d) == 0 &&
                    tdx_verify_quote(&q, raw, n, NULL, &o, NULL, NULL, NULL, &d) == 0)
                        fail_msg("flip of byte %zu verified", i);
                raw[i] ^= (uint8_t) (1 << (i % 8));
        }
}

static void test_tdx_pck_extensions_of_the_collateral_quotes(void **state)
{
        TdxVerification v;
        char fmspc[13];
        Diag d;

        assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", NULL,
                                     utc("2025-07-19T10:00:34Z"), &v, &d),
                         0);
        hex_encode_buf(v.pck.fmspc, 6, fmspc, sizeof(fmspc));
        assert_string_equal(fmspc, "b0c06f000000");
        assert_int_equal(v.pck.pcesvn, 11);
        assert_int_equal(v.pck.pce_id[0], 0);
        assert_int_equal(v.pck.pce_id[1], 0);
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", NULL,
                                     utc("2025-02-20T10:55:27Z"), &v, &d),
                         0);
        hex_encode_buf(v.pck.fmspc, 6, fmspc, sizeof(fmspc));
        assert_string_equal(fmspc, "00806f050000");
}

/* ---- collateral ---------------------------------------------------------------------------- */

static void test_tdx_uptodate_collateral_gives_uptodate_level_0(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c =
                collateral("tdx/dcapqvl-b0c06f-uptodate");
        TdxVerification v;
        Diag d;

        if (verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c, utc("2025-07-19T10:00:34Z"), &v,
                        &d) < 0)
                fail_msg("%s [%s]", d.message, d.check);
        assert_true(v.collateral);
        assert_int_equal(v.tcb.tcb_eval_number, 17);
        assert_int_equal(v.tcb.platform_level, 0);
        assert_int_equal(v.tcb.platform_status, TDX_TCB_UP_TO_DATE);
        assert_string_equal(v.tcb.module_id, "TDX_01");
        assert_int_equal(v.tcb.module_status, TDX_TCB_UP_TO_DATE);
        assert_int_equal(v.tcb.qe_status, TDX_TCB_UP_TO_DATE);
        assert_int_equal(v.tcb.status, TDX_TCB_UP_TO_DATE);
        assert_string_equal(tdx_tcb_status_to_string(v.tcb.status), "UpToDate");
        assert_int_equal(v.tcb.advisories.n, 0);
}

static void test_tdx_outofdate_collateral_gives_level_1_with_three_advisories(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c = collateral("tdx/zkdcap-00806f05");
        TdxVerification v;
        Diag d;

        if (verify_file("tdx/zkdcap-00806f05/quote.bin", c, utc("2025-02-20T10:55:27Z"), &v, &d) <
            0)
                fail_msg("%s [%s]", d.message, d.check);
        assert_int_equal(v.tcb.platform_level, 1);
        assert_int_equal(v.tcb.platform_status, TDX_TCB_OUT_OF_DATE);
        assert_string_equal(v.tcb.module_id, "TDX_01");
        assert_int_equal(v.tcb.module_status, TDX_TCB_UP_TO_DATE);
        assert_int_equal(v.tcb.qe_status, TDX_TCB_UP_TO_DATE);
        assert_string_equal(tdx_tcb_status_to_string(v.tcb.status), "OutOfDate");
        assert_int_equal(v.tcb.advisories.n, 3);
        assert_string_equal(v.tcb.advisories.id[0], "INTEL-SA-00960");
        assert_string_equal(v.tcb.advisories.id[1], "INTEL-SA-00982");
        assert_string_equal(v.tcb.advisories.id[2], "INTEL-SA-00986");
}

static void test_tdx_collateral_outside_its_window_is_stale(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c =
                collateral("tdx/dcapqvl-b0c06f-uptodate");
        TdxVerification v;
        Diag d;

        /* A day after the TCB info's nextUpdate (2025-07-19T10:16:03Z), the PCK CRL's
         * (10:00:35) too. */
        assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c,
                                     utc("2025-07-20T12:00:00Z"), &v, &d),
                         -ESTALE);
        assert_string_equal(d.check, "tdx-collateral-stale");
        /* Before the PCK CRL was issued. */
        assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c,
                                     utc("2025-06-19T10:00:00Z"), &v, &d),
                         -ESTALE);
        assert_string_equal(d.check, "tdx-collateral-stale");
}

static void test_tdx_each_collateral_window_is_checked_on_its_own(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c =
                collateral("tdx/dcapqvl-b0c06f-uptodate");
        static const struct {
                const char *at, *what;
        } cases[] = {
                /* PCK CRL nextUpdate 10:00:35, TCB info 10:16:03, QE identity 10:32:27 */
                { "2025-07-19T10:10:00Z", "the PCK CRL is stale" },
                /* issued: PCK CRL 2025-06-19T10:00:35, TCB info 10:16:03, QE identity 10:32:27 */
                { "2025-06-19T10:10:00Z", "the TCB info is stale" },
                { "2025-06-19T10:20:00Z", "the QE identity is stale" },
                /* root CA CRL: 2025-03-20T11:21:57Z .. 2026-04-03; the rest long stale by then,
                 * but the root CA CRL is judged first */
                { "2026-04-04T00:00:00Z", "the root CA CRL is stale" },
        };
        TdxVerification v;
        Diag d;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c,
                                             utc(cases[i].at), &v, &d),
                                 -ESTALE);
                assert_string_equal(d.check, "tdx-collateral-stale");
                if (strncmp(d.message, cases[i].what, strlen(cases[i].what)) != 0)
                        fail_msg("at %s: %s", cases[i].at, d.message);
        }
}

static void test_tdx_cached_chain_and_collateral_are_judged_again_at_each_time(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c = collateral("tdx/zkdcap-00806f05");
        TdxVerification v;
        Diag d;

        tdx_cache_flush();
        /* First: verified and cached; then from the cache, at other times. */
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", c,
                                     utc("2025-02-20T10:55:27Z"), &v, &d),
                         0);
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", c,
                                     utc("2025-02-20T10:55:27Z"), &v, &d),
                         0);
        assert_string_equal(tdx_tcb_status_to_string(v.tcb.status), "OutOfDate");
        assert_int_equal(v.tcb.advisories.n, 3);
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", c,
                                     utc("2025-02-21T00:00:00Z"), &v, &d),
                         -ESTALE);
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", c,
                                     utc("2025-05-22T00:00:00Z"), &v, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-tcb-info-chain");
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", c,
                                     utc("2040-01-01T00:00:00Z"), &v, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-pck-validity");
        /* One changed hex digit in the TCB info's signature: not the cached set, verified
         * again and refused. */
        c->tcb_info[c->tcb_info_size - 5] ^= 1;
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", c,
                                     utc("2025-02-20T10:55:27Z"), &v, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-tcb-info-signature");
        c->tcb_info[c->tcb_info_size - 5] ^= 1;
}

static void test_tdx_qe_of_another_vendor_is_refused(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxVerifyOptions o = { .at = utc("2023-07-01T00:00:00Z") };
        TdxQuote q;
        size_t n;
        Diag d;

        raw = load("tdx/spr-e4-quote-v4.dat", &n);
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), 0);
        q.qe_vendor_id[15] ^= 1;
        assert_int_equal(tdx_verify_quote(&q, raw, n, NULL, &o, NULL, NULL, NULL, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-qe-vendor");
}

static void test_tdx_collateral_past_the_tcb_signing_certificate_fails_the_chain(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c = collateral("tdx/zkdcap-00806f05");
        TdxVerification v;
        Diag d;

        /* The TCB signing certificate expired 2025-05-21T10:50:10Z. */
        assert_int_equal(verify_file("tdx/zkdcap-00806f05/quote.bin", c,
                                     utc("2025-05-22T00:00:00Z"), &v, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-tcb-info-chain");
}

static void test_tdx_altered_or_reserialised_collateral_fails_its_signature(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c =
                collateral("tdx/dcapqvl-b0c06f-uptodate");
        TdxVerification v;
        char *p;
        Diag d;

        /* tcbEvaluationDataNumber 17 → 18: still valid JSON, no longer what Intel signed. */
        p = strstr((char *) c->tcb_info, "\"tcbEvaluationDataNumber\":17");
        assert_non_null(p);
        p[strlen("\"tcbEvaluationDataNumber\":1")] = '8';
        assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c,
                                     utc("2025-07-19T10:00:34Z"), &v, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-tcb-info-signature");
        p[strlen("\"tcbEvaluationDataNumber\":1")] = '7';

        /* The same QE identity with a space after a colon: the same JSON, other bytes. */
        {
                _cleanup_(freep) uint8_t *orig = c->qe_identity;
                size_t on = c->qe_identity_size;
                char *colon = strstr((char *) orig, "\"version\":2");
                size_t at = (size_t) (colon - (char *) orig) + strlen("\"version\":");

                c->qe_identity = malloc(on + 2);
                memcpy(c->qe_identity, orig, at);
                c->qe_identity[at] = ' ';
                memcpy(c->qe_identity + at + 1, orig + at, on - at + 1);
                c->qe_identity_size = on + 1;
                assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c,
                                             utc("2025-07-19T10:00:34Z"), &v, &d),
                                 -EKEYREJECTED);
                assert_string_equal(d.check, "tdx-qe-identity-signature");
                free(c->qe_identity);
                c->qe_identity = TAKE_PTR(orig);
                c->qe_identity_size = on;
        }
        assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c,
                                     utc("2025-07-19T10:00:34Z"), &v, &d),
                         0);
}

static void test_tdx_root_crl_given_as_pck_crl_is_refused_for_its_issuer(void **state)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c =
                collateral("tdx/dcapqvl-b0c06f-uptodate");
        TdxVerification v;
        uint8_t *swap;
        size_t sn;
        Diag d;

        /* The root CA CRL given as the PCK CRL: its issuer is not the PCK's. */
        swap = c->pck_crl, sn = c->pck_crl_size;
        c->pck_crl = c->root_crl, c->pck_crl_size = c->root_crl_size;
        assert_int_equal(verify_file("tdx/dcapqvl-b0c06f-uptodate/quote.bin", c,
                                     utc("2025-07-19T10:00:34Z"), &v, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-pck-crl-issuer");
        c->pck_crl = swap, c->pck_crl_size = sn;
}

/* ---- policy -------------------------------------------------------------------------------- */

static int policy_on(const char *quote, const char *coldir, const char *at, const TdxPolicy *p,
                     Diag *d)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c = coldir ? collateral(coldir) : NULL;
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxVerifyOptions o = { .at = utc(at) };
        TdxVerification v;
        TdxQuote q;
        size_t n;

        raw = load(quote, &n);
        assert_int_equal(tdx_quote_parse(raw, n, &q, d), 0);
        if (tdx_verify_quote(&q, raw, n, c, &o, &v, NULL, NULL, d) < 0)
                fail_msg("%s", d->message);
        diag_clear(d);
        return tdx_check_policy(&q, &v, p, NULL, NULL, NULL, d);
}

static void test_tdx_default_policy_accepts_uptodate_and_refuses_outofdate(void **state)
{
        TdxPolicy p;
        Diag d;

        tdx_policy_defaults(&p);
        assert_int_equal(policy_on("tdx/dcapqvl-b0c06f-uptodate/quote.bin",
                                   "tdx/dcapqvl-b0c06f-uptodate", "2025-07-19T10:00:34Z", &p, &d),
                         0);
        assert_int_equal(policy_on("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05",
                                   "2025-02-20T10:55:27Z", &p, &d),
                         -EPERM);
        assert_string_equal(d.check, "tdx-tcb-status");
        assert_string_equal(d.expected, "UpToDate");
        assert_string_equal(d.actual, "OutOfDate");
}

static void test_tdx_outofdate_passes_only_when_the_policy_accepts_it(void **state)
{
        TdxPolicy p;
        Diag d;

        tdx_policy_defaults(&p);
        p.accepted_tcb = TDX_TCB_OUT_OF_DATE;
        assert_int_equal(policy_on("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05",
                                   "2025-02-20T10:55:27Z", &p, &d),
                         0);
        /* ConfigurationNeeded alone does not cover OutOfDate. */
        p.accepted_tcb = TDX_TCB_CONFIGURATION_NEEDED | TDX_TCB_SW_HARDENING_NEEDED;
        assert_int_equal(policy_on("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05",
                                   "2025-02-20T10:55:27Z", &p, &d),
                         -EPERM);
        assert_string_equal(d.check, "tdx-tcb-status");
        /* An advisory allow list without INTEL-SA-00986. */
        p.accepted_tcb = TDX_TCB_OUT_OF_DATE;
        p.check_advisories = true;
        p.allowed_advisories.n = 2;
        strcpy(p.allowed_advisories.id[0], "INTEL-SA-00960");
        strcpy(p.allowed_advisories.id[1], "INTEL-SA-00982");
        assert_int_equal(policy_on("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05",
                                   "2025-02-20T10:55:27Z", &p, &d),
                         -EPERM);
        assert_string_equal(d.check, "tdx-advisories");
        assert_string_equal(d.actual, "INTEL-SA-00986");
        strcpy(p.allowed_advisories.id[p.allowed_advisories.n++], "INTEL-SA-00986");
        assert_int_equal(policy_on("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05",
                                   "2025-02-20T10:55:27Z", &p, &d),
                         0);
        /* Minimum TCB evaluation data number: the collateral's is 17. */
        p.min_tcb_eval_number = 18;
        assert_int_equal(policy_on("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05",
                                   "2025-02-20T10:55:27Z", &p, &d),
                         -EPERM);
        assert_string_equal(d.check, "tdx-tcb-eval-number");
        assert_string_equal(d.actual, "17");
        p.min_tcb_eval_number = 17;
        assert_int_equal(policy_on("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05",
                                   "2025-02-20T10:55:27Z", &p, &d),
                         0);
}

static void test_tdx_policy_without_collateral_refuses_unless_told(void **state)
{
        TdxPolicy p;
        Diag d;

        tdx_policy_defaults(&p);
        assert_int_equal(
                policy_on("tdx/gce-cos113/quote.dat", NULL, "2025-02-20T10:55:27Z", &p, &d),
                -EPERM);
        assert_string_equal(d.check, "tdx-tcb-status");
        assert_string_equal(d.actual, "unknown");
        p.require_collateral = false;
        assert_int_equal(
                policy_on("tdx/gce-cos113/quote.dat", NULL, "2025-02-20T10:55:27Z", &p, &d), 0);
}

static void
test_tdx_sept_ve_disable_required_by_default_with_an_explicit_azure_exception(void **state)
{
        TdxPolicy p;
        Diag d;

        /* The SPR quote's TD attributes are 0x40000000 (PKS): SEPT_VE_DISABLE clear. */
        tdx_policy_defaults(&p);
        p.require_collateral = false;
        assert_int_equal(policy_on("tdx/spr-e4-quote-v4.dat", NULL, "2023-07-01T00:00:00Z", &p, &d),
                         -EPERM);
        assert_string_equal(d.check, "tdx-sept-ve-disable");
        assert_string_equal(d.expected, "1");
        assert_string_equal(d.actual, "0");
        p.azure_paravisor = true;
        assert_int_equal(policy_on("tdx/spr-e4-quote-v4.dat", NULL, "2023-07-01T00:00:00Z", &p, &d),
                         0);
        p.azure_paravisor = false;
        p.require_sept_ve_disable = false;
        assert_int_equal(policy_on("tdx/spr-e4-quote-v4.dat", NULL, "2023-07-01T00:00:00Z", &p, &d),
                         0);
}

static void test_tdx_debug_td_is_refused_by_default(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        TdxPolicy p;
        TdxQuote q;
        size_t n;
        Diag d;

        /* The policy judges the parsed fields; the signature would fail on a changed quote, so
         * set the bit after verification-free parsing. */
        raw = load("tdx/gce-cos113/quote.dat", &n);
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), 0);
        tdx_policy_defaults(&p);
        p.require_collateral = false;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), 0);
        q.td_attributes |= TDX_TD_ATTR_DEBUG;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), -EPERM);
        assert_string_equal(d.check, "tdx-debug");
        p.allow_debug = true;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), 0);
}

static void test_tdx_policy_measurements_give_expected_and_actual(void **state)
{
        _cleanup_(freep) uint8_t *raw = NULL;
        uint8_t rd[64];
        TdxPolicy p;
        TdxQuote q;
        size_t n;
        Diag d;

        raw = load("tdx/gce-cos113/quote.dat", &n);
        assert_int_equal(tdx_quote_parse(raw, n, &q, &d), 0);
        tdx_policy_defaults(&p);
        p.require_collateral = false;
        memcpy(p.mr_td.v[0], q.mr_td, 48);
        p.mr_td.n = 1;
        memcpy(p.rtmr[2].v[0], q.rtmr[2], 48);
        p.rtmr[2].n = 1;
        memcpy(p.mr_seam.v[0], q.mr_seam, 48);
        p.mr_seam.n = 1;
        p.check_xfam = true;
        p.xfam = q.xfam;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), 0);
        p.rtmr[2].v[0][47] ^= 1;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), -EPERM);
        assert_string_equal(d.check, "tdx-rtmr2");
        assert_int_equal(strlen(d.expected), 96);
        assert_int_equal(strlen(d.actual), 96);
        assert_string_not_equal(d.expected, d.actual);
        /* A second allowed value that matches. */
        memcpy(p.rtmr[2].v[1], q.rtmr[2], 48);
        p.rtmr[2].n = 2;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), 0);
        p.mr_td.v[0][0] ^= 1;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), -EPERM);
        assert_string_equal(d.check, "tdx-mrtd");
        p.mr_td.v[0][0] ^= 1;
        p.xfam ^= 2;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), -EPERM);
        assert_string_equal(d.check, "tdx-xfam");
        p.xfam ^= 2;
        p.mr_seam.v[0][5] ^= 1;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), -EPERM);
        assert_string_equal(d.check, "tdx-mrseam");
        p.mr_seam.v[0][5] ^= 1;
        /* REPORTDATA binding. */
        memcpy(rd, q.report_data, 64);
        assert_int_equal(tdx_check_policy(&q, NULL, &p, rd, NULL, NULL, &d), 0);
        rd[63] ^= 1;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, rd, NULL, NULL, &d), -ESTALE);
        assert_string_equal(d.check, "tdx-report-data");
        /* A bound service TD the policy does not name. */
        q.mr_service_td[0] = 1;
        assert_int_equal(tdx_check_policy(&q, NULL, &p, NULL, NULL, NULL, &d), -EPERM);
        assert_string_equal(d.check, "tdx-mrservicetd");
}

static void test_tdx_policy_file_is_parsed_strictly(void **state)
{
        static const struct {
                const char *json;
                int error;
        } cases[] = {
                { "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{}}", 0 },
                { "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{\"acceptedTcbStatuses\":"
                  "[\"UpToDate\",\"OutOfDate\"],\"allowedAdvisoryIds\":[\"INTEL-SA-00960\"],"
                  "\"minTcbEvaluationDataNumber\":17,\"xfam\":\"0x00000000000600e7\","
                  "\"azureParavisor\":true}}",
                  0 },
                { "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{\"acceptedTcbStatuses\":"
                  "[\"Revoked\"]}}",
                  -EBADMSG },
                { "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{\"mrTd\":[\"00\"]}}", -EBADMSG },
                { "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{\"unknown\":1}}", -EBADMSG },
                { "{\"version\":1,\"variant\":\"sev-snp\",\"tdx\":{}}", -EBADMSG },
                { "{\"version\":2,\"variant\":\"tdx\",\"tdx\":{}}", -EBADMSG },
        };
        char path[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TdxPolicy p;
                Diag d;
                FILE *f;

                (void) snprintf(path, sizeof(path), "%s/policy-%zu.json", test_tmpdir(), i);
                f = fopen(path, "w");
                fputs(cases[i].json, f);
                fclose(f);
                if (tdx_policy_load(path, &p, &d) != cases[i].error)
                        fail_msg("case %zu: %s", i, d.message);
                if (i == 1) {
                        assert_int_equal(p.accepted_tcb, TDX_TCB_OUT_OF_DATE);
                        assert_true(p.check_advisories);
                        assert_int_equal(p.min_tcb_eval_number, 17);
                        assert_true(p.check_xfam);
                        assert_int_equal(p.xfam, 0x600e7);
                        assert_true(p.azure_paravisor);
                        assert_true(p.require_sept_ve_disable);
                        assert_false(p.allow_debug);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tdx_builtin_root_is_the_intel_sgx_root_ca_of_the_testdata),
                cmocka_unit_test(test_tdx_spr_v4_quote_verifies_at_capture_time_with_its_fields),
                cmocka_unit_test(test_tdx_spr_v4_quote_is_refused_after_its_pck_chain_expired),
                cmocka_unit_test(test_tdx_v5_quote_with_td15_body_verifies),
                cmocka_unit_test(test_tdx_gce_and_collateral_quotes_verify),
                cmocka_unit_test(test_tdx_one_byte_negatives_are_refused_naming_the_check),
                cmocka_unit_test(
                        test_tdx_quote_parse_refuses_every_truncation_without_writing_output),
                cmocka_unit_test(test_tdx_quote_parse_refuses_sgx_quotes_other_tees_and_oversize),
                cmocka_unit_test(test_tdx_every_bit_flip_in_the_signed_part_fails),
                cmocka_unit_test(test_tdx_pck_extensions_of_the_collateral_quotes),
                cmocka_unit_test(test_tdx_uptodate_collateral_gives_uptodate_level_0),
                cmocka_unit_test(test_tdx_outofdate_collateral_gives_level_1_with_three_advisories),
                cmocka_unit_test(test_tdx_collateral_outside_its_window_is_stale),
                cmocka_unit_test(test_tdx_each_collateral_window_is_checked_on_its_own),
                cmocka_unit_test(test_tdx_qe_of_another_vendor_is_refused),
                cmocka_unit_test(
                        test_tdx_cached_chain_and_collateral_are_judged_again_at_each_time),
                cmocka_unit_test(
                        test_tdx_collateral_past_the_tcb_signing_certificate_fails_the_chain),
                cmocka_unit_test(test_tdx_altered_or_reserialised_collateral_fails_its_signature),
                cmocka_unit_test(test_tdx_root_crl_given_as_pck_crl_is_refused_for_its_issuer),
                cmocka_unit_test(test_tdx_default_policy_accepts_uptodate_and_refuses_outofdate),
                cmocka_unit_test(test_tdx_outofdate_passes_only_when_the_policy_accepts_it),
                cmocka_unit_test(test_tdx_policy_without_collateral_refuses_unless_told),
                cmocka_unit_test(
                        test_tdx_sept_ve_disable_required_by_default_with_an_explicit_azure_exception),
                cmocka_unit_test(test_tdx_debug_td_is_refused_by_default),
                cmocka_unit_test(test_tdx_policy_measurements_give_expected_and_actual),
                cmocka_unit_test(test_tdx_policy_file_is_parsed_strictly),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
