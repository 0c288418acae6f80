/* SPDX-License-Identifier: Apache-2.0 */
/* qemu-vtpm: the attestation key's trust, the quote's signature and binding, the quoted PCRs
 * against the evidence and the policy, the event log. azure-sev-snp reuses the quote's checks. */
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/log.h"
#include "cloister/tpm-quote.h"

static int check_ak_trust(const Evidence *e, const AttestPolicy *p, const TpmPublic *ak, time_t at,
                          AttestReport *r, Diag *d)
{
        unsigned char *spki = NULL;
        int n, k;

        switch (p->ak_trust) {
        case AK_TRUST_PINNED:
                n = i2d_PUBKEY(ak->key, &spki);
                if (n <= 0)
                        return -ENOMEM;
                k = 0;
                for (size_t i = 0; i < p->n_ak_pinned && !k; i++)
                        k = (size_t) n == p->ak_pinned[i].size &&
                            memcmp(spki, p->ak_pinned[i].data, (size_t) n) == 0;
                OPENSSL_free(spki);
                if (!k)
                        return report_fail(r, d, -EKEYREJECTED, "ak-trust", -1, NULL, 0, NULL, 0,
                                           "the attestation key is not a key pinned in the "
                                           "policy (quote from another TPM?)");
                report_add(r, "ak-trust", -1, CHECK_PASS, true,
                           "attestation key equals the pinned key");
                return 0;
        case AK_TRUST_INSECURE_ANY:
                /* Said loudly on every use, as promised by the policy's name. */
                log_warning("INSECURE: policy akTrust is insecure-any: any attestation key is "
                            "accepted, so this evidence does not prove it came from a TPM.");
                report_add(r, "ak-trust", -1, CHECK_WARN, false,
                           "INSECURE: any attestation key accepted (akTrust insecure-any)");
                return 0;
        case AK_TRUST_EK_CERT:
                return attest_check_ek_certificate(e, p, at, r, d);
        default:
                return -EINVAL;
        }
}

int attest_check_quote_pcrs(const EvidenceTpm *t, const TpmQuoteInfo *q, uint16_t sig_hash,
                            AttestReport *r, Diag *d)
{
        uint8_t pcrs[TPM_PCR_MAX][TPM_DIGEST_MAX] = {}, digest[TPM_DIGEST_MAX];
        size_t dn;
        int k;

        if (q->n_selections != 1 || q->selections[0].hash != TPM_ALG_SHA256)
                return report_fail(r, d, -EPERM, "pcr-selection", -1, NULL, 0, NULL, 0,
                                   "the quote must cover exactly one bank, SHA-256");
        if (q->selections[0].mask != t->pcr_mask) {
                CheckResult *c;

                k = report_fail(r, d, -EBADMSG, "pcr-selection", -1, NULL, 0, NULL, 0,
                                "the evidence lists other PCRs than the quote covers");
                c = r && r->n_checks > 0 ? &r->checks[r->n_checks - 1] : NULL;
                if (c) {
                        (void) snprintf(c->expected, sizeof(c->expected), "0x%06x",
                                        q->selections[0].mask);
                        (void) snprintf(c->actual, sizeof(c->actual), "0x%06x", t->pcr_mask);
                }
                return k;
        }
        for (int i = 0; i < EVIDENCE_PCR_COUNT; i++)
                memcpy(pcrs[i], t->pcrs[i], EVIDENCE_PCR_SIZE);
        k = tpm_pcr_digest(q, pcrs, sig_hash, digest, &dn);
        if (k < 0 || dn != q->pcr_digest_size || memcmp(digest, q->pcr_digest, dn) != 0)
                return report_fail(r, d, -EKEYREJECTED, "pcr-digest", -1, q->pcr_digest,
                                   q->pcr_digest_size, digest, k < 0 ? 0 : dn,
                                   "the PCR values in the evidence are not the ones the quote "
                                   "signed");
        report_add(r, "pcr-digest", -1, CHECK_PASS, true,
                   "PCR values match the quote's signed digest");
        return 0;
}

int attest_verify_vtpm(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                       AttestReport *r, Diag *d)
{
        const EvidenceTpm *t = &e->tpm;
        TpmPublic ak = {};
        TpmQuoteInfo q;
        TpmSignature sig = {};
        Diag sub;
        int k;

        diag_clear(&sub);
        k = tpm_public_parse(t->ak_public.data, t->ak_public.size, &ak, &sub);
        if (k < 0)
                return report_fail(r, d, k, "ak-public", -1, NULL, 0, NULL, 0, "%s", sub.message);
        k = tpm_public_check_attestation_key(&ak, &sub);
        if (k < 0) {
                CheckResult *c;
                k = report_fail(r, d, k, "ak-attributes", -1, NULL, 0, NULL, 0, "%s", sub.message);
                c = &r->checks[r->n_checks - 1];
                (void) snprintf(c->expected, sizeof(c->expected), "%s", sub.expected);
                (void) snprintf(c->actual, sizeof(c->actual), "%s", sub.actual);
                goto finish;
        }
        report_add(r, "ak-attributes", -1, CHECK_PASS, true,
                   "restricted signing key generated in a TPM");
        k = check_ak_trust(e, p, &ak, at, r, d);
        if (k < 0)
                goto finish;

        k = tpm_quote_parse(t->quote.data, t->quote.size, &q, &sub);
        if (k < 0) {
                k = report_fail(r, d, k, "quote-format", -1, NULL, 0, NULL, 0, "%s", sub.message);
                goto finish;
        }
        k = tpm_signature_parse(t->signature.data, t->signature.size, &sig, &sub);
        if (k >= 0)
                k = tpm_quote_verify_signature(&ak, t->quote.data, t->quote.size, &sig, &sub);
        if (k < 0) {
                k = report_fail(r, d, k, "quote-signature", -1, NULL, 0, NULL, 0, "%s",
                                sub.message);
                goto finish;
        }
        report_add(r, "quote-signature", -1, CHECK_PASS, true,
                   "quote signed by the attestation key");

        if (!binding)
                report_add(r, "binding", -1, CHECK_SKIPPED, true,
                           "not checked: no expected binding given (freshness unknown)");
        else if (q.extra_data_size != ATTEST_BINDING_SIZE ||
                 memcmp(q.extra_data, binding, ATTEST_BINDING_SIZE) != 0) {
                k = report_fail(r, d, -ESTALE, "binding", -1, binding, ATTEST_BINDING_SIZE,
                                q.extra_data, q.extra_data_size,
                                "the quote is bound to another nonce or key (replayed or "
                                "relayed evidence)");
                goto finish;
        } else
                report_add(r, "binding", -1, CHECK_PASS, true,
                           "quote bound to this verifier's nonce and the peer's key");

        k = attest_check_quote_pcrs(t, &q, sig.hash, r, d);
        if (k < 0)
                goto finish;
        report_add(r, "clock", -1, q.safe ? CHECK_PASS : CHECK_WARN, false,
                   "TPM clock %llu ms, reset count %u, restart count %u, %s",
                   (unsigned long long) q.clock, q.reset_count, q.restart_count,
                   q.safe ? "safe" : "NOT safe (clock may have rolled back)");

        k = attest_check_event_log(e, p, t->pcr_mask, t->pcrs, r, d);
        if (k < 0)
                goto finish;
        k = attest_check_measurements(p, t->pcr_mask, t->pcrs, r, d);
finish:
        tpm_signature_done(&sig);
        tpm_public_done(&ak);
        return k;
}

int attest_verify_tpm_signed(const Evidence *e, const uint8_t binding[static 32], Diag *d)
{
        if (!e->has_tpm)
                return diag_fail(d, -EBADMSG, "tpm-identity", -1, "the evidence has no TPM quote");
        return attest_verify_tpm_identity(e, binding, NULL, d);
}

int attest_verify_tpm_identity(const Evidence *e, const uint8_t *binding, AttestReport *r, Diag *d)
{
        const EvidenceTpm *t = &e->tpm;
        TpmPublic ak = {};
        TpmQuoteInfo q;
        TpmSignature isig = {};
        uint8_t digest[32];
        bool bound;
        char hex[65];
        Diag sub;
        int k;

        diag_clear(&sub);
        k = tpm_public_parse(t->ak_public.data, t->ak_public.size, &ak, &sub);
        if (k >= 0)
                k = tpm_public_check_attestation_key(&ak, &sub);
        if (k >= 0)
                k = tpm_quote_parse(t->quote.data, t->quote.size, &q, &sub);
        if (k >= 0)
                k = tpm_signature_parse(t->signature.data, t->signature.size, &isig, &sub);
        if (k >= 0)
                k = tpm_quote_verify_signature(&ak, t->quote.data, t->quote.size, &isig, &sub);
        if (k < 0) {
                k = report_fail(r, d, k, "tpm-identity", -1, NULL, 0, NULL, 0,
                                "the node's TPM identity quote does not verify: %s", sub.message);
                goto finish;
        }
        /* Without the binding, a quote captured from another connection would name its node. */
        bound = binding && q.extra_data_size == ATTEST_BINDING_SIZE &&
                CRYPTO_memcmp(q.extra_data, binding, ATTEST_BINDING_SIZE) == 0;
        if (binding == NULL)
                report_add(r, "tpm-identity-binding", -1, CHECK_SKIPPED, true,
                           "not checked: no expected binding given");
        else if (!bound) {
                k = report_fail(r, d, -ESTALE, "tpm-identity", -1, binding, ATTEST_BINDING_SIZE,
                                q.extra_data, q.extra_data_size,
                                "the node's TPM identity quote is not bound to this connection "
                                "(captured from another one?)");
                goto finish;
        }
        k = attest_check_quote_pcrs(t, &q, isig.hash, r, d);
        if (k < 0)
                goto finish;
        crypto_sha256(t->ak_public.data, t->ak_public.size, digest);
        hex_encode_buf(digest, sizeof(digest), hex, sizeof(hex));
        report_add(r, "tpm-identity", -1, CHECK_PASS, true,
                   "the node's TPM key %.16s... signed this connection's binding (identifies the "
                   "node for membership; attests nothing)",
                   hex);
finish:
        tpm_signature_done(&isig);
        tpm_public_done(&ak);
        return k;
}
