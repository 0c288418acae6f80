/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * HTTP/1.1 + JSON over aTLS. Server on libevent (evhttp over OpenSSL bufferevents), client on
 * libcurl. Paths are versioned (/v1/...); errors are JSON {"error": CODE, "detail": TEXT}.
 * There is no plaintext mode.
 */

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "cloister/atls.h"
#include "cloister/diag.h"

#define RPC_BODY_MAX_DEFAULT          (1024U * 1024U)
#define RPC_HEADERS_MAX_DEFAULT       (16U * 1024U)
#define RPC_TIMEOUT_SEC_DEFAULT       10
#define RPC_CONNECTIONS_MAX_DEFAULT   512
#define RPC_QUEUED_MAX_DEFAULT        256
#define RPC_PER_SOURCE_MAX_DEFAULT    64
#define RPC_DEADLINE_SEC_DEFAULT      10
#define RPC_WORKERS_MAX               64
#define RPC_HANDSHAKE_WORKERS_DEFAULT 8
/* Handshakes a server begins (each makes evidence: a TPM quote): one address may begin a burst
 * of this many, then this many a second; all addresses together the same, larger. A handshake
 * over the limit waits its turn (its deadline from accept running), it is not refused. */
#define RPC_HANDSHAKE_BURST_DEFAULT       32
#define RPC_HANDSHAKE_RATE_DEFAULT        8
#define RPC_HANDSHAKE_BURST_TOTAL_DEFAULT 64
#define RPC_HANDSHAKE_RATE_TOTAL_DEFAULT  16
/* A client without evidence reaches only routes with small requests (GETs, a repeated init):
 * it may send this much (headers and body) before its request is whole, then it is closed. */
#define RPC_UNATTESTED_REQUEST_MAX (64U * 1024U)
/* All requests not whole yet together: past this, the connection that sends more is closed
 * (clients holding large bodies cannot take the server's memory). */
#define RPC_PENDING_BYTES_MAX (32U * 1024U * 1024U)

typedef struct RpcRequest {
        const char *method; /* "GET", "POST" */
        const char *path;   /* without the query */
        const char *query;  /* after '?', as sent (not decoded); NULL without one */
        const json_t *body; /* NULL for GET */
        SSL *ssl;           /* the attested connection */
        const char *peer;   /* the client's address ("10.0.0.2:41234"), for logs and audit */
} RpcRequest;

/* Fills *ret_response (a new reference) and returns 0, or returns -errno with detail set:
 * -EBADMSG → 400, -EPERM → 403, -ENOENT → 404, -EEXIST/-EALREADY → 409, -EBUSY → 429,
 * else 500. A refusal may also set *ret_response to an object: its "code" (a node state
 * such as "already-member"), "nodeLog" and "nodeLogDropped" (a failed init's log for its owner),
 * and nothing else of it, go into the error body (docs/troubleshooting.md). */
typedef int (*RpcHandler)(void *userdata, const RpcRequest *req, json_t **ret_response,
                          char *detail, size_t detail_size);

typedef struct RpcRoute {
        const char *method;
        const char *path;
        RpcHandler handler;
        /* Only for clients whose evidence was verified on this connection (a server that
         * allows unattested clients, atls_context_allow_unattested_clients()); others get 403
         * and the server's on_refusal hook is told. */
        bool attested_client;
} RpcRoute;

typedef struct RpcServerConfig {
        const char *address; /* numeric IPv4/IPv6 */
        uint16_t port;       /* 0: an ephemeral port, see rpc_server_port() */
        size_t max_body;
        size_t max_headers;
        unsigned timeout_sec; /* idle read/write timeout */
        /* From accept to a whole request read (handshake, headers, body), whatever the pace of
         * the bytes: a client dripping them is closed then (slow loris). */
        unsigned deadline_sec;
        unsigned max_connections;
        unsigned max_per_source; /* open connections from one address */
        bool notify;             /* sd_notify READY=1/STOPPING=1 */
        int listen_fd; /* >= 0: serve this listening socket (handed over) instead of binding */
        /* > 0: handlers run on this many worker threads, so that a slow handler (a kubeadm
         * call, an fsync, an scrypt) never holds up the event loop, which then only accepts,
         * reads and writes; handlers must be thread-safe. 0: on the loop. */
        unsigned workers;
        /* With workers: requests waiting for a worker beyond this many are answered 503; and
         * connections whose next handshake step waits for a handshake worker beyond this many
         * are closed (a step a free worker is about to take does not wait). */
        unsigned max_queued;
        /* TLS handshakes (evidence issuing and verification happen in them) run on this many
         * threads (>= 1), one step at a time: the event loop only waits for the sockets, so
         * neither a slow client nor slow evidence holds it up, and a worker is never held by a
         * client's pace. The attester's and verifier's callbacks must be thread-safe. */
        unsigned handshake_workers;
        /* Fairness between addresses: their handshake steps wait in one queue per address,
         * served in turn, and one address runs at most half the handshake workers' steps at
         * once. Handshakes begun (evidence made) are limited per address and in all by token
         * buckets: burst, then rate a second (rate 0: no limit). */
        unsigned handshake_burst, handshake_rate;
        unsigned handshake_burst_total, handshake_rate_total;
        /* Called (with the server's userdata) when a request is refused before its handler
         * runs because the route needs an attested client; may be NULL. */
        void (*on_refusal)(void *userdata, const RpcRequest *req, const char *reason);
} RpcServerConfig;

void rpc_server_config_defaults(RpcServerConfig *c);

typedef struct RpcServer RpcServer;

/* routes: terminated by an entry with method NULL; must outlive the server. */
int rpc_server_new(const RpcServerConfig *config, AtlsContext *atls, const RpcRoute *routes,
                   void *userdata, RpcServer **ret);
RpcServer *rpc_server_free(RpcServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(RpcServer *, rpc_server_free);
uint16_t rpc_server_port(const RpcServer *s);
/* Serves until SIGTERM/SIGINT or rpc_server_stop(); then stops accepting and waits (bounded)
 * for open connections to finish. */
int rpc_server_run(RpcServer *s);
/* true if a SIGTERM or SIGINT asked the server to stop (a caller with other plans for after
 * rpc_server_run() must then just exit). */
bool rpc_server_signalled(const RpcServer *s);
/* For a caller about to exec another program in its place, once rpc_server_run() (or the thread
 * running it) has returned: blocks SIGTERM and SIGINT in the calling thread (the server's worker
 * threads always block them), so that one arriving from now on stays pending across exec until
 * the program's own rpc_server_run() (or its default action) takes it; true if one already asked
 * to stop, even after the loop ended. */
bool rpc_server_handover_signalled(const RpcServer *s);
/* A duplicate of the listening socket without close-on-exec, for handing it to a program this
 * process execs (so that clients never find the port closed); -errno if there is none. */
int rpc_server_dup_listen_fd(RpcServer *s);
/* Thread-safe request to stop. */
void rpc_server_stop(RpcServer *s);
/* The same without telling the service manager STOPPING=1: the caller hands the listening
 * socket to a program it execs, which carries on as the same service. Called from a handler
 * (the event loop's thread). */
void rpc_server_stop_for_handover(RpcServer *s);
unsigned rpc_server_connections(const RpcServer *s);
/* What the server held back under load, since it started (for tests and logs). */
typedef struct RpcServerStats {
        unsigned long handshakes_delayed; /* waited for their address's (or all's) rate */
        unsigned long handshakes_closed;  /* closed because the handshake queue was full */
        /* Requests waiting for a handler whose client closed its connection (end of file or
         * reset seen by the loop) before a worker took them: dropped, never run, not answered. */
        unsigned long jobs_dropped;
        /* Requests whose client closed its connection while their handler ran: the handler
         * finishes (what it did stands: a retry is answered from it), its answer is not sent. */
        unsigned long replies_discarded;
        unsigned long jobs_waiting; /* now: requests waiting for a handler */
        unsigned long handshakes_waiting; /* now: handshake steps waiting for a worker */
} RpcServerStats;
void rpc_server_stats(RpcServer *s, RpcServerStats *ret);

typedef struct RpcClientConfig {
        unsigned connect_timeout_ms;
        unsigned total_timeout_ms;
        unsigned retries; /* extra attempts for idempotent calls on connection errors */
        size_t max_response;
        /* The local address to connect from ("127.0.0.7"), or NULL for the kernel's choice: for
         * tests and benchmarks whose clients must each come from their own address. */
        const char *source_address;
} RpcClientConfig;

void rpc_client_config_defaults(RpcClientConfig *c);

/*
 * One call: method + base_url ("https://127.0.0.1:7000") + path, body as JSON (NULL for GET).
 * Returns the HTTP status in *ret_status and the parsed JSON body in *ret_response (may be NULL
 * when the body was empty). Attestation failures are never retried and fill d with the precise
 * reason; connection errors are retried with exponential backoff when idempotent.
 */
int rpc_call(AtlsContext *atls, const RpcClientConfig *config, const char *method,
             const char *base_url, const char *path, const json_t *body, bool idempotent,
             long *ret_status, json_t **ret_response, Diag *d);

/* An answer only the attested client can read (and nobody on the way can alter): sealed to its
 * aTLS certificate key (atls_seal(), spki from atls_peer_binding_input()), as {"sealed": B64}. */
int rpc_answer_seal(const uint8_t *spki, size_t spki_size, const char *label, const json_t *answer,
                    json_t **ret);
/* The client's side: *io must be exactly {"sealed": B64} opening with atls's key for label; it
 * is replaced by the answer inside. Anything else (an answer in the clear included) fails. */
int rpc_answer_unseal(AtlsContext *atls, const char *label, json_t **io, Diag *d);

/* A plain GET (https, or http for loopback test servers) of at most max_size bytes: for
 * self-authenticating data such as AMD's certificates. *ret may be NULL for an empty body. */
int rpc_http_get(const char *url, size_t max_size, unsigned timeout_ms, uint8_t **ret,
                 size_t *ret_size, long *ret_status, Diag *d);

/* The same with a method ("GET" or "PUT", empty body) and extra headers ("Name: value", NULL-
 * terminated or NULL): for cloud metadata services, which want their own headers. */
int rpc_http_request(const char *method, const char *url, const char *const *headers,
                     size_t max_size, unsigned timeout_ms, uint8_t **ret, size_t *ret_size,
                     long *ret_status, Diag *d);

/* The same GET, also returning the response headers asked for (names case-insensitive; each
 * value trimmed, malloc'd, NULL if absent; at most RPC_HTTP_HEADER_MAX bytes each, a repeated or
 * malformed one refused): for services that put data in headers (Intel PCS issuer chains,
 * Retry-After). Free the values with rpc_http_headers_free(), also after a failure. */
#define RPC_HTTP_HEADER_MAX (16U * 1024U)
typedef struct RpcHttpHeader {
        const char *name; /* in */
        char *value;      /* out */
} RpcHttpHeader;
int rpc_http_get_headers(const char *url, size_t max_size, unsigned timeout_ms, RpcHttpHeader *want,
                         size_t n_want, uint8_t **ret, size_t *ret_size, long *ret_status, Diag *d);
void rpc_http_headers_free(RpcHttpHeader *h, size_t n);
/* A JSON POST over HTTPS with mutual TLS to a service with a CA of its own (etcd's gateway,
 * lib/etcd): the server's certificate must chain to ca and name the host; cert and key are the
 * client's (files, read by OpenSSL for each connection). No proxy, no redirect, https only. */
typedef struct RpcMtlsConfig {
        const char *cert, *key, *ca;
        unsigned connect_timeout_ms, total_timeout_ms;
        size_t max_response;
} RpcMtlsConfig;
/* Whether a request that failed may have taken effect. */
typedef enum RpcSent {
        RPC_SENT_NOT,     /* no connection: safe to send elsewhere */
        RPC_SENT_UNKNOWN, /* sent, no answer: it may have taken effect */
        RPC_SENT_LOCAL,   /* a local failure (certificate files, memory, an oversized answer) */
} RpcSent;
/* 0 and the answer (any HTTP status; *ret_body NUL-terminated, NULL if empty) or -errno with d
 * naming the cause (-EMSGSIZE over max_response, -EKEYREJECTED TLS credentials or the server's
 * certificate, -ECONNREFUSED, -ETIMEDOUT, -EIO) and *ret_sent. */
int rpc_mtls_post(const RpcMtlsConfig *c, const char *url, const char *json, char **ret_body,
                  size_t *ret_size, long *ret_status, RpcSent *ret_sent, Diag *d);
/* One raw header line ("Name: value\r\n", size bytes, not NUL-terminated) against name: 1 and
 * the trimmed value (pointing into line) if it is that header, 0 if another, -EBADMSG if the
 * value holds a NUL, CR or LF. */
int rpc_http_header_match(const char *line, size_t size, const char *name, const char **ret_value,
                          size_t *ret_size);
