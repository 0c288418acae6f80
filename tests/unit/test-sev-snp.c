/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <time.h>

#include "helpers/unit.h"

#include "../lib/sevsnp/snp-internal.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/sev-snp.h"
#include "cloister/snp-sim.h"

/* Real reports recorded on AMD hardware, ../shared/testdata/snp (README there). */

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &data, size), 0);
        return data;
}

static time_t utc(int y, int m, int d)
{
        struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
        return timegm(&tm);
}

static int verify_files(const char *report, const char *vcek, const char *chain, time_t at,
                        const SnpTrust *trust, Diag *d)
{
        _cleanup_(freep) uint8_t *r = NULL, *v = NULL, *c = NULL;
        size_t rn, vn, cn;
        SnpReport rep;
        int k;

        r = load(report, &rn);
        v = load(vcek, &vn);
        c = load(chain, &cn);
        diag_clear(d);
        k = snp_report_parse(r, rn, &rep, d);
        if (k < 0)
                return k;
        return snp_verify_report(&rep, r, rn, v, vn, c, cn, trust, at, NULL, d);
}

static SnpTrust *builtin(void)
{
        SnpTrust *t = NULL;
        assert_int_equal(snp_trust_new(true, &t), 0);
        return t;
}

static void test_snp_builtin_arks_match_recorded_fingerprints(void **state)
{
        /* The README of the test data gives Milan's and Genoa's independently. */
        static const char *const readme[] = {
                "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
                "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
        };
        int n = 0;

        for (const SnpBuiltinRoot *r = snp_builtin_roots; r->product; r++, n++) {
                BIO *b = BIO_new_mem_buf(r->pem, -1);
                X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
                unsigned char *der = NULL;
                int len = i2d_X509(x, &der);
                uint8_t fp[32];
                char hex[65];

                crypto_sha256(der, (size_t) len, fp);
                hex_encode_buf(fp, 32, hex, sizeof(hex));
                assert_string_equal(hex, r->sha256);
                if (n < 2)
                        assert_string_equal(hex, readme[n]);
                OPENSSL_free(der);
                X509_free(x);
                BIO_free(b);
        }
        assert_int_equal(n, 3);
}

static void test_snp_trustee_milan_vcek_report_verifies(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        Diag d;

        if (verify_files("snp/trustee-milan/report.bin", "snp/trustee-milan/vcek.der",
                         "snp/trustee-milan/chain.pem", utc(2025, 6, 1), t, &d) < 0)
                fail_msg("%s", d.message);
}

static void test_snp_gsg_debug_report_is_authentic_but_refused_by_production_policy(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        _cleanup_(freep) uint8_t *r = NULL;
        SnpReport rep;
        SnpPolicy p;
        size_t n;
        Diag d;

        assert_int_equal(verify_files("snp/gsg-milan-debug/report.bin",
                                      "snp/gsg-milan-debug/vcek.der",
                                      "snp/gsg-milan-debug/chain.pem", utc(2025, 6, 1), t, &d),
                         0);
        r = load("snp/gsg-milan-debug/report.bin", &n);
        assert_int_equal(snp_report_parse(r, n, &rep, &d), 0);
        assert_int_equal(rep.policy, 0xB0000);
        assert_int_equal(rep.current_major, 1);
        assert_int_equal(rep.current_minor, 49);
        assert_int_equal(rep.current_build, 3);

        snp_policy_defaults(&p);
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-debug");

        p.allow_debug = true;
        p.min_tcb.microcode = 69; /* the report's TCB has microcode 68 */
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d),
                         -EPERM);
        assert_string_equal(d.check, "snp-tcb-microcode");
        assert_string_equal(d.actual, "68");
        p.min_tcb.microcode = 68;
        assert_int_equal(snp_check_policy(&rep, SNP_PRODUCT_MILAN, &p, NULL, NULL, NULL, &d), 0);
}

static void test_snp_vlek_report_verifies_at_capture_time_and_not_now(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        Diag d;

        if (verify_files("snp/trustee-milan-vlek/report.bin", "snp/trustee-milan-vlek/vlek.der",
                         "snp/trustee-milan-vlek/chain.pem", utc(2025, 6, 1), t, &d) < 0)
                fail_msg("%s", d.message);
        assert_int_equal(verify_files("snp/trustee-milan-vlek/report.bin",
                                      "snp/trustee-milan-vlek/vlek.der",
                                      "snp/trustee-milan-vlek/chain.pem", 0, t, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "snp-validity");
}

static void test_snp_negative_samples_are_refused(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        Diag d;

        assert_int_equal(verify_files("snp/negative/snp_trustee_test-report.byte42.bin",
                                      "snp/trustee-milan/vcek.der", "snp/trustee-milan/chain.pem",
                                      utc(2025, 6, 1), t, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "snp-signature");
        assert_int_equal(verify_files("snp/negative/snp_trustee_test-vlek-report.byte42.bin",
                                      "snp/trustee-milan-vlek/vlek.der",
                                      "snp/trustee-milan-vlek/chain.pem", utc(2025, 6, 1), t, &d),
                         -EKEYREJECTED);
        assert_int_equal(
                verify_files("snp/negative/snp_trustee_test-report.byte384_reported_tcb.bin",
                             "snp/trustee-milan/vcek.der", "snp/trustee-milan/chain.pem",
                             utc(2025, 6, 1), t, &d),
                -EKEYREJECTED);
        assert_string_equal(d.check, "snp-vcek-tcb");
}

static void test_snp_every_bit_flip_in_the_signed_part_fails(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        _cleanup_(freep) uint8_t *r = NULL, *v = NULL, *c = NULL;
        size_t rn, vn, cn;
        SnpReport rep;
        Diag d;

        r = load("snp/trustee-milan/report.bin", &rn);
        v = load("snp/trustee-milan/vcek.der", &vn);
        c = load("snp/trustee-milan/chain.pem", &cn);
        /* Every bit of [0, 0x2A0): 5,376 verifications. */
        for (size_t i = 0; i < SNP_SIGNED_SIZE; i++)
                for (int bit = 0; bit < 8; bit++) {
                        r[i] ^= (uint8_t) (1 << bit);
                        if (snp_report_parse(r, rn, &rep, &d) == 0 &&
                            snp_verify_report(&rep, r, rn, v, vn, c, cn, t, utc(2025, 6, 1), NULL,
                                              &d) == 0)
                                fail_msg("flip of byte 0x%zx bit %d verified", i, bit);
                        r[i] ^= (uint8_t) (1 << bit);
                }
        assert_int_equal(snp_report_parse(r, rn, &rep, &d), 0);
        assert_int_equal(snp_verify_report(&rep, r, rn, v, vn, c, cn, t, utc(2025, 6, 1), NULL, &d),
                         0);
}

static void test_snp_swapped_chains_and_wrong_arks_fail(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin(), *none = NULL;
        Diag d;

        /* Genoa's ASK did not sign a Milan VCEK. */
        assert_int_equal(verify_files("snp/trustee-milan/report.bin", "snp/trustee-milan/vcek.der",
                                      "snp/roots/ask_ark_genoa.pem", utc(2025, 6, 1), t, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "snp-chain");
        /* The VLEK chain (ASVK) for a VCEK. */
        assert_int_equal(verify_files("snp/trustee-milan/report.bin", "snp/trustee-milan/vcek.der",
                                      "snp/roots/ask_ark_milan_vlek.pem", utc(2025, 6, 1), t, &d),
                         -EKEYREJECTED);
        /* No trusted ARK at all. */
        assert_int_equal(snp_trust_new(false, &none), 0);
        assert_int_equal(verify_files("snp/trustee-milan/report.bin", "snp/trustee-milan/vcek.der",
                                      "snp/trustee-milan/chain.pem", utc(2025, 6, 1), none, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "snp-ark");
        /* A VCEK from another report: signature or TCB fails. */
        assert_int_equal(verify_files("snp/trustee-milan/report.bin",
                                      "snp/gsg-milan-debug/vcek.der", "snp/trustee-milan/chain.pem",
                                      utc(2025, 6, 1), t, &d),
                         -EKEYREJECTED);
}

static void test_snp_crl_stale_and_revocation(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        _cleanup_(freep) uint8_t *crl = NULL;
        size_t n;
        Diag d;

        crl = load("snp/roots/crl_milan.pem", &n);
        assert_int_equal(snp_trust_set_crl(t, crl, n, true), 0);
        /* Before nextUpdate (2026-05-12) and with the Milan ASK not revoked: accepted. */
        assert_int_equal(verify_files("snp/trustee-milan/report.bin", "snp/trustee-milan/vcek.der",
                                      "snp/trustee-milan/chain.pem", utc(2026, 5, 1), t, &d),
                         0);
        /* After nextUpdate a fresh CRL is required: stale. */
        assert_int_equal(verify_files("snp/trustee-milan/report.bin", "snp/trustee-milan/vcek.der",
                                      "snp/trustee-milan/chain.pem", utc(2026, 6, 1), t, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "snp-crl");
        assert_non_null(strstr(d.message, "stale"));
        /* The Genoa CRL is not signed by the Milan ARK. */
        free(crl);
        crl = load("snp/roots/crl_genoa.pem", &n);
        assert_int_equal(snp_trust_set_crl(t, crl, n, false), 0);
        assert_int_equal(verify_files("snp/trustee-milan/report.bin", "snp/trustee-milan/vcek.der",
                                      "snp/trustee-milan/chain.pem", utc(2025, 6, 1), t, &d),
                         -EKEYREJECTED);
        assert_non_null(strstr(d.message, "not signed by the chain's ARK"));
}

static void test_snp_azure_hcl_report_embedded_snp_report_verifies(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        _cleanup_(freep) uint8_t *hcl = NULL, *chain = NULL;
        size_t n, cn;
        SnpReport rep;
        uint8_t digest[32];
        uint32_t var_size;
        Diag d;

        hcl = load("azure-snp/milan-vm1/hcl-report.bin", &n);
        chain = load("azure-snp/milan-vm1/vcek-chain.pem", &cn);
        assert_true(n >= 0x20 + SNP_REPORT_SIZE + 20);
        assert_int_equal(snp_report_parse(hcl + 0x20, SNP_REPORT_SIZE, &rep, &d), 0);
        /* vcek-chain.pem holds VCEK + ASK + ARK: the first certificate is the VCEK. */
        {
                BIO *b = BIO_new_mem_buf(chain, (int) cn);
                X509 *vcek = PEM_read_bio_X509(b, NULL, NULL, NULL);
                unsigned char *der = NULL;
                int dn = i2d_X509(vcek, &der);

                assert_true(dn > 0);
                if (snp_verify_report(&rep, hcl + 0x20, SNP_REPORT_SIZE, der, (size_t) dn, chain,
                                      cn, t, 0, NULL, &d) < 0)
                        fail_msg("%s", d.message);
                OPENSSL_free(der);
                X509_free(vcek);
                BIO_free(b);
        }
        /* REPORT_DATA[0:32] = SHA-256(variable data) (IGVM request data at 0x4C0, 20 bytes). */
        memcpy(&var_size, hcl + 0x4C0 + 16, 4);
        assert_true(0x4C0 + 20 + (size_t) var_size <= n);
        crypto_sha256(hcl + 0x4C0 + 20, var_size, digest);
        assert_memory_equal(digest, rep.report_data, 32);
}

static void test_snp_parse_rejects_wrong_size_and_version(void **state)
{
        _cleanup_(freep) uint8_t *r = NULL;
        SnpReport rep;
        size_t n;
        Diag d;

        r = load("snp/trustee-milan/report.bin", &n);
        assert_int_equal(snp_report_parse(r, n - 1, &rep, &d), -EBADMSG);
        r[0] = 1;
        assert_int_equal(snp_report_parse(r, n, &rep, &d), -EBADMSG);
        assert_string_equal(d.check, "snp-report-version");
}

static void test_snp_simulator_round_trips_only_when_its_ark_is_trusted(void **state)
{
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        _cleanup_(freep) uint8_t *vcek = NULL;
        _cleanup_(freep) char *chain = NULL, *ark = NULL;
        uint8_t rd[64] = { 7 }, raw[SNP_REPORT_SIZE];
        SnpProduct product;
        SnpReport rep;
        SnpPolicy p;
        size_t vn;
        Diag d;

        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        assert_int_equal(snp_sim_report(sim, rd, raw), 0);
        assert_int_equal(snp_sim_vcek_der(sim, &vcek, &vn), 0);
        assert_int_equal(snp_sim_chain_pem(sim, &chain), 0);
        assert_int_equal(snp_sim_ark_pem(sim, &ark), 0);
        assert_int_equal(snp_report_parse(raw, sizeof(raw), &rep, &d), 0);
        /* Default trust (AMD's ARKs only) refuses the simulator, saying why. */
        assert_int_equal(snp_verify_report(&rep, raw, sizeof(raw), vcek, vn, (uint8_t *) chain,
                                           strlen(chain), t, 0, NULL, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "snp-ark");
        /* Naming the simulator's ARK explicitly accepts it through the same path. */
        assert_int_equal(snp_trust_add_ark_pem(t, ark, strlen(ark)), 0);
        assert_int_equal(snp_verify_report(&rep, raw, sizeof(raw), vcek, vn, (uint8_t *) chain,
                                           strlen(chain), t, 0, &product, &d),
                         0);
        assert_int_equal(product, SNP_PRODUCT_MILAN);
        snp_policy_defaults(&p);
        assert_int_equal(snp_check_policy(&rep, product, &p, rd, NULL, NULL, &d), 0);
        rd[0] ^= 1;
        assert_int_equal(snp_check_policy(&rep, product, &p, rd, NULL, NULL, &d), -ESTALE);
        assert_string_equal(d.check, "snp-report-data");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_snp_builtin_arks_match_recorded_fingerprints),
                cmocka_unit_test(test_snp_trustee_milan_vcek_report_verifies),
                cmocka_unit_test(
                        test_snp_gsg_debug_report_is_authentic_but_refused_by_production_policy),
                cmocka_unit_test(test_snp_vlek_report_verifies_at_capture_time_and_not_now),
                cmocka_unit_test(test_snp_negative_samples_are_refused),
                cmocka_unit_test(test_snp_every_bit_flip_in_the_signed_part_fails),
                cmocka_unit_test(test_snp_swapped_chains_and_wrong_arks_fail),
                cmocka_unit_test(test_snp_crl_stale_and_revocation),
                cmocka_unit_test(test_snp_azure_hcl_report_embedded_snp_report_verifies),
                cmocka_unit_test(test_snp_parse_rejects_wrong_size_and_version),
                cmocka_unit_test(test_snp_simulator_round_trips_only_when_its_ark_is_trusted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
