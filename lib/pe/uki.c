/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/macro.h"
#include "cloister/pe.h"
#include "cloister/uki.h"

/* systemd-stub 254's canonical measurement order (src/fundamental/tpm-pcr.h, UnifiedSection):
 * .pcrsig is never measured; .pcrsig and .pcrpkey also make the stub synthesise initrd files,
 * which this model does not cover, so both are refused. */
static const char *const measured_sections[] = {
        ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".uname", ".sbat",
};
static const char *const refused_sections[] = { ".pcrsig", ".pcrpkey" };

#define PCR_FIRMWARE_APPS 4
#define PCR_KERNEL_STUB   9
#define PCR_UKI_SECTIONS  11

#define outside(d, ...) diag_fail(d, -EOPNOTSUPP, "uki-model", -1, __VA_ARGS__)

static int add_event(UkiPrediction *p, unsigned pcr, const char *description, const void *data,
                     size_t size, const uint8_t *digest)
{
        UkiEvent *e;

        if (p->n_events >= UKI_EVENTS_MAX)
                return -E2BIG;
        e = &p->events[p->n_events++];
        e->pcr = pcr;
        snprintf(e->description, sizeof(e->description), "%s", description);
        if (digest)
                memcpy(e->digest, digest, 32);
        else if (crypto_digest("SHA256", &(IoVec){ data, size }, 1, e->digest, 32) < 0)
                return -EIO;
        return 0;
}

/* A section as the stub sees it in memory: VirtualSize bytes. Zero-filled tails (VirtualSize >
 * SizeOfRawData) are outside the model. */
static int section_bytes(const PeImage *pe, const PeSection *s, const uint8_t **ret,
                         size_t *ret_size, Diag *d)
{
        if (s->virtual_size == 0)
                return outside(d, "UKI section %s is empty", s->name);
        if (s->virtual_size > s->raw_size)
                return outside(d, "UKI section %s is larger in memory than in the file", s->name);
        *ret = pe->data + s->raw_offset;
        *ret_size = s->virtual_size;
        return 0;
}

static int stub_version(const PeImage *pe, char *buf, size_t size, Diag *d)
{
        static const char prefix[] = "#### LoaderInfo: systemd-stub ";
        const PeSection *s = pe_find_section(pe, ".sdmagic");
        const uint8_t *data = NULL;
        size_t n = 0, len = 0;

        if (!s || section_bytes(pe, s, &data, &n, NULL) < 0 || n < sizeof(prefix) - 1 ||
            memcmp(data, prefix, sizeof(prefix) - 1) != 0)
                return outside(d, "%s: no systemd-stub .sdmagic section (not a systemd UKI)",
                               "UKI");
        data += sizeof(prefix) - 1;
        n -= sizeof(prefix) - 1;
        while (len < n && len + 1 < size && data[len] != ' ' && data[len] > 0x20 &&
               data[len] < 0x7f)
                len++;
        memcpy(buf, data, len);
        buf[len] = '\0';
        return 0;
}

static bool shall_be_whitespace(uint8_t c)
{
        return c <= 0x20 || c == 0x7f; /* systemd's mangle_stub_cmdline(): controls + space */
}

/* The .cmdline bytes as systemd-stub 254 hands them to the kernel: read up to the first NUL,
 * leading whitespace dropped, inner control characters turned into spaces, trailing whitespace
 * chopped (mangle_stub_cmdline()). ASCII only: the UTF-8 to UCS-2 conversion is not modelled. */
static int stub_cmdline(const uint8_t *data, size_t size, char **ret, Diag *d)
{
        size_t i = 0, n = 0, last = 0;
        char *out;

        if (size > UKI_CMDLINE_MAX)
                return outside(d, "%s: the command line is longer than 64 KiB", ".cmdline");
        out = malloc(size + 1);
        if (!out)
                return -ENOMEM;
        while (i < size && data[i] != 0 && shall_be_whitespace(data[i]))
                i++;
        for (; i < size && data[i] != 0; i++) {
                if (data[i] >= 0x80) {
                        free(out);
                        return outside(d, "%s: the command line has non-ASCII bytes", ".cmdline");
                }
                if (shall_be_whitespace(data[i]))
                        out[n++] = ' ';
                else {
                        out[n++] = (char) data[i];
                        last = n;
                }
        }
        out[last] = '\0';
        if (last == 0) {
                free(out);
                return outside(d, "%s: the command line is empty", ".cmdline");
        }
        *ret = out;
        return 0;
}

static int utf16_digest(const char *s, uint8_t ret[static 32])
{
        size_t n = strlen(s) + 1;
        uint8_t *buf = malloc(2 * n);
        int r;

        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                buf[2 * i] = (uint8_t) s[i];
                buf[2 * i + 1] = 0;
        }
        r = crypto_digest("SHA256", &(IoVec){ buf, 2 * n }, 1, ret, 32) < 0 ? -EIO : 0;
        free(buf);
        return r;
}

static void replay(UkiPrediction *p)
{
        static const unsigned zero_pcrs[] = { 8, 12, 13, 15 };

        memset(p->pcrs, 0, sizeof(p->pcrs));
        for (size_t i = 0; i < p->n_events; i++) {
                uint8_t *pcr = p->pcrs[p->events[i].pcr];
                IoVec parts[2] = { { pcr, 32 }, { p->events[i].digest, 32 } };
                uint8_t next[32];

                (void) crypto_digest("SHA256", parts, 2, next, 32);
                memcpy(pcr, next, 32);
                p->predicted[p->events[i].pcr] = true;
        }
        for (size_t i = 0; i < ELEMENTSOF(zero_pcrs); i++)
                p->predicted[zero_pcrs[i]] = true;
}

/* systemd-stub 254 finds a section by prefix (pe.c locate_sections(): memcmp over the length of
 * the wanted name) and the last match wins: ".linuxX" counts as ".linux". */
static bool stub_name_match(const PeSection *s, const char *name)
{
        return strncmp(s->name, name, strlen(name)) == 0;
}

static int count_sections(const PeImage *pe, const char *name)
{
        int n = 0;
        for (unsigned i = 0; i < pe->n_sections; i++)
                n += stub_name_match(&pe->sections[i], name);
        return n;
}

/* The section the stub uses for name (callers first made sure there is at most one). */
static const PeSection *stub_section(const PeImage *pe, const char *name)
{
        const PeSection *found = NULL;
        for (unsigned i = 0; i < pe->n_sections; i++)
                if (stub_name_match(&pe->sections[i], name))
                        found = &pe->sections[i];
        return found;
}

int uki_predict(const uint8_t *data, size_t size, UkiPrediction *ret, Diag *d)
{
        static const char calling[] = "Calling EFI Application from Boot Option";
        static const uint8_t separator[4] = { 0 };
        _cleanup_(freep) PeImage *pe = calloc(1, sizeof(PeImage));
        UkiPrediction p = {};
        const uint8_t *bytes;
        uint8_t digest[PE_DIGEST_MAX];
        char name[16];
        size_t n;
        int r;

        if (!pe)
                return -ENOMEM;
        r = pe_parse(data, size, pe, d);
        if (r < 0)
                return r;
        r = stub_version(pe, p.stub_version, sizeof(p.stub_version), d);
        if (r < 0)
                return r;
        if (strncmp(p.stub_version, UKI_STUB_MODELLED ".", strlen(UKI_STUB_MODELLED) + 1) != 0 &&
            strcmp(p.stub_version, UKI_STUB_MODELLED) != 0)
                return diag_fail(d, -EOPNOTSUPP, "uki-model", -1,
                                 "UKI stub is systemd-stub %s; the prediction models systemd-stub "
                                 "%s only (see docs/measured-boot.md)",
                                 p.stub_version, UKI_STUB_MODELLED);
        if (pe->machine != 0x8664)
                return diag_fail(d, -EOPNOTSUPP, "uki-model", -1,
                                 "UKI is for PE machine type 0x%04x, not x86-64 (0x8664): the "
                                 "model covers \\EFI\\BOOT\\BOOTX64.EFI only",
                                 pe->machine);
        for (size_t i = 0; i < ELEMENTSOF(refused_sections); i++)
                if (stub_section(pe, refused_sections[i]))
                        return outside(d, "UKI has a %s section: its effects are not modelled",
                                       refused_sections[i]);
        for (size_t i = 0; i < ELEMENTSOF(measured_sections); i++)
                if (count_sections(pe, measured_sections[i]) > 1)
                        return outside(d,
                                       "UKI has more than one section named %s or starting "
                                       "with it: refused as ambiguous",
                                       measured_sections[i]);
        /* A UKI that leaves its command line or initrd to whoever boots it is not predictable. */
        if (!stub_section(pe, ".linux") || !stub_section(pe, ".cmdline") ||
            !stub_section(pe, ".initrd"))
                return outside(d, "%s: a UKI needs .linux, .cmdline and .initrd sections", "UKI");

        /* PCR 4, firmware (edk2 DxeTpm2MeasureBootLib and the boot manager): the boot attempt,
         * the separator closing the pre-OS phase, then the UKI itself. */
        r = add_event(&p, PCR_FIRMWARE_APPS, "EV_EFI_ACTION boot attempt", calling, strlen(calling),
                      NULL);
        if (r >= 0)
                r = add_event(&p, PCR_FIRMWARE_APPS, "EV_SEPARATOR", separator, 4, NULL);
        if (r < 0)
                goto fail;
        r = pe_authenticode(data, size, "SHA256", digest, &n, d);
        if (r < 0)
                goto fail;
        r = add_event(&p, PCR_FIRMWARE_APPS, "EV_EFI_BOOT_SERVICES_APPLICATION UKI", NULL, 0,
                      digest);
        if (r < 0)
                goto fail;

        /* PCR 11, systemd-stub: name (with NUL) and contents of each section, canonical order. */
        for (size_t i = 0; i < ELEMENTSOF(measured_sections); i++) {
                const PeSection *s = stub_section(pe, measured_sections[i]);
                if (!s)
                        continue;
                r = section_bytes(pe, s, &bytes, &n, d);
                if (r < 0)
                        goto fail;
                r = add_event(&p, PCR_UKI_SECTIONS, s->name, s->name, strlen(s->name) + 1, NULL);
                if (r >= 0) {
                        snprintf(name, sizeof(name), "%s data", s->name);
                        r = add_event(&p, PCR_UKI_SECTIONS, name, bytes, n, NULL);
                }
                if (r < 0)
                        goto fail;
        }

        /* PCR 4 again: the stub starts .linux through the firmware's LoadImage. */
        r = section_bytes(pe, stub_section(pe, ".linux"), &bytes, &n, d);
        if (r < 0)
                goto fail;
        p.linux_data = bytes;
        p.linux_size = n;
        {
                Diag kd;
                diag_clear(&kd);
                r = pe_authenticode(bytes, n, "SHA256", digest, &n, &kd);
                if (r < 0) {
                        diag_fail(d, r, "uki-model", -1, "the kernel in .linux: %s",
                                  kd.message[0] ? kd.message : strerror(-r));
                        goto fail;
                }
        }
        r = add_event(&p, PCR_FIRMWARE_APPS, "EV_EFI_BOOT_SERVICES_APPLICATION .linux", NULL, 0,
                      digest);
        if (r < 0)
                goto fail;

        /* PCR 9, the kernel's EFI stub (drivers/firmware/efi/libstub): LoadOptions, then the
         * initrd received through LINUX_EFI_INITRD_MEDIA_GUID. */
        r = section_bytes(pe, stub_section(pe, ".cmdline"), &bytes, &n, d);
        if (r >= 0)
                r = stub_cmdline(bytes, n, &p.cmdline, d);
        if (r >= 0)
                r = utf16_digest(p.cmdline, digest);
        if (r >= 0)
                r = add_event(&p, PCR_KERNEL_STUB, "EV_EVENT_TAG LoadOptions", NULL, 0, digest);
        if (r >= 0)
                r = section_bytes(pe, stub_section(pe, ".initrd"), &bytes, &n, d);
        if (r >= 0) {
                p.initrd_data = bytes;
                p.initrd_size = n;
                r = add_event(&p, PCR_KERNEL_STUB, "EV_EVENT_TAG Linux initrd", bytes, n, NULL);
        }
        if (r < 0)
                goto fail;

        replay(&p);
        *ret = p;
        return 0;
fail:
        uki_prediction_done(&p);
        return r;
}

void uki_prediction_done(UkiPrediction *p)
{
        free(p->cmdline);
        p->cmdline = NULL;
}
