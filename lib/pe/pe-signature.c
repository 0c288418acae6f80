/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The digest inside an Authenticode signature ("Windows Authenticode Portable Executable
 * Signature Format", sections "Attribute Certificate Table" and "SpcIndirectDataContent"):
 *   WIN_CERTIFICATE { dwLength, wRevision 0x0200, wCertificateType 0x0002 (PKCS_SIGNED_DATA),
 *                     bCertificate: PKCS#7 SignedData }
 *   SignedData.contentInfo: contentType 1.3.6.1.4.1.311.2.1.4 (SPC_INDIRECT_DATA),
 *     content SpcIndirectDataContent ::= SEQUENCE {
 *       data SpcAttributeTypeAndOptionalValue (type 1.3.6.1.4.1.311.2.1.15, SPC_PE_IMAGE_DATA),
 *       messageDigest DigestInfo }
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "cloister/pe.h"
#include "cloister/reader.h"

#define OID_SPC_INDIRECT_DATA "1.3.6.1.4.1.311.2.1.4"
#define OID_SPC_PE_IMAGE_DATA "1.3.6.1.4.1.311.2.1.15"

static int bad(Diag *d, const char *what)
{
        return diag_fail(d, -EBADMSG, "pe-signature", -1, "Authenticode signature: %s", what);
}

static bool oid_is(const ASN1_OBJECT *obj, const char *oid)
{
        char buf[64];
        int n = OBJ_obj2txt(buf, sizeof(buf), obj, 1);
        return n > 0 && (size_t) n < sizeof(buf) && strcmp(buf, oid) == 0;
}

/* The DER of a SEQUENCE element as its own buffer (owned by the stack). */
static STACK_OF(ASN1_TYPE) * sequence_items(const ASN1_STRING *seq)
{
        const unsigned char *p = ASN1_STRING_get0_data(seq);
        long len = ASN1_STRING_length(seq);
        STACK_OF(ASN1_TYPE) *items = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);

        if (items && p != ASN1_STRING_get0_data(seq) + len) {
                sk_ASN1_TYPE_pop_free(items, ASN1_TYPE_free);
                return NULL;
        }
        return items;
}

static int parse_indirect_data(const ASN1_TYPE *content, const char **ret_md,
                               uint8_t ret[static PE_DIGEST_MAX], size_t *ret_size, Diag *d)
{
        STACK_OF(ASN1_TYPE) *items = NULL, *data_items = NULL;
        const ASN1_TYPE *data, *digest_info, *data_type;
        const X509_ALGOR *alg;
        const ASN1_OCTET_STRING *digest;
        const unsigned char *p;
        X509_SIG *sig = NULL;
        const char *md;
        int r, len;

        if (!content || content->type != V_ASN1_SEQUENCE) {
                r = bad(d, "SpcIndirectDataContent is not a SEQUENCE");
                goto out;
        }
        items = sequence_items(content->value.sequence);
        if (!items || sk_ASN1_TYPE_num(items) != 2) {
                r = bad(d, "SpcIndirectDataContent does not have two elements");
                goto out;
        }
        data = sk_ASN1_TYPE_value(items, 0);
        digest_info = sk_ASN1_TYPE_value(items, 1);
        if (data->type != V_ASN1_SEQUENCE || digest_info->type != V_ASN1_SEQUENCE) {
                r = bad(d, "SpcIndirectDataContent elements are not SEQUENCEs");
                goto out;
        }
        data_items = sequence_items(data->value.sequence);
        if (!data_items || sk_ASN1_TYPE_num(data_items) < 1) {
                r = bad(d, "SpcAttributeTypeAndOptionalValue is malformed");
                goto out;
        }
        data_type = sk_ASN1_TYPE_value(data_items, 0);
        if (data_type->type != V_ASN1_OBJECT ||
            !oid_is(data_type->value.object, OID_SPC_PE_IMAGE_DATA)) {
                r = bad(d, "the signed data is not SPC_PE_IMAGE_DATA (not a PE image signature)");
                goto out;
        }
        p = ASN1_STRING_get0_data(digest_info->value.sequence);
        sig = d2i_X509_SIG(NULL, &p, ASN1_STRING_length(digest_info->value.sequence));
        if (!sig) {
                r = bad(d, "messageDigest is not a DigestInfo");
                goto out;
        }
        X509_SIG_get0(sig, &alg, &digest);
        switch (OBJ_obj2nid(alg->algorithm)) {
        case NID_sha256:
                md = "SHA256";
                len = 32;
                break;
        case NID_sha384:
                md = "SHA384";
                len = 48;
                break;
        case NID_sha1:
                md = "SHA1";
                len = 20;
                break;
        default:
                r = bad(d, "messageDigest uses an unknown digest algorithm");
                goto out;
        }
        if (ASN1_STRING_length(digest) != len) {
                r = bad(d, "messageDigest's length does not fit its algorithm");
                goto out;
        }
        memcpy(ret, ASN1_STRING_get0_data(digest), (size_t) ASN1_STRING_length(digest));
        *ret_size = (size_t) ASN1_STRING_length(digest);
        *ret_md = md;
        r = 0;
out:
        X509_SIG_free(sig);
        sk_ASN1_TYPE_pop_free(data_items, ASN1_TYPE_free);
        sk_ASN1_TYPE_pop_free(items, ASN1_TYPE_free);
        return r;
}

int pe_signed_digest(const uint8_t *data, size_t size, const char **ret_md,
                     uint8_t ret[static PE_DIGEST_MAX], size_t *ret_size, Diag *d)
{
        PeImage *pe = calloc(1, sizeof(*pe));
        PKCS7 *p7 = NULL;
        Reader r;
        uint32_t length;
        uint16_t revision, type;
        const uint8_t *der;
        const unsigned char *p;
        int ret_r;

        if (!pe)
                return -ENOMEM;
        ret_r = pe_parse(data, size, pe, d);
        if (ret_r < 0)
                goto out;
        if (pe->cert_size == 0) {
                ret_r = diag_fail(d, -ENODATA, "pe-signature", -1,
                                  "PE file carries no Authenticode signature");
                goto out;
        }
        r = reader_init(data + pe->cert_offset, pe->cert_size);
        if (reader_u32le(&r, &length) < 0 || reader_u16le(&r, &revision) < 0 ||
            reader_u16le(&r, &type) < 0 || length < 8 || length > pe->cert_size) {
                ret_r = bad(d, "malformed WIN_CERTIFICATE header");
                goto out;
        }
        if (revision != 0x0200 || type != 0x0002) {
                ret_r = bad(d, "first certificate is not a PKCS#7 SignedData (revision 2.0)");
                goto out;
        }
        if (reader_bytes(&r, length - 8, &der) < 0) {
                ret_r = bad(d, "WIN_CERTIFICATE runs past the certificate table");
                goto out;
        }
        p = der;
        p7 = d2i_PKCS7(NULL, &p, length - 8);
        if (!p7 || !PKCS7_type_is_signed(p7) || !p7->d.sign || !p7->d.sign->contents) {
                ret_r = bad(d, "not a PKCS#7 SignedData");
                goto out;
        }
        if (!oid_is(p7->d.sign->contents->type, OID_SPC_INDIRECT_DATA)) {
                ret_r = bad(d, "signed content is not SPC_INDIRECT_DATA");
                goto out;
        }
        ret_r = parse_indirect_data(p7->d.sign->contents->d.other, ret_md, ret, ret_size, d);
out:
        ERR_clear_error(); /* failed d2i_*() calls leave their reasons queued; d has ours */
        PKCS7_free(p7);
        free(pe);
        return ret_r;
}
