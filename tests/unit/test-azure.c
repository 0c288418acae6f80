/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/pem.h>

#include "helpers/unit.h"

#include "../lib/attest/attest-internal.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"

/* A real Azure SEV-SNP confidential VM: HCL report + vTPM quote over the nonce "challenge"
 * (../shared/testdata/azure-snp/milan-vm1, README there). */
#define AZ "azure-snp/milan-vm1/"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &data, size), 0);
        return data;
}

static Evidence *azure_evidence(const char *hcl_file)
{
        Evidence *e = evidence_new(ATTEST_VARIANT_AZURE_SEV_SNP);
        _cleanup_(json_decrefp) json_t *pcrs = NULL;
        uint8_t *sig_raw, sig[4 + 2 + 256];
        size_t n;
        json_t *v;
        size_t i;
        BIO *b;
        X509 *vcek;
        unsigned char *der = NULL;
        int dn;

        e->has_snp = e->has_tpm = true;
        e->snp.hcl_report.data = load(hcl_file, &e->snp.hcl_report.size);
        e->snp.chain.data = load(AZ "vcek-chain.pem", &e->snp.chain.size);
        b = BIO_new_mem_buf(e->snp.chain.data, (int) e->snp.chain.size);
        vcek = PEM_read_bio_X509(b, NULL, NULL, NULL);
        dn = i2d_X509(vcek, &der);
        assert_int_equal(blob_set(&e->snp.vcek, der, (size_t) dn), 0);
        OPENSSL_free(der);
        X509_free(vcek);
        BIO_free(b);

        e->tpm.quote.data = load(AZ "tpm_quote.TPMS_ATTEST.bin", &e->tpm.quote.size);
        /* TPMT_SIGNATURE around the raw RSASSA-SHA256 signature (TPM 2.0 Part 2, 11.3.4). */
        sig_raw = load(AZ "tpm_quote.sig.rsa_raw.bin", &n);
        assert_int_equal(n, 256);
        sig[0] = 0x00, sig[1] = 0x14, sig[2] = 0x00, sig[3] = 0x0b, sig[4] = 0x01, sig[5] = 0x00;
        memcpy(sig + 6, sig_raw, 256);
        free(sig_raw);
        assert_int_equal(blob_set(&e->tpm.signature, sig, sizeof(sig)), 0);
        assert_int_equal(
                json_parse_file(testdata_path(AZ "tpm_quote.pcrs.json"), 1 << 20, &pcrs, NULL), 0);
        json_array_foreach (json_object_get(pcrs, "pcrs_sha256"), i, v) {
                assert_int_equal(hex_decode_exact(json_string_value(v), e->tpm.pcrs[i], 32), 0);
                e->tpm.pcr_mask |= 1U << i;
        }
        return e;
}

static AttestPolicy *azure_policy(const Evidence *e)
{
        AttestPolicy *p = calloc(1, sizeof(*p));

        p->variant = ATTEST_VARIANT_AZURE_SEV_SNP;
        snp_policy_defaults(&p->snp);
        for (int i = 0; i < 8; i++) {
                p->pcrs[i].present = true;
                memcpy(p->pcrs[i].expected, e->tpm.pcrs[i], 32);
        }
        return p;
}

static int verify(const Evidence *e, const AttestPolicy *p, const char *nonce, Diag *d)
{
        AttestReport rep = {};
        int r;

        diag_clear(d);
        r = attest_verify_azure(e, p, (const uint8_t *) nonce, strlen(nonce), 0, &rep, d);
        attest_report_done(&rep);
        return r;
}

static void test_azure_whole_chain_verifies(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = azure_evidence(AZ "hcl-report.bin");
        _cleanup_(attest_policy_freep) AttestPolicy *p = azure_policy(e);
        Diag d;

        if (verify(e, p, "challenge", &d) < 0)
                fail_msg("%s [%s]", d.message, d.check);
}

static void test_azure_wrong_nonce_is_stale(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = azure_evidence(AZ "hcl-report.bin");
        _cleanup_(attest_policy_freep) AttestPolicy *p = azure_policy(e);
        Diag d;

        assert_int_equal(verify(e, p, "challengf", &d), -ESTALE);
        assert_string_equal(d.check, "binding");
}

static void test_azure_negative_samples_fail_at_their_link(void **state)
{
        static const struct {
                const char *file, *check;
        } cases[] = {
                { "azure-snp/negative/az_snp_hcl-report.byte0x1a6.bin", NULL },
                { "azure-snp/negative/az_snp_hcl-report.byte0x6e0_vardata.bin",
                  "azure-runtime-data" },
                { "azure-snp/negative/az_snp_hcl-report.byte0x540_akpub.bin",
                  "azure-runtime-data" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(evidence_freep) Evidence *e = azure_evidence(cases[i].file);
                _cleanup_(attest_policy_freep) AttestPolicy *p = azure_policy(e);
                Diag d;

                assert_true(verify(e, p, "challenge", &d) < 0);
                if (cases[i].check)
                        assert_string_equal(d.check, cases[i].check);
        }
}

static void test_azure_evidence_naming_another_ak_is_refused(void **state)
{
        /* The evidence's own akPublic (optional for azure-sev-snp) must be the key the HCL
         * vouches for; another TPM's AK (GCE's) is refused, not ignored. */
        _cleanup_(evidence_freep) Evidence *e = azure_evidence(AZ "hcl-report.bin");
        _cleanup_(attest_policy_freep) AttestPolicy *p = azure_policy(e);
        Diag d;

        e->tpm.ak_public.data =
                load("tpm/gce-cos85-quote/ak_pub.TPMT_PUBLIC.bin", &e->tpm.ak_public.size);
        assert_int_equal(verify(e, p, "challenge", &d), -EKEYREJECTED);
        assert_string_equal(d.check, "azure-ak");
}

static void test_azure_hcl_snp_report_is_held_to_the_policys_snp_settings(void **state)
{
        /* The paravisor's SNP report meets the policy's snp object like any SNP report: a
         * microcode minimum above the report's TCB refuses the whole evidence. */
        _cleanup_(evidence_freep) Evidence *e = azure_evidence(AZ "hcl-report.bin");
        _cleanup_(attest_policy_freep) AttestPolicy *p = azure_policy(e);
        Diag d;

        p->snp.min_tcb.microcode = 255;
        assert_int_equal(verify(e, p, "challenge", &d), -EPERM);
        assert_string_equal(d.check, "snp-tcb-microcode");
}

static void test_azure_changed_pcr_breaks_the_digest(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = azure_evidence(AZ "hcl-report.bin");
        _cleanup_(attest_policy_freep) AttestPolicy *p = azure_policy(e);
        Diag d;

        e->tpm.pcrs[4][0] ^= 1;
        assert_int_equal(verify(e, p, "challenge", &d), -EKEYREJECTED);
        assert_string_equal(d.check, "pcr-digest");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_azure_whole_chain_verifies),
                cmocka_unit_test(test_azure_wrong_nonce_is_stale),
                cmocka_unit_test(test_azure_negative_samples_fail_at_their_link),
                cmocka_unit_test(test_azure_changed_pcr_breaks_the_digest),
                cmocka_unit_test(test_azure_evidence_naming_another_ak_is_refused),
                cmocka_unit_test(test_azure_hcl_snp_report_is_held_to_the_policys_snp_settings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
