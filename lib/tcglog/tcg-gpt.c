/* SPDX-License-Identifier: Apache-2.0 */
/* EV_EFI_GPT_EVENT data from a disk's primary GPT (UEFI 2.10 section 5.3; TCG PC Client PFP
 * UEFI_GPT_DATA; edk2 SecurityPkg DxeTpm2MeasureBootLib, Tcg2MeasureGptTable()). */
#include <stdlib.h>
#include <string.h>

#include "cloister/reader.h"
#include "cloister/tcg-log.h"

#define SECTOR 512U

static int bad(Diag *d, const char *why)
{
        return diag_fail(d, -EBADMSG, "gpt", -1, "GPT: %s", why);
}

/* CRC-32 as UEFI uses it (IEEE 802.3, reflected, initial and final XOR 0xFFFFFFFF). */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
        uint32_t c = 0xFFFFFFFFU;

        for (size_t i = 0; i < n; i++) {
                c ^= p[i];
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0xEDB88320U & (0U - (c & 1U)));
        }
        return ~c;
}

int tcg_gpt_event_data(const uint8_t *disk, size_t size, uint8_t **ret, size_t *ret_size, Diag *d)
{
        static const uint8_t zero_guid[16] = {};
        uint32_t header_size, header_crc, n_entries, entry_size, entries_crc;
        uint64_t entries_lba, count = 0;
        const uint8_t *sig, *entries;
        size_t at;
        Reader r, h;
        uint8_t *out;

        r = reader_init(disk, size);
        if (reader_skip(&r, SECTOR) < 0 || reader_sub(&r, SECTOR, &h) < 0)
                return bad(d, "the disk is shorter than two sectors");
        if (reader_bytes(&h, 8, &sig) < 0 || memcmp(sig, "EFI PART", 8) != 0)
                return bad(d, "no \"EFI PART\" header at LBA 1 (512-byte sectors)");
        /* UEFI 2.10 table 5.5: Revision at 8, HeaderSize at 12, HeaderCRC32 at 16, ...,
         * PartitionEntryLBA at 72, NumberOfPartitionEntries at 80, SizeOfPartitionEntry at 84,
         * PartitionEntryArrayCRC32 at 88. */
        if (reader_skip(&h, 4) < 0 || reader_u32le(&h, &header_size) < 0 ||
            reader_u32le(&h, &header_crc) < 0 || reader_skip(&h, 72 - 20) < 0 ||
            reader_u64le(&h, &entries_lba) < 0 || reader_u32le(&h, &n_entries) < 0 ||
            reader_u32le(&h, &entry_size) < 0 || reader_u32le(&h, &entries_crc) < 0)
                return bad(d, "truncated header");
        if (header_size < TCG_GPT_HEADER_SIZE || header_size > SECTOR)
                return bad(d, "HeaderSize is not 92..512");
        {
                uint8_t copy[SECTOR];
                memcpy(copy, disk + SECTOR, header_size);
                memset(copy + 16, 0, 4); /* the CRC is computed with its own field zero */
                if (crc32_ieee(copy, header_size) != header_crc)
                        return bad(d, "the primary header's CRC32 does not match (firmware "
                                      "would use the backup header, which is not modelled)");
        }
        if (entry_size < 128 || entry_size > TCG_GPT_ENTRY_MAX || entry_size % 128 != 0)
                return bad(d, "SizeOfPartitionEntry is not a multiple of 128 up to 1024");
        if (n_entries == 0 || n_entries > TCG_GPT_ENTRIES_MAX)
                return bad(d, "NumberOfPartitionEntries is not 1..1024");
        if (entries_lba < 2 || entries_lba > size / SECTOR)
                return bad(d, "the partition entries lie outside the disk's first megabyte");
        r = reader_init(disk, size);
        if (reader_skip(&r, (size_t) entries_lba * SECTOR) < 0 ||
            reader_bytes(&r, (size_t) n_entries * entry_size, &entries) < 0)
                return bad(d, "the partition entries run past the data read");
        if (crc32_ieee(entries, (size_t) n_entries * entry_size) != entries_crc)
                return bad(d, "the partition entry array's CRC32 does not match");
        for (uint32_t i = 0; i < n_entries; i++)
                count += memcmp(entries + (size_t) i * entry_size, zero_guid, 16) != 0;

        out = malloc(TCG_GPT_HEADER_SIZE + 8 + count * entry_size);
        if (!out)
                return -ENOMEM;
        memcpy(out, disk + SECTOR, TCG_GPT_HEADER_SIZE); /* sizeof(EFI_PARTITION_TABLE_HEADER) */
        at = TCG_GPT_HEADER_SIZE;
        for (int k = 0; k < 8; k++)
                out[at++] = (uint8_t) (count >> (8 * k)); /* UINTN NumberOfPartitions, x64 */
        for (uint32_t i = 0; i < n_entries; i++) {
                const uint8_t *e = entries + (size_t) i * entry_size;
                if (memcmp(e, zero_guid, 16) == 0)
                        continue;
                memcpy(out + at, e, entry_size);
                at += entry_size;
        }
        *ret = out;
        *ret_size = at;
        return 0;
}
