/* SPDX-License-Identifier: Apache-2.0 */
/* The tdx variant of the evidence document and policy: real quotes (and Intel's collateral) from
 * ../shared/testdata/tdx through attest_verify(), the path `cloister attestation verify` takes. */
#include <time.h>

#include "helpers/unit.h"

#include "cloister/attest.h"
#include "cloister/evidence.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tdx_evidence_of_a_gce_quote_verifies_with_its_binding),
                cmocka_unit_test(test_tdx_evidence_with_collateral_judges_the_tcb),
                cmocka_unit_test(test_tdx_policies_and_evidence_are_strict),
                cmocka_unit_test(test_tdx_issue_outside_a_td_says_so),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
