/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX quote verification with Intel collateral (../shared/testdata/tdx/dcapqvl-b0c06f-uptodate:
 * quote, PCK chain, TCB info, QE identity, both CRLs, TCB evaluation, default policy) against one
 * raw ECDSA-P256 verification of the same quote's signature, measured in the same run as
 * interleaved pairs (median of per-pair ratios): with the verified chain and collateral cached
 * (the steady state of a verifier that sees the same platforms) and cold (every certificate,
 * CRL and collateral signature verified again). And the PCS requests made by verifications whose
 * collateral comes through tdx_pcs_collateral() from a cache that holds the FMSPC's collateral
 * (the state after the first verification; the PCS URL points where nothing listens, and every
 * attempt would be counted): the target is zero.
 */
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"
#include "helpers/bench.h"
#include "helpers/unit.h"

#define TARGET_CACHED 3.0
#define TARGET_COLD   6.0

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data = NULL;
        if (read_full_file(testdata_path(rel), 1 << 20, &data, size) < 0) {
                fprintf(stderr, "bench: cannot read %s\n", testdata_path(rel));
                exit(1);
        }
        return data;
}

static bool verify(const uint8_t *raw, size_t n, const TdxCollateral *col, time_t at)
{
        TdxVerifyOptions o = { .at = at };
        TdxVerification v;
        TdxPolicy p;
        TdxQuote q;

        tdx_policy_defaults(&p);
        return tdx_quote_parse(raw, n, &q, NULL) == 0 &&
               tdx_verify_quote(&q, raw, n, col, &o, &v, NULL, NULL, NULL) == 0 &&
               tdx_check_policy(&q, &v, &p, NULL, NULL, NULL, NULL) == 0;
}

/* The cache as a first verification leaves it (issuer chains as raw PEM: URL-decoding leaves
 * text without '%' as it is). */
static void cache_fill(const char *dir)
{
        static const char *const files[][2] = {
                { "fmspc-b0c06f000000/tcb_info.json", "tcb_info.json" },
                { "fmspc-b0c06f000000/tcb_info_issuer_chain.hdr", "tcb_info_issuer_chain.pem" },
                { "qe_identity.json", "qe_identity.json" },
                { "qe_identity_issuer_chain.hdr", "qe_identity_issuer_chain.pem" },
                { "pck_crl-platform.der", "pck_crl.der" },
                { "pck_crl-platform_issuer_chain.hdr", "pck_crl_issuer_chain.pem" },
                { "root_ca_crl.der", "root_ca_crl.der" },
        };
        char path[4096], src[256];

        (void) snprintf(path, sizeof(path), "%s/fmspc-b0c06f000000", dir);
        (void) mkdir(dir, 0755);
        (void) mkdir(path, 0755);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                size_t n;
                uint8_t *d;
                (void) snprintf(src, sizeof(src), "tdx/dcapqvl-b0c06f-uptodate/%s", files[i][1]);
                d = load(src, &n);
                (void) snprintf(path, sizeof(path), "%s/%s", dir, files[i][0]);
                if (write_file_atomic(path, d, n, 0644, 0) < 0)
                        exit(1);
                free(d);
        }
}

/* n verifications with collateral from the warm cache: the PCS requests they made. */
static unsigned pcs_requests_warm(const uint8_t *raw, size_t qn, time_t at, int n)
{
        TdxPcsConfig c;
        TdxQuote q;
        unsigned before = tdx_pcs_requests();

        tdx_pcs_config_defaults(&c);
        c.base_url = "http://127.0.0.1:9/tdx/certification/v4";
        c.cache_dir = test_tmpdir();
        c.retries = 0;
        cache_fill(c.cache_dir);
        if (tdx_quote_parse(raw, qn, &q, NULL) < 0)
                exit(1);
        for (int i = 0; i < n; i++) {
                TdxCollateral *col = NULL;
                TdxPcsResult res;
                if (tdx_pcs_collateral(&c, &q, at, &col, &res, NULL) < 0 || res.stale ||
                    !verify(raw, qn, col, at)) {
                        fprintf(stderr, "bench: verification from the PCS cache failed\n");
                        exit(1);
                }
                tdx_collateral_free(col);
        }
        return tdx_pcs_requests() - before;
}

int main(int argc, char *argv[])
{
        int n = argc > 1 ? bench_pairs(argv[1]) : 200, failed = 0;
        const char *out = argc > 2 ? argv[2] : "build/bench/tdx.json";
        size_t qn;
        uint8_t *raw = load("tdx/dcapqvl-b0c06f-uptodate/quote.bin", &qn);
        TdxCollateral *col = NULL;
        double *cached = calloc((size_t) n, sizeof(double)),
               *cold = calloc((size_t) n, sizeof(double)),
               *raw_t = calloc((size_t) n, sizeof(double));
        unsigned char *der = NULL;
        EVP_PKEY *ak = NULL;
        TdxQuote q;
        time_t at;
        int dn;

        if (tdx_collateral_load_dir(testdata_path("tdx/dcapqvl-b0c06f-uptodate"), &col, NULL) < 0 ||
            timestamp_parse_utc("2025-07-19T10:00:34Z", &at) < 0 ||
            tdx_quote_parse(raw, qn, &q, NULL) < 0) {
                fprintf(stderr, "bench: cannot load the quote and its collateral\n");
                return 1;
        }
        /* The baseline's key and DER signature, prepared outside the timing. */
        {
                uint8_t point[65] = { 0x04 };
                OSSL_PARAM params[] = {
                        OSSL_PARAM_construct_utf8_string("group", (char *) "prime256v1", 0),
                        OSSL_PARAM_construct_octet_string("pub", point, sizeof(point)),
                        OSSL_PARAM_construct_end(),
                };
                EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                ECDSA_SIG *sig = ECDSA_SIG_new();

                memcpy(point + 1, q.attestation_key, 64);
                if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
                    EVP_PKEY_fromdata(ctx, &ak, EVP_PKEY_PUBLIC_KEY, params) != 1)
                        return 1;
                EVP_PKEY_CTX_free(ctx);
                ECDSA_SIG_set0(sig, BN_bin2bn(q.signature, 32, NULL),
                               BN_bin2bn(q.signature + 32, 32, NULL));
                dn = i2d_ECDSA_SIG(sig, &der);
                ECDSA_SIG_free(sig);
        }

        for (int i = 0; i < n + 5; i++) {
                double t0, t1, t2, t3;
                EVP_MD_CTX *md = EVP_MD_CTX_new();
                bool ok;

                /* baseline: one raw ECDSA-P256/SHA-256 verification of the quote's signed part */
                t0 = bench_now();
                ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, ak) == 1 &&
                     EVP_DigestVerify(md, der, (size_t) dn, raw, q.signed_size) == 1;
                t1 = bench_now();
                EVP_MD_CTX_free(md);
                /* cached: the chain and collateral verified by the previous round's cold run */
                ok = ok && verify(raw, qn, col, at);
                t2 = bench_now();
                /* cold: nothing cached */
                tdx_cache_flush();
                ok = ok && verify(raw, qn, col, at);
                t3 = bench_now();
                if (!ok) {
                        fprintf(stderr, "bench: verification failed\n");
                        return 1;
                }
                if (i < 5)
                        continue; /* warm-up */
                raw_t[i - 5] = t1 - t0;
                cached[i - 5] = (t2 - t1) / (t1 - t0);
                cold[i - 5] = (t3 - t2) / (t1 - t0);
        }
        double base = bench_median(raw_t, n), rc = bench_median(cached, n),
               rk = bench_median(cold, n);
        printf("%-34s %12s %12s %8s %-7s %s\n", "name", "baseline", "candidate", "ratio", "target",
               "verdict");
        printf("%-34s %12.6f %12.6f %8.3f <=%-5.2f %s\n", "tdx-verify-cached-vs-ecdsa", base,
               base * rc, rc, TARGET_CACHED, rc <= TARGET_CACHED ? "PASS" : "FAIL");
        printf("%-34s %12.6f %12.6f %8.3f <=%-5.2f %s\n", "tdx-verify-cold-vs-ecdsa", base,
               base * rk, rk, TARGET_COLD, rk <= TARGET_COLD ? "PASS" : "FAIL");
        unsigned reqs = pcs_requests_warm(raw, qn, at, n);
        printf("%-34s %12d %12u %8s <=%-5d %s\n", "tdx-pcs-requests-after-first", n, reqs, "-", 0,
               reqs == 0 ? "PASS" : "FAIL");
        failed = (rc > TARGET_CACHED) + (rk > TARGET_COLD) + (reqs != 0);
        {
                json_t *j = json_pack("{s:i,s:f,s:f,s:f,s:i}", "pairs", n, "ecdsaP256Seconds", base,
                                      "cachedRatio", rc, "coldRatio", rk, "pcsRequestsAfterFirst",
                                      (int) reqs);
                char *text = NULL;
                FILE *f = fopen(out, "we");
                if (j && f && json_dump_pretty(j, &text) >= 0)
                        fprintf(f, "%s\n", text);
                if (f)
                        fclose(f);
                free(text);
                json_decref(j);
        }
        printf("bench: %d passed, %d failed\n", 3 - failed, failed);
        OPENSSL_free(der);
        EVP_PKEY_free(ak);
        tdx_collateral_free(col);
        free(raw), free(cached), free(cold), free(raw_t);
        return failed ? 1 : 0;
}
