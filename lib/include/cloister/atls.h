/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Attested TLS on OpenSSL 3 (docs/atls.md). TLS 1.3 only; no resumption, tickets, PSK or 0-RTT.
 *
 * The verifier's fresh 32-byte nonce travels in a private TLS extension (ClientHello for server
 * attestation, CertificateRequest for client attestation). The attester answers with a
 * self-signed P-256 certificate carrying an evidence document in an X.509 extension (one OID per
 * variant), bound to
 *     SHA-256("cloister-atls-v1" 0 variant 0 role 0 nonce SHA-256(SubjectPublicKeyInfo))
 * where role is the attester's ("server" or "client"). A node that also holds a WireGuard key
 * (docs/mesh.md) puts its 32-byte X25519 public key in a second extension (ATLS_OID_WG_KEY) and
 * binds it too:
 *     SHA-256("cloister-atls-wg-v1" 0 variant 0 role 0 nonce SHA-256(SPKI) wg-public-key)
 * so the certificate's WireGuard key cannot be swapped or stripped without the evidence failing
 * to verify. The verifier checks it inside the
 * certificate verification callback, so a handshake with an unverified peer never completes;
 * the reason is kept per connection (atls_peer_failure()) because the peer only sees an alert.
 */

#include <openssl/ssl.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/evidence.h"
#include "cloister/secret.h"

#define ATLS_NONCE_SIZE   32
#define ATLS_BINDING_SIZE 32
/* TLS ExtensionType from the private-use range (RFC 8446 section 11: 0xFF00..0xFFFF). */
#define ATLS_EXTENSION_NONCE 0xFF3C
/* Empty, in a ClientHello: the client asks for the server's WireGuard key (docs/mesh.md). */
#define ATLS_EXTENSION_WG_REQUEST 0xFF3D
/* OID arc of the project: 2.25.<UUID 1b348991-3587-4d71-b6f1-311ad6d5af7c as integer> (X.667),
 * a unique arc without registration. Evidence extension: ARC.1.<variant + 1>. */
#define ATLS_OID_ARC       "2.25.36161945517602080678326304722480639868"
#define ATLS_BINDING_LABEL "cloister-atls-v1"
/* The binding of a certificate that carries a WireGuard public key (docs/mesh.md), and that
 * key's extension: ARC.2.1, an OCTET STRING of exactly ATLS_WG_KEY_SIZE bytes. */
#define ATLS_BINDING_WG_LABEL "cloister-atls-wg-v1"
#define ATLS_OID_WG_KEY       ATLS_OID_ARC ".2.1"
#define ATLS_WG_KEY_SIZE      32
/* Largest certificate list accepted from a peer: evidence plus certificate overhead. */
#define ATLS_CERT_LIST_MAX (EVIDENCE_SIZE_MAX + 16U * 1024U)

typedef enum AtlsRole {
        ATLS_ROLE_CLIENT,
        ATLS_ROLE_SERVER,
        _ATLS_ROLE_MAX,
        _ATLS_ROLE_INVALID = -EINVAL,
} AtlsRole;

/* What a binding was computed from, for attesters that log or forward it. */
typedef struct AtlsBindingInput {
        AttestVariant variant;
        AtlsRole role;        /* the attester's role */
        const uint8_t *nonce; /* ATLS_NONCE_SIZE bytes from the verifier */
        const uint8_t *spki;  /* DER SubjectPublicKeyInfo of the certificate key */
        size_t spki_size;
        const uint8_t *wg_key; /* ATLS_WG_KEY_SIZE bytes bound too, or NULL */
} AtlsBindingInput;

/* Produces an evidence document whose binding (qualifying data / report data) is binding. */
typedef int (*AtlsIssueFunc)(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                             const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size,
                             Diag *d);
/* Verifies an evidence document against the caller's policy and the expected binding. */
typedef int (*AtlsVerifyFunc)(void *userdata, const uint8_t *evidence, size_t size,
                              const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d);

typedef struct AtlsAttester {
        AttestVariant variant;
        AtlsIssueFunc issue;
        void *userdata;
} AtlsAttester;

/* Sees what a verification is about to be given: the peer's evidence exactly as received, the
 * nonce this side sent, the peer's certificate key (DER SubjectPublicKeyInfo) and the binding
 * computed from them. For keeping evidence (`cloister verify --bundle`, docs/bundle.md): it is
 * called before the verdict, so a refused peer's evidence is kept too. A negative return fails
 * the handshake. */
typedef int (*AtlsRecordFunc)(void *userdata, const uint8_t *evidence, size_t size,
                              const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                              size_t spki_size, const uint8_t binding[static ATLS_BINDING_SIZE]);

typedef struct AtlsVerifier {
        AttestVariant variant;
        AtlsVerifyFunc verify;
        void *userdata;
        AtlsRecordFunc record; /* optional */
        void *record_userdata;
} AtlsVerifier;

typedef struct AtlsContext AtlsContext;

/*
 * A server always attests (attester required) and verifies clients only when verifier is given
 * (mutual mode). A client always verifies the server (verifier required) and attests only when
 * attester is given. The structs are copied; their userdata must outlive the context.
 */
int atls_context_new(AtlsRole role, const AtlsAttester *attester, const AtlsVerifier *verifier,
                     AtlsContext **ret);
AtlsContext *atls_context_free(AtlsContext *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AtlsContext *, atls_context_free);

/* The SSL_CTX to create connections from (owned by the context). */
SSL_CTX *atls_context_ssl_ctx(AtlsContext *c);
/* Applies the aTLS settings and callbacks to an SSL_CTX created elsewhere (libcurl's
 * CURLOPT_SSL_CTX_FUNCTION). The context must outlive ssl_ctx's connections. */
int atls_context_apply(AtlsContext *c, SSL_CTX *ssl_ctx);

/* Takes the most recent peer-verification failure of any connection of this context (for
 * callers such as libcurl that do not keep the SSL object); false if there was none. */
bool atls_context_last_failure(AtlsContext *c, Diag *ret);

/* A WireGuard public key (ATLS_WG_KEY_SIZE bytes, copied) this context's certificates carry
 * from now on, bound into its evidence (docs/mesh.md). For attesting contexts only. */
int atls_context_set_wg_key(AtlsContext *c, const uint8_t key[static ATLS_WG_KEY_SIZE]);
/* A client context asks servers for their WireGuard key: a server that holds one
 * (atls_context_set_wg_key()) then carries it in its certificate, bound; servers carry it only
 * when asked. Clients always carry theirs. */
int atls_context_request_wg_key(AtlsContext *c);
/* The WireGuard key of the peer last verified on any connection of this context (for callers
 * such as libcurl that do not keep the SSL object); false if that peer presented none. */
bool atls_context_last_peer_wg_key(AtlsContext *c, uint8_t ret[static ATLS_WG_KEY_SIZE]);
/* The WireGuard public key the peer's verified evidence binds on this connection; -ENOENT if
 * the peer's certificate carried none (or nothing was verified). */
int atls_peer_wg_key(const SSL *ssl, uint8_t ret[static ATLS_WG_KEY_SIZE]);

/* Why verification of the peer failed on this connection, or NULL. */
const Diag *atls_peer_failure(const SSL *ssl);
/* true once the peer's evidence was verified on this connection. */
bool atls_peer_verified(const SSL *ssl);
/* SHA-256 of the evidence document the peer presented and that was verified on this connection
 * (for audit records); -ENOENT if there is none. */
int atls_peer_evidence_digest(const SSL *ssl, uint8_t ret[static 32]);
/* The evidence document itself (owned by the connection); -ENOENT if none was verified. */
int atls_peer_evidence(const SSL *ssl, const uint8_t **ret, size_t *ret_size);
/* What the peer's verified evidence is bound to on this connection: the nonce this side sent
 * and the peer's certificate key (DER SubjectPublicKeyInfo, owned by the connection), so that
 * another process can verify the same evidence again and seal an answer to that key;
 * -ENOENT if no evidence was verified. */
int atls_peer_binding_input(const SSL *ssl, uint8_t ret_nonce[static ATLS_NONCE_SIZE],
                            const uint8_t **ret_spki, size_t *ret_spki_size);

/*
 * Sealed answers (docs/join.md, "Privilege separation"): bytes encrypted to an attested peer's
 * certificate key, so that the process that relays them (the join service's network process)
 * can neither read nor alter them. ECDH P-256 with an ephemeral key, HKDF-SHA-256 with the
 * label, AES-256-GCM:
 *     "CSL1" || ephemeral point (65, uncompressed) || IV (12) || ciphertext || tag (16)
 * label names the purpose ("join", "rejoin") and is authenticated: an answer sealed for one
 * purpose does not open as another.
 */
#define ATLS_SEALED_OVERHEAD (4U + 65U + 12U + 16U)
#define ATLS_SEALED_MAX      (1024U * 1024U)
int atls_seal(const uint8_t *spki, size_t spki_size, const char *label, const void *plain,
              size_t plain_size, uint8_t **ret, size_t *ret_size);
/* This context's certificate key (DER SubjectPublicKeyInfo, owned by the context): what a peer
 * seals to. */
int atls_context_spki(AtlsContext *c, const uint8_t **ret, size_t *ret_size);
/* Opens bytes sealed to this context's certificate key: -EBADMSG when malformed or not for this
 * key and label (the tag does not verify). */
int atls_context_unseal(AtlsContext *c, const char *label, const uint8_t *sealed, size_t size,
                        Secret **ret);

/* Server in mutual mode: a client may decline to attest (it sends no certificate) and the
 * handshake still completes, unverified; evidence a client does present must still pass. Every
 * endpoint that needs an attested client must then check atls_peer_verified() (RpcRoute's
 * attested_client does). For a server that serves the owner's CLI and joining nodes on one
 * port. */
int atls_context_allow_unattested_clients(AtlsContext *c);
/* The nonces this context sends its peers come from source instead of its own random generator
 * (a join service's monitor issues them and admits only evidence bound to one it issued and
 * that was not used: docs/join.md). A failing source fails the handshake. */
typedef int (*AtlsNonceFunc)(void *userdata, uint8_t ret[static ATLS_NONCE_SIZE]);
int atls_context_set_nonce_source(AtlsContext *c, AtlsNonceFunc source, void *userdata);
/* After a failed handshake: the precise reason in buf (our verdict on the peer if we have one,
 * otherwise what OpenSSL says, e.g. the alert the peer sent). */
void atls_describe_failure(const SSL *ssl, char *buf, size_t size);

/* The binding digest for (variant, role of the attester, nonce, SPKI DER). */
int atls_binding(AttestVariant variant, AtlsRole attester_role,
                 const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki, size_t spki_size,
                 uint8_t ret[static ATLS_BINDING_SIZE]);
/* The same with a WireGuard public key bound too (ATLS_BINDING_WG_LABEL); wg_key NULL gives
 * atls_binding()'s digest. */
int atls_binding_wg(AttestVariant variant, AtlsRole attester_role,
                    const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                    size_t spki_size, const uint8_t *wg_key, uint8_t ret[static ATLS_BINDING_SIZE]);
/* The evidence-extension OID of a variant, as dotted text. */
int atls_variant_oid(AttestVariant variant, char *buf, size_t size);
