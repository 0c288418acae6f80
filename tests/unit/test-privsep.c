/* SPDX-License-Identifier: Apache-2.0 */
/* The join service's privilege separation: the typed protocol between its network process and
 * its monitor, and the answers sealed to the client's key (docs/join.md). */
#include <sys/socket.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/atls.h"
#include "cloister/json.h"
#include "cloister/privsep.h"
#include "cloister/rpc.h"

static int never_verify(void *userdata, const uint8_t *evidence, size_t size,
                        const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        return -EPERM;
}

static AtlsContext *client_context(void)
{
        AtlsVerifier v = { .variant = ATTEST_VARIANT_QEMU_VTPM, .verify = never_verify };
        AtlsContext *c = NULL;

        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        return c;
}

/* A well-formed JOIN request; field sizes changed by the caller through the arguments. */
static void build_join(PrivsepBuf *b, size_t nonce_size, const char *name)
{
        static const uint8_t evidence[100] = { 1 }, nonce[64] = { 2 }, spki[91] = { 3 };

        privsep_buf_begin(b, JOIN_PRIVSEP_JOIN, 0);
        privsep_buf_add(b, evidence, sizeof(evidence));
        privsep_buf_add(b, nonce, nonce_size);
        privsep_buf_add(b, spki, sizeof(spki));
        privsep_buf_add_text(b, "127.0.0.1:4000");
        privsep_buf_add_text(b, name);
        privsep_buf_add_text(b, "worker");
        privsep_buf_add_text(b, "0b5d1fd4-5e31-4d6c-9a9b-3c3a3e0e6f55");
        privsep_buf_add_text(b, "127.0.0.1:9");
        privsep_buf_add_text(b, "");
}

static int parse_built(PrivsepBuf *b, PrivsepMsg *m)
{
        assert_int_equal(b->error, 0);
        return privsep_parse(b->data + 4, b->size - 4, join_privsep_requests, join_privsep_n_specs,
                             m);
}

static void test_privsep_join_request_round_trips_with_every_field(void **state)
{
        PrivsepBuf b;
        PrivsepMsg m;

        build_join(&b, ATLS_NONCE_SIZE, "worker-1");
        assert_int_equal(parse_built(&b, &m), 0);
        assert_int_equal(m.op, JOIN_PRIVSEP_JOIN);
        assert_int_equal(m.n_fields, 9);
        assert_int_equal(m.fields[0].size, 100);
        assert_int_equal(m.fields[1].size, ATLS_NONCE_SIZE);
        assert_string_equal(privsep_text(&m, 4), "worker-1");
        assert_string_equal(privsep_text(&m, 8), "");
        privsep_buf_done(&b);
}

static void test_privsep_refuses_a_nonce_of_another_size(void **state)
{
        PrivsepBuf b;
        PrivsepMsg m;

        build_join(&b, ATLS_NONCE_SIZE - 1, "worker-1");
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        build_join(&b, ATLS_NONCE_SIZE + 1, "worker-1");
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
}

static void test_privsep_refuses_a_text_field_over_its_bound(void **state)
{
        char name[80];
        PrivsepBuf b;
        PrivsepMsg m;

        memset(name, 'a', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        build_join(&b, ATLS_NONCE_SIZE, name); /* the name field holds at most 63 + NUL */
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
}

static void test_privsep_refuses_text_without_its_nul_or_with_an_inner_nul(void **state)
{
        PrivsepBuf b;
        PrivsepMsg m;

        privsep_buf_begin(&b, JOIN_PRIVSEP_AUDIT, 0);
        privsep_buf_add(&b, "offset=0", 8); /* no terminating NUL */
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        privsep_buf_begin(&b, JOIN_PRIVSEP_AUDIT, 0);
        privsep_buf_add(&b, "off\0set", 8); /* a NUL inside */
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        privsep_buf_begin(&b, JOIN_PRIVSEP_AUDIT, 0);
        privsep_buf_add_text(&b, "offset=0");
        assert_int_equal(parse_built(&b, &m), 0);
        privsep_buf_done(&b);
}

static void test_privsep_refuses_unknown_ops_counts_trailing_bytes_and_request_status(void **state)
{
        PrivsepBuf b;
        PrivsepMsg m;

        privsep_buf_begin(&b, 0x55, 0);
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        /* MEMBERS takes no field, not even an empty one. */
        privsep_buf_begin(&b, JOIN_PRIVSEP_MEMBERS, 0);
        privsep_buf_add_text(&b, "x");
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        privsep_buf_begin(&b, JOIN_PRIVSEP_MEMBERS, 0);
        privsep_buf_add(&b, "", 0);
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        /* A request with a status (only replies carry one). */
        privsep_buf_begin(&b, JOIN_PRIVSEP_MEMBERS, -EPERM);
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        /* Trailing bytes after the last field. */
        privsep_buf_begin(&b, JOIN_PRIVSEP_MEMBERS, 0);
        assert_int_equal(privsep_parse(b.data + 4, b.size - 4, join_privsep_requests,
                                       join_privsep_n_specs, &m),
                         0);
        {
                uint8_t more[64];
                memcpy(more, b.data + 4, b.size - 4);
                more[b.size - 4] = 0;
                assert_int_equal(privsep_parse(more, b.size - 3, join_privsep_requests,
                                               join_privsep_n_specs, &m),
                                 -EBADMSG);
                /* Every shorter prefix. */
                for (size_t n = 0; n < b.size - 4; n++)
                        assert_int_equal(privsep_parse(more, n, join_privsep_requests,
                                                       join_privsep_n_specs, &m),
                                         -EBADMSG);
        }
        privsep_buf_done(&b);
}

static void test_privsep_reply_carries_a_status_and_must_have_both_texts(void **state)
{
        PrivsepBuf b;
        PrivsepMsg m;

        privsep_buf_begin(&b, JOIN_PRIVSEP_JOIN | PRIVSEP_REPLY, -EEXIST);
        privsep_buf_add_text(&b, "disk taken");
        privsep_buf_add_text(&b, "");
        assert_int_equal(privsep_parse(b.data + 4, b.size - 4, join_privsep_replies,
                                       join_privsep_n_specs, &m),
                         0);
        assert_int_equal(m.status, -EEXIST);
        assert_string_equal(privsep_text(&m, 0), "disk taken");
        privsep_buf_done(&b);
        privsep_buf_begin(&b, JOIN_PRIVSEP_JOIN | PRIVSEP_REPLY, 0);
        privsep_buf_add_text(&b, "");
        assert_int_equal(privsep_parse(b.data + 4, b.size - 4, join_privsep_replies,
                                       join_privsep_n_specs, &m),
                         -EBADMSG);
        privsep_buf_done(&b);
}

static void test_privsep_send_and_recv_over_a_socketpair(void **state)
{
        _cleanup_(freep) uint8_t *got = NULL;
        int sv[2];
        PrivsepBuf b;
        PrivsepMsg m;
        size_t size;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        build_join(&b, ATLS_NONCE_SIZE, "worker-2");
        assert_int_equal(privsep_send(sv[0], &b), 0);
        privsep_buf_done(&b);
        assert_int_equal(privsep_recv(sv[1], &got, &size), 0);
        assert_int_equal(privsep_parse(got, size, join_privsep_requests, join_privsep_n_specs, &m),
                         0);
        assert_string_equal(privsep_text(&m, 4), "worker-2");
        /* A length word over the bound is refused before anything is allocated. */
        assert_int_equal(write(sv[0], "\xff\xff\xff\x7f", 4), 4);
        {
                uint8_t *x = NULL;
                size_t xs;
                assert_int_equal(privsep_recv(sv[1], &x, &xs), -EMSGSIZE);
                assert_null(x);
        }
        (void) close(sv[0]);
        {
                uint8_t *x = NULL;
                size_t xs;
                assert_int_equal(privsep_recv(sv[1], &x, &xs), -ECONNRESET);
        }
        (void) close(sv[1]);
}

static void test_sealed_answer_opens_only_with_the_clients_key_and_label(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *client = client_context(),
                                                  *other = client_context();
        _cleanup_(freep) uint8_t *sealed = NULL;
        _cleanup_(secret_freep) Secret *plain = NULL;
        static const char text[] = "{\"diskKey\": \"secret\"}";
        const uint8_t *spki;
        size_t spki_size, size;

        assert_int_equal(atls_context_spki(client, &spki, &spki_size), 0);
        assert_int_equal(atls_seal(spki, spki_size, "join", text, strlen(text), &sealed, &size), 0);
        assert_int_equal(size, strlen(text) + ATLS_SEALED_OVERHEAD);
        /* The plaintext is nowhere in the sealed bytes. */
        assert_null(memmem(sealed, size, "secret", 6));
        assert_int_equal(atls_context_unseal(client, "join", sealed, size, &plain), 0);
        assert_int_equal(secret_size(plain), strlen(text));
        assert_memory_equal(secret_data(plain), text, strlen(text));
        plain = secret_free(plain);
        /* Another node's key, another purpose, one altered byte, a cut: none opens. */
        assert_int_equal(atls_context_unseal(other, "join", sealed, size, &plain), -EBADMSG);
        assert_int_equal(atls_context_unseal(client, "rejoin", sealed, size, &plain), -EBADMSG);
        for (size_t i = 0; i < size; i += 7) {
                sealed[i] ^= 0x40;
                assert_int_equal(atls_context_unseal(client, "join", sealed, size, &plain),
                                 -EBADMSG);
                sealed[i] ^= 0x40;
        }
        assert_int_equal(atls_context_unseal(client, "join", sealed, size - 1, &plain), -EBADMSG);
        assert_int_equal(atls_context_unseal(client, "join", sealed, 10, &plain), -EBADMSG);
        assert_null(plain);
}

static void test_seal_refuses_a_key_that_is_not_p256(void **state)
{
        static const uint8_t garbage[64] = { 0x30, 0x3e };
        uint8_t *sealed = NULL;
        size_t size;

        assert_int_equal(atls_seal(garbage, sizeof(garbage), "join", "x", 1, &sealed, &size),
                         -EBADMSG);
        assert_null(sealed);
}

static void test_unseal_answer_refuses_a_ticket_in_the_clear(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *client = client_context();
        _cleanup_(json_decrefp) json_t *clear =
                json_pack("{s:s,s:s}", "token", "abcdef.0123456789abcdef", "diskKey", "AAAA");
        _cleanup_(json_decrefp) json_t *sealed = NULL;
        _cleanup_(json_decrefp) json_t *extra = NULL;
        const uint8_t *spki;
        size_t spki_size;
        Diag d;

        diag_clear(&d);
        assert_int_equal(rpc_answer_unseal(client, "join", &clear, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "not sealed"));
        /* The real thing opens; with a field beside it, it is refused. */
        assert_int_equal(atls_context_spki(client, &spki, &spki_size), 0);
        {
                _cleanup_(json_decrefp) json_t *answer = json_pack("{s:s}", "token", "t");
                assert_int_equal(rpc_answer_seal(spki, spki_size, "join", answer, &sealed), 0);
        }
        extra = json_deep_copy(sealed);
        assert_int_equal(json_object_set_new(extra, "caCertHash", json_string("sha256:00")), 0);
        diag_clear(&d);
        assert_int_equal(rpc_answer_unseal(client, "join", &extra, &d), -EBADMSG);
        diag_clear(&d);
        assert_int_equal(rpc_answer_unseal(client, "join", &sealed, &d), 0);
        assert_string_equal(json_string_value(json_object_get(sealed, "token")), "t");
}

/* The monitor quotes for a nonce of exactly its size and a key; a nonce request carries
 * nothing. */
static void test_privsep_attest_and_nonce_requests_are_bounded(void **state)
{
        static const uint8_t nonce[33] = { 1 }, spki[91] = { 2 };
        PrivsepBuf b;
        PrivsepMsg m;

        privsep_buf_begin(&b, JOIN_PRIVSEP_ATTEST, 0);
        privsep_buf_add(&b, nonce, ATLS_NONCE_SIZE);
        privsep_buf_add(&b, spki, sizeof(spki));
        assert_int_equal(parse_built(&b, &m), 0);
        assert_int_equal(m.op, JOIN_PRIVSEP_ATTEST);
        privsep_buf_done(&b);
        privsep_buf_begin(&b, JOIN_PRIVSEP_ATTEST, 0);
        privsep_buf_add(&b, nonce, ATLS_NONCE_SIZE + 1);
        privsep_buf_add(&b, spki, sizeof(spki));
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
        privsep_buf_begin(&b, JOIN_PRIVSEP_NONCE, 0);
        assert_int_equal(parse_built(&b, &m), 0);
        privsep_buf_done(&b);
        privsep_buf_begin(&b, JOIN_PRIVSEP_NONCE, 0);
        privsep_buf_add(&b, nonce, ATLS_NONCE_SIZE); /* a nonce of the sender's choosing */
        assert_int_equal(parse_built(&b, &m), -EBADMSG);
        privsep_buf_done(&b);
}

/* --- the monitor's nonces: issued, good once, within their time, a bounded table --- */

static uint64_t fake_now_ms;

static uint64_t fake_now(void)
{
        return fake_now_ms;
}

static void nonces(PrivsepNonces *t, size_t n)
{
        assert_int_equal(privsep_nonces_init(t, n, 120), 0);
        t->now = fake_now;
        fake_now_ms = 1000000;
}

static void test_nonce_issued_is_accepted_once_then_refused_as_used(void **state)
{
        uint8_t a[PRIVSEP_NONCE_SIZE], b[PRIVSEP_NONCE_SIZE];
        PrivsepNonces t;

        nonces(&t, 8);
        assert_int_equal(privsep_nonce_issue(&t, a), 0);
        assert_int_equal(privsep_nonce_issue(&t, b), 0);
        assert_memory_not_equal(a, b, sizeof(a));
        assert_int_equal(privsep_nonce_consume(&t, b), 0);
        assert_int_equal(privsep_nonce_consume(&t, b), -EALREADY);
        assert_int_equal(privsep_nonce_consume(&t, a), 0);
        assert_int_equal(privsep_nonce_consume(&t, a), -EALREADY);
        privsep_nonces_done(&t);
}

static void test_nonce_never_issued_is_refused(void **state)
{
        uint8_t a[PRIVSEP_NONCE_SIZE], other[PRIVSEP_NONCE_SIZE] = {};
        PrivsepNonces t;

        nonces(&t, 8);
        assert_int_equal(privsep_nonce_consume(&t, other), -ENOENT); /* an empty table */
        assert_int_equal(privsep_nonce_issue(&t, a), 0);
        memcpy(other, a, sizeof(other));
        other[31] ^= 1; /* one bit off */
        assert_int_equal(privsep_nonce_consume(&t, other), -ENOENT);
        assert_int_equal(privsep_nonce_consume(&t, a), 0);
        privsep_nonces_done(&t);
}

static void test_nonce_expires_after_its_ttl_and_is_spent_by_the_refusal(void **state)
{
        uint8_t a[PRIVSEP_NONCE_SIZE], b[PRIVSEP_NONCE_SIZE];
        PrivsepNonces t;

        nonces(&t, 8);
        assert_int_equal(privsep_nonce_issue(&t, a), 0);
        assert_int_equal(privsep_nonce_issue(&t, b), 0);
        fake_now_ms += 120 * 1000 - 1;
        assert_int_equal(privsep_nonce_consume(&t, b), 0); /* just in time */
        fake_now_ms += 1;
        assert_int_equal(privsep_nonce_consume(&t, a), -ETIME);
        assert_int_equal(privsep_nonce_consume(&t, a), -EALREADY);
        privsep_nonces_done(&t);
}

static void test_nonce_table_is_bounded_and_evicts_the_oldest(void **state)
{
        uint8_t first[PRIVSEP_NONCE_SIZE], n[PRIVSEP_NONCE_SIZE], last[PRIVSEP_NONCE_SIZE];
        PrivsepNonces t;

        nonces(&t, 4);
        assert_int_equal(privsep_nonce_issue(&t, first), 0);
        for (int i = 0; i < 3; i++) {
                fake_now_ms += 10;
                assert_int_equal(privsep_nonce_issue(&t, n), 0);
        }
        /* Full of good nonces: the next one takes the oldest's place. */
        fake_now_ms += 10;
        assert_int_equal(privsep_nonce_issue(&t, last), 0);
        assert_int_equal(privsep_nonce_consume(&t, first), -ENOENT);
        assert_int_equal(privsep_nonce_consume(&t, last), 0);
        assert_int_equal(privsep_nonce_consume(&t, n), 0);
        /* A slot freed by use is taken again. */
        assert_int_equal(privsep_nonce_issue(&t, first), 0);
        assert_int_equal(privsep_nonce_consume(&t, first), 0);
        assert_int_equal(privsep_nonces_init(&t, 0, 1), -EINVAL);
        privsep_nonces_done(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_privsep_join_request_round_trips_with_every_field),
                cmocka_unit_test(test_privsep_refuses_a_nonce_of_another_size),
                cmocka_unit_test(test_privsep_refuses_a_text_field_over_its_bound),
                cmocka_unit_test(test_privsep_refuses_text_without_its_nul_or_with_an_inner_nul),
                cmocka_unit_test(
                        test_privsep_refuses_unknown_ops_counts_trailing_bytes_and_request_status),
                cmocka_unit_test(test_privsep_reply_carries_a_status_and_must_have_both_texts),
                cmocka_unit_test(test_privsep_send_and_recv_over_a_socketpair),
                cmocka_unit_test(test_sealed_answer_opens_only_with_the_clients_key_and_label),
                cmocka_unit_test(test_seal_refuses_a_key_that_is_not_p256),
                cmocka_unit_test(test_unseal_answer_refuses_a_ticket_in_the_clear),
                cmocka_unit_test(test_privsep_attest_and_nonce_requests_are_bounded),
                cmocka_unit_test(test_nonce_issued_is_accepted_once_then_refused_as_used),
                cmocka_unit_test(test_nonce_never_issued_is_refused),
                cmocka_unit_test(test_nonce_expires_after_its_ttl_and_is_spent_by_the_refusal),
                cmocka_unit_test(test_nonce_table_is_bounded_and_evicts_the_oldest),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
