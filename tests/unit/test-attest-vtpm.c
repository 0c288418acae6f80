/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/x509.h>
#include <unistd.h>

#include "helpers/unit.h"
#include "helpers/vtpm.h"

#include "cloister/attest.h"
#include "cloister/base64.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/tpm-device.h"
#include "cloister/tpm-quote.h"

/* Issue qemu-vtpm evidence from a real swtpm, verify it, and tamper with it one way at a time:
 * each tamper must fail with its own named check. */

static Vtpm tpm_a, tpm_b;
static uint8_t d8[32], d8_other[32];

static int group_setup(void **state)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;

        if (vtpm_start(&tpm_a, true) < 0 || vtpm_start(&tpm_b, false) < 0)
                return -1;
        /* A known event sequence: PCR 8 gets one extend, recorded in a log built below. */
        crypto_sha256("cloister test event", 19, d8);
        crypto_sha256("something else", 14, d8_other);
        if (tpm_device_open(tpm_a.tcti, &t) < 0 || tpm_device_pcr_extend(t, 8, d8) < 0)
                return -1;
        return 0;
}

static int group_teardown(void **state)
{
        vtpm_stop(&tpm_a);
        vtpm_stop(&tpm_b);
        return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v, p[1] = (uint8_t) (v >> 8), p[2] = (uint8_t) (v >> 16),
        p[3] = (uint8_t) (v >> 24);
}

/* A crypto-agile event log (Spec ID event + one EV_IPL on PCR 8 with the given digest). */
static size_t make_log(const uint8_t digest[32], uint8_t *out)
{
        static const uint8_t spec[] = {
                'S',  'p', 'e', 'c', ' ', 'I', 'D', ' ', 'E', 'v',
                'e',  'n', 't', '0', '3', 0,   0,   0,   0,   0, /* platform class */
                0,    2,   0,   2, /* version 2.0, errata 0, uintn 2 */
                1,    0,   0,   0, /* one algorithm */
                0x0B, 0,   32,  0, /* SHA-256, 32 bytes */
                0,                 /* no vendor info */
        };
        size_t o = 0;

        memset(out, 0, 32);
        put32(out + 4, 0x3);
        put32(out + 28, sizeof(spec));
        o = 32;
        memcpy(out + o, spec, sizeof(spec));
        o += sizeof(spec);
        put32(out + o, 8), put32(out + o + 4, 0x0D), put32(out + o + 8, 1);
        o += 12;
        out[o++] = 0x0B, out[o++] = 0;
        memcpy(out + o, digest, 32);
        o += 32;
        put32(out + o, 4);
        memcpy(out + o + 4, "test", 4);
        return o + 8;
}

static void issue(const char *tcti, const uint8_t binding[32], bool with_log, bool with_ek,
                  Evidence **ret)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        VtpmIssueConfig cfg;
        char logpath[256];
        uint8_t log[512];
        Diag d;

        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        cfg.include_ek = with_ek;
        if (with_log) {
                size_t n = make_log(d8, log);
                (void) snprintf(logpath, sizeof(logpath), "%s/log.bin", test_tmpdir());
                (void) unlink(logpath);
                assert_int_equal(write_file_atomic(logpath, log, n, 0600, 0), 0);
                cfg.event_log = logpath;
        }
        diag_clear(&d);
        assert_int_equal(tpm_device_open(tcti, &t), 0);
        if (attest_vtpm_issue(t, &cfg, binding, ret, &d) < 0)
                fail_msg("issue: %s", d.message);
}

/* A policy pinning tpm_a's AK and expecting the PCRs it has now. */
static AttestPolicy *policy_for(const Evidence *e, AkTrust trust)
{
        AttestPolicy *p = calloc(1, sizeof(*p));
        TpmPublic ak;
        unsigned char *der = NULL;
        int n;

        assert_non_null(p);
        p->variant = ATTEST_VARIANT_QEMU_VTPM;
        p->ak_trust = trust;
        p->event_log = EVENT_LOG_IF_PRESENT;
        for (int i = 0; i < 16; i++) {
                p->pcrs[i].present = true;
                memcpy(p->pcrs[i].expected, e->tpm.pcrs[i], 32);
        }
        if (trust == AK_TRUST_PINNED) {
                assert_int_equal(
                        tpm_public_parse(e->tpm.ak_public.data, e->tpm.ak_public.size, &ak, NULL),
                        0);
                n = i2d_PUBKEY(ak.key, &der);
                assert_true(n > 0);
                assert_int_equal(blob_set(&p->ak_pinned[0], der, (size_t) n), 0);
                p->n_ak_pinned = 1;
                OPENSSL_free(der);
                tpm_public_done(&ak);
        } else if (trust == AK_TRUST_EK_CERT) {
                _cleanup_(freep) uint8_t *pem = NULL;
                size_t size;
                assert_int_equal(read_full_file(tpm_a.ca_cert, 1 << 20, &pem, &size), 0);
                assert_int_equal(blob_set(&p->ek_ca_roots, pem, size), 0);
        }
        return p;
}

static const uint8_t binding1[32] = { 0xb1 }, binding2[32] = { 0xb2 };

static int verify(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, Diag *d)
{
        AttestReport rep = {};
        int r;

        diag_clear(d);
        r = attest_verify(e, p, binding, 0, &rep, d);
        attest_report_done(&rep);
        return r;
}

static void test_attest_vtpm_issue_then_verify_passes(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        AttestReport rep = {};
        Diag d;

        issue(tpm_a.tcti, binding1, true, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        diag_clear(&d);
        if (attest_verify(e, p, binding1, 0, &rep, &d) != 0)
                fail_msg("verify: %s", d.message);
        /* every policy PCR is reported, plus the structural checks */
        assert_true(rep.n_checks >= 16 + 6);
        bool replayed = false;
        for (size_t i = 0; i < rep.n_checks; i++)
                if (strcmp(rep.checks[i].name, "event-log-replay") == 0 &&
                    rep.checks[i].status == CHECK_PASS)
                        replayed = true;
        assert_true(replayed);
        attest_report_done(&rep);
}

static void test_attest_vtpm_evidence_round_trips_through_the_document(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL, *back = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(freep) char *doc = NULL;
        size_t n;
        Diag d;

        issue(tpm_a.tcti, binding1, true, true, &e);
        assert_int_equal(evidence_serialize(e, &doc, &n), 0);
        diag_clear(&d);
        assert_int_equal(evidence_parse(doc, n, &back, &d), 0);
        p = policy_for(back, AK_TRUST_PINNED);
        assert_int_equal(verify(back, p, binding1, &d), 0);
        assert_int_equal(back->tpm.event_log.size, e->tpm.event_log.size);
        assert_int_equal(back->tpm.ek_certificate.size, e->tpm.ek_certificate.size);
}

static void test_attest_vtpm_wrong_binding_is_stale(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        /* Evidence from an earlier handshake (binding1) replayed against a new nonce. */
        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        assert_int_equal(verify(e, p, binding2, &d), -ESTALE);
        assert_string_equal(d.check, "binding");
}

static void test_attest_vtpm_changed_pcr_in_document_breaks_the_digest(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        e->tpm.pcrs[4][0] ^= 1;
        p->pcrs[4].expected[0] ^= 1; /* even if the policy agreed with the forged value */
        assert_int_equal(verify(e, p, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "pcr-digest");
}

static void test_attest_vtpm_quote_from_another_tpm_fails_pinned_ak(void **state)
{
        _cleanup_(evidence_freep) Evidence *a = NULL, *b = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &a);
        issue(tpm_b.tcti, binding1, false, false, &b);
        p = policy_for(a, AK_TRUST_PINNED);
        assert_int_equal(verify(b, p, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "ak-trust");
}

static void test_attest_vtpm_flipped_signature_byte_fails(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        e->tpm.signature.data[e->tpm.signature.size - 5] ^= 0x01;
        assert_int_equal(verify(e, p, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "quote-signature");
}

static void test_attest_vtpm_truncated_quote_fails_format(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        e->tpm.quote.size -= 3;
        assert_int_equal(verify(e, p, binding1, &d), -EBADMSG);
        assert_string_equal(d.check, "quote-format");
}

static void test_attest_vtpm_event_log_that_does_not_replay_fails(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        uint8_t log[512];
        size_t n;
        Diag d;

        issue(tpm_a.tcti, binding1, true, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        n = make_log(d8_other, log);
        assert_int_equal(blob_set(&e->tpm.event_log, log, n), 0);
        assert_int_equal(verify(e, p, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "event-log-replay");
        assert_int_equal(d.index, 8);
}

static void test_attest_vtpm_policy_pcr_mismatch_names_pcr_expected_and_actual(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        char want[65];
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        memset(p->pcrs[9].expected, 0xee, 32);
        assert_int_equal(verify(e, p, binding1, &d), -EPERM);
        assert_string_equal(d.check, "pcr");
        assert_int_equal(d.index, 9);
        hex_encode_buf(p->pcrs[9].expected, 32, want, sizeof(want));
        assert_string_equal(d.expected, want);
        hex_encode_buf(e->tpm.pcrs[9], 32, want, sizeof(want));
        assert_string_equal(d.actual, want);

        /* The same mismatch marked warnOnly passes, reported as a warning. */
        p->pcrs[9].warn_only = true;
        assert_int_equal(verify(e, p, binding1, &d), 0);
}

/* Measurement sets (an upgrade's policy): PCRs 9 and 11 move into two named sets, the old image
 * and the new; a node matching either passes and the report names the one it matched; a node
 * matching none fails with check "measurement-set", naming each set's first differing PCR. */
static void test_attest_vtpm_measurement_sets_pass_on_any_set_and_name_the_one_matched(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        AttestReport rep = {};
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        p->n_sets = 2;
        (void) snprintf(p->sets[0].name, sizeof(p->sets[0].name), "1.0");
        (void) snprintf(p->sets[1].name, sizeof(p->sets[1].name), "2.0");
        for (int i = 9; i <= 11; i += 2) {
                p->sets[0].pcrs[i] = p->pcrs[i];
                p->sets[1].pcrs[i] = p->pcrs[i];
                p->pcrs[i].present = false;
        }
        memset(p->sets[0].pcrs[11].expected, 0xaa, 32); /* the other image */

        diag_clear(&d);
        assert_int_equal(attest_verify(e, p, binding1, 0, &rep, &d), 0);
        assert_string_equal(rep.matched_set, "2.0");
        attest_report_done(&rep);

        /* The node's image first in the list: matched and named the same way. */
        memcpy(p->sets[0].pcrs[11].expected, p->sets[1].pcrs[11].expected, 32);
        memset(p->sets[1].pcrs[9].expected, 0xbb, 32);
        diag_clear(&d);
        assert_int_equal(attest_verify(e, p, binding1, 0, &rep, &d), 0);
        assert_string_equal(rep.matched_set, "1.0");
        attest_report_done(&rep);

        /* Neither: refused, each set's first difference named; nothing reported as matched. */
        memset(p->sets[0].pcrs[11].expected, 0xaa, 32);
        diag_clear(&d);
        assert_int_equal(attest_verify(e, p, binding1, 0, &rep, &d), -EPERM);
        assert_string_equal(d.check, "measurement-set");
        assert_int_equal(d.index, 11);
        assert_non_null(strstr(d.message, "'1.0': PCR 11 differs; '2.0': PCR 9 differs"));
        assert_string_equal(rep.matched_set, "");
        attest_report_done(&rep);

        /* A common PCR still decides for every set. */
        memcpy(p->sets[0].pcrs[11].expected, e->tpm.pcrs[11], 32);
        memset(p->pcrs[4].expected, 0xcc, 32);
        assert_int_equal(verify(e, p, binding1, &d), -EPERM);
        assert_string_equal(d.check, "pcr");
        assert_int_equal(d.index, 4);
}

/* A set's warnOnly PCR never decides which set matches; a PCR the quote lacks makes it miss. */
static void test_attest_vtpm_measurement_set_with_a_pcr_not_quoted_does_not_match(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        p->n_sets = 1;
        (void) snprintf(p->sets[0].name, sizeof(p->sets[0].name), "only");
        p->sets[0].pcrs[20].present = true; /* quotes cover 0-15 */
        assert_int_equal(verify(e, p, binding1, &d), -EPERM);
        assert_string_equal(d.check, "measurement-set");
        assert_non_null(strstr(d.message, "PCR 20 not quoted"));

        p->sets[0].pcrs[20].present = false;
        p->sets[0].pcrs[9].present = true;
        p->sets[0].pcrs[9].warn_only = true;
        memset(p->sets[0].pcrs[9].expected, 0xee, 32);
        p->pcrs[9].present = false;
        assert_int_equal(verify(e, p, binding1, &d), 0);
}

static void test_attest_vtpm_policy_pcr_missing_from_quote_fails(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        p->pcrs[20].present = true; /* quotes cover 0-15 */
        p->pcrs[20].warn_only = true;
        assert_int_equal(verify(e, p, binding1, &d), -EPERM);
        assert_int_equal(d.index, 20);
}

static void test_attest_vtpm_insecure_any_passes_with_warning(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        AttestReport rep = {};
        bool warned = false;
        Diag d;

        issue(tpm_b.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_INSECURE_ANY);
        assert_int_equal(attest_verify(e, p, binding1, 0, &rep, &d), 0);
        for (size_t i = 0; i < rep.n_checks; i++)
                if (strcmp(rep.checks[i].name, "ak-trust") == 0)
                        warned = rep.checks[i].status == CHECK_WARN &&
                                 strstr(rep.checks[i].detail, "INSECURE");
        assert_true(warned);
        attest_report_done(&rep);
}

static void test_attest_vtpm_ek_cert_mode_with_real_credential_activation(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(credential_challenge_freep) CredentialChallenge *c = NULL;
        _cleanup_(tpm_device_closep) TpmDevice *ta = NULL, *tb = NULL;
        _cleanup_(secret_freep) Secret *answer = NULL;
        Secret *wrong = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, true, &e);
        p = policy_for(e, AK_TRUST_EK_CERT);
        /* Chain and EK check pass; the AK still has to be proven to live in that TPM. */
        if (verify(e, p, binding1, &d) != 1)
                fail_msg("ek-cert: %s", d.message);

        diag_clear(&d);
        assert_int_equal(attest_credential_challenge_new(e, &c, &d), 0);
        assert_int_equal(tpm_device_open(tpm_a.tcti, &ta), 0);
        assert_int_equal(tpm_device_activate_credential(ta, c->id_object.data, c->id_object.size,
                                                        c->encrypted_secret.data,
                                                        c->encrypted_secret.size, &answer),
                         0);
        assert_int_equal(attest_credential_check(c, secret_data(answer), secret_size(answer), &d),
                         0);

        /* Another TPM cannot answer: its EK cannot unwrap the seed. */
        assert_int_equal(tpm_device_open(tpm_b.tcti, &tb), 0);
        assert_true(tpm_device_activate_credential(tb, c->id_object.data, c->id_object.size,
                                                   c->encrypted_secret.data,
                                                   c->encrypted_secret.size, &wrong) < 0);
        assert_null(wrong);
        /* A wrong answer is refused. */
        uint8_t bad[32] = {};
        assert_int_equal(attest_credential_check(c, bad, sizeof(bad), &d), -EKEYREJECTED);
}

static void test_attest_vtpm_ek_cert_from_untrusted_ca_fails(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(freep) uint8_t *pem = NULL;
        size_t size;
        Diag d;

        issue(tpm_a.tcti, binding1, false, true, &e);
        p = policy_for(e, AK_TRUST_EK_CERT);
        /* Trust some other CA: the real AMD Milan ARK. */
        assert_int_equal(
                read_full_file(testdata_path("snp/roots/ask_ark_milan.pem"), 1 << 20, &pem, &size),
                0);
        assert_int_equal(blob_set(&p->ek_ca_roots, pem, size), 0);
        assert_int_equal(verify(e, p, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "ek-certificate");
}

static void test_attest_vtpm_ek_cert_with_another_tpms_ek_public_is_refused(void **state)
{
        /* Credential activation encrypts to the EK public in the evidence: it must be the
         * certified key, or another (uncertified) TPM would activate and its AK pass. tpm_a's
         * evidence and EK certificate, tpm_b's EK public. */
        _cleanup_(evidence_freep) Evidence *e = NULL, *other = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, true, &e);
        issue(tpm_b.tcti, binding1, false, true, &other);
        p = policy_for(e, AK_TRUST_EK_CERT);
        assert_int_equal(verify(e, p, binding1, &d), 1); /* activation pending: the control */
        assert_int_equal(
                blob_set(&e->tpm.ek_public, other->tpm.ek_public.data, other->tpm.ek_public.size),
                0);
        assert_int_equal(verify(e, p, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "ek-public");
}

static void
test_attest_vtpm_evidence_listing_a_pcr_the_quote_does_not_cover_is_refused(void **state)
{
        /* PCR 20 added to the evidence with a made-up value, the quote (over 0-15) unchanged: its
         * signed digest still matches the quoted PCRs, so only the selection check stands between
         * the policy and an unquoted value. */
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        e->tpm.pcr_mask |= 1U << 20;
        memset(e->tpm.pcrs[20], 0x20, 32);
        p->pcrs[20].present = true;
        memset(p->pcrs[20].expected, 0x20, 32);
        assert_int_equal(verify(e, p, binding1, &d), -EBADMSG);
        assert_string_equal(d.check, "pcr-selection");
}

static void
test_attest_vtpm_policy_requiring_an_event_log_refuses_evidence_without_one(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        assert_int_equal(verify(e, p, binding1, &d), 0);
        p->event_log = EVENT_LOG_REQUIRED;
        assert_int_equal(verify(e, p, binding1, &d), -EPERM);
        assert_string_equal(d.check, "event-log");
}

static void test_attest_vtpm_evidence_under_a_policy_of_another_variant_is_refused(void **state)
{
        /* Genuine qemu-vtpm evidence, a policy that matches it in every field but the variant. */
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, false, false, &e);
        p = policy_for(e, AK_TRUST_PINNED);
        p->variant = ATTEST_VARIANT_AZURE_SEV_SNP;
        assert_int_equal(verify(e, p, binding1, &d), -EPERM);
        assert_string_equal(d.check, "variant");
        assert_string_equal(d.expected, "azure-sev-snp");
        assert_string_equal(d.actual, "qemu-vtpm");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_attest_vtpm_issue_then_verify_passes),
                cmocka_unit_test(test_attest_vtpm_evidence_round_trips_through_the_document),
                cmocka_unit_test(test_attest_vtpm_wrong_binding_is_stale),
                cmocka_unit_test(test_attest_vtpm_changed_pcr_in_document_breaks_the_digest),
                cmocka_unit_test(test_attest_vtpm_quote_from_another_tpm_fails_pinned_ak),
                cmocka_unit_test(test_attest_vtpm_flipped_signature_byte_fails),
                cmocka_unit_test(test_attest_vtpm_truncated_quote_fails_format),
                cmocka_unit_test(test_attest_vtpm_event_log_that_does_not_replay_fails),
                cmocka_unit_test(
                        test_attest_vtpm_policy_pcr_mismatch_names_pcr_expected_and_actual),
                cmocka_unit_test(test_attest_vtpm_policy_pcr_missing_from_quote_fails),
                cmocka_unit_test(
                        test_attest_vtpm_measurement_sets_pass_on_any_set_and_name_the_one_matched),
                cmocka_unit_test(
                        test_attest_vtpm_measurement_set_with_a_pcr_not_quoted_does_not_match),
                cmocka_unit_test(test_attest_vtpm_insecure_any_passes_with_warning),
                cmocka_unit_test(test_attest_vtpm_ek_cert_mode_with_real_credential_activation),
                cmocka_unit_test(test_attest_vtpm_ek_cert_from_untrusted_ca_fails),
                cmocka_unit_test(test_attest_vtpm_ek_cert_with_another_tpms_ek_public_is_refused),
                cmocka_unit_test(
                        test_attest_vtpm_evidence_listing_a_pcr_the_quote_does_not_cover_is_refused),
                cmocka_unit_test(
                        test_attest_vtpm_policy_requiring_an_event_log_refuses_evidence_without_one),
                cmocka_unit_test(
                        test_attest_vtpm_evidence_under_a_policy_of_another_variant_is_refused),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
