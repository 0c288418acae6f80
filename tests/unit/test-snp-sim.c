/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "helpers/attest-fixture.h"
#include "helpers/unit.h"

#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/snp-sim.h"

static SnpSimulator *sim;

static int group_setup(void **state)
{
        SnpSimConfig c;

        snp_sim_config_defaults(&c);
        memset(c.measurement, 0xab, sizeof(c.measurement));
        c.guest_svn = 7;
        return snp_sim_new(&c, &sim) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
        sim = snp_sim_free(sim);
        return 0;
}

static X509 *vcek_cert(void)
{
        uint8_t *der;
        size_t n;
        const unsigned char *p;
        X509 *x;

        assert_int_equal(snp_sim_vcek_der(sim, &der, &n), 0);
        p = der;
        x = d2i_X509(NULL, &p, (long) n);
        free(der);
        assert_non_null(x);
        return x;
}

static STACK_OF(X509_INFO) * chain_infos(void)
{
        char *pem;
        BIO *b;
        STACK_OF(X509_INFO) * infos;

        assert_int_equal(snp_sim_chain_pem(sim, &pem), 0);
        b = BIO_new_mem_buf(pem, -1);
        infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
        BIO_free(b);
        free(pem);
        assert_non_null(infos);
        return infos;
}

/* Independent of Cloister's SNP verifier: plain OpenSSL checks of the chain and signature. */
static void test_snp_sim_chain_is_ask_then_ark_and_signatures_hold(void **state)
{
        STACK_OF(X509_INFO) *infos = chain_infos();
        X509 *vcek = vcek_cert(), *ask, *ark;

        assert_int_equal(sk_X509_INFO_num(infos), 2);
        ask = sk_X509_INFO_value(infos, 0)->x509;
        ark = sk_X509_INFO_value(infos, 1)->x509;
        assert_int_equal(X509_verify(ark, X509_get0_pubkey(ark)), 1);
        assert_int_equal(X509_verify(ask, X509_get0_pubkey(ark)), 1);
        assert_int_equal(X509_verify(vcek, X509_get0_pubkey(ask)), 1);
        assert_int_equal(X509_verify(vcek, X509_get0_pubkey(ark)), 0);
        assert_int_equal(X509_get_signature_nid(vcek), NID_rsassaPss);
        X509_free(vcek);
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
}

static void test_snp_sim_vcek_carries_amd_tcb_and_hwid_extensions(void **state)
{
        X509 *vcek = vcek_cert();
        ASN1_OBJECT *hwid = OBJ_txt2obj("1.3.6.1.4.1.3704.1.4", 1);
        ASN1_OBJECT *ucode = OBJ_txt2obj("1.3.6.1.4.1.3704.1.3.8", 1);
        const ASN1_OCTET_STRING *v;
        int idx;

        idx = X509_get_ext_by_OBJ(vcek, hwid, -1);
        assert_true(idx >= 0);
        v = X509_EXTENSION_get_data(X509_get_ext(vcek, idx));
        assert_int_equal(v->length, 64);
        assert_int_equal(v->data[0], 0x5a);
        idx = X509_get_ext_by_OBJ(vcek, ucode, -1);
        assert_true(idx >= 0);
        v = X509_EXTENSION_get_data(X509_get_ext(vcek, idx));
        /* DER INTEGER 115 */
        assert_int_equal(v->length, 3);
        assert_int_equal(v->data[2], 115);
        ASN1_OBJECT_free(hwid);
        ASN1_OBJECT_free(ucode);
        X509_free(vcek);
}

static ECDSA_SIG *report_signature(const uint8_t *report)
{
        uint8_t be[72];
        BIGNUM *r, *s;
        ECDSA_SIG *sig = ECDSA_SIG_new();

        for (int i = 0; i < 72; i++)
                be[i] = report[0x2A0 + 71 - i];
        r = BN_bin2bn(be, 72, NULL);
        for (int i = 0; i < 72; i++)
                be[i] = report[0x2E8 + 71 - i];
        s = BN_bin2bn(be, 72, NULL);
        assert_int_equal(ECDSA_SIG_set0(sig, r, s), 1);
        return sig;
}

static int verify_report(const uint8_t *report)
{
        X509 *vcek = vcek_cert();
        ECDSA_SIG *sig = report_signature(report);
        unsigned char *der = NULL;
        int n = i2d_ECDSA_SIG(sig, &der), ok;
        EVP_MD_CTX *md = EVP_MD_CTX_new();

        assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, X509_get0_pubkey(vcek)),
                         1);
        ok = EVP_DigestVerify(md, der, (size_t) n, report, 0x2A0);
        EVP_MD_CTX_free(md);
        OPENSSL_free(der);
        ECDSA_SIG_free(sig);
        X509_free(vcek);
        return ok;
}

static void test_snp_sim_report_layout_and_signature(void **state)
{
        uint8_t rd[64], report[SNP_SIM_REPORT_SIZE];

        for (int i = 0; i < 64; i++)
                rd[i] = (uint8_t) i;
        assert_int_equal(snp_sim_report(sim, rd, report), 0);
        assert_int_equal(report[0], 3);    /* version 3 */
        assert_int_equal(report[0x04], 7); /* guest SVN */
        assert_int_equal(report[0x0A], 3); /* policy bits 16..17 */
        assert_int_equal(report[0x34], 1); /* ECDSA P-384 / SHA-384 */
        assert_memory_equal(report + 0x50, rd, 64);
        assert_int_equal(report[0x90], 0xab);
        assert_int_equal(report[0x187], 115); /* reported TCB microcode */
        assert_int_equal(verify_report(report), 1);
}

static void test_snp_sim_signature_covers_report_data(void **state)
{
        uint8_t rd[64] = { 1 }, report[SNP_SIM_REPORT_SIZE];

        assert_int_equal(snp_sim_report(sim, rd, report), 0);
        report[0x50] ^= 1;
        assert_int_equal(verify_report(report), 0);
}

static void load_blob(const char *rel, Blob *b)
{
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &b->data, &b->size), 0);
}

static void test_snp_sim_policy_refuses_a_real_amd_report_relabelled_as_simulated(void **state)
{
        /* sim-snp trusts only the simulator's ARK its policy names, never AMD's built-in ones: a
         * genuine report, chain and all (trustee-milan, which verifies under AMD's Milan ARK at
         * this time as sev-snp evidence), presented as simulated evidence fails at the chain. */
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_SIM_SNP);
        struct tm tm = { .tm_year = 2025 - 1900, .tm_mon = 5, .tm_mday = 1 };
        time_t at = timegm(&tm);
        Diag d;

        assert_non_null(e);
        load_blob("snp/trustee-milan/report.bin", &e->snp.report);
        load_blob("snp/trustee-milan/vcek.der", &e->snp.vcek);
        load_blob("snp/trustee-milan/chain.pem", &e->snp.chain);
        e->has_snp = true;
        assert_int_equal(fixture_policy_sim_snp(sim, &p), 0);
        assert_true(attest_verify(e, p, NULL, at, NULL, &d) < 0);
        assert_string_equal(d.check, "snp-ark");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_snp_sim_chain_is_ask_then_ark_and_signatures_hold),
                cmocka_unit_test(test_snp_sim_vcek_carries_amd_tcb_and_hwid_extensions),
                cmocka_unit_test(test_snp_sim_report_layout_and_signature),
                cmocka_unit_test(test_snp_sim_signature_covers_report_data),
                cmocka_unit_test(
                        test_snp_sim_policy_refuses_a_real_amd_report_relabelled_as_simulated),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
