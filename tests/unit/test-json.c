/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/base64.h"
#include "cloister/hex.h"
#include "cloister/json-result.h"
#include "cloister/json.h"
#include "cloister/log.h"

static json_t *parse(const char *text, Diag *d)
{
        json_t *j = NULL;
        int r = json_parse_buffer(text, strlen(text), "t.json", &j, d);
        return r < 0 ? NULL : j;
}

static void test_json_syntax_error_names_source_line_and_column(void **state)
{
        Diag d;
        diag_clear(&d);
        assert_null(parse("{\n  \"a\": 1,\n  \"b\": ]\n}", &d));
        assert_string_equal(d.check, "json-syntax");
        assert_non_null(strstr(d.message, "t.json:3:"));
}

static void test_json_syntax_error_escapes_control_bytes_of_the_input(void **state)
{
        /* The review's reproduction (host metadata): ESC ] 0;owned BEL in a bad escape. */
        static const char inj[] = "{\"name\":\"AAAA\\\033]0;owned\007\\\r";
        Diag d;
        diag_clear(&d);
        assert_null(parse(inj, &d));
        assert_string_equal(d.check, "json-syntax");
        for (const char *c = d.message; *c; c++)
                assert_true((unsigned char) *c >= 0x20 && (unsigned char) *c < 0x7f);
        assert_non_null(strstr(d.message, "\\x1b"));
}

static void test_json_rejects_duplicate_keys(void **state)
{
        Diag d;
        diag_clear(&d);
        assert_null(parse("{\"a\": 1, \"a\": 2}", &d));
        assert_non_null(strstr(d.message, "duplicate"));
}

static void test_json_rejects_excessive_depth(void **state)
{
        char deep[200] = {};
        Diag d;

        for (int i = 0; i < JSON_DEPTH_MAX + 2; i++)
                strcat(deep, "[");
        for (int i = 0; i < JSON_DEPTH_MAX + 2; i++)
                strcat(deep, "]");
        diag_clear(&d);
        assert_null(parse(deep, &d));
        assert_string_equal(d.check, "json-depth");
}

static void test_json_getters_name_the_offending_key_path(void **state)
{
        _cleanup_(json_decrefp) json_t *j = parse("{\"m\": {\"4\": {\"expected\": 7}}}", NULL);
        JsonCtx root = { .source = "p.json", .path = "", .diag = NULL };
        char b1[64], b2[64];
        json_t *m, *e;
        const char *s = "untouched";
        Diag d;

        diag_clear(&d);
        root.diag = &d;
        assert_int_equal(json_get_object(&root, j, "m", true, &m), 0);
        JsonCtx cm = json_ctx_child(&root, "m", b1, sizeof(b1));
        assert_int_equal(json_get_object(&cm, m, "4", true, &e), 0);
        JsonCtx c4 = json_ctx_child(&cm, "4", b2, sizeof(b2));
        assert_int_equal(json_get_string(&c4, e, "expected", true, &s), -EBADMSG);
        assert_string_equal(s, "untouched");
        assert_string_equal(d.message, "p.json: .m.4.expected: expected a string");
}

static void test_json_required_and_optional_keys(void **state)
{
        _cleanup_(json_decrefp) json_t *j = parse("{\"a\": true}", NULL);
        JsonCtx ctx = { .source = "x", .path = "" };
        bool b = false;
        Diag d;

        diag_clear(&d);
        ctx.diag = &d;
        assert_int_equal(json_get_bool(&ctx, j, "a", true, &b), 0);
        assert_true(b);
        assert_int_equal(json_get_bool(&ctx, j, "b", false, &b), -ENOENT);
        assert_false(diag_failed(&d));
        assert_int_equal(json_get_bool(&ctx, j, "b", true, &b), -EBADMSG);
        assert_string_equal(d.message, "x: .b: required key is missing");
}

static void test_json_check_keys_refuses_unknown(void **state)
{
        static const char *const keys[] = { "a", "b", NULL };
        _cleanup_(json_decrefp) json_t *j = parse("{\"a\": 1, \"zz\": 2}", NULL);
        JsonCtx ctx = { .source = "x", .path = "" };
        Diag d;

        diag_clear(&d);
        ctx.diag = &d;
        assert_int_equal(json_check_keys(&ctx, j, keys), -EBADMSG);
        assert_string_equal(d.message, "x: .zz: unknown key");
}

static void test_json_get_int_enforces_range(void **state)
{
        _cleanup_(json_decrefp) json_t *j = parse("{\"n\": 24, \"f\": 1.5}", NULL);
        JsonCtx ctx = { .source = "x", .path = "" };
        int64_t v = -1;

        assert_int_equal(json_get_int(&ctx, j, "n", true, 0, 23, &v), -EBADMSG);
        assert_int_equal(v, -1);
        assert_int_equal(json_get_int(&ctx, j, "n", true, 0, 24, &v), 0);
        assert_int_equal(v, 24);
        assert_int_equal(json_get_int(&ctx, j, "f", true, 0, 24, &v), -EBADMSG);
}

static void test_json_get_string_rejects_embedded_nul(void **state)
{
        _cleanup_(json_decrefp) json_t *j = parse("{\"s\": \"ab\\u0000cd\"}", NULL);
        JsonCtx ctx = { .source = "x", .path = "" };
        const char *s;

        assert_int_equal(json_get_string(&ctx, j, "s", true, &s), -EBADMSG);
}

static void test_json_get_hex_exact(void **state)
{
        _cleanup_(json_decrefp) json_t *j = parse("{\"h\": \"00ff\", \"bad\": \"0g\"}", NULL);
        JsonCtx ctx = { .source = "x", .path = "" };
        uint8_t b[2];

        assert_int_equal(json_get_hex_exact(&ctx, j, "h", true, b, 2), 0);
        assert_int_equal(b[1], 0xff);
        assert_int_equal(json_get_hex_exact(&ctx, j, "h", true, b, 3), -EBADMSG);
        assert_int_equal(json_get_hex_exact(&ctx, j, "bad", true, b, 1), -EBADMSG);
}

static void test_json_parse_file_refuses_oversize_before_reading(void **state)
{
        char path[256];
        FILE *f;
        json_t *j = NULL;
        Diag d;

        (void) snprintf(path, sizeof(path), "%s/big.json", test_tmpdir());
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fseek(f, 2 * 1024 * 1024, SEEK_SET), 0);
        fputc('x', f);
        fclose(f);
        diag_clear(&d);
        assert_int_equal(json_parse_file(path, 1024, &j, &d), -EMSGSIZE);
        assert_null(j);
        assert_string_equal(d.check, "file-size");
}

static void test_base64_round_trip_and_strictness(void **state)
{
        _cleanup_(freep) char *enc = NULL;
        _cleanup_(freep) uint8_t *dec = NULL;
        uint8_t *x = NULL;
        size_t n;

        assert_int_equal(base64_encode("hello", 5, &enc), 0);
        assert_string_equal(enc, "aGVsbG8=");
        assert_int_equal(base64_decode(enc, &dec, &n), 0);
        assert_int_equal(n, 5);
        assert_memory_equal(dec, "hello", 5);

        assert_int_equal(base64_decode("aGVsbG8", &x, &n), -EBADMSG);   /* no padding */
        assert_int_equal(base64_decode("aGV sbG8=", &x, &n), -EBADMSG); /* whitespace */
        assert_int_equal(base64_decode("aGVs=G8=", &x, &n), -EBADMSG);  /* inner '=' */
        assert_int_equal(base64_decode("aGVsbG8-", &x, &n), -EBADMSG);  /* url alphabet */
        assert_null(x);
}

static void test_base64_decode_secret_exact_size(void **state)
{
        _cleanup_(secret_freep) Secret *s = NULL;
        Secret *p = NULL;

        /* 32 zero bytes */
        assert_int_equal(
                base64_decode_secret("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 32, &s), 0);
        assert_int_equal(secret_size(s), 32);
        assert_int_equal(
                base64_decode_secret("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", 32, &p),
                -EBADMSG); /* 31 bytes */
        assert_null(p);
}

static void test_json_dump_returns_memory_that_free_releases(void **state)
{
        /* jansson allocates through the wiping allocator; the dump must be a plain malloc()
         * block, or free() here corrupts the heap (caught by ASan in make asan). */
        _cleanup_(json_decrefp) json_t *j = parse("{\"b\": [1, 2], \"a\": \"x\"}", NULL);
        char *s = NULL;

        assert_int_equal(json_dump_compact(j, &s), 0);
        assert_string_equal(s, "{\"a\":\"x\",\"b\":[1,2]}");
        free(s);
        assert_int_equal(json_dump_pretty(j, &s), 0);
        assert_non_null(strstr(s, "\n"));
        free(s);
}

static void test_hex_encode_buf_truncates_safely(void **state)
{
        uint8_t data[64];
        char small[10];

        memset(data, 0xab, sizeof(data));
        hex_encode_buf(data, sizeof(data), small, sizeof(small));
        assert_int_equal(strlen(small), 9);
        assert_string_equal(small + 6, "...");
}

static void test_result_error_split_finds_the_next_step_after_the_cause(void **state)
{
        static const struct {
                const char *message, *cause, *next;
        } cases[] = {
                { "https://h:1: the connection was refused: nothing listens there; check the "
                  "address",
                  "https://h:1: the connection was refused: nothing listens there",
                  "Check the address." },
                { "status: no cloister-state.json here: give --node HOST.",
                  "status: no cloister-state.json here", "Give --node HOST." },
                { "Both --evidence and --policy are required. See --help.",
                  "Both --evidence and --policy are required", "See --help." },
                /* No imperative clause: the whole message is the cause. */
                { "--binding: expected 64 hex digits.", "--binding: expected 64 hex digits", "" },
                /* "checked" is not "check", "user" not "use". */
                { "x: checked twice; user unknown", "x: checked twice; user unknown", "" },
        };
        char cause[RESULT_TEXT_MAX], next[RESULT_TEXT_MAX];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                result_error_split(cases[i].message, cause, next);
                assert_string_equal(cause, cases[i].cause);
                assert_string_equal(next, cases[i].next);
        }
}

static void test_result_error_document_has_code_and_a_default_next_step(void **state)
{
        _cleanup_(json_decrefp) json_t *doc =
                result_error_new("cloister verify", -ENOENT, "p.json: cannot read");
        json_t *e = json_object_get(doc, "error");

        assert_int_equal(json_integer_value(json_object_get(doc, "schemaVersion")), 1);
        assert_string_equal(json_string_value(json_object_get(doc, "command")), "cloister verify");
        assert_string_equal(json_string_value(json_object_get(e, "code")), "ENOENT");
        assert_string_equal(json_string_value(json_object_get(e, "cause")), "p.json: cannot read");
        assert_non_null(strstr(json_string_value(json_object_get(e, "nextStep")), "path"));
        json_decref(doc);
        /* A usage error points at the command's own help. */
        doc = result_error_new("cloister verify", -EINVAL, "--timeout 'x': 1..3600 seconds.");
        e = json_object_get(doc, "error");
        assert_string_equal(json_string_value(json_object_get(e, "nextStep")),
                            "See 'cloister verify --help'.");
}

static void test_result_check_and_verdict_use_null_for_values_that_do_not_apply(void **state)
{
        _cleanup_(json_decrefp) json_t *c =
                result_check_new("pcr", -1, "pass", true, "", NULL, NULL);
        _cleanup_(json_decrefp) json_t *v = NULL;
        Diag d;

        assert_true(json_is_null(json_object_get(c, "index")));
        assert_true(json_is_null(json_object_get(c, "expected")));
        assert_true(json_is_null(json_object_get(c, "actual")));
        assert_string_equal(json_string_value(json_object_get(c, "detail")), "");
        diag_clear(&d);
        (void) diag_fail(&d, -EPERM, "pcr", 4, "PCR 4 differs");
        diag_set_values(&d, "aa", "bb");
        v = result_verdict_new("fail", d.message, &d, "checked");
        assert_string_equal(json_string_value(json_object_get(v, "check")), "pcr");
        assert_int_equal(json_integer_value(json_object_get(v, "index")), 4);
        assert_string_equal(json_string_value(json_object_get(v, "actual")), "bb");
}

static void test_log_last_error_keeps_the_last_error_line_only(void **state)
{
        log_set_sink(NULL, NULL);
        (void) log_error_errno(-EIO, "first %d", 1);
        log_warning("a warning is not an error");
        assert_string_equal(log_last_error(), "first 1");
        (void) log_error_errno(-EIO, "second");
        assert_string_equal(log_last_error(), "second");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_syntax_error_names_source_line_and_column),
                cmocka_unit_test(test_json_syntax_error_escapes_control_bytes_of_the_input),
                cmocka_unit_test(test_json_rejects_duplicate_keys),
                cmocka_unit_test(test_json_rejects_excessive_depth),
                cmocka_unit_test(test_json_getters_name_the_offending_key_path),
                cmocka_unit_test(test_json_required_and_optional_keys),
                cmocka_unit_test(test_json_check_keys_refuses_unknown),
                cmocka_unit_test(test_json_get_int_enforces_range),
                cmocka_unit_test(test_json_get_string_rejects_embedded_nul),
                cmocka_unit_test(test_json_get_hex_exact),
                cmocka_unit_test(test_json_parse_file_refuses_oversize_before_reading),
                cmocka_unit_test(test_base64_round_trip_and_strictness),
                cmocka_unit_test(test_base64_decode_secret_exact_size),
                cmocka_unit_test(test_json_dump_returns_memory_that_free_releases),
                cmocka_unit_test(test_hex_encode_buf_truncates_safely),
                cmocka_unit_test(test_result_error_split_finds_the_next_step_after_the_cause),
                cmocka_unit_test(test_result_error_document_has_code_and_a_default_next_step),
                cmocka_unit_test(
                        test_result_check_and_verdict_use_null_for_values_that_do_not_apply),
                cmocka_unit_test(test_log_last_error_keeps_the_last_error_line_only),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
