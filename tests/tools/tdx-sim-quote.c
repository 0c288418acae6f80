/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tdx-sim-quote: a quote from a fresh TDX simulator (lib/tdxsim), for tests that assemble
 * evidence themselves (the azure-tdx document, written in Python).
 *
 *   tdx-sim-quote REPORTDATA_HEX OUT_DIR [--debug] [--root FILE]
 *
 * REPORTDATA_HEX: the quote's 64 bytes (128 hex digits). Writes OUT_DIR/quote.bin, the collateral
 * files in the layout of a PCS download (tcb_info.json, tcb_info_issuer_chain.pem,
 * qe_identity.json, qe_identity_issuer_chain.pem, pck_crl.der, root_ca_crl.der) and root.pem,
 * the simulator's root a policy must name. MRTD is 48 bytes of 0x42; --debug makes a debug TD.
 * --root FILE: a platform under that root ('cloister attestation sim-tdx-root'), whose collateral
 * serves every node under it (one PCK CA): what a PCS stand-in serves for them.
 */
#include <stdio.h>
#include <string.h>

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/tdx-sim.h"

static int put(const char *dir, const char *name, const void *data, size_t size)
{
        char path[4096];

        (void) snprintf(path, sizeof(path), "%s/%s", dir, name);
        return write_file_atomic(path, data, size, 0644, 0);
}

int main(int argc, char *argv[])
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = NULL;
        _cleanup_(freep) uint8_t *quote = NULL;
        _cleanup_(freep) char *root = NULL;
        uint8_t report_data[64];
        TdxSimConfig c;
        _cleanup_(freep) uint8_t *root_pem = NULL;
        TdxCollateral col = {};
        bool debug = false, bad = argc < 3;
        size_t size;
        int r;

        tdx_sim_config_defaults(&c);
        for (int i = 3; i < argc; i++) {
                if (strcmp(argv[i], "--debug") == 0)
                        debug = true;
                else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc && !root_pem &&
                         read_full_file(argv[i + 1], 16384, &root_pem, &size) >= 0)
                        c.root_pem = (const char *) root_pem, i++;
                else
                        bad = true;
        }
        if (bad || hex_decode_exact(argv[1], report_data, sizeof(report_data)) < 0) {
                fprintf(stderr, "usage: tdx-sim-quote REPORTDATA_HEX(128) OUT_DIR [--debug] "
                                "[--root FILE]\n");
                return 2;
        }
        memset(c.mr_td, 0x42, sizeof(c.mr_td));
        if (debug)
                c.td_attributes |= TDX_TD_ATTR_DEBUG;
        r = tdx_sim_new(&c, &sim);
        if (r >= 0)
                r = tdx_sim_quote(sim, report_data, &quote, &size);
        if (r >= 0)
                r = tdx_sim_collateral(sim, &col);
        if (r >= 0)
                r = tdx_sim_root_pem(sim, &root);
        if (r >= 0)
                r = put(argv[2], "quote.bin", quote, size);
        if (r >= 0)
                r = put(argv[2], "root.pem", root, strlen(root));
        if (r >= 0)
                r = put(argv[2], "tcb_info.json", col.tcb_info, col.tcb_info_size);
        if (r >= 0)
                r = put(argv[2], "tcb_info_issuer_chain.pem", col.tcb_info_chain,
                        col.tcb_info_chain_size);
        if (r >= 0)
                r = put(argv[2], "qe_identity.json", col.qe_identity, col.qe_identity_size);
        if (r >= 0)
                r = put(argv[2], "qe_identity_issuer_chain.pem", col.qe_identity_chain,
                        col.qe_identity_chain_size);
        if (r >= 0)
                r = put(argv[2], "pck_crl.der", col.pck_crl, col.pck_crl_size);
        if (r >= 0)
                r = put(argv[2], "root_ca_crl.der", col.root_crl, col.root_crl_size);
        if (r < 0) {
                fprintf(stderr, "tdx-sim-quote: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
