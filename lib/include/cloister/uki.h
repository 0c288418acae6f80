/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Offline prediction of the PCRs a unified kernel image (UKI) produces when UEFI firmware boots
 * it directly (\EFI\BOOT\BOOTX64.EFI, no boot loader in between). The modelled event sequence,
 * its sources and its limits are in docs/measured-boot.md ("UKI prediction"); the model is the
 * one proven against a real OVMF + swtpm boot in tests/integration/test_uki_boot.py:
 *
 *   PCR 4   firmware: EV_EFI_ACTION "Calling EFI Application from Boot Option", EV_SEPARATOR,
 *           Authenticode(UKI); systemd-stub's LoadImage of .linux: Authenticode(.linux)
 *   PCR 9   the kernel's EFI stub: LoadOptions (the stub's command line, UTF-16LE with its NUL),
 *           then the initrd it received (.initrd)
 *   PCR 11  systemd-stub: for each UKI section in its canonical order, the name with its NUL,
 *           then the contents
 *   PCR 8, 12, 13, 15  nothing: all zero
 *
 * The stub's version is read from its .sdmagic section; only versions this model was proven
 * against are accepted (UKI_STUB_MODELLED).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define UKI_STUB_MODELLED "254"
#define UKI_EVENTS_MAX    32
#define UKI_PCR_COUNT     24
#define UKI_CMDLINE_MAX   (64U * 1024U)

typedef struct UkiEvent {
        unsigned pcr;
        char description[48];
        uint8_t digest[32]; /* SHA-256 */
} UkiEvent;

typedef struct UkiPrediction {
        char stub_version[64];
        char *cmdline; /* as the stub hands it to the kernel (after its whitespace rules) */
        UkiEvent events[UKI_EVENTS_MAX];
        size_t n_events;
        bool predicted[UKI_PCR_COUNT];
        uint8_t pcrs[UKI_PCR_COUNT][32]; /* SHA-256 bank */
        /* The sections the stub hands on, as it sees them (VirtualSize bytes); they point into
         * the caller's buffer. Other banks and measurement registers are computed from these
         * (tdx_predict_uki_rtmrs()). */
        const uint8_t *linux_data, *initrd_data;
        size_t linux_size, initrd_size;
} UkiPrediction;

/* -EBADMSG malformed image, -EOPNOTSUPP a UKI outside the model (stub version, sections),
 * with the reason in d. ret->cmdline is allocated: free with uki_prediction_done(). */
int uki_predict(const uint8_t *data, size_t size, UkiPrediction *ret, Diag *d);
void uki_prediction_done(UkiPrediction *p);
