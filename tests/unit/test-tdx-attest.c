/* SPDX-License-Identifier: Apache-2.0 */
/* The tdx variant of the evidence document and policy: real quotes (and Intel's collateral) from
 * ../shared/testdata/tdx through attest_verify(), the path `cloister attestation verify` takes. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <time.h>

#include "helpers/unit.h"

#include "cloister/atls.h"
#include "cloister/attest-atls.h"
#include "cloister/attest.h"
#include "cloister/evidence.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/tdx-sim.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"

static time_t utc(const char *s)
{
        time_t t;
        assert_int_equal(timestamp_parse_utc(s, &t), 0);
        return t;
}

static void load_blob(const char *rel, Blob *b)
{
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &b->data, &b->size), 0);
}

/* A tdx evidence document for a quote, with the collateral folder's files if dir is given,
 * serialised and parsed back (the wire form). */
static Evidence *evidence_for(const char *quote, const char *dir)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_TDX);
        _cleanup_(freep) char *text = NULL;
        Evidence *back = NULL;
        size_t n;
        Diag d;

        load_blob(quote, &e->tdx.quote);
        if (dir) {
                static const char *const files[] = {
                        "tcb_info.json",    "tcb_info_issuer_chain.pem",
                        "qe_identity.json", "qe_identity_issuer_chain.pem",
                        "pck_crl.der",      "root_ca_crl.der",
                };
                Blob *blobs[] = { &e->tdx.tcb_info,    &e->tdx.tcb_info_chain,
                                  &e->tdx.qe_identity, &e->tdx.qe_identity_chain,
                                  &e->tdx.pck_crl,     &e->tdx.root_crl };
                char path[256];
                for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                        (void) snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                        load_blob(path, blobs[i]);
                }
                e->tdx.has_collateral = true;
        }
        e->has_tdx = true;
        assert_int_equal(evidence_serialize(e, &text, &n), 0);
        if (evidence_parse(text, n, &back, &d) < 0)
                fail_msg("%s", d.message);
        assert_true(back->has_tdx);
        assert_int_equal(back->tdx.quote.size, e->tdx.quote.size);
        assert_memory_equal(back->tdx.quote.data, e->tdx.quote.data, e->tdx.quote.size);
        assert_int_equal(back->tdx.has_collateral, dir != NULL);
        if (dir)
                assert_memory_equal(back->tdx.tcb_info.data, e->tdx.tcb_info.data,
                                    e->tdx.tcb_info.size);
        return back;
}

static AttestPolicy *policy(const char *tdx_json, int expect, Diag *d)
{
        _cleanup_(freep) char *doc = NULL;
        AttestPolicy *p = NULL;

        assert_true(asprintf(&doc, "{\"version\":1,\"variant\":\"tdx\",\"tdx\":%s}", tdx_json) > 0);
        assert_int_equal(attest_policy_parse(doc, strlen(doc), "policy.json", &p, d), expect);
        return p;
}

static const char gce_mrtd[] = "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba"
                               "41394c7717cb2735396c1d04231f94a";
static const char dcap_mrtd[] = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407d"
                                "e03ae6dc5f87f27428b2538873118b7";

static void test_tdx_evidence_of_a_gce_quote_verifies_with_its_binding(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_for("tdx/gce-cos113/quote.dat", NULL);
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(freep) char *json = NULL;
        uint8_t binding[ATTEST_BINDING_SIZE] = {}; /* the GCE quote's REPORTDATA is zero */
        AttestReport rep = {};
        Diag d;

        assert_true(asprintf(&json, "{\"mrTd\":[\"%s\"],\"requireCollateral\":false}", gce_mrtd) >
                    0);
        p = policy(json, 0, &d);
        if (attest_verify(e, p, binding, utc("2025-02-20T00:00:00Z"), &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        attest_report_done(&rep);
        /* Another binding: a replayed or relayed quote. */
        binding[0] = 1;
        assert_int_equal(attest_verify(e, p, binding, utc("2025-02-20T00:00:00Z"), &rep, &d),
                         -ESTALE);
        assert_string_equal(d.check, "tdx-report-data");
        attest_report_done(&rep);
        /* Another MRTD. */
        attest_policy_free(p);
        {
                char other[97];
                memcpy(other, gce_mrtd, sizeof(other));
                other[0] = '0';
                free(json);
                assert_true(asprintf(&json, "{\"mrTd\":[\"%s\"],\"requireCollateral\":false}",
                                     other) > 0);
        }
        p = policy(json, 0, &d);
        binding[0] = 0;
        assert_int_equal(attest_verify(e, p, binding, utc("2025-02-20T00:00:00Z"), &rep, &d),
                         -EPERM);
        assert_string_equal(d.check, "tdx-mrtd");
        attest_report_done(&rep);
}

static void test_tdx_evidence_event_log_must_replay_to_the_quotes_rtmrs(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_for("tdx/gce-cos113/quote.dat", NULL);
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(freep) char *json = NULL, *text = NULL;
        _cleanup_(evidence_freep) Evidence *back = NULL;
        uint8_t binding[ATTEST_BINDING_SIZE] = {};
        AttestReport rep = {};
        size_t n, first;
        Diag d;

        load_blob("tdx/gce-cos113/ccel_data.dat", &e->tdx.event_log);
        load_blob("tdx/gce-cos113/ccel_table.dat", &e->tdx.ccel_table);
        assert_int_equal(evidence_serialize(e, &text, &n), 0);
        assert_int_equal(evidence_parse(text, n, &back, &d), 0);
        assert_int_equal(back->tdx.event_log.size, e->tdx.event_log.size);
        assert_true(asprintf(&json, "{\"mrTd\":[\"%s\"],\"requireCollateral\":false}", gce_mrtd) >
                    0);
        p = policy(json, 0, &d);
        if (attest_verify(back, p, binding, utc("2025-02-20T00:00:00Z"), &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        attest_report_done(&rep);
        /* One digest byte of the first event after the Spec ID record (MR index 1 = RTMR0). */
        first = 32 + (back->tdx.event_log.data[28] | (size_t) back->tdx.event_log.data[29] << 8);
        back->tdx.event_log.data[first + 12 + 2] ^= 1;
        assert_int_equal(attest_verify(back, p, binding, utc("2025-02-20T00:00:00Z"), &rep, &d),
                         -EPERM);
        assert_string_equal(d.check, "tdx-rtmr-replay");
        assert_int_equal(d.index, 0);
        attest_report_done(&rep);
}

static void test_tdx_evidence_with_collateral_judges_the_tcb(void **state)
{
        _cleanup_(evidence_freep) Evidence *up = evidence_for(
                "tdx/dcapqvl-b0c06f-uptodate/quote.bin", "tdx/dcapqvl-b0c06f-uptodate");
        _cleanup_(evidence_freep) Evidence *old =
                evidence_for("tdx/zkdcap-00806f05/quote.bin", "tdx/zkdcap-00806f05");
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL, *gce = NULL;
        _cleanup_(freep) char *json = NULL;
        AttestReport rep = {};
        Diag d;

        assert_true(asprintf(&json, "{\"mrTd\":[\"%s\"]}", dcap_mrtd) > 0);
        p = policy(json, 0, &d);
        /* No binding: the freshness check is reported as skipped, the rest passes. */
        if (attest_verify(up, p, NULL, utc("2025-07-19T10:00:34Z"), &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        attest_report_done(&rep);
        assert_int_equal(attest_verify(up, p, NULL, utc("2025-08-01T00:00:00Z"), &rep, &d),
                         -ESTALE);
        assert_string_equal(d.check, "tdx-collateral-stale");
        attest_report_done(&rep);
        /* The OutOfDate platform fails the default accepted statuses (and the MRTD). */
        assert_int_equal(attest_verify(old, p, NULL, utc("2025-02-20T10:55:27Z"), &rep, &d),
                         -EPERM);
        attest_report_done(&rep);
}

static void test_tdx_policies_and_evidence_are_strict(void **state)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        static const char snp_with_tdx[] =
                "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"microcode\":1}},"
                "\"tdx\":{}}";
        static const char tdx_in_snp_evidence[] =
                "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"report\":\"AA==\"},"
                "\"tdx\":{\"quote\":\"AA==\"}}";
        static const char tdx_without_quote[] = "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{}}";
        static const char table_without_log[] = "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{"
                                                "\"quote\":\"AA==\",\"ccelTable\":\"AA==\"}}";
        static const char tdx_partial_collateral[] =
                "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{\"quote\":\"AA==\","
                "\"collateral\":{\"tcbInfo\":\"AA==\"}}}";
        Evidence *e = NULL;
        Diag d;

        /* A tdx policy that pins no software is refused. */
        p = policy("{}", -EPERM, &d);
        assert_string_equal(d.check, "policy-permissive");
        p = policy("{\"rtmr1\":[\"00\"]}", -EBADMSG, &d);
        assert_int_equal(attest_policy_parse(snp_with_tdx, strlen(snp_with_tdx), "p.json", &p, &d),
                         -EBADMSG);
        assert_int_equal(evidence_parse(tdx_in_snp_evidence, strlen(tdx_in_snp_evidence), &e, &d),
                         -EBADMSG);
        assert_int_equal(evidence_parse(tdx_without_quote, strlen(tdx_without_quote), &e, &d),
                         -EBADMSG);
        assert_int_equal(
                evidence_parse(tdx_partial_collateral, strlen(tdx_partial_collateral), &e, &d),
                -EBADMSG);
        assert_int_equal(evidence_parse(table_without_log, strlen(table_without_log), &e, &d),
                         -EBADMSG);
        assert_null(e);
}

static void test_tdx_issue_outside_a_td_says_so(void **state)
{
        uint8_t binding[ATTEST_BINDING_SIZE] = {};
        Evidence *e = NULL;
        Diag d;

        diag_clear(&d);
        /* This machine is no TD: a clear error, never a fake quote. */
        assert_true(attest_tdx_issue(binding, &e, &d) < 0);
        assert_null(e);
        assert_string_equal(d.check, "tdx-guest");
        assert_non_null(strstr(d.message, "TDX guest") ?: strstr(d.message, "not a TD")
                                                           ?: strstr(d.message, "configfs-tsm"));
}

/* ---- sim-tdx ------------------------------------------------------------------------------- */

static TdxSimulator *simulator(void)
{
        TdxSimulator *sim = NULL;
        TdxSimConfig c;

        tdx_sim_config_defaults(&c);
        memset(c.mr_td, 0x42, 48);
        memset(c.rtmr[1], 0x17, 48);
        assert_int_equal(tdx_sim_new(&c, &sim), 0);
        return sim;
}

static AttestPolicy *sim_policy(TdxSimulator *sim, const char *variant, int expect, Diag *d)
{
        _cleanup_(freep) char *pem = NULL, *doc = NULL;
        json_t *j;
        AttestPolicy *p = NULL;
        char mrtd[97];

        memset(mrtd, '4', 96), mrtd[96] = 0;
        for (int i = 1; i < 96; i += 2)
                mrtd[i] = '2';
        assert_int_equal(tdx_sim_root_pem(sim, &pem), 0);
        j = json_pack("{s:i,s:s,s:{s:[s],s:s}}", "version", 1, "variant", variant, "tdx", "mrTd",
                      mrtd, "trustedRoot", pem);
        assert_int_equal(json_dump_compact(j, &doc), 0);
        json_decref(j);
        assert_int_equal(attest_policy_parse(doc, strlen(doc), "policy.json", &p, d), expect);
        return p;
}

static void test_sim_tdx_evidence_verifies_only_under_its_own_root(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(), *other = simulator();
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL, *wrong = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL, *back = NULL;
        _cleanup_(freep) char *text = NULL;
        uint8_t binding[ATTEST_BINDING_SIZE];
        AttestReport rep = {};
        size_t n;
        Diag d;

        memset(binding, 0xb1, sizeof(binding));
        p = sim_policy(sim, "sim-tdx", 0, &d);
        wrong = sim_policy(other, "sim-tdx", 0, &d);
        assert_int_equal(attest_sim_tdx_issue(sim, binding, &e, &d), 0);
        assert_int_equal(evidence_serialize(e, &text, &n), 0);
        assert_int_equal(evidence_parse(text, n, &back, &d), 0);
        assert_int_equal(back->variant, ATTEST_VARIANT_SIM_TDX);
        /* The whole production path, collateral and TCB evaluation included. */
        if (attest_verify(back, p, binding, 0, &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        attest_report_done(&rep);
        binding[0] ^= 1;
        assert_int_equal(attest_verify(back, p, binding, 0, &rep, &d), -ESTALE);
        assert_string_equal(d.check, "tdx-report-data");
        attest_report_done(&rep);
        binding[0] ^= 1;
        /* Another simulator's root. */
        assert_int_equal(attest_verify(back, wrong, binding, 0, &rep, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-pck-root");
        attest_report_done(&rep);
        /* Relabelled as real TDX evidence: Intel's root refuses it. */
        {
                _cleanup_(attest_policy_freep) AttestPolicy *tdx = NULL;
                char mrtd[97];
                _cleanup_(freep) char *doc = NULL;
                memset(mrtd, '4', 96), mrtd[96] = 0;
                for (int i = 1; i < 96; i += 2)
                        mrtd[i] = '2';
                assert_true(asprintf(&doc, "{\"mrTd\":[\"%s\"]}", mrtd) > 0);
                tdx = policy(doc, 0, &d);
                back->variant = ATTEST_VARIANT_TDX;
                assert_int_equal(attest_verify(back, tdx, binding, 0, &rep, &d), -EKEYREJECTED);
                assert_string_equal(d.check, "tdx-pck-root");
                attest_report_done(&rep);
        }
}

static void test_sim_tdx_and_tdx_policies_name_their_roots_as_required(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator();
        AttestPolicy *p;
        Diag d;

        /* tdx never trusts another root; sim-tdx must name one. */
        p = sim_policy(sim, "tdx", -EBADMSG, &d);
        assert_null(p);
        p = policy("{\"mrTd\":[\"424242424242424242424242424242424242424242424242424242424242424242"
                   "424242424242424242424242424242\"]}",
                   0, &d);
        attest_policy_free(p);
        {
                static const char doc[] =
                        "{\"version\":1,\"variant\":\"sim-tdx\",\"tdx\":{\"mrTd\":"
                        "[\"424242424242424242424242424242424242424242424242424242"
                        "424242424242424242424242424242424242424242\"]}}";
                p = NULL;
                assert_int_equal(attest_policy_parse(doc, strlen(doc), "p.json", &p, &d), -EBADMSG);
                assert_non_null(strstr(d.message, "trustedRoot"));
        }
}

/* Drives both ends of a bio pair until both finished (0) or either failed (-1). */
static int handshake(SSL *c, SSL *s)
{
        bool cd = false, sd = false, cf = false, sf = false;

        for (int i = 0; i < 64 && !(cd && sd) && !cf && !sf; i++) {
                int r;

                if (!cd) {
                        r = SSL_do_handshake(c);
                        if (r == 1)
                                cd = true;
                        else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                                cf = true;
                }
                if (!sd) {
                        r = SSL_do_handshake(s);
                        if (r == 1)
                                sd = true;
                        else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                                sf = true;
                }
        }
        return cd && sd ? 0 : -1;
}

static void test_sim_tdx_atls_handshake_passes_only_with_the_simulators_root(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(), *other = simulator();
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL, *wrong = NULL;
        AtlsContext *s = NULL, *c = NULL;
        PolicyVerifier pv, wv;
        SimTdxAttester sa = { sim };
        AtlsAttester a = sim_tdx_attester(&sa);
        AtlsVerifier v;
        Diag d;

        pol = sim_policy(sim, "sim-tdx", 0, &d);
        wrong = sim_policy(other, "sim-tdx", 0, &d);
        pv = (PolicyVerifier){ .policy = pol };
        wv = (PolicyVerifier){ .policy = wrong };
        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &s), 0);
        for (int round = 0; round < 2; round++) {
                SSL *cs, *ss;
                BIO *b1, *b2;

                v = policy_verifier(round == 0 ? &pv : &wv);
                assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
                cs = SSL_new(atls_context_ssl_ctx(c));
                ss = SSL_new(atls_context_ssl_ctx(s));
                /* The evidence (quote and collateral) makes a certificate larger than a bio pair's
                 * default 17 KiB buffer. */
                assert_int_equal(BIO_new_bio_pair(&b1, 1 << 18, &b2, 1 << 18), 1);
                SSL_set_bio(cs, b1, b1);
                SSL_set_bio(ss, b2, b2);
                SSL_set_connect_state(cs);
                SSL_set_accept_state(ss);
                if (round == 0) {
                        if (handshake(cs, ss) < 0)
                                fail_msg("handshake: %s [%s]",
                                         atls_peer_failure(cs) ? atls_peer_failure(cs)->message
                                                               : "?",
                                         atls_peer_failure(cs) ? atls_peer_failure(cs)->check
                                                               : "?");
                        assert_true(atls_peer_verified(cs));
                } else {
                        assert_int_equal(handshake(cs, ss), -1);
                        assert_string_equal(atls_peer_failure(cs)->check, "tdx-pck-root");
                }
                SSL_free(cs);
                SSL_free(ss);
                ERR_clear_error();
                c = atls_context_free(c);
        }
        atls_context_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tdx_evidence_of_a_gce_quote_verifies_with_its_binding),
                cmocka_unit_test(test_tdx_evidence_event_log_must_replay_to_the_quotes_rtmrs),
                cmocka_unit_test(test_tdx_evidence_with_collateral_judges_the_tcb),
                cmocka_unit_test(test_tdx_policies_and_evidence_are_strict),
                cmocka_unit_test(test_tdx_issue_outside_a_td_says_so),
                cmocka_unit_test(test_sim_tdx_evidence_verifies_only_under_its_own_root),
                cmocka_unit_test(test_sim_tdx_and_tdx_policies_name_their_roots_as_required),
                cmocka_unit_test(test_sim_tdx_atls_handshake_passes_only_with_the_simulators_root),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
