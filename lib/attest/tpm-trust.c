/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/crypto.h"
#include "cloister/tcg-log.h"
#include "cloister/tpm-quote.h"

int attest_check_event_log(const Evidence *e, const AttestPolicy *p, uint32_t quoted_mask,
                           const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE],
                           AttestReport *r, Diag *d)
{
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        TcgLogPcrs replay;
        Diag sub;
        int k, ret = 0;

        if (p->event_log == EVENT_LOG_IGNORE) {
                report_add(r, "event-log", -1, CHECK_SKIPPED, false, "ignored by the policy");
                return 0;
        }
        if (!e->tpm.event_log.data) {
                if (p->event_log == EVENT_LOG_REQUIRED)
                        return report_fail(r, d, -EPERM, "event-log", -1, NULL, 0, NULL, 0,
                                           "the policy requires an event log; the evidence has "
                                           "none");
                report_add(r, "event-log", -1, CHECK_SKIPPED, false,
                           "no event log in the evidence");
                return 0;
        }
        diag_clear(&sub);
        k = tcg_log_parse(e->tpm.event_log.data, e->tpm.event_log.size, &log, &sub);
        if (k < 0)
                return report_fail(r, d, k, "event-log", -1, NULL, 0, NULL, 0, "%s", sub.message);
        k = tcg_log_replay(log, TPM_ALG_SHA256, &replay);
        if (k < 0)
                return report_fail(r, d, -EBADMSG, "event-log", -1, NULL, 0, NULL, 0,
                                   "the event log has no complete SHA-256 bank");
        /* Every quoted PCR the log touches must replay exactly; PCRs it does not touch (e.g.
         * PCR 15, extended by Cloister at runtime) are left to the policy. */
        for (int i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                if (!(replay.touched & (1U << i)) || !(quoted_mask & (1U << i)))
                        continue;
                if (memcmp(replay.values[i], pcrs[i], EVIDENCE_PCR_SIZE) != 0) {
                        k = report_fail(r, d, -EKEYREJECTED, "event-log-replay", i, pcrs[i],
                                        EVIDENCE_PCR_SIZE, replay.values[i], EVIDENCE_PCR_SIZE,
                                        "the event log does not replay to quoted PCR %d", i);
                        ret = ret < 0 ? ret : k;
                }
        }
        if (ret == 0)
                report_add(r, "event-log-replay", -1, CHECK_PASS, true,
                           "%zu events replay to the quoted PCRs (touched mask 0x%06x)",
                           log->n_events, replay.touched & quoted_mask);
        return ret;
}

static int load_roots(const Blob *pem, X509_STORE **ret)
{
        _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(pem->data, (int) pem->size);
        STACK_OF(X509_INFO) *infos = NULL;
        X509_STORE *store = X509_STORE_new();
        int n = 0;

        if (!b || !store)
                goto fail;
        infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
        for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
                X509_INFO *xi = sk_X509_INFO_value(infos, i);
                if (xi->x509 && X509_STORE_add_cert(store, xi->x509) == 1)
                        n++;
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        if (n == 0)
                goto fail;
        *ret = store;
        return 0;
fail:
        X509_STORE_free(store);
        ERR_clear_error();
        return -EBADMSG;
}

int attest_check_ek_certificate(const Evidence *e, const AttestPolicy *p, time_t at,
                                AttestReport *r, Diag *d)
{
        const EvidenceTpm *t = &e->tpm;
        const unsigned char *q = t->ek_certificate.data;
        X509_STORE *store = NULL;
        X509_STORE_CTX *ctx = NULL;
        X509 *cert = NULL;
        TpmPublic ek = {};
        int k = 0, err;

        if (!t->ek_certificate.data || !t->ek_public.data)
                return report_fail(r, d, -EPERM, "ek-certificate", -1, NULL, 0, NULL, 0,
                                   "akTrust ek-cert needs the EK certificate and EK public in "
                                   "the evidence");
        cert = d2i_X509(NULL, &q, (long) t->ek_certificate.size);
        if (!cert || q != t->ek_certificate.data + t->ek_certificate.size) {
                k = report_fail(r, d, -EBADMSG, "ek-certificate", -1, NULL, 0, NULL, 0,
                                "the EK certificate is not valid DER");
                goto finish;
        }
        if (load_roots(&p->ek_ca_roots, &store) < 0) {
                k = report_fail(r, d, -EINVAL, "ek-certificate", -1, NULL, 0, NULL, 0,
                                "the policy's caRoots hold no PEM certificate");
                goto finish;
        }
        ctx = X509_STORE_CTX_new();
        if (!ctx || X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
                k = -ENOMEM;
                goto finish;
        }
        if (at > 0)
                X509_STORE_CTX_set_time(ctx, 0, at);
        if (X509_verify_cert(ctx) != 1) {
                err = X509_STORE_CTX_get_error(ctx);
                k = report_fail(r, d, -EKEYREJECTED, "ek-certificate", -1, NULL, 0, NULL, 0,
                                "the EK certificate does not chain to the policy's CA roots: %s",
                                X509_verify_cert_error_string(err));
                goto finish;
        }
        if (tpm_public_parse(t->ek_public.data, t->ek_public.size, &ek, NULL) < 0 ||
            EVP_PKEY_eq(ek.key, X509_get0_pubkey(cert)) != 1) {
                k = report_fail(r, d, -EKEYREJECTED, "ek-public", -1, NULL, 0, NULL, 0,
                                "the EK in the evidence is not the certificate's key");
                goto finish;
        }
        report_add(r, "ek-certificate", -1, CHECK_PASS, true,
                   "EK certificate chains to the policy's CA roots and matches the EK");
        if (r)
                r->needs_credential_activation = true;
finish:
        tpm_public_done(&ek);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(cert);
        ERR_clear_error();
        return k;
}
