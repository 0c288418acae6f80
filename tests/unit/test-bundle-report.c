/* SPDX-License-Identifier: Apache-2.0 */
/* The record of a report bundle (lib/bundle/bundle-report.c, docs/bundle.md "Report bundles"):
 * a record as verify-report writes it is taken; one that claims someone chose REPORT_DATA, lists
 * entries that are not there or hides ones that are, names a policy it does not hold, or states a
 * verdict its checks contradict is refused with -EBADMSG, naming what no longer holds, and leaves
 * the output untouched. */
#include <stdbool.h>

#include "helpers/unit.h"

#include "cloister/bundle-report.h"
#include "cloister/json.h"

#define RD                                                                                         \
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"                         \
        "00000000000000000000000000000000000000000000000000000000000000ff"

/* A record as verify-report --type snp writes it, with fmt's %s the binding's chosenBy. */
static const char record_fmt[] =
        "{\"kind\":\"report\",\"type\":\"snp\",\"recordedBy\":\"cloister attestation "
        "verify-report\",\"time\":\"2025-06-01T00:00:00Z\",\"timeEpoch\":1748736000,"
        "\"binding\":{\"reportData\":\"" RD "\",\"chosenBy\":\"%s\"},\"policy\":%s,"
        "\"inputs\":[{\"entry\":\"snp/report\",\"origin\":\"r.bin\"},{\"entry\":\"snp/vcek\","
        "\"origin\":\"v.der\"},{\"entry\":\"snp/chain\",\"origin\":\"c.pem\"}%s],"
        "\"verdict\":\"%s\",\"checks\":[{\"name\":\"snp-authenticity\",\"result\":\"%s\","
        "\"expected\":null,\"actual\":null,\"detail\":\"signature\"}]}";

/* The record last checked: a BundleReportRecord's strings are owned by it. */
static json_t *held;

static int release(void **state)
{
        (void) state;
        json_decref(held);
        held = NULL;
        return 0;
}

static Bundle *entries(bool policy, bool extra)
{
        Bundle *b = bundle_new();

        assert_non_null(b);
        /* (its bytes are the caller's business: the record comes in parsed) */
        assert_int_equal(bundle_add(b, "bundle.json", "{}", 2), 0);
        assert_int_equal(bundle_add(b, "snp/report", "R", 1), 0);
        assert_int_equal(bundle_add(b, "snp/vcek", "V", 1), 0);
        assert_int_equal(bundle_add(b, "snp/chain", "C", 1), 0);
        if (policy)
                assert_int_equal(bundle_add(b, "policy.json", "{}", 2), 0);
        if (extra)
                assert_int_equal(bundle_add(b, "nodes/0/nonce", "N", 1), 0);
        return b;
}

/* bundle_report_record_check() of the record with these parts; *ret poisoned to see writes. */
static int check(Bundle *b, const char *chosen_by, const char *policy, const char *more_inputs,
                 const char *verdict, const char *result, BundleReportRecord *ret, Diag *d)
{
        char text[4096];
        json_t *j = NULL;
        int r;

        (void) snprintf(text, sizeof(text), record_fmt, chosen_by, policy, more_inputs, verdict,
                        result);
        assert_int_equal(json_parse_buffer(text, strlen(text), "bundle.json", &j, d), 0);
        assert_true(bundle_report_is(j));
        memset(ret, 0xAA, sizeof(*ret));
        diag_clear(d);
        r = bundle_report_record_check(b, j, ret, d);
        json_decref(held);
        held = j;
        return r;
}

static bool untouched(const BundleReportRecord *rec)
{
        const uint8_t *p = (const uint8_t *) rec;
        for (size_t i = 0; i < sizeof(*rec); i++)
                if (p[i] != 0xAA)
                        return false;
        return true;
}

static void test_bundle_report_record_as_written_is_taken(void **state)
{
        Bundle *b = entries(false, false);
        BundleReportRecord rec;
        Diag d;

        (void) state;
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null", "", "pass", "pass", &rec, &d),
                         0);
        assert_string_equal(rec.type, "snp");
        assert_int_equal(rec.at, 1748736000);
        assert_string_equal(rec.at_text, "2025-06-01T00:00:00Z");
        assert_int_equal(rec.report_data[0], 0x00);
        assert_int_equal(rec.report_data[1], 0x11);
        assert_int_equal(rec.report_data[63], 0xff);
        assert_null(rec.policy);
        assert_true(rec.pass);
        bundle_free(b);
}

static void test_bundle_report_record_refuses_any_claim_of_who_chose_report_data(void **state)
{
        Bundle *b = entries(false, false);
        BundleReportRecord rec;
        Diag d;

        (void) state;
        assert_int_equal(check(b, "the recording CLI", "null", "", "pass", "pass", &rec, &d),
                         -EBADMSG);
        assert_string_equal(d.check, "bundle-record");
        assert_non_null(strstr(d.message, "binding.chosenBy"));
        assert_true(untouched(&rec));
        bundle_free(b);
}

static void test_bundle_report_record_refuses_an_entry_it_does_not_list(void **state)
{
        Bundle *b = entries(false, true); /* a nonce beside the report */
        BundleReportRecord rec;
        Diag d;

        (void) state;
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null", "", "pass", "pass", &rec, &d),
                         -EBADMSG);
        assert_non_null(strstr(d.message, "entries its inputs do not list"));
        assert_true(untouched(&rec));
        /* Nor may it list one a report bundle does not hold. */
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null",
                               ",{\"entry\":\"nodes/0/nonce\",\"origin\":\"x\"}", "pass", "pass",
                               &rec, &d),
                         -EBADMSG);
        assert_non_null(strstr(d.message, "'nodes/0/nonce' is not one this type"));
        bundle_free(b);
}

static void test_bundle_report_record_refuses_a_listed_entry_that_is_missing(void **state)
{
        Bundle *b = entries(false, false);
        BundleReportRecord rec;
        Diag d;

        (void) state;
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null",
                               ",{\"entry\":\"snp/crl\",\"origin\":\"crl.pem\"}", "pass", "pass",
                               &rec, &d),
                         -EBADMSG);
        assert_non_null(strstr(d.message, "'snp/crl' is not in the bundle"));
        bundle_free(b);
}

static void test_bundle_report_record_names_its_policy_exactly_when_it_holds_it(void **state)
{
        Bundle *with = entries(true, false), *without = entries(false, false);
        const char *pol = ",{\"entry\":\"policy.json\",\"origin\":\"p.json\"}";
        BundleReportRecord rec;
        Diag d;

        (void) state;
        assert_int_equal(
                check(with, BUNDLE_REPORT_CHOSEN_BY, "\"p.json\"", pol, "pass", "pass", &rec, &d),
                0);
        assert_string_equal(rec.policy, "p.json");
        assert_int_equal(
                check(without, BUNDLE_REPORT_CHOSEN_BY, "\"p.json\"", "", "pass", "pass", &rec, &d),
                -EBADMSG);
        assert_non_null(strstr(d.message, "named but not in the bundle"));
        assert_int_equal(
                check(with, BUNDLE_REPORT_CHOSEN_BY, "null", pol, "pass", "pass", &rec, &d),
                -EBADMSG);
        assert_non_null(strstr(d.message, "in the bundle but not named"));
        bundle_free(with);
        bundle_free(without);
}

static void test_bundle_report_record_refuses_a_verdict_its_checks_contradict(void **state)
{
        Bundle *b = entries(false, false);
        BundleReportRecord rec;
        Diag d;

        (void) state;
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null", "", "pass", "fail", &rec, &d),
                         -EBADMSG);
        assert_non_null(strstr(d.message, "verdict pass is not what its checks say"));
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null", "", "fail", "pass", &rec, &d),
                         -EBADMSG);
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null", "", "fail", "fail", &rec, &d),
                         0);
        assert_false(rec.pass);
        assert_int_equal(check(b, BUNDLE_REPORT_CHOSEN_BY, "null", "", "pass", "skip", &rec, &d),
                         -EBADMSG);
        bundle_free(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_bundle_report_record_as_written_is_taken, release),
                cmocka_unit_test(
                        test_bundle_report_record_refuses_any_claim_of_who_chose_report_data),
                cmocka_unit_test_teardown(
                        test_bundle_report_record_refuses_an_entry_it_does_not_list, release),
                cmocka_unit_test_teardown(
                        test_bundle_report_record_refuses_a_listed_entry_that_is_missing, release),
                cmocka_unit_test(
                        test_bundle_report_record_names_its_policy_exactly_when_it_holds_it),
                cmocka_unit_test_teardown(
                        test_bundle_report_record_refuses_a_verdict_its_checks_contradict, release),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
