/* SPDX-License-Identifier: Apache-2.0 */
/* The evidence bundle container (lib/bundle, docs/bundle.md): what the writer makes, the reader
 * takes back exactly; every other spelling, an entry that does not match its digest, a manifest
 * that names another set of entries, another format or version, are each refused with their
 * errno and a message naming what no longer holds. */
#include <stdbool.h>

#include "helpers/unit.h"

#include "cloister/bundle.h"

static char *written(size_t *ret_size)
{
        Bundle *b = bundle_new();
        char *text = NULL;

        assert_non_null(b);
        assert_int_equal(bundle_add(b, "policy.json", "{\"version\":1}", 13), 0);
        assert_int_equal(bundle_add(b, "nodes/0/nonce", (uint8_t[32]){ 1, 2, 3 }, 32), 0);
        assert_int_equal(bundle_add(b, "empty", "", 0), 0);
        assert_int_equal(bundle_serialize(b, &text, ret_size), 0);
        bundle_free(b);
        return text;
}

/* bundle_parse() of text with its first `from` replaced by `to`; *ret untouched on failure. */
static int parse_edited(const char *text, const char *from, const char *to, Diag *d)
{
        const char *at = strstr(text, from);
        char buf[2048];
        Bundle *b = (Bundle *) 0x1;
        int r;

        assert_non_null(at);
        (void) snprintf(buf, sizeof(buf), "%.*s%s%s", (int) (at - text), text, to,
                        at + strlen(from));
        diag_clear(d);
        r = bundle_parse((const uint8_t *) buf, strlen(buf), &b, d);
        if (r < 0)
                assert_ptr_equal(b, (Bundle *) 0x1);
        else
                bundle_free(b);
        return r;
}

static void test_bundle_round_trip_gives_back_every_entry(void **state)
{
        _cleanup_(freep) char *text = NULL;
        _cleanup_(bundle_freep) Bundle *b = NULL;
        const uint8_t *data;
        size_t size, n;
        Diag d;

        text = written(&size);
        assert_int_equal(text[size - 1], '\n');
        assert_int_equal(bundle_parse((const uint8_t *) text, size, &b, &d), 0);
        assert_int_equal(bundle_count(b), 3);
        assert_int_equal(bundle_get(b, "policy.json", &data, &n), 0);
        assert_int_equal(n, 13);
        assert_memory_equal(data, "{\"version\":1}", 13);
        assert_int_equal(bundle_get(b, "nodes/0/nonce", &data, &n), 0);
        assert_int_equal(n, 32);
        assert_int_equal(data[2], 3);
        assert_int_equal(bundle_get(b, "empty", &data, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(bundle_get(b, "absent", &data, &n), -ENOENT);
}

static void test_bundle_add_refuses_bad_names_and_duplicates(void **state)
{
        _cleanup_(bundle_freep) Bundle *b = bundle_new();
        char long_name[BUNDLE_NAME_MAX + 2];

        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = 0;
        assert_int_equal(bundle_add(b, "", "x", 1), -EINVAL);
        assert_int_equal(bundle_add(b, "/abs", "x", 1), -EINVAL);
        assert_int_equal(bundle_add(b, "Upper", "x", 1), -EINVAL);
        assert_int_equal(bundle_add(b, "a b", "x", 1), -EINVAL);
        assert_int_equal(bundle_add(b, "a\"b", "x", 1), -EINVAL);
        assert_int_equal(bundle_add(b, long_name, "x", 1), -EINVAL);
        assert_int_equal(bundle_add(b, "ok", "x", 1), 0);
        assert_int_equal(bundle_add(b, "ok", "y", 1), -EEXIST);
        assert_int_equal(bundle_count(b), 1);
}

static void test_bundle_parse_names_the_entry_whose_digest_no_longer_holds(void **state)
{
        _cleanup_(freep) char *text = NULL;
        size_t size;
        Diag d;

        text = written(&size);
        /* "{\"version\":1}" is eyJ2ZXJzaW9uIjoxfQ==; one base64 digit changed, still valid. */
        assert_int_equal(parse_edited(text, "eyJ2", "eyJ3", &d), -EBADMSG);
        assert_string_equal(d.check, "bundle-manifest");
        assert_non_null(strstr(d.message, "'policy.json' does not match its manifest digest"));
}

static void test_bundle_parse_refuses_another_spelling_of_the_same_document(void **state)
{
        _cleanup_(freep) char *text = NULL;
        size_t size;
        Diag d;

        text = written(&size);
        assert_int_equal(parse_edited(text, "\"format\":", "\"format\": ", &d), -EBADMSG);
        assert_string_equal(d.check, "bundle-canonical");
        assert_int_equal(parse_edited(text, "\n", "\n\n", &d), -EBADMSG);
        assert_string_equal(d.check, "bundle-canonical");
        /* The same digest in uppercase hex: its bytes are the same, its spelling is not. */
        assert_int_equal(parse_edited(text, "\"manifest\":{\"empty\":\"e3b0",
                                      "\"manifest\":{\"empty\":\"E3B0", &d),
                         -EBADMSG);
        assert_string_equal(d.check, "bundle-canonical");
}

static void test_bundle_parse_refuses_a_manifest_of_other_entries(void **state)
{
        _cleanup_(freep) char *text = NULL;
        size_t size;
        Diag d;

        text = written(&size);
        /* An entry the manifest does not list, and a manifest entry the bundle does not hold. */
        assert_int_equal(
                parse_edited(text, "\"manifest\":{\"empty\"", "\"manifest\":{\"other\"", &d),
                -EBADMSG);
        assert_string_equal(d.check, "bundle-manifest");
        assert_int_equal(
                parse_edited(text, "{\"entries\":{\"empty\"", "{\"entries\":{\"other\"", &d),
                -EBADMSG);
        assert_string_equal(d.check, "bundle-manifest");
}

static void test_bundle_parse_refuses_another_format_or_version(void **state)
{
        _cleanup_(freep) char *text = NULL;
        size_t size;
        Diag d;

        text = written(&size);
        assert_int_equal(parse_edited(text, "\"version\":1}\n", "\"version\":2}\n", &d),
                         -EPROTONOSUPPORT);
        assert_string_equal(d.check, "bundle-format");
        assert_int_equal(parse_edited(text, "cloister-bundle", "cloister-bundlf", &d),
                         -EPROTONOSUPPORT);
        assert_int_equal(parse_edited(text, "\"entries\"", "\"extra\":1,\"entries\"", &d),
                         -EBADMSG);
}

static void test_bundle_parse_refuses_truncated_and_oversized_input(void **state)
{
        _cleanup_(freep) char *text = NULL;
        Bundle *b = NULL;
        size_t size;
        Diag d;

        text = written(&size);
        for (size_t n = 0; n < size; n += 7) {
                diag_clear(&d);
                assert_true(bundle_parse((const uint8_t *) text, n, &b, &d) < 0);
                assert_null(b);
                assert_true(diag_failed(&d));
        }
        assert_int_equal(bundle_parse((const uint8_t *) text, (size_t) BUNDLE_SIZE_MAX + 1, &b, &d),
                         -EMSGSIZE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bundle_round_trip_gives_back_every_entry),
                cmocka_unit_test(test_bundle_add_refuses_bad_names_and_duplicates),
                cmocka_unit_test(test_bundle_parse_names_the_entry_whose_digest_no_longer_holds),
                cmocka_unit_test(test_bundle_parse_refuses_another_spelling_of_the_same_document),
                cmocka_unit_test(test_bundle_parse_refuses_a_manifest_of_other_entries),
                cmocka_unit_test(test_bundle_parse_refuses_another_format_or_version),
                cmocka_unit_test(test_bundle_parse_refuses_truncated_and_oversized_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
