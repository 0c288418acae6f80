/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "helpers/unit.h"
#include "helpers/vtpm.h"

#include "cloister/crypto.h"
#include "cloister/tpm-device.h"
#include "cloister/tpm-quote.h"

static Vtpm tpm_a;

static int group_setup(void **state)
{
        return vtpm_start(&tpm_a, true) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
        vtpm_stop(&tpm_a);
        return 0;
}

static void extend_expected(uint8_t pcr[32], const uint8_t digest[32])
{
        uint8_t buf[64];
        memcpy(buf, pcr, 32);
        memcpy(buf + 32, digest, 32);
        crypto_sha256(buf, sizeof(buf), pcr);
}

static void test_tpm_device_pcr_extend_sequence_matches_software_replay(void **state)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        uint8_t pcrs[TPM_DEVICE_PCRS][32], want[32] = {}, digest[32];

        assert_int_equal(tpm_device_open(tpm_a.tcti, &t), 0);
        for (int i = 0; i < 5; i++) {
                char event[32];
                (void) snprintf(event, sizeof(event), "event %d", i);
                crypto_sha256(event, strlen(event), digest);
                assert_int_equal(tpm_device_pcr_extend(t, 16, digest), 0);
                extend_expected(want, digest);
        }
        /* All 24 PCRs in one call: the TPM returns 8 per round. */
        assert_int_equal(tpm_device_pcr_read(t, 0xFFFFFF, pcrs), 0);
        assert_memory_equal(pcrs[16], want, 32);
        memset(want, 0, sizeof(want));
        assert_memory_equal(pcrs[15], want, 32);
        assert_int_equal(tpm_device_pcr_extend(t, 24, digest), -EINVAL);
}

static void quote_with(const char *tcti, const uint8_t *nonce, size_t n, TpmDeviceQuote *q)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        assert_int_equal(tpm_device_open(tcti, &t), 0);
        assert_int_equal(tpm_device_quote(t, 0xFFFF, nonce, n, q), 0);
}

static void test_tpm_device_quote_verifies_with_independent_parser(void **state)
{
        static const uint8_t nonce[32] = { 1, 2, 3, 4 };
        TpmDeviceQuote q;
        TpmPublic ak;
        TpmQuoteInfo info;
        TpmSignature sig;
        uint8_t pcrs[TPM_PCR_MAX][TPM_DIGEST_MAX] = {}, digest[TPM_DIGEST_MAX];
        size_t dn;
        Diag d;

        diag_clear(&d);
        quote_with(tpm_a.tcti, nonce, sizeof(nonce), &q);
        assert_int_equal(tpm_public_parse(q.ak_public, q.ak_public_size, &ak, &d), 0);
        assert_int_equal(ak.type, TPM_ALG_ECC);
        assert_int_equal(tpm_public_check_attestation_key(&ak, &d), 0);
        assert_int_equal(tpm_quote_parse(q.attest, q.attest_size, &info, &d), 0);
        assert_int_equal(info.extra_data_size, 32);
        assert_memory_equal(info.extra_data, nonce, 32);
        assert_int_equal(info.selections[0].mask, 0xFFFF);
        assert_int_equal(tpm_signature_parse(q.signature, q.signature_size, &sig, &d), 0);
        assert_int_equal(tpm_quote_verify_signature(&ak, q.attest, q.attest_size, &sig, &d), 0);
        for (int i = 0; i < 16; i++)
                memcpy(pcrs[i], q.pcrs[i], 32);
        assert_int_equal(tpm_pcr_digest(&info, pcrs, sig.hash, digest, &dn), 0);
        assert_memory_equal(digest, info.pcr_digest, dn);
        tpm_signature_done(&sig);
        tpm_public_done(&ak);
        tpm_device_quote_done(&q);
}

static void test_tpm_device_ak_is_stable_per_tpm_and_differs_between_tpms(void **state)
{
        TpmDeviceQuote a, b, c;
        Vtpm other;

        quote_with(tpm_a.tcti, NULL, 0, &a);
        quote_with(tpm_a.tcti, NULL, 0, &b);
        assert_int_equal(a.ak_public_size, b.ak_public_size);
        assert_memory_equal(a.ak_public, b.ak_public, a.ak_public_size);
        assert_int_equal(vtpm_start(&other, false), 0);
        quote_with(other.tcti, NULL, 0, &c);
        vtpm_stop(&other);
        assert_false(a.ak_public_size == c.ak_public_size &&
                     memcmp(a.ak_public, c.ak_public, a.ak_public_size) == 0);
        tpm_device_quote_done(&a);
        tpm_device_quote_done(&b);
        tpm_device_quote_done(&c);
}

static void test_tpm_device_ek_certificate_matches_ek_public(void **state)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        _cleanup_(freep) uint8_t *der = NULL, *ekpub = NULL;
        size_t n, m;
        const unsigned char *p;
        TpmPublic ek;
        X509 *x;

        assert_int_equal(tpm_device_open(tpm_a.tcti, &t), 0);
        assert_int_equal(tpm_device_ek_certificate(t, &der, &n), 0);
        p = der;
        x = d2i_X509(NULL, &p, (long) n);
        assert_non_null(x);
        assert_int_equal(tpm_device_ek_public(t, &ekpub, &m), 0);
        assert_int_equal(tpm_public_parse(ekpub, m, &ek, NULL), 0);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), ek.key), 1);
        tpm_public_done(&ek);
        X509_free(x);
}

static void test_tpm_device_without_ek_certificate_reports_enoent(void **state)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        Vtpm plain;
        uint8_t *der = NULL;
        size_t n;

        assert_int_equal(vtpm_start(&plain, false), 0);
        assert_int_equal(tpm_device_open(plain.tcti, &t), 0);
        assert_int_equal(tpm_device_ek_certificate(t, &der, &n), -ENOENT);
        assert_null(der);
        t = tpm_device_close(t);
        vtpm_stop(&plain);
}

static void test_tpm_device_rejects_oversize_qualifying_data(void **state)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        uint8_t big[65] = {};
        TpmDeviceQuote q = {};

        assert_int_equal(tpm_device_open(tpm_a.tcti, &t), 0);
        assert_int_equal(tpm_device_quote(t, 0xFF, big, sizeof(big), &q), -EINVAL);
        assert_null(q.attest);
}

static void test_tpm_device_unreachable_tcti_fails_cleanly(void **state)
{
        TpmDevice *t = NULL;
        int r = tpm_device_open("swtpm:path=/nonexistent/cloister.sock", &t);

        assert_true(r == -ENODEV || r == -ECONNREFUSED);
        assert_null(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tpm_device_pcr_extend_sequence_matches_software_replay),
                cmocka_unit_test(test_tpm_device_quote_verifies_with_independent_parser),
                cmocka_unit_test(test_tpm_device_ak_is_stable_per_tpm_and_differs_between_tpms),
                cmocka_unit_test(test_tpm_device_ek_certificate_matches_ek_public),
                cmocka_unit_test(test_tpm_device_without_ek_certificate_reports_enoent),
                cmocka_unit_test(test_tpm_device_rejects_oversize_qualifying_data),
                cmocka_unit_test(test_tpm_device_unreachable_tcti_fails_cleanly),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
