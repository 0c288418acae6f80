/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aTLS handshake benchmark: plain TLS 1.3 (same OpenSSL, P-256 certificate, X25519, no
 * resumption) against aTLS with sim-snp evidence, aTLS with vTPM evidence (a swtpm), and mutual
 * aTLS (against plain mutual TLS). Each measurement is a median over interleaved
 * baseline/candidate pairs, so drifts in
 * machine load hit both sides of every ratio alike. Handshakes run in memory (BIO pairs) in one
 * thread; server CPU is the thread CPU time spent in the server's handshake calls.
 *
 * Output: one line per target, "name baseline candidate ratio target PASS|FAIL", and
 * build/bench/atls.json.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/attest-atls.h"
#include "cloister/json.h"
#include "cloister/snp-sim.h"
#include "cloister/tpm-device.h"
#include "helpers/attest-fixture.h"
#include "helpers/bench.h"
#include "helpers/vtpm.h"

static double now_cpu(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

typedef struct Sample {
        double wall; /* whole handshake, both ends */
        double server_cpu;
} Sample;

static int one_handshake(SSL_CTX *cctx, SSL_CTX *sctx, Sample *out)
{
        SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
        BIO *b1, *b2;
        bool cd = false, sd = false;
        double t0 = bench_now(), scpu = 0;
        int ok = -1;

        BIO_new_bio_pair(&b1, 0, &b2, 0);
        SSL_set_bio(c, b1, b1);
        SSL_set_bio(s, b2, b2);
        SSL_set_connect_state(c);
        SSL_set_accept_state(s);
        for (int i = 0; i < 64 && !(cd && sd); i++) {
                if (!cd) {
                        int r = SSL_do_handshake(c);
                        if (r == 1)
                                cd = true;
                        else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                                break;
                }
                if (!sd) {
                        double c0 = now_cpu();
                        int r = SSL_do_handshake(s);
                        scpu += now_cpu() - c0;
                        if (r == 1)
                                sd = true;
                        else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                                break;
                }
        }
        if (cd && sd) {
                /* One byte each way completes TLS 1.3 (the server reads the client's Finished
                 * and, in mutual mode, verifies the client's certificate). */
                char b;
                double c0;
                SSL_write(c, "x", 1);
                c0 = now_cpu();
                if (SSL_read(s, &b, 1) == 1)
                        ok = 0;
                scpu += now_cpu() - c0;
        }
        out->wall = bench_now() - t0;
        out->server_cpu = scpu;
        SSL_free(c);
        SSL_free(s);
        ERR_clear_error();
        return ok;
}

/* A P-256 self-signed certificate and key on ctx. */
static void plain_identity(SSL_CTX *ctx)
{
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *x = X509_new();

        X509_set_version(x, X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *) "plain", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        X509_sign(x, key, EVP_sha256());
        SSL_CTX_use_certificate(ctx, x);
        SSL_CTX_use_PrivateKey(ctx, key);
        X509_free(x);
        EVP_PKEY_free(key);
}

static int accept_any(X509_STORE_CTX *x, void *arg)
{
        return 1; /* the baseline verifies nothing beyond TLS itself */
}

static SSL_CTX *plain_server(bool mutual)
{
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

        plain_identity(ctx);
        if (mutual) {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
                SSL_CTX_set_cert_verify_callback(ctx, accept_any, NULL);
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
        SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256");
        SSL_CTX_set1_client_sigalgs_list(ctx, "ECDSA+SHA256");
        return ctx;
}

static SSL_CTX *plain_client(bool mutual)
{
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

        if (mutual)
                plain_identity(ctx);
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
        SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, accept_any, NULL);
        return ctx;
}

typedef struct Pair {
        SSL_CTX *c, *s;
} Pair;

typedef struct Result {
        double base_wall, cand_wall, base_cpu, cand_cpu; /* medians */
        double extra_cpu;                                /* median of the per-pair extra */
        double wall_ratio, cpu_ratio;                    /* medians of per-pair ratios */
} Result;

/* Work measured standalone inside each pair and added to the baseline's CPU (e.g. one evidence
 * issue + one verify), so that baseline, extra and candidate see the same machine state. */
typedef struct Extra {
        double (*run)(void *userdata); /* CPU seconds */
        void *userdata;
} Extra;

/* Interleaved pairs: baseline, candidate, baseline, candidate... */
static int compare_extra(Pair base, Pair cand, int n, const Extra *extra, Result *r)
{
        double *bw = calloc((size_t) n, sizeof(double)), *cw = calloc((size_t) n, sizeof(double)),
               *bc = calloc((size_t) n, sizeof(double)), *cc = calloc((size_t) n, sizeof(double)),
               *wr = calloc((size_t) n, sizeof(double)), *cr = calloc((size_t) n, sizeof(double)),
               *ex = calloc((size_t) n, sizeof(double));
        int ok = 0;

        for (int i = 0; i < n && ok == 0; i++) {
                Sample a, b;
                if (one_handshake(base.c, base.s, &a) < 0 || one_handshake(cand.c, cand.s, &b) < 0)
                        ok = -1;
                ex[i] = extra ? extra->run(extra->userdata) : 0;
                bw[i] = a.wall, cw[i] = b.wall, bc[i] = a.server_cpu, cc[i] = b.server_cpu;
                wr[i] = b.wall / a.wall;
                cr[i] = b.server_cpu / (a.server_cpu + ex[i]);
        }
        if (ok == 0) {
                r->wall_ratio = bench_median(wr, n);
                r->cpu_ratio = bench_median(cr, n);
                r->base_wall = bench_median(bw, n);
                r->cand_wall = bench_median(cw, n);
                r->base_cpu = bench_median(bc, n);
                r->cand_cpu = bench_median(cc, n);
                r->extra_cpu = bench_median(ex, n);
        }
        free(bw), free(cw), free(bc), free(cc), free(wr), free(cr), free(ex);
        return ok;
}

static int compare(Pair base, Pair cand, int n, Result *r)
{
        return compare_extra(base, cand, n, NULL, r);
}

static int lines_failed;
static json_t *report;

static void line(const char *name, double baseline, double candidate, double ratio, const char *op,
                 double target)
{
        bool pass = strcmp(op, "<=") == 0 ? ratio <= target : ratio >= target;
        printf("%-34s %12.6f %12.6f %8.3f %s%-5.2f %s\n", name, baseline, candidate, ratio, op,
               target, pass ? "PASS" : "FAIL");
        lines_failed += !pass;
        json_array_append_new(json_object_get(report, "results"),
                              json_pack("{s:s,s:f,s:f,s:f,s:s,s:f,s:b}", "name", name, "baseline",
                                        baseline, "candidate", candidate, "ratio", ratio, "op", op,
                                        "target", target, "pass", pass));
}

typedef struct Standalone {
        SimSnpAttester *sa;
        const AttestPolicy *policy;
} Standalone;

/* CPU seconds of one standalone issue and one verify of sim-snp evidence: what a mutual server
 * does beyond plain mutual TLS. */
static double issue_and_verify(void *userdata)
{
        Standalone *st = userdata;
        static const uint8_t binding[32] = { 2 };
        Evidence *e = NULL, *p = NULL;
        char *doc = NULL;
        size_t size;
        double c0 = now_cpu(), spent;

        attest_sim_snp_issue(st->sa->sim, binding, &e, NULL);
        evidence_serialize(e, &doc, &size);
        evidence_parse(doc, size, &p, NULL);
        attest_verify(p, st->policy, binding, 0, NULL, NULL);
        spent = now_cpu() - c0;
        evidence_free(e);
        evidence_free(p);
        free(doc);
        return spent;
}

/* CPU seconds of one standalone issue / verify of sim-snp evidence (median of n). */
static void standalone_cost(SimSnpAttester *sa, const AttestPolicy *pol, int n, double *issue,
                            double *verify)
{
        double *is = calloc((size_t) n, sizeof(double)), *vs = calloc((size_t) n, sizeof(double));
        static const uint8_t binding[32] = { 1 };

        for (int i = 0; i < n; i++) {
                Evidence *e = NULL, *p = NULL;
                char *doc = NULL;
                size_t size;
                double c0 = now_cpu();

                attest_sim_snp_issue(sa->sim, binding, &e, NULL);
                evidence_serialize(e, &doc, &size);
                is[i] = now_cpu() - c0;
                c0 = now_cpu();
                evidence_parse(doc, size, &p, NULL);
                attest_verify(p, pol, binding, 0, NULL, NULL);
                vs[i] = now_cpu() - c0;
                evidence_free(e);
                evidence_free(p);
                free(doc);
        }
        *issue = bench_median(is, n);
        *verify = bench_median(vs, n);
        free(is);
        free(vs);
}

int main(int argc, char *argv[])
{
        int n = argc > 1 ? bench_pairs(argv[1]) : 200;
        const char *out = argc > 2 ? argv[2] : "build/bench/atls.json";
        SnpSimulator *sim_s = NULL, *sim_c = NULL;
        AttestPolicy *pol_s = NULL, *pol_c = NULL, *pol_tpm = NULL;
        SimSnpAttester sa_s, sa_c;
        PolicyVerifier pv_s, pv_c, pv_tpm;
        VtpmAttester va;
        TpmDevice *tpm = NULL;
        Vtpm vtpm;
        Result r1, r2, r3, r4;
        double issue, verify;
        char *text;

        report = json_pack("{s:i,s:[]}", "pairs", n, "results");
        if (snp_sim_new(NULL, &sim_s) < 0 || snp_sim_new(NULL, &sim_c) < 0 ||
            fixture_policy_sim_snp(sim_s, &pol_s) < 0 ||
            fixture_policy_sim_snp(sim_c, &pol_c) < 0) {
                fprintf(stderr, "bench: cannot set up the SNP simulator\n");
                return 1;
        }
        if (vtpm_start(&vtpm, false) < 0 || tpm_device_open(vtpm.tcti, &tpm) < 0 ||
            fixture_policy_pinned(vtpm.tcti, &pol_tpm) < 0) {
                fprintf(stderr, "bench: cannot start a swtpm\n");
                return 1;
        }
        sa_s.sim = sim_s;
        sa_c.sim = sim_c;
        pv_s = (PolicyVerifier){ .policy = pol_s };
        pv_c = (PolicyVerifier){ .policy = pol_c };
        pv_tpm = (PolicyVerifier){ .policy = pol_tpm };
        VtpmIssueConfig cfg;
        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        vtpm_attester_init(&va, tpm, &cfg);

        AtlsAttester as = sim_snp_attester(&sa_s), ac = sim_snp_attester(&sa_c),
                     at = vtpm_attester(&va);
        AtlsVerifier vs = policy_verifier(&pv_s), vc = policy_verifier(&pv_c),
                     vt = policy_verifier(&pv_tpm);
        AtlsContext *snp_srv, *snp_cli, *mut_srv, *mut_cli, *tpm_srv, *tpm_cli;
        atls_context_new(ATLS_ROLE_SERVER, &as, NULL, &snp_srv);
        atls_context_new(ATLS_ROLE_CLIENT, NULL, &vs, &snp_cli);
        atls_context_new(ATLS_ROLE_SERVER, &as, &vc, &mut_srv);
        atls_context_new(ATLS_ROLE_CLIENT, &ac, &vs, &mut_cli);
        atls_context_new(ATLS_ROLE_SERVER, &at, NULL, &tpm_srv);
        atls_context_new(ATLS_ROLE_CLIENT, NULL, &vt, &tpm_cli);
        Pair plain = { plain_client(false), plain_server(false) };
        Pair plain_mutual = { plain_client(true), plain_server(true) };
        Pair snp = { atls_context_ssl_ctx(snp_cli), atls_context_ssl_ctx(snp_srv) };
        Pair mutual = { atls_context_ssl_ctx(mut_cli), atls_context_ssl_ctx(mut_srv) };
        Pair vt_pair = { atls_context_ssl_ctx(tpm_cli), atls_context_ssl_ctx(tpm_srv) };

        /* Warm-up: code paths, caches, the swtpm. */
        compare(plain, snp, 10, &r1);
        Standalone st = { &sa_c, pol_c };
        const Extra parts = { issue_and_verify, &st };
        if (compare(plain, snp, n, &r1) < 0 ||
            compare_extra(plain_mutual, mutual, n, &parts, &r2) < 0 ||
            compare(snp, mutual, n, &r3) < 0 || compare(plain, vt_pair, n / 4 ?: 1, &r4) < 0) {
                fprintf(stderr, "bench: a handshake failed\n");
                return 1;
        }
        standalone_cost(&sa_c, pol_c, n, &issue, &verify);
        printf("# standalone sim-snp evidence: issue %.3f ms, verify %.3f ms (CPU)\n", issue * 1e3,
               verify * 1e3);

        printf("%-34s %12s %12s %8s %-7s %s\n", "name", "baseline", "candidate", "ratio", "target",
               "verdict");
        printf("# handshake rates (per second): plain %.0f, aTLS sim-snp %.0f, aTLS vTPM %.0f, "
               "mutual aTLS sim-snp %.0f\n",
               1 / r1.base_wall, 1 / r1.cand_wall, 1 / r4.cand_wall, 1 / r2.cand_wall);
        /* 1. server CPU of a mutual sim-snp handshake vs the same-shape plain handshake (mutual
         * TLS with P-256 certificates) + evidence issue + evidence verify, standalone, all three
         * measured in each pair; the ratio is the median of the per-pair ratios. */
        line("server-cpu-mutual-vs-parts", r2.base_cpu + r2.extra_cpu, r2.cand_cpu, r2.cpu_ratio,
             "<=", 1.2);
        /* 2. sim-snp aTLS handshake rate vs plain (rate ratio = 1 / time ratio). */
        line("rate-sim-snp-vs-plain", 1 / r1.base_wall, 1 / r1.cand_wall, 1 / r1.wall_ratio,
             ">=", 0.35);
        /* 3. mutual latency vs one-sided latency. */
        line("latency-mutual-vs-one-sided", r3.base_wall, r3.cand_wall, r3.wall_ratio, "<=", 2.2);
        /* Informational: vTPM aTLS vs plain (bounded by the TPM's quote time, no target). */
        printf("%-34s %12.6f %12.6f %8.3f (no target: bounded by the TPM)\n", "rate-vtpm-vs-plain",
               1 / r4.base_wall, 1 / r4.cand_wall, 1 / r4.wall_ratio);
        json_object_set_new(report, "rates",
                            json_pack("{s:f,s:f,s:f,s:f}", "plain", 1 / r1.base_wall, "simSnp",
                                      1 / r1.cand_wall, "vtpm", 1 / r4.cand_wall, "mutualSimSnp",
                                      1 / r2.cand_wall));
        if (json_dump_pretty(report, &text) >= 0) {
                FILE *f = fopen(out, "we");
                if (f) {
                        fprintf(f, "%s\n", text);
                        fclose(f);
                }
                free(text);
        }

        atls_context_free(snp_srv), atls_context_free(snp_cli), atls_context_free(mut_srv);
        atls_context_free(mut_cli), atls_context_free(tpm_srv), atls_context_free(tpm_cli);
        SSL_CTX_free(plain.c), SSL_CTX_free(plain.s);
        SSL_CTX_free(plain_mutual.c), SSL_CTX_free(plain_mutual.s);
        vtpm_attester_done(&va);
        tpm_device_close(tpm);
        vtpm_stop(&vtpm);
        attest_policy_free(pol_s), attest_policy_free(pol_c), attest_policy_free(pol_tpm);
        snp_sim_free(sim_s), snp_sim_free(sim_c);
        json_decref(report);
        printf("bench: %d passed, %d failed\n", 3 - lines_failed, lines_failed);
        return lines_failed ? 1 : 0;
}
