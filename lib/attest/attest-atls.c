/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "cloister/attest-atls.h"
#include "cloister/log.h"

void vtpm_attester_init(VtpmAttester *a, TpmDevice *tpm, const VtpmIssueConfig *config)
{
        a->tpm = tpm;
        if (config)
                a->config = *config;
        else
                vtpm_issue_config_defaults(&a->config);
        (void) pthread_mutex_init(&a->lock, NULL);
}

void vtpm_attester_done(VtpmAttester *a)
{
        (void) pthread_mutex_destroy(&a->lock);
}

/* Serialises e into the buffer aTLS puts in the certificate. */
static int serialize_for_atls(const Evidence *e, uint8_t **ret, size_t *ret_size, Diag *d)
{
        char *doc;
        size_t size;
        int r = evidence_serialize(e, &doc, &size);

        if (r < 0)
                return diag_fail(d, r, "evidence-size", -1, "cannot serialise the evidence");
        *ret = (uint8_t *) doc;
        *ret_size = size;
        return 0;
}

static int vtpm_issue_cb(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                         const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        VtpmAttester *a = userdata;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        int r;

        /* ESAPI contexts are not thread-safe. */
        (void) pthread_mutex_lock(&a->lock);
        r = attest_vtpm_issue(a->tpm, &a->config, binding, &e, d);
        (void) pthread_mutex_unlock(&a->lock);
        if (r < 0)
                return r;
        return serialize_for_atls(e, ret, ret_size, d);
}

AtlsAttester vtpm_attester(VtpmAttester *a)
{
        return (AtlsAttester){ .variant = ATTEST_VARIANT_QEMU_VTPM,
                               .issue = vtpm_issue_cb,
                               .userdata = a };
}

static int sim_snp_issue_cb(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                            const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        SimSnpAttester *a = userdata;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        int r;

        r = attest_sim_snp_issue(a->sim, binding, &e, d);
        if (r < 0)
                return r;
        return serialize_for_atls(e, ret, ret_size, d);
}

AtlsAttester sim_snp_attester(SimSnpAttester *a)
{
        return (AtlsAttester){ .variant = ATTEST_VARIANT_SIM_SNP,
                               .issue = sim_snp_issue_cb,
                               .userdata = a };
}

static int sim_tdx_issue_cb(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                            const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        SimTdxAttester *a = userdata;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        int r;

        r = attest_sim_tdx_issue(a->sim, binding, &e, d);
        if (r < 0)
                return r;
        return serialize_for_atls(e, ret, ret_size, d);
}

AtlsAttester sim_tdx_attester(SimTdxAttester *a)
{
        return (AtlsAttester){ .variant = ATTEST_VARIANT_SIM_TDX,
                               .issue = sim_tdx_issue_cb,
                               .userdata = a };
}

static int policy_verify_cb(void *userdata, const uint8_t *evidence, size_t size,
                            const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        PolicyVerifier *v = userdata;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        int r;

        r = evidence_parse(evidence, size, &e, d);
        if (r < 0)
                return r;
        if (v->report)
                attest_report_done(v->report);
        r = attest_verify(e, v->policy, binding, v->at, v->report, d);
        if (r > 0)
                /* ek-cert needs a credential-activation round trip that the handshake cannot
                 * carry; refuse rather than accept an AK that is not proven. */
                return diag_fail(d, -EPERM, "ak-activation", -1,
                                 "akTrust ek-cert needs credential activation, which aTLS "
                                 "handshakes do not carry yet: use pinned AK trust");
        return r;
}

AtlsVerifier policy_verifier(PolicyVerifier *v)
{
        return (AtlsVerifier){ .variant = v->policy->variant,
                               .verify = policy_verify_cb,
                               .userdata = v };
}
