/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "cloister/reader.h"
#include "cloister/tdx.h"

/* Certification data types (Intel DCAP Quote Library API, "Certification Data"). */
#define CERT_TYPE_PCK_CHAIN 5
#define CERT_TYPE_QE_REPORT 6

static int bad(Diag *d, const char *check, const char *what)
{
        return diag_fail(d, -EBADMSG, check, -1, "TDX quote: %s", what);
}

static int parse_qe_report(const uint8_t *raw, TdxQeReport *ret)
{
        Reader r = reader_init(raw, TDX_QE_REPORT_SIZE);
        TdxQeReport q = {};

        /* SGX REPORT_BODY: CPUSVN, MISCSELECT, reserved 28, ATTRIBUTES, MRENCLAVE, reserved 32,
         * MRSIGNER, reserved 96, ISVPRODID, ISVSVN, reserved 60, REPORTDATA. */
        if (reader_copy(&r, q.cpusvn, 16) < 0 || reader_u32le(&r, &q.miscselect) < 0 ||
            reader_skip(&r, 28) < 0 || reader_copy(&r, q.attributes, 16) < 0 ||
            reader_copy(&r, q.mrenclave, 32) < 0 || reader_skip(&r, 32) < 0 ||
            reader_copy(&r, q.mrsigner, 32) < 0 || reader_skip(&r, 96) < 0 ||
            reader_u16le(&r, &q.isvprodid) < 0 || reader_u16le(&r, &q.isvsvn) < 0 ||
            reader_skip(&r, 60) < 0 || reader_copy(&r, q.report_data, 64) < 0 ||
            reader_expect_end(&r) < 0)
                return -EBADMSG;
        *ret = q;
        return 0;
}

int tdx_certification_data_parse(const uint8_t *data, size_t size, TdxQuote *q, Diag *d)
{
        Reader r = reader_init(data, size), inner;
        const uint8_t *raw, *auth, *pem;
        uint16_t type, auth_size;
        uint32_t n;

        /* Type 6: QE report certification data (QE report, its signature, QE auth data, and
         * the certification data of the PCK: type 5, the PEM chain). */
        if (reader_u16le(&r, &type) < 0 || reader_u32le(&r, &n) < 0)
                return bad(d, "tdx-certification-data", "truncated certification data header");
        if (type != CERT_TYPE_QE_REPORT)
                return diag_fail(d, -EBADMSG, "tdx-certification-data", -1,
                                 "TDX quote: certification data type %u, expected 6 (QE report "
                                 "certification data)",
                                 type);
        if (reader_sub(&r, n, &inner) < 0)
                return diag_fail(d, -EBADMSG, "tdx-quote-size", -1,
                                 "TDX quote: size mismatch: the certification data (%u bytes) "
                                 "does not fit the declared signature data (%zu bytes left)",
                                 n, reader_remaining(&r));
        if (reader_bytes(&inner, TDX_QE_REPORT_SIZE, &raw) < 0 ||
            reader_copy(&inner, q->qe_report_signature, 64) < 0 ||
            reader_u16le(&inner, &auth_size) < 0 || reader_bytes(&inner, auth_size, &auth) < 0)
                return bad(d, "tdx-certification-data", "truncated QE report certification data");
        if (reader_u16le(&inner, &type) < 0 || reader_u32le(&inner, &n) < 0)
                return bad(d, "tdx-certification-data", "truncated PCK certification data");
        if (type != CERT_TYPE_PCK_CHAIN)
                return diag_fail(d, -EBADMSG, "tdx-certification-data", -1,
                                 "TDX quote: inner certification data type %u, expected 5 (PEM "
                                 "PCK certificate chain)",
                                 type);
        if (n == 0 || n > TDX_PCK_CHAIN_MAX)
                return diag_fail(d, -EBADMSG, "tdx-certification-data", -1,
                                 "TDX quote: PCK chain of %u bytes (1..%u allowed)", n,
                                 TDX_PCK_CHAIN_MAX);
        if (reader_bytes(&inner, n, &pem) < 0)
                return bad(d, "tdx-certification-data", "truncated PCK certificate chain");
        if (reader_expect_end(&inner) < 0)
                return bad(d, "tdx-certification-data",
                           "bytes after the PCK chain inside the QE report certification data");
        if (reader_expect_end(&r) < 0)
                return bad(d, "tdx-certification-data",
                           "bytes after the certification data inside the signature data");
        memcpy(q->qe_report_raw, raw, TDX_QE_REPORT_SIZE);
        if (parse_qe_report(raw, &q->qe_report) < 0)
                return bad(d, "tdx-certification-data", "QE report");
        q->qe_auth_data = auth;
        q->qe_auth_size = auth_size;
        q->pck_chain = pem;
        q->pck_chain_size = n;
        return 0;
}

static int parse_body(Reader *r, TdxQuote *q)
{
        /* TD quote body (TD 1.0, 584 bytes; TD 1.5 adds TEE_TCB_SVN_2 and MRSERVICETD). */
        if (reader_copy(r, q->tee_tcb_svn, 16) < 0 || reader_copy(r, q->mr_seam, 48) < 0 ||
            reader_copy(r, q->mr_signer_seam, 48) < 0 || reader_u64le(r, &q->seam_attributes) < 0 ||
            reader_u64le(r, &q->td_attributes) < 0 || reader_u64le(r, &q->xfam) < 0 ||
            reader_copy(r, q->mr_td, 48) < 0 || reader_copy(r, q->mr_config_id, 48) < 0 ||
            reader_copy(r, q->mr_owner, 48) < 0 || reader_copy(r, q->mr_owner_config, 48) < 0)
                return -EBADMSG;
        for (int i = 0; i < 4; i++)
                if (reader_copy(r, q->rtmr[i], 48) < 0)
                        return -EBADMSG;
        if (reader_copy(r, q->report_data, 64) < 0)
                return -EBADMSG;
        if (q->body_type == 3 &&
            (reader_copy(r, q->tee_tcb_svn2, 16) < 0 || reader_copy(r, q->mr_service_td, 48) < 0))
                return -EBADMSG;
        return reader_expect_end(r);
}

int tdx_quote_parse(const uint8_t *data, size_t size, TdxQuote *ret, Diag *d)
{
        Reader r = reader_init(data, size), body, sig;
        TdxQuote q = {};
        uint32_t sig_size, body_size;
        uint16_t reserved[2];

        if (size > TDX_QUOTE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "tdx-quote-size", -1,
                                 "TDX quote: %zu bytes, at most %u allowed", size,
                                 TDX_QUOTE_SIZE_MAX);
        if (reader_u16le(&r, &q.version) < 0 || reader_u16le(&r, &q.att_key_type) < 0 ||
            reader_u32le(&r, &q.tee_type) < 0 || reader_u16le(&r, &reserved[0]) < 0 ||
            reader_u16le(&r, &reserved[1]) < 0 || reader_copy(&r, q.qe_vendor_id, 16) < 0 ||
            reader_copy(&r, q.user_data, 20) < 0)
                return bad(d, "tdx-quote-format", "truncated header");
        if (q.version != 4 && q.version != 5)
                return diag_fail(d, -EBADMSG, "tdx-quote-version", -1,
                                 "TDX quote: unsupported format: version %u (4 and 5 are "
                                 "TDX quotes; 3 is SGX)",
                                 q.version);
        if (q.tee_type != TDX_TEE_TYPE)
                return diag_fail(d, -EBADMSG, "tdx-quote-format", -1,
                                 "TDX quote: TEE type 0x%x is not TDX (0x81)", q.tee_type);
        if (q.att_key_type != TDX_ATT_KEY_ECDSA256)
                return diag_fail(d, -EBADMSG, "tdx-quote-format", -1,
                                 "TDX quote: attestation key type %u is not ECDSA-256-with-P-256 "
                                 "(2)",
                                 q.att_key_type);

        if (q.version == 4) {
                q.body_type = 2;
                body_size = TDX_BODY_TD10_SIZE;
        } else {
                /* Version 5: a body descriptor (type, size) precedes the body. */
                if (reader_u16le(&r, &q.body_type) < 0 || reader_u32le(&r, &body_size) < 0)
                        return bad(d, "tdx-quote-format", "truncated body descriptor");
                if (!((q.body_type == 2 && body_size == TDX_BODY_TD10_SIZE) ||
                      (q.body_type == 3 && body_size == TDX_BODY_TD15_SIZE)))
                        return diag_fail(d, -EBADMSG, "tdx-quote-format", -1,
                                         "TDX quote: body type %u of %u bytes (TD 1.0: type 2, "
                                         "584 bytes; TD 1.5: type 3, 648 bytes)",
                                         q.body_type, body_size);
        }
        if (reader_sub(&r, body_size, &body) < 0 || parse_body(&body, &q) < 0)
                return bad(d, "tdx-quote-format", "truncated TD quote body");
        q.signed_size = reader_offset(&r);

        if (reader_u32le(&r, &sig_size) < 0)
                return bad(d, "tdx-quote-format", "truncated signature data length");
        /* The declared size must fit; bytes after it are tolerated (Intel's QVL does the same:
         * quote buffers are often handed over with padding). */
        if (reader_sub(&r, sig_size, &sig) < 0)
                return diag_fail(d, -EBADMSG, "tdx-quote-size", -1,
                                 "TDX quote: signature data size mismatch: %u bytes declared, "
                                 "%zu present",
                                 sig_size, reader_remaining(&r));
        if (reader_copy(&sig, q.signature, 64) < 0 || reader_copy(&sig, q.attestation_key, 64) < 0)
                return bad(d, "tdx-quote-format", "truncated signature or attestation key");
        {
                const uint8_t *rest;
                size_t n = reader_remaining(&sig);
                int k;

                (void) reader_bytes(&sig, n, &rest);
                k = tdx_certification_data_parse(rest, n, &q, d);
                if (k < 0)
                        return k;
        }
        q.trailing = reader_remaining(&r);
        *ret = q;
        return 0;
}
