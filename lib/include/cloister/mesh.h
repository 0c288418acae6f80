/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The WireGuard mesh between attested members (docs/mesh.md): each node's X25519 key pair, the
 * mesh document a join service releases to its attested members, and its application to a
 * `cloister0` device through `ip`, `wg` and `nft` run by argument vector (never a shell).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/secret.h"

#define MESH_KEY_SIZE   32
#define MESH_KEY_BASE64 44 /* without the NUL */
#define MESH_DEVICE     "cloister0"
#define MESH_PORT       51820
/* The fwmark of the device's own UDP packets, which the drop rule lets past. */
#define MESH_FWMARK 51820
/* Members' mesh addresses: 10.77.0.0/16, host n (1..MESH_PEERS_MAX) is 10.77.(n / 256).(n % 256).
 * Traffic to or from this range that does not go through cloister0 is dropped. */
#define MESH_NETWORK      "10.77.0.0/16"
#define MESH_PEERS_MAX    1024
#define MESH_DOC_SIZE_MAX (512U * 1024U)
#define MESH_NAME_MAX     63
#define MESH_ADDRESS_MAX  45 /* an IPv6 literal */
#define MESH_ENDPOINT_MAX (MESH_ADDRESS_MAX + 2 + 6)

/* This node's key pair, made at start: the private half only in locked memory, wiped on free. */
typedef struct MeshKey {
        Secret *private_key; /* MESH_KEY_SIZE raw X25519 bytes */
        uint8_t public_key[MESH_KEY_SIZE];
} MeshKey;

int mesh_key_generate(MeshKey *ret);
void mesh_key_done(MeshKey *k);
/* WireGuard's text form of a key: standard base64 of the 32 bytes. */
void mesh_key_to_base64(const uint8_t key[static MESH_KEY_SIZE],
                        char ret[static MESH_KEY_BASE64 + 1]);
int mesh_key_from_base64(const char *s, uint8_t ret[static MESH_KEY_SIZE]);

typedef struct MeshPeer {
        char name[MESH_NAME_MAX + 1];
        uint8_t public_key[MESH_KEY_SIZE];
        char endpoint[MESH_ENDPOINT_MAX + 1]; /* IPv4:PORT or [IPv6]:PORT of its underlay */
        char address[MESH_ADDRESS_MAX + 1];   /* its mesh address (an IPv4 in MESH_NETWORK) */
        char pod_cidr[MESH_ADDRESS_MAX + 5];  /* "" when not known */
} MeshPeer;

/* The mesh document: {"version": 1, "self": NAME, "address": IP, "peers": [{"name",
 * "publicKey", "endpoint", "address", "podCidr"?}]}. Untrusted bytes (the join service is
 * attested, but the document is parsed before anything else trusts it): strict keys, every
 * string shape-checked, at most MESH_PEERS_MAX peers, no key or address twice, endpoints outside
 * the mesh range, pod ranges IPv4 /16../32 that overlap neither the mesh range, each other nor
 * any peer's endpoint. */
typedef struct MeshDoc {
        char self[MESH_NAME_MAX + 1];
        char address[MESH_ADDRESS_MAX + 1]; /* this node's mesh address */
        size_t n_peers;
        MeshPeer *peers;
} MeshDoc;

int mesh_doc_parse(const void *data, size_t size, MeshDoc *ret, Diag *d);
void mesh_doc_done(MeshDoc *m);
/* true if s is an IPv4 address inside MESH_NETWORK (not its network or broadcast address). */
bool mesh_address_ok(const char *s);
/* What mesh_doc_parse() accepts as a peer's name and its endpoint (IPv4:PORT or [IPv6]:PORT, a
 * literal address, neither unspecified nor inside MESH_NETWORK): the join service lists only
 * peers that pass, so one bad record cannot make every node refuse the whole document. */
bool mesh_name_ok(const char *s);
bool mesh_endpoint_ok(const char *s);
/* The mesh address of host number n (1 .. MESH_PEERS_MAX). */
int mesh_address_of(unsigned n, char ret[static MESH_ADDRESS_MAX + 1]);

/* How the device is made: the kernel's module or wireguard-go (userspace, over TUN). */
typedef enum MeshBackend {
        MESH_BACKEND_KERNEL,
        MESH_BACKEND_USERSPACE,
        _MESH_BACKEND_MAX,
        _MESH_BACKEND_INVALID = -EINVAL,
} MeshBackend;

const char *mesh_backend_to_string(MeshBackend b);
MeshBackend mesh_backend_from_string(const char *s);

/*
 * Brings cloister0 to the document: the device (made if missing, with the private key through a
 * pipe on wg's standard input; never on a command line, in the environment or in a file),
 * its address, exactly the document's peers (others removed), a route per peer address, and the
 * nftables table `cloister-mesh` that drops traffic to or from MESH_NETWORK that bypasses
 * cloister0 (made first, so a failure on the way leaves the mesh closed, not open). Peers whose
 * key is this node's own are skipped. Runs `ip`, `wg`, `nft` (and `wireguard-go`) from $PATH.
 */
int mesh_apply(MeshBackend backend, const MeshKey *key, const MeshDoc *doc, const char *runtime_dir,
               Diag *d);
/* Installs (replaces) only the nftables table that drops traffic to or from MESH_NETWORK
 * bypassing cloister0: at start, so the range is closed before any document arrives (and on a
 * node that never applies one). */
int mesh_close(Diag *d);
/* Removes the device (the drop rule stays: the mesh range stays closed). */
int mesh_down(void);

struct json_t;

/* What the device reports per peer (`wg show cloister0 endpoints|latest-handshakes|transfer`,
 * never `dump`: that one prints the private key), for GET /v1/node and `cloister status`. */
typedef struct MeshPeerStatus {
        uint8_t public_key[MESH_KEY_SIZE];
        char endpoint[MESH_ENDPOINT_MAX + 1]; /* "" when the device knows none */
        uint64_t latest_handshake;            /* Unix seconds; 0: never */
        uint64_t rx_bytes, tx_bytes;
} MeshPeerStatus;

typedef struct MeshStatus {
        size_t n_peers;
        MeshPeerStatus *peers; /* at most MESH_PEERS_MAX */
} MeshStatus;

typedef enum MeshShow {
        MESH_SHOW_ENDPOINTS,         /* KEY \t ENDPOINT | (none) */
        MESH_SHOW_LATEST_HANDSHAKES, /* KEY \t SECONDS */
        MESH_SHOW_TRANSFER,          /* KEY \t RX \t TX */
        _MESH_SHOW_MAX,
} MeshShow;

/* One `wg show cloister0 WHAT` output merged into s (peers found by key, added up to
 * MESH_PEERS_MAX): lines of a base64 key, a tab and WHAT's fields, each shape-checked (bounded
 * reader, fuzzed: fuzz-mesh-status); anything else is refused with a reason in d. */
int mesh_status_parse(MeshStatus *s, MeshShow what, const void *data, size_t size, Diag *d);
/* Runs the three `wg show` by argument vector (their output through a file in runtime_dir,
 * removed at once) and parses them. */
int mesh_status_read(const char *runtime_dir, MeshStatus *ret, Diag *d);
/* {"device": "cloister0", "peers": [{"publicKey", "endpoint" (null: none), "latestHandshake"
 * (Unix seconds, 0: never), "rxBytes", "txBytes"}]} */
int mesh_status_to_json(const MeshStatus *s, struct json_t **ret);
void mesh_status_done(MeshStatus *s);
/* For GET /v1/node: mesh_status_to_json() of the device now, or {"device", "error": why}. */
struct json_t *mesh_status_report(const char *runtime_dir);
