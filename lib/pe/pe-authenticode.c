/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/pe.h"
#include "cloister/reader.h"

typedef struct Section {
        uint32_t offset, size; /* PointerToRawData, SizeOfRawData */
} Section;

static int cmp_section(const void *a, const void *b)
{
        const Section *x = a, *y = b;
        return (x->offset > y->offset) - (x->offset < y->offset);
}

static int bad(Diag *d, const char *what)
{
        return diag_fail(d, -EBADMSG, "pe-format", -1, "PE file: %s", what);
}

int pe_authenticode(const uint8_t *data, size_t size, const char *md,
                    uint8_t ret[static PE_DIGEST_MAX], size_t *ret_size, Diag *d)
{
        Reader r = reader_init(data, size);
        Section sections[PE_SECTIONS_MAX];
        IoVec parts[4 + PE_SECTIONS_MAX + 1];
        uint32_t lfanew, pe_magic, size_of_headers, n_dirs, cert_off = 0, cert_size = 0;
        uint16_t n_sections, opt_size, magic;
        size_t opt, checksum_at, certdir_at = 0, dirs_at, table_at, n = 0, hashed, out_size;
        const uint8_t *mz;

        if (strcmp(md, "SHA256") == 0)
                out_size = 32;
        else if (strcmp(md, "SHA384") == 0)
                out_size = 48;
        else
                return -EINVAL;
        if (size > PE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "pe-format", -1, "PE file larger than %u bytes",
                                 PE_SIZE_MAX);

        /* DOS header: "MZ", e_lfanew at 0x3C. */
        if (reader_bytes(&r, 2, &mz) < 0 || mz[0] != 'M' || mz[1] != 'Z')
                return bad(d, "no MZ header");
        r = reader_init(data, size);
        if (reader_skip(&r, 0x3C) < 0 || reader_u32le(&r, &lfanew) < 0)
                return bad(d, "truncated DOS header");
        r = reader_init(data, size);
        if (reader_skip(&r, lfanew) < 0 || reader_u32le(&r, &pe_magic) < 0 ||
            pe_magic != 0x00004550)
                return bad(d, "no PE signature at e_lfanew");
        /* COFF file header (PE/COFF 3.3). */
        if (reader_skip(&r, 2) < 0 || reader_u16le(&r, &n_sections) < 0 ||
            reader_skip(&r, 12) < 0 || reader_u16le(&r, &opt_size) < 0 || reader_skip(&r, 2) < 0)
                return bad(d, "truncated COFF header");
        if (n_sections == 0 || n_sections > PE_SECTIONS_MAX)
                return bad(d, "absurd number of sections");
        opt = reader_offset(&r);
        if (reader_u16le(&r, &magic) < 0)
                return bad(d, "truncated optional header");
        /* Optional header (3.4): CheckSum at 64; NumberOfRvaAndSizes and the data directories
         * at 92/96 (PE32) or 108/112 (PE32+); SizeOfHeaders at 60. */
        if (magic != 0x10b && magic != 0x20b)
                return bad(d, "unknown optional header magic");
        checksum_at = opt + 64;
        dirs_at = opt + (magic == 0x20b ? 112 : 96);
        r = reader_init(data, size);
        if (opt_size < (magic == 0x20b ? 112 : 96) || reader_skip(&r, opt + 60) < 0 ||
            reader_u32le(&r, &size_of_headers) < 0)
                return bad(d, "optional header too short");
        r = reader_init(data, size);
        if (reader_skip(&r, dirs_at - 4) < 0 || reader_u32le(&r, &n_dirs) < 0)
                return bad(d, "truncated optional header");
        if (n_dirs > 16 || dirs_at + (size_t) n_dirs * 8 > opt + opt_size)
                return bad(d, "data directories do not fit the optional header");
        if (n_dirs > 4) {
                /* Certificate table: directory 4; its "address" is a file offset. */
                certdir_at = dirs_at + 4 * 8;
                r = reader_init(data, size);
                if (reader_skip(&r, certdir_at) < 0 || reader_u32le(&r, &cert_off) < 0 ||
                    reader_u32le(&r, &cert_size) < 0)
                        return bad(d, "truncated certificate table entry");
                if (cert_size > 0 && ((size_t) cert_off > size || cert_size > size - cert_off ||
                                      (size_t) cert_off + cert_size != size))
                        return bad(d, "certificate table is not the last thing in the file");
        }
        table_at = opt + opt_size;
        if (size_of_headers > size || table_at + (size_t) n_sections * 40 > size_of_headers)
                return bad(d, "headers larger than the file or section table outside them");

        r = reader_init(data, size);
        if (reader_skip(&r, table_at) < 0)
                return bad(d, "truncated section table");
        for (unsigned i = 0; i < n_sections; i++) {
                if (reader_skip(&r, 16) < 0 || reader_u32le(&r, &sections[i].size) < 0 ||
                    reader_u32le(&r, &sections[i].offset) < 0 || reader_skip(&r, 16) < 0)
                        return bad(d, "truncated section header");
                if (sections[i].size > 0 && ((size_t) sections[i].offset > size ||
                                             sections[i].size > size - sections[i].offset))
                        return bad(d, "a section runs past the end of the file");
        }
        qsort(sections, n_sections, sizeof(Section), cmp_section);

        /* Headers without CheckSum and the certificate table entry. */
        parts[n++] = (IoVec){ data, checksum_at };
        if (certdir_at) {
                parts[n++] = (IoVec){ data + checksum_at + 4, certdir_at - (checksum_at + 4) };
                parts[n++] = (IoVec){ data + certdir_at + 8, size_of_headers - (certdir_at + 8) };
        } else
                parts[n++] = (IoVec){ data + checksum_at + 4, size_of_headers - (checksum_at + 4) };
        hashed = size_of_headers;
        /* Sections in file order; overlapping ones would be hashed twice: refuse. */
        for (unsigned i = 0, prev_end = size_of_headers; i < n_sections; i++) {
                if (sections[i].size == 0)
                        continue;
                if (sections[i].offset < prev_end)
                        return bad(d, "sections overlap each other or the headers");
                parts[n++] = (IoVec){ data + sections[i].offset, sections[i].size };
                hashed += sections[i].size;
                prev_end = sections[i].offset + sections[i].size;
        }
        /* Trailing data after the last section, the certificate table excluded. */
        {
                size_t end = size - cert_size, last = size_of_headers;
                for (unsigned i = 0; i < n_sections; i++)
                        if (sections[i].size > 0)
                                last = MAX(last, (size_t) sections[i].offset + sections[i].size);
                if (end > last)
                        parts[n++] = (IoVec){ data + last, end - last };
                else if (end < last)
                        return bad(d, "the certificate table overlaps a section");
        }
        (void) hashed;
        if (crypto_digest(md, parts, n, ret, out_size) < 0)
                return -EIO;
        *ret_size = out_size;
        return 0;
}
