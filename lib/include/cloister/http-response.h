/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * One HTTP/1.1 response as a peer sent it over a connection that it then closed (a request with
 * "Connection: close"): the status line, the header block and a body of exactly its
 * Content-Length. For callers that speak HTTP without libcurl (the join service's re-attestation
 * process, which holds no socket it did not receive: docs/reattestation.md). Bounded and strict:
 * no chunked encoding, no folded or repeated Content-Length, trailing bytes refused.
 */

#include <stddef.h>
#include <stdint.h>

#define HTTP_RESPONSE_MAX (64U * 1024U)
#define HTTP_HEADERS_MAX  (16U * 1024U)

typedef struct HttpResponse {
        unsigned status;     /* 100..599 */
        const uint8_t *body; /* into the parsed buffer */
        size_t body_size;
} HttpResponse;

/* 0, or -EMSGSIZE (over HTTP_RESPONSE_MAX or a header block over HTTP_HEADERS_MAX), -EBADMSG
 * (anything malformed, a body shorter or longer than its Content-Length, a chunked one). */
int http_response_parse(const uint8_t *buf, size_t size, HttpResponse *ret);
