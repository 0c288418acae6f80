/* SPDX-License-Identifier: Apache-2.0 */
/* The etcd client's parsers (lib/etcd/etcd-response.c) on answers etcd 3.4.23 wrote (captured
 * from Debian's etcd-server through its JSON gateway) and on hostile ones: oversized, malformed,
 * revisions out of order, keys outside the range or the prefix, the wrong number or kind of
 * transaction responses. Each is refused with its errno, and the output is never written. */
#include "helpers/unit.h"

#include "cloister/etcd.h"

#define KEY_A "L2Nsb2lzdGVyL3YxL2E=" /* /cloister/v1/a */
#define KEY_B "L2Nsb2lzdGVyL3YxL2I=" /* /cloister/v1/b */
#define KEY_C "L2Nsb2lzdGVyL3YxL2M=" /* /cloister/v1/c */
#define HEADER7                                                                                    \
        "\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"7\",\"raft_term\":"   \
        "\"2\"}"

/* etcd 3.4.23's own answers. */
static const char range_one[] =
        "{\"header\":{\"cluster_id\":\"13337334706119574842\",\"member_id\":"
        "\"6522240642739510259\","
        "\"revision\":\"2\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"" KEY_A
        "\",\"create_revision\":"
        "\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"eA==\"}],\"count\":\"1\"}";
static const char range_none[] = "{\"header\":{\"cluster_id\":\"13337334706119574842\",\"member_"
                                 "id\":\"6522240642739510259\","
                                 "\"revision\":\"2\",\"raft_term\":\"2\"}}";
static const char txn_failed[] =
        "{\"header\":{\"cluster_id\":\"13337334706119574842\",\"member_id\":"
        "\"6522240642739510259\","
        "\"revision\":\"2\",\"raft_term\":\"2\"},\"responses\":[{\"response_range\":{\"header\":{"
        "\"revision\":\"2\"},\"kvs\":[{\"key\":\"" KEY_A
        "\",\"create_revision\":\"2\",\"mod_revision\":"
        "\"2\",\"version\":\"1\",\"value\":\"eA==\"}],\"count\":\"1\"}}]}";
static const char txn_succeeded[] = "{\"header\":{\"cluster_id\":\"13337334706119574842\",\"member_"
                                    "id\":\"6522240642739510259\","
                                    "\"revision\":\"3\",\"raft_term\":\"2\"},\"succeeded\":true,"
                                    "\"responses\":[{\"response_put\":{"
                                    "\"header\":{\"revision\":\"3\"}}}]}";
static const char error_timeout[] = "{\"error\":\"etcdserver: request timed out\",\"message\":"
                                    "\"etcdserver: request timed out\",\"code\":14}";

static const EtcdOp put_b = {
        .type = ETCD_OP_PUT, .key = "/cloister/v1/b", .value = "y", .value_size = 1
};
static const EtcdOp range_a = { .type = ETCD_OP_RANGE, .key = "/cloister/v1/a" };

static int parse_range(const char *s, const char *key, const char *end, size_t limit,
                       int64_t min_rev, EtcdRange *out, Diag *d)
{
        diag_clear(d);
        return etcd_parse_range(s, strlen(s), key, end, limit, min_rev, out, d);
}

static void test_etcd_parse_range_reads_etcd_3_4_answers(void **state)
{
        EtcdRange r = {};
        Diag d;

        (void) state;
        assert_int_equal(parse_range(range_one, "/cloister/v1/a", NULL, 0, 0, &r, &d), 0);
        assert_int_equal(r.revision, 2);
        assert_int_equal(r.n_kvs, 1);
        assert_string_equal(r.kvs[0].key, "/cloister/v1/a");
        assert_int_equal(r.kvs[0].value_size, 1);
        assert_memory_equal(r.kvs[0].value, "x", 1);
        assert_int_equal(r.kvs[0].create_revision, 2);
        assert_int_equal(r.kvs[0].version, 1);
        etcd_range_done(&r);
        /* A missing key: no kvs, no count (zero values are left out). */
        assert_int_equal(parse_range(range_none, "/cloister/v1/none", NULL, 0, 0, &r, &d), 0);
        assert_int_equal(r.n_kvs, 0);
        assert_int_equal(r.count, 0);
        etcd_range_done(&r);
}

static void test_etcd_parse_range_refuses_an_answer_older_than_one_seen(void **state)
{
        EtcdRange r = { .revision = -1 };
        Diag d;

        (void) state;
        assert_int_equal(parse_range(range_one, "/cloister/v1/a", NULL, 0, 3, &r, &d), -EPROTO);
        assert_string_equal(d.check, "etcd-revision");
        assert_int_equal(r.revision, -1); /* untouched */
}

static void test_etcd_parse_range_refuses_revisions_out_of_order(void **state)
{
        static const char *const bad[] = {
                /* modified before it was created */
                "{" HEADER7 ",\"kvs\":[{\"key\":\"" KEY_A "\",\"create_revision\":\"5\","
                "\"mod_revision\":\"4\",\"version\":\"1\"}],\"count\":\"1\"}",
                /* modified after the answer's revision */
                "{" HEADER7 ",\"kvs\":[{\"key\":\"" KEY_A "\",\"create_revision\":\"5\","
                "\"mod_revision\":\"8\",\"version\":\"1\"}],\"count\":\"1\"}",
                /* an existing key never created */
                "{" HEADER7 ",\"kvs\":[{\"key\":\"" KEY_A "\",\"mod_revision\":\"4\","
                "\"version\":\"1\"}],\"count\":\"1\"}",
                /* an inner header after the transaction's (txn below) */
        };
        EtcdRange r = { .revision = -1 };
        Diag d;

        (void) state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int e = parse_range(bad[i], "/cloister/v1/a", NULL, 0, 0, &r, &d);
                assert_true(e == -EPROTO || e == -EBADMSG);
                assert_int_equal(r.revision, -1);
        }
}

static void test_etcd_parse_range_refuses_keys_outside_the_range_order_or_prefix(void **state)
{
        EtcdRange r = { .revision = -1 };
        Diag d;
        /* b before a: not ascending */
        static const char unordered[] =
                "{" HEADER7 ",\"kvs\":[{\"key\":\"" KEY_B "\",\"create_revision\":\"2\","
                "\"mod_revision\":\"2\",\"version\":\"1\"},{\"key\":\"" KEY_A "\","
                "\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\"}],"
                "\"count\":\"2\"}";
        static const char twice[] =
                "{" HEADER7 ",\"kvs\":[{\"key\":\"" KEY_A "\",\"create_revision\":\"2\","
                "\"mod_revision\":\"2\",\"version\":\"1\"},{\"key\":\"" KEY_A "\","
                "\"create_revision\":\"3\",\"mod_revision\":\"3\",\"version\":\"1\"}],"
                "\"count\":\"2\"}";
        static const char outside[] =
                "{" HEADER7 ",\"kvs\":[{\"key\":\"" KEY_C "\",\"create_revision\":\"2\","
                "\"mod_revision\":\"2\",\"version\":\"1\"}],\"count\":\"1\"}";
        static const char other_prefix[] =
                "{" HEADER7 ",\"kvs\":[{\"key\":\"L290aGVyL2E=\",\"create_revision\":\"2\","
                "\"mod_revision\":\"2\",\"version\":\"1\"}],\"count\":\"1\"}";
        static const char nul_in_key[] =
                "{" HEADER7 ",\"kvs\":[{\"key\":\"L2Nsb2lzdGVyL3YxL2EAYg==\",\"create_revision\":"
                "\"2\",\"mod_revision\":\"2\",\"version\":\"1\"}],\"count\":\"1\"}";

        (void) state;
        assert_int_equal(parse_range(unordered, "/cloister/v1/", "/cloister/v10", 0, 0, &r, &d),
                         -EPROTO);
        assert_string_equal(d.check, "etcd-range-order");
        assert_int_equal(parse_range(twice, "/cloister/v1/", "/cloister/v10", 0, 0, &r, &d),
                         -EPROTO);
        assert_int_equal(parse_range(outside, "/cloister/v1/a", "/cloister/v1/b", 0, 0, &r, &d),
                         -EPROTO);
        assert_string_equal(d.check, "etcd-range-key");
        /* More than the limit asked for. */
        assert_int_equal(parse_range(unordered, "/cloister/v1/", "/cloister/v10", 1, 0, &r, &d),
                         -EPROTO);
        assert_string_equal(d.check, "etcd-range-size");
        assert_int_equal(parse_range(other_prefix, "/", "0", 0, 0, &r, &d), -EBADMSG);
        assert_string_equal(d.check, "etcd-key");
        assert_int_equal(parse_range(nul_in_key, "/cloister/v1/", "/cloister/v10", 0, 0, &r, &d),
                         -EBADMSG);
        assert_int_equal(r.revision, -1);
}

static void test_etcd_parse_range_refuses_malformed_integers_and_base64(void **state)
{
        static const char *const bad[] = {
                "{\"header\":{\"revision\":7}}",      /* a number, not jsonpb's string */
                "{\"header\":{\"revision\":\"-7\"}}", /* sign */
                "{\"header\":{\"revision\":\"07\"}}", /* leading zero */
                "{\"header\":{\"revision\":\"9223372036854775808\"}}", /* INT64_MAX + 1 */
                "{\"header\":{\"revision\":\"0\"}}",                   /* not positive */
                "{\"header\":{}}",
                "{}",
                "[]",
                "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"!!!!\","
                "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\"}]}",
                "{\"header\":{\"revision\":\"7\"},\"kvs\":{}}",
                "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"" KEY_A "\","
                "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\"}],"
                "\"count\":\"0\"}",                 /* count below the kvs given */
                "{\"header\":{\"revision\":\"7\"}", /* truncated */
                "",
        };
        EtcdRange r = { .revision = -1 };
        Diag d;

        (void) state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int e = parse_range(bad[i], "/cloister/v1/a", NULL, 0, 0, &r, &d);
                if (e != -EBADMSG && e != -EPROTO)
                        fail_msg("case %zu: %d", i, e);
                assert_true(diag_failed(&d));
                assert_int_equal(r.revision, -1);
        }
}

static void test_etcd_parse_refuses_an_oversized_answer(void **state)
{
        size_t n = ETCD_RESPONSE_MAX + 1;
        char *big = malloc(n);
        EtcdRange r = { .revision = -1 };
        int64_t rev = -1;
        Diag d;

        (void) state;
        assert_non_null(big);
        memset(big, ' ', n);
        big[0] = '{';
        big[n - 1] = '}';
        diag_clear(&d);
        assert_int_equal(etcd_parse_range(big, n, "/cloister/v1/a", NULL, 0, 0, &r, &d), -EMSGSIZE);
        assert_int_equal(etcd_parse_put(big, n, 0, &rev, &d), -EMSGSIZE);
        assert_int_equal(rev, -1);
        free(big);
}

static void test_etcd_parse_txn_reads_both_branches_of_etcd_3_4(void **state)
{
        EtcdTxnResult t = {};
        Diag d;

        (void) state;
        diag_clear(&d);
        assert_int_equal(
                etcd_parse_txn(txn_failed, strlen(txn_failed), &put_b, 1, &range_a, 1, 0, &t, &d),
                0);
        assert_false(t.succeeded);
        assert_int_equal(t.n_ops, 1);
        assert_int_equal(t.ranges[0].n_kvs, 1);
        assert_string_equal(t.ranges[0].kvs[0].key, "/cloister/v1/a");
        etcd_txn_result_done(&t);
        assert_int_equal(etcd_parse_txn(txn_succeeded, strlen(txn_succeeded), &put_b, 1, &range_a,
                                        1, 0, &t, &d),
                         0);
        assert_true(t.succeeded);
        assert_int_equal(t.revision, 3);
        etcd_txn_result_done(&t);
}

static void test_etcd_parse_txn_refuses_responses_that_do_not_match_the_branch(void **state)
{
        static const char *const bad[] = {
                /* succeeded, but a range answered for the put */
                "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,\"responses\":[{"
                "\"response_range\":{}}]}",
                /* two responses for one operation */
                "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,\"responses\":[{"
                "\"response_put\":{}},{\"response_put\":{}}]}",
                /* none */
                "{\"header\":{\"revision\":\"3\"},\"succeeded\":true}",
                /* two kinds in one response */
                "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,\"responses\":[{"
                "\"response_put\":{},\"response_range\":{}}]}",
                /* an inner revision after the transaction's */
                "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,\"responses\":[{"
                "\"response_put\":{\"header\":{\"revision\":\"4\"}}}]}",
                /* failed, with the range answering another key */
                "{\"header\":{\"revision\":\"3\"},\"responses\":[{\"response_range\":{\"kvs\":[{"
                "\"key\":\"" KEY_B "\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
                "\"version\":\"1\"}],\"count\":\"1\"}}]}",
                "{\"header\":{\"revision\":\"3\"},\"succeeded\":\"yes\",\"responses\":[]}",
        };
        EtcdTxnResult t = { .revision = -1 };
        Diag d;

        (void) state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int e;
                diag_clear(&d);
                e = etcd_parse_txn(bad[i], strlen(bad[i]), &put_b, 1, &range_a, 1, 0, &t, &d);
                if (e != -EBADMSG && e != -EPROTO)
                        fail_msg("case %zu: %d", i, e);
                assert_int_equal(t.revision, -1);
        }
}

static void test_etcd_parse_error_keeps_etcds_reason_printable_and_bounded(void **state)
{
        char evil[400];
        Diag d;

        (void) state;
        diag_clear(&d);
        assert_int_equal(etcd_parse_error(error_timeout, strlen(error_timeout), 503, &d), -EPROTO);
        assert_non_null(strstr(d.message, "HTTP 503"));
        assert_non_null(strstr(d.message, "etcdserver: request timed out"));
        (void) snprintf(evil, sizeof(evil), "{\"error\":\"a\\u001b[31mred\\nline%0300d\"}", 0);
        diag_clear(&d);
        assert_int_equal(etcd_parse_error(evil, strlen(evil), 500, &d), -EPROTO);
        assert_null(strchr(d.message, '\033'));
        assert_null(strchr(d.message, '\n'));
        diag_clear(&d);
        assert_int_equal(etcd_parse_error("not json", 8, 404, &d), -ENOTSUP);
        assert_non_null(strstr(d.message, "no reason given"));
}

static void test_etcd_client_refuses_keys_outside_the_prefix_and_bad_endpoints(void **state)
{
        EtcdConfig c = { .endpoints = "https://127.0.0.1:1",
                         .cert = "/dev/null",
                         .key = "/dev/null",
                         .ca = "/dev/null" };
        EtcdClient *client = NULL;
        EtcdRange r = {};
        int64_t rev;
        Diag d;

        (void) state;
        static const char *const bad_endpoints[] = {
                "http://127.0.0.1:2379",    "https://127.0.0.1", "https://127.0.0.1:2379/v3",
                "https://127.0.0.1:123456", "https://a b:1",     "",
        };
        for (size_t i = 0; i < sizeof(bad_endpoints) / sizeof(bad_endpoints[0]); i++) {
                EtcdConfig b = c;
                b.endpoints = bad_endpoints[i];
                diag_clear(&d);
                assert_int_equal(etcd_client_new(&b, &client, &d), -EINVAL);
                assert_null(client);
        }
        c.key = NULL;
        assert_int_equal(etcd_client_new(&c, &client, &d), -EINVAL);
        c.key = "/dev/null";
        assert_int_equal(etcd_client_new(&c, &client, &d), 0);
        /* Refused before anything is sent (nothing listens on port 1 anyway). */
        diag_clear(&d);
        assert_int_equal(etcd_range(client, "/registry/secrets", NULL, 0, &r, &d), -EINVAL);
        assert_int_equal(etcd_put(client, "/cloister/v2/x", "v", 1, &rev, &d), -EINVAL);
        client = etcd_client_free(client);
}

static void test_etcd_prefix_end_is_the_next_key_after_the_prefix(void **state)
{
        char *e;

        (void) state;
        e = etcd_prefix_end("/cloister/v1/abc/members/");
        assert_string_equal(e, "/cloister/v1/abc/members0");
        free(e);
        e = etcd_prefix_end("a\xff\xff");
        assert_string_equal(e, "b");
        free(e);
        assert_null(etcd_prefix_end("\xff"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_etcd_parse_range_reads_etcd_3_4_answers),
                cmocka_unit_test(test_etcd_parse_range_refuses_an_answer_older_than_one_seen),
                cmocka_unit_test(test_etcd_parse_range_refuses_revisions_out_of_order),
                cmocka_unit_test(
                        test_etcd_parse_range_refuses_keys_outside_the_range_order_or_prefix),
                cmocka_unit_test(test_etcd_parse_range_refuses_malformed_integers_and_base64),
                cmocka_unit_test(test_etcd_parse_refuses_an_oversized_answer),
                cmocka_unit_test(test_etcd_parse_txn_reads_both_branches_of_etcd_3_4),
                cmocka_unit_test(
                        test_etcd_parse_txn_refuses_responses_that_do_not_match_the_branch),
                cmocka_unit_test(test_etcd_parse_error_keeps_etcds_reason_printable_and_bounded),
                cmocka_unit_test(
                        test_etcd_client_refuses_keys_outside_the_prefix_and_bad_endpoints),
                cmocka_unit_test(test_etcd_prefix_end_is_the_next_key_after_the_prefix),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
