/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Azure paravisor (HCL), shared by azure-sev-snp (here) and azure-tdx (azure-tdx.c): an Azure
 * confidential VM's paravisor puts a vTPM attestation key into "runtime data" whose SHA-256 is
 * the hardware's report data [0:32] (the SNP report's REPORT_DATA, the TD quote's REPORTDATA).
 * The hardware report proves the runtime data, the runtime data names the AK, the AK signs the
 * TPM quote, and the quote carries the verifier's nonce and the PCRs.
 *
 * HCL report layout (as recorded in ../shared/testdata/azure-snp; the same for TDX, as
 * azure-cvm-tooling's az-cvm-vtpm hcl module reads it): "HCLA" header (0x20 bytes), the hardware
 * report area at 0x20 (1184 bytes: an SNP report, or a 1024-byte TDREPORT and padding), IGVM
 * request data at 0x4C0 (data size, version, report type 2 = SNP or 4 = TDX, hash type 1 =
 * SHA-256, variable-data size; 20 bytes), then the variable data: JSON with a "keys" array whose
 * entry "kid": "HCLAkPub" is the AK as an RSA JWK.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/base64.h"
#include "cloister/crypto.h"
#include "cloister/json.h"
#include "cloister/reader.h"
#include "cloister/tpm-quote.h"

#define HCL_HW_REPORT_OFFSET 0x20
#define HCL_HW_REPORT_SIZE   1184 /* the larger of an SNP report and a TDREPORT (1024) */
#define HCL_HASH_SHA256      1

/* RFC 7515 base64url without padding → bytes. */
static int base64url_decode(const char *s, uint8_t **ret, size_t *ret_size)
{
        size_t n = strlen(s);
        _cleanup_(freep) char *std = NULL;
        int r;

        if (n > 4096)
                return -EMSGSIZE;
        std = malloc(n + 4);
        if (!std)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '+' || s[i] == '/' || s[i] == '=')
                        return -EBADMSG; /* not base64url */
                std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
        }
        while (n % 4)
                std[n++] = '=';
        std[n] = 0;
        r = base64_decode(std, ret, ret_size);
        return r;
}

static int jwk_rsa_key(const json_t *keys, EVP_PKEY **ret, Diag *d)
{
        json_t *k;
        size_t i;

        json_array_foreach (keys, i, k) {
                const char *kid = json_string_value(json_object_get(k, "kid"));
                const char *kty = json_string_value(json_object_get(k, "kty"));
                const char *n64 = json_string_value(json_object_get(k, "n"));
                const char *e64 = json_string_value(json_object_get(k, "e"));
                _cleanup_(freep) uint8_t *n = NULL, *e = NULL;
                size_t nn, en;
                OSSL_PARAM_BLD *bld;
                OSSL_PARAM *params = NULL;
                EVP_PKEY_CTX *ctx;
                BIGNUM *bn, *be;
                int ok;

                if (!kid || strcmp(kid, "HCLAkPub") != 0)
                        continue;
                if (!kty || strcmp(kty, "RSA") != 0 || !n64 || !e64 ||
                    base64url_decode(n64, &n, &nn) < 0 || base64url_decode(e64, &e, &en) < 0 ||
                    nn < 256 || nn > 512 || en == 0 || en > 8)
                        return diag_fail(d, -EBADMSG, "azure-ak", -1,
                                         "the HCL runtime data's HCLAkPub is not a usable RSA key");
                bld = OSSL_PARAM_BLD_new();
                ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
                bn = BN_bin2bn(n, (int) nn, NULL);
                be = BN_bin2bn(e, (int) en, NULL);
                ok = bld && ctx && bn && be &&
                     OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
                     OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 &&
                     (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
                     EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) == 1;
                OSSL_PARAM_free(params);
                OSSL_PARAM_BLD_free(bld);
                EVP_PKEY_CTX_free(ctx);
                BN_free(bn);
                BN_free(be);
                if (!ok)
                        return diag_fail(d, crypto_log_errors(-EBADMSG, "JWK"), "azure-ak", -1,
                                         "the HCLAkPub key is not a valid RSA public key");
                return 0;
        }
        return diag_fail(d, -EBADMSG, "azure-ak", -1,
                         "the HCL runtime data names no HCLAkPub attestation key");
}

int azure_hcl_parse(const uint8_t *data, size_t size, uint32_t report_type, AzureHcl *ret,
                    AttestReport *r, Diag *d)
{
        Reader rd = reader_init(data, size);
        const uint8_t *magic, *hw, *var;
        uint32_t data_size, version, type, hash_type, var_size;

        if (reader_bytes(&rd, 4, &magic) < 0 || memcmp(magic, "HCLA", 4) != 0 ||
            reader_skip(&rd, HCL_HW_REPORT_OFFSET - 4) < 0 ||
            reader_bytes(&rd, HCL_HW_REPORT_SIZE, &hw) < 0 || reader_u32le(&rd, &data_size) < 0 ||
            reader_u32le(&rd, &version) < 0 || reader_u32le(&rd, &type) < 0 ||
            reader_u32le(&rd, &hash_type) < 0 || reader_u32le(&rd, &var_size) < 0 ||
            var_size > AZURE_HCL_RUNTIME_MAX || reader_bytes(&rd, var_size, &var) < 0)
                return report_fail(r, d, -EBADMSG, "azure-hcl-format", -1, NULL, 0, NULL, 0,
                                   "the HCL report is malformed or truncated");
        if (type != report_type || hash_type != HCL_HASH_SHA256)
                return report_fail(r, d, -EBADMSG, "azure-hcl-format", -1, NULL, 0, NULL, 0,
                                   "the HCL report is not %s report with SHA-256 runtime data "
                                   "(report type %u, hash type %u)",
                                   report_type == AZURE_HCL_REPORT_TDX ? "a TDX" : "an SNP", type,
                                   hash_type);
        *ret = (AzureHcl){ .hw_report = hw, .runtime = var, .runtime_size = var_size };
        return 0;
}

int attest_check_azure_runtime_data(const AzureHcl *h, const uint8_t expected[static 32],
                                    const char *what, AttestReport *r, Diag *d)
{
        uint8_t digest[32];

        crypto_sha256(h->runtime, h->runtime_size, digest);
        if (CRYPTO_memcmp(digest, expected, 32) != 0)
                return report_fail(r, d, -EKEYREJECTED, "azure-runtime-data", -1, expected, 32,
                                   digest, 32,
                                   "SHA-256 of the HCL runtime data is not what the %s vouches "
                                   "for",
                                   what);
        report_add(r, "azure-runtime-data", -1, CHECK_PASS, true,
                   "the %s vouches for the runtime data", what);
        return 0;
}

int attest_check_azure_vtpm(const Evidence *e, const AttestPolicy *p, const AzureHcl *h,
                            const uint8_t *qualifying, size_t qualifying_size, AttestReport *r,
                            Diag *d)
{
        _cleanup_(json_decrefp) json_t *runtime = NULL;
        TpmPublic ak = { .type = TPM_ALG_RSA, .scheme = TPM_ALG_NULL };
        TpmSignature sig = {};
        TpmQuoteInfo q;
        Diag sub;
        int k;

        diag_clear(&sub);
        /* The AK the runtime data names signs the quote. */
        k = json_parse_buffer(h->runtime, h->runtime_size, "HCL runtime data", &runtime, &sub);
        if (k >= 0 && !json_is_array(json_object_get(runtime, "keys")))
                k = diag_fail(&sub, -EBADMSG, "azure-ak", -1, "runtime data without keys");
        if (k >= 0)
                k = jwk_rsa_key(json_object_get(runtime, "keys"), &ak.key, &sub);
        if (k < 0)
                return report_fail(r, d, k, "azure-ak", -1, NULL, 0, NULL, 0, "%s", sub.message);
        if (e->tpm.ak_public.data) {
                TpmPublic given;
                bool same = tpm_public_parse(e->tpm.ak_public.data, e->tpm.ak_public.size, &given,
                                             NULL) >= 0 &&
                            EVP_PKEY_eq(given.key, ak.key) == 1;
                tpm_public_done(&given);
                if (!same) {
                        k = report_fail(r, d, -EKEYREJECTED, "azure-ak", -1, NULL, 0, NULL, 0,
                                        "the evidence's AK is not the one the HCL vouches for");
                        goto finish;
                }
        }
        k = tpm_quote_parse(e->tpm.quote.data, e->tpm.quote.size, &q, &sub);
        if (k >= 0)
                k = tpm_signature_parse(e->tpm.signature.data, e->tpm.signature.size, &sig, &sub);
        if (k >= 0)
                k = tpm_quote_verify_signature(&ak, e->tpm.quote.data, e->tpm.quote.size, &sig,
                                               &sub);
        if (k < 0) {
                k = report_fail(r, d, k, "quote-signature", -1, NULL, 0, NULL, 0, "%s",
                                sub.message);
                goto finish;
        }
        report_add(r, "quote-signature", -1, CHECK_PASS, true,
                   "quote signed by the HCL-vouched attestation key");
        if (!qualifying)
                report_add(r, "binding", -1, CHECK_SKIPPED, true,
                           "not checked: no expected binding given (freshness unknown)");
        else if (q.extra_data_size != qualifying_size ||
                 memcmp(q.extra_data, qualifying, qualifying_size) != 0) {
                k = report_fail(r, d, -ESTALE, "binding", -1, qualifying, qualifying_size,
                                q.extra_data, q.extra_data_size,
                                "the quote is bound to another nonce (replayed evidence)");
                goto finish;
        } else
                report_add(r, "binding", -1, CHECK_PASS, true, "quote bound to the nonce");

        /* PCRs as for qemu-vtpm. */
        k = attest_check_quote_pcrs(&e->tpm, &q, sig.hash, r, d);
        if (k < 0)
                goto finish;
        k = attest_check_measurements(p, e->tpm.pcr_mask, e->tpm.pcrs, r, d);
finish:
        tpm_signature_done(&sig);
        tpm_public_done(&ak);
        return k;
}

int attest_verify_azure(const Evidence *e, const AttestPolicy *p, const uint8_t *qualifying,
                        size_t qualifying_size, time_t at, AttestReport *r, Diag *d)
{
        const Blob *hcl = &e->snp.hcl_report;
        _cleanup_(snp_trust_freep) SnpTrust *trust = NULL;
        SnpProduct product;
        SnpReport rep;
        AzureHcl h;
        Diag sub;
        int k;

        diag_clear(&sub);
        k = azure_hcl_parse(hcl->data, hcl->size, AZURE_HCL_REPORT_SNP, &h, r, d);
        if (k < 0)
                return k;

        /* 1. The SNP report, with the usual chain and guest-policy checks. */
        k = snp_report_parse(h.hw_report, SNP_REPORT_SIZE, &rep, &sub);
        if (k >= 0)
                k = snp_trust_new(true, &trust);
        if (k >= 0 && p->snp_trusted_arks.data)
                k = snp_trust_add_ark_pem(trust, (const char *) p->snp_trusted_arks.data,
                                          p->snp_trusted_arks.size);
        if (k >= 0)
                k = snp_verify_report(&rep, h.hw_report, SNP_REPORT_SIZE, e->snp.vcek.data,
                                      e->snp.vcek.size, e->snp.chain.data, e->snp.chain.size, trust,
                                      at, &product, &sub);
        if (k < 0)
                return report_fail(r, d, k, sub.check[0] ? sub.check : "snp", -1, NULL, 0, NULL, 0,
                                   "%s", sub.message);
        report_add(r, "snp-authenticity", -1, CHECK_PASS, true,
                   "HCL's SNP report signed by a %s VCEK chaining to a trusted ARK",
                   snp_product_to_string(product));
        k = snp_check_policy(&rep, product, &p->snp, NULL, NULL, NULL, d);
        if (k < 0)
                return report_fail(r, NULL, k, d ? d->check : "snp-policy", -1, NULL, 0, NULL, 0,
                                   "%s", d ? d->message : "SNP policy");

        /* 2. The runtime data is what the report vouches for (REPORT_DATA[0:32]). */
        k = attest_check_azure_runtime_data(&h, rep.report_data, "SNP report", r, d);
        if (k < 0)
                return k;

        /* 3., 4. The AK it names signs the quote; the PCRs. */
        return attest_check_azure_vtpm(e, p, &h, qualifying, qualifying_size, r, d);
}

int attest_verify_azure_sev_snp(const Evidence *e, const AttestPolicy *p, const uint8_t *binding,
                                time_t at, AttestReport *r, Diag *d)
{
        return attest_verify_azure(e, p, binding, binding ? ATTEST_BINDING_SIZE : 0, at, r, d);
}
