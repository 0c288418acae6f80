/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/log.h"
#include "cloister/tpm-device.h"

void vtpm_issue_config_defaults(VtpmIssueConfig *c)
{
        *c = (VtpmIssueConfig){
                .pcr_mask = 0xFFFF,
                .event_log = VTPM_EVENT_LOG_DEFAULT,
                .include_ek = false,
        };
}

int attest_vtpm_issue(TpmDevice *tpm, const VtpmIssueConfig *config,
                      const uint8_t binding[static ATTEST_BINDING_SIZE], Evidence **ret, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_QEMU_VTPM);
        VtpmIssueConfig defaults;
        TpmDeviceQuote q = {};
        int r;

        if (!config) {
                vtpm_issue_config_defaults(&defaults);
                config = &defaults;
        }
        if (!e)
                return -ENOMEM;
        r = tpm_device_quote(tpm, config->pcr_mask, binding, ATTEST_BINDING_SIZE, &q);
        if (r < 0)
                return diag_fail(d, r, "tpm-quote", -1, "the TPM could not quote: %s",
                                 strerror(-r));
        e->has_tpm = true;
        /* Ownership of the three buffers moves into the evidence. */
        e->tpm.ak_public.data = q.ak_public;
        e->tpm.ak_public.size = q.ak_public_size;
        e->tpm.quote.data = q.attest;
        e->tpm.quote.size = q.attest_size;
        e->tpm.signature.data = q.signature;
        e->tpm.signature.size = q.signature_size;
        q.ak_public = q.attest = q.signature = NULL;
        e->tpm.pcr_mask = q.pcr_mask;
        memcpy(e->tpm.pcrs, q.pcrs, sizeof(e->tpm.pcrs));
        tpm_device_quote_done(&q);

        if (config->event_log_data) {
                uint8_t *log = malloc(config->event_log_size ?: 1);
                if (!log)
                        return -ENOMEM;
                memcpy(log, config->event_log_data, config->event_log_size);
                e->tpm.event_log = (Blob){ log, config->event_log_size };
        } else if (config->event_log && config->event_log[0]) {
                uint8_t *log;
                size_t size;

                r = read_full_file(config->event_log, EVIDENCE_EVENT_LOG_MAX, &log, &size);
                if (r >= 0)
                        e->tpm.event_log = (Blob){ log, size };
                else if (r == -ENOENT)
                        log_debug("attest: no event log at %s", config->event_log);
                else
                        return diag_fail(d, r, "event-log", -1, "cannot read the event log %s: %s",
                                         config->event_log, strerror(-r));
        }
        if (config->include_ek) {
                r = tpm_device_ek_certificate(tpm, &e->tpm.ek_certificate.data,
                                              &e->tpm.ek_certificate.size);
                if (r < 0 && r != -ENOENT)
                        return diag_fail(d, r, "ek-certificate", -1,
                                         "cannot read the EK certificate: %s", strerror(-r));
                r = tpm_device_ek_public(tpm, &e->tpm.ek_public.data, &e->tpm.ek_public.size);
                if (r < 0)
                        return diag_fail(d, r, "ek-public", -1, "cannot create the EK: %s",
                                         strerror(-r));
        }
        *ret = TAKE_PTR(e);
        return 0;
}
