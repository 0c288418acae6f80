/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
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

/* An ARK a policy adds must be a self-signed certificate: the ASK of AMD's real Milan chain
 * (signed by the ARK, not by itself) is refused, alone or with its ARK; the ARK alone is taken. */
static void test_snp_trust_refuses_an_ark_that_is_not_self_signed(void **state)
{
        _cleanup_(freep) uint8_t *bundle = NULL;
        _cleanup_(freep) char *pem = NULL;
        size_t size, ask_size;
        const char *end_first, *ark;
        SnpTrust *t = NULL;

        bundle = load("snp/roots/ask_ark_milan.pem", &size);
        pem = strndup((const char *) bundle, size);
        assert_non_null(pem);
        /* The bundle is the ASK, then the ARK. */
        end_first = strstr(pem, "-----END CERTIFICATE-----");
        assert_non_null(end_first);
        ark = strstr(end_first, "-----BEGIN CERTIFICATE-----");
        assert_non_null(ark);
        ask_size = (size_t) (ark - pem);

        assert_int_equal(snp_trust_new(false, &t), 0);
        assert_int_equal(snp_trust_add_ark_pem(t, pem, ask_size), -EBADMSG);
        t = snp_trust_free(t);
        assert_int_equal(snp_trust_new(false, &t), 0);
        assert_int_equal(snp_trust_add_ark_pem(t, pem, strlen(pem)), -EBADMSG);
        t = snp_trust_free(t);
        assert_int_equal(snp_trust_new(false, &t), 0);
        assert_int_equal(snp_trust_add_ark_pem(t, ark, strlen(ark)), 0);
        t = snp_trust_free(t);
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
        Diag d = { 0 };

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
        Diag d = { 0 };

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

/* trustee-milan's report, parsed (the policy tests below change what it says, as
 * snp_check_policy judges a verified report's fields), and the check under p. */
static void milan_report(SnpReport *rep)
{
        _cleanup_(freep) uint8_t *r = NULL;
        size_t n;
        Diag d = { 0 };

        r = load("snp/trustee-milan/report.bin", &n);
        assert_int_equal(snp_report_parse(r, n, rep, &d), 0);
}

static int milan_check(const SnpReport *rep, const SnpPolicy *p, Diag *d)
{
        return snp_check_policy(rep, SNP_PRODUCT_MILAN, p, NULL, NULL, NULL, d);
}

static void test_snp_guest_policy_with_a_migration_agent_is_refused_unless_allowed(void **state)
{
        /* MIGRATE_MA (guest policy bit 18): a migration agent may export the guest's memory. The
         * genuine report's parsed policy with the bit set (the signature is not in question here:
         * snp_check_policy judges what a verified report says). */
        SnpReport rep;
        SnpPolicy p;
        Diag d = { 0 };

        milan_report(&rep);
        snp_policy_defaults(&p);
        assert_int_equal(milan_check(&rep, &p, &d), 0);

        rep.policy |= SNP_POLICY_MIGRATE_MA;
        assert_int_equal(milan_check(&rep, &p, &d), -EPERM);
        assert_string_equal(d.check, "snp-migration-agent");
        assert_string_equal(d.expected, "0");
        assert_string_equal(d.actual, "1");
        p.allow_migration_agent = true;
        assert_int_equal(milan_check(&rep, &p, &d), 0);
}

static void test_snp_guest_policy_allowing_smt_is_refused_by_a_policy_forbidding_it(void **state)
{
        /* SMT (guest policy bit 16) shares cores with other threads. Allowed by default (every
         * cloud enables it); "allowSmt": false refuses it. trustee-milan's guest policy allows
         * SMT. */
        SnpReport rep;
        SnpPolicy p;
        Diag d = { 0 };

        milan_report(&rep);
        assert_true(rep.policy & SNP_POLICY_SMT);
        snp_policy_defaults(&p);
        assert_int_equal(milan_check(&rep, &p, &d), 0);
        p.allow_smt = false;
        assert_int_equal(milan_check(&rep, &p, &d), -EPERM);
        assert_string_equal(d.check, "snp-smt");
}

static void test_snp_report_requested_at_another_vmpl_is_refused(void **state)
{
        /* VMPL: a report requested from a less privileged level (a guest kernel under an SVSM or
         * paravisor at VMPL 0) speaks for less than the whole guest. The genuine report's parsed
         * VMPL changed, as snp_check_policy judges what a verified report says. */
        SnpReport rep;
        SnpPolicy p;
        Diag d = { 0 };

        milan_report(&rep);
        assert_int_equal(rep.vmpl, 0);
        snp_policy_defaults(&p);
        assert_int_equal(milan_check(&rep, &p, &d), 0);

        rep.vmpl = 2;
        assert_int_equal(milan_check(&rep, &p, &d), -EPERM);
        assert_string_equal(d.check, "snp-vmpl");
        assert_string_equal(d.expected, "0");
        assert_string_equal(d.actual, "2");
        p.vmpl = 2;
        assert_int_equal(milan_check(&rep, &p, &d), 0);
}

static void test_snp_report_whose_id_key_is_not_listed_is_refused(void **state)
{
        /* idKeyDigests: the launch's ID block must be signed by one of these keys. The genuine
         * report's own ID key digest passes; any other listed alone is refused, with both
         * values. */
        SnpReport rep;
        SnpPolicy p;
        char hex[97];
        Diag d = { 0 };

        milan_report(&rep);
        snp_policy_defaults(&p);
        memset(p.id_key_digests[0], 0x5c, 48);
        p.n_id_key_digests = 1;
        assert_int_equal(milan_check(&rep, &p, &d), -EPERM);
        assert_string_equal(d.check, "snp-id-key");
        hex_encode_buf(rep.id_key_digest, 48, hex, sizeof(hex));
        assert_string_equal(d.actual, hex);

        memcpy(p.id_key_digests[1], rep.id_key_digest, 48);
        p.n_id_key_digests = 2;
        assert_int_equal(milan_check(&rep, &p, &d), 0);
}

static void test_snp_vlek_report_verifies_at_capture_time_and_not_now(void **state)
{
        _cleanup_(snp_trust_freep) SnpTrust *t = builtin();
        Diag d = { 0 };

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
        Diag d = { 0 };

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
        Diag d = { 0 };

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
        Diag d = { 0 };

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
        Diag d = { 0 };

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
        Diag d = { 0 };

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
        Diag d = { 0 };

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
        Diag d = { 0 };

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

/* --- forged chains: the simulator's certificates as templates, re-keyed and re-signed here ----
 * Each forgery keeps its template's names, validity and AMD extensions, so that exactly one
 * property differs from the genuine chain: who signed it. */

static X509 *der_cert(const uint8_t *der, size_t n)
{
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long) n);

        assert_non_null(x);
        return x;
}

/* The simulator's VCEK, ASK and ARK. */
static void sim_certs(SnpSimulator *sim, X509 **vcek, X509 **ask, X509 **ark)
{
        _cleanup_(freep) uint8_t *der = NULL;
        _cleanup_(freep) char *chain = NULL;
        size_t n;
        BIO *b;

        assert_int_equal(snp_sim_vcek_der(sim, &der, &n), 0);
        *vcek = der_cert(der, n);
        assert_int_equal(snp_sim_chain_pem(sim, &chain), 0);
        b = BIO_new_mem_buf(chain, -1);
        *ask = PEM_read_bio_X509(b, NULL, NULL, NULL);
        *ark = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_non_null(*ask);
        assert_non_null(*ark);
}

/* A copy of tmpl (same subject, issuer name, validity, extensions) holding subject_key,
 * signed by signer. */
static X509 *resign(X509 *tmpl, EVP_PKEY *subject_key, EVP_PKEY *signer)
{
        X509 *x = X509_dup(tmpl);

        assert_non_null(x);
        assert_int_equal(X509_set_pubkey(x, subject_key), 1);
        assert_true(X509_sign(x, signer, EVP_sha384()) > 0);
        return x;
}

static uint8_t *cert_der(X509 *x, size_t *ret_size)
{
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);
        uint8_t *copy;

        assert_true(n > 0);
        copy = malloc((size_t) n);
        assert_non_null(copy);
        memcpy(copy, der, (size_t) n);
        OPENSSL_free(der);
        *ret_size = (size_t) n;
        return copy;
}

static char *certs_pem(X509 *a, X509 *b)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *s;
        long len;

        assert_int_equal(PEM_write_bio_X509(bio, a), 1);
        if (b)
                assert_int_equal(PEM_write_bio_X509(bio, b), 1);
        len = BIO_get_mem_data(bio, &data);
        s = strndup(data, (size_t) len);
        BIO_free(bio);
        assert_non_null(s);
        return s;
}

/* Signs the report's first 0x2A0 bytes with key as the firmware would (ECDSA P-384 with
 * SHA-384; r and s 72-byte little-endian at 0x2A0 and 0x2E8: SNP ABI, "ATTESTATION_REPORT"). */
static void sign_report(uint8_t raw[static SNP_REPORT_SIZE], EVP_PKEY *key)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t der[256], be[72];
        size_t n = sizeof(der);
        const unsigned char *p = der;
        const BIGNUM *r, *s;
        ECDSA_SIG *sig;

        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key), 1);
        assert_int_equal(EVP_DigestSign(md, der, &n, raw, SNP_SIGNED_SIZE), 1);
        EVP_MD_CTX_free(md);
        sig = d2i_ECDSA_SIG(NULL, &p, (long) n);
        assert_non_null(sig);
        ECDSA_SIG_get0(sig, &r, &s);
        assert_int_equal(BN_bn2binpad(r, be, 72), 72);
        for (int i = 0; i < 72; i++)
                raw[0x2A0 + i] = be[71 - i];
        assert_int_equal(BN_bn2binpad(s, be, 72), 72);
        for (int i = 0; i < 72; i++)
                raw[0x2E8 + i] = be[71 - i];
        ECDSA_SIG_free(sig);
}

static int verify_forged(const uint8_t raw[static SNP_REPORT_SIZE], X509 *vcek, const char *chain,
                         const SnpTrust *t, Diag *d)
{
        _cleanup_(freep) uint8_t *der = NULL;
        SnpReport rep;
        size_t n;

        der = cert_der(vcek, &n);
        diag_clear(d);
        assert_int_equal(snp_report_parse(raw, SNP_REPORT_SIZE, &rep, d), 0);
        return snp_verify_report(&rep, raw, SNP_REPORT_SIZE, der, n, (const uint8_t *) chain,
                                 strlen(chain), t, 0, NULL, d);
}

static SnpTrust *trusting(X509 *ark)
{
        _cleanup_(freep) char *pem = certs_pem(ark, NULL);
        SnpTrust *t = NULL;

        assert_int_equal(snp_trust_new(false, &t), 0);
        assert_int_equal(snp_trust_add_ark_pem(t, pem, strlen(pem)), 0);
        return t;
}

static void test_snp_vcek_named_by_the_ask_but_signed_by_another_key_is_refused(void **state)
{
        /* The attacker's own VCEK, labelled with the genuine ASK's name (issuer DN equal) and
         * signed by a key of its own, with a report signed by that VCEK's key. Only the VCEK's
         * signature by the ASK tells it from the genuine one. */
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(snp_trust_freep) SnpTrust *t = NULL;
        _cleanup_(freep) char *chain = NULL;
        EVP_PKEY *attacker = EVP_RSA_gen(2048), *vcek_key = EVP_EC_gen("P-384");
        X509 *vcek, *ask, *ark, *forged;
        uint8_t rd[64] = { 1 }, raw[SNP_REPORT_SIZE];
        Diag d = { 0 };

        assert_non_null(attacker);
        assert_non_null(vcek_key);
        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        sim_certs(sim, &vcek, &ask, &ark);
        t = trusting(ark);
        assert_int_equal(snp_sim_chain_pem(sim, &chain), 0);

        /* The genuine report and VCEK verify with this trust and chain. */
        assert_int_equal(snp_sim_report(sim, rd, raw), 0);
        if (verify_forged(raw, vcek, chain, t, &d) < 0)
                fail_msg("genuine: %s", d.message);

        forged = resign(vcek, vcek_key, attacker);
        assert_int_equal(X509_check_issued(ask, forged), X509_V_OK);
        assert_int_not_equal(X509_verify(forged, X509_get0_pubkey(ask)), 1);
        sign_report(raw, vcek_key);
        assert_int_equal(verify_forged(raw, forged, chain, t, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "snp-chain");
        assert_non_null(strstr(d.message, "no certificate in the chain signed the VCEK"));

        X509_free(forged);
        X509_free(vcek);
        X509_free(ask);
        X509_free(ark);
        EVP_PKEY_free(attacker);
        EVP_PKEY_free(vcek_key);
}

static void test_snp_ask_named_by_the_ark_but_signed_by_another_key_is_refused(void **state)
{
        /* One level up: the attacker's ASK carries the trusted ARK's name as issuer but is signed
         * by another key; the attacker's VCEK is genuinely signed by that ASK, the report by the
         * VCEK. Only the ASK's signature by the ARK tells it from the genuine chain. */
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(snp_trust_freep) SnpTrust *t = NULL;
        _cleanup_(freep) char *chain = NULL;
        EVP_PKEY *attacker = EVP_RSA_gen(2048), *ask_key = EVP_RSA_gen(2048),
                 *vcek_key = EVP_EC_gen("P-384");
        X509 *vcek, *ask, *ark, *forged_ask, *forged_vcek;
        uint8_t rd[64] = { 2 }, raw[SNP_REPORT_SIZE];
        Diag d = { 0 };

        assert_non_null(attacker);
        assert_non_null(ask_key);
        assert_non_null(vcek_key);
        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        sim_certs(sim, &vcek, &ask, &ark);
        t = trusting(ark);

        forged_ask = resign(ask, ask_key, attacker);
        forged_vcek = resign(vcek, vcek_key, ask_key);
        assert_int_equal(X509_check_issued(ark, forged_ask), X509_V_OK);
        assert_int_not_equal(X509_verify(forged_ask, X509_get0_pubkey(ark)), 1);
        assert_int_equal(X509_verify(forged_vcek, X509_get0_pubkey(forged_ask)), 1);
        chain = certs_pem(forged_ask, ark);
        assert_int_equal(snp_sim_report(sim, rd, raw), 0);
        sign_report(raw, vcek_key);
        assert_int_equal(verify_forged(raw, forged_vcek, chain, t, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "snp-ark");

        X509_free(forged_ask);
        X509_free(forged_vcek);
        X509_free(vcek);
        X509_free(ask);
        X509_free(ark);
        EVP_PKEY_free(attacker);
        EVP_PKEY_free(ask_key);
        EVP_PKEY_free(vcek_key);
}

/* A CRL signed by the ARK that lists the ASK's serial: the report that verifies without it is
 * refused with it (AMD's real CRLs revoke nothing this test data uses, so a chain whose keys the
 * test holds makes the case). */
static void test_snp_ask_revoked_by_the_arks_crl_is_refused(void **state)
{
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(snp_trust_freep) SnpTrust *t = NULL;
        _cleanup_(freep) char *chain = NULL;
        EVP_PKEY *ark_key = EVP_RSA_gen(2048), *ask_key = EVP_RSA_gen(2048),
                 *vcek_key = EVP_EC_gen("P-384");
        X509 *svcek, *sask, *sark, *ark, *ask, *vcek;
        X509_CRL *crl = X509_CRL_new();
        X509_REVOKED *rev = X509_REVOKED_new();
        ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL) - 60),
                  *next = ASN1_TIME_set(NULL, time(NULL) + 86400);
        uint8_t rd[64] = { 5 }, raw[SNP_REPORT_SIZE];
        unsigned char *der = NULL;
        int der_n;
        Diag d = { 0 };

        assert_true(ark_key && ask_key && vcek_key && crl && rev && now && next);
        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        sim_certs(sim, &svcek, &sask, &sark);
        ark = resign(sark, ark_key, ark_key);
        ask = resign(sask, ask_key, ark_key);
        vcek = resign(svcek, vcek_key, ask_key);
        t = trusting(ark);
        chain = certs_pem(ask, ark);
        assert_int_equal(snp_sim_report(sim, rd, raw), 0);
        sign_report(raw, vcek_key);
        if (verify_forged(raw, vcek, chain, t, &d) < 0)
                fail_msg("without the CRL: %s", d.message);

        assert_int_equal(X509_CRL_set_version(crl, 1), 1);
        assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ark)), 1);
        assert_int_equal(X509_CRL_set1_lastUpdate(crl, now), 1);
        assert_int_equal(X509_CRL_set1_nextUpdate(crl, next), 1);
        assert_int_equal(X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(ask)), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(rev, now), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, rev), 1);
        assert_true(X509_CRL_sign(crl, ark_key, EVP_sha384()) > 0);
        der_n = i2d_X509_CRL(crl, &der);
        assert_true(der_n > 0);
        assert_int_equal(snp_trust_set_crl(t, der, (size_t) der_n, true), 0);
        assert_int_equal(verify_forged(raw, vcek, chain, t, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "snp-crl");

        OPENSSL_free(der);
        X509_CRL_free(crl);
        ASN1_TIME_free(now);
        ASN1_TIME_free(next);
        X509_free(svcek);
        X509_free(sask);
        X509_free(sark);
        X509_free(vcek);
        X509_free(ask);
        X509_free(ark);
        EVP_PKEY_free(ark_key);
        EVP_PKEY_free(ask_key);
        EVP_PKEY_free(vcek_key);
}

static void test_snp_validly_signed_report_of_another_chip_or_signer_kind_is_refused(void **state)
{
        /* A whole chain whose keys the test holds (ARK, ASK, VCEK re-keyed from the simulator's
         * templates), so that reports with any bytes can be validly signed. The VCEK's hwID
         * extension is the simulator's chip ID (0x5a...). */
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(snp_trust_freep) SnpTrust *t = NULL;
        _cleanup_(freep) char *chain = NULL;
        EVP_PKEY *ark_key = EVP_RSA_gen(2048), *ask_key = EVP_RSA_gen(2048),
                 *vcek_key = EVP_EC_gen("P-384");
        X509 *svcek, *sask, *sark, *ark, *ask, *vcek;
        uint8_t rd[64] = { 3 }, raw[SNP_REPORT_SIZE], genuine[SNP_REPORT_SIZE], hwid[64];
        char hex[129];
        Diag d = { 0 };

        assert_non_null(ark_key);
        assert_non_null(ask_key);
        assert_non_null(vcek_key);
        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        sim_certs(sim, &svcek, &sask, &sark);
        ark = resign(sark, ark_key, ark_key);
        ask = resign(sask, ask_key, ark_key);
        vcek = resign(svcek, vcek_key, ask_key);
        t = trusting(ark);
        chain = certs_pem(ask, ark);
        assert_int_equal(snp_sim_report(sim, rd, genuine), 0);
        memset(hwid, 0x5a, sizeof(hwid));
        assert_memory_equal(genuine + 0x1A0, hwid, 64);

        /* Signed with this chain's VCEK, the report verifies: the chain is sound. */
        memcpy(raw, genuine, sizeof(raw));
        sign_report(raw, vcek_key);
        if (verify_forged(raw, vcek, chain, t, &d) < 0)
                fail_msg("re-signed genuine report: %s", d.message);

        /* Another chip's ID (one bit), validly signed by this VCEK. */
        memcpy(raw, genuine, sizeof(raw));
        raw[0x1A0 + 17] ^= 0x01;
        sign_report(raw, vcek_key);
        assert_int_equal(verify_forged(raw, vcek, chain, t, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "snp-chip-id");
        hex_encode_buf(hwid, 64, hex, sizeof(hex));
        assert_string_equal(d.expected, hex);
        hex_encode_buf(raw + 0x1A0, 64, hex, sizeof(hex));
        assert_string_equal(d.actual, hex);

        /* MASK_CHIP_ID: the firmware reports a zero chip ID, which names no chip. */
        memcpy(raw, genuine, sizeof(raw));
        memset(raw + 0x1A0, 0, 64);
        sign_report(raw, vcek_key);
        assert_int_equal(verify_forged(raw, vcek, chain, t, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "snp-chip-id");

        /* MASK_CHIP_KEY (SIGNER_INFO bit 1), even with the right chip ID: refused. */
        memcpy(raw, genuine, sizeof(raw));
        raw[0x48] |= 0x02;
        sign_report(raw, vcek_key);
        assert_int_equal(verify_forged(raw, vcek, chain, t, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "snp-chip-id");

        /* SIGNING_KEY (SIGNER_INFO bits 4:2) = 1, a VLEK, with the right chip ID and validly
         * signed by this VCEK: the report and the certificate disagree on the signer. */
        memcpy(raw, genuine, sizeof(raw));
        raw[0x48] |= 1 << 2;
        sign_report(raw, vcek_key);
        assert_int_equal(verify_forged(raw, vcek, chain, t, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "snp-signer");

        X509_free(svcek);
        X509_free(sask);
        X509_free(sark);
        X509_free(vcek);
        X509_free(ask);
        X509_free(ark);
        EVP_PKEY_free(ark_key);
        EVP_PKEY_free(ask_key);
        EVP_PKEY_free(vcek_key);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_snp_builtin_arks_match_recorded_fingerprints),
                cmocka_unit_test(test_snp_trust_refuses_an_ark_that_is_not_self_signed),
                cmocka_unit_test(test_snp_trustee_milan_vcek_report_verifies),
                cmocka_unit_test(
                        test_snp_gsg_debug_report_is_authentic_but_refused_by_production_policy),
                cmocka_unit_test(test_snp_vlek_report_verifies_at_capture_time_and_not_now),
                cmocka_unit_test(test_snp_report_requested_at_another_vmpl_is_refused),
                cmocka_unit_test(test_snp_report_whose_id_key_is_not_listed_is_refused),
                cmocka_unit_test(
                        test_snp_guest_policy_with_a_migration_agent_is_refused_unless_allowed),
                cmocka_unit_test(
                        test_snp_guest_policy_allowing_smt_is_refused_by_a_policy_forbidding_it),
                cmocka_unit_test(test_snp_negative_samples_are_refused),
                cmocka_unit_test(test_snp_every_bit_flip_in_the_signed_part_fails),
                cmocka_unit_test(test_snp_swapped_chains_and_wrong_arks_fail),
                cmocka_unit_test(test_snp_crl_stale_and_revocation),
                cmocka_unit_test(test_snp_ask_revoked_by_the_arks_crl_is_refused),
                cmocka_unit_test(test_snp_azure_hcl_report_embedded_snp_report_verifies),
                cmocka_unit_test(test_snp_parse_rejects_wrong_size_and_version),
                cmocka_unit_test(test_snp_simulator_round_trips_only_when_its_ark_is_trusted),
                cmocka_unit_test(
                        test_snp_vcek_named_by_the_ask_but_signed_by_another_key_is_refused),
                cmocka_unit_test(
                        test_snp_ask_named_by_the_ark_but_signed_by_another_key_is_refused),
                cmocka_unit_test(
                        test_snp_validly_signed_report_of_another_chip_or_signer_kind_is_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
