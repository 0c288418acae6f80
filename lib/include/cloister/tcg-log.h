/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * TCG PC Client boot event logs (TCG PC Client Platform Firmware Profile, section 10): the
 * crypto-agile format (a legacy first record carrying "Spec ID Event03", then TCG_PCR_EVENT2
 * records with one digest per algorithm) and the legacy SHA-1-only format. Parsed from untrusted
 * bytes through the bounded Reader; replayed per bank.
 */

#include <stdbool.h>
#include <stdint.h>

#include "cloister/diag.h"
#include "cloister/macro.h"

#define TCG_LOG_SIZE_MAX       (4U * 1024U * 1024U)
#define TCG_LOG_EVENTS_MAX     16384U
#define TCG_LOG_EVENT_DATA_MAX (1024U * 1024U)
#define TCG_LOG_ALGS_MAX       8U
#define TCG_LOG_DIGEST_MAX     64U
#define TCG_LOG_PCRS           24

#define EV_NO_ACTION 0x00000003U
#define EV_SEPARATOR 0x00000004U

typedef struct TcgLogDigest {
        uint16_t alg;
        uint8_t size;
        uint8_t value[TCG_LOG_DIGEST_MAX];
} TcgLogDigest;

typedef struct TcgLogEvent {
        uint32_t pcr;
        uint32_t type;
        TcgLogDigest digests[TCG_LOG_ALGS_MAX];
        unsigned n_digests;
        const uint8_t *data; /* points into the parsed buffer */
        uint32_t data_size;
        size_t offset; /* byte offset of the record in the log */
} TcgLogEvent;

typedef struct TcgLog {
        bool crypto_agile;
        TcgLogDigest algs[TCG_LOG_ALGS_MAX]; /* from the Spec ID event (value unused) */
        unsigned n_algs;
        uint8_t startup_locality; /* from a StartupLocality event, else 0 */
        TcgLogEvent *events;
        size_t n_events;
} TcgLog;

/* data must outlive the log (events point into it). */
int tcg_log_parse(const uint8_t *data, size_t size, TcgLog **ret, Diag *d);
TcgLog *tcg_log_free(TcgLog *log);
DEFINE_TRIVIAL_CLEANUP_FUNC(TcgLog *, tcg_log_free);

typedef struct TcgLogPcrs {
        uint16_t alg;
        uint8_t size;
        uint32_t touched; /* PCRs at least one event extended */
        uint8_t values[TCG_LOG_PCRS][TCG_LOG_DIGEST_MAX];
} TcgLogPcrs;

/* Replays the log into the bank alg (TPM_ALG_* id). EV_NO_ACTION events are not extended;
 * PCR 0 starts at the startup locality. -ENOENT if the log has no such bank. */
int tcg_log_replay(const TcgLog *log, uint16_t alg, TcgLogPcrs *ret);

/* TPM_ALG id from "sha1", "sha256", "sha384", "sha512"; 0 if unknown. And back. */
uint16_t tcg_alg_from_string(const char *s);
const char *tcg_alg_to_string(uint16_t alg);

const char *tcg_event_type_to_string(uint32_t type);
/* A short readable description of the event's data (variable name, image, string...). */
void tcg_event_describe(const TcgLogEvent *e, char *buf, size_t size);

/*
 * The data of the EV_EFI_GPT_EVENT UEFI firmware logs (PCR 5) when it boots from a GPT disk:
 * UEFI_GPT_DATA (TCG PC Client PFP 10.4.5 / 9.4.5: the 92-byte partition table header, a UINT64
 * count, then every partition entry whose type GUID is not zero, SizeOfPartitionEntry bytes
 * each), built as edk2's DxeTpm2MeasureBootLib Tcg2MeasureGptTable() builds it from the primary
 * header. disk holds the disk's first bytes with 512-byte sectors (the header at byte 512, the
 * entries where it says, which must lie inside disk). Refused (-EBADMSG, the reason in d): no
 * "EFI PART" signature, a header CRC32 or entry-array CRC32 that does not match (the firmware
 * would fall back to the backup table, which this does not model), entries outside disk, an
 * entry size not a multiple of 128, more than TCG_GPT_ENTRIES_MAX entries. *ret is allocated.
 */
#define TCG_GPT_HEADER_SIZE 92U
#define TCG_GPT_ENTRIES_MAX 1024U
#define TCG_GPT_ENTRY_MAX   1024U
#define TCG_GPT_READ_MAX    (1024U * 1024U) /* how much of a disk a caller needs at most */
int tcg_gpt_event_data(const uint8_t *disk, size_t size, uint8_t **ret, size_t *ret_size, Diag *d);
