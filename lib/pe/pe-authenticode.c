/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/pe.h"
#include "cloister/reader.h"

static int bad(Diag *d, const char *what)
{
        return diag_fail(d, -EBADMSG, "pe-format", -1, "PE file: %s", what);
}

static int cmp_offset(const void *a, const void *b)
{
        const PeSection *x = *(const PeSection *const *) a, *y = *(const PeSection *const *) b;
        return (x->raw_offset > y->raw_offset) - (x->raw_offset < y->raw_offset);
}

/* Pointers to the image's sections, sorted by file offset. */
static void sections_in_file_order(const PeImage *pe, const PeSection **order)
{
        for (unsigned i = 0; i < pe->n_sections; i++)
                order[i] = &pe->sections[i];
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sorted */
        qsort(order, pe->n_sections, sizeof(order[0]), cmp_offset);
}

int pe_parse(const uint8_t *data, size_t size, PeImage *ret, Diag *d)
{
        Reader r = reader_init(data, size);
        uint32_t lfanew, pe_magic, size_of_headers, n_dirs;
        uint16_t n_sections, opt_size, magic;
        size_t opt, dirs_at, table_at;
        const uint8_t *mz;

        if (size > PE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "pe-format", -1, "PE file larger than %u bytes",
                                 PE_SIZE_MAX);
        memset(ret, 0, sizeof(*ret));
        ret->data = data;
        ret->size = size;

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
        if (reader_u16le(&r, &ret->machine) < 0 || reader_u16le(&r, &n_sections) < 0 ||
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
        ret->checksum_at = opt + 64;
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
                ret->certdir_at = dirs_at + 4 * 8;
                r = reader_init(data, size);
                if (reader_skip(&r, ret->certdir_at) < 0 ||
                    reader_u32le(&r, &ret->cert_offset) < 0 ||
                    reader_u32le(&r, &ret->cert_size) < 0)
                        return bad(d, "truncated certificate table entry");
                if (ret->cert_size > 0 &&
                    ((size_t) ret->cert_offset > size || ret->cert_size > size - ret->cert_offset ||
                     (size_t) ret->cert_offset + ret->cert_size != size))
                        return bad(d, "certificate table is not the last thing in the file");
        }
        table_at = opt + opt_size;
        if (size_of_headers > size || table_at + (size_t) n_sections * 40 > size_of_headers)
                return bad(d, "headers larger than the file or section table outside them");
        ret->size_of_headers = size_of_headers;

        r = reader_init(data, size);
        if (reader_skip(&r, table_at) < 0)
                return bad(d, "truncated section table");
        for (unsigned i = 0; i < n_sections; i++) {
                PeSection *s = &ret->sections[i];
                const uint8_t *name;

                if (reader_bytes(&r, 8, &name) < 0 || reader_u32le(&r, &s->virtual_size) < 0 ||
                    reader_u32le(&r, &s->virtual_address) < 0 ||
                    reader_u32le(&r, &s->raw_size) < 0 || reader_u32le(&r, &s->raw_offset) < 0 ||
                    reader_skip(&r, 16) < 0)
                        return bad(d, "truncated section header");
                memcpy(s->name, name, 8);
                s->name[8] = '\0';
                if (s->raw_size > 0 &&
                    ((size_t) s->raw_offset > size || s->raw_size > size - s->raw_offset))
                        return bad(d, "a section runs past the end of the file");
        }
        ret->n_sections = n_sections;

        /* Section data in file order: after the headers, no overlaps (Authenticode would hash
         * bytes twice), and the certificate table after all of it. */
        {
                const PeSection *order[PE_SECTIONS_MAX] = { NULL };
                size_t prev_end = size_of_headers;

                sections_in_file_order(ret, order);
                for (unsigned i = 0; i < n_sections; i++) {
                        if (order[i]->raw_size == 0)
                                continue;
                        if (order[i]->raw_offset < prev_end)
                                return bad(d, "sections overlap each other or the headers");
                        prev_end = (size_t) order[i]->raw_offset + order[i]->raw_size;
                }
                if (size - ret->cert_size < prev_end)
                        return bad(d, "the certificate table overlaps a section");
        }
        return 0;
}

const PeSection *pe_find_section(const PeImage *pe, const char *name)
{
        for (unsigned i = 0; i < pe->n_sections; i++)
                if (strcmp(pe->sections[i].name, name) == 0)
                        return &pe->sections[i];
        return NULL;
}

int pe_authenticode(const uint8_t *data, size_t size, const char *md,
                    uint8_t ret[static PE_DIGEST_MAX], size_t *ret_size, Diag *d)
{
        PeImage *pe = NULL;
        const PeSection *order[PE_SECTIONS_MAX] = { NULL };
        IoVec parts[4 + PE_SECTIONS_MAX + 1];
        size_t n = 0, out_size, hashed, end;
        int r;

        if (strcmp(md, "SHA256") == 0)
                out_size = 32;
        else if (strcmp(md, "SHA384") == 0)
                out_size = 48;
        else
                return -EINVAL;
        pe = calloc(1, sizeof(*pe));
        if (!pe)
                return -ENOMEM;
        r = pe_parse(data, size, pe, d);
        if (r < 0)
                goto out;
        sections_in_file_order(pe, order);

        /* Headers without CheckSum and the certificate table entry. */
        parts[n++] = (IoVec){ data, pe->checksum_at };
        if (pe->certdir_at) {
                parts[n++] = (IoVec){ data + pe->checksum_at + 4,
                                      pe->certdir_at - (pe->checksum_at + 4) };
                parts[n++] = (IoVec){ data + pe->certdir_at + 8,
                                      pe->size_of_headers - (pe->certdir_at + 8) };
        } else
                parts[n++] = (IoVec){ data + pe->checksum_at + 4,
                                      pe->size_of_headers - (pe->checksum_at + 4) };
        /* Sections in file order (pe_parse() refused overlaps). */
        hashed = pe->size_of_headers;
        for (unsigned i = 0; i < pe->n_sections; i++) {
                if (order[i]->raw_size == 0)
                        continue;
                parts[n++] = (IoVec){ data + order[i]->raw_offset, order[i]->raw_size };
                hashed += order[i]->raw_size;
        }
        /* Trailing data: everything from SUM_OF_BYTES_HASHED (headers plus all section data,
         * however the sections were laid out) up to the certificate table. This is the
         * specification's rule, and edk2's and pesign's; a gap between sections thus shifts
         * which bytes are hashed, exactly as firmware does it. */
        end = size - pe->cert_size;
        if (end > hashed)
                parts[n++] = (IoVec){ data + hashed, end - hashed };
        r = crypto_digest(md, parts, n, ret, out_size);
        if (r < 0)
                r = diag_fail(d, r, "pe-digest", -1, "cannot compute the %s digest", md);
        else
                *ret_size = out_size;
out:
        free(pe);
        return r;
}
