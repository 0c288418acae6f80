/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TDX event log: the ACPI CCEL table (ACPI 6.5, 5.2.34 "Confidential Computing Event Log
 * Table": CC type 2 = TDX, LAML, LASA) and the log it points to, a TCG crypto-agile event log
 * (TCG PC Client PFP, section 10) whose "PCR index" is the CC measurement register index:
 * 0 = MRTD, 1..4 = RTMR0..3 (UEFI 2.10, EFI_CC_MEASUREMENT_PROTOCOL, "MapPcrToMrIndex"), with
 * SHA-384 digests. The log area is larger than the log; its unused tail is 0xFF (or zero).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/hex.h"
#include "cloister/tcg-log.h"
#include "tdx-internal.h"

#define TPM_ALG_SHA384 0x000C
#define CC_TYPE_TDX    2

static int bad_table(Diag *d, const char *what)
{
        return diag_fail(d, -EBADMSG, "tdx-ccel-format", -1, "CCEL table: %s", what);
}

static int parse_table(const uint8_t *table, size_t size, uint64_t *ret_laml, Diag *d)
{
        Reader r = reader_init(table, size);
        const uint8_t *sig;
        uint32_t length;
        uint8_t type, sum = 0;
        uint64_t laml, lasa;

        if (reader_bytes(&r, 4, &sig) < 0 || reader_u32le(&r, &length) < 0)
                return bad_table(d, "truncated header");
        if (memcmp(sig, "CCEL", 4) != 0)
                return bad_table(d, "signature is not CCEL");
        if (length != size || length < TDX_CCEL_TABLE_SIZE)
                return bad_table(d, "length field differs from the table's size");
        for (size_t i = 0; i < size; i++)
                sum = (uint8_t) (sum + table[i]);
        if (sum != 0)
                return bad_table(d, "checksum does not sum to zero");
        if (reader_skip(&r, 36 - 8) < 0 || reader_u8(&r, &type) < 0 || reader_skip(&r, 3) < 0 ||
            reader_u64le(&r, &laml) < 0 || reader_u64le(&r, &lasa) < 0)
                return bad_table(d, "truncated");
        if (type != CC_TYPE_TDX)
                return diag_fail(d, -EBADMSG, "tdx-ccel-format", -1,
                                 "CCEL table: CC type %u is not TDX (2)", type);
        *ret_laml = laml;
        return 0;
}

/* The length of the log proper: records walked until one whose header is all 0xFF or all zero
 * (the unused area), or the end. Digest sizes come from the Spec ID event. */
static int log_length(const uint8_t *log, size_t size, size_t *ret, Diag *d)
{
        Reader r = reader_init(log, size), spec;
        uint16_t sizes[8][2];
        uint32_t pcr, type, n, count, nalgs;
        size_t end = 0;

        if (reader_u32le(&r, &pcr) < 0 || reader_u32le(&r, &type) < 0 || reader_skip(&r, 20) < 0 ||
            reader_u32le(&r, &n) < 0 || reader_sub(&r, n, &spec) < 0)
                return diag_fail(d, -EBADMSG, "tdx-ccel-format", 0,
                                 "CCEL log: truncated first record");
        if (type != EV_NO_ACTION || reader_skip(&spec, 16 + 4 + 4) < 0 ||
            memcmp(spec.data, "Spec ID Event03", 16) != 0 || reader_u32le(&spec, &nalgs) < 0 ||
            nalgs == 0 || nalgs > 8)
                return diag_fail(d, -EBADMSG, "tdx-ccel-format", 0,
                                 "CCEL log: the first record is not a Spec ID Event03");
        for (uint32_t i = 0; i < nalgs; i++)
                if (reader_u16le(&spec, &sizes[i][0]) < 0 || reader_u16le(&spec, &sizes[i][1]) < 0)
                        return diag_fail(d, -EBADMSG, "tdx-ccel-format", 0,
                                         "CCEL log: truncated Spec ID event");
        for (size_t index = 1;; index++) {
                end = reader_offset(&r);
                if (reader_remaining(&r) < 8 || reader_peek_zero(&r, 8))
                        break;
                if (reader_u32le(&r, &pcr) < 0 || reader_u32le(&r, &type) < 0)
                        break;
                if (pcr == UINT32_MAX && type == UINT32_MAX)
                        break;
                if (index > TCG_LOG_EVENTS_MAX || reader_u32le(&r, &count) < 0 || count > nalgs)
                        return diag_fail(d, -EBADMSG, "tdx-ccel-format", (int) index,
                                         "CCEL log: event %zu is malformed", index);
                for (uint32_t i = 0; i < count; i++) {
                        uint16_t alg;
                        uint32_t dsize = 0;
                        if (reader_u16le(&r, &alg) < 0)
                                return diag_fail(d, -EBADMSG, "tdx-ccel-format", (int) index,
                                                 "CCEL log: event %zu is truncated", index);
                        for (uint32_t k = 0; k < nalgs; k++)
                                if (sizes[k][0] == alg)
                                        dsize = sizes[k][1];
                        if (dsize == 0 || reader_skip(&r, dsize) < 0)
                                return diag_fail(d, -EBADMSG, "tdx-ccel-format", (int) index,
                                                 "CCEL log: event %zu has an undeclared or "
                                                 "truncated digest",
                                                 index);
                }
                if (reader_u32le(&r, &n) < 0 || reader_skip(&r, n) < 0)
                        return diag_fail(d, -EBADMSG, "tdx-ccel-format", (int) index,
                                         "CCEL log: event %zu is truncated", index);
        }
        *ret = end;
        return 0;
}

/* The CCEL log (bounded by the table's log area when the table is given) as TCG events. */
static int ccel_parse(const uint8_t *table, size_t table_size, const uint8_t *log, size_t log_size,
                      TcgLog **ret, Diag *d)
{
        size_t end = 0;
        int r;

        if (log_size > TDX_CCEL_LOG_MAX)
                return diag_fail(d, -EMSGSIZE, "tdx-ccel-format", -1,
                                 "CCEL log: %zu bytes, at most %u", log_size, TDX_CCEL_LOG_MAX);
        if (table) {
                uint64_t laml = 0;
                r = parse_table(table, table_size, &laml, d);
                if (r < 0)
                        return r;
                if (laml > log_size)
                        return diag_fail(d, -EBADMSG, "tdx-ccel-format", -1,
                                         "CCEL log: %zu bytes, shorter than the table's log area "
                                         "(%llu bytes)",
                                         log_size, (unsigned long long) laml);
                log_size = (size_t) laml;
        }
        r = log_length(log, log_size, &end, d);
        if (r < 0)
                return r;
        return tcg_log_parse(log, end, ret, d);
}

int tdx_ccel_replay(const uint8_t *table, size_t table_size, const uint8_t *log, size_t log_size,
                    TdxRtmrs *ret, Diag *d)
{
        _cleanup_(tcg_log_freep) TcgLog *tl = NULL;
        TcgLogPcrs pcrs;
        TdxRtmrs out = {};
        int r;

        r = ccel_parse(table, table_size, log, log_size, &tl, d);
        if (r < 0)
                return r;
        for (size_t i = 0; i < tl->n_events; i++) {
                const TcgLogEvent *e = &tl->events[i];
                if (e->type == EV_NO_ACTION)
                        continue;
                /* MR index 0 is MRTD, which the TDX module measures; the log extends only the
                 * RTMRs. */
                if (e->pcr < 1 || e->pcr > 4)
                        return diag_fail(d, -EBADMSG, "tdx-ccel-format", (int) i,
                                         "CCEL log: event %zu names MR index %u (1..4 = RTMR0..3)",
                                         i, e->pcr);
                out.touched |= 1U << (e->pcr - 1);
        }
        r = tcg_log_replay(tl, TPM_ALG_SHA384, &pcrs);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "tdx-ccel-format", -1,
                                 "CCEL log: no SHA-384 digests");
        for (int i = 0; i < 4; i++)
                memcpy(out.rtmr[i], pcrs.values[i + 1], 48);
        out.n_events = tl->n_events;
        *ret = out;
        return 0;
}

int tdx_ccel_check(const TdxQuote *q, const uint8_t *table, size_t table_size, const uint8_t *log,
                   size_t log_size, TdxRtmrs *ret, Diag *d)
{
        TdxRtmrs t;
        int r = tdx_ccel_replay(table, table_size, log, log_size, &t, d);

        if (r < 0)
                return r;
        for (int i = 0; i < 4; i++)
                if (memcmp(t.rtmr[i], q->rtmr[i], 48) != 0) {
                        (void) diag_fail(d, -EPERM, "tdx-rtmr-replay", i,
                                         "the event log does not replay to RTMR%d of the quote: "
                                         "an event was changed, added or removed",
                                         i);
                        diag_set_values_hex(d, q->rtmr[i], 48, t.rtmr[i], 48);
                        return -EPERM;
                }
        if (ret)
                *ret = t;
        return 0;
}

int tdx_ccel_events(const uint8_t *table, size_t table_size, const uint8_t *log, size_t log_size,
                    TdxRtmrEvent **ret, size_t *ret_n, Diag *d)
{
        _cleanup_(tcg_log_freep) TcgLog *tl = NULL;
        _cleanup_(freep) TdxRtmrEvent *out = NULL;
        size_t n = 0;
        int r;

        r = ccel_parse(table, table_size, log, log_size, &tl, d);
        if (r < 0)
                return r;
        out = calloc(tl->n_events ?: 1, sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < tl->n_events; i++) {
                const TcgLogEvent *e = &tl->events[i];
                const TcgLogDigest *dg = NULL;

                if (e->type == EV_NO_ACTION)
                        continue;
                if (e->pcr < 1 || e->pcr > 4)
                        return diag_fail(d, -EBADMSG, "tdx-ccel-format", (int) i,
                                         "CCEL log: event %zu names MR index %u (1..4 = RTMR0..3)",
                                         i, e->pcr);
                for (unsigned k = 0; k < e->n_digests; k++)
                        if (e->digests[k].alg == TPM_ALG_SHA384 && e->digests[k].size == 48)
                                dg = &e->digests[k];
                if (!dg)
                        return diag_fail(d, -EBADMSG, "tdx-ccel-format", (int) i,
                                         "CCEL log: event %zu has no SHA-384 digest", i);
                out[n] = (TdxRtmrEvent){ .mr_index = e->pcr, .type = e->type };
                memcpy(out[n].digest, dg->value, 48);
                n++;
        }
        *ret = TAKE_PTR(out);
        *ret_n = n;
        return 0;
}
