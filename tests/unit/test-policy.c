/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/attest.h"

static int parse(const char *text, AttestPolicy **p, Diag *d)
{
        diag_clear(d);
        return attest_policy_parse(text, strlen(text), "p.json", p, d);
}

static void test_policy_vtpm_pinned_parses_measurements_and_modes(void **state)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        assert_int_equal(parse("{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{\"4\":"
                               "{\"expected\":\""
                               "0101010101010101010101010101010101010101010101"
                               "010101010101010101\",\"warnOnly\":true},\"9\":{\"expected\":\""
                               "0909090909090909090909090909090909090909090909"
                               "090909090909090909\"}},\"akTrust\":{\"mode\":"
                               "\"pinned\",\"akPublic\":\"AAAA\"},\"eventLog\":\"required\"}",
                               &p, &d),
                         0);
        assert_true(p->pcrs[4].present);
        assert_true(p->pcrs[4].warn_only);
        assert_int_equal(p->pcrs[4].expected[31], 1);
        assert_false(p->pcrs[5].present);
        assert_true(p->pcrs[9].present);
        assert_false(p->pcrs[9].warn_only);
        assert_int_equal(p->ak_trust, AK_TRUST_PINNED);
        assert_int_equal(p->event_log, EVENT_LOG_REQUIRED);
}

static void test_policy_refuses_ambiguous_or_unknown_settings(void **state)
{
        static const struct {
                const char *json, *message;
        } cases[] = {
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{}}",
                  ".akTrust: required key is missing" },
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{},\"akTrust\":"
                  "{\"mode\":\"trust-me\"}}",
                  "is not one of" },
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{},\"akTrust\":"
                  "{\"mode\":\"pinned\",\"akPublic\":\"AAAA\",\"caRoots\":\"x\"}}",
                  "only for mode ek-cert" },
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{\"24\":{}},"
                  "\"akTrust\":{\"mode\":\"insecure-any\"}}",
                  "not a PCR index" },
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{\"1\":{\"expected\":"
                  "\"00\"}},\"akTrust\":{\"mode\":\"insecure-any\"}}",
                  "expected 64 hex digits" },
                { "{\"version\":1,\"variant\":\"sim-snp\",\"snp\":{}}",
                  "must name the simulator's ARK" },
                { "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"ucode\":1}}}",
                  ".snp.minTcb.ucode: unknown key" },
                { "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"vmpl\":4}}",
                  "outside [-1, 3]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AttestPolicy *p = NULL;
                Diag d;

                assert_int_equal(parse(cases[i].json, &p, &d), -EBADMSG);
                assert_null(p);
                if (!strstr(d.message, cases[i].message))
                        fail_msg("case %zu: '%s' lacks '%s'", i, d.message, cases[i].message);
        }
}

#define PCR_HEX "0404040404040404040404040404040404040404040404040404040404040404"

/* Refuse by default: a policy that enforces nothing about what the node runs (an SNP policy
 * with neither a launch measurement nor a minimum TCB, a TPM policy whose every measurement is
 * warn-only) is refused at load with -EPERM, naming what is missing. */
static void test_policy_refuses_policies_that_pin_nothing(void **state)
{
        static const struct {
                const char *json, *message;
        } cases[] = {
                { "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{}}",
                  "pins neither a launch measurement" },
                { "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"bootloader\":0},"
                  "\"measurements\":[]}}",
                  "pins neither a launch measurement" },
                { "{\"version\":1,\"variant\":\"sim-snp\",\"snp\":{\"trustedArks\":\"x\"}}",
                  "pins neither a launch measurement" },
                { "{\"version\":1,\"variant\":\"azure-sev-snp\",\"snp\":{},\"measurements\":{"
                  "\"4\":{\"expected\":\"" PCR_HEX "\"}}}",
                  "pins neither a launch measurement" },
                { "{\"version\":1,\"variant\":\"azure-sev-snp\",\"snp\":{\"minTcb\":{\"snp\":8}},"
                  "\"measurements\":{\"4\":{\"expected\":\"" PCR_HEX "\",\"warnOnly\":true}}}",
                  ".measurements are all warnOnly" },
                /* A minimum TCB does not say the runtime data is the paravisor's (an attack
                 * review: any VMPL0 guest names its own "vTPM" key). */
                { "{\"version\":1,\"variant\":\"azure-sev-snp\",\"snp\":{\"minTcb\":{\"snp\":8}},"
                  "\"measurements\":{\"4\":{\"expected\":\"" PCR_HEX "\"}}}",
                  "pins neither the paravisor's launch measurement" },
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{\"4\":{\"expected\":"
                  "\"" PCR_HEX "\",\"warnOnly\":true},\"9\":{\"expected\":\"" PCR_HEX
                  "\",\"warnOnly\":true}},\"akTrust\":{\"mode\":\"pinned\",\"akPublic\":\"AAAA\"}}",
                  ".measurements are all warnOnly" },
                /* RTMRs alone pin nothing: any firmware reaches them (an attack review showed a
                 * policy pinning rtmr0 accept a TD with any MRTD). */
                { "{\"version\":1,\"variant\":\"tdx\",\"tdx\":{\"rtmr0\":["
                  "\"000000000000000000000000000000000000000000000000000000000000000000000000000000"
                  "000000000000000000\"]}}",
                  "does not pin mrTd" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AttestPolicy *p = (AttestPolicy *) 0x1;
                Diag d;

                assert_int_equal(parse(cases[i].json, &p, &d), -EPERM);
                assert_ptr_equal(p, (AttestPolicy *) 0x1); /* not written on failure */
                assert_string_equal(d.check, "policy-permissive");
                if (!strstr(d.message, cases[i].message))
                        fail_msg("case %zu: '%s' lacks '%s'", i, d.message, cases[i].message);
        }
}

#define SET(name, pcrs) "{\"name\":\"" name "\",\"measurements\":{" pcrs "}}"
#define PCR(n, warn)    "\"" #n "\":{\"expected\":\"" PCR_HEX "\",\"warnOnly\":" #warn "}"
#define VTPM_SETS(common, sets)                                                                    \
        "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{" common                       \
        "},\"akTrust\":{\"mode\":\"pinned\",\"akPublic\":\"AAAA\"},\"measurementSets\":[" sets     \
        "]}"

/* measurementSets (docs/upgrade.md): named sets of PCRs, one of which a node must match. */
static void test_policy_measurement_sets_parse_into_named_sets(void **state)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        assert_int_equal(
                parse(VTPM_SETS(PCR(0, false),
                                SET("1.2", PCR(4, false) "," PCR(9, false) "," PCR(
                                                   11, false)) "," SET("1.3+fix", PCR(11, false))),
                      &p, &d),
                0);
        assert_int_equal(p->n_sets, 2);
        assert_string_equal(p->sets[0].name, "1.2");
        assert_string_equal(p->sets[1].name, "1.3+fix");
        assert_true(p->pcrs[0].present);
        assert_false(p->pcrs[11].present);
        assert_true(p->sets[0].pcrs[9].present);
        assert_true(p->sets[1].pcrs[11].present);
        assert_false(p->sets[1].pcrs[9].present);
}

static void test_policy_measurement_sets_refuse_malformed_or_ambiguous_sets(void **state)
{
        static const struct {
                const char *json, *message;
                int error;
        } cases[] = {
                { VTPM_SETS(PCR(11, false), SET("a", PCR(11, false))),
                  "PCR 11 is in .measurements too", -EBADMSG },
                { VTPM_SETS("", SET("a", PCR(11, false)) "," SET("a", PCR(4, false))),
                  "'a' names two sets", -EBADMSG },
                { VTPM_SETS("", SET("", PCR(11, false))), ".measurementSets[0].name", -EBADMSG },
                { VTPM_SETS("", SET("a b", PCR(11, false))), "(the image version)", -EBADMSG },
                { VTPM_SETS("", ""), "a list of 1..8 sets", -EBADMSG },
                { VTPM_SETS("", "{\"name\":\"a\",\"measurements\":{},\"extra\":1}"), "unknown key",
                  -EBADMSG },
                { VTPM_SETS("", "{\"name\":\"a\"}"), "required key is missing", -EBADMSG },
                { VTPM_SETS("", SET("a", "\"24\":{}")), "not a PCR index", -EBADMSG },
                /* A set that enforces nothing, with nothing common enforced, admits any image. */
                { VTPM_SETS("", SET("a", PCR(11, true)) "," SET("b", PCR(11, false))),
                  "set 'a' enforces no PCR", -EPERM },
                /* PCRs only where the variant quotes them. */
                { "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"snp\":8}},"
                  "\"measurementSets\":[" SET("a", PCR(11, false)) "]}",
                  "a sev-snp policy has no PCRs", -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AttestPolicy *p = NULL;
                Diag d;

                if (parse(cases[i].json, &p, &d) != cases[i].error)
                        fail_msg("case %zu: not refused with %d: '%s'", i, cases[i].error,
                                 d.message);
                assert_null(p);
                if (!strstr(d.message, cases[i].message))
                        fail_msg("case %zu: '%s' lacks '%s'", i, d.message, cases[i].message);
        }
}

/* A cluster's policy enforces the image PCRs 4, 9 and 11: common, or in every set. */
static void test_policy_cluster_check_wants_each_image_pcr_common_or_in_every_set(void **state)
{
        _cleanup_(attest_policy_freep) AttestPolicy *ok = NULL, *missing = NULL, *warn = NULL;
        Diag d;

        assert_int_equal(parse(VTPM_SETS(PCR(4, false) "," PCR(9, false),
                                         SET("a", PCR(11, false)) "," SET("b", PCR(11, false))),
                               &ok, &d),
                         0);
        diag_clear(&d);
        assert_int_equal(attest_policy_check_cluster(ok, "p.json", &d), 0);

        assert_int_equal(parse(VTPM_SETS(PCR(4, false) "," PCR(9, false),
                                         SET("a", PCR(11, false)) "," SET("b", PCR(0, false))),
                               &missing, &d),
                         0);
        diag_clear(&d);
        assert_int_equal(attest_policy_check_cluster(missing, "p.json", &d), -EPERM);
        assert_int_equal(d.index, 11);
        assert_non_null(strstr(d.message, "not enforced by measurement set 'b'"));

        assert_int_equal(parse(VTPM_SETS(PCR(4, false) "," PCR(9, false),
                                         SET("a", PCR(11, false)) "," SET(
                                                 "b", PCR(11, true) "," PCR(0, false))),
                               &warn, &d),
                         0);
        diag_clear(&d);
        assert_int_equal(attest_policy_check_cluster(warn, "p.json", &d), -EPERM);
        assert_non_null(strstr(d.message, "set 'b'"));
}

/* Key trust only (a joining node's --join-policy, whose PCRs come from the node itself) parses,
 * but is not a policy to verify with as it is. */
static void test_policy_empty_measurements_parse_but_do_not_enforce(void **state)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        assert_int_equal(parse("{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{},"
                               "\"akTrust\":{\"mode\":\"pinned\",\"akPublic\":\"AAAA\"}}",
                               &p, &d),
                         0);
        diag_clear(&d);
        assert_int_equal(attest_policy_check_enforcing(p, "p.json", &d), -EPERM);
        assert_non_null(strstr(d.message, ".measurements is empty"));
}

/* A bare SEV-SNP policy (no vTPM) must pin the image: a minimum TCB, host data or a chip ID
 * alone admit any SEV-SNP VM running any image (HOST_DATA is the launching host's choice). The
 * refusal names what is missing and how to get it. */
static void test_policy_bare_snp_pinning_no_image_is_refused_naming_the_fields(void **state)
{
        static const char *const refused[] = {
                "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"microcode\":1}}}",
                "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"microcode\":1},"
                "\"hostData\":\"" PCR_HEX "\"}}",
                "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"snp\":8},"
                "\"hostDataFromClusterId\":true,\"minLaunchTcb\":{\"snp\":8}}}",
                "{\"version\":1,\"variant\":\"sim-snp\",\"snp\":{\"trustedArks\":\"x\","
                "\"minTcb\":{\"microcode\":1}}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                AttestPolicy *p = NULL;
                Diag d;

                diag_clear(&d);
                assert_int_equal(parse(refused[i], &p, &d), -EPERM);
                assert_null(p);
                assert_string_equal(d.check, "policy-permissive");
                assert_non_null(strstr(d.message, ".snp pins no image"));
                assert_non_null(strstr(d.message, ".snp.measurements, .snp.launchMeasurements"));
                assert_non_null(strstr(d.message, ".snp.idKeyDigests"));
                assert_non_null(strstr(d.message, "cloister-measure snp-launch"));
        }
}

/* The positive controls: a launch measurement, or the signer of one, is enough. */
static void test_policy_snp_with_only_a_measurement_or_only_an_id_key_digest_loads(void **state)
{
        static const char *const ok[] = {
                "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"measurements\":[\"" PCR_HEX
                "04040404040404040404040404040404\"]}}",
                "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"minTcb\":{\"microcode\":1},"
                "\"idKeyDigests\":[\"" PCR_HEX "04040404040404040404040404040404\"]}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
                Diag d;

                if (parse(ok[i], &p, &d) != 0)
                        fail_msg("case %zu refused: %s", i, d.message);
        }
}

static void test_policy_snp_fields_parse(void **state)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        Diag d;

        assert_int_equal(parse("{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"allowDebug\":"
                               "false,\"vmpl\":0,\"minTcb\":{\"bootloader\":3,\"microcode\":115},"
                               "\"minGuestSvn\":2,\"hostData\":\""
                               "000000000000000000000000000000"
                               "0000000000000000000000000000000000\",\"measurements\":[\""
                               "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23"
                               "500644e0e692e6be917f9050d3d38c\"]}}",
                               &p, &d),
                         0);
        assert_int_equal(p->variant, ATTEST_VARIANT_SEV_SNP);
        assert_int_equal(p->snp.min_tcb.bootloader, 3);
        assert_int_equal(p->snp.min_tcb.microcode, 115);
        assert_int_equal(p->snp.min_guest_svn, 2);
        assert_true(p->snp.check_host_data);
        assert_int_equal(p->snp.n_measurements, 1);
        assert_int_equal(p->snp.measurements[0][0], 0xa1);
        assert_false(p->snp.allow_debug);
}

/* `cloister config generate` writes null for values it cannot know yet; a policy holding one is
 * refused with -ENODATA (not malformed: incomplete), naming the field and how to fill it. */
static void test_policy_refuses_values_not_set_yet_naming_field_and_next_step(void **state)
{
        static const struct {
                const char *json, *field, *next_step;
        } cases[] = {
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{\"4\":{\"expected\":"
                  "null,\"warnOnly\":false}},\"akTrust\":{\"mode\":\"insecure-any\"}}",
                  "p.json: .measurements.4.expected is not set yet", "cloister-measure image" },
                { "{\"version\":1,\"variant\":\"qemu-vtpm\",\"measurements\":{},\"akTrust\":"
                  "{\"mode\":\"pinned\",\"akPublic\":null}}",
                  "p.json: .akTrust.akPublic is not set yet", "--evidence" },
                { "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"measurements\":null}}",
                  "p.json: .snp.measurements is not set yet", "verify-report" },
                { "{\"version\":1,\"variant\":\"sev-snp\",\"snp\":{\"measurements\":[null]}}",
                  "p.json: .snp.measurements is not set yet", "verify-report" },
                { "{\"version\":1,\"variant\":\"azure-sev-snp\",\"snp\":{},\"measurements\":{"
                  "\"11\":{\"expected\":null}}}",
                  "p.json: .measurements.11.expected is not set yet", "cloister-measure image" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AttestPolicy *p = (AttestPolicy *) 0x1;
                Diag d;

                assert_int_equal(parse(cases[i].json, &p, &d), -ENODATA);
                assert_ptr_equal(p, (AttestPolicy *) 0x1); /* not written on failure */
                assert_string_equal(d.check, "policy-incomplete");
                if (!strstr(d.message, cases[i].field) || !strstr(d.message, cases[i].next_step))
                        fail_msg("case %zu: '%s' lacks '%s' or '%s'", i, d.message, cases[i].field,
                                 cases[i].next_step);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_vtpm_pinned_parses_measurements_and_modes),
                cmocka_unit_test(test_policy_refuses_ambiguous_or_unknown_settings),
                cmocka_unit_test(test_policy_snp_fields_parse),
                cmocka_unit_test(test_policy_refuses_policies_that_pin_nothing),
                cmocka_unit_test(test_policy_empty_measurements_parse_but_do_not_enforce),
                cmocka_unit_test(test_policy_bare_snp_pinning_no_image_is_refused_naming_the_fields),
                cmocka_unit_test(test_policy_snp_with_only_a_measurement_or_only_an_id_key_digest_loads),
                cmocka_unit_test(test_policy_refuses_values_not_set_yet_naming_field_and_next_step),
                cmocka_unit_test(test_policy_measurement_sets_parse_into_named_sets),
                cmocka_unit_test(test_policy_measurement_sets_refuse_malformed_or_ambiguous_sets),
                cmocka_unit_test(
                        test_policy_cluster_check_wants_each_image_pcr_common_or_in_every_set),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
