/* SPDX-License-Identifier: Apache-2.0 */
/* EC_KEY (deprecated in OpenSSL 3) for one purpose, see context_public_key(). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cloister/atls.h"
#include "cloister/crypto.h"
#include "cloister/log.h"

#include "atls-internal.h"

struct AtlsContext {
        AtlsRole role;
        bool attests, verifies;
        bool clients_optional; /* server: a client may decline to attest (see the header) */
        AtlsAttester attester;
        AtlsVerifier verifier;
        AtlsNonceFunc nonce_source; /* NULL: RAND_bytes() */
        void *nonce_userdata;
        EVP_PKEY *key; /* P-256, generated for this context, never exported */
        /* Its public half: the SubjectPublicKeyInfo DER the evidence binds, encoded once, and a
         * public-only key for X509_set_pubkey() (see context_public_key()). */
        uint8_t *spki;
        size_t spki_size;
        EVP_PKEY *cert_pub;
        SSL_CTX *ssl_ctx;
        ASN1_OBJECT *oids[_ATTEST_VARIANT_MAX];
        ASN1_OBJECT *wg_oid; /* ATLS_OID_WG_KEY */
        /* A WireGuard public key its certificates carry and its evidence binds (docs/mesh.md) */
        uint8_t wg_key[ATLS_WG_KEY_SIZE];
        bool has_wg_key;
        bool request_wg_key; /* client: asks the server for its key (ATLS_EXTENSION_WG_REQUEST) */
        /* The WireGuard key of the last peer verified on any connection (for libcurl users) */
        uint8_t last_peer_wg_key[ATLS_WG_KEY_SIZE];
        bool has_last_peer_wg_key;
        /* The last verification failure on any connection of this context: callers that do not
         * own the SSL object (libcurl) read it from here. */
        pthread_mutex_t lock;
        Diag last_failure;
        bool has_last_failure;
};

/* Per-connection state, attached to the SSL object on first use and freed with it. */
typedef struct AtlsConn {
        uint8_t my_nonce[ATLS_NONCE_SIZE]; /* sent to the peer, which must bind its evidence to it
                                            */
        bool my_nonce_sent;
        uint8_t peer_nonce[ATLS_NONCE_SIZE]; /* received: our evidence binds to it */
        bool peer_nonce_received;
        bool verified;
        bool failed;
        Diag failure;
        uint8_t *evidence; /* a copy of the peer's evidence (verifying contexts) */
        size_t evidence_size;
        uint8_t *peer_spki; /* the key that evidence is bound to (DER SubjectPublicKeyInfo) */
        size_t peer_spki_size;
        uint8_t peer_wg_key[ATLS_WG_KEY_SIZE]; /* bound by that evidence too, if has_peer_wg_key */
        bool has_peer_wg_key;
        bool peer_wants_wg_key; /* server: the client asked for this node's WireGuard key */
} AtlsConn;

static int ssl_conn_index = -1, ssl_ctx_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
        AtlsConn *c = ptr;

        if (c) {
                free(c->evidence);
                free(c->peer_spki);
        }
        free(c);
}

static void index_init(void)
{
        ssl_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
        ssl_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static AtlsConn *conn_get(SSL *ssl)
{
        AtlsConn *c = SSL_get_ex_data(ssl, ssl_conn_index);

        if (c)
                return c;
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        diag_clear(&c->failure);
        if (SSL_set_ex_data(ssl, ssl_conn_index, c) != 1) {
                free(c);
                return NULL;
        }
        return c;
}

static AtlsContext *context_of(SSL *ssl)
{
        return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_ctx_index);
}

const Diag *atls_peer_failure(const SSL *ssl)
{
        const AtlsConn *c;

        if (ssl_conn_index < 0)
                return NULL;
        c = SSL_get_ex_data(ssl, ssl_conn_index);
        return c && c->failed ? &c->failure : NULL;
}

int atls_peer_evidence_digest(const SSL *ssl, uint8_t ret[static SHA256_DIGEST_SIZE])
{
        const AtlsConn *c = ssl_conn_index >= 0 ? SSL_get_ex_data(ssl, ssl_conn_index) : NULL;

        if (!c || !c->verified || !c->evidence)
                return -ENOENT;
        crypto_sha256(c->evidence, c->evidence_size, ret);
        return 0;
}

int atls_peer_evidence(const SSL *ssl, const uint8_t **ret, size_t *ret_size)
{
        const AtlsConn *c = ssl_conn_index >= 0 ? SSL_get_ex_data(ssl, ssl_conn_index) : NULL;

        if (!c || !c->verified || !c->evidence)
                return -ENOENT;
        *ret = c->evidence;
        *ret_size = c->evidence_size;
        return 0;
}

int atls_peer_binding_input(const SSL *ssl, uint8_t ret_nonce[static ATLS_NONCE_SIZE],
                            const uint8_t **ret_spki, size_t *ret_spki_size)
{
        const AtlsConn *c = ssl_conn_index >= 0 ? SSL_get_ex_data(ssl, ssl_conn_index) : NULL;

        if (!c || !c->verified || !c->peer_spki || !c->my_nonce_sent)
                return -ENOENT;
        memcpy(ret_nonce, c->my_nonce, ATLS_NONCE_SIZE);
        *ret_spki = c->peer_spki;
        *ret_spki_size = c->peer_spki_size;
        return 0;
}

int atls_peer_wg_key(const SSL *ssl, uint8_t ret[static ATLS_WG_KEY_SIZE])
{
        const AtlsConn *c = ssl_conn_index >= 0 ? SSL_get_ex_data(ssl, ssl_conn_index) : NULL;

        if (!c || !c->verified || !c->has_peer_wg_key)
                return -ENOENT;
        memcpy(ret, c->peer_wg_key, ATLS_WG_KEY_SIZE);
        return 0;
}

int atls_context_set_wg_key(AtlsContext *c, const uint8_t key[static ATLS_WG_KEY_SIZE])
{
        if (!c || !c->attests)
                return -EINVAL;
        memcpy(c->wg_key, key, ATLS_WG_KEY_SIZE);
        c->has_wg_key = true;
        return 0;
}

int atls_context_request_wg_key(AtlsContext *c)
{
        if (!c || c->role != ATLS_ROLE_CLIENT || !c->verifies)
                return -EINVAL;
        c->request_wg_key = true;
        return 0;
}

bool atls_context_last_peer_wg_key(AtlsContext *c, uint8_t ret[static ATLS_WG_KEY_SIZE])
{
        bool has;

        (void) pthread_mutex_lock(&c->lock);
        has = c->has_last_peer_wg_key;
        if (has)
                memcpy(ret, c->last_peer_wg_key, ATLS_WG_KEY_SIZE);
        (void) pthread_mutex_unlock(&c->lock);
        return has;
}

int atls_context_spki(AtlsContext *c, const uint8_t **ret, size_t *ret_size)
{
        if (!c->spki)
                return -ENOENT;
        *ret = c->spki;
        *ret_size = c->spki_size;
        return 0;
}

int atls_context_unseal(AtlsContext *c, const char *label, const uint8_t *sealed, size_t size,
                        Secret **ret)
{
        return atls_unseal_with_key(c->key, c->spki, c->spki_size, label, sealed, size, ret);
}

int atls_context_set_nonce_source(AtlsContext *c, AtlsNonceFunc source, void *userdata)
{
        if (!c || !source)
                return -EINVAL;
        c->nonce_source = source;
        c->nonce_userdata = userdata;
        return 0;
}

int atls_context_allow_unattested_clients(AtlsContext *c)
{
        if (c->role != ATLS_ROLE_SERVER || !c->verifies)
                return -EINVAL;
        c->clients_optional = true;
        SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
        return 0;
}

bool atls_peer_verified(const SSL *ssl)
{
        const AtlsConn *c;

        if (ssl_conn_index < 0)
                return false;
        c = SSL_get_ex_data(ssl, ssl_conn_index);
        return c && c->verified;
}

void atls_describe_failure(const SSL *ssl, char *buf, size_t size)
{
        const Diag *d = ssl ? atls_peer_failure(ssl) : NULL;
        unsigned long e;

        if (d) {
                diag_format(d, buf, size);
                return;
        }
        e = ERR_peek_last_error();
        if (e != 0) {
                char err[256];
                ERR_error_string_n(e, err, sizeof(err));
                (void) snprintf(buf, size, "TLS handshake failed: %s", err);
                return;
        }
        (void) snprintf(buf, size, "TLS handshake failed (connection closed by peer)");
}

int atls_variant_oid(AttestVariant variant, char *buf, size_t size)
{
        int n;

        if (variant < 0 || variant >= _ATTEST_VARIANT_MAX)
                return -EINVAL;
        n = snprintf(buf, size, "%s.1.%d", ATLS_OID_ARC, (int) variant + 1);
        return n < 0 || (size_t) n >= size ? -ENOBUFS : 0;
}

int atls_binding(AttestVariant variant, AtlsRole attester_role,
                 const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki, size_t spki_size,
                 uint8_t ret[static ATLS_BINDING_SIZE])
{
        return atls_binding_wg(variant, attester_role, nonce, spki, spki_size, NULL, ret);
}

int atls_binding_wg(AttestVariant variant, AtlsRole attester_role,
                    const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                    size_t spki_size, const uint8_t *wg_key, uint8_t ret[static ATLS_BINDING_SIZE])
{
        static const char *const roles[_ATLS_ROLE_MAX] = {
                [ATLS_ROLE_CLIENT] = "client",
                [ATLS_ROLE_SERVER] = "server",
        };
        const char *v = attest_variant_to_string(variant);
        static const uint8_t zero = 0;
        uint8_t spki_hash[SHA256_DIGEST_SIZE];

        if (!v || attester_role < 0 || attester_role >= _ATLS_ROLE_MAX)
                return -EINVAL;
        crypto_sha256(spki, spki_size, spki_hash);
        /* NUL-separated strings (none contains a NUL) then fixed-size fields: unambiguous. A
         * WireGuard key changes the label too: no v1 binding equals a wg one. */
        const char *label = wg_key ? ATLS_BINDING_WG_LABEL : ATLS_BINDING_LABEL;
        const IoVec parts[] = {
                { label, strlen(label) },
                { &zero, 1 },
                { v, strlen(v) },
                { &zero, 1 },
                { roles[attester_role], strlen(roles[attester_role]) },
                { &zero, 1 },
                { nonce, ATLS_NONCE_SIZE },
                { spki_hash, sizeof(spki_hash) },
                { wg_key, wg_key ? ATLS_WG_KEY_SIZE : 0 },
        };
        return crypto_digest("SHA256", parts, ELEMENTSOF(parts) - (wg_key ? 0 : 1), ret,
                             ATLS_BINDING_SIZE);
}

/* --- nonce extension (RFC 8446 section 4.2: custom extension in ClientHello / CertificateRequest)
 */

static int nonce_ext_add(SSL *ssl, unsigned int ext_type, unsigned int context,
                         const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
                         int *al, void *add_arg)
{
        AtlsContext *c = context_of(ssl);
        AtlsConn *conn = conn_get(ssl);

        if (!c || !conn) {
                *al = SSL_AD_INTERNAL_ERROR;
                return -1;
        }
        /* The client always asks the server to attest; the server asks the client only in
         * mutual mode. */
        if ((context & SSL_EXT_CLIENT_HELLO) && c->role != ATLS_ROLE_CLIENT)
                return 0;
        if ((context & SSL_EXT_TLS1_3_CERTIFICATE_REQUEST) &&
            (c->role != ATLS_ROLE_SERVER || !c->verifies))
                return 0;
        if (c->nonce_source ? c->nonce_source(c->nonce_userdata, conn->my_nonce) < 0
                            : RAND_bytes(conn->my_nonce, sizeof(conn->my_nonce)) != 1) {
                *al = SSL_AD_INTERNAL_ERROR;
                return -1;
        }
        conn->my_nonce_sent = true;
        *out = conn->my_nonce;
        *outlen = sizeof(conn->my_nonce);
        return 1;
}

static int nonce_ext_parse(SSL *ssl, unsigned int ext_type, unsigned int context,
                           const unsigned char *in, size_t inlen, X509 *x, size_t chainidx, int *al,
                           void *parse_arg)
{
        AtlsConn *conn = conn_get(ssl);

        if (!conn) {
                *al = SSL_AD_INTERNAL_ERROR;
                return 0;
        }
        if (inlen != ATLS_NONCE_SIZE) {
                *al = SSL_AD_DECODE_ERROR;
                return 0;
        }
        memcpy(conn->peer_nonce, in, ATLS_NONCE_SIZE);
        conn->peer_nonce_received = true;
        return 1;
}

/* The client's request for the server's WireGuard key (empty, in the ClientHello): a server
 * that holds one puts it in its certificate, bound, only when asked, so that verifiers that
 * recompute the plain binding later (re-attestation, evidence bundles) never meet one. */
static int wg_request_add(SSL *ssl, unsigned int ext_type, unsigned int context,
                          const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
                          int *al, void *add_arg)
{
        AtlsContext *c = context_of(ssl);

        if (!c || c->role != ATLS_ROLE_CLIENT || !c->request_wg_key)
                return 0;
        *out = NULL;
        *outlen = 0;
        return 1;
}

static int wg_request_parse(SSL *ssl, unsigned int ext_type, unsigned int context,
                            const unsigned char *in, size_t inlen, X509 *x, size_t chainidx,
                            int *al, void *parse_arg)
{
        AtlsConn *conn = conn_get(ssl);

        if (!conn) {
                *al = SSL_AD_INTERNAL_ERROR;
                return 0;
        }
        if (inlen != 0) {
                *al = SSL_AD_DECODE_ERROR;
                return 0;
        }
        conn->peer_wants_wg_key = true;
        return 1;
}

/* --- attester: certificate with evidence, made per connection ------------------------------ */

/*
 * OpenSSL 3.0 encodes a provider-native key for X509_set_pubkey() through its encoder framework,
 * ~190 us per call here (make bench; a P-256 signature costs ~25 us): per handshake that was the
 * largest part of aTLS's cost beyond issuing and verifying evidence. A legacy EC_KEY copy of the
 * public half is encoded by the old ASN.1 method in ~5 us. Only the public key takes this path;
 * the private key stays a provider key and never leaves the process.
 */
static int context_public_key(AtlsContext *c)
{
        unsigned char point[133], *der = NULL;
        const unsigned char *p = point;
        size_t point_size = 0;
        EC_KEY *ec = NULL;
        int n;

        n = i2d_PUBKEY(c->key, &der);
        if (n <= 0)
                return crypto_log_errors(-EIO, "i2d_PUBKEY");
        c->spki = der;
        c->spki_size = (size_t) n;
        if (EVP_PKEY_get_octet_string_param(c->key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                            &point_size) != 1 ||
            !(ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1)) ||
            !o2i_ECPublicKey(&ec, &p, (long) point_size) || !(c->cert_pub = EVP_PKEY_new()) ||
            EVP_PKEY_assign_EC_KEY(c->cert_pub, ec) != 1) {
                EC_KEY_free(ec);
                return crypto_log_errors(-EIO, "public key copy");
        }
        return 0;
}

static int make_certificate(AtlsContext *c, const uint8_t nonce[static ATLS_NONCE_SIZE],
                            bool with_wg_key, X509 **ret, Diag *d)
{
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(freep) uint8_t *evidence = NULL;
        uint8_t binding[ATLS_BINDING_SIZE], serial[16];
        ASN1_OCTET_STRING *os = NULL, *wg_os = NULL;
        X509_EXTENSION *ext = NULL, *wg_ext = NULL;
        X509_NAME *name;
        BIGNUM *bn = NULL;
        size_t evidence_size = 0;
        int r;

        with_wg_key = with_wg_key && c->has_wg_key;
        r = atls_binding_wg(c->attester.variant, c->role, nonce, c->spki, c->spki_size,
                            with_wg_key ? c->wg_key : NULL, binding);
        if (r < 0)
                return diag_fail(d, r, "atls-binding", -1, "cannot compute the evidence binding");
        const AtlsBindingInput input = {
                .variant = c->attester.variant,
                .role = c->role,
                .nonce = nonce,
                .spki = c->spki,
                .spki_size = c->spki_size,
                .wg_key = with_wg_key ? c->wg_key : NULL,
        };
        r = c->attester.issue(c->attester.userdata, binding, &input, &evidence, &evidence_size, d);
        if (r < 0)
                return r;
        if (evidence_size > EVIDENCE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "evidence-size", -1,
                                 "evidence of %zu bytes exceeds %u bytes", evidence_size,
                                 EVIDENCE_SIZE_MAX);

        x = X509_new();
        os = ASN1_OCTET_STRING_new();
        name = X509_NAME_new();
        if (!x || !os || !name || RAND_bytes(serial, sizeof(serial)) != 1)
                goto fail;
        serial[0] &= 0x7f; /* positive INTEGER */
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
            X509_set_version(x, X509_VERSION_3) != 1 ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 3600) ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *) "cloister-atls", -1, -1, 0) != 1 ||
            X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
            X509_set_pubkey(x, c->cert_pub) != 1 ||
            ASN1_OCTET_STRING_set(os, evidence, (int) evidence_size) != 1)
                goto fail;
        ext = X509_EXTENSION_create_by_OBJ(NULL, c->oids[c->attester.variant], 0, os);
        if (!ext || X509_add_ext(x, ext, -1) != 1)
                goto fail;
        if (with_wg_key && (!(wg_os = ASN1_OCTET_STRING_new()) ||
                            ASN1_OCTET_STRING_set(wg_os, c->wg_key, ATLS_WG_KEY_SIZE) != 1 ||
                            !(wg_ext = X509_EXTENSION_create_by_OBJ(NULL, c->wg_oid, 0, wg_os)) ||
                            X509_add_ext(x, wg_ext, -1) != 1))
                goto fail;
        if (X509_sign(x, c->key, EVP_sha256()) <= 0)
                goto fail;

        X509_EXTENSION_free(wg_ext);
        ASN1_OCTET_STRING_free(wg_os);
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
        X509_NAME_free(name);
        BN_free(bn);
        *ret = TAKE_PTR(x);
        return 0;
fail:
        X509_EXTENSION_free(wg_ext);
        ASN1_OCTET_STRING_free(wg_os);
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
        X509_NAME_free(name);
        BN_free(bn);
        return diag_fail(d, crypto_log_errors(-EIO, "aTLS certificate"), "atls-certificate", -1,
                         "cannot build the attestation certificate");
}

static int cert_cb(SSL *ssl, void *arg)
{
        AtlsContext *c = arg;
        AtlsConn *conn = conn_get(ssl);
        _cleanup_(X509_freep) X509 *x = NULL;
        Diag d;
        int r;

        if (!conn)
                return 0;
        if (!c->attests)
                return 1; /* a client without attester sends no certificate */
        diag_clear(&d);
        if (!conn->peer_nonce_received) {
                (void) diag_fail(&conn->failure, -EPROTO, "atls-nonce", -1,
                                 "the peer sent no aTLS nonce: it is not an aTLS %s",
                                 c->role == ATLS_ROLE_SERVER ? "client" : "server");
                conn->failed = true;
                return 0;
        }
        /* A client's key always goes (a mesh request); a server's only to a client that asked. */
        r = make_certificate(c, conn->peer_nonce,
                             c->role == ATLS_ROLE_CLIENT || conn->peer_wants_wg_key, &x, &d);
        if (r < 0) {
                log_debug_errno(r, "aTLS: cannot attest: %s", d.message);
                conn->failure = d;
                conn->failed = true;
                return 0;
        }
        if (SSL_use_certificate(ssl, x) != 1 || SSL_use_PrivateKey(ssl, c->key) != 1)
                return crypto_log_errors(0, "SSL_use_certificate");
        return 1;
}

/* --- verifier: everything is checked here, before any application data ----------------------- */

static int verify_leaf(AtlsContext *c, AtlsConn *conn, X509_STORE_CTX *store, Diag *d)
{
        STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(store);
        X509 *leaf = X509_STORE_CTX_get0_cert(store);
        EVP_PKEY *pk = leaf ? X509_get0_pubkey(leaf) : NULL;
        char group[32] = "";
        const ASN1_OCTET_STRING *data;
        unsigned char *spki = NULL;
        uint8_t binding[ATLS_BINDING_SIZE];
        int idx, spki_size, r;
        AtlsRole peer = c->role == ATLS_ROLE_CLIENT ? ATLS_ROLE_SERVER : ATLS_ROLE_CLIENT;

        if (!leaf || !pk)
                return diag_fail(d, -EPROTO, "atls-certificate", -1,
                                 "the peer presented no usable certificate");
        if (chain && sk_X509_num(chain) > 1)
                return diag_fail(d, -EPROTO, "atls-certificate", -1,
                                 "the peer presented a chain of %d certificates; aTLS uses one "
                                 "self-signed certificate",
                                 sk_X509_num(chain));
        if (!EVP_PKEY_is_a(pk, "EC") ||
            EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           NULL) != 1 ||
            strcmp(group, "prime256v1") != 0)
                return diag_fail(d, -EPROTO, "atls-key-type", -1,
                                 "the peer's certificate key is not ECDSA P-256");
        /* The certificate's self-signature is not checked: it proves nothing the handshake
         * does not. TLS 1.3's CertificateVerify proves possession of this key over the whole
         * transcript, and the evidence is bound to this key's SPKI and our nonce, so a valid
         * self-signature adds no assurance and an invalid one no risk (docs/atls.md). */

        idx = X509_get_ext_by_OBJ(leaf, c->oids[c->verifier.variant], -1);
        if (idx < 0) {
                for (int v = 0; v < _ATTEST_VARIANT_MAX; v++)
                        if (X509_get_ext_by_OBJ(leaf, c->oids[v], -1) >= 0) {
                                r = diag_fail(d, -EPERM, "atls-variant", -1,
                                              "the peer attests as %s, the policy expects %s",
                                              attest_variant_to_string(v),
                                              attest_variant_to_string(c->verifier.variant));
                                diag_set_values(d, attest_variant_to_string(c->verifier.variant),
                                                attest_variant_to_string(v));
                                return r;
                        }
                return diag_fail(d, -EPROTO, "atls-evidence", -1,
                                 "the peer presented a plain certificate without attestation "
                                 "evidence");
        }
        if (X509_get_ext_by_OBJ(leaf, c->oids[c->verifier.variant], idx) >= 0)
                return diag_fail(d, -EPROTO, "atls-evidence", -1,
                                 "the peer's certificate carries two evidence extensions");
        data = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
        if (!data || data->length <= 0 || (size_t) data->length > EVIDENCE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "evidence-size", -1,
                                 "the peer's evidence is empty or larger than %u bytes",
                                 EVIDENCE_SIZE_MAX);
        if (!conn->my_nonce_sent)
                return diag_fail(d, -EPROTO, "atls-nonce", -1,
                                 "no nonce was sent to the peer on this connection");
        /* A WireGuard key, if the peer's certificate carries one: exactly one extension of
         * exactly 32 bytes, bound below (a key the evidence does not bind fails the binding). */
        conn->has_peer_wg_key = false;
        idx = X509_get_ext_by_OBJ(leaf, c->wg_oid, -1);
        if (idx >= 0) {
                const ASN1_OCTET_STRING *wg = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));

                if (X509_get_ext_by_OBJ(leaf, c->wg_oid, idx) >= 0)
                        return diag_fail(d, -EPROTO, "atls-wg-key", -1,
                                         "the peer's certificate carries two WireGuard keys");
                if (!wg || wg->length != ATLS_WG_KEY_SIZE)
                        return diag_fail(d, -EBADMSG, "atls-wg-key", -1,
                                         "the peer's WireGuard key is not %d bytes",
                                         ATLS_WG_KEY_SIZE);
                memcpy(conn->peer_wg_key, wg->data, ATLS_WG_KEY_SIZE);
                conn->has_peer_wg_key = true;
        }

        spki_size = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &spki);
        if (spki_size <= 0)
                return diag_fail(d, -EIO, "atls-certificate", -1, "cannot encode the peer's key");
        r = atls_binding_wg(c->verifier.variant, peer, conn->my_nonce, spki, (size_t) spki_size,
                            conn->has_peer_wg_key ? conn->peer_wg_key : NULL, binding);
        free(conn->peer_spki);
        conn->peer_spki = r >= 0 ? malloc((size_t) spki_size) : NULL;
        if (conn->peer_spki) {
                memcpy(conn->peer_spki, spki, (size_t) spki_size);
                conn->peer_spki_size = (size_t) spki_size;
        }
        OPENSSL_free(spki);
        if (r >= 0 && !conn->peer_spki)
                return diag_fail(d, -ENOMEM, "atls-certificate", -1, "out of memory");
        if (r < 0)
                return diag_fail(d, r, "atls-binding", -1, "cannot compute the expected binding");

        free(conn->evidence);
        conn->evidence = malloc((size_t) data->length);
        if (!conn->evidence)
                return diag_fail(d, -ENOMEM, "atls-evidence", -1, "out of memory");
        memcpy(conn->evidence, data->data, (size_t) data->length);
        conn->evidence_size = (size_t) data->length;
        if (c->verifier.record) {
                r = c->verifier.record(c->verifier.record_userdata, conn->evidence,
                                       conn->evidence_size, conn->my_nonce, conn->peer_spki,
                                       conn->peer_spki_size, binding);
                if (r < 0)
                        return diag_fail(d, r, "atls-record", -1,
                                         "cannot keep the peer's evidence: %s", strerror(-r));
        }
        return c->verifier.verify(c->verifier.userdata, data->data, (size_t) data->length, binding,
                                  d);
}

static int cert_verify_cb(X509_STORE_CTX *store, void *arg)
{
        SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
        AtlsContext *c = arg;
        AtlsConn *conn = ssl ? conn_get(ssl) : NULL;
        Diag d;
        int r;

        if (!conn) {
                X509_STORE_CTX_set_error(store, X509_V_ERR_OUT_OF_MEM);
                return 0;
        }
        if (!c->verifies) {
                (void) diag_fail(&conn->failure, -EPROTO, "atls-unexpected-certificate", -1,
                                 "the peer sent a certificate nobody asked for");
                conn->failed = true;
                X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
                return 0;
        }
        diag_clear(&d);
        r = verify_leaf(c, conn, store, &d);
        if (r < 0) {
                if (!diag_failed(&d))
                        (void) diag_fail(&d, r, "atls-verify", -1, "evidence verification failed");
                conn->failure = d;
                conn->failed = true;
                (void) pthread_mutex_lock(&c->lock);
                c->last_failure = d;
                c->has_last_failure = true;
                (void) pthread_mutex_unlock(&c->lock);
                /* A server refusing a client's evidence says so with a bad_certificate alert
                 * (RFC 8446, 6.2), so the client can tell "my evidence was refused" from any
                 * other failed handshake; the reason stays here (and in the join service's audit
                 * log), never sent. */
                X509_STORE_CTX_set_error(store, c->role == ATLS_ROLE_SERVER
                                                        ? X509_V_ERR_CERT_REJECTED
                                                        : X509_V_ERR_APPLICATION_VERIFICATION);
                return 0;
        }
        conn->verified = true;
        (void) pthread_mutex_lock(&c->lock);
        c->has_last_peer_wg_key = conn->has_peer_wg_key;
        memcpy(c->last_peer_wg_key, conn->peer_wg_key, ATLS_WG_KEY_SIZE);
        (void) pthread_mutex_unlock(&c->lock);
        X509_STORE_CTX_set_error(store, X509_V_OK);
        return 1;
}

/* --- context ------------------------------------------------------------------------------- */

int atls_context_apply(AtlsContext *c, SSL_CTX *ctx)
{
        const unsigned int ext_context = SSL_EXT_TLS_ONLY | SSL_EXT_TLS1_3_ONLY |
                                         SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_CERTIFICATE_REQUEST;
        int mode;

        if (SSL_CTX_set_ex_data(ctx, ssl_ctx_index, c) != 1)
                return -ENOMEM;
        /* TLS 1.3 only; nothing that would let a session skip fresh evidence: no tickets, no
         * session cache (resumption), no PSK callbacks, no early data. */
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
                return crypto_log_errors(-EIO, "TLS version");
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
        /* The certificate is self-signed and alone: no chain to build for it per handshake. */
        SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        if (SSL_CTX_set_num_tickets(ctx, 0) != 1 || SSL_CTX_set_max_early_data(ctx, 0) != 1 ||
            SSL_CTX_set_recv_max_early_data(ctx, 0) != 1)
                return crypto_log_errors(-EIO, "TLS session settings");
        /* Pinned groups and signature algorithms (the certificate key is P-256). */
        if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1 ||
            SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256") != 1 ||
            SSL_CTX_set1_client_sigalgs_list(ctx, "ECDSA+SHA256") != 1 ||
            SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:"
                                          "TLS_CHACHA20_POLY1305_SHA256") != 1)
                return crypto_log_errors(-EIO, "TLS algorithms");
        SSL_CTX_set_max_cert_list(ctx, ATLS_CERT_LIST_MAX);

        if (SSL_CTX_add_custom_ext(ctx, ATLS_EXTENSION_NONCE, ext_context, nonce_ext_add, NULL,
                                   NULL, nonce_ext_parse, NULL) != 1)
                return crypto_log_errors(-EIO, "aTLS nonce extension");
        if (SSL_CTX_add_custom_ext(ctx, ATLS_EXTENSION_WG_REQUEST,
                                   SSL_EXT_TLS_ONLY | SSL_EXT_TLS1_3_ONLY | SSL_EXT_CLIENT_HELLO,
                                   wg_request_add, NULL, NULL, wg_request_parse, NULL) != 1)
                return crypto_log_errors(-EIO, "aTLS WireGuard key request extension");
        SSL_CTX_set_cert_cb(ctx, cert_cb, c);

        mode = SSL_VERIFY_NONE;
        if (c->verifies)
                mode = SSL_VERIFY_PEER |
                       (c->clients_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
        SSL_CTX_set_verify(ctx, mode, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, c);
        return 0;
}

int atls_context_new(AtlsRole role, const AtlsAttester *attester, const AtlsVerifier *verifier,
                     AtlsContext **ret)
{
        _cleanup_(atls_context_freep) AtlsContext *c = NULL;
        int r;

        if (role == ATLS_ROLE_SERVER && !attester)
                return -EINVAL; /* an aTLS server always attests */
        if (role == ATLS_ROLE_CLIENT && !verifier)
                return -EINVAL; /* an aTLS client always verifies the server */
        if ((attester && (!attester->issue || !attest_variant_to_string(attester->variant))) ||
            (verifier && (!verifier->verify || !attest_variant_to_string(verifier->variant))))
                return -EINVAL;
        (void) pthread_once(&index_once, index_init);
        if (ssl_conn_index < 0 || ssl_ctx_index < 0)
                return -ENOMEM;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->role = role;
        (void) pthread_mutex_init(&c->lock, NULL);
        diag_clear(&c->last_failure);
        if (attester) {
                c->attester = *attester;
                c->attests = true;
        }
        if (verifier) {
                c->verifier = *verifier;
                c->verifies = true;
        }
        for (int v = 0; v < _ATTEST_VARIANT_MAX; v++) {
                char oid[96];
                r = atls_variant_oid(v, oid, sizeof(oid));
                if (r < 0)
                        return r;
                c->oids[v] = OBJ_txt2obj(oid, 1);
                if (!c->oids[v])
                        return crypto_log_errors(-EIO, "OBJ_txt2obj");
        }
        c->wg_oid = OBJ_txt2obj(ATLS_OID_WG_KEY, 1);
        if (!c->wg_oid)
                return crypto_log_errors(-EIO, "OBJ_txt2obj");
        c->key = EVP_EC_gen("P-256");
        if (!c->key)
                return crypto_log_errors(-EIO, "EVP_EC_gen");
        r = context_public_key(c);
        if (r < 0)
                return r;
        c->ssl_ctx =
                SSL_CTX_new(role == ATLS_ROLE_SERVER ? TLS_server_method() : TLS_client_method());
        if (!c->ssl_ctx)
                return crypto_log_errors(-ENOMEM, "SSL_CTX_new");
        r = atls_context_apply(c, c->ssl_ctx);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

AtlsContext *atls_context_free(AtlsContext *c)
{
        if (!c)
                return NULL;
        SSL_CTX_free(c->ssl_ctx);
        EVP_PKEY_free(c->key);
        EVP_PKEY_free(c->cert_pub);
        OPENSSL_free(c->spki);
        for (int v = 0; v < _ATTEST_VARIANT_MAX; v++)
                ASN1_OBJECT_free(c->oids[v]);
        ASN1_OBJECT_free(c->wg_oid);
        (void) pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

SSL_CTX *atls_context_ssl_ctx(AtlsContext *c)
{
        return c->ssl_ctx;
}

bool atls_context_last_failure(AtlsContext *c, Diag *ret)
{
        bool has;

        (void) pthread_mutex_lock(&c->lock);
        has = c->has_last_failure;
        if (has)
                *ret = c->last_failure;
        c->has_last_failure = false;
        (void) pthread_mutex_unlock(&c->lock);
        return has;
}
