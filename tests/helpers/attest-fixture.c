/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/snp-sim.h"
#include "cloister/tpm-device.h"
#include "cloister/tpm-quote.h"
#include "helpers/attest-fixture.h"

int fixture_policy_pinned(const char *tcti, AttestPolicy **ret)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        static const uint8_t binding[32];
        VtpmIssueConfig cfg;
        AttestPolicy *p;
        TpmPublic ak;
        unsigned char *der = NULL;
        int n, r;

        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        r = tpm_device_open(tcti, &t);
        if (r < 0)
                return r;
        r = attest_vtpm_issue(t, &cfg, binding, &e, NULL);
        if (r < 0)
                return r;
        r = tpm_public_parse(e->tpm.ak_public.data, e->tpm.ak_public.size, &ak, NULL);
        if (r < 0)
                return r;
        n = i2d_PUBKEY(ak.key, &der);
        tpm_public_done(&ak);
        if (n <= 0)
                return -EIO;
        p = calloc(1, sizeof(*p));
        if (!p) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        p->variant = ATTEST_VARIANT_QEMU_VTPM;
        p->ak_trust = AK_TRUST_PINNED;
        p->event_log = EVENT_LOG_IF_PRESENT;
        r = blob_set(&p->ak_pinned[0], der, (size_t) n);
        p->n_ak_pinned = 1;
        OPENSSL_free(der);
        for (int i = 0; i < 16; i++) {
                p->pcrs[i].present = true;
                memcpy(p->pcrs[i].expected, e->tpm.pcrs[i], 32);
        }
        if (r < 0) {
                attest_policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int fixture_policy_sim_snp(SnpSimulator *sim, AttestPolicy **ret)
{
        AttestPolicy *p = calloc(1, sizeof(*p));
        char *ark = NULL;
        int r;

        if (!p)
                return -ENOMEM;
        p->variant = ATTEST_VARIANT_SIM_SNP;
        snp_policy_defaults(&p->snp);
        r = snp_sim_ark_pem(sim, &ark);
        if (r >= 0)
                r = blob_set(&p->snp_trusted_arks, ark, strlen(ark));
        free(ark);
        if (r < 0) {
                attest_policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}
