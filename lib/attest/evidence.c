/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/base64.h"
#include "cloister/evidence.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/tdx.h"

/* Which members a variant carries: a document with members of another variant is refused, so
 * a verifier never looks at bytes the variant's checks do not cover. */
static bool variant_has(AttestVariant v, AttestMember m)
{
        return attest_variant_info(v)->members & m;
}

/* ... or carries as the node's identity (verified by the variant's checks too). */
static bool variant_allows(AttestVariant v, AttestMember m)
{
        return (attest_variant_info(v)->members | attest_variant_info(v)->identity) & m;
}

int blob_set(Blob *b, const void *data, size_t size)
{
        uint8_t *p = malloc(size > 0 ? size : 1);

        if (!p)
                return -ENOMEM;
        if (size > 0)
                memcpy(p, data, size);
        free(b->data);
        b->data = p;
        b->size = size;
        return 0;
}

void blob_clear(Blob *b)
{
        free(b->data);
        *b = (Blob){};
}

Evidence *evidence_new(AttestVariant variant)
{
        Evidence *e = calloc(1, sizeof(*e));

        if (!e)
                return NULL;
        e->version = EVIDENCE_VERSION;
        e->variant = variant;
        return e;
}

Evidence *evidence_free(Evidence *e)
{
        if (!e)
                return NULL;
        blob_clear(&e->tpm.ak_public);
        blob_clear(&e->tpm.quote);
        blob_clear(&e->tpm.signature);
        blob_clear(&e->tpm.event_log);
        blob_clear(&e->tpm.ek_certificate);
        blob_clear(&e->tpm.ek_public);
        blob_clear(&e->snp.report);
        blob_clear(&e->snp.certificates);
        blob_clear(&e->snp.vcek);
        blob_clear(&e->snp.chain);
        blob_clear(&e->snp.hcl_report);
        blob_clear(&e->tdx.quote);
        blob_clear(&e->tdx.event_log);
        blob_clear(&e->tdx.ccel_table);
        blob_clear(&e->tdx.tcb_info);
        blob_clear(&e->tdx.tcb_info_chain);
        blob_clear(&e->tdx.qe_identity);
        blob_clear(&e->tdx.qe_identity_chain);
        blob_clear(&e->tdx.pck_crl);
        blob_clear(&e->tdx.root_crl);
        blob_clear(&e->tdx.hcl_report);
        free(e);
        return NULL;
}

static int get_blob(const JsonCtx *ctx, const json_t *o, const char *key, bool required, size_t max,
                    Blob *ret)
{
        uint8_t *data;
        size_t size;
        int r;

        r = json_get_base64(ctx, o, key, required, max, &data, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (size == 0 && required) {
                free(data);
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1, "%s: %s.%s: is empty",
                                 ctx->source, ctx->path, key);
        }
        free(ret->data);
        ret->data = data;
        ret->size = size;
        return 0;
}

int evidence_pcr_index_from_key(const char *k)
{
        int idx = 0;

        if (!k || !*k || strlen(k) > 2 || (k[0] == '0' && k[1]))
                return -1;
        for (const char *c = k; *c; c++) {
                if (*c < '0' || *c > '9')
                        return -1;
                idx = idx * 10 + (*c - '0');
        }
        return idx < EVIDENCE_PCR_COUNT ? idx : -1;
}

static int parse_pcrs(const JsonCtx *ctx, const json_t *o, EvidenceTpm *t)
{
        const char *k;
        json_t *v;
        int r;

        r = json_expect_object(ctx, o);
        if (r < 0)
                return r;
        json_object_foreach ((json_t *) o, k, v) {
                int idx = evidence_pcr_index_from_key(k);

                if (idx < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.%s: not a PCR index 0..23", ctx->source, ctx->path,
                                         k);
                r = json_get_hex_exact(ctx, o, k, true, t->pcrs[idx], EVIDENCE_PCR_SIZE);
                if (r < 0)
                        return r;
                t->pcr_mask |= 1U << idx;
        }
        return 0;
}

static int parse_tpm(const JsonCtx *ctx, const json_t *o, bool azure, EvidenceTpm *t)
{
        static const char *const keys[] = { "akPublic",      "quote",    "signature", "eventLog",
                                            "ekCertificate", "ekPublic", "pcrs",      NULL };
        char buf[64];
        json_t *pcrs;
        int r;

        r = json_check_keys(ctx, o, keys);
        if (r < 0)
                return r;
        /* azure-sev-snp, azure-tdx: the AK comes from the HCL report's runtime data instead. */
        r = get_blob(ctx, o, "akPublic", !azure, EVIDENCE_TPM_STRUCT_MAX, &t->ak_public);
        if (r >= 0)
                r = get_blob(ctx, o, "quote", true, EVIDENCE_TPM_STRUCT_MAX, &t->quote);
        if (r >= 0)
                r = get_blob(ctx, o, "signature", true, EVIDENCE_TPM_STRUCT_MAX, &t->signature);
        if (r >= 0)
                r = get_blob(ctx, o, "eventLog", false, EVIDENCE_EVENT_LOG_MAX, &t->event_log);
        if (r >= 0)
                r = get_blob(ctx, o, "ekCertificate", false, EVIDENCE_CERT_MAX, &t->ek_certificate);
        if (r >= 0)
                r = get_blob(ctx, o, "ekPublic", false, EVIDENCE_TPM_STRUCT_MAX, &t->ek_public);
        if (r < 0)
                return r;
        r = json_get_object(ctx, o, "pcrs", true, &pcrs);
        if (r < 0)
                return r;
        JsonCtx c = json_ctx_child(ctx, "pcrs", buf, sizeof(buf));
        return parse_pcrs(&c, pcrs, t);
}

static int parse_snp(const JsonCtx *ctx, const json_t *o, bool azure, EvidenceSnp *s)
{
        static const char *const keys[] = { "report", "certificates", "vcek",
                                            "chain",  "hclReport",    NULL };
        int r;

        r = json_check_keys(ctx, o, keys);
        if (r < 0)
                return r;
        /* azure-sev-snp: the report is inside the HCL report. */
        r = get_blob(ctx, o, "report", !azure, EVIDENCE_SNP_REPORT_MAX, &s->report);
        if (r >= 0)
                r = get_blob(ctx, o, "certificates", false, EVIDENCE_SNP_CERTS_MAX,
                             &s->certificates);
        if (r >= 0)
                r = get_blob(ctx, o, "vcek", false, EVIDENCE_CERT_MAX, &s->vcek);
        if (r >= 0)
                r = get_blob(ctx, o, "chain", false, EVIDENCE_SNP_CERTS_MAX, &s->chain);
        if (r >= 0)
                r = get_blob(ctx, o, "hclReport", azure, EVIDENCE_SNP_REPORT_MAX * 2,
                             &s->hcl_report);
        return r;
}

/* The collateral members, in the order of TdxCollateral's files (docs/tdx.md). */
static const char *const tdx_collateral_keys[] = {
        "tcbInfo", "tcbInfoIssuerChain", "qeIdentity", "qeIdentityIssuerChain",
        "pckCrl",  "rootCaCrl",          NULL,
};

static Blob *tdx_collateral_blob(EvidenceTdx *t, size_t i)
{
        Blob *const blobs[] = { &t->tcb_info,          &t->tcb_info_chain, &t->qe_identity,
                                &t->qe_identity_chain, &t->pck_crl,        &t->root_crl };
        return blobs[i];
}

static int parse_tdx(const JsonCtx *ctx, const json_t *o, bool azure, EvidenceTdx *t)
{
        static const char *const keys[] = { "quote",     "collateral", "eventLog",
                                            "ccelTable", "hclReport",  NULL };
        json_t *col;
        int r;

        r = json_check_keys(ctx, o, keys);
        if (r < 0)
                return r;
        /* azure-tdx: the HCL report whose runtime data the quote's REPORTDATA binds; no other
         * variant reads one, so none may carry one. */
        if (!azure && json_object_get(o, "hclReport"))
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.hclReport: only azure-tdx evidence carries one",
                                 ctx->source, ctx->path);
        r = get_blob(ctx, o, "quote", true, EVIDENCE_TDX_QUOTE_MAX, &t->quote);
        if (r >= 0)
                r = get_blob(ctx, o, "hclReport", azure, EVIDENCE_SNP_REPORT_MAX * 2,
                             &t->hcl_report);
        if (r >= 0)
                r = get_blob(ctx, o, "eventLog", false, EVIDENCE_EVENT_LOG_MAX, &t->event_log);
        if (r >= 0)
                r = get_blob(ctx, o, "ccelTable", false, TDX_CCEL_TABLE_SIZE, &t->ccel_table);
        if (r < 0)
                return r;
        if (t->ccel_table.data && !t->event_log.data)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.ccelTable: only with eventLog", ctx->source, ctx->path);
        r = json_get_object(ctx, o, "collateral", false, &col);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        {
                char buf[32];
                JsonCtx c = json_ctx_child(ctx, "collateral", buf, sizeof(buf));

                r = json_check_keys(&c, col, tdx_collateral_keys);
                for (size_t i = 0; r >= 0 && tdx_collateral_keys[i]; i++)
                        r = get_blob(&c, col, tdx_collateral_keys[i], true, EVIDENCE_TDX_FILE_MAX,
                                     tdx_collateral_blob(t, i));
                if (r < 0)
                        return r;
        }
        t->has_collateral = true;
        return 0;
}

int evidence_parse(const void *data, size_t size, Evidence **ret, Diag *d)
{
        static const char *const keys[] = { "version", "variant", "tpm", "snp", "tdx", NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        JsonCtx ctx = { .source = "evidence", .path = "", .diag = d };
        const char *variant;
        int64_t version;
        json_t *sub;
        int r;

        if (size > EVIDENCE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "evidence-size", -1,
                                 "evidence of %zu bytes exceeds the limit of %u bytes", size,
                                 EVIDENCE_SIZE_MAX);
        r = json_parse_buffer(data, size, "evidence", &j, d);
        if (r < 0)
                return r;
        r = json_check_keys(&ctx, j, keys);
        if (r < 0)
                return r;
        r = json_get_int(&ctx, j, "version", true, EVIDENCE_VERSION, EVIDENCE_VERSION, &version);
        if (r < 0)
                return r;
        r = json_get_string(&ctx, j, "variant", true, &variant);
        if (r < 0)
                return r;
        e = evidence_new(attest_variant_from_string(variant));
        if (!e)
                return -ENOMEM;
        if (e->variant < 0)
                return diag_fail(d, -EBADMSG, "evidence-variant", -1,
                                 "evidence: unknown variant '%s'", variant);

        r = json_get_object(&ctx, j, "tpm", variant_has(e->variant, ATTEST_MEMBER_TPM), &sub);
        if (r >= 0) {
                char buf[16];
                JsonCtx c = json_ctx_child(&ctx, "tpm", buf, sizeof(buf));

                if (!variant_allows(e->variant, ATTEST_MEMBER_TPM))
                        return diag_fail(d, -EBADMSG, "evidence-variant", -1,
                                         "evidence: variant %s carries no 'tpm' member", variant);
                r = parse_tpm(&c, sub, variant_has(e->variant, ATTEST_MEMBER_HCL), &e->tpm);
                if (r < 0)
                        return r;
                e->has_tpm = true;
        } else if (r != -ENOENT)
                return r;

        r = json_get_object(&ctx, j, "snp", variant_has(e->variant, ATTEST_MEMBER_SNP), &sub);
        if (r >= 0) {
                char buf[16];
                JsonCtx c = json_ctx_child(&ctx, "snp", buf, sizeof(buf));

                if (!variant_has(e->variant, ATTEST_MEMBER_SNP))
                        return diag_fail(d, -EBADMSG, "evidence-variant", -1,
                                         "evidence: variant %s carries no 'snp' member", variant);
                r = parse_snp(&c, sub, e->variant == ATTEST_VARIANT_AZURE_SEV_SNP, &e->snp);
                if (r < 0)
                        return r;
                e->has_snp = true;
        } else if (r != -ENOENT)
                return r;

        r = json_get_object(&ctx, j, "tdx", variant_has(e->variant, ATTEST_MEMBER_TDX), &sub);
        if (r >= 0) {
                char buf[16];
                JsonCtx c = json_ctx_child(&ctx, "tdx", buf, sizeof(buf));

                if (!variant_has(e->variant, ATTEST_MEMBER_TDX))
                        return diag_fail(d, -EBADMSG, "evidence-variant", -1,
                                         "evidence: variant %s carries no 'tdx' member", variant);
                r = parse_tdx(&c, sub, variant_has(e->variant, ATTEST_MEMBER_HCL), &e->tdx);
                if (r < 0)
                        return r;
                e->has_tdx = true;
        } else if (r != -ENOENT)
                return r;

        *ret = TAKE_PTR(e);
        return 0;
}

static int set_blob(json_t *o, const char *key, const Blob *b)
{
        _cleanup_(freep) char *s = NULL;
        int r;

        if (!b->data)
                return 0;
        r = base64_encode(b->data, b->size, &s);
        if (r < 0)
                return r;
        return json_object_set_new(o, key, json_string(s)) < 0 ? -ENOMEM : 0;
}

static int build_tpm(const EvidenceTpm *t, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *o = json_object(), *pcrs = json_object();
        int r;

        if (!o || !pcrs)
                return -ENOMEM;
        if ((r = set_blob(o, "akPublic", &t->ak_public)) < 0 ||
            (r = set_blob(o, "quote", &t->quote)) < 0 ||
            (r = set_blob(o, "signature", &t->signature)) < 0 ||
            (r = set_blob(o, "eventLog", &t->event_log)) < 0 ||
            (r = set_blob(o, "ekCertificate", &t->ek_certificate)) < 0 ||
            (r = set_blob(o, "ekPublic", &t->ek_public)) < 0)
                return r;
        for (unsigned i = 0; i < EVIDENCE_PCR_COUNT; i++) {
                char key[4], hex[EVIDENCE_PCR_SIZE * 2 + 1];

                if (!(t->pcr_mask & (1U << i)))
                        continue;
                (void) snprintf(key, sizeof(key), "%u", i);
                hex_encode_buf(t->pcrs[i], EVIDENCE_PCR_SIZE, hex, sizeof(hex));
                if (json_object_set_new(pcrs, key, json_string(hex)) < 0)
                        return -ENOMEM;
        }
        if (json_object_set(o, "pcrs", pcrs) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static int build_snp(const EvidenceSnp *s, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *o = json_object();
        int r;

        if (!o)
                return -ENOMEM;
        if ((r = set_blob(o, "report", &s->report)) < 0 ||
            (r = set_blob(o, "certificates", &s->certificates)) < 0 ||
            (r = set_blob(o, "vcek", &s->vcek)) < 0 || (r = set_blob(o, "chain", &s->chain)) < 0 ||
            (r = set_blob(o, "hclReport", &s->hcl_report)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int build_tdx(const EvidenceTdx *t, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *o = json_object(), *col = json_object();
        int r;

        if (!o || !col)
                return -ENOMEM;
        if ((r = set_blob(o, "quote", &t->quote)) < 0 ||
            (r = set_blob(o, "eventLog", &t->event_log)) < 0 ||
            (r = set_blob(o, "ccelTable", &t->ccel_table)) < 0 ||
            (r = set_blob(o, "hclReport", &t->hcl_report)) < 0)
                return r;
        if (t->has_collateral) {
                for (size_t i = 0; tdx_collateral_keys[i]; i++)
                        if ((r = set_blob(col, tdx_collateral_keys[i],
                                          tdx_collateral_blob((EvidenceTdx *) t, i))) < 0)
                                return r;
                if (json_object_set(o, "collateral", col) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int evidence_serialize(const Evidence *e, char **ret, size_t *ret_size)
{
        _cleanup_(json_decrefp) json_t *o = json_object();
        _cleanup_(freep) char *s = NULL;
        const char *variant = attest_variant_to_string(e->variant);
        json_t *sub;
        int r;

        if (!o)
                return -ENOMEM;
        if (!variant)
                return -EINVAL;
        if (json_object_set_new(o, "version", json_integer(EVIDENCE_VERSION)) < 0 ||
            json_object_set_new(o, "variant", json_string(variant)) < 0)
                return -ENOMEM;
        if (e->has_tpm) {
                r = build_tpm(&e->tpm, &sub);
                if (r < 0)
                        return r;
                if (json_object_set_new(o, "tpm", sub) < 0)
                        return -ENOMEM;
        }
        if (e->has_snp) {
                r = build_snp(&e->snp, &sub);
                if (r < 0)
                        return r;
                if (json_object_set_new(o, "snp", sub) < 0)
                        return -ENOMEM;
        }
        if (e->has_tdx) {
                r = build_tdx(&e->tdx, &sub);
                if (r < 0)
                        return r;
                if (json_object_set_new(o, "tdx", sub) < 0)
                        return -ENOMEM;
        }
        r = json_dump_compact(o, &s);
        if (r < 0)
                return r;
        if (strlen(s) > EVIDENCE_SIZE_MAX)
                return -EMSGSIZE;
        *ret_size = strlen(s);
        *ret = TAKE_PTR(s);
        return 0;
}
