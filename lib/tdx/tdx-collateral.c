/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cloister/fileio.h"
#include "tdx-internal.h"

TdxCollateral *tdx_collateral_free(TdxCollateral *c)
{
        if (!c)
                return NULL;
        free(c->tcb_info);
        free(c->tcb_info_chain);
        free(c->qe_identity);
        free(c->qe_identity_chain);
        free(c->pck_crl);
        free(c->pck_crl_chain);
        free(c->root_crl);
        free(c);
        return NULL;
}

int tdx_collateral_load_dir(const char *dir, TdxCollateral **ret, Diag *d)
{
        _cleanup_(tdx_collateral_freep) TdxCollateral *c = calloc(1, sizeof(*c));
        struct {
                const char *name;
                uint8_t **data;
                size_t *size;
                bool required;
        } files[] = {
                { "tcb_info.json", NULL, NULL, true },
                { "tcb_info_issuer_chain.pem", NULL, NULL, true },
                { "qe_identity.json", NULL, NULL, true },
                { "qe_identity_issuer_chain.pem", NULL, NULL, true },
                { "pck_crl.der", NULL, NULL, true },
                { "pck_crl_issuer_chain.pem", NULL, NULL, false },
                { "root_ca_crl.der", NULL, NULL, true },
        };

        if (!c)
                return -ENOMEM;
        files[0].data = &c->tcb_info, files[0].size = &c->tcb_info_size;
        files[1].data = &c->tcb_info_chain, files[1].size = &c->tcb_info_chain_size;
        files[2].data = &c->qe_identity, files[2].size = &c->qe_identity_size;
        files[3].data = &c->qe_identity_chain, files[3].size = &c->qe_identity_chain_size;
        files[4].data = &c->pck_crl, files[4].size = &c->pck_crl_size;
        files[5].data = &c->pck_crl_chain, files[5].size = &c->pck_crl_chain_size;
        files[6].data = &c->root_crl, files[6].size = &c->root_crl_size;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_(freep) char *path = NULL;
                int r;

                if (asprintf(&path, "%s/%s", dir, files[i].name) < 0)
                        return -ENOMEM;
                r = read_full_file(path, TDX_COLLATERAL_FILE_MAX, files[i].data, files[i].size);
                if (r == -ENOENT && !files[i].required)
                        continue;
                if (r < 0)
                        return diag_fail(d, r, "tdx-collateral", -1,
                                         "%s: cannot read: %s (a collateral folder holds "
                                         "tcb_info.json, tcb_info_issuer_chain.pem, "
                                         "qe_identity.json, qe_identity_issuer_chain.pem, "
                                         "pck_crl.der and root_ca_crl.der)",
                                         path, strerror(-r));
        }
        *ret = TAKE_PTR(c);
        return 0;
}
