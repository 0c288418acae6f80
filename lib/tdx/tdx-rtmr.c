/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RTMR prediction: what a TD running TDVF (edk2 OvmfPkg/IntelTdx) measures into RTMR1..3 when
 * it boots a systemd-stub UKI directly from a GPT disk, in SHA-384, before the TD exists. The
 * model, its sources and what it leaves out are in docs/tdx.md ("RTMR prediction").
 *
 * The firmware maps TCG PCRs to CC measurement registers (UEFI 2.10 section 38.4.1,
 * EFI_CC_MEASUREMENT_PROTOCOL.MapPcrToMrIndex; edk2 TdxMeasurementMapPcrToMrIndex()): PCR 0 →
 * MRTD, PCR 1 and 7 → RTMR0, PCR 2..6 → RTMR1, PCR 8..15 → RTMR2. RTMR3 is not used by the
 * firmware.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/macro.h"
#include "cloister/pe.h"
#include "cloister/uki.h"
#include "tdx-internal.h"

#define MR_RTMR1 2 /* MR index of RTMR1: PCR 2..6 (firmware code, GPT, boot applications) */
#define MR_RTMR2 3 /* MR index of RTMR2: PCR 8..15 (OS loader and kernel measurements) */

/* EFI_CC_MEASUREMENT_PROTOCOL_GUID 96751a3d-72f4-41a6-a794-ed5d0e67ae6b (UEFI 2.10 38.2), as
 * it lies in memory: an EFI stub that uses the protocol carries these 16 bytes. */
static const uint8_t cc_protocol_guid[16] = { 0x3d, 0x1a, 0x75, 0x96, 0xf4, 0x72, 0xa6, 0x41,
                                              0xa7, 0x94, 0xed, 0x5d, 0x0e, 0x67, 0xae, 0x6b };

int tdx_rtmrs_fold(const TdxRtmrEvent *events, size_t n, TdxRtmrs *ret)
{
        TdxRtmrs out = {};

        for (size_t i = 0; i < n; i++) {
                uint32_t mr = events[i].mr_index;
                uint8_t next[48];

                if (mr < 1 || mr > 4)
                        return -EINVAL;
                IoVec parts[2] = { { out.rtmr[mr - 1], 48 }, { events[i].digest, 48 } };
                if (crypto_digest("SHA384", parts, 2, next, 48) < 0)
                        return -EIO;
                memcpy(out.rtmr[mr - 1], next, 48);
                out.touched |= 1U << (mr - 1);
        }
        out.n_events = n;
        *ret = out;
        return 0;
}

static int add(TdxRtmrEvent *events, size_t *n, size_t max, uint32_t mr, uint32_t type,
               const char *description, const void *data, size_t size, const uint8_t *digest)
{
        TdxRtmrEvent *e;

        if (*n >= max)
                return -E2BIG;
        e = &events[*n];
        *e = (TdxRtmrEvent){ .mr_index = mr, .type = type };
        snprintf(e->description, sizeof(e->description), "%s", description);
        if (digest)
                memcpy(e->digest, digest, 48);
        else if (crypto_digest("SHA384", &(IoVec){ data, size }, 1, e->digest, 48) < 0)
                return -EIO;
        (*n)++;
        return 0;
}

int tdx_rtmr1_boot_events(const uint8_t gpt_digest[static 48], const uint8_t (*app_digests)[48],
                          size_t n_apps, TdxRtmrEvent *events, size_t *n, size_t max)
{
        /* TCG PC Client PFP 10.4.4 action strings, without a NUL (edk2 TdMeasureAction()). */
        static const char calling[] = "Calling EFI Application from Boot Option",
                          ebs[] = "Exit Boot Services Invocation",
                          ebs_ok[] = "Exit Boot Services Returned with Success";
        static const uint8_t separator[4] = {};
        int r;

        /* TdTcg2Dxe OnReadyToBoot(): the boot attempt, then ONE separator into RTMR1 (the TPM
         * driver, Tcg2Dxe, measures one per PCR 0..6 instead). */
        r = add(events, n, max, MR_RTMR1, TDX_EV_EFI_ACTION, "EV_EFI_ACTION boot attempt", calling,
                strlen(calling), NULL);
        if (r >= 0)
                r = add(events, n, max, MR_RTMR1, TDX_EV_SEPARATOR, "EV_SEPARATOR", separator, 4,
                        NULL);
        /* DxeTpm2MeasureBootLib: the GPT of the disk the first application comes from (once per
         * boot), then each application's Authenticode digest as LoadImage() sees it. */
        if (r >= 0)
                r = add(events, n, max, MR_RTMR1, TDX_EV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT", NULL, 0,
                        gpt_digest);
        for (size_t i = 0; r >= 0 && i < n_apps; i++)
                r = add(events, n, max, MR_RTMR1, TDX_EV_EFI_BOOT_SERVICES_APPLICATION,
                        "EV_EFI_BOOT_SERVICES_APPLICATION", NULL, 0, app_digests[i]);
        /* OnExitBootServices(): both actions, PCR 5 → RTMR1. */
        if (r >= 0)
                r = add(events, n, max, MR_RTMR1, TDX_EV_EFI_ACTION,
                        "EV_EFI_ACTION exit boot services", ebs, strlen(ebs), NULL);
        if (r >= 0)
                r = add(events, n, max, MR_RTMR1, TDX_EV_EFI_ACTION,
                        "EV_EFI_ACTION exit boot services succeeded", ebs_ok, strlen(ebs_ok), NULL);
        return r;
}

static bool has_cc_protocol(const uint8_t *data, size_t size)
{
        return memmem(data, size, cc_protocol_guid, sizeof(cc_protocol_guid)) != NULL;
}

/* Whether the stub itself (every section but the payload it measures) uses the CC protocol.
 * systemd-stub 254 does not (Debian's 254.26 binary has no trace of the GUID); a later stub
 * that does would measure its sections into RTMR2, which this model does not cover. */
static int stub_has_cc_protocol(const uint8_t *uki, size_t size, bool *ret)
{
        static const char *const payload[] = { ".linux",  ".osrel", ".cmdline", ".initrd",
                                               ".splash", ".dtb",   ".uname",   ".sbat" };
        _cleanup_(freep) PeImage *pe = calloc(1, sizeof(PeImage));
        int r;

        if (!pe)
                return -ENOMEM;
        r = pe_parse(uki, size, pe, NULL);
        if (r < 0)
                return r;
        *ret = false;
        for (unsigned i = 0; i < pe->n_sections; i++) {
                const PeSection *s = &pe->sections[i];
                bool skip = false;

                for (size_t k = 0; k < ELEMENTSOF(payload); k++)
                        skip = skip || strncmp(s->name, payload[k], strlen(payload[k])) == 0;
                if (!skip && has_cc_protocol(uki + s->raw_offset, s->raw_size))
                        *ret = true;
        }
        return 0;
}

static int utf16_with_nul_sha384(const char *s, uint8_t ret[static 48])
{
        size_t n = strlen(s) + 1;
        _cleanup_(freep) uint8_t *buf = malloc(2 * n);

        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                buf[2 * i] = (uint8_t) s[i];
                buf[2 * i + 1] = 0;
        }
        return crypto_digest("SHA384", &(IoVec){ buf, 2 * n }, 1, ret, 48) < 0 ? -EIO : 0;
}

int tdx_predict_uki_rtmrs(const uint8_t *uki, size_t size, const uint8_t *gpt_data, size_t gpt_size,
                          TdxRtmrPrediction *ret, Diag *d)
{
        TdxRtmrPrediction p = {};
        UkiPrediction u;
        uint8_t gpt_digest[48], apps[2][48], digest[48];
        size_t n = 0;
        int r;

        /* The UKI model (systemd-stub 254, sections, command line) is uki_predict()'s: what it
         * refuses is refused here too. */
        r = uki_predict(uki, size, &u, d);
        if (r < 0)
                return r;
        {
                bool stub_cc = false;
                r = stub_has_cc_protocol(uki, size, &stub_cc);
                if (r >= 0 && stub_cc)
                        r = diag_fail(d, -EOPNOTSUPP, "uki-model", -1,
                                      "the UKI's stub uses EFI_CC_MEASUREMENT_PROTOCOL: its "
                                      "measurements into RTMR2 are not modelled");
                if (r < 0) {
                        uki_prediction_done(&u);
                        return r;
                }
        }
        if (crypto_digest("SHA384", &(IoVec){ gpt_data, gpt_size }, 1, gpt_digest, 48) < 0)
                r = -EIO;
        if (r >= 0)
                r = pe_authenticode(uki, size, "SHA384", apps[0], &n, d);
        if (r >= 0)
                r = pe_authenticode(u.linux_data, u.linux_size, "SHA384", apps[1], &n, d);
        /* RTMR1: the firmware's events, with the UKI and the kernel systemd-stub starts through
         * LoadImage() as the two applications. */
        if (r >= 0)
                r = tdx_rtmr1_boot_events(gpt_digest, (const uint8_t(*)[48]) apps, 2, p.events,
                                          &p.n_events, TDX_RTMR_EVENTS_MAX);
        /* RTMR2: systemd-stub 254 measures its sections (PCR 11) only through the TCG2 protocol,
         * which a TD without a vTPM does not have: nothing. The kernel's EFI stub measures its
         * LoadOptions and initrd (PCR 9) through EFI_CC_MEASUREMENT_PROTOCOL when TCG2 is absent
         * (Linux 6.9 and later): then both events, as PCR 9 has them, but in SHA-384. */
        p.kernel_cc = r >= 0 && has_cc_protocol(u.linux_data, u.linux_size);
        if (r >= 0 && p.kernel_cc) {
                r = utf16_with_nul_sha384(u.cmdline, digest);
                if (r >= 0)
                        r = add(p.events, &p.n_events, TDX_RTMR_EVENTS_MAX, MR_RTMR2,
                                TDX_EV_EVENT_TAG, "EV_EVENT_TAG LoadOptions", NULL, 0, digest);
                if (r >= 0)
                        r = add(p.events, &p.n_events, TDX_RTMR_EVENTS_MAX, MR_RTMR2,
                                TDX_EV_EVENT_TAG, "EV_EVENT_TAG Linux initrd", u.initrd_data,
                                u.initrd_size, NULL);
        }
        uki_prediction_done(&u);
        if (r >= 0)
                r = tdx_rtmrs_fold(p.events, p.n_events, &p.rtmrs);
        if (r < 0)
                return r;
        /* RTMR3: nothing in this boot extends it (nor Cloister, later): zero. */
        p.predicted[1] = p.predicted[2] = p.predicted[3] = true;
        *ret = p;
        return 0;
}
