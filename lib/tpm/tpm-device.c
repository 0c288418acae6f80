/* SPDX-License-Identifier: Apache-2.0 */
#include <dlfcn.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "cloister/crypto.h"
#include "cloister/log.h"
#include "cloister/tpm-device.h"

struct TpmDevice {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        ESYS_TR ak;
        TPM2B_PUBLIC *ak_public;
};

/* TSS2_RC to -errno at the module boundary; the TSS's own text goes to the debug log. */
static int tpm_error(TSS2_RC rc, const char *what)
{
        log_debug("tpm: %s: %s (0x%08x)", what, Tss2_RC_Decode(rc), rc);
        switch (rc & 0xFFFF) {
        case TSS2_BASE_RC_IO_ERROR:
        case TSS2_BASE_RC_NO_CONNECTION:
                return -ECONNREFUSED;
        case TSS2_BASE_RC_NOT_IMPLEMENTED:
        case TSS2_BASE_RC_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case TSS2_BASE_RC_MEMORY:
                return -ENOMEM;
        case TSS2_BASE_RC_TRY_AGAIN:
                return -EAGAIN;
        default:
                break;
        }
        /* TPM 2.0 format-one handle/parameter errors and the like. */
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER)
                return (rc & 0x3F) == (TPM2_RC_HANDLE & 0x3F) ? -ENOENT : -EIO;
        return -EIO;
}

static void flush(TpmDevice *t, ESYS_TR *h)
{
        if (*h != ESYS_TR_NONE)
                (void) Esys_FlushContext(t->esys, *h);
        *h = ESYS_TR_NONE;
}

/* Whether the TCTI's module (the name before ':', loaded by the TSS as libtss2-tcti-NAME.so.0)
 * is installed: tells a mistyped TCTI from a TPM that does not answer. */
static bool tcti_module_installed(const char *tcti)
{
        char lib[96];
        size_t n = strcspn(tcti, ":");
        void *h;

        if (n == 0 || n > 32 || strspn(tcti, "abcdefghijklmnopqrstuvwxyz0123456789-_") < n)
                return false;
        (void) snprintf(lib, sizeof(lib), "libtss2-tcti-%.*s.so.0", (int) n, tcti);
        h = dlopen(lib, RTLD_LAZY | RTLD_LOCAL);
        if (!h)
                return false;
        (void) dlclose(h);
        return true;
}

const char *tpm_device_open_explain(int r)
{
        switch (r) {
        case -ENOPKG:
                return "no TCTI module of that name is installed: use device:/dev/tpmrm0 (this "
                       "machine's TPM) or swtpm:path=SOCKET (a software TPM)";
        case -ENODEV:
                return "no TPM answers there: the device does not exist, or no TPM listens at "
                       "that socket";
        default:
                return strerror(-r);
        }
}

int tpm_device_open(const char *tcti, TpmDevice **ret)
{
        TpmDevice *t;
        TSS2_RC rc;

        if (!tcti)
                tcti = getenv("CLOISTER_TPM_TCTI") ?: TPM_DEVICE_TCTI_DEFAULT;
        /* The TSS logs its own errors to stderr; we translate them instead (debug log).
         * An explicit TSS2_LOG from the user wins. */
        if (log_get_max_level() < LOG_DEBUG)
                (void) setenv("TSS2_LOG", "all+none", 0);
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->ak = ESYS_TR_NONE;
        rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                free(t);
                log_debug("tpm: cannot open TCTI '%s' (TSS2_RC 0x%x)", tcti, (unsigned) rc);
                return tcti_module_installed(tcti) ? -ENODEV : -ENOPKG;
        }
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                int r = tpm_error(rc, "Esys_Initialize");
                Tss2_TctiLdr_Finalize(&t->tcti);
                free(t);
                return r;
        }
        *ret = t;
        return 0;
}

TpmDevice *tpm_device_close(TpmDevice *t)
{
        if (!t)
                return NULL;
        if (t->esys) {
                flush(t, &t->ak);
                Esys_Finalize(&t->esys);
        }
        Esys_Free(t->ak_public);
        Tss2_TctiLdr_Finalize(&t->tcti);
        free(t);
        return NULL;
}

static void selection_from_mask(uint32_t mask, TPML_PCR_SELECTION *sel)
{
        memset(sel, 0, sizeof(*sel));
        sel->count = 1;
        sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
        sel->pcrSelections[0].sizeofSelect = 3;
        sel->pcrSelections[0].pcrSelect[0] = (uint8_t) mask;
        sel->pcrSelections[0].pcrSelect[1] = (uint8_t) (mask >> 8);
        sel->pcrSelections[0].pcrSelect[2] = (uint8_t) (mask >> 16);
}

int tpm_device_pcr_read(TpmDevice *t, uint32_t mask, uint8_t ret[TPM_DEVICE_PCRS][32])
{
        uint8_t out[TPM_DEVICE_PCRS][32];
        uint32_t left = mask & 0xFFFFFF;

        /* TPM2_PCR_Read returns at most 8 digests per call (Part 3, 22.4): ask again for the
         * rest until every PCR was returned. */
        for (int round = 0; left != 0 && round < TPM_DEVICE_PCRS; round++) {
                TPML_PCR_SELECTION sel, *sel_out = NULL;
                TPML_DIGEST *values = NULL;
                uint32_t counter, got = 0;
                size_t v = 0;
                TSS2_RC rc;

                selection_from_mask(left, &sel);
                rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
                                   &counter, &sel_out, &values);
                if (rc != TSS2_RC_SUCCESS)
                        return tpm_error(rc, "PCR_Read");
                if (sel_out->count == 1 && sel_out->pcrSelections[0].hash == TPM2_ALG_SHA256)
                        for (int i = 0; i < TPM_DEVICE_PCRS; i++)
                                if (sel_out->pcrSelections[0].pcrSelect[i / 8] & (1U << (i % 8)))
                                        got |= 1U << i;
                for (int i = 0; i < TPM_DEVICE_PCRS; i++) {
                        if (!(got & (1U << i)))
                                continue;
                        if (v >= values->count || values->digests[v].size != 32) {
                                Esys_Free(sel_out);
                                Esys_Free(values);
                                return -EPROTO;
                        }
                        memcpy(out[i], values->digests[v++].buffer, 32);
                }
                Esys_Free(sel_out);
                Esys_Free(values);
                if ((got & left) == 0)
                        return -EOPNOTSUPP; /* the SHA-256 bank is not active */
                left &= ~got;
        }
        for (int i = 0; i < TPM_DEVICE_PCRS; i++)
                if (mask & (1U << i))
                        memcpy(ret[i], out[i], 32);
        return 0;
}

int tpm_device_pcr_extend(TpmDevice *t, unsigned index, const uint8_t digest[static 32])
{
        TPML_DIGEST_VALUES values = { .count = 1 };
        TSS2_RC rc;

        if (index >= TPM_DEVICE_PCRS)
                return -EINVAL;
        values.digests[0].hashAlg = TPM2_ALG_SHA256;
        memcpy(values.digests[0].digest.sha256, digest, 32);
        rc = Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + index, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, &values);
        return rc == TSS2_RC_SUCCESS ? 0 : tpm_error(rc, "PCR_Extend");
}

static int create_primary(TpmDevice *t, const TPM2B_PUBLIC *template, ESYS_TR *ret_handle,
                          TPM2B_PUBLIC **ret_public)
{
        TPM2B_SENSITIVE_CREATE sensitive = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION creation_pcr = {};
        TPM2B_CREATION_DATA *creation_data = NULL;
        TPM2B_DIGEST *creation_hash = NULL;
        TPMT_TK_CREATION *ticket = NULL;
        TSS2_RC rc;

        rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                ESYS_TR_NONE, &sensitive, template, &outside, &creation_pcr,
                                ret_handle, ret_public, &creation_data, &creation_hash, &ticket);
        Esys_Free(creation_data);
        Esys_Free(creation_hash);
        Esys_Free(ticket);
        return rc == TSS2_RC_SUCCESS ? 0 : tpm_error(rc, "CreatePrimary");
}

static int ensure_ak(TpmDevice *t)
{
        const TPM2B_PUBLIC template = {
                .publicArea = {
                        .type = TPM2_ALG_ECC,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                            TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                            TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
                                            TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA,
                        .parameters.eccDetail = {
                                .symmetric.algorithm = TPM2_ALG_NULL,
                                .scheme = { .scheme = TPM2_ALG_ECDSA,
                                            .details.ecdsa.hashAlg = TPM2_ALG_SHA256 },
                                .curveID = TPM2_ECC_NIST_P256,
                                .kdf.scheme = TPM2_ALG_NULL,
                        },
                },
        };

        if (t->ak != ESYS_TR_NONE)
                return 0;
        return create_primary(t, &template, &t->ak, &t->ak_public);
}

static int marshal_public(const TPMT_PUBLIC *p, uint8_t **ret, size_t *ret_size)
{
        uint8_t buf[sizeof(TPMT_PUBLIC)];
        size_t off = 0;
        TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Marshal(p, buf, sizeof(buf), &off);

        if (rc != TSS2_RC_SUCCESS)
                return tpm_error(rc, "marshal TPMT_PUBLIC");
        *ret = malloc(off);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, buf, off);
        *ret_size = off;
        return 0;
}

void tpm_device_quote_done(TpmDeviceQuote *q)
{
        if (!q)
                return;
        free(q->attest);
        free(q->signature);
        free(q->ak_public);
        *q = (TpmDeviceQuote){};
}

/* SHA-256 over the selected PCRs in ascending order: what an ECDSA-SHA256 AK's quote covers. */
static void pcr_digest(uint32_t mask, uint8_t pcrs[TPM_DEVICE_PCRS][32], uint8_t out[32])
{
        IoVec parts[TPM_DEVICE_PCRS];
        size_t n = 0;

        for (int i = 0; i < TPM_DEVICE_PCRS; i++)
                if (mask & (1U << i))
                        parts[n++] = (IoVec){ pcrs[i], 32 };
        (void) crypto_digest("SHA256", parts, n, out, 32);
}

int tpm_device_quote(TpmDevice *t, uint32_t mask, const uint8_t *qualifying, size_t qsize,
                     TpmDeviceQuote *ret)
{
        TpmDeviceQuote q = {};
        int r;

        mask &= 0xFFFFFF;
        if (qsize > TPM_DEVICE_QUALIFYING_MAX || mask == 0)
                return -EINVAL;
        r = ensure_ak(t);
        if (r < 0)
                return r;

        /* A PCR may be extended between the quote and reading the values: retry until the
         * values read after the quote reproduce its digest. */
        for (int attempt = 0; attempt < 5; attempt++) {
                TPM2B_DATA data = { .size = (UINT16) qsize };
                TPMT_SIG_SCHEME scheme;
                TPML_PCR_SELECTION sel;
                TPM2B_ATTEST *quoted = NULL;
                TPMT_SIGNATURE *sig = NULL;
                TPMS_ATTEST attest;
                uint8_t digest[32], sigbuf[sizeof(TPMT_SIGNATURE)];
                size_t off = 0;
                TSS2_RC rc;

                memset(&scheme, 0, sizeof(scheme));
                scheme.scheme = TPM2_ALG_NULL; /* the AK's own scheme */
                if (qsize > 0)
                        memcpy(data.buffer, qualifying, qsize);
                selection_from_mask(mask, &sel);
                rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data,
                                &scheme, &sel, &quoted, &sig);
                if (rc != TSS2_RC_SUCCESS)
                        return tpm_error(rc, "Quote");
                r = tpm_device_pcr_read(t, mask, q.pcrs);
                if (r >= 0) {
                        rc = Tss2_MU_TPMS_ATTEST_Unmarshal(quoted->attestationData, quoted->size,
                                                           NULL, &attest);
                        r = rc == TSS2_RC_SUCCESS ? 0 : tpm_error(rc, "unmarshal quote");
                }
                if (r >= 0) {
                        pcr_digest(mask, q.pcrs, digest);
                        if (attest.attested.quote.pcrDigest.size != 32 ||
                            memcmp(attest.attested.quote.pcrDigest.buffer, digest, 32) != 0) {
                                Esys_Free(quoted);
                                Esys_Free(sig);
                                log_debug("tpm: PCRs changed during the quote, retrying");
                                continue;
                        }
                        rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sigbuf, sizeof(sigbuf), &off);
                        r = rc == TSS2_RC_SUCCESS ? 0 : tpm_error(rc, "marshal signature");
                }
                if (r >= 0) {
                        q.attest = malloc(quoted->size);
                        q.signature = malloc(off);
                        if (!q.attest || !q.signature)
                                r = -ENOMEM;
                }
                if (r >= 0) {
                        memcpy(q.attest, quoted->attestationData, quoted->size);
                        q.attest_size = quoted->size;
                        memcpy(q.signature, sigbuf, off);
                        q.signature_size = off;
                        r = marshal_public(&t->ak_public->publicArea, &q.ak_public,
                                           &q.ak_public_size);
                }
                Esys_Free(quoted);
                Esys_Free(sig);
                if (r < 0) {
                        tpm_device_quote_done(&q);
                        return r;
                }
                q.pcr_mask = mask;
                *ret = q;
                return 0;
        }
        return -EAGAIN;
}

int tpm_device_ek_certificate(TpmDevice *t, uint8_t **ret, size_t *ret_size)
{
        static const uint32_t indexes[] = { TPM_NV_EK_CERT_RSA, TPM_NV_EK_CERT_ECC };

        for (size_t i = 0; i < ELEMENTSOF(indexes); i++) {
                ESYS_TR nv = ESYS_TR_NONE;
                TPM2B_NV_PUBLIC *pub = NULL;
                TPM2B_NAME *name = NULL;
                uint8_t *der;
                uint16_t size, off = 0;
                TSS2_RC rc;

                rc = Esys_TR_FromTPMPublic(t->esys, indexes[i], ESYS_TR_NONE, ESYS_TR_NONE,
                                           ESYS_TR_NONE, &nv);
                if (rc != TSS2_RC_SUCCESS)
                        continue; /* no such index */
                rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
                                        &name);
                if (rc != TSS2_RC_SUCCESS) {
                        (void) Esys_TR_Close(t->esys, &nv);
                        return tpm_error(rc, "NV_ReadPublic");
                }
                size = pub->nvPublic.dataSize;
                Esys_Free(pub);
                Esys_Free(name);
                if (size == 0 || size > 8192) {
                        (void) Esys_TR_Close(t->esys, &nv);
                        return -EBADMSG;
                }
                der = malloc(size);
                if (!der) {
                        (void) Esys_TR_Close(t->esys, &nv);
                        return -ENOMEM;
                }
                /* In chunks: a TPM reads at most MAX_NV_BUFFER_SIZE (often 1024) at once. */
                while (off < size) {
                        TPM2B_MAX_NV_BUFFER *chunk = NULL;
                        uint16_t n = MIN((uint16_t) (size - off), (uint16_t) 512);

                        rc = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                          ESYS_TR_NONE, n, off, &chunk);
                        if (rc != TSS2_RC_SUCCESS || chunk->size != n) {
                                Esys_Free(chunk);
                                free(der);
                                (void) Esys_TR_Close(t->esys, &nv);
                                return rc != TSS2_RC_SUCCESS ? tpm_error(rc, "NV_Read") : -EIO;
                        }
                        memcpy(der + off, chunk->buffer, n);
                        off += n;
                        Esys_Free(chunk);
                }
                (void) Esys_TR_Close(t->esys, &nv);
                *ret = der;
                *ret_size = size;
                return 0;
        }
        return -ENOENT;
}

/* TCG EK Credential Profile 2.0, B.3.3 template L-1 (RSA 2048, AES-128-CFB), whose authPolicy
 * is PolicySecret(TPM_RH_ENDORSEMENT). */
static const TPM2B_PUBLIC ek_template = {
        .publicArea = {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                                    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
                .authPolicy = { .size = 32,
                                .buffer = { 0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8,
                                            0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
                                            0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64,
                                            0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA } },
                .parameters.rsaDetail = {
                        .symmetric = { .algorithm = TPM2_ALG_AES,
                                       .keyBits.aes = 128,
                                       .mode.aes = TPM2_ALG_CFB },
                        .scheme.scheme = TPM2_ALG_NULL,
                        .keyBits = 2048,
                        .exponent = 0,
                },
                .unique.rsa = { .size = 256 },
        },
};

int tpm_device_ek_public(TpmDevice *t, uint8_t **ret, size_t *ret_size)
{
        ESYS_TR ek = ESYS_TR_NONE;
        TPM2B_PUBLIC *pub = NULL;
        int r;

        r = create_primary(t, &ek_template, &ek, &pub);
        if (r < 0)
                return r;
        r = marshal_public(&pub->publicArea, ret, ret_size);
        Esys_Free(pub);
        flush(t, &ek);
        return r;
}

int tpm_device_activate_credential(TpmDevice *t, const uint8_t *id_object, size_t id_size,
                                   const uint8_t *encrypted_secret, size_t es_size, Secret **ret)
{
        TPM2B_ID_OBJECT blob = {};
        TPM2B_ENCRYPTED_SECRET secret = {};
        TPM2B_DIGEST *cert_info = NULL;
        TPM2B_PUBLIC *pub = NULL;
        TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
        TPM2B_TIMEOUT *timeout = NULL;
        TPMT_TK_AUTH *ticket = NULL;
        ESYS_TR ek = ESYS_TR_NONE, session = ESYS_TR_NONE;
        size_t off = 0;
        TSS2_RC rc;
        int r;

        rc = Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object, id_size, &off, &blob);
        if (rc != TSS2_RC_SUCCESS || off != id_size)
                return -EBADMSG;
        off = 0;
        rc = Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(encrypted_secret, es_size, &off, &secret);
        if (rc != TSS2_RC_SUCCESS || off != es_size)
                return -EBADMSG;
        r = ensure_ak(t);
        if (r < 0)
                return r;
        r = create_primary(t, &ek_template, &ek, &pub);
        Esys_Free(pub);
        if (r < 0)
                return r;

        rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                   ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256,
                                   &session);
        if (rc == TSS2_RC_SUCCESS)
                rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD,
                                       ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, &timeout,
                                       &ticket);
        Esys_Free(timeout);
        Esys_Free(ticket);
        if (rc == TSS2_RC_SUCCESS)
                rc = Esys_ActivateCredential(t->esys, t->ak, ek, ESYS_TR_PASSWORD, session,
                                             ESYS_TR_NONE, &blob, &secret, &cert_info);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_error(rc, "ActivateCredential");
                /* An integrity failure means the blob was not made for this AK/EK. */
                if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER)
                        r = -EKEYREJECTED;
        } else
                r = secret_new_from(cert_info->buffer, cert_info->size, ret);
        if (cert_info)
                explicit_wipe(cert_info->buffer, cert_info->size);
        Esys_Free(cert_info);
        flush(t, &session);
        flush(t, &ek);
        return r;
}
