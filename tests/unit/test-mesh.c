/* SPDX-License-Identifier: Apache-2.0 */
/* The mesh (docs/mesh.md): the node's WireGuard key pair and the mesh document it receives,
 * parsed strictly (every refusal with -EBADMSG or -EMSGSIZE and nothing written on failure). */
#include <openssl/evp.h>

#include "helpers/unit.h"

#include "cloister/mesh.h"

/* WireGuard's keys are base64 of 32 bytes: 0x01 * 32 and 0x02 * 32. */
#define K1 "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define K2 "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="

#define PEER(name, key, endpoint, address)                                                         \
        "{\"name\": \"" name "\", \"publicKey\": \"" key "\", \"endpoint\": \"" endpoint           \
        "\", \"address\": \"" address "\"}"
#define DOC(peers)                                                                                 \
        "{\"version\": 1, \"self\": \"worker-1\", \"address\": \"10.77.0.1\", \"peers\": [" peers  \
        "]}"
#define GOOD                                                                                       \
        DOC(PEER("worker-1", K1, "10.0.0.2:51820",                                                 \
                 "10.77.0.1") ", " PEER("worker-2", K2, "[fd00::3]:51820", "10.77.0.2"))

static int parse(const char *text, MeshDoc *m)
{
        Diag d;

        diag_clear(&d);
        *m = (MeshDoc){ .n_peers = 77 }; /* poisoned: untouched on failure */
        return mesh_doc_parse(text, strlen(text), m, &d);
}

static void expect_refused(const char *text, int error)
{
        MeshDoc m;

        assert_int_equal(parse(text, &m), error);
        assert_int_equal(m.n_peers, 77);
        assert_null(m.peers);
}

static void test_mesh_key_public_half_is_x25519_of_the_private_half(void **state)
{
        MeshKey a = {}, b = {};
        uint8_t pub[MESH_KEY_SIZE];
        size_t n = sizeof(pub);
        EVP_PKEY *k;

        assert_int_equal(mesh_key_generate(&a), 0);
        assert_int_equal(mesh_key_generate(&b), 0);
        assert_memory_not_equal(a.public_key, b.public_key, MESH_KEY_SIZE);
        /* Recomputed independently from the private half. */
        k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret_data_const(a.private_key),
                                         MESH_KEY_SIZE);
        assert_non_null(k);
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &n), 1);
        EVP_PKEY_free(k);
        assert_memory_equal(pub, a.public_key, MESH_KEY_SIZE);
        mesh_key_done(&a);
        mesh_key_done(&b);
        assert_null(a.private_key);
}

static void test_mesh_key_base64_round_trips_and_refuses_anything_but_32_bytes(void **state)
{
        uint8_t k[MESH_KEY_SIZE], back[MESH_KEY_SIZE];
        char text[MESH_KEY_BASE64 + 1];

        memset(k, 1, sizeof(k));
        mesh_key_to_base64(k, text);
        assert_string_equal(text, K1);
        assert_int_equal(mesh_key_from_base64(text, back), 0);
        assert_memory_equal(k, back, sizeof(k));
        assert_int_equal(mesh_key_from_base64("AQEB", back), -EBADMSG);
        assert_int_equal(mesh_key_from_base64(K1 "A", back), -EBADMSG);
        /* 31 bytes (two padding characters) and a character outside base64. */
        assert_int_equal(mesh_key_from_base64("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==", back),
                         -EBADMSG);
        assert_int_equal(mesh_key_from_base64("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBA*E=", back),
                         -EBADMSG);
}

static void test_mesh_address_is_inside_the_mesh_range_only(void **state)
{
        char a[MESH_ADDRESS_MAX + 1];

        assert_true(mesh_address_ok("10.77.0.1"));
        assert_true(mesh_address_ok("10.77.3.232"));
        assert_false(mesh_address_ok("10.77.0.0"));
        assert_false(mesh_address_ok("10.77.255.255"));
        assert_false(mesh_address_ok("10.78.0.1"));
        assert_false(mesh_address_ok("10.77.0.1/32"));
        assert_false(mesh_address_ok("fd00::1"));
        assert_int_equal(mesh_address_of(1, a), 0);
        assert_string_equal(a, "10.77.0.1");
        assert_int_equal(mesh_address_of(MESH_PEERS_MAX, a), 0);
        assert_true(mesh_address_ok(a));
        assert_int_equal(mesh_address_of(0, a), -ERANGE);
        assert_int_equal(mesh_address_of(MESH_PEERS_MAX + 1, a), -ERANGE);
}

static void test_mesh_doc_parses_peers_with_their_keys_endpoints_and_addresses(void **state)
{
        MeshDoc m;

        assert_int_equal(parse(GOOD, &m), 0);
        assert_string_equal(m.self, "worker-1");
        assert_string_equal(m.address, "10.77.0.1");
        assert_int_equal(m.n_peers, 2);
        assert_string_equal(m.peers[1].name, "worker-2");
        assert_string_equal(m.peers[1].endpoint, "[fd00::3]:51820");
        assert_string_equal(m.peers[1].address, "10.77.0.2");
        assert_string_equal(m.peers[1].pod_cidr, "");
        assert_int_equal(m.peers[1].public_key[0], 2);
        mesh_doc_done(&m);
}

static void test_mesh_doc_refuses_unknown_keys_versions_and_shapes(void **state)
{
        expect_refused("{\"version\": 1, \"self\": \"w\", \"address\": \"10.77.0.1\", "
                       "\"peers\": [], \"extra\": 1}",
                       -EBADMSG);
        expect_refused("{\"version\": 2, \"self\": \"w\", \"address\": \"10.77.0.1\", "
                       "\"peers\": []}",
                       -EBADMSG);
        /* An address outside the mesh range would route other traffic into the tunnel. */
        expect_refused(DOC(PEER("worker-2", K2, "10.0.0.3:51820", "10.0.0.3")), -EBADMSG);
        /* A host name would be resolved by wg: only literal addresses. */
        expect_refused(DOC(PEER("worker-2", K2, "node.example:51820", "10.77.0.2")), -EBADMSG);
        expect_refused(DOC(PEER("worker-2", K2, "10.0.0.3:70000", "10.77.0.2")), -EBADMSG);
        expect_refused(DOC(PEER("worker-2", K2, "10.0.0.3", "10.77.0.2")), -EBADMSG);
        expect_refused(DOC(PEER("Worker 2", K2, "10.0.0.3:1", "10.77.0.2")), -EBADMSG);
        expect_refused(DOC(PEER("worker-2", "AQEB", "10.0.0.3:1", "10.77.0.2")), -EBADMSG);
        expect_refused(DOC("{\"name\": \"w\", \"publicKey\": \"" K2 "\", \"endpoint\": "
                           "\"10.0.0.3:1\", \"address\": \"10.77.0.2\", \"podCidr\": "
                           "\"10.244.0.0/33\"}"),
                       -EBADMSG);
        expect_refused(DOC(PEER("worker-2", K2, "10.0.0.3:1", "10.77.0.2") ", 7"), -EBADMSG);
}

static void test_mesh_doc_refuses_a_key_address_or_name_listed_twice(void **state)
{
        /* WireGuard routes an address to one peer: a second entry would take the first's. */
        expect_refused(DOC(PEER("a", K1, "10.0.0.2:1", "10.77.0.1") ", " PEER("b", K1, "10.0.0.3:1",
                                                                              "10.77.0.2")),
                       -EBADMSG);
        expect_refused(DOC(PEER("a", K1, "10.0.0.2:1", "10.77.0.1") ", " PEER("b", K2, "10.0.0.3:1",
                                                                              "10.77.0.1")),
                       -EBADMSG);
        expect_refused(DOC(PEER("a", K1, "10.0.0.2:1", "10.77.0.1") ", " PEER("a", K2, "10.0.0.3:1",
                                                                              "10.77.0.2")),
                       -EBADMSG);
}

#define POD_PEER(name, key, endpoint, address, pod)                                                \
        "{\"name\": \"" name "\", \"publicKey\": \"" key "\", \"endpoint\": \"" endpoint           \
        "\", \"address\": \"" address "\", \"podCidr\": \"" pod "\"}"

static void test_mesh_doc_refuses_a_pod_cidr_that_would_take_other_traffic(void **state)
{
        MeshDoc m;

        /* A node's pod range is routed into the tunnel to that peer: one per peer, IPv4, not the
         * default route, not the mesh range (another peer's address), not an underlay endpoint,
         * not another peer's pod range. */
        assert_int_equal(
                parse(DOC(POD_PEER("worker-2", K2, "10.0.0.3:51820", "10.77.0.2", "10.244.1.0/24")),
                      &m),
                0);
        assert_string_equal(m.peers[0].pod_cidr, "10.244.1.0/24");
        mesh_doc_done(&m);
        expect_refused(DOC(POD_PEER("worker-2", K2, "10.0.0.3:1", "10.77.0.2", "0.0.0.0/0")),
                       -EBADMSG);
        expect_refused(DOC(POD_PEER("worker-2", K2, "10.0.0.3:1", "10.77.0.2", "0.0.0.0/1")),
                       -EBADMSG);
        expect_refused(DOC(POD_PEER("worker-2", K2, "10.0.0.3:1", "10.77.0.2", "::/0")), -EBADMSG);
        expect_refused(DOC(POD_PEER("worker-2", K2, "10.0.0.3:1", "10.77.0.2", "128.0.0.0/1")),
                       -EBADMSG);
        expect_refused(DOC(POD_PEER("worker-2", K2, "10.0.0.3:1", "10.77.0.2", "10.77.0.0/16")),
                       -EBADMSG);
        expect_refused(DOC(POD_PEER("worker-2", K2, "10.0.0.3:1", "10.77.0.2", "10.244.1.5/24")),
                       -EBADMSG);
        /* worker-3's pod range holds worker-1's mesh address, or worker-1's underlay endpoint. */
        expect_refused(DOC(PEER("worker-1", K1, "10.0.0.2:1", "10.77.0.1") ", " POD_PEER(
                               "worker-3", K2, "10.0.0.3:1", "10.77.0.3", "10.77.0.1/32")),
                       -EBADMSG);
        expect_refused(DOC(PEER("worker-1", K1, "10.0.0.2:1", "10.77.0.1") ", " POD_PEER(
                               "worker-3", K2, "10.1.0.3:1", "10.77.0.3", "10.0.0.0/16")),
                       -EBADMSG);
        expect_refused(DOC(POD_PEER("worker-1", K1, "10.0.0.2:1", "10.77.0.1", "10.0.0.0/24")),
                       -EBADMSG);
        expect_refused(
                DOC(POD_PEER("worker-3", K2, "10.1.0.3:1", "10.77.0.3",
                             "10.0.0.0/16") ", " PEER("worker-1", K1, "10.0.0.2:1", "10.77.0.1")),
                -EBADMSG);
        /* Two peers' pod ranges overlap: the later one would take the earlier's traffic. */
        expect_refused(DOC(POD_PEER("worker-1", K1, "10.0.0.2:1", "10.77.0.1",
                                    "10.244.0.0/16") ", " POD_PEER("worker-3", K2, "10.0.0.3:1",
                                                                   "10.77.0.3", "10.244.1.0/24")),
                       -EBADMSG);
}

static void test_mesh_doc_refuses_an_endpoint_inside_the_mesh_range_or_unspecified(void **state)
{
        /* The tunnel's own packets would be routed into the tunnel. */
        expect_refused(DOC(PEER("worker-2", K2, "10.77.0.9:51820", "10.77.0.2")), -EBADMSG);
        expect_refused(DOC(PEER("worker-2", K2, "0.0.0.0:51820", "10.77.0.2")), -EBADMSG);
        expect_refused(DOC(PEER("worker-2", K2, "[::]:51820", "10.77.0.2")), -EBADMSG);
}

static void test_mesh_doc_refuses_more_peers_or_bytes_than_its_limits(void **state)
{
        size_t n = 64 + (size_t) (MESH_PEERS_MAX + 1) * 4;
        char *big = malloc(n), *p = big;
        MeshDoc m;

        assert_non_null(big);
        p += sprintf(p, "{\"version\": 1, \"self\": \"w\", \"address\": \"10.77.0.1\", "
                        "\"peers\": [");
        for (int i = 0; i <= MESH_PEERS_MAX; i++)
                p += sprintf(p, "%s{}", i ? "," : "");
        strcpy(p, "]}");
        expect_refused(big, -EMSGSIZE);
        free(big);
        assert_int_equal(mesh_doc_parse("{}", MESH_DOC_SIZE_MAX + 1, &m, NULL), -EMSGSIZE);
}

/* wg show's per-peer output (docs/mesh.md, "Status"): merged by key across the three kinds. */
static int status_parse(MeshStatus *s, MeshShow what, const char *text)
{
        Diag d;

        diag_clear(&d);
        return mesh_status_parse(s, what, text, strlen(text), &d);
}

static void test_mesh_status_merges_endpoints_handshakes_and_transfer_by_key(void **state)
{
        MeshStatus s = {};

        assert_int_equal(
                status_parse(&s, MESH_SHOW_ENDPOINTS, K1 "\t10.0.0.2:51820\n" K2 "\t(none)\n"), 0);
        assert_int_equal(
                status_parse(&s, MESH_SHOW_LATEST_HANDSHAKES, K2 "\t0\n" K1 "\t1796692913\n"), 0);
        assert_int_equal(status_parse(&s, MESH_SHOW_TRANSFER, K1 "\t4312\t9120\n"), 0);
        assert_int_equal(s.n_peers, 2);
        assert_memory_equal(s.peers[0].public_key, "\x01\x01\x01\x01", 4);
        assert_string_equal(s.peers[0].endpoint, "10.0.0.2:51820");
        assert_int_equal(s.peers[0].latest_handshake, 1796692913);
        assert_int_equal(s.peers[0].rx_bytes, 4312);
        assert_int_equal(s.peers[0].tx_bytes, 9120);
        assert_string_equal(s.peers[1].endpoint, "");
        assert_int_equal(s.peers[1].latest_handshake, 0);
        mesh_status_done(&s);
}

static void test_mesh_status_refuses_lines_that_are_not_a_key_and_its_fields(void **state)
{
        static const struct {
                MeshShow what;
                const char *text;
        } bad[] = {
                { MESH_SHOW_ENDPOINTS, K1 "\t10.0.0.2:51820" },      /* no newline */
                { MESH_SHOW_ENDPOINTS, K1 "\t10.77.0.2:51820\n" },   /* inside the mesh */
                { MESH_SHOW_ENDPOINTS, K1 "\tworker-2:51820\n" },    /* not literal */
                { MESH_SHOW_ENDPOINTS, K1 "\t10.0.0.2:51820\tx\n" }, /* a field too many */
                { MESH_SHOW_ENDPOINTS, "AQEB\t10.0.0.2:51820\n" },   /* no key */
                { MESH_SHOW_LATEST_HANDSHAKES, K1 "\t-1\n" },        /* no number */
                { MESH_SHOW_LATEST_HANDSHAKES, K1 "\t\n" },
                { MESH_SHOW_TRANSFER, K1 "\t9223372036854775808\t0\n" }, /* past int64 */
                { MESH_SHOW_TRANSFER, K1 "\t1\n" },                      /* a field short */
                { _MESH_SHOW_MAX, K1 "\t1\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                MeshStatus s = {};

                assert_int_not_equal(status_parse(&s, bad[i].what, bad[i].text), 0);
                mesh_status_done(&s);
        }
}

static void test_mesh_status_refuses_more_peers_than_its_limit(void **state)
{
        MeshStatus s = {};
        size_t n = (size_t) (MESH_PEERS_MAX + 1) * (MESH_KEY_BASE64 + 4) + 1;
        char *text = malloc(n), *p = text;
        Diag d;

        assert_non_null(text);
        for (unsigned i = 0; i <= MESH_PEERS_MAX; i++) {
                uint8_t key[MESH_KEY_SIZE] = { (uint8_t) i, (uint8_t) (i >> 8), 7 };
                char b64[MESH_KEY_BASE64 + 1];

                mesh_key_to_base64(key, b64);
                p += sprintf(p, "%s\t0\n", b64);
        }
        diag_clear(&d);
        assert_int_equal(
                mesh_status_parse(&s, MESH_SHOW_LATEST_HANDSHAKES, text, (size_t) (p - text), &d),
                -EMSGSIZE);
        assert_int_equal(s.n_peers, MESH_PEERS_MAX);
        mesh_status_done(&s);
        free(text);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mesh_key_public_half_is_x25519_of_the_private_half),
                cmocka_unit_test(
                        test_mesh_key_base64_round_trips_and_refuses_anything_but_32_bytes),
                cmocka_unit_test(test_mesh_address_is_inside_the_mesh_range_only),
                cmocka_unit_test(
                        test_mesh_doc_parses_peers_with_their_keys_endpoints_and_addresses),
                cmocka_unit_test(test_mesh_doc_refuses_unknown_keys_versions_and_shapes),
                cmocka_unit_test(test_mesh_doc_refuses_a_key_address_or_name_listed_twice),
                cmocka_unit_test(test_mesh_doc_refuses_a_pod_cidr_that_would_take_other_traffic),
                cmocka_unit_test(
                        test_mesh_doc_refuses_an_endpoint_inside_the_mesh_range_or_unspecified),
                cmocka_unit_test(test_mesh_doc_refuses_more_peers_or_bytes_than_its_limits),
                cmocka_unit_test(test_mesh_status_merges_endpoints_handshakes_and_transfer_by_key),
                cmocka_unit_test(test_mesh_status_refuses_lines_that_are_not_a_key_and_its_fields),
                cmocka_unit_test(test_mesh_status_refuses_more_peers_than_its_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
