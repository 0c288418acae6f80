/* SPDX-License-Identifier: Apache-2.0 */
/* SGX extensions of a PCK certificate (Intel SGX PCK Certificate and CRL Profile, section 1.5,
 * "Intel SGX PCK Certificate: SGX Extensions"), read with the bounded reader. */
#include <string.h>

#include "tdx-internal.h"

#define DER_INTEGER    0x02
#define DER_OCTETS     0x04
#define DER_OID        0x06
#define DER_ENUMERATED 0x0a
#define DER_SEQUENCE   0x30

/* 1.2.840.113741.1.13.1 */
static const uint8_t sgx_oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01 };

/* The OID in content is sgx_oid followed by the arcs in sub (each < 128). */
static bool oid_is(const Reader *content, const uint8_t *sub, size_t n)
{
        return reader_remaining(content) == sizeof(sgx_oid) + n &&
               memcmp(content->data + content->pos, sgx_oid, sizeof(sgx_oid)) == 0 &&
               memcmp(content->data + content->pos + sizeof(sgx_oid), sub, n) == 0;
}

/* A non-negative DER INTEGER (or ENUMERATED) up to max. */
static int der_uint(Reader *r, uint8_t tag, unsigned max, unsigned *ret)
{
        Reader v;
        uint8_t t, b;
        unsigned x = 0;
        size_t n;

        if (tdx_der_tlv(r, &t, &v) < 0 || t != tag)
                return -EBADMSG;
        n = reader_remaining(&v);
        if (n == 0 || n > 3)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                (void) reader_u8(&v, &b);
                if (i == 0 && (b & 0x80)) /* negative */
                        return -EBADMSG;
                if (i == 0 && b == 0 && n > 1 && !(v.data[v.pos] & 0x80)) /* not minimal */
                        return -EBADMSG;
                x = x << 8 | b;
        }
        if (x > max)
                return -EBADMSG;
        *ret = x;
        return 0;
}

static int der_octets(Reader *r, void *buf, size_t size)
{
        Reader v;
        uint8_t t;

        if (tdx_der_tlv(r, &t, &v) < 0 || t != DER_OCTETS || reader_remaining(&v) != size)
                return -EBADMSG;
        return reader_copy(&v, buf, size);
}

static int parse_tcb(Reader *seq, TdxPckExtensions *e, unsigned *seen)
{
        while (reader_remaining(seq) > 0) {
                Reader item, oid;
                uint8_t t, arc[2] = { 2, 0 };
                unsigned v;

                if (tdx_der_tlv(seq, &t, &item) < 0 || t != DER_SEQUENCE ||
                    tdx_der_tlv(&item, &t, &oid) < 0 || t != DER_OID)
                        return -EBADMSG;
                for (arc[1] = 1; arc[1] <= 18; arc[1]++)
                        if (oid_is(&oid, arc, 2))
                                break;
                if (arc[1] > 18 || (*seen & (1U << arc[1])))
                        return -EBADMSG;
                *seen |= 1U << arc[1];
                if (arc[1] <= 16) {
                        if (der_uint(&item, DER_INTEGER, 255, &v) < 0)
                                return -EBADMSG;
                        e->comp_svn[arc[1] - 1] = (uint8_t) v;
                } else if (arc[1] == 17) {
                        if (der_uint(&item, DER_INTEGER, 65535, &v) < 0)
                                return -EBADMSG;
                        e->pcesvn = (uint16_t) v;
                } else if (der_octets(&item, e->cpusvn, 16) < 0)
                        return -EBADMSG;
                if (reader_expect_end(&item) < 0)
                        return -EBADMSG;
        }
        return 0;
}

int tdx_pck_extensions_parse(const uint8_t *der, size_t size, TdxPckExtensions *ret)
{
        Reader r = reader_init(der, size), seq;
        TdxPckExtensions e = { .sgx_type = -1 };
        unsigned seen = 0, tcb_seen = 0, v;
        uint8_t t;

        if (tdx_der_tlv(&r, &t, &seq) < 0 || t != DER_SEQUENCE || reader_expect_end(&r) < 0)
                return -EBADMSG;
        while (reader_remaining(&seq) > 0) {
                Reader item, oid, tcb;
                uint8_t arc;

                if (tdx_der_tlv(&seq, &t, &item) < 0 || t != DER_SEQUENCE ||
                    tdx_der_tlv(&item, &t, &oid) < 0 || t != DER_OID)
                        return -EBADMSG;
                for (arc = 1; arc <= 7; arc++)
                        if (oid_is(&oid, &arc, 1))
                                break;
                if (arc > 7) /* an extension this code does not know: skip it */
                        continue;
                if (seen & (1U << arc))
                        return -EBADMSG;
                seen |= 1U << arc;
                switch (arc) {
                case 1:
                        if (der_octets(&item, e.ppid, 16) < 0)
                                return -EBADMSG;
                        break;
                case 2:
                        if (tdx_der_tlv(&item, &t, &tcb) < 0 || t != DER_SEQUENCE ||
                            parse_tcb(&tcb, &e, &tcb_seen) < 0)
                                return -EBADMSG;
                        break;
                case 3:
                        if (der_octets(&item, e.pce_id, 2) < 0)
                                return -EBADMSG;
                        break;
                case 4:
                        if (der_octets(&item, e.fmspc, 6) < 0)
                                return -EBADMSG;
                        break;
                case 5:
                        if (der_uint(&item, DER_ENUMERATED, 2, &v) < 0)
                                return -EBADMSG;
                        e.sgx_type = (int) v;
                        break;
                default: /* 6 PlatformInstanceID, 7 Configuration (Platform CA PCKs) */
                        (void) reader_skip(&item, reader_remaining(&item));
                }
                if (reader_expect_end(&item) < 0)
                        return -EBADMSG;
        }
        /* PPID, TCB (all 16 components, PCESVN, CPUSVN), PCE-ID, FMSPC and SGX type are
         * mandatory. */
        if ((seen & 0x3e) != 0x3e || tcb_seen != 0x7fffe)
                return -EBADMSG;
        *ret = e;
        return 0;
}
