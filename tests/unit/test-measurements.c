/* SPDX-License-Identifier: Apache-2.0 */
/* The measurements file parser (lib/attest/measurements-file.c, docs/measured-boot.md
 * "Measurements files") and the RFC 3339 time stamps it reads (lib/base/timestamp.c). */
#include "helpers/unit.h"

#include "cloister/crypto.h"
#include "cloister/measurements.h"
#include "cloister/timestamp.h"

#define PCR4                                                                                       \
        "\"4\":{\"expected\":"                                                                     \
        "\"4444444444444444444444444444444444444444444444444444444444444444\"}"
#define V2_HEAD                                                                                    \
        "{\"version\":2,\"measurementsVersion\":7,\"image\":\"cloister-node\","                    \
        "\"imageVersion\":\"v1.2\",\"created\":\"2024-05-06T07:08:09Z\","
#define V2 V2_HEAD "\"measurements\":{" PCR4 "}}"

/* A poisoned output pointer: a parser that fails must leave it alone. */
#define POISON ((MeasurementsFile *) (uintptr_t) 0x5a5a5a5a)

static int parse(const char *text, MeasurementsFile **ret, Diag *d)
{
        diag_clear(d);
        return measurements_file_parse(text, strlen(text), "m.json", ret, d);
}

static void test_measurements_parse_format2_fields_and_digest_of_the_exact_bytes(void **state)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        uint8_t digest[SHA256_DIGEST_SIZE];
        Diag d;

        assert_int_equal(parse(V2, &m, &d), 0);
        assert_int_equal(m->format_version, 2);
        assert_int_equal(m->measurements_version, 7);
        assert_string_equal(m->image, "cloister-node");
        assert_string_equal(m->image_version, "v1.2");
        assert_string_equal(m->created, "2024-05-06T07:08:09Z");
        assert_int_equal(m->created_time, 1714979289);
        assert_true(m->pcrs[4].present);
        assert_false(m->pcrs[4].warn_only);
        assert_false(m->pcrs[9].present);
        crypto_sha256(V2, strlen(V2), digest);
        assert_memory_equal(m->sha256, digest, sizeof(digest));
}

static void test_measurements_parse_image_kind_cloud_test_or_absent(void **state)
{
        static const struct {
                const char *doc;
                MeasurementsImageKind kind;
        } cases[] = {
                { V2, MEASUREMENTS_IMAGE_KIND_UNKNOWN },
                { V2_HEAD "\"imageKind\":\"cloud\",\"measurements\":{}}",
                  MEASUREMENTS_IMAGE_KIND_CLOUD },
                { V2_HEAD "\"imageKind\":\"test\",\"measurements\":{}}",
                  MEASUREMENTS_IMAGE_KIND_TEST },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
                Diag d;

                assert_int_equal(parse(cases[i].doc, &m, &d), 0);
                assert_int_equal(m->image_kind, cases[i].kind);
        }
        assert_string_equal(measurements_image_kind_note(MEASUREMENTS_IMAGE_KIND_TEST),
                            " (TEST image: kubeadm double, not for production)");
        assert_string_equal(measurements_image_kind_note(MEASUREMENTS_IMAGE_KIND_UNKNOWN), "");
        assert_null(measurements_image_kind_to_string(MEASUREMENTS_IMAGE_KIND_UNKNOWN));
        assert_int_equal(measurements_image_kind_from_string("unknown"), -EINVAL);
        assert_int_equal(measurements_image_kind_from_string(NULL), -EINVAL);
}

/* The Kubernetes release an image carries: what 'upgrade apply --kubernetes-version' checks. */
static void test_measurements_parse_kubernetes_version_when_named(void **state)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL, *none = NULL;
        Diag d;

        assert_int_equal(
                parse(V2_HEAD "\"kubernetesVersion\":\"v1.35.1\",\"measurements\":{}}", &m, &d), 0);
        assert_string_equal(m->kubernetes_version, "v1.35.1");
        assert_int_equal(parse(V2, &none, &d), 0);
        assert_null(none->kubernetes_version);
}

static void test_measurements_parse_format1_has_no_version(void **state)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        Diag d;

        assert_int_equal(
                parse("{\"version\":1,\"image\":\"x\",\"measurements\":{" PCR4 "}}", &m, &d), 0);
        assert_int_equal(m->format_version, 1);
        assert_int_equal(m->measurements_version, 0);
        assert_null(m->image_version);
        assert_string_equal(m->created, "");
}

static void test_measurements_parse_accepts_the_largest_version(void **state)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        const char *doc = "{\"version\":2,\"measurementsVersion\":9007199254740991,\"image\":\"x\","
                          "\"imageVersion\":\"y\",\"created\":\"9999-12-31T23:59:59Z\","
                          "\"measurements\":{}}";
        Diag d;

        assert_int_equal(parse(doc, &m, &d), 0);
        assert_int_equal(m->measurements_version, MEASUREMENTS_VERSION_MAX);
        assert_int_equal(m->created_time, TIMESTAMP_UTC_MAX);
}

static void test_measurements_parse_rejects_bad_format2_fields_with_ebadmsg(void **state)
{
        static const struct {
                const char *doc, *why;
        } cases[] = {
                /* missing fields */
                { "{\"version\":2,\"image\":\"x\",\"imageVersion\":\"y\",\"created\":"
                  "\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  ".measurementsVersion: required key is missing" },
                { "{\"version\":2,\"measurementsVersion\":1,\"image\":\"x\",\"created\":"
                  "\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  ".imageVersion: required key is missing" },
                { "{\"version\":2,\"measurementsVersion\":1,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"measurements\":{}}",
                  ".created: required key is missing" },
                /* typed and bounded */
                { "{\"version\":2,\"measurementsVersion\":0,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"created\":\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  "outside [1, 9007199254740991]" },
                { "{\"version\":2,\"measurementsVersion\":9007199254740992,\"image\":\"x\","
                  "\"imageVersion\":\"y\",\"created\":\"2024-05-06T07:08:09Z\","
                  "\"measurements\":{}}",
                  "outside [1, 9007199254740991]" },
                { "{\"version\":2,\"measurementsVersion\":-3,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"created\":\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  "outside" },
                { "{\"version\":2,\"measurementsVersion\":1.0,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"created\":\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  "expected an integer" },
                { "{\"version\":2,\"measurementsVersion\":true,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"created\":\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  "expected an integer" },
                { "{\"version\":2,\"measurementsVersion\":1,\"image\":\"x\",\"imageVersion\":"
                  "\"\",\"created\":\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  ".imageVersion: must be 1 to 128 bytes" },
                { "{\"version\":2,\"measurementsVersion\":1,\"image\":\"x\",\"imageVersion\":"
                  "\"a\\u001bb\",\"created\":\"2024-05-06T07:08:09Z\",\"measurements\":{}}",
                  ".imageVersion: must be 1 to 128 bytes" },
                { "{\"version\":2,\"measurementsVersion\":1,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"created\":\"2024-02-30T07:08:09Z\",\"measurements\":{}}",
                  ".created: '2024-02-30T07:08:09Z' is not an RFC 3339 UTC time" },
                { "{\"version\":2,\"measurementsVersion\":1,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"created\":\"2024-05-06T07:08:09+02:00\",\"measurements\":{}}",
                  "is not an RFC 3339 UTC time" },
                { "{\"version\":2,\"measurementsVersion\":1,\"image\":\"x\",\"imageVersion\":"
                  "\"y\",\"created\":null,\"measurements\":{}}",
                  ".created: expected a string" },
                /* imageKind: cloud or test, nothing else */
                { V2_HEAD "\"imageKind\":\"production\",\"measurements\":{}}",
                  ".imageKind: 'production' is neither cloud nor test" },
                { V2_HEAD "\"imageKind\":\"Test\",\"measurements\":{}}",
                  ".imageKind: 'Test' is neither cloud nor test" },
                { V2_HEAD "\"imageKind\":\"\",\"measurements\":{}}",
                  ".imageKind: '' is neither cloud nor test" },
                { V2_HEAD "\"imageKind\":null,\"measurements\":{}}",
                  ".imageKind: expected a string" },
                /* kubernetesVersion: a release v1.MINOR.PATCH, nothing else */
                { V2_HEAD "\"kubernetesVersion\":\"1.35.1\",\"measurements\":{}}",
                  ".kubernetesVersion: '1.35.1' is not a Kubernetes release" },
                { V2_HEAD "\"kubernetesVersion\":\"v1.35\",\"measurements\":{}}",
                  ".kubernetesVersion: 'v1.35' is not a Kubernetes release" },
                { V2_HEAD "\"kubernetesVersion\":\"v1.35.1-rc.0\",\"measurements\":{}}",
                  "is not a Kubernetes release" },
                { V2_HEAD "\"kubernetesVersion\":135,\"measurements\":{}}",
                  ".kubernetesVersion: expected a string" },
                /* ours: unknown keys refused */
                { V2_HEAD "\"measurements\":{},\"signer\":\"me\"}", ".signer: unknown key" },
                { "{\"version\":1,\"measurementsVersion\":1,\"image\":\"x\",\"measurements\":{}}",
                  ".measurementsVersion: unknown key" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MeasurementsFile *m = POISON;
                Diag d;

                assert_int_equal(parse(cases[i].doc, &m, &d), -EBADMSG);
                assert_ptr_equal(m, POISON);
                assert_string_equal(d.check, "json-schema");
                if (!strstr(d.message, cases[i].why))
                        fail_msg("case %zu: '%s' does not say '%s'", i, d.message, cases[i].why);
        }
}

static void test_measurements_parse_rejects_an_unknown_format_with_eprotonosupport(void **state)
{
        MeasurementsFile *m = POISON;
        Diag d;

        assert_int_equal(parse("{\"version\":3,\"measurements\":{}}", &m, &d), -EPROTONOSUPPORT);
        assert_ptr_equal(m, POISON);
        assert_string_equal(d.check, "format-version");
        assert_non_null(strstr(d.message, "format 3 is newer"));
}

static void test_measurements_parse_rejects_a_long_image_name(void **state)
{
        char doc[512];
        char name[MEASUREMENTS_TEXT_MAX + 2];
        MeasurementsFile *m = POISON;
        Diag d;

        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        (void) snprintf(doc, sizeof(doc), "{\"version\":1,\"image\":\"%s\",\"measurements\":{}}",
                        name);
        assert_int_equal(parse(doc, &m, &d), -EBADMSG);
        assert_ptr_equal(m, POISON);
        name[MEASUREMENTS_TEXT_MAX] = '\0';
        (void) snprintf(doc, sizeof(doc), "{\"version\":1,\"image\":\"%s\",\"measurements\":{}}",
                        name);
        assert_int_equal(parse(doc, &m, &d), 0);
        m = measurements_file_free(m);
}

static void test_timestamp_parse_utc_is_the_rfc3339_utc_profile_only(void **state)
{
        static const char *const bad[] = {
                "",
                "2024-05-06",
                "2024-05-06T07:08:09",
                "2024-05-06T07:08:09z",
                "2024-05-06t07:08:09Z",
                "2024-05-06 07:08:09Z",
                "2024-05-06T07:08:09.000Z",
                "2024-05-06T07:08:09+00:00",
                "2024-5-06T07:08:09Z",
                "2023-02-29T00:00:00Z",  /* not a leap year */
                "2024-05-06T24:00:00Z",  /* RFC 3339 has no 24:00 */
                "2016-12-31T23:59:60Z",  /* a real leap second: time_t cannot hold it */
                "1969-12-31T23:59:59Z",  /* before the epoch */
                "2024-05-06T07:08:09Z ", /* trailing data */
                "+024-05-06T07:08:09Z",
        };
        time_t t = 42;

        assert_int_equal(timestamp_parse_utc("1970-01-01T00:00:00Z", &t), 0);
        assert_int_equal(t, 0);
        assert_int_equal(timestamp_parse_utc("2024-02-29T23:59:59Z", &t), 0);
        assert_int_equal(t, 1709251199);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t = 42;
                if (timestamp_parse_utc(bad[i], &t) != -EBADMSG)
                        fail_msg("'%s' was accepted", bad[i]);
                assert_int_equal(t, 42);
        }
}

static void test_timestamp_format_utc_round_trips_and_refuses_out_of_range(void **state)
{
        char buf[TIMESTAMP_UTC_SIZE];
        time_t t;

        assert_int_equal(timestamp_format_utc(1714979289, buf), 0);
        assert_string_equal(buf, "2024-05-06T07:08:09Z");
        assert_int_equal(timestamp_parse_utc(buf, &t), 0);
        assert_int_equal(t, 1714979289);
        assert_int_equal(timestamp_format_utc(TIMESTAMP_UTC_MAX, buf), 0);
        assert_string_equal(buf, "9999-12-31T23:59:59Z");
        assert_int_equal(timestamp_format_utc(TIMESTAMP_UTC_MAX + 1, buf), -ERANGE);
        assert_int_equal(timestamp_format_utc(-1, buf), -ERANGE);
}

static void test_timestamp_parse_epoch_takes_decimal_seconds_only(void **state)
{
        time_t t = 42;

        assert_int_equal(timestamp_parse_epoch("1714979289", &t), 0);
        assert_int_equal(t, 1714979289);
        assert_int_equal(timestamp_parse_epoch("0", &t), 0);
        assert_int_equal(t, 0);
        t = 42;
        assert_int_equal(timestamp_parse_epoch("", &t), -EBADMSG);
        assert_int_equal(timestamp_parse_epoch("-1", &t), -EBADMSG);
        assert_int_equal(timestamp_parse_epoch("17e8", &t), -EBADMSG);
        assert_int_equal(timestamp_parse_epoch(" 1", &t), -EBADMSG);
        assert_int_equal(timestamp_parse_epoch("253402300800", &t), -EBADMSG);
        assert_int_equal(timestamp_parse_epoch("99999999999999999999999", &t), -EBADMSG);
        assert_int_equal(t, 42);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_measurements_parse_format2_fields_and_digest_of_the_exact_bytes),
                cmocka_unit_test(test_measurements_parse_image_kind_cloud_test_or_absent),
                cmocka_unit_test(test_measurements_parse_kubernetes_version_when_named),
                cmocka_unit_test(test_measurements_parse_format1_has_no_version),
                cmocka_unit_test(test_measurements_parse_accepts_the_largest_version),
                cmocka_unit_test(test_measurements_parse_rejects_bad_format2_fields_with_ebadmsg),
                cmocka_unit_test(
                        test_measurements_parse_rejects_an_unknown_format_with_eprotonosupport),
                cmocka_unit_test(test_measurements_parse_rejects_a_long_image_name),
                cmocka_unit_test(test_timestamp_parse_utc_is_the_rfc3339_utc_profile_only),
                cmocka_unit_test(test_timestamp_format_utc_round_trips_and_refuses_out_of_range),
                cmocka_unit_test(test_timestamp_parse_epoch_takes_decimal_seconds_only),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
