/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX collateral for evidence that carries none, as a join service serves it (docs/tdx.md, "Joins
 * and the collateral cache"): sim-tdx quotes without collateral, a cache filled through a
 * loopback PCS stand-in that counts requests, the collateral answered over the typed privsep
 * request (a real socketpair, the monitor's answer in a thread) to attest_verify(), stale and
 * missing items reported, and the refresher fetching ahead of nextUpdate.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers/unit.h"

#include "cloister/attest.h"
#include "cloister/evidence.h"
#include "cloister/json.h"
#include "cloister/privsep-tdx.h"
#include "cloister/tdx-sim.h"
#include "cloister/tdx.h"

/* ---- a loopback PCS stand-in: serves the simulator's collateral, counts requests ------------ */

typedef struct Pcs {
        int fd;
        uint16_t port;
        pthread_t thread;
        TdxCollateral col;
        unsigned requests;
        int fail_status; /* 0: serve; else answer every request with this status */
        char base[128];
} Pcs;

static char *encode(const uint8_t *in, size_t n)
{
        char *out = malloc(3 * n + 1), *p = out;
        assert_non_null(out);
        for (size_t i = 0; i < n; i++) {
                if ((in[i] >= 'A' && in[i] <= 'Z') || (in[i] >= 'a' && in[i] <= 'z') ||
                    (in[i] >= '0' && in[i] <= '9'))
                        *p++ = (char) in[i];
                else
                        p += sprintf(p, "%%%02X", in[i]);
        }
        *p = 0;
        return out;
}

static void respond(int c, Pcs *s, const char *path)
{
        const uint8_t *body = NULL, *chain = NULL;
        size_t size = 0, chain_size = 0;
        const char *header = NULL;
        char head[512];
        char *enc = NULL;
        int status = 200;

        if (s->fail_status)
                status = s->fail_status;
        else if (strstr(path, "/tdx/certification/v4/tcb?fmspc=")) {
                body = s->col.tcb_info, size = s->col.tcb_info_size;
                header = "TCB-Info-Issuer-Chain";
                chain = s->col.tcb_info_chain, chain_size = s->col.tcb_info_chain_size;
        } else if (strstr(path, "/tdx/certification/v4/qe/identity")) {
                body = s->col.qe_identity, size = s->col.qe_identity_size;
                header = "SGX-Enclave-Identity-Issuer-Chain";
                chain = s->col.qe_identity_chain, chain_size = s->col.qe_identity_chain_size;
        } else if (strstr(path, "/sgx/certification/v4/pckcrl?ca=")) {
                body = s->col.pck_crl, size = s->col.pck_crl_size;
                /* The simulator has no separate CRL chain; it is not used for verification. */
                header = "SGX-PCK-CRL-Issuer-Chain";
                chain = s->col.tcb_info_chain, chain_size = s->col.tcb_info_chain_size;
        } else if (strstr(path, "/sgx/certification/v4/rootcacrl"))
                body = s->col.root_crl, size = s->col.root_crl_size;
        else
                status = 404;
        if (header)
                enc = encode(chain, chain_size);
        (void) snprintf(head, sizeof(head),
                        "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n", status,
                        status == 200 ? size : 0);
        assert_true(write(c, head, strlen(head)) > 0);
        if (enc && status == 200) {
                assert_true(write(c, header, strlen(header)) > 0);
                assert_true(write(c, ": ", 2) == 2);
                assert_true(write(c, enc, strlen(enc)) > 0);
                assert_true(write(c, "\r\n", 2) == 2);
        }
        assert_true(write(c, "\r\n", 2) == 2);
        if (status == 200 && size)
                assert_true(write(c, body, size) == (ssize_t) size);
        free(enc);
}

static void *pcs_thread(void *arg)
{
        Pcs *s = arg;

        for (;;) {
                char req[4096], path[1024] = "";
                size_t n = 0;
                int c = accept(s->fd, NULL, NULL);

                if (c < 0)
                        return NULL; /* closed: stop */
                while (n < sizeof(req) - 1) {
                        ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t) k;
                        req[n] = 0;
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                req[n] = 0;
                if (sscanf(req, "GET %1023s", path) == 1) {
                        __atomic_add_fetch(&s->requests, 1, __ATOMIC_SEQ_CST);
                        respond(c, s, path);
                }
                (void) close(c);
        }
}

static void pcs_start(Pcs *s, TdxSimulator *sim)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t al = sizeof(a);

        *s = (Pcs){};
        assert_int_equal(tdx_sim_collateral(sim, &s->col), 0);
        s->fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(s->fd >= 0);
        assert_int_equal(bind(s->fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(s->fd, 16), 0);
        assert_int_equal(getsockname(s->fd, (struct sockaddr *) &a, &al), 0);
        s->port = ntohs(a.sin_port);
        (void) snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%u/tdx/certification/v4",
                        s->port);
        assert_int_equal(pthread_create(&s->thread, NULL, pcs_thread, s), 0);
}

static void pcs_stop(Pcs *s)
{
        (void) shutdown(s->fd, SHUT_RDWR);
        (void) close(s->fd);
        (void) pthread_join(s->thread, NULL);
}

static unsigned pcs_requests(Pcs *s)
{
        return __atomic_load_n(&s->requests, __ATOMIC_SEQ_CST);
}

/* ---- the join service's two sides, over a real socketpair ---------------------------------- */

typedef struct Monitor {
        int fd;
        pthread_t thread;
        TdxPcsConfig pcs; /* cache_dir; the answer reads it offline */
        unsigned answered;
} Monitor;

/* What join-service-monitor.c does for JOIN_PRIVSEP_TDX_COLLATERAL: parse against the table,
 * answer from the cache. */
static void *monitor_thread(void *arg)
{
        Monitor *m = arg;

        for (;;) {
                uint8_t *buf = NULL;
                size_t size = 0;
                PrivsepMsg msg;
                PrivsepBuf out = {};

                if (privsep_recv(m->fd, &buf, &size) < 0)
                        return NULL;
                assert_int_equal(
                        privsep_parse(buf, size, join_privsep_requests, join_privsep_n_specs, &msg),
                        0);
                assert_int_equal(msg.op, JOIN_PRIVSEP_TDX_COLLATERAL);
                privsep_tdx_collateral_answer(&m->pcs, &msg, &out);
                assert_int_equal(privsep_send(m->fd, &out), 0);
                privsep_buf_done(&out);
                privsep_wipe_free(buf, size);
                m->answered++;
        }
}

/* What join-service-tdx.c's network source does: ask, decode. */
static int network_source(void *userdata, const char *fmspc, const char *ca, time_t at,
                          TdxCollateral **ret, char *note, size_t note_size, Diag *d)
{
        int *fd = userdata;
        uint8_t *buf = NULL;
        size_t size = 0;
        PrivsepBuf b;
        int r;

        (void) at;
        privsep_tdx_collateral_request(&b, fmspc, ca);
        assert_int_equal(privsep_send(*fd, &b), 0);
        privsep_buf_done(&b);
        assert_int_equal(privsep_recv(*fd, &buf, &size), 0);
        r = privsep_tdx_collateral_decode(buf, size, ret, note, note_size, d);
        privsep_wipe_free(buf, size);
        return r;
}

static TdxSimulator *simulator(void)
{
        TdxSimulator *sim = NULL;
        TdxSimConfig c;

        tdx_sim_config_defaults(&c);
        memset(c.mr_td, 0x42, 48);
        assert_int_equal(tdx_sim_new(&c, &sim), 0);
        return sim;
}

static AttestPolicy *sim_policy(TdxSimulator *sim)
{
        _cleanup_(freep) char *pem = NULL, *doc = NULL;
        AttestPolicy *p = NULL;
        char mrtd[97];
        json_t *j;
        Diag d;

        for (int i = 0; i < 96; i++)
                mrtd[i] = i % 2 ? '2' : '4';
        mrtd[96] = 0;
        assert_int_equal(tdx_sim_root_pem(sim, &pem), 0);
        j = json_pack("{s:i,s:s,s:{s:[s],s:s}}", "version", 1, "variant", "sim-tdx", "tdx", "mrTd",
                      mrtd, "trustedRoot", pem);
        assert_int_equal(json_dump_compact(j, &doc), 0);
        json_decref(j);
        assert_int_equal(attest_policy_parse(doc, strlen(doc), "policy.json", &p, &d), 0);
        return p;
}

/* sim-tdx evidence as a real TD's: the quote alone, no collateral (serialised and parsed back,
 * the wire form). */
static Evidence *bare_evidence(TdxSimulator *sim, const uint8_t binding[static 32])
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_SIM_TDX);
        _cleanup_(freep) char *text = NULL;
        uint8_t report_data[64] = {};
        Evidence *back = NULL;
        size_t n;
        Diag d;

        memcpy(report_data, binding, 32);
        assert_int_equal(tdx_sim_quote(sim, report_data, &e->tdx.quote.data, &e->tdx.quote.size),
                         0);
        e->has_tdx = true;
        assert_int_equal(evidence_serialize(e, &text, &n), 0);
        assert_int_equal(evidence_parse(text, n, &back, &d), 0);
        assert_false(back->tdx.has_collateral);
        return back;
}

/* The status of the named check in r, -1 when absent; its detail in *detail. */
static int check_status(const AttestReport *r, const char *name, const char **detail)
{
        for (size_t i = 0; i < r->n_checks; i++)
                if (strcmp(r->checks[i].name, name) == 0) {
                        if (detail)
                                *detail = r->checks[i].detail;
                        return (int) r->checks[i].status;
                }
        if (detail)
                *detail = "";
        return -1;
}

static void key_of(const Evidence *e, TdxPcsResult *key)
{
        TdxQuote q;
        Diag d;

        assert_int_equal(tdx_quote_parse(e->tdx.quote.data, e->tdx.quote.size, &q, &d), 0);
        assert_int_equal(tdx_pcs_platform(&q, key, &d), 0);
}

static void
test_tdx_evidence_without_collateral_joins_from_the_monitors_cache_with_zero_pcs_requests(
        void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator();
        _cleanup_(attest_policy_freep) AttestPolicy *p = sim_policy(sim);
        _cleanup_(evidence_freep) Evidence *e = NULL;
        uint8_t binding[32];
        char dir[4096];
        int pair[2];
        Monitor m = {};
        TdxPcsResult key;
        AttestReport rep = {};
        Pcs pcs;
        Diag d;

        memset(binding, 0x5a, sizeof(binding));
        e = bare_evidence(sim, binding);
        key_of(e, &key);
        pcs_start(&pcs, sim);
        (void) snprintf(dir, sizeof(dir), "%s/join-cache", test_tmpdir());
        tdx_pcs_config_defaults(&m.pcs);
        m.pcs.base_url = pcs.base;
        m.pcs.cache_dir = dir;
        m.pcs.retries = 0;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
        m.fd = pair[0];
        assert_int_equal(pthread_create(&m.thread, NULL, monitor_thread, &m), 0);

        /* Without a source (before this change, and any process that sets none): refused for an
         * unknown TCB status. */
        assert_int_equal(attest_verify(e, p, binding, 0, &rep, &d), -EPERM);
        assert_string_equal(d.check, "tdx-tcb-status");
        attest_report_done(&rep);

        attest_tdx_collateral_source_set(network_source, &pair[1]);
        /* An empty cache: refused, naming the FMSPC and the next step; nothing fetched. */
        assert_int_equal(attest_verify(e, p, binding, 0, &rep, &d), -EPERM);
        assert_string_equal(d.check, "tdx-collateral-missing");
        assert_non_null(strstr(d.message, key.fmspc));
        assert_non_null(strstr(d.message, "verify-report --type tdx"));
        assert_non_null(strstr(d.message, "refresher"));
        assert_int_equal(pcs_requests(&pcs), 0);
        attest_report_done(&rep);

        /* Filled once online, as verify-report or the refresher does: four requests. */
        {
                _cleanup_(tdx_collateral_freep) TdxCollateral *col = NULL;
                TdxPcsResult res;
                assert_int_equal(
                        tdx_pcs_collateral_for(&m.pcs, key.fmspc, key.ca, 0, &col, &res, &d), 0);
                assert_int_equal(res.fetched, 4);
                assert_int_equal(pcs_requests(&pcs), 4);
        }

        /* The join: admitted on the cached collateral (TCB evaluated), zero PCS requests. */
        if (attest_verify(e, p, binding, 0, &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        assert_int_equal(check_status(&rep, "tdx-collateral-cache", NULL), CHECK_PASS);
        assert_int_equal(check_status(&rep, "tdx-tcb-status", NULL), CHECK_PASS);
        attest_report_done(&rep);
        for (int i = 0; i < 5; i++) {
                assert_int_equal(attest_verify(e, p, binding, 0, &rep, &d), 0);
                attest_report_done(&rep);
        }
        assert_int_equal(pcs_requests(&pcs), 4);
        assert_int_equal(m.answered, 7);

        /* The cache adds no trust: a wrong binding is still refused. */
        binding[0] ^= 1;
        assert_int_equal(attest_verify(e, p, binding, 0, &rep, &d), -ESTALE);
        assert_string_equal(d.check, "tdx-report-data");
        attest_report_done(&rep);

        attest_tdx_collateral_source_set(NULL, NULL);
        (void) close(pair[1]);
        (void) pthread_join(m.thread, NULL);
        (void) close(pair[0]);
        pcs_stop(&pcs);
}

/* The monitor's own verification: its cache, at the verification's time (as
 * join-service-tdx.c's monitor source calls it). */
static int monitor_source(void *userdata, const char *fmspc, const char *ca, time_t at,
                          TdxCollateral **ret, char *note, size_t note_size, Diag *d)
{
        return privsep_tdx_collateral_lookup(userdata, fmspc, ca, at, ret, note, note_size, d);
}

static void test_tdx_stale_cached_collateral_is_reported_in_the_refusal(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator();
        _cleanup_(attest_policy_freep) AttestPolicy *p = sim_policy(sim);
        _cleanup_(evidence_freep) Evidence *e = NULL;
        time_t later = time(NULL) + 31 * 24 * 3600;
        uint8_t binding[32];
        char dir[4096];
        TdxPcsConfig c;
        TdxPcsResult key;
        AttestReport rep = {};
        const char *detail;
        Pcs pcs;
        Diag d;

        memset(binding, 0x33, sizeof(binding));
        e = bare_evidence(sim, binding);
        key_of(e, &key);
        pcs_start(&pcs, sim);
        (void) snprintf(dir, sizeof(dir), "%s/stale-cache", test_tmpdir());
        tdx_pcs_config_defaults(&c);
        c.base_url = pcs.base;
        c.cache_dir = dir;
        c.retries = 0;
        {
                _cleanup_(tdx_collateral_freep) TdxCollateral *col = NULL;
                TdxPcsResult res;
                assert_int_equal(tdx_pcs_collateral_for(&c, key.fmspc, key.ca, 0, &col, &res, &d),
                                 0);
        }
        attest_tdx_collateral_source_set(monitor_source, &c);
        /* Fresh now: admitted. */
        if (attest_verify(e, p, binding, 0, &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        attest_report_done(&rep);
        /* 31 days on the simulator's collateral (nextUpdate 30 days ahead) is stale: used as it
         * is, reported (a warning, the check's detail, the refusal), and refused as stale. */
        assert_int_equal(attest_verify(e, p, binding, later, &rep, &d), -ESTALE);
        assert_string_equal(d.check, "tdx-collateral-stale");
        assert_non_null(strstr(d.message, "the collateral cache is STALE"));
        assert_non_null(strstr(d.message, "past its nextUpdate"));
        assert_int_equal(check_status(&rep, "tdx-collateral-cache", &detail), CHECK_WARN);
        assert_non_null(strstr(detail, "STALE"));
        assert_non_null(strstr(detail, key.fmspc));
        attest_report_done(&rep);
        /* A lookup never fetches, stale or not. */
        assert_int_equal(pcs_requests(&pcs), 4);
        attest_tdx_collateral_source_set(NULL, NULL);
        pcs_stop(&pcs);
}

static void test_privsep_tdx_collateral_request_refuses_what_is_not_an_fmspc(void **state)
{
        static const char *const bad[][2] = {
                { "../../../etc", "platform" },
                { "B0C06F000000", "platform" },
                { "b0c06f00000g", "platform" },
                { "b0c06f000000", "root" },
        };
        TdxPcsConfig c;
        char dir[4096];

        (void) snprintf(dir, sizeof(dir), "%s/no-cache", test_tmpdir());
        tdx_pcs_config_defaults(&c);
        c.cache_dir = dir;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                PrivsepBuf req, out;
                PrivsepMsg m;
                TdxCollateral *col = NULL;
                char note[64];
                Diag d;

                privsep_tdx_collateral_request(&req, bad[i][0], bad[i][1]);
                assert_int_equal(privsep_parse(req.data + 4, req.size - 4, join_privsep_requests,
                                               join_privsep_n_specs, &m),
                                 0);
                privsep_tdx_collateral_answer(&c, &m, &out);
                assert_int_equal(privsep_tdx_collateral_decode(out.data + 4, out.size - 4, &col,
                                                               note, sizeof(note), &d),
                                 -EINVAL);
                assert_null(col);
                assert_string_equal(d.check, "tdx-collateral-missing");
                privsep_buf_done(&req);
                privsep_buf_done(&out);
        }
        /* The cache lookup itself refuses a key that would name other files. */
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                TdxCollateral *col = NULL;
                TdxPcsResult res;
                Diag d;

                c.offline = true;
                assert_int_equal(
                        tdx_pcs_collateral_for(&c, bad[i][0], bad[i][1], 0, &col, &res, &d),
                        -EINVAL);
                assert_null(col);
                assert_string_equal(d.check, "tdx-pcs");
        }
        /* A key longer than an FMSPC does not even parse as a request. */
        {
                PrivsepBuf req;
                PrivsepMsg m;
                privsep_tdx_collateral_request(&req, "b0c06f0000001", "platform");
                assert_int_equal(privsep_parse(req.data + 4, req.size - 4, join_privsep_requests,
                                               join_privsep_n_specs, &m),
                                 -EBADMSG);
                privsep_buf_done(&req);
        }
}

static void test_tdx_refresher_fetches_ahead_of_next_update_and_counts_failures(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator();
        _cleanup_(evidence_freep) Evidence *e = NULL;
        uint8_t binding[32] = {};
        char dir[4096];
        TdxRefresher t;
        TdxPcsResult key;
        Pcs pcs;

        e = bare_evidence(sim, binding);
        key_of(e, &key);
        pcs_start(&pcs, sim);
        (void) snprintf(dir, sizeof(dir), "%s/refresh-cache", test_tmpdir());
        tdx_refresher_init(&t);
        t.pcs.base_url = pcs.base;
        t.pcs.cache_dir = dir;
        t.pcs.retries = 0;
        t.pcs.backoff_ms = 1;

        /* Nothing seen: nothing fetched. */
        assert_int_equal(tdx_refresher_round(&t, time(NULL)), 0);
        assert_int_equal(pcs_requests(&pcs), 0);
        tdx_refresher_seen(&t, "../etc/passwd", "platform"); /* not a key: ignored */
        tdx_refresher_seen(&t, key.fmspc, key.ca);
        tdx_refresher_seen(&t, key.fmspc, key.ca);
        assert_int_equal(t.n_keys, 1);

        /* First round: the four items fetched into the cache. */
        assert_int_equal(tdx_refresher_round(&t, time(NULL)), 0);
        assert_int_equal(pcs_requests(&pcs), 4);
        /* Fresh for 30 days, refreshed a day ahead: nothing to do now. */
        t.ahead_sec = 24 * 3600;
        assert_int_equal(tdx_refresher_round(&t, time(NULL)), 0);
        assert_int_equal(pcs_requests(&pcs), 4);
        /* Twenty-nine and a half days on, within a day of nextUpdate: fetched again, ahead. */
        assert_int_equal(tdx_refresher_round(&t, time(NULL) + 29 * 24 * 3600 + 12 * 3600), 0);
        assert_true(pcs_requests(&pcs) >= 4 + 3);

        /* After a restart: the cached platform is known again, from the cache alone. */
        {
                TdxRefresher again;

                tdx_refresher_init(&again);
                again.pcs.cache_dir = dir;
                assert_int_equal(tdx_refresher_seen_from_cache(&again), 1);
                assert_int_equal(again.n_keys, 1);
                assert_string_equal(again.fmspc[0], key.fmspc);
                assert_string_equal(again.ca[0], key.ca);
                tdx_refresher_stop(&again);
        }

        /* The service fails: the round fails (logged), counted for the backoff. */
        pcs.fail_status = 503;
        {
                unsigned before = pcs_requests(&pcs);
                assert_int_equal(tdx_refresher_round(&t, time(NULL) + 31 * 24 * 3600), 1);
                assert_int_equal(t.failures, 1);
                /* One failed item: the others are not tried (one round of retries, not four). */
                assert_int_equal(pcs_requests(&pcs), before + 1);
        }
        tdx_refresher_stop(&t);
        pcs_stop(&pcs);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_tdx_evidence_without_collateral_joins_from_the_monitors_cache_with_zero_pcs_requests),
                cmocka_unit_test(test_tdx_stale_cached_collateral_is_reported_in_the_refusal),
                cmocka_unit_test(test_privsep_tdx_collateral_request_refuses_what_is_not_an_fmspc),
                cmocka_unit_test(
                        test_tdx_refresher_fetches_ahead_of_next_update_and_counts_failures),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
