/* SPDX-License-Identifier: Apache-2.0 */
/* The bounded HTTP/1.1 response parser of the re-attestation process (http-response.h): what
 * evhttp sends is accepted, everything ambiguous or cut short refused with its errno. */
#include "helpers/unit.h"

#include "cloister/http-response.h"
#include "cloister/macro.h"

static int parse(const char *s, HttpResponse *r)
{
        return http_response_parse((const uint8_t *) s, strlen(s), r);
}

static void test_http_response_parse_accepts_an_evhttp_answer(void **state)
{
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 14\r\nDate: Mon, 07 Dec 2026 12:00:00 GMT\r\n"
                                 "\r\n{\"node\":\"w-1\"}";
        HttpResponse r;

        (void) state;
        assert_int_equal(parse(ok, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_size, 14);
        assert_memory_equal(r.body, "{\"node\":\"w-1\"}", 14);
        assert_int_equal(parse("HTTP/1.0 404 Not Found\r\ncontent-length:  0 \r\n\r\n", &r), 0);
        assert_int_equal(r.status, 404);
        assert_int_equal(r.body_size, 0);
}

static void test_http_response_parse_refuses_malformed_or_ambiguous_answers(void **state)
{
        static const char *const bad[] = {
                "",
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}x", /* trailing bytes */
                "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}",  /* cut short */
                "HTTP/1.1 200 OK\r\n\r\n{}",                       /* no length */
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",        /* bare LF */
                "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}", /* space before colon */
                "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}",
                "HTTP/1.1 200 OK\r\nContent-Length: 1234567890\r\n\r\n{}",
                "HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", /* no end of headers */
        };
        HttpResponse r = { .status = 7 };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(parse(bad[i], &r), -EBADMSG);
                assert_int_equal(r.status, 7); /* written only on success */
        }
}

static void test_http_response_parse_refuses_oversized_answers(void **state)
{
        _cleanup_(freep) char *big = malloc(HTTP_RESPONSE_MAX + 64);
        HttpResponse r;
        size_t n;

        (void) state;
        assert_non_null(big);
        /* Headers over HTTP_HEADERS_MAX. */
        n = (size_t) snprintf(big, 64, "HTTP/1.1 200 OK\r\nX: ");
        memset(big + n, 'a', HTTP_HEADERS_MAX);
        n += HTTP_HEADERS_MAX;
        memcpy(big + n, "\r\nContent-Length: 0\r\n\r\n", 24);
        assert_int_equal(parse(big, &r), -EMSGSIZE);
        /* The whole over HTTP_RESPONSE_MAX. */
        assert_int_equal(http_response_parse((const uint8_t *) big, HTTP_RESPONSE_MAX + 1, &r),
                         -EMSGSIZE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_response_parse_accepts_an_evhttp_answer),
                cmocka_unit_test(test_http_response_parse_refuses_malformed_or_ambiguous_answers),
                cmocka_unit_test(test_http_response_parse_refuses_oversized_answers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
