/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/tpm-quote.h"

/* Real data: a Google Compute Engine Shielded VM's AK and three quotes (SHA-1, SHA-256, SHA-384
 * banks) over nonce 0x9009 (../shared/testdata/tpm/gce-cos85-quote, README there). */
#define GCE "tpm/gce-cos85-quote/"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &data, size), 0);
        return data;
}

static void load_ak(TpmPublic *ak)
{
        size_t n;
        uint8_t *b = load(GCE "ak_pub.TPMT_PUBLIC.bin", &n);
        Diag d;

        diag_clear(&d);
        assert_int_equal(tpm_public_parse(b, n, ak, &d), 0);
        free(b);
}

static void test_tpm_public_parses_real_gce_ak_as_restricted_rsa_signing_key(void **state)
{
        TpmPublic ak;

        load_ak(&ak);
        assert_int_equal(ak.type, TPM_ALG_RSA);
        assert_int_equal(ak.key_bits, 2048);
        assert_int_equal(ak.scheme, TPM_ALG_RSASSA);
        assert_int_equal(ak.name_size, 34);
        assert_int_equal(tpm_public_check_attestation_key(&ak, NULL), 0);
        tpm_public_done(&ak);
}

static void quote_paths(int i, char *q, char *s, size_t n)
{
        (void) snprintf(q, n, GCE "quote%d.TPMS_ATTEST.bin", i);
        (void) snprintf(s, n, GCE "quote%d.TPMT_SIGNATURE.bin", i);
}

static void test_tpm_quote_real_gce_quotes_verify_and_match_decoded_pcrs(void **state)
{
        static const uint16_t banks[] = { TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384 };
        _cleanup_(json_decrefp) json_t *decoded = NULL;
        TpmPublic ak;
        Diag d;

        load_ak(&ak);
        diag_clear(&d);
        assert_int_equal(json_parse_file(testdata_path(GCE "decoded.json"), 1 << 20, &decoded, &d),
                         0);
        for (int i = 0; i < 3; i++) {
                char qp[128], sp[128];
                size_t qn, sn, dn;
                uint8_t *qb, *sb, pcrs[TPM_PCR_MAX][TPM_DIGEST_MAX] = {}, dig[TPM_DIGEST_MAX];
                TpmQuoteInfo q;
                TpmSignature sig;
                json_t *jp = json_object_get(json_array_get(json_object_get(decoded, "quotes"), i),
                                             "pcrs");
                const char *k;
                json_t *v;

                quote_paths(i, qp, sp, sizeof(qp));
                qb = load(qp, &qn);
                sb = load(sp, &sn);
                assert_int_equal(tpm_quote_parse(qb, qn, &q, &d), 0);
                assert_int_equal(tpm_signature_parse(sb, sn, &sig, &d), 0);
                assert_int_equal(tpm_quote_verify_signature(&ak, qb, qn, &sig, &d), 0);
                /* qualifying data is the nonce 0x9009 */
                assert_int_equal(q.extra_data_size, 2);
                assert_int_equal(q.extra_data[0], 0x90);
                assert_int_equal(q.extra_data[1], 0x09);
                assert_int_equal(q.n_selections, 1);
                assert_int_equal(q.selections[0].hash, banks[i]);
                assert_int_equal(q.selections[0].mask, 0xffffff);

                json_object_foreach (jp, k, v) {
                        int idx = atoi(k);
                        assert_int_equal(hex_decode_exact(json_string_value(v), pcrs[idx],
                                                          tpm_hash_size(banks[i])),
                                         0);
                }
                assert_int_equal(tpm_pcr_digest(&q, pcrs, sig.hash, dig, &dn), 0);
                assert_int_equal(dn, q.pcr_digest_size);
                assert_memory_equal(dig, q.pcr_digest, dn);

                pcrs[7][0] ^= 1; /* one PCR changed: the digest no longer matches */
                assert_int_equal(tpm_pcr_digest(&q, pcrs, sig.hash, dig, &dn), 0);
                assert_memory_not_equal(dig, q.pcr_digest, dn);

                tpm_signature_done(&sig);
                free(qb);
                free(sb);
        }
        tpm_public_done(&ak);
}

static void test_tpm_quote_flipped_bytes_fail_signature(void **state)
{
        size_t qn, sn;
        uint8_t *qb = load(GCE "quote1.TPMS_ATTEST.bin", &qn),
                *sb = load(GCE "quote1.TPMT_SIGNATURE.bin", &sn);
        TpmPublic ak;
        TpmSignature sig;
        Diag d;

        load_ak(&ak);
        diag_clear(&d);
        /* Every byte of the attestation: a flip either breaks parsing or the signature. */
        for (size_t i = 0; i < qn; i++) {
                TpmQuoteInfo q;
                qb[i] ^= 0x01;
                assert_int_equal(tpm_signature_parse(sb, sn, &sig, &d), 0);
                if (tpm_quote_parse(qb, qn, &q, &d) == 0)
                        assert_int_equal(tpm_quote_verify_signature(&ak, qb, qn, &sig, &d),
                                         -EKEYREJECTED);
                tpm_signature_done(&sig);
                qb[i] ^= 0x01;
        }
        /* A flipped signature byte. */
        sb[10] ^= 0x80;
        assert_int_equal(tpm_signature_parse(sb, sn, &sig, &d), 0);
        assert_int_equal(tpm_quote_verify_signature(&ak, qb, qn, &sig, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "quote-signature");
        tpm_signature_done(&sig);
        tpm_public_done(&ak);
        free(qb);
        free(sb);
}

static void test_tpm_quote_parse_rejects_truncation_trailing_and_bad_magic(void **state)
{
        size_t qn;
        uint8_t *qb = load(GCE "quote1.TPMS_ATTEST.bin", &qn), *longer;
        TpmQuoteInfo q;
        Diag d;

        diag_clear(&d);
        for (size_t n = 0; n < qn; n++)
                assert_int_equal(tpm_quote_parse(qb, n, &q, &d), -EBADMSG);
        longer = malloc(qn + 1);
        memcpy(longer, qb, qn);
        longer[qn] = 0;
        assert_int_equal(tpm_quote_parse(longer, qn + 1, &q, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "trailing"));
        qb[0] ^= 0xff;
        assert_int_equal(tpm_quote_parse(qb, qn, &q, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "TPM_GENERATED_VALUE"));
        free(longer);
        free(qb);
}

static void test_tpm_quote_parse_refuses_another_attestation_type(void **state)
{
        /* The AK also signs TPM2_Certify, TPM2_GetTime and others: only TPM_ST_ATTEST_QUOTE
         * (0x8018) is a quote. The real quote with its type turned into TPM_ST_ATTEST_CERTIFY. */
        size_t qn;
        uint8_t *qb = load(GCE "quote1.TPMS_ATTEST.bin", &qn);
        TpmQuoteInfo q;
        Diag d;

        diag_clear(&d);
        assert_int_equal(tpm_quote_parse(qb, qn, &q, &d), 0);
        assert_int_equal(qb[4] << 8 | qb[5], 0x8018);
        qb[5] = 0x17;
        assert_int_equal(tpm_quote_parse(qb, qn, &q, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "attestation type 0x8017 is not a quote"));
        free(qb);
}

static void test_tpm_public_rejects_truncation_and_trailing_bytes(void **state)
{
        size_t n;
        uint8_t *b = load(GCE "ak_pub.TPMT_PUBLIC.bin", &n), *longer;
        TpmPublic p;

        for (size_t k = 0; k < n; k++)
                assert_true(tpm_public_parse(b, k, &p, NULL) < 0);
        longer = calloc(1, n + 1);
        memcpy(longer, b, n);
        assert_int_equal(tpm_public_parse(longer, n + 1, &p, NULL), -EBADMSG);
        free(longer);
        free(b);
}

static void test_tpm_public_non_restricted_key_is_not_an_attestation_key(void **state)
{
        TpmPublic ak;
        Diag d;

        load_ak(&ak);
        diag_clear(&d);
        ak.attributes &= ~TPMA_OBJECT_RESTRICTED;
        assert_int_equal(tpm_public_check_attestation_key(&ak, &d), -EPERM);
        assert_string_equal(d.check, "ak-attributes");
        ak.attributes |= TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
        assert_int_equal(tpm_public_check_attestation_key(&ak, &d), -EPERM);
        tpm_public_done(&ak);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tpm_public_parses_real_gce_ak_as_restricted_rsa_signing_key),
                cmocka_unit_test(test_tpm_quote_real_gce_quotes_verify_and_match_decoded_pcrs),
                cmocka_unit_test(test_tpm_quote_flipped_bytes_fail_signature),
                cmocka_unit_test(test_tpm_quote_parse_rejects_truncation_trailing_and_bad_magic),
                cmocka_unit_test(test_tpm_quote_parse_refuses_another_attestation_type),
                cmocka_unit_test(test_tpm_public_rejects_truncation_and_trailing_bytes),
                cmocka_unit_test(test_tpm_public_non_restricted_key_is_not_an_attestation_key),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
