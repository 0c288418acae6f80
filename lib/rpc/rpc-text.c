/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loopback text endpoint (rpc-text.h): plain HTTP, one GET path, on a loopback address only.
 * libevent's evhttp reads the request (headers bounded, no body, an idle timeout); this file
 * decides only the path and the method.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/rpc-text.h"

struct RpcTextServer {
        struct event_base *base;
        struct evhttp *http;
        int fd;
        char *path;
        RpcTextHandler handler;
        void *userdata;
        pthread_t thread;
        bool started;
};

/* Numeric only: a name would need a resolver, and "localhost" can be made to mean anything. */
static int parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
        char host[INET6_ADDRSTRLEN + 2];
        size_t n = strlen(s);

        if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
                s++;
                n -= 2;
        }
        if (n == 0 || n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';
        memset(ss, 0, sizeof(*ss));
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *) ss)->sin_addr) == 1) {
                ss->ss_family = AF_INET;
                *len = sizeof(struct sockaddr_in);
                return 0;
        }
        if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) ss)->sin6_addr) == 1) {
                ss->ss_family = AF_INET6;
                *len = sizeof(struct sockaddr_in6);
                return 0;
        }
        return -EINVAL;
}

static bool sockaddr_is_loopback(const struct sockaddr_storage *ss)
{
        if (ss->ss_family == AF_INET) {
                const uint8_t *a = (const uint8_t *) &((const struct sockaddr_in *) ss)->sin_addr;
                return a[0] == 127; /* 127.0.0.0/8, RFC 1122 3.2.1.3 */
        }
        if (ss->ss_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) ss)->sin6_addr;
                if (IN6_IS_ADDR_LOOPBACK(a))
                        return true;
                /* An IPv4-mapped loopback address (RFC 4291 2.5.5.2). */
                return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
        }
        return false;
}

bool rpc_address_is_loopback(const char *address)
{
        struct sockaddr_storage ss;
        socklen_t len;

        if (!address || parse_address(address, &ss, &len) < 0)
                return false;
        return sockaddr_is_loopback(&ss);
}

int rpc_text_listen(const char *address_port, int *ret_fd)
{
        struct sockaddr_storage ss;
        const char *colon;
        unsigned long port;
        socklen_t len;
        char host[INET6_ADDRSTRLEN + 3], *end;
        int fd, one = 1, r;

        colon = address_port ? strrchr(address_port, ':') : NULL;
        if (!colon || colon == address_port || (size_t) (colon - address_port) >= sizeof(host))
                return -EINVAL;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end || end == colon + 1 || colon[1] == '-' || port > 65535)
                return -EINVAL;
        memcpy(host, address_port, (size_t) (colon - address_port));
        host[colon - address_port] = '\0';
        /* "::1:9100" without brackets is ambiguous: refused as malformed. */
        if (strchr(host, ':') && host[0] != '[')
                return -EINVAL;
        r = parse_address(host, &ss, &len);
        if (r < 0)
                return r;
        if (!sockaddr_is_loopback(&ss))
                return -EADDRNOTAVAIL;
        if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *) &ss)->sin_port = htons((uint16_t) port);
        else
                ((struct sockaddr_in6 *) &ss)->sin6_port = htons((uint16_t) port);
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &ss, len) < 0 || listen(fd, 16) < 0) {
                r = -errno;
                (void) close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

uint16_t rpc_text_socket_port(int fd)
{
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof(ss);

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return 0;
        if (ss.ss_family == AF_INET)
                return ntohs(((struct sockaddr_in *) &ss)->sin_port);
        if (ss.ss_family == AF_INET6)
                return ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
        return 0;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *text)
{
        struct evbuffer *out = evbuffer_new();

        if (out)
                (void) evbuffer_add(out, text, strlen(text));
        (void) evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                                 code == 200 ? RPC_TEXT_CONTENT_TYPE : "text/plain; charset=utf-8");
        (void) evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        evhttp_send_reply(req, code, reason, out);
        if (out)
                evbuffer_free(out);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
        RpcTextServer *s = arg;
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        _cleanup_(freep) char *text = NULL;
        int r;

        if (!path || strcmp(path, s->path) != 0)
                return reply(req, 404, "Not Found", "not found: this endpoint serves GET only\n");
        if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
                return reply(req, 405, "Method Not Allowed", "GET only\n");
        r = s->handler(s->userdata, &text);
        if (r < 0 || !text)
                return reply(req, 503, "Service Unavailable", "not available, try again\n");
        if (strlen(text) > RPC_TEXT_BODY_MAX)
                return reply(req, 503, "Service Unavailable", "too large\n");
        reply(req, 200, "OK", text);
}

int rpc_text_server_new(int listen_fd, const char *path, RpcTextHandler handler, void *userdata,
                        RpcTextServer **ret)
{
        RpcTextServer *s;

        if (listen_fd < 0 || !path || path[0] != '/' || !handler || !ret)
                return -EINVAL;
        /* rpc_text_server_free() breaks the loop from another thread. */
        (void) evthread_use_pthreads();
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = listen_fd;
        s->handler = handler;
        s->userdata = userdata;
        s->path = strdup(path);
        s->base = event_base_new();
        s->http = s->base ? evhttp_new(s->base) : NULL;
        if (!s->path || !s->http) {
                s->fd = -1; /* the caller's still */
                (void) rpc_text_server_free(s);
                return -ENOMEM;
        }
        evhttp_set_gencb(s->http, dispatch, s);
        evhttp_set_max_headers_size(s->http, RPC_TEXT_HEADERS_MAX);
        evhttp_set_max_body_size(s->http, 0);
        evhttp_set_timeout(s->http, RPC_TEXT_TIMEOUT_SEC);
        /* Others are answered 501 by evhttp itself; HEAD, POST, ... never reach dispatch(). */
        evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET);
        if (!evhttp_accept_socket_with_handle(s->http, listen_fd)) {
                s->fd = -1;
                (void) rpc_text_server_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static void *serve(void *arg)
{
        RpcTextServer *s = arg;

        (void) event_base_dispatch(s->base);
        return NULL;
}

int rpc_text_server_start(RpcTextServer *s)
{
        int r;

        if (!s || s->started)
                return -EINVAL;
        r = pthread_create(&s->thread, NULL, serve, s);
        if (r != 0)
                return -r;
        s->started = true;
        return 0;
}

RpcTextServer *rpc_text_server_free(RpcTextServer *s)
{
        if (!s)
                return NULL;
        if (s->started) {
                (void) event_base_loopbreak(s->base);
                (void) pthread_join(s->thread, NULL);
        }
        /* evhttp_free() closes the sockets it accepts on (the bound socket is its own now). */
        if (s->http)
                evhttp_free(s->http);
        else if (s->fd >= 0)
                (void) close(s->fd);
        if (s->base)
                event_base_free(s->base);
        free(s->path);
        free(s);
        return NULL;
}

int rpc_text_escape_label(const char *value, char *buf, size_t size)
{
        size_t k = 0;

        for (const char *p = value; *p; p++) {
                const char *rep = *p == '\\'   ? "\\\\"
                                  : *p == '"'  ? "\\\""
                                  : *p == '\n' ? "\\n"
                                               : NULL;
                size_t n = rep ? 2 : 1;

                if (k + n >= size)
                        return -ENOBUFS;
                if (rep)
                        memcpy(buf + k, rep, 2);
                else
                        buf[k] = *p;
                k += n;
        }
        if (size == 0)
                return -ENOBUFS;
        buf[k] = '\0';
        return (int) k;
}
