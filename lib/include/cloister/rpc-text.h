/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A read-only text endpoint in plain HTTP, for loopback only: a Prometheus scrape of
 * GET /metrics (the join service's, docs/reattestation.md "Metrics"). Everything else Cloister
 * serves is attested TLS (rpc.h); this one carries no secret and accepts no input but the
 * request line, and it listens on a loopback address or not at all (rpc_text_listen() refuses
 * any other), so only processes of the node itself reach it. HTTP is parsed by libevent's
 * evhttp with small limits (one path, GET only, headers 8 KiB, no body, 5 s).
 *
 * And the Prometheus text exposition format's escaping of label values, which carry names a
 * joining node chose.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_TEXT_HEADERS_MAX  (8U * 1024U)
#define RPC_TEXT_TIMEOUT_SEC  5
#define RPC_TEXT_BODY_MAX     (8U * 1024U * 1024U)
#define RPC_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* true for a numeric loopback address: 127.0.0.0/8, ::1 (brackets allowed), ::ffff:127.x.y.z. */
bool rpc_address_is_loopback(const char *address);

/* "ADDR:PORT" or "[V6]:PORT" with a numeric loopback address: a listening socket on it (port 0:
 * any free one). -EADDRNOTAVAIL for an address that is not loopback (the caller says so; it never
 * listens there), -EINVAL for a malformed one, else the bind/listen errno. */
int rpc_text_listen(const char *address_port, int *ret_fd);
/* The port a socket is bound to (0 if unknown). */
uint16_t rpc_text_socket_port(int fd);

/* Makes the text for one GET: a NUL-terminated string (malloc'ed, the caller's) or -errno
 * (answered 503). Runs on the server's own thread. */
typedef int (*RpcTextHandler)(void *userdata, char **ret_text);

typedef struct RpcTextServer RpcTextServer;

/* A server of GET path on listen_fd (taken over: closed with the server) answering the
 * handler's text as RPC_TEXT_CONTENT_TYPE; 404 for other paths, 501 for other methods (evhttp's
 * answer), 413 for a request with a body, 503 when the handler fails. It runs
 * on a thread of its own from rpc_text_server_start() on. */
int rpc_text_server_new(int listen_fd, const char *path, RpcTextHandler handler, void *userdata,
                        RpcTextServer **ret);
int rpc_text_server_start(RpcTextServer *s);
/* Stops the thread (if started) and frees; NULL-safe. */
RpcTextServer *rpc_text_server_free(RpcTextServer *s);

/* A label value as the text format wants it between its quotes: backslash, double quote and
 * line feed escaped (\\, \", \n), every other byte as is. Returns the length written (without
 * the NUL), or -ENOBUFS if it does not fit (the output then holds nothing usable). */
int rpc_text_escape_label(const char *value, char *buf, size_t size);
