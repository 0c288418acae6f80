/* SPDX-License-Identifier: Apache-2.0 */
/* The loopback text endpoint (rpc-text.h) behind the join service's GET /metrics: it listens on
 * loopback addresses only, answers one GET path with the handler's text and nothing else, and
 * label values (member names a joining node chose) are escaped as the Prometheus text format
 * 0.0.4 requires (backslash, double quote, line feed). */
#include "helpers/unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cloister/rpc-text.h"

static void test_rpc_text_escape_label_escapes_backslash_quote_and_newline(void **state)
{
        (void) state;
        char buf[64];

        assert_int_equal(rpc_text_escape_label("worker-1", buf, sizeof(buf)), 8);
        assert_string_equal(buf, "worker-1");
        assert_int_equal(rpc_text_escape_label("a\\b\"c\nd", buf, sizeof(buf)), 10);
        assert_string_equal(buf, "a\\\\b\\\"c\\nd");
        /* A name that would close the quotes and add a series of its own stays inside them. */
        assert_int_equal(rpc_text_escape_label("x\"} 1\nfake{a=\"", buf, sizeof(buf)), 17);
        assert_string_equal(buf, "x\\\"} 1\\nfake{a=\\\"");
        assert_null(strchr(buf, '\n'));
        /* Other bytes as they are (the format takes any UTF-8). */
        assert_int_equal(rpc_text_escape_label("n\xc3\xa9", buf, sizeof(buf)), 3);
        assert_int_equal(rpc_text_escape_label("", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "");
}

static void test_rpc_text_escape_label_refuses_what_does_not_fit(void **state)
{
        (void) state;
        char buf[5];

        assert_int_equal(rpc_text_escape_label("abcd", buf, sizeof(buf)), 4);
        assert_int_equal(rpc_text_escape_label("abcde", buf, sizeof(buf)), -ENOBUFS);
        /* An escape is never cut in half. */
        assert_int_equal(rpc_text_escape_label("abc\"", buf, sizeof(buf)), -ENOBUFS);
        assert_int_equal(rpc_text_escape_label("", buf, 0), -ENOBUFS);
}

static void test_rpc_address_is_loopback_only_for_loopback_addresses(void **state)
{
        (void) state;
        assert_true(rpc_address_is_loopback("127.0.0.1"));
        assert_true(rpc_address_is_loopback("127.3.4.5"));
        assert_true(rpc_address_is_loopback("::1"));
        assert_true(rpc_address_is_loopback("[::1]"));
        assert_true(rpc_address_is_loopback("::ffff:127.0.0.1"));
        assert_false(rpc_address_is_loopback("0.0.0.0"));
        assert_false(rpc_address_is_loopback("::"));
        assert_false(rpc_address_is_loopback("10.0.0.1"));
        assert_false(rpc_address_is_loopback("128.0.0.1"));
        assert_false(rpc_address_is_loopback("::2"));
        assert_false(rpc_address_is_loopback("::ffff:10.0.0.1"));
        assert_false(rpc_address_is_loopback("localhost"));
        assert_false(rpc_address_is_loopback(""));
        assert_false(rpc_address_is_loopback(NULL));
}

static void test_rpc_text_listen_refuses_addresses_that_are_not_loopback(void **state)
{
        (void) state;
        int fd = -1;

        assert_int_equal(rpc_text_listen("0.0.0.0:0", &fd), -EADDRNOTAVAIL);
        assert_int_equal(rpc_text_listen("[::]:0", &fd), -EADDRNOTAVAIL);
        assert_int_equal(rpc_text_listen("192.0.2.1:0", &fd), -EADDRNOTAVAIL);
        assert_int_equal(rpc_text_listen("localhost:0", &fd), -EINVAL);
        assert_int_equal(rpc_text_listen("::1:0", &fd), -EINVAL);
        assert_int_equal(rpc_text_listen("127.0.0.1", &fd), -EINVAL);
        assert_int_equal(rpc_text_listen("127.0.0.1:65536", &fd), -EINVAL);
        assert_int_equal(rpc_text_listen("127.0.0.1:-1", &fd), -EINVAL);
        assert_int_equal(fd, -1);
        assert_int_equal(rpc_text_listen("127.0.0.1:0", &fd), 0);
        assert_true(rpc_text_socket_port(fd) > 0);
        (void) close(fd);
}

static int calls;

static int handler(void *userdata, char **ret)
{
        calls++;
        if (strcmp(userdata, "fail") == 0)
                return -EIO;
        *ret = strdup("# TYPE x gauge\nx 1\n");
        return *ret ? 0 : -ENOMEM;
}

/* One request on a fresh connection; the whole answer. */
static char *ask(uint16_t port, const char *request)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        static char buf[4096];
        size_t k = 0;
        ssize_t n;
        int fd;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(write(fd, request, strlen(request)), (ssize_t) strlen(request));
        while (k < sizeof(buf) - 1 && (n = read(fd, buf + k, sizeof(buf) - 1 - k)) > 0)
                k += (size_t) n;
        buf[k] = '\0';
        (void) close(fd);
        return buf;
}

static void test_rpc_text_server_answers_get_of_its_path_only(void **state)
{
        (void) state;
        RpcTextServer *s = NULL;
        uint16_t port;
        char *a;
        int fd;

        assert_int_equal(rpc_text_listen("127.0.0.1:0", &fd), 0);
        port = rpc_text_socket_port(fd);
        assert_int_equal(rpc_text_server_new(fd, "/metrics", handler, (void *) "ok", &s), 0);
        assert_int_equal(rpc_text_server_start(s), 0);
        calls = 0;

        a = ask(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(a, "Content-Type: " RPC_TEXT_CONTENT_TYPE "\r\n"));
        assert_non_null(strstr(a, "\r\n\r\n# TYPE x gauge\nx 1\n"));
        assert_int_equal(calls, 1);
        /* A query does not change the path. */
        a = ask(port, "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));

        a = ask(port, "GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_non_null(strstr(a, "HTTP/1.1 404 "));
        a = ask(port, "GET /v1/members HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_non_null(strstr(a, "HTTP/1.1 404 "));
        /* No body is read (413), no other method served. */
        a = ask(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
        assert_non_null(strstr(a, "HTTP/1.1 413 "));
        a = ask(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assert_non_null(strstr(a, "HTTP/1.1 501 "));
        a = ask(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_non_null(strstr(a, "HTTP/1.1 501 "));
        a = ask(port, "NONSENSE\r\n\r\n");
        assert_null(strstr(a, "200 OK"));
        assert_int_equal(calls, 2);
        s = rpc_text_server_free(s);
        assert_null(s);
}

static void test_rpc_text_server_answers_503_when_the_handler_fails(void **state)
{
        (void) state;
        RpcTextServer *s = NULL;
        char *a;
        int fd;

        assert_int_equal(rpc_text_listen("127.0.0.1:0", &fd), 0);
        assert_int_equal(rpc_text_server_new(fd, "/metrics", handler, (void *) "fail", &s), 0);
        assert_int_equal(rpc_text_server_start(s), 0);
        a = ask(rpc_text_socket_port(fd), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_non_null(strstr(a, "HTTP/1.1 503 "));
        assert_null(strstr(a, "# TYPE"));
        s = rpc_text_server_free(s);
}

static void test_rpc_text_listen_takes_ipv6_loopback(void **state)
{
        (void) state;
        int fd = -1, r = rpc_text_listen("[::1]:0", &fd);

        /* A host without IPv6 cannot bind it; anything else must work. */
        if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT)
                skip();
        assert_int_equal(r, 0);
        assert_true(rpc_text_socket_port(fd) > 0);
        (void) close(fd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rpc_text_escape_label_escapes_backslash_quote_and_newline),
                cmocka_unit_test(test_rpc_text_escape_label_refuses_what_does_not_fit),
                cmocka_unit_test(test_rpc_address_is_loopback_only_for_loopback_addresses),
                cmocka_unit_test(test_rpc_text_listen_refuses_addresses_that_are_not_loopback),
                cmocka_unit_test(test_rpc_text_server_answers_get_of_its_path_only),
                cmocka_unit_test(test_rpc_text_server_answers_503_when_the_handler_fails),
                cmocka_unit_test(test_rpc_text_listen_takes_ipv6_loopback),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
