/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Typed messages between a privileged monitor and the unprivileged process that faces the
 * network (docs/join.md, "Privilege separation"), after OpenSSH's privsep: the monitor answers
 * only the requests of a fixed table, each a fixed number of length-bounded fields.
 *
 * Wire format (both directions), little endian:
 *     u32 length of the rest | u8 op | i32 status | u8 n | n x (u32 size | size bytes)
 * A text field carries its terminating NUL and no other; requests have status 0, replies carry
 * the op of their request with PRIVSEP_REPLY set. Anything else is refused (-EBADMSG) and the
 * monitor closes the channel.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/macro.h"

#define PRIVSEP_MSG_MAX    (2U * 1024U * 1024U)
#define PRIVSEP_FIELDS_MAX 12
#define PRIVSEP_REPLY      0x80

typedef struct PrivsepFieldSpec {
        uint32_t min, max; /* bytes, the NUL of a text field included */
        bool text;
} PrivsepFieldSpec;

typedef struct PrivsepSpec {
        uint8_t op;
        const char *name;
        uint8_t n_fields;
        PrivsepFieldSpec fields[PRIVSEP_FIELDS_MAX];
} PrivsepSpec;

typedef struct PrivsepField {
        const uint8_t *data; /* into the received buffer; a text field is NUL-terminated */
        size_t size;
} PrivsepField;

typedef struct PrivsepMsg {
        uint8_t op;
        int32_t status;
        uint8_t n_fields;
        PrivsepField fields[PRIVSEP_FIELDS_MAX];
} PrivsepMsg;

/* Parses buf (one message without its length word) against specs (the table of one protocol,
 * n_specs entries): the op must be in the table, its fields exactly as it declares. */
int privsep_parse(const uint8_t *buf, size_t size, const PrivsepSpec *specs, size_t n_specs,
                  PrivsepMsg *ret);
static inline const char *privsep_text(const PrivsepMsg *m, size_t i)
{
        return (const char *) m->fields[i].data;
}

/* A message being built; its buffer is wiped when freed (fields may be secret). */
typedef struct PrivsepBuf {
        uint8_t *data;
        size_t size, allocated;
        uint8_t *count; /* the field count byte */
        int error;      /* sticky: the first failure of an add */
} PrivsepBuf;

void privsep_buf_begin(PrivsepBuf *b, uint8_t op, int32_t status);
void privsep_buf_add(PrivsepBuf *b, const void *data, size_t size);
void privsep_buf_add_text(PrivsepBuf *b, const char *s);
void privsep_buf_done(PrivsepBuf *b);
/* Sends the message (the length word is filled in here); -EMSGSIZE over PRIVSEP_MSG_MAX. */
int privsep_send(int fd, PrivsepBuf *b);
/* Receives one message (without its length word) into *ret (free with privsep_wipe_free());
 * -ECONNRESET when the other end closed the channel, -EMSGSIZE over PRIVSEP_MSG_MAX. */
int privsep_recv(int fd, uint8_t **ret, size_t *ret_size);
void privsep_wipe_free(uint8_t *buf, size_t size);

/*
 * Nonces a monitor issues for its network process to send peers (the join service's aTLS
 * nonces: docs/join.md): evidence is accepted only if bound to a nonce issued here, within ttl,
 * and not used before. The table is bounded: when it is full of nonces still good, issuing one
 * evicts the oldest (a flood of handshakes can make a slow one fail, never admit a replay).
 */
#define PRIVSEP_NONCE_SIZE 32

typedef enum PrivsepNonceState {
        PRIVSEP_NONCE_FREE,
        PRIVSEP_NONCE_ISSUED,
        PRIVSEP_NONCE_USED,
} PrivsepNonceState;

typedef struct PrivsepNonce {
        uint8_t nonce[PRIVSEP_NONCE_SIZE];
        uint64_t issued_ms;
        PrivsepNonceState state;
} PrivsepNonce;

typedef struct PrivsepNonces {
        pthread_mutex_t lock;
        PrivsepNonce *entries;
        size_t n;
        uint64_t ttl_ms;
        uint64_t (*now)(void); /* CLOCK_MONOTONIC in ms; tests may replace it */
} PrivsepNonces;

int privsep_nonces_init(PrivsepNonces *t, size_t n, unsigned ttl_sec);
void privsep_nonces_done(PrivsepNonces *t);
/* A fresh random nonce, recorded. */
int privsep_nonce_issue(PrivsepNonces *t, uint8_t ret[static PRIVSEP_NONCE_SIZE]);
/* 0 if nonce was issued here, is within its ttl and was not used; it is used from now on.
 * -ENOENT: never issued (or evicted), -EALREADY: used before, -ETIME: expired. */
int privsep_nonce_consume(PrivsepNonces *t, const uint8_t nonce[static PRIVSEP_NONCE_SIZE]);

/*
 * The join service's protocol (join-service/join-service-monitor.c): the network process asks,
 * the monitor answers. Every reply has two text fields: a detail (why, on failure) and an answer
 * (JSON text; for POLICY the policy file, "" when unchanged; a join or rejoin ticket is sealed to
 * the client's key, so the network process relays it without being able to read it).
 */
typedef enum JoinPrivsepOp {
        /* node, evidence digest (hex or ""), reason: a refusal to audit (counted when repeated) */
        JOIN_PRIVSEP_REFUSAL = 1,
        /* policy digest held: the policy file when it changed (detail: its digest) */
        JOIN_PRIVSEP_POLICY,
        /* evidence, nonce, client SPKI, peer, name, role, diskUuid, endpoint, authorization */
        JOIN_PRIVSEP_JOIN,
        /* evidence, nonce, client SPKI, peer, name, diskUuid, endpoint */
        JOIN_PRIVSEP_REJOIN,
        JOIN_PRIVSEP_MEMBERS,
        JOIN_PRIVSEP_AUDIT, /* query */
        JOIN_PRIVSEP_NODE,
        /* master secret, salt, measurement salt (a repeated init from the owner) */
        JOIN_PRIVSEP_INIT_AGAIN,
        /* nonce, SPKI (the network process's TLS key): this node's own evidence for a handshake,
         * quoted by the monitor with the binding it computes itself for the server role (answer:
         * the serialised evidence) */
        JOIN_PRIVSEP_ATTEST,
        /* a nonce for a handshake (answer: hex), recorded by the monitor: join and rejoin are
         * refused unless their evidence is bound to one it issued, unused and unexpired */
        JOIN_PRIVSEP_NONCE,
        /* peer, version (decimal), authenticator (hex), policy document: the owner's policy
         * update (docs/policy-update.md); the monitor checks the authenticator with its master
         * secret, the version against the one it stores, and the policy, then stores and audits
         * it (answer: {"version", "policyDigest", "previousVersion", "previousDigest",
         * "changed"}) */
        JOIN_PRIVSEP_POLICY_PUSH,
        /* FMSPC, PCK CA: the cached TDX collateral of that platform, for evidence that carries
         * none (privsep-tdx.h); the reply's own fields: detail, stale note, the seven files */
        JOIN_PRIVSEP_TDX_COLLATERAL,
        /* nothing: the text of GET /metrics on the loopback listener (answer: Prometheus text,
         * not JSON; docs/reattestation.md, "Metrics") */
        JOIN_PRIVSEP_METRICS,
        /* evidence, nonce, client SPKI, peer, WireGuard public key (32 bytes, bound by the
         * evidence): a member registers its key and gets the mesh document (docs/mesh.md) */
        JOIN_PRIVSEP_MESH,
        /* peer, name, diskUuid, akDigest ("" allowed), admitted, authenticator (hex): the owner
         * removes a member (docs/membership.md); the monitor checks the authenticator, then
         * removes it from etcd in one transaction with its audit entry (answer: {"removed",
         * "role", "diskUuid", "akDigest", "admitted"}) */
        JOIN_PRIVSEP_NODE_REMOVE,
        /* nonce, SPKI, WireGuard public key: JOIN_PRIVSEP_ATTEST with the wg binding, for a
         * verifier that asked for this node's key (docs/mesh.md); the monitor binds only the key
         * it made itself (--mesh), never one the network process names */
        JOIN_PRIVSEP_ATTEST_WG,
} JoinPrivsepOp;

#define JOIN_PRIVSEP_DETAIL_MAX 512U
#define JOIN_PRIVSEP_ANSWER_MAX (PRIVSEP_MSG_MAX - 64U * 1024U)

extern const PrivsepSpec join_privsep_requests[];
extern const PrivsepSpec join_privsep_replies[];
extern const size_t join_privsep_n_specs;
