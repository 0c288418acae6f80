/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP report verification against one raw ECDSA-P384 verification of the same report,
 * measured in the same run as interleaved pairs (median of per-pair ratios), on the real Milan
 * report from ../shared/testdata/snp/trustee-milan: with the verified chain cached (the steady
 * state of a join service) and cold (every certificate parsed and verified again).
 */
#include <openssl/ecdsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/sev-snp.h"
#include "helpers/bench.h"
#include "helpers/unit.h"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data = NULL;
        if (read_full_file(testdata_path(rel), 1 << 20, &data, size) < 0) {
                fprintf(stderr, "bench: cannot read %s\n", testdata_path(rel));
                exit(1);
        }
        return data;
}

int main(int argc, char *argv[])
{
        int n = argc > 1 ? bench_pairs(argv[1]) : 200, failed = 0;
        const char *out = argc > 2 ? argv[2] : "build/bench/snp.json";
        size_t rn, vn, cn;
        uint8_t *raw = load("snp/trustee-milan/report.bin", &rn);
        uint8_t *vcek = load("snp/trustee-milan/vcek.der", &vn);
        uint8_t *chain = load("snp/trustee-milan/chain.pem", &cn);
        const unsigned char *p = vcek;
        X509 *x = d2i_X509(NULL, &p, (long) vn);
        SnpTrust *trust = NULL;
        struct tm tm = { .tm_year = 125, .tm_mon = 5, .tm_mday = 1 };
        time_t at = timegm(&tm);
        double *cached = calloc((size_t) n, sizeof(double)),
               *cold = calloc((size_t) n, sizeof(double));
        double *raw_t = calloc((size_t) n, sizeof(double));
        unsigned char *der = NULL;
        int dn;
        SnpReport rep;

        snp_trust_new(true, &trust);
        snp_report_parse(raw, rn, &rep, NULL);
        {
                uint8_t be[72];
                ECDSA_SIG *sig = ECDSA_SIG_new();
                for (int i = 0; i < 72; i++)
                        be[i] = rep.signature_r[71 - i];
                BIGNUM *br = BN_bin2bn(be, 72, NULL);
                for (int i = 0; i < 72; i++)
                        be[i] = rep.signature_s[71 - i];
                BIGNUM *bs = BN_bin2bn(be, 72, NULL);
                ECDSA_SIG_set0(sig, br, bs);
                dn = i2d_ECDSA_SIG(sig, &der);
                ECDSA_SIG_free(sig);
        }

        for (int i = 0; i < n + 5; i++) {
                double t0, t1, t2, t3;
                EVP_MD_CTX *md = EVP_MD_CTX_new();
                SnpReport r2;
                int ok;

                /* baseline: one raw ECDSA-P384/SHA-384 verification of the signed part */
                t0 = bench_now();
                ok = EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, X509_get0_pubkey(x)) == 1 &&
                     EVP_DigestVerify(md, der, (size_t) dn, raw, SNP_SIGNED_SIZE) == 1;
                t1 = bench_now();
                EVP_MD_CTX_free(md);
                /* cached chain (warm after the first call) */
                ok = ok && snp_report_parse(raw, rn, &r2, NULL) == 0 &&
                     snp_verify_report(&r2, raw, rn, vcek, vn, chain, cn, trust, at, NULL, NULL) ==
                             0;
                t2 = bench_now();
                /* cold chain */
                snp_chain_cache_flush();
                ok = ok && snp_report_parse(raw, rn, &r2, NULL) == 0 &&
                     snp_verify_report(&r2, raw, rn, vcek, vn, chain, cn, trust, at, NULL, NULL) ==
                             0;
                t3 = bench_now();
                if (!ok) {
                        fprintf(stderr, "bench: verification failed\n");
                        return 1;
                }
                if (i < 5)
                        continue; /* warm-up */
                raw_t[i - 5] = t1 - t0;
                /* the cached run follows a cold one from the previous round, so it is warm */
                cached[i - 5] = (t2 - t1) / (t1 - t0);
                cold[i - 5] = (t3 - t2) / (t1 - t0);
        }
        double base = bench_median(raw_t, n), rc = bench_median(cached, n),
               rk = bench_median(cold, n);
        printf("%-34s %12s %12s %8s %-7s %s\n", "name", "baseline", "candidate", "ratio", "target",
               "verdict");
        printf("%-34s %12.6f %12.6f %8.3f <=%-5.2f %s\n", "snp-verify-cached-vs-ecdsa", base,
               base * rc, rc, 1.5, rc <= 1.5 ? "PASS" : "FAIL");
        printf("%-34s %12.6f %12.6f %8.3f <=%-5.2f %s\n", "snp-verify-cold-vs-ecdsa", base,
               base * rk, rk, 2.5, rk <= 2.5 ? "PASS" : "FAIL");
        failed = (rc > 1.5) + (rk > 2.5);
        {
                json_t *j = json_pack("{s:i,s:f,s:f,s:f}", "pairs", n, "ecdsaP384Seconds", base,
                                      "cachedRatio", rc, "coldRatio", rk);
                char *text = NULL;
                FILE *f = fopen(out, "we");
                if (j && f && json_dump_pretty(j, &text) >= 0)
                        fprintf(f, "%s\n", text);
                if (f)
                        fclose(f);
                free(text);
                json_decref(j);
        }
        printf("bench: %d passed, %d failed\n", 2 - failed, failed);
        OPENSSL_free(der);
        X509_free(x);
        snp_trust_free(trust);
        free(raw), free(vcek), free(chain), free(cached), free(cold), free(raw_t);
        return failed ? 1 : 0;
}
