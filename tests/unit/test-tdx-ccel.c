/* SPDX-License-Identifier: Apache-2.0 */
/* CCEL replay of the Google Compute Engine TDX quote's event log (../shared/testdata/tdx/
 * gce-cos113: 44 events, SHA-384, MR index 1..4 → RTMR0..3). */
#include <time.h>

#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/tdx.h"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), 1 << 20, &data, size), 0);
        return data;
}

typedef struct Gce {
        uint8_t *quote, *table, *log;
        size_t qn, tn, ln;
        TdxQuote q;
} Gce;

static void gce_load(Gce *g)
{
        Diag d;

        g->quote = load("tdx/gce-cos113/quote.dat", &g->qn);
        g->table = load("tdx/gce-cos113/ccel_table.dat", &g->tn);
        g->log = load("tdx/gce-cos113/ccel_data.dat", &g->ln);
        assert_int_equal(tdx_quote_parse(g->quote, g->qn, &g->q, &d), 0);
}

static void gce_free(Gce *g)
{
        free(g->quote), free(g->table), free(g->log);
}

static void test_tdx_gce_ccel_log_replays_to_the_quotes_rtmrs(void **state)
{
        TdxVerifyOptions o = { .at = 1740048927 }; /* 2025-02-20T10:55:27Z */
        TdxRtmrs t;
        Gce g;
        Diag d;

        gce_load(&g);
        /* The quote is authentic, so its RTMRs are what the TD measured. */
        assert_int_equal(tdx_verify_quote(&g.q, g.quote, g.qn, NULL, &o, NULL, NULL, NULL, &d), 0);
        if (tdx_ccel_check(&g.q, g.table, g.tn, g.log, g.ln, &t, &d) < 0)
                fail_msg("%s", d.message);
        assert_int_equal(t.n_events, 44);
        /* RTMR0..2 extended by the log (RTMR3 untouched, zero in the quote). */
        assert_int_equal(t.touched & 7, 7);
        for (int i = 0; i < 4; i++)
                assert_memory_equal(t.rtmr[i], g.q.rtmr[i], 48);
        /* The same without the table (the log area alone, its 0xFF tail found). */
        assert_int_equal(tdx_ccel_check(&g.q, NULL, 0, g.log, g.ln, &t, &d), 0);
        gce_free(&g);
}

static void test_tdx_changed_event_fails_naming_its_rtmr(void **state)
{
        Gce g;
        Diag d;
        TdxRtmrs t;

        gce_load(&g);
        assert_int_equal(tdx_ccel_replay(g.table, g.tn, g.log, g.ln, &t, &d), 0);
        /* Each RTMR the log extends: change one digest byte of the first event for it. The
         * layout walk is the one the replay does: after the 32-byte header record and its
         * Spec ID data, records of pcr, type, count, (alg, 48-byte digest), size, data. */
        for (uint32_t mr = 1; mr <= 3; mr++) {
                size_t p = 32 + (g.log[28] | (size_t) g.log[29] << 8);
                bool done = false;

                while (!done) {
                        uint32_t pcr, type, n;
                        memcpy(&pcr, g.log + p, 4);
                        memcpy(&type, g.log + p + 4, 4);
                        assert_true(pcr != UINT32_MAX);
                        if (pcr == mr && type != 3) {
                                g.log[p + 12 + 2 + 7] ^= 0x40;
                                assert_int_equal(
                                        tdx_ccel_check(&g.q, g.table, g.tn, g.log, g.ln, NULL, &d),
                                        -EPERM);
                                assert_string_equal(d.check, "tdx-rtmr-replay");
                                assert_int_equal(d.index, (int) mr - 1);
                                assert_int_equal(strlen(d.expected), 96);
                                g.log[p + 12 + 2 + 7] ^= 0x40;
                                done = true;
                        }
                        memcpy(&n, g.log + p + 12 + 2 + 48, 4);
                        p += 12 + 2 + 48 + 4 + n;
                }
        }
        assert_int_equal(tdx_ccel_check(&g.q, g.table, g.tn, g.log, g.ln, NULL, &d), 0);
        gce_free(&g);
}

static void test_tdx_ccel_table_and_log_are_checked(void **state)
{
        TdxRtmrs t;
        Gce g;
        Diag d;

        gce_load(&g);
        g.table[10] ^= 1; /* checksum */
        assert_int_equal(tdx_ccel_replay(g.table, g.tn, g.log, g.ln, &t, &d), -EBADMSG);
        assert_string_equal(d.check, "tdx-ccel-format");
        g.table[10] ^= 1;
        /* The table says 256 KiB of log; a shorter buffer is refused. */
        assert_int_equal(tdx_ccel_replay(g.table, g.tn, g.log, 4096, &t, &d), -EBADMSG);
        /* A record cut in the middle (no 0xFF tail to end on). */
        assert_int_equal(tdx_ccel_replay(NULL, 0, g.log, 1000, &t, &d), -EBADMSG);
        /* An event for MR index 5 (no such RTMR). */
        {
                size_t p = 32 + (g.log[28] | (size_t) g.log[29] << 8);
                uint8_t save = g.log[p];
                g.log[p] = 5;
                assert_int_equal(tdx_ccel_replay(g.table, g.tn, g.log, g.ln, &t, &d), -EBADMSG);
                g.log[p] = save;
        }
        /* A quote whose RTMR3 is not zero while the log leaves it untouched. */
        g.q.rtmr[3][0] = 1;
        assert_int_equal(tdx_ccel_check(&g.q, g.table, g.tn, g.log, g.ln, NULL, &d), -EPERM);
        assert_int_equal(d.index, 3);
        gce_free(&g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tdx_gce_ccel_log_replays_to_the_quotes_rtmrs),
                cmocka_unit_test(test_tdx_changed_event_fails_naming_its_rtmr),
                cmocka_unit_test(test_tdx_ccel_table_and_log_are_checked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
