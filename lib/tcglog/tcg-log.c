/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/reader.h"
#include "cloister/tcg-log.h"

#define SPEC_ID_SIGNATURE          "Spec ID Event03"
#define STARTUP_LOCALITY_SIGNATURE "StartupLocality"

static const struct {
        uint16_t alg;
        uint8_t size;
        const char *name, *md;
} algs[] = {
        { 0x0004, 20, "sha1", "SHA1" },
        { 0x000B, 32, "sha256", "SHA256" },
        { 0x000C, 48, "sha384", "SHA384" },
        { 0x000D, 64, "sha512", "SHA512" },
};

uint16_t tcg_alg_from_string(const char *s)
{
        for (size_t i = 0; s && i < ELEMENTSOF(algs); i++)
                if (strcmp(algs[i].name, s) == 0)
                        return algs[i].alg;
        return 0;
}

const char *tcg_alg_to_string(uint16_t alg)
{
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (algs[i].alg == alg)
                        return algs[i].name;
        return NULL;
}

static const char *alg_md(uint16_t alg)
{
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (algs[i].alg == alg)
                        return algs[i].md;
        return NULL;
}

TcgLog *tcg_log_free(TcgLog *log)
{
        if (!log)
                return NULL;
        free(log->events);
        free(log);
        return NULL;
}

static int fail(Diag *d, int error, size_t event, size_t offset, const char *what)
{
        (void) diag_fail(d, error, "event-log-format", (int) event,
                         "event log: event %zu at byte %zu: %s", event, offset, what);
        return error;
}

/* TCG_EfiSpecIDEvent (PFP 10.4.5.1): the algorithms and digest sizes of every later record. */
static int parse_spec_id(const uint8_t *data, uint32_t size, TcgLog *log, Diag *d)
{
        Reader r = reader_init(data, size);
        const uint8_t *sig;
        uint32_t platform_class, n;
        uint8_t minor, major, errata, uintn, vendor;

        if (reader_bytes(&r, 16, &sig) < 0 || reader_u32le(&r, &platform_class) < 0 ||
            reader_u8(&r, &minor) < 0 || reader_u8(&r, &major) < 0 || reader_u8(&r, &errata) < 0 ||
            reader_u8(&r, &uintn) < 0 || reader_u32le(&r, &n) < 0)
                return fail(d, -EBADMSG, 0, 0, "truncated Spec ID event");
        if (n == 0 || n > TCG_LOG_ALGS_MAX)
                return fail(d, -EBADMSG, 0, 0, "Spec ID event lists an absurd algorithm count");
        for (uint32_t i = 0; i < n; i++) {
                uint16_t alg, dsize;

                if (reader_u16le(&r, &alg) < 0 || reader_u16le(&r, &dsize) < 0)
                        return fail(d, -EBADMSG, 0, 0, "truncated Spec ID algorithm table");
                if (dsize == 0 || dsize > TCG_LOG_DIGEST_MAX)
                        return fail(d, -EBADMSG, 0, 0, "Spec ID event: absurd digest size");
                for (unsigned j = 0; j < log->n_algs; j++)
                        if (log->algs[j].alg == alg)
                                return fail(d, -EBADMSG, 0, 0,
                                            "Spec ID event: duplicate algorithm");
                /* A known algorithm must declare its real size: replay depends on it. */
                for (size_t k = 0; k < ELEMENTSOF(algs); k++)
                        if (algs[k].alg == alg && algs[k].size != dsize)
                                return fail(d, -EBADMSG, 0, 0,
                                            "Spec ID event: wrong digest size for a known "
                                            "algorithm");
                log->algs[log->n_algs].alg = alg;
                log->algs[log->n_algs].size = (uint8_t) dsize;
                log->n_algs++;
        }
        if (reader_u8(&r, &vendor) < 0 || reader_skip(&r, vendor) < 0)
                return fail(d, -EBADMSG, 0, 0, "truncated Spec ID vendor info");
        return 0;
}

static int add_event(TcgLog *log, size_t *allocated, TcgLogEvent **ret)
{
        if (log->n_events >= TCG_LOG_EVENTS_MAX)
                return -EMSGSIZE;
        if (log->n_events == *allocated) {
                size_t n = *allocated ? *allocated * 2 : 64;
                TcgLogEvent *e = reallocarray(log->events, n, sizeof(*e));
                if (!e)
                        return -ENOMEM;
                log->events = e;
                *allocated = n;
        }
        *ret = &log->events[log->n_events++];
        memset(*ret, 0, sizeof(**ret));
        return 0;
}

static int read_data(Reader *r, TcgLogEvent *e, size_t index, Diag *d)
{
        uint32_t size;
        const uint8_t *p;

        if (reader_u32le(r, &size) < 0)
                return fail(d, -EBADMSG, index, e->offset, "truncated event size");
        if (size > TCG_LOG_EVENT_DATA_MAX)
                return fail(d, -EMSGSIZE, index, e->offset, "event data larger than the limit");
        if (reader_bytes(r, size, &p) < 0)
                return fail(d, -EBADMSG, index, e->offset, "event data runs past the end");
        e->data = p;
        e->data_size = size;
        return 0;
}

static void note_startup_locality(TcgLog *log, const TcgLogEvent *e)
{
        /* PFP 10.4.5.3: EV_NO_ACTION "StartupLocality\0" + UINT8 locality, for PCR 0. */
        if (e->type == EV_NO_ACTION && e->pcr == 0 && e->data_size == 17 &&
            memcmp(e->data, STARTUP_LOCALITY_SIGNATURE, 16) == 0)
                log->startup_locality = e->data[16];
}

int tcg_log_parse(const uint8_t *data, size_t size, TcgLog **ret, Diag *d)
{
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        Reader r = reader_init(data, size);
        size_t allocated = 0;
        TcgLogEvent *e;
        int k;

        if (size > TCG_LOG_SIZE_MAX)
                return fail(d, -EMSGSIZE, 0, 0, "log larger than the limit");
        if (size == 0)
                return fail(d, -EBADMSG, 0, 0, "empty log");
        log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;

        /* The first record is always TCG_PCR_EVENT (SHA-1 layout, PFP 10.2.1). */
        while (reader_remaining(&r) > 0 && (log->n_events == 0 || !log->crypto_agile)) {
                size_t index = log->n_events;
                const uint8_t *digest;

                k = add_event(log, &allocated, &e);
                if (k < 0)
                        return fail(d, k, index, reader_offset(&r), "too many events");
                e->offset = reader_offset(&r);
                if (reader_u32le(&r, &e->pcr) < 0 || reader_u32le(&r, &e->type) < 0 ||
                    reader_bytes(&r, 20, &digest) < 0)
                        return fail(d, -EBADMSG, index, e->offset, "truncated record header");
                if (e->pcr >= TCG_LOG_PCRS)
                        return fail(d, -EBADMSG, index, e->offset, "PCR index above 23");
                k = read_data(&r, e, index, d);
                if (k < 0)
                        return k;
                e->n_digests = 1;
                e->digests[0].alg = 0x0004;
                e->digests[0].size = 20;
                memcpy(e->digests[0].value, digest, 20);
                if (index == 0 && e->type == EV_NO_ACTION && e->data_size >= 16 &&
                    memcmp(e->data, SPEC_ID_SIGNATURE, sizeof(SPEC_ID_SIGNATURE)) == 0) {
                        k = parse_spec_id(e->data, e->data_size, log, d);
                        if (k < 0)
                                return k;
                        log->crypto_agile = true;
                }
                note_startup_locality(log, e);
        }
        if (!log->crypto_agile) {
                log->n_algs = 1;
                log->algs[0].alg = 0x0004;
                log->algs[0].size = 20;
        }

        /* TCG_PCR_EVENT2 records (PFP 10.2.2). */
        while (log->crypto_agile && reader_remaining(&r) > 0) {
                size_t index = log->n_events;
                uint32_t count;

                k = add_event(log, &allocated, &e);
                if (k < 0)
                        return fail(d, k, index, reader_offset(&r), "too many events");
                e->offset = reader_offset(&r);
                if (reader_u32le(&r, &e->pcr) < 0 || reader_u32le(&r, &e->type) < 0 ||
                    reader_u32le(&r, &count) < 0)
                        return fail(d, -EBADMSG, index, e->offset, "truncated record header");
                if (e->pcr >= TCG_LOG_PCRS)
                        return fail(d, -EBADMSG, index, e->offset, "PCR index above 23");
                if (count > log->n_algs)
                        return fail(d, -EBADMSG, index, e->offset,
                                    "more digests than the Spec ID event declares");
                for (uint32_t i = 0; i < count; i++) {
                        const TcgLogDigest *spec = NULL;
                        const uint8_t *v;
                        uint16_t alg;

                        if (reader_u16le(&r, &alg) < 0)
                                return fail(d, -EBADMSG, index, e->offset, "truncated digest");
                        for (unsigned j = 0; j < log->n_algs; j++)
                                if (log->algs[j].alg == alg)
                                        spec = &log->algs[j];
                        if (!spec)
                                return fail(d, -EBADMSG, index, e->offset,
                                            "digest of an algorithm the Spec ID event does not "
                                            "declare");
                        if (reader_bytes(&r, spec->size, &v) < 0)
                                return fail(d, -EBADMSG, index, e->offset, "truncated digest");
                        e->digests[i].alg = alg;
                        e->digests[i].size = spec->size;
                        memcpy(e->digests[i].value, v, spec->size);
                }
                e->n_digests = count;
                k = read_data(&r, e, index, d);
                if (k < 0)
                        return k;
                note_startup_locality(log, e);
        }

        *ret = TAKE_PTR(log);
        return 0;
}

int tcg_log_replay(const TcgLog *log, uint16_t alg, TcgLogPcrs *ret)
{
        const char *md = alg_md(alg);
        TcgLogPcrs out = { .alg = alg };
        bool have = false;

        for (unsigned i = 0; i < log->n_algs; i++)
                if (log->algs[i].alg == alg)
                        have = true, out.size = log->algs[i].size;
        if (!have || !md)
                return -ENOENT;
        out.values[0][out.size - 1] = log->startup_locality;

        for (size_t i = 0; i < log->n_events; i++) {
                const TcgLogEvent *e = &log->events[i];
                const TcgLogDigest *dg = NULL;

                if (e->type == EV_NO_ACTION)
                        continue;
                for (unsigned j = 0; j < e->n_digests; j++)
                        if (e->digests[j].alg == alg)
                                dg = &e->digests[j];
                if (!dg)
                        return -EBADMSG; /* an extended event without this bank's digest */
                const IoVec parts[] = { { out.values[e->pcr], out.size }, { dg->value, dg->size } };
                if (crypto_digest(md, parts, 2, out.values[e->pcr], out.size) < 0)
                        return -EIO;
                out.touched |= 1U << e->pcr;
        }
        *ret = out;
        return 0;
}

const char *tcg_event_type_to_string(uint32_t type)
{
        static const char *const base[] = {
                "EV_PREBOOT_CERT",
                "EV_POST_CODE",
                "EV_UNUSED",
                "EV_NO_ACTION",
                "EV_SEPARATOR",
                "EV_ACTION",
                "EV_EVENT_TAG",
                "EV_S_CRTM_CONTENTS",
                "EV_S_CRTM_VERSION",
                "EV_CPU_MICROCODE",
                "EV_PLATFORM_CONFIG_FLAGS",
                "EV_TABLE_OF_DEVICES",
                "EV_COMPACT_HASH",
                "EV_IPL",
                "EV_IPL_PARTITION_DATA",
                "EV_NONHOST_CODE",
                "EV_NONHOST_CONFIG",
                "EV_NONHOST_INFO",
                "EV_OMIT_BOOT_DEVICE_EVENTS",
        };
        static const struct {
                uint32_t type;
                const char *name;
        } efi[] = {
                { 0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG" },
                { 0x80000002, "EV_EFI_VARIABLE_BOOT" },
                { 0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION" },
                { 0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER" },
                { 0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER" },
                { 0x80000006, "EV_EFI_GPT_EVENT" },
                { 0x80000007, "EV_EFI_ACTION" },
                { 0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB" },
                { 0x80000009, "EV_EFI_HANDOFF_TABLES" },
                { 0x8000000A, "EV_EFI_PLATFORM_FIRMWARE_BLOB2" },
                { 0x8000000B, "EV_EFI_HANDOFF_TABLES2" },
                { 0x8000000C, "EV_EFI_VARIABLE_BOOT2" },
                { 0x80000010, "EV_EFI_HCRTM_EVENT" },
                { 0x800000E0, "EV_EFI_VARIABLE_AUTHORITY" },
                { 0x800000E1, "EV_EFI_SPDM_FIRMWARE_BLOB" },
                { 0x800000E2, "EV_EFI_SPDM_FIRMWARE_CONFIG" },
        };

        if (type < ELEMENTSOF(base))
                return base[type];
        for (size_t i = 0; i < ELEMENTSOF(efi); i++)
                if (efi[i].type == type)
                        return efi[i].name;
        return "EV_UNKNOWN";
}

/* Printable ASCII of at most max bytes; other bytes become '.'. UTF-16LE text (firmware
 * version strings) is shown by its low bytes. */
static void printable(const uint8_t *p, size_t n, size_t max, char *out, size_t size)
{
        size_t o = 0;
        bool utf16 = n >= 4 && n % 2 == 0;

        for (size_t i = 1; utf16 && i < n; i += 2)
                utf16 = p[i] == 0;
        if (utf16) {
                for (size_t i = 0; i + 1 < n && i / 2 < max && o + 1 < size; i += 2) {
                        if (p[i] == 0)
                                break;
                        out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char) p[i] : '.';
                }
                out[o] = 0;
                return;
        }

        for (size_t i = 0; i < n && i < max && o + 1 < size; i++) {
                if (p[i] == 0 && i + 1 == n)
                        break;
                out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char) p[i] : '.';
        }
        out[o] = 0;
}

static void describe_variable(const TcgLogEvent *e, char *buf, size_t size)
{
        /* UEFI_VARIABLE_DATA (PFP 10.4.3): GUID, name length (UTF-16 chars), data length, name. */
        Reader r = reader_init(e->data, e->data_size);
        const uint8_t *guid, *name;
        uint64_t name_len, data_len;
        char ascii[65];
        size_t o = 0;

        if (reader_bytes(&r, 16, &guid) < 0 || reader_u64le(&r, &name_len) < 0 ||
            reader_u64le(&r, &data_len) < 0 || name_len > 1024 ||
            reader_bytes(&r, (size_t) name_len * 2, &name) < 0) {
                (void) snprintf(buf, size, "(malformed UEFI_VARIABLE_DATA)");
                return;
        }
        for (uint64_t i = 0; i < name_len && o + 1 < sizeof(ascii); i++) {
                uint16_t c = (uint16_t) (name[2 * i] | name[2 * i + 1] << 8);
                ascii[o++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
        }
        ascii[o] = 0;
        (void) snprintf(
                buf, size, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x:%s (%llu bytes)",
                (unsigned) (guid[0] | guid[1] << 8 | guid[2] << 16 | (uint32_t) guid[3] << 24),
                (unsigned) (guid[4] | guid[5] << 8), (unsigned) (guid[6] | guid[7] << 8), guid[8],
                guid[9], guid[10], guid[11], guid[12], guid[13], guid[14], guid[15], ascii,
                (unsigned long long) data_len);
}

void tcg_event_describe(const TcgLogEvent *e, char *buf, size_t size)
{
        char s[80];

        buf[0] = 0;
        switch (e->type) {
        case 0x80000001:
        case 0x80000002:
        case 0x8000000C:
        case 0x800000E0:
                describe_variable(e, buf, size);
                return;
        case 0x80000003:
        case 0x80000004:
        case 0x80000005: {
                /* UEFI_IMAGE_LOAD_EVENT (PFP 10.4.4) */
                Reader r = reader_init(e->data, e->data_size);
                uint64_t loc, len, link, dp;
                if (reader_u64le(&r, &loc) < 0 || reader_u64le(&r, &len) < 0 ||
                    reader_u64le(&r, &link) < 0 || reader_u64le(&r, &dp) < 0)
                        (void) snprintf(buf, size, "(malformed UEFI_IMAGE_LOAD_EVENT)");
                else
                        (void) snprintf(buf, size,
                                        "image at 0x%llx, %llu bytes, device path %llu bytes",
                                        (unsigned long long) loc, (unsigned long long) len,
                                        (unsigned long long) dp);
                return;
        }
        case EV_SEPARATOR:
                if (e->data_size == 4)
                        (void) snprintf(buf, size, "separator %02x%02x%02x%02x", e->data[0],
                                        e->data[1], e->data[2], e->data[3]);
                else
                        (void) snprintf(buf, size, "separator (%u bytes)", e->data_size);
                return;
        default:
                break;
        }
        if (e->data_size == 0)
                return;
        printable(e->data, e->data_size, 64, s, sizeof(s));
        (void) snprintf(buf, size, "%s%s", s, e->data_size > 64 ? "..." : "");
}
