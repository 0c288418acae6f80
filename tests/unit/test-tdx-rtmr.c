/* SPDX-License-Identifier: Apache-2.0 */
/* RTMR prediction (lib/tdx/tdx-rtmr.c): the fold and the TDVF boot model against the real GCE
 * TDX event log and quote (../shared/testdata/tdx/gce-cos113); the GPT event data
 * (lib/tcglog/tcg-gpt.c); the measurements file's "tdx" section. The proof against a real
 * OVMF boot measured in SHA-384 is tests/integration/test_uki_boot.py. */
#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/measurements.h"
#include "cloister/tcg-log.h"
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
        TdxRtmrEvent *events;
        size_t n;
} Gce;

static void gce_load(Gce *g)
{
        Diag d;

        g->quote = load("tdx/gce-cos113/quote.dat", &g->qn);
        g->table = load("tdx/gce-cos113/ccel_table.dat", &g->tn);
        g->log = load("tdx/gce-cos113/ccel_data.dat", &g->ln);
        assert_int_equal(tdx_quote_parse(g->quote, g->qn, &g->q, &d), 0);
        if (tdx_ccel_events(g->table, g->tn, g->log, g->ln, &g->events, &g->n, &d) < 0)
                fail_msg("%s", d.message);
}

static void gce_free(Gce *g)
{
        free(g->quote), free(g->table), free(g->log), free(g->events);
}

static void test_tdx_fold_of_the_gce_log_events_equals_the_replay_and_the_quote(void **state)
{
        TdxRtmrs folded, replayed;
        Gce g;
        Diag d;

        gce_load(&g);
        assert_int_equal(g.n, 43); /* 44 events, the Spec ID event (EV_NO_ACTION) left out */
        assert_int_equal(tdx_rtmrs_fold(g.events, g.n, &folded), 0);
        assert_int_equal(tdx_ccel_replay(g.table, g.tn, g.log, g.ln, &replayed, &d), 0);
        for (int i = 0; i < 4; i++) {
                assert_memory_equal(folded.rtmr[i], replayed.rtmr[i], 48);
                assert_memory_equal(folded.rtmr[i], g.q.rtmr[i], 48);
        }
        assert_int_equal(folded.touched, replayed.touched);
        gce_free(&g);
}

/* The RTMR1 model (boot attempt, one separator, GPT, applications, both exit-boot-services
 * actions) fed with the GPT and application digests of a real TDX boot on Google's TDX firmware
 * gives that boot's RTMR1 as its quote reports it: the model's sequence and its constant
 * events are the real firmware's. */
static void test_tdx_rtmr1_model_with_the_gce_boots_digests_gives_its_quotes_rtmr1(void **state)
{
        TdxRtmrEvent model[TDX_RTMR_EVENTS_MAX];
        uint8_t gpt[48], apps[4][48];
        size_t n_apps = 0, n = 0, n_rtmr1 = 0;
        TdxRtmrs t;
        Gce g;

        gce_load(&g);
        for (size_t i = 0; i < g.n; i++) {
                if (g.events[i].mr_index != 2)
                        continue;
                n_rtmr1++;
                if (g.events[i].type == TDX_EV_EFI_GPT_EVENT)
                        memcpy(gpt, g.events[i].digest, 48);
                else if (g.events[i].type == TDX_EV_EFI_BOOT_SERVICES_APPLICATION && n_apps < 4)
                        memcpy(apps[n_apps++], g.events[i].digest, 48);
        }
        assert_int_equal(n_apps, 2); /* shim, then GRUB */
        assert_int_equal(tdx_rtmr1_boot_events(gpt, (const uint8_t(*)[48]) apps, n_apps, model, &n,
                                               TDX_RTMR_EVENTS_MAX),
                         0);
        assert_int_equal(n, n_rtmr1);
        /* Event by event: same type and digest as the real log's RTMR1 events. */
        for (size_t i = 0, k = 0; i < g.n; i++) {
                if (g.events[i].mr_index != 2)
                        continue;
                assert_int_equal(model[k].type, g.events[i].type);
                assert_memory_equal(model[k].digest, g.events[i].digest, 48);
                k++;
        }
        assert_int_equal(tdx_rtmrs_fold(model, n, &t), 0);
        assert_memory_equal(t.rtmr[1], g.q.rtmr[1], 48);
        /* One application digest changed: RTMR1 no longer matches. */
        apps[1][0] ^= 1;
        n = 0;
        assert_int_equal(tdx_rtmr1_boot_events(gpt, (const uint8_t(*)[48]) apps, n_apps, model, &n,
                                               TDX_RTMR_EVENTS_MAX),
                         0);
        assert_int_equal(tdx_rtmrs_fold(model, n, &t), 0);
        assert_memory_not_equal(t.rtmr[1], g.q.rtmr[1], 48);
        gce_free(&g);
}

static void test_tdx_rtmr1_model_refuses_to_overflow_its_event_array(void **state)
{
        TdxRtmrEvent model[7];
        uint8_t gpt[48] = {}, apps[3][48] = {};
        size_t n = 0;

        /* 5 fixed events + 3 applications do not fit in 7. */
        assert_int_equal(tdx_rtmr1_boot_events(gpt, (const uint8_t(*)[48]) apps, 3, model, &n, 7),
                         -E2BIG);
        n = 0;
        assert_int_equal(tdx_rtmr1_boot_events(gpt, (const uint8_t(*)[48]) apps, 2, model, &n, 7),
                         0);
        assert_int_equal(n, 7);
}

static void test_tdx_fold_refuses_mr_index_0_and_5(void **state)
{
        TdxRtmrEvent e = { .mr_index = 0 };
        TdxRtmrs t;

        assert_int_equal(tdx_rtmrs_fold(&e, 1, &t), -EINVAL); /* MRTD: never extended */
        e.mr_index = 5;
        assert_int_equal(tdx_rtmrs_fold(&e, 1, &t), -EINVAL);
        e.mr_index = 4;
        assert_int_equal(tdx_rtmrs_fold(&e, 1, &t), 0);
        assert_int_equal(t.touched, 8);
}

/* ---- GPT event data ------------------------------------------------------------------------- */

/* CRC-32 (IEEE, reflected), table-driven: an implementation independent of the library's. */
static uint32_t crc32_table_driven(const uint8_t *p, size_t n)
{
        static uint32_t table[256];
        uint32_t c = 0xFFFFFFFFU;

        if (!table[1])
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t v = i;
                        for (int k = 0; k < 8; k++)
                                v = v & 1 ? 0xEDB88320U ^ (v >> 1) : v >> 1;
                        table[i] = v;
                }
        for (size_t i = 0; i < n; i++)
                c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
        return ~c;
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* A 64 KiB disk head: GPT header at LBA 1, 128 entries of 128 bytes at LBA 2, two of them used
 * (entries 0 and 5), the rest zero. */
static void make_gpt(uint8_t *disk, size_t size)
{
        uint8_t *h = disk + 512, *e = disk + 1024;

        memset(disk, 0, size);
        memcpy(h, "EFI PART", 8);
        put32(h + 8, 0x00010000);
        put32(h + 12, 92);
        h[24] = 1;            /* MyLBA */
        h[72] = 2;            /* PartitionEntryLBA */
        put32(h + 80, 128);   /* NumberOfPartitionEntries */
        put32(h + 84, 128);   /* SizeOfPartitionEntry */
        memset(e, 0xA1, 128); /* entry 0: type GUID A1.., the rest of it too */
        memset(e + 5 * 128, 0xB2, 16);
        put32(h + 88, crc32_table_driven(e, 128 * 128));
        put32(h + 16, crc32_table_driven(h, 92));
}

static void test_gpt_event_data_is_header_count_and_used_entries(void **state)
{
        static uint8_t disk[64 * 1024];
        uint8_t *data = NULL;
        size_t n = 0;
        Diag d;

        make_gpt(disk, sizeof(disk));
        if (tcg_gpt_event_data(disk, sizeof(disk), &data, &n, &d) < 0)
                fail_msg("%s", d.message);
        assert_int_equal(n, 92 + 8 + 2 * 128);
        assert_memory_equal(data, disk + 512, 92);
        assert_int_equal(data[92], 2); /* UINT64 NumberOfPartitions: the two used entries */
        for (int i = 93; i < 100; i++)
                assert_int_equal(data[i], 0);
        assert_memory_equal(data + 100, disk + 1024, 128);
        assert_memory_equal(data + 228, disk + 1024 + 5 * 128, 128);
        free(data);
}

static void expect_refused(uint8_t *disk, size_t size, const char *why)
{
        uint8_t *data = (uint8_t *) 0x1;
        size_t n = 7;
        Diag d;

        diag_clear(&d);
        assert_int_equal(tcg_gpt_event_data(disk, size, &data, &n, &d), -EBADMSG);
        assert_ptr_equal(data, (uint8_t *) 0x1); /* outputs untouched on failure */
        assert_int_equal(n, 7);
        if (!strstr(d.message, why))
                fail_msg("'%s' does not say '%s'", d.message, why);
}

static void test_gpt_event_data_refuses_what_firmware_would_not_measure_as_modelled(void **state)
{
        static uint8_t disk[64 * 1024];

        make_gpt(disk, sizeof(disk));
        expect_refused(disk, 1000, "shorter than two sectors");
        disk[512] = 'X';
        expect_refused(disk, sizeof(disk), "no \"EFI PART\" header");
        make_gpt(disk, sizeof(disk));
        disk[512 + 40] ^= 1; /* a header byte: its CRC no longer matches */
        expect_refused(disk, sizeof(disk), "primary header's CRC32");
        make_gpt(disk, sizeof(disk));
        disk[1024 + 200] ^= 1; /* an entry byte */
        expect_refused(disk, sizeof(disk), "entry array's CRC32");
        make_gpt(disk, sizeof(disk));
        expect_refused(disk, 1024 + 128 * 100, "run past the data read");
        make_gpt(disk, sizeof(disk));
        put32(disk + 512 + 84, 100); /* entry size not a multiple of 128 */
        put32(disk + 512 + 16, 0);
        put32(disk + 512 + 16, crc32_table_driven(disk + 512, 92));
        expect_refused(disk, sizeof(disk), "SizeOfPartitionEntry");
        make_gpt(disk, sizeof(disk));
        put32(disk + 512 + 80, 5000); /* too many entries */
        put32(disk + 512 + 16, 0);
        put32(disk + 512 + 16, crc32_table_driven(disk + 512, 92));
        expect_refused(disk, sizeof(disk), "NumberOfPartitionEntries");
        make_gpt(disk, sizeof(disk));
        disk[512 + 72] = 200; /* entries at LBA 200: past the 64 KiB given */
        put32(disk + 512 + 16, 0);
        put32(disk + 512 + 16, crc32_table_driven(disk + 512, 92));
        expect_refused(disk, sizeof(disk), "outside the disk's first megabyte");
}

/* ---- the measurements file's "tdx" section -------------------------------------------------- */

#define HEX96(c)                                                                                   \
        c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
                c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
                        c c c c c c c c c c

static const char file_head[] =
        "{\"version\": 2, \"measurementsVersion\": 7, \"image\": \"i\", \"imageVersion\": \"v\", "
        "\"created\": \"2026-01-01T00:00:00Z\", \"measurements\": {}";

static int parse_with_tdx(const char *tdx, MeasurementsFile **ret, Diag *d)
{
        char buf[2048];

        snprintf(buf, sizeof(buf), "%s, \"tdx\": %s}", file_head, tdx);
        diag_clear(d);
        return measurements_file_parse(buf, strlen(buf), "m.json", ret, d);
}

static void test_measurements_tdx_rtmrs_become_the_policys_only_values(void **state)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        TdxPolicy p;
        Diag d;

        assert_int_equal(
                parse_with_tdx("{\"rtmr1\": \"" HEX96("a") "\", \"rtmr3\": \"" HEX96("0") "\"}", &m,
                               &d),
                0);
        tdx_policy_defaults(&p);
        p.rtmr[0].n = 1; /* the owner's RTMR0 stays */
        memset(p.rtmr[0].v[0], 0x55, 48);
        assert_int_equal(measurements_file_tdx_rtmrs(m, &p), 2);
        assert_int_equal(p.rtmr[0].n, 1);
        assert_int_equal(p.rtmr[0].v[0][0], 0x55);
        assert_int_equal(p.rtmr[1].n, 1);
        assert_int_equal(p.rtmr[1].v[0][47], 0xAA);
        assert_int_equal(p.rtmr[2].n, 0); /* not in the file: any */
        assert_int_equal(p.rtmr[3].n, 1);
        assert_int_equal(p.rtmr[3].v[0][0], 0);
}

/* What config generate --tee tdx writes from the file reads back, through the policy parser,
 * as the same RTMRs. */
static void test_measurements_tdx_policy_json_reads_back_as_the_same_rtmrs(void **state)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        _cleanup_(json_decrefp) json_t *tdx = NULL;
        TdxPolicy p;
        Diag d;

        assert_int_equal(parse_with_tdx("{\"rtmr1\": \"" HEX96("c") "\", \"rtmr2\": \"" HEX96(
                                                "0") "\", \"rtmr3\": \"" HEX96("0") "\"}",
                                        &m, &d),
                         0);
        tdx = json_pack("{s:[s],s:[s]}", "mrTd", HEX96("1"), "rtmr1", HEX96("9"));
        assert_non_null(tdx);
        assert_int_equal(measurements_file_tdx_policy_json(m, tdx), 3);
        JsonCtx ctx = { "policy.json", "", &d };
        diag_clear(&d);
        if (tdx_policy_from_json(&ctx, tdx, &p) < 0)
                fail_msg("%s", d.message);
        assert_int_equal(p.rtmr[0].n, 0);
        for (int i = 1; i < 4; i++) {
                assert_int_equal(p.rtmr[i].n, 1); /* rtmr1 replaced, not appended */
                assert_memory_equal(p.rtmr[i].v[0], m->tdx_rtmr[i], 48);
        }
        assert_int_equal(p.mr_td.n, 1);
}

static void test_measurements_tdx_section_is_strict(void **state)
{
        MeasurementsFile *m = NULL;
        Diag d;

        assert_int_equal(parse_with_tdx("{}", &m, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "names no RTMR"));
        assert_int_equal(parse_with_tdx("{\"rtmr4\": \"" HEX96("a") "\"}", &m, &d), -EBADMSG);
        assert_int_equal(parse_with_tdx("{\"rtmr1\": \"abcd\"}", &m, &d), -EBADMSG);
        assert_int_equal(parse_with_tdx("{\"rtmr1\": 5}", &m, &d), -EBADMSG);
        assert_int_equal(parse_with_tdx("[]", &m, &d), -EBADMSG);
        assert_null(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_tdx_fold_of_the_gce_log_events_equals_the_replay_and_the_quote),
                cmocka_unit_test(
                        test_tdx_rtmr1_model_with_the_gce_boots_digests_gives_its_quotes_rtmr1),
                cmocka_unit_test(test_tdx_rtmr1_model_refuses_to_overflow_its_event_array),
                cmocka_unit_test(test_tdx_fold_refuses_mr_index_0_and_5),
                cmocka_unit_test(test_gpt_event_data_is_header_count_and_used_entries),
                cmocka_unit_test(
                        test_gpt_event_data_refuses_what_firmware_would_not_measure_as_modelled),
                cmocka_unit_test(test_measurements_tdx_rtmrs_become_the_policys_only_values),
                cmocka_unit_test(test_measurements_tdx_policy_json_reads_back_as_the_same_rtmrs),
                cmocka_unit_test(test_measurements_tdx_section_is_strict),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
