/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json-result.h"
#include "cloister/log.h"
#include "cloister/tcg-log.h"
#include "cloister/verbs.h"
#include "measure.h"

static uint16_t arg_bank;

static int parse_options(int argc, char *argv[], const char **ret_log)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "bank", required_argument, NULL, 'b' },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hb:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister-measure eventlog %s LOG [--bank sha1|sha256|sha384|"
                               "sha512] [-o text|json]\n",
                               argv[0]);
                        return 0;
                case 'b':
                        arg_bank = tcg_alg_from_string(optarg);
                        if (arg_bank == 0)
                                return log_error_errno(-EUSAGE,
                                                       "--bank '%s': use sha1, sha256, sha384 or "
                                                       "sha512.",
                                                       optarg);
                        break;
                case 'o':
                        arg_output = output_format_from_string(optarg);
                        if (arg_output < 0)
                                return log_error_errno(-EUSAGE, "-o '%s': use text or json.",
                                                       optarg);
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (argc - optind != 1)
                return log_error_errno(-EUSAGE,
                                       "eventlog %s: expected exactly one LOG file. See "
                                       "--help.",
                                       argv[0]);
        *ret_log = argv[optind];
        return 1;
}

static int load(const char *path, uint8_t **ret_data, TcgLog **ret_log)
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size;
        Diag d;
        int r;

        r = read_full_file(path, TCG_LOG_SIZE_MAX, &data, &size);
        if (r == -EMSGSIZE)
                (void) log_error_errno(r, "%s: larger than the limit of %u bytes.", path,
                                       TCG_LOG_SIZE_MAX);
        else if (r < 0)
                (void) log_error_errno(r, "%s: cannot read: %m", path);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = tcg_log_parse(data, size, ret_log, &d);
        if (r < 0) {
                (void) log_error_errno(r, "%s: %s", path, d.message);
                return r;
        }
        *ret_data = TAKE_PTR(data);
        return 0;
}

/* Default bank: SHA-256 if the log has it, else its first. */
static uint16_t pick_bank(const TcgLog *log)
{
        if (arg_bank)
                return arg_bank;
        for (unsigned i = 0; i < log->n_algs; i++)
                if (log->algs[i].alg == 0x000B)
                        return 0x000B;
        return log->algs[0].alg;
}

static int eventlog_replay(int argc, char *argv[], void *userdata)
{
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        const char *path = NULL;
        TcgLogPcrs out;
        uint16_t bank;
        int r;

        r = parse_options(argc, argv, &path);
        if (r <= 0 || !path)
                return r < 0 ? r : 0;
        r = load(path, &data, &log);
        if (r < 0)
                return r;
        bank = pick_bank(log);
        r = tcg_log_replay(log, bank, &out);
        if (r == -ENOENT) {
                char banks[64] = "";
                for (unsigned i = 0; i < log->n_algs; i++)
                        (void) snprintf(banks + strlen(banks), sizeof(banks) - strlen(banks),
                                        "%s%s", i ? ", " : "",
                                        tcg_alg_to_string(log->algs[i].alg) ?: "unknown");
                return log_error_errno(r,
                                       "%s: the log has no %s bank; it has %s: pick one of those "
                                       "with --bank.",
                                       path, tcg_alg_to_string(bank) ?: "such",
                                       banks[0] ? banks : "none");
        }
        if (r < 0)
                return log_error_errno(r, "%s: an event lacks a %s digest: cannot replay.", path,
                                       tcg_alg_to_string(bank));

        if (arg_output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc =
                        result_new("cloister-measure eventlog replay");
                json_t *pcrs = json_object();

                if (!doc || json_object_set_new(doc, "pcrs", pcrs) < 0)
                        return log_oom();
                for (int i = 0; i < TCG_LOG_PCRS; i++) {
                        char key[4], hex[2 * TCG_LOG_DIGEST_MAX + 1];
                        if (!(out.touched & (1U << i)))
                                continue;
                        (void) snprintf(key, sizeof(key), "%d", i);
                        hex_encode_buf(out.values[i], out.size, hex, sizeof(hex));
                        (void) json_object_set_new(pcrs, key, json_string(hex));
                }
                if (json_object_set_new(doc, "log", json_string(path)) < 0 ||
                    json_object_set_new(doc, "bank", json_string(tcg_alg_to_string(bank))) < 0 ||
                    json_object_set_new(doc, "events", json_integer((json_int_t) log->n_events)) <
                            0 ||
                    result_print(doc) < 0)
                        return log_oom();
                return 0;
        }
        printf("bank %s, %zu events\n", tcg_alg_to_string(bank), log->n_events);
        for (int i = 0; i < TCG_LOG_PCRS; i++) {
                char hex[2 * TCG_LOG_DIGEST_MAX + 1];
                if (!(out.touched & (1U << i)))
                        continue;
                hex_encode_buf(out.values[i], out.size, hex, sizeof(hex));
                printf("PCR %2d: %s\n", i, hex);
        }
        return 0;
}

static int eventlog_show(int argc, char *argv[], void *userdata)
{
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(json_decrefp) json_t *events = NULL;
        const char *path = NULL;
        uint16_t bank;
        int r;

        r = parse_options(argc, argv, &path);
        if (r <= 0 || !path)
                return r < 0 ? r : 0;
        r = load(path, &data, &log);
        if (r < 0)
                return r;
        bank = pick_bank(log);
        if (arg_output == OUTPUT_JSON && !(events = json_array()))
                return log_oom();
        for (size_t i = 0; i < log->n_events; i++) {
                const TcgLogEvent *e = &log->events[i];
                char hex[2 * TCG_LOG_DIGEST_MAX + 1] = "-", desc[256];
                bool has_digest = false; /* none in this bank: "-" as text, null in JSON */

                for (unsigned j = 0; j < e->n_digests; j++)
                        if (e->digests[j].alg == bank) {
                                hex_encode_buf(e->digests[j].value, e->digests[j].size, hex,
                                               sizeof(hex));
                                has_digest = true;
                        }
                tcg_event_describe(e, desc, sizeof(desc));
                if (arg_output == OUTPUT_JSON) {
                        json_t *o = json_pack("{s:I,s:I,s:s,s:I,s:s?,s:s}", "number",
                                              (json_int_t) i, "pcr", (json_int_t) e->pcr, "type",
                                              tcg_event_type_to_string(e->type), "typeValue",
                                              (json_int_t) e->type, "digest",
                                              has_digest ? hex : NULL, "description", desc);
                        if (!o || json_array_append_new(events, o) < 0)
                                return log_oom();
                } else
                        printf("%4zu  PCR %2u  %-34s %s  %s\n", i, e->pcr,
                               tcg_event_type_to_string(e->type), hex, desc);
        }
        if (arg_output == OUTPUT_JSON) {
                _cleanup_(json_decrefp) json_t *doc = result_new("cloister-measure eventlog show");
                if (!doc || json_object_set_new(doc, "log", json_string(path)) < 0 ||
                    json_object_set_new(doc, "bank", json_string(tcg_alg_to_string(bank))) < 0 ||
                    json_object_set(doc, "events", events) < 0 || result_print(doc) < 0)
                        return log_oom();
        }
        return 0;
}

int verb_eventlog(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "replay", 1, VERB_ANY, eventlog_replay, "PCR values the log replays to" },
                { "show", 1, VERB_ANY, eventlog_show, "list the events readably" },
                {},
        };

        return verbs_dispatch("cloister-measure eventlog", argc - 1, argv + 1, verbs, userdata);
}
