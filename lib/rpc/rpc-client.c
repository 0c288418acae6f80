/* SPDX-License-Identifier: Apache-2.0 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/rpc.h"

void rpc_client_config_defaults(RpcClientConfig *c)
{
        *c = (RpcClientConfig){
                .connect_timeout_ms = 5000,
                .total_timeout_ms = 30000,
                .retries = 3,
                .max_response = RPC_BODY_MAX_DEFAULT,
        };
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct Response {
        char *data;
        size_t size, max;
        bool too_large;
        bool oom;
} Response;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        Response *r = userdata;
        size_t n = size * nmemb;
        char *p;

        if (n > r->max - r->size) {
                r->too_large = true;
                return 0; /* aborts the transfer */
        }
        p = realloc(r->data, r->size + n + 1);
        if (!p) {
                r->oom = true;
                return 0; /* aborts the transfer */
        }
        memcpy(p + r->size, ptr, n);
        r->data = p;
        r->size += n;
        r->data[r->size] = 0;
        return n;
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *userdata)
{
        return atls_context_apply(userdata, ssl_ctx) < 0 ? CURLE_SSL_CERTPROBLEM : CURLE_OK;
}

static void response_wipe(Response *r)
{
        if (r->data)
                explicit_wipe(r->data, r->size);
        free(r->data);
        *r = (Response){ .max = r->max };
}

/* A transfer that failed below HTTP, in the project's words: the cause and the next step. The
 * library's own text goes to the debug log only (-v). */
static int transport_failure(Diag *d, const char *url, CURLcode cc, const char *detail,
                             const RpcClientConfig *cfg)
{
        log_debug("%s: libcurl: %s (CURLcode %d)", url, detail ?: curl_easy_strerror(cc), (int) cc);
        /* An aTLS server refuses a client's evidence with bad_certificate (atls.c): in TLS 1.3
         * the client hears it only when it reads the answer. */
        if (detail && strstr(detail, "alert bad certificate"))
                return diag_fail(d, -EPERM, "rpc-evidence-refused", -1,
                                 "%s refused this node's evidence: it does not meet the policy "
                                 "there (its audit log names the check: a measurement, the "
                                 "attestation key, ...); boot the image that policy expects, or "
                                 "have the owner change the cluster's policy (docs/workflows.md)",
                                 url);
        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
                return diag_fail(d, -EHOSTUNREACH, "rpc-transport", -1,
                                 "%s: the host name does not resolve: check the address", url);
        case CURLE_COULDNT_CONNECT:
                return diag_fail(d, -ECONNREFUSED, "rpc-transport", -1,
                                 "%s: the connection was refused (or there is no route): nothing "
                                 "listens there; check the address and port, and that the node "
                                 "is up",
                                 url);
        case CURLE_OPERATION_TIMEDOUT:
                return diag_fail(d, -ETIMEDOUT, "rpc-transport", -1,
                                 "%s: no answer within %u s: the node may still be booting, "
                                 "busy, or behind a firewall; try again, or give a longer "
                                 "--timeout",
                                 url, (cfg->total_timeout_ms + 999) / 1000);
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CIPHER:
                return diag_fail(d, -EPROTO, "rpc-tls", -1,
                                 "%s: the TLS handshake failed: the port does not speak "
                                 "Cloister's attested TLS 1.3 (another service on that port?), "
                                 "or the node closed it at its connection limit; check the port, "
                                 "then try again",
                                 url);
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
                return diag_fail(d, -ECONNRESET, "rpc-transport", -1,
                                 "%s: the connection closed before an answer came (the node "
                                 "restarted, or closed it under load); try again",
                                 url);
        case CURLE_INTERFACE_FAILED:
                return diag_fail(d, -EADDRNOTAVAIL, "rpc-transport", -1,
                                 "%s: cannot connect from %s: not an address of this host; give "
                                 "one of its addresses",
                                 url, cfg->source_address ?: "the source address");
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return diag_fail(d, -EINVAL, "rpc-transport", -1,
                                 "%s: not an https:// URL of a node: give https://HOST:PORT", url);
        default:
                return diag_fail(d, -EIO, "rpc-transport", -1, "%s: the request failed (%s)", url,
                                 curl_easy_strerror(cc));
        }
}

static int one_attempt(AtlsContext *atls, const RpcClientConfig *cfg, const char *method,
                       const char *url, const char *body, Response *resp, long *ret_status,
                       bool *ret_retryable, Diag *d)
{
        struct curl_slist *headers = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        CURL *curl;
        CURLcode cc;
        Diag vf;
        int r = 0;

        *ret_retryable = false;
        curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        headers = curl_slist_append(headers, "Content-Type: application/json");
        headers = curl_slist_append(headers, "Expect:");
        if (!headers) {
                curl_easy_cleanup(curl);
                return -ENOMEM;
        }

        (void) curl_easy_setopt(curl, CURLOPT_URL, url);
        (void) curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
        (void) curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        (void) curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) cfg->connect_timeout_ms);
        (void) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) cfg->total_timeout_ms);
        (void) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        (void) curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        (void) curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
        (void) curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) cfg->max_response);
        (void) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        if (cfg->source_address) {
                /* "host!": bind to this address (never an interface name); a failure to bind
                 * is CURLE_INTERFACE_FAILED, reported below. */
                char source[80];

                (void) snprintf(source, sizeof(source), "host!%s", cfg->source_address);
                (void) curl_easy_setopt(curl, CURLOPT_INTERFACE, source);
        }
        /* The peer's identity is its attestation, checked in the aTLS callback that
         * on_ssl_ctx installs; its certificate is self-signed and carries no host name. */
        (void) curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        (void) curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
        (void) curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        /* No CA bundle: it plays no part in aTLS, and loading it costs milliseconds per call. */
        (void) curl_easy_setopt(curl, CURLOPT_CAINFO, NULL);
        (void) curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
        (void) curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_3);
        (void) curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        (void) curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, atls);
        if (strcmp(method, "GET") != 0) {
                (void) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
                (void) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ?: "");
        }

        cc = curl_easy_perform(curl);
        if (cc != CURLE_OK) {
                diag_clear(&vf);
                if (atls_context_last_failure(atls, &vf)) {
                        /* The peer failed attestation: never retried. */
                        *d = vf;
                        r = vf.check[0] ? -EKEYREJECTED : -EPROTO;
                } else if (resp->too_large) {
                        r = diag_fail(d, -EMSGSIZE, "rpc-response-size", -1,
                                      "%s: response larger than %zu bytes", url, cfg->max_response);
                } else {
                        r = transport_failure(d, url, cc, errbuf[0] ? errbuf : NULL, cfg);
                        /* A handshake the server closed may be its connection limit: worth
                         * another try (an attestation failure is never retried, above). */
                        *ret_retryable = cc == CURLE_COULDNT_CONNECT ||
                                         cc == CURLE_SSL_CONNECT_ERROR ||
                                         cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_SEND_ERROR ||
                                         cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING;
                }
        } else
                (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, ret_status);

        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return r;
}

int rpc_call(AtlsContext *atls, const RpcClientConfig *config, const char *method,
             const char *base_url, const char *path, const json_t *body, bool idempotent,
             long *ret_status, json_t **ret_response, Diag *d)
{
        RpcClientConfig defaults;
        _cleanup_(freep) char *url = NULL, *text = NULL;
        Response resp = {};
        long status = 0;
        bool retryable;
        int r;

        if (!config) {
                rpc_client_config_defaults(&defaults);
                config = &defaults;
        }
        (void) pthread_once(&curl_once, curl_init);
        if (curl_init_result != CURLE_OK)
                return -EIO;
        if (asprintf(&url, "%s%s", base_url, path) < 0)
                return -ENOMEM;
        if (body && json_dump_compact(body, &text) < 0)
                return -ENOMEM;
        resp.max = config->max_response;

        for (unsigned attempt = 0;; attempt++) {
                r = one_attempt(atls, config, method, url, text, &resp, &status, &retryable, d);
                if (r >= 0 || !idempotent || !retryable || attempt >= config->retries)
                        break;
                /* Exponential backoff: 100 ms, 200 ms, 400 ms, ... capped at 2 s. */
                unsigned ms = MIN(100U << MIN(attempt, 5U), 2000U);
                struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
                log_debug("rpc: %s failed (%s), retrying in %u ms", url, d ? d->message : "", ms);
                response_wipe(&resp);
                (void) nanosleep(&ts, NULL);
        }
        if (text)
                explicit_wipe(text, strlen(text));
        if (r < 0) {
                response_wipe(&resp);
                return r;
        }

        json_t *j = NULL;
        if (resp.size > 0) {
                Diag pd;

                diag_clear(&pd);
                r = json_parse_buffer(resp.data, resp.size, "response", &j, &pd);
                response_wipe(&resp);
                /* Error statuses may come from the HTTP layer itself (413) without JSON. */
                if (r < 0 && status >= 200 && status < 300) {
                        if (d)
                                *d = pd;
                        return r;
                }
        }
        response_wipe(&resp);
        *ret_status = status;
        if (ret_response)
                *ret_response = j;
        else
                json_decref(j);
        return 0;
}

int rpc_http_get(const char *url, size_t max_size, unsigned timeout_ms, uint8_t **ret,
                 size_t *ret_size, long *ret_status, Diag *d)
{
        return rpc_http_request("GET", url, NULL, max_size, timeout_ms, ret, ret_size, ret_status,
                                d);
}

int rpc_http_header_match(const char *line, size_t size, const char *name, const char **ret_value,
                          size_t *ret_size)
{
        size_t n = strlen(name), i;

        /* "Name:" then optional whitespace, the value, whitespace and CR LF trimmed. */
        if (n == 0 || size <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
                return 0;
        for (i = 0; i < n; i++)
                if (line[i] == 0)
                        return 0;
        i = n + 1;
        while (i < size && (line[i] == ' ' || line[i] == '\t'))
                i++;
        while (size > i && (line[size - 1] == '\r' || line[size - 1] == '\n' ||
                            line[size - 1] == ' ' || line[size - 1] == '\t'))
                size--;
        for (size_t k = i; k < size; k++)
                if (line[k] == 0 || line[k] == '\r' || line[k] == '\n')
                        return -EBADMSG;
        *ret_value = line + i;
        *ret_size = size - i;
        return 1;
}

typedef struct HeaderCapture {
        RpcHttpHeader *headers;
        size_t n;
        bool too_large, oom, bad;
} HeaderCapture;

static void capture_reset(HeaderCapture *h)
{
        for (size_t i = 0; i < h->n; i++) {
                free(h->headers[i].value);
                h->headers[i].value = NULL;
        }
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        HeaderCapture *h = userdata;
        size_t n = size * nmemb;

        /* A new status line (after a 1xx interim answer) starts a new set. */
        if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
                capture_reset(h);
                return n;
        }
        for (size_t i = 0; i < h->n; i++) {
                const char *v;
                size_t vn;
                int r = rpc_http_header_match(ptr, n, h->headers[i].name, &v, &vn);

                if (r == 0)
                        continue;
                if (r < 0 || h->headers[i].value) {
                        h->bad = true; /* malformed or repeated: refused, never merged */
                        return 0;
                }
                if (vn > RPC_HTTP_HEADER_MAX) {
                        h->too_large = true;
                        return 0;
                }
                h->headers[i].value = strndup(v, vn);
                if (!h->headers[i].value) {
                        h->oom = true;
                        return 0;
                }
        }
        return n;
}

static int http_request(const char *method, const char *url, const char *const *headers,
                        size_t max_size, unsigned timeout_ms, RpcHttpHeader *want, size_t n_want,
                        uint8_t **ret, size_t *ret_size, long *ret_status, Diag *d)
{
        Response resp = { .max = max_size };
        HeaderCapture cap = { .headers = want, .n = n_want };
        struct curl_slist *list = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        long status = 0;
        CURLcode cc;
        CURL *curl;

        for (size_t i = 0; i < n_want; i++)
                want[i].value = NULL;
        (void) pthread_once(&curl_once, curl_init);
        if (curl_init_result != CURLE_OK)
                return -EIO;
        curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        (void) curl_easy_setopt(curl, CURLOPT_URL, url);
        (void) curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
        (void) curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        /* 0 would mean "no timeout" to libcurl. */
        (void) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) (timeout_ms ?: 1));
        (void) curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        (void) curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
        if (n_want > 0) {
                (void) curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
                (void) curl_easy_setopt(curl, CURLOPT_HEADERDATA, &cap);
        }
        (void) curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        /* Never through a proxy from the environment: metadata and tokens stay on the link. */
        (void) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        if (strcmp(method, "PUT") == 0) {
                (void) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
                (void) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        } else if (strcmp(method, "GET") != 0) {
                curl_easy_cleanup(curl);
                return -EINVAL;
        }
        for (size_t i = 0; headers && headers[i]; i++) {
                struct curl_slist *next = curl_slist_append(list, headers[i]);
                if (!next) {
                        curl_slist_free_all(list);
                        curl_easy_cleanup(curl);
                        return -ENOMEM;
                }
                list = next;
        }
        if (list)
                (void) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
        cc = curl_easy_perform(curl);
        (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
        curl_slist_free_all(list);
        if (cc != CURLE_OK) {
                free(resp.data);
                capture_reset(&cap);
                if (resp.oom || cap.oom)
                        return -ENOMEM;
                if (resp.too_large)
                        return diag_fail(d, -EMSGSIZE, "http", -1,
                                         "%s: answer larger than %zu bytes", url, max_size);
                if (cap.too_large)
                        return diag_fail(d, -EMSGSIZE, "http", -1,
                                         "%s: a response header is larger than %u bytes", url,
                                         RPC_HTTP_HEADER_MAX);
                if (cap.bad)
                        return diag_fail(d, -EBADMSG, "http", -1,
                                         "%s: a response header is malformed or repeated", url);
                return diag_fail(d, -EHOSTUNREACH, "http", -1, "%s: %s", url,
                                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        }
        *ret = (uint8_t *) resp.data;
        *ret_size = resp.size;
        *ret_status = status;
        return 0;
}

int rpc_http_request(const char *method, const char *url, const char *const *headers,
                     size_t max_size, unsigned timeout_ms, uint8_t **ret, size_t *ret_size,
                     long *ret_status, Diag *d)
{
        return http_request(method, url, headers, max_size, timeout_ms, NULL, 0, ret, ret_size,
                            ret_status, d);
}

int rpc_http_get_headers(const char *url, size_t max_size, unsigned timeout_ms, RpcHttpHeader *want,
                         size_t n_want, uint8_t **ret, size_t *ret_size, long *ret_status, Diag *d)
{
        return http_request("GET", url, NULL, max_size, timeout_ms, want, n_want, ret, ret_size,
                            ret_status, d);
}

void rpc_http_headers_free(RpcHttpHeader *h, size_t n)
{
        for (size_t i = 0; h && i < n; i++) {
                free(h[i].value);
                h[i].value = NULL;
        }
}

int rpc_mtls_post(const RpcMtlsConfig *c, const char *url, const char *json, char **ret_body,
                  size_t *ret_size, long *ret_status, RpcSent *ret_sent, Diag *d)
{
        Response resp = { .max = c->max_response };
        struct curl_slist *headers = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        const char *why;
        long status = 0;
        CURLcode cc;
        CURL *curl;
        int r = 0;

        *ret_sent = RPC_SENT_LOCAL;
        (void) pthread_once(&curl_once, curl_init);
        if (curl_init_result != CURLE_OK)
                return diag_fail(d, -EIO, "rpc-transport", -1, "libcurl does not initialise");
        curl = curl_easy_init();
        if (!curl)
                return -ENOMEM;
        headers = curl_slist_append(headers, "Content-Type: application/json");
        if (!headers) {
                curl_easy_cleanup(curl);
                return -ENOMEM;
        }
        (void) curl_easy_setopt(curl, CURLOPT_URL, url);
        (void) curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
        (void) curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        (void) curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) c->connect_timeout_ms);
        /* 0 would mean "no timeout" to libcurl. */
        (void) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) (c->total_timeout_ms ?: 1));
        (void) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        (void) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
        (void) curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        (void) curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
        (void) curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_response);
        (void) curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        (void) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        (void) curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        (void) curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        (void) curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
        (void) curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca);
        (void) curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
        (void) curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
        (void) curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);

        cc = curl_easy_perform(curl);
        why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (cc == CURLE_OK)
                (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        else {
                log_debug("%s: libcurl: %s (CURLcode %d)", url, why, (int) cc);
                if (resp.too_large || cc == CURLE_FILESIZE_EXCEEDED)
                        r = diag_fail(d, -EMSGSIZE, "rpc-response-size", -1,
                                      "%s: the answer is larger than %zu bytes: refused", url,
                                      c->max_response);
                else if (resp.oom)
                        r = -ENOMEM;
                else if (cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CACERT_BADFILE)
                        r = diag_fail(d, -EKEYREJECTED, "rpc-tls", -1,
                                      "%s: the client certificate, key or CA cannot be used "
                                      "(%s)",
                                      url, why);
                else if (cc == CURLE_PEER_FAILED_VERIFICATION) {
                        *ret_sent = RPC_SENT_NOT;
                        r = diag_fail(d, -EKEYREJECTED, "rpc-tls", -1,
                                      "%s: the server's certificate does not verify against the "
                                      "CA or does not name the host (%s)",
                                      url, why);
                } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                           cc == CURLE_SSL_CONNECT_ERROR) {
                        *ret_sent = RPC_SENT_NOT;
                        r = diag_fail(d, -ECONNREFUSED, "rpc-transport", -1,
                                      "%s: no connection (%s)", url, why);
                } else if (cc == CURLE_OPERATION_TIMEDOUT) {
                        *ret_sent = RPC_SENT_UNKNOWN;
                        r = diag_fail(d, -ETIMEDOUT, "rpc-transport", -1,
                                      "%s: no answer within %u ms", url, c->total_timeout_ms);
                } else {
                        *ret_sent = RPC_SENT_UNKNOWN;
                        r = diag_fail(d, -EIO, "rpc-transport", -1, "%s: %s", url, why);
                }
        }
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        if (r < 0) {
                free(resp.data);
                return r;
        }
        *ret_body = resp.data;
        *ret_size = resp.size;
        *ret_status = status;
        return 0;
}
