/* SPDX-License-Identifier: Apache-2.0 */
/* The join service's TDX collateral request and its answer from the monitor's cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/privsep-tdx.h"

void privsep_tdx_collateral_request(PrivsepBuf *b, const char *fmspc, const char *ca)
{
        privsep_buf_begin(b, JOIN_PRIVSEP_TDX_COLLATERAL, 0);
        privsep_buf_add_text(b, fmspc);
        privsep_buf_add_text(b, ca);
}

int privsep_tdx_collateral_lookup(const TdxPcsConfig *c, const char *fmspc, const char *ca,
                                  time_t at, TdxCollateral **ret, char *note, size_t note_size,
                                  Diag *d)
{
        TdxPcsConfig offline = *c;
        TdxPcsResult res = {};
        int r;

        *ret = NULL;
        note[0] = '\0';
        /* Never on a join's path: the refresher fetches, a lookup reads the cache. */
        offline.offline = true;
        if (!tdx_pcs_key_ok(fmspc, ca))
                return diag_fail(d, -EINVAL, "tdx-collateral-missing", -1,
                                 "the TDX collateral request names no valid FMSPC and PCK CA");
        if (!c->cache_dir)
                return diag_fail(d, -ENOENT, "tdx-collateral-missing", -1,
                                 "the join service has no TDX collateral cache");
        r = tdx_pcs_collateral_for(&offline, fmspc, ca, at, ret, &res, d);
        if (r == -ENOENT)
                /* The inner message names --offline, a verify-report option: say it for here. */
                return diag_fail(d, -ENOENT, "tdx-collateral-missing", -1,
                                 "no TDX collateral cached for FMSPC %s (PCK CA %s): fill the "
                                 "cache once online (cloister attestation verify-report --type "
                                 "tdx --quote Q --cache-dir %s) or let the join service's "
                                 "refresher fetch it (its log says why it has not)",
                                 fmspc, ca, c->cache_dir);
        if (r < 0)
                return r == -ENOMEM ? r : -EIO;
        if (res.stale > 0)
                (void) snprintf(note, note_size,
                                "%s (a join never fetches: the join service's refresher did not "
                                "refresh it, its log says why)",
                                res.stale_note);
        return 0;
}

void privsep_tdx_collateral_answer(const TdxPcsConfig *c, const PrivsepMsg *m, PrivsepBuf *out)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *col = NULL;
        char note[1024];
        Diag d;
        int r;

        diag_clear(&d);
        r = privsep_tdx_collateral_lookup(c, privsep_text(m, 0), privsep_text(m, 1), 0, &col, note,
                                          sizeof(note), &d);
        privsep_buf_begin(out, JOIN_PRIVSEP_TDX_COLLATERAL | PRIVSEP_REPLY, r < 0 ? r : 0);
        privsep_buf_add_text(out, r < 0 ? d.message : "");
        privsep_buf_add_text(out, r < 0 ? "" : note);
        privsep_buf_add(out, col ? col->tcb_info : NULL, col ? col->tcb_info_size : 0);
        privsep_buf_add(out, col ? col->tcb_info_chain : NULL, col ? col->tcb_info_chain_size : 0);
        privsep_buf_add(out, col ? col->qe_identity : NULL, col ? col->qe_identity_size : 0);
        privsep_buf_add(out, col ? col->qe_identity_chain : NULL,
                        col ? col->qe_identity_chain_size : 0);
        privsep_buf_add(out, col ? col->pck_crl : NULL, col ? col->pck_crl_size : 0);
        privsep_buf_add(out, col ? col->pck_crl_chain : NULL, col ? col->pck_crl_chain_size : 0);
        privsep_buf_add(out, col ? col->root_crl : NULL, col ? col->root_crl_size : 0);
}

static int copy(const PrivsepField *f, uint8_t **ret, size_t *ret_size)
{
        *ret = malloc(f->size + 1);
        if (!*ret)
                return -ENOMEM;
        if (f->size > 0)
                memcpy(*ret, f->data, f->size);
        (*ret)[f->size] = 0; /* PEM chains are read as text */
        *ret_size = f->size;
        return 0;
}

int privsep_tdx_collateral_decode(const uint8_t *buf, size_t size, TdxCollateral **ret, char *note,
                                  size_t note_size, Diag *d)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *col = calloc(1, sizeof(*col));
        PrivsepMsg m;
        int r;

        if (!col)
                return -ENOMEM;
        if (privsep_parse(buf, size, join_privsep_replies, join_privsep_n_specs, &m) < 0 ||
            m.op != (JOIN_PRIVSEP_TDX_COLLATERAL | PRIVSEP_REPLY))
                return diag_fail(d, -EPROTO, "tdx-collateral-missing", -1,
                                 "the monitor's TDX collateral answer is malformed");
        if (m.status < 0)
                return diag_fail(d, m.status < -4095 ? -EPROTO : m.status, "tdx-collateral-missing",
                                 -1, "%s", privsep_text(&m, 0));
        if ((r = copy(&m.fields[2], &col->tcb_info, &col->tcb_info_size)) < 0 ||
            (r = copy(&m.fields[3], &col->tcb_info_chain, &col->tcb_info_chain_size)) < 0 ||
            (r = copy(&m.fields[4], &col->qe_identity, &col->qe_identity_size)) < 0 ||
            (r = copy(&m.fields[5], &col->qe_identity_chain, &col->qe_identity_chain_size)) < 0 ||
            (r = copy(&m.fields[6], &col->pck_crl, &col->pck_crl_size)) < 0 ||
            (r = copy(&m.fields[7], &col->pck_crl_chain, &col->pck_crl_chain_size)) < 0 ||
            (r = copy(&m.fields[8], &col->root_crl, &col->root_crl_size)) < 0)
                return r;
        (void) snprintf(note, note_size, "%s", privsep_text(&m, 1));
        *ret = TAKE_PTR(col);
        return 0;
}
