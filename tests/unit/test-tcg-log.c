/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/tcg-log.h"

/* Real boot logs from real machines and their expected PCRs
 * (../shared/testdata/tpm/eventlogs/expected-pcrs.json). */
#define LOGS "tpm/eventlogs/"

static uint8_t *load(const char *rel, size_t *size)
{
        uint8_t *data;
        assert_int_equal(read_full_file(testdata_path(rel), TCG_LOG_SIZE_MAX, &data, size), 0);
        return data;
}

static void test_tcg_log_every_real_log_replays_to_expected_pcrs(void **state)
{
        _cleanup_(json_decrefp) json_t *expected = NULL;
        const char *file, *bank;
        json_t *banks, *pcrs;
        unsigned checked = 0;
        Diag d;

        diag_clear(&d);
        assert_int_equal(
                json_parse_file(testdata_path(LOGS "expected-pcrs.json"), 1 << 20, &expected, &d),
                0);
        json_object_foreach (expected, file, banks) {
                _cleanup_(tcg_log_freep) TcgLog *log = NULL;
                _cleanup_(freep) uint8_t *data = NULL;
                char rel[256];
                size_t size;

                (void) snprintf(rel, sizeof(rel), LOGS "%s", file);
                data = load(rel, &size);
                if (tcg_log_parse(data, size, &log, &d) < 0)
                        fail_msg("%s: %s", file, d.message);
                json_object_foreach (banks, bank, pcrs) {
                        TcgLogPcrs out;
                        const char *idx;
                        json_t *v;

                        assert_int_equal(tcg_log_replay(log, tcg_alg_from_string(bank), &out), 0);
                        json_object_foreach (pcrs, idx, v) {
                                uint8_t want[TCG_LOG_DIGEST_MAX];
                                int i = atoi(idx);

                                assert_int_equal(
                                        hex_decode_exact(json_string_value(v), want, out.size), 0);
                                if (memcmp(want, out.values[i], out.size) != 0)
                                        fail_msg("%s %s PCR %d does not replay", file, bank, i);
                                checked++;
                        }
                }
        }
        assert_true(checked > 100);
}

static void test_tcg_log_legacy_sha1_log_is_detected(void **state)
{
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        TcgLogPcrs out;
        size_t size;

        data = load(LOGS "debian-10.bin", &size);
        assert_int_equal(tcg_log_parse(data, size, &log, NULL), 0);
        assert_false(log->crypto_agile);
        assert_int_equal(tcg_log_replay(log, 0x000B, &out), -ENOENT);
}

static void test_tcg_log_startup_locality_3_seeds_pcr0(void **state)
{
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size;

        TcgLogPcrs out;

        /* The laptop's log starts PCR 0 at locality 3 (H-CRTM); replay must honour it, which the
         * expected-PCR test above also proves for PCR 0. */
        data = load(LOGS "glinux-alex.bin", &size);
        assert_int_equal(tcg_log_parse(data, size, &log, NULL), 0);
        assert_int_equal(log->startup_locality, 3);
        assert_int_equal(tcg_log_replay(log, 0x000B, &out), 0);
}

static void test_tcg_log_truncated_inside_a_record_fails_with_offset(void **state)
{
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(tcg_log_freep) TcgLog *full = NULL;
        size_t size;
        Diag d;

        data = load(LOGS "ubuntu-2104-no-secure-boot.bin", &size);
        assert_int_equal(tcg_log_parse(data, size, &full, NULL), 0);
        /* Every cut that is not a record boundary must fail; record boundaries parse a prefix. */
        for (size_t cut = 1; cut < size; cut++) {
                TcgLog *log = NULL;
                bool boundary = false;
                int r;

                for (size_t i = 1; i < full->n_events; i++)
                        if (full->events[i].offset == cut)
                                boundary = true;
                diag_clear(&d);
                r = tcg_log_parse(data, cut, &log, &d);
                if (boundary) {
                        assert_int_equal(r, 0);
                        log = tcg_log_free(log);
                } else {
                        assert_int_equal(r, -EBADMSG);
                        assert_null(log);
                        assert_non_null(strstr(d.message, "at byte"));
                }
        }
}

static void test_tcg_log_hostile_digest_count_and_unknown_alg_fail(void **state)
{
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        size_t size, off;
        TcgLog *bad = NULL;
        Diag d;

        data = load(LOGS "ubuntu-2104-no-secure-boot.bin", &size);
        assert_int_equal(tcg_log_parse(data, size, &log, NULL), 0);
        off = log->events[1].offset; /* first TCG_PCR_EVENT2 */

        data[off + 8] = 0xff; /* digest count */
        diag_clear(&d);
        assert_int_equal(tcg_log_parse(data, size, &bad, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "more digests"));
        assert_int_equal(d.index, 1);
        data[off + 8] = (uint8_t) log->events[1].n_digests;

        data[off + 12] = 0x99; /* first digest's algorithm id */
        data[off + 13] = 0x99;
        assert_int_equal(tcg_log_parse(data, size, &bad, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "does not declare"));
}

static void test_tcg_log_oversize_event_data_is_refused(void **state)
{
        /* A legacy record claiming 2 MiB of event data. */
        uint8_t rec[32 + 4] = {};
        TcgLog *log = NULL;

        rec[4] = 0x0d; /* EV_IPL */
        rec[28] = 0x00, rec[29] = 0x00, rec[30] = 0x20, rec[31] = 0x00;
        assert_int_equal(tcg_log_parse(rec, 32, &log, NULL), -EMSGSIZE);
}

static void test_tcg_log_describes_variables_and_separators(void **state)
{
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        bool var = false, sep = false;
        char buf[256];
        size_t size;

        data = load(LOGS "rhel8-uefi.bin", &size);
        assert_int_equal(tcg_log_parse(data, size, &log, NULL), 0);
        for (size_t i = 0; i < log->n_events; i++) {
                tcg_event_describe(&log->events[i], buf, sizeof(buf));
                if (strstr(buf, "8be4df61-93ca-11d2-aa0d-00e098032b8c:SecureBoot"))
                        var = true;
                if (strcmp(buf, "separator 00000000") == 0)
                        sep = true;
        }
        assert_true(var);
        assert_true(sep);
        assert_string_equal(tcg_event_type_to_string(0x80000003),
                            "EV_EFI_BOOT_SERVICES_APPLICATION");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tcg_log_every_real_log_replays_to_expected_pcrs),
                cmocka_unit_test(test_tcg_log_legacy_sha1_log_is_detected),
                cmocka_unit_test(test_tcg_log_startup_locality_3_seeds_pcr0),
                cmocka_unit_test(test_tcg_log_truncated_inside_a_record_fails_with_offset),
                cmocka_unit_test(test_tcg_log_hostile_digest_count_and_unknown_alg_fail),
                cmocka_unit_test(test_tcg_log_oversize_event_data_is_refused),
                cmocka_unit_test(test_tcg_log_describes_variables_and_separators),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
