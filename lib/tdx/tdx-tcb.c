/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCB evaluation as Intel's Quote Verification Library does it for TDX (QVL TcbLevelCheck.cpp,
 * QuoteVerifier.cpp; Intel PCS "TDX TCB Info" v3 semantics):
 *   1. the platform level: the first TCB level (Intel sorts them from newest to oldest) whose SGX
 *      components and PCE SVN the PCK certificate meets and whose TDX components TEE_TCB_SVN
 *      meets; components 0 and 1 are skipped when a TDX module version (TEE_TCB_SVN[1]) is
 *      present, because the module identity judges them;
 *   2. the TDX module: with TEE_TCB_SVN[1] > 0, the identity "TDX_%02X" of that version (absent:
 *      module mismatch, terminal), its MRSIGNER and attributes, and its first level with
 *      isvsvn <= TEE_TCB_SVN[0] (none: TCB not supported, terminal); else the base tdxModule;
 *   3. the QE: its identity's first level with isvsvn <= the QE report's ISVSVN;
 *   4. the module's and the QE's status converge with the platform's (they never replace it):
 *      Revoked wins, OutOfDate turns the platform's status into OutOfDate (keeping
 *      ConfigurationNeeded), anything else leaves it.
 */
#include <stdio.h>
#include <string.h>

#include "cloister/hex.h"
#include "tdx-internal.h"

static const struct {
        const char *name;
        unsigned status;
} status_names[] = {
        { "UpToDate", TDX_TCB_UP_TO_DATE },
        { "SWHardeningNeeded", TDX_TCB_SW_HARDENING_NEEDED },
        { "ConfigurationNeeded", TDX_TCB_CONFIGURATION_NEEDED },
        { "ConfigurationAndSWHardeningNeeded",
          TDX_TCB_CONFIGURATION_NEEDED | TDX_TCB_SW_HARDENING_NEEDED },
        { "OutOfDate", TDX_TCB_OUT_OF_DATE },
        { "OutOfDateConfigurationNeeded", TDX_TCB_OUT_OF_DATE | TDX_TCB_CONFIGURATION_NEEDED },
        { "Revoked", TDX_TCB_REVOKED },
};

int tdx_tcb_status_from_string(const char *s, unsigned *ret)
{
        for (size_t i = 0; i < ELEMENTSOF(status_names); i++)
                if (strcmp(s, status_names[i].name) == 0) {
                        *ret = status_names[i].status;
                        return 0;
                }
        return -EBADMSG;
}

const char *tdx_tcb_status_to_string(unsigned status)
{
        if (status & TDX_TCB_REVOKED)
                return "Revoked";
        if (status & TDX_TCB_MODULE_MISMATCH)
                return "TDXModuleMismatch";
        if (status & TDX_TCB_NOT_SUPPORTED)
                return "TCBNotSupported";
        for (size_t i = 0; i < ELEMENTSOF(status_names); i++)
                if (status_names[i].status == status)
                        return status_names[i].name;
        /* OutOfDate with SW hardening: QVL folds it into OutOfDate(ConfigurationNeeded). */
        return status & TDX_TCB_CONFIGURATION_NEEDED ? "OutOfDateConfigurationNeeded" : "OutOfDate";
}

/* QVL convergeTcbStatusWithQeTcbStatus / ...WithTdxModuleStatus. */
static unsigned converge(unsigned platform, unsigned other)
{
        if (platform & TDX_TCB_TERMINAL)
                return platform;
        if (other & TDX_TCB_REVOKED)
                return TDX_TCB_REVOKED;
        if (other & TDX_TCB_OUT_OF_DATE)
                return TDX_TCB_OUT_OF_DATE | (platform & TDX_TCB_CONFIGURATION_NEEDED);
        return platform;
}

static void add_advisories(TdxAdvisories *to, const TdxAdvisoryPool *pool, TdxAdvisoryRef ref)
{
        for (unsigned i = ref.first; i < (unsigned) ref.first + ref.n && i < pool->n; i++) {
                bool dup = false;
                for (unsigned j = 0; j < to->n && !dup; j++)
                        dup = strcmp(to->id[j], pool->id[i]) == 0;
                if (!dup && to->n < TDX_ADVISORIES_MAX)
                        memcpy(to->id[to->n++], pool->id[i], TDX_ADVISORY_ID_MAX);
        }
}

static int isv_level(const TdxIsvLevel *levels, unsigned n, uint16_t isvsvn)
{
        for (unsigned i = 0; i < n; i++)
                if (levels[i].isvsvn <= isvsvn)
                        return (int) i;
        return -1;
}

int tdx_evaluate_tcb(const TdxQuote *q, const TdxPckExtensions *pck, const TdxTcbInfo *tcb,
                     const TdxQeIdentity *qe, TdxTcbEvaluation *ret, Diag *d)
{
        TdxTcbEvaluation e = { .platform_level = -1, .module_level = -1, .qe_level = -1 };
        uint8_t version = q->tee_tcb_svn[1], isvsvn = q->tee_tcb_svn[0];
        const TdxModuleIdentity *m = &tcb->module;
        char ex[DIAG_VALUE_MAX], ac[DIAG_VALUE_MAX];
        unsigned first = version > 0 ? 2 : 0;

        e.tcb_eval_number = tcb->tcb_eval_number;
        e.qe_tcb_eval_number = qe->tcb_eval_number;

        /* 1. Platform. */
        for (unsigned i = 0; i < tcb->n_levels && e.platform_level < 0; i++) {
                const TdxTcbLevel *l = &tcb->levels[i];
                bool ok = pck->pcesvn >= l->pcesvn;
                for (unsigned k = 0; k < 16 && ok; k++)
                        ok = pck->comp_svn[k] >= l->sgx_svn[k];
                for (unsigned k = first; k < 16 && ok; k++)
                        ok = q->tee_tcb_svn[k] >= l->tdx_svn[k];
                if (ok)
                        e.platform_level = (int) i;
        }
        if (e.platform_level < 0) {
                char sgx[33], tdx[33];
                hex_encode_buf(pck->comp_svn, 16, sgx, sizeof(sgx));
                hex_encode_buf(q->tee_tcb_svn, 16, tdx, sizeof(tdx));
                (void) diag_fail(d, -EPERM, "tdx-tcb-level", -1,
                                 "TCB not supported: the platform (SGX components %s, PCE SVN %u, "
                                 "TEE_TCB_SVN %s) is below every TCB level of the TCB info",
                                 sgx, pck->pcesvn, tdx);
                e.status = TDX_TCB_NOT_SUPPORTED;
                *ret = e;
                return -EPERM;
        }
        e.platform_status = tcb->levels[e.platform_level].status;
        e.platform_tcb_date = tcb->levels[e.platform_level].tcb_date;
        add_advisories(&e.advisories, &tcb->pool, tcb->levels[e.platform_level].advisories);

        /* 2. TDX module. */
        if (version > 0) {
                char id[16];
                (void) snprintf(id, sizeof(id), "TDX_%02X", version);
                m = NULL;
                for (unsigned i = 0; i < tcb->n_identities && !m; i++)
                        if (strcmp(tcb->identities[i].id, id) == 0)
                                m = &tcb->identities[i];
                (void) snprintf(e.module_id, sizeof(e.module_id), "%s", id);
                if (!m) {
                        e.status = TDX_TCB_MODULE_MISMATCH;
                        *ret = e;
                        (void) diag_fail(d, -EPERM, "tdx-module-identity", -1,
                                         "TDX module mismatch: the TCB info has no identity %s "
                                         "for the quote's module version %u",
                                         id, version);
                        return -EPERM;
                }
        }
        if (memcmp(q->mr_signer_seam, m->mrsigner, 48) != 0) {
                e.status = TDX_TCB_MODULE_MISMATCH;
                *ret = e;
                (void) diag_fail(d, -EPERM, "tdx-module-identity", -1,
                                 "TDX module mismatch: MRSIGNERSEAM is not the signer the TCB "
                                 "info names for %s",
                                 version > 0 ? e.module_id : "the TDX module");
                diag_set_values_hex(d, m->mrsigner, 48, q->mr_signer_seam, 48);
                return -EPERM;
        }
        if ((q->seam_attributes & m->attributes_mask) != (m->attributes & m->attributes_mask)) {
                e.status = TDX_TCB_MODULE_MISMATCH;
                *ret = e;
                (void) diag_fail(d, -EPERM, "tdx-module-identity", -1,
                                 "TDX module mismatch: SEAMATTRIBUTES under the mask differ from "
                                 "the TCB info's");
                (void) snprintf(ex, sizeof(ex), "0x%016llx", (unsigned long long) m->attributes);
                (void) snprintf(ac, sizeof(ac), "0x%016llx",
                                (unsigned long long) q->seam_attributes);
                diag_set_values(d, ex, ac);
                return -EPERM;
        }
        if (version > 0) {
                e.module_level = isv_level(m->levels, m->n_levels, isvsvn);
                if (e.module_level < 0) {
                        e.status = TDX_TCB_NOT_SUPPORTED;
                        *ret = e;
                        (void) diag_fail(d, -EPERM, "tdx-module-level", -1,
                                         "TCB not supported: TDX module %s ISV SVN %u is below "
                                         "every level of its identity",
                                         e.module_id, isvsvn);
                        return -EPERM;
                }
                e.module_status = m->levels[e.module_level].status;
                add_advisories(&e.advisories, &tcb->pool, m->levels[e.module_level].advisories);
        }

        /* 3. Quoting enclave. */
        e.qe_level = isv_level(qe->levels, qe->n_levels, q->qe_report.isvsvn);
        if (e.qe_level < 0) {
                e.status = TDX_TCB_NOT_SUPPORTED;
                *ret = e;
                (void) diag_fail(d, -EPERM, "tdx-qe-level", -1,
                                 "TCB not supported: the QE's ISV SVN %u is below every level "
                                 "of the QE identity",
                                 q->qe_report.isvsvn);
                return -EPERM;
        }
        e.qe_status = qe->levels[e.qe_level].status;
        add_advisories(&e.advisories, &qe->pool, qe->levels[e.qe_level].advisories);

        /* 4. Converge. */
        e.status = converge(converge(e.platform_status, e.module_status), e.qe_status);
        *ret = e;
        if (e.status & TDX_TCB_REVOKED)
                return diag_fail(d, -EPERM, "tdx-tcb-status", -1,
                                 "the TCB is Revoked (platform %s, TDX module %s, QE %s)",
                                 tdx_tcb_status_to_string(e.platform_status),
                                 tdx_tcb_status_to_string(e.module_status),
                                 tdx_tcb_status_to_string(e.qe_status));
        return 0;
}
