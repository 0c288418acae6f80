/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sim-snp-node: a node that attests with the SEV-SNP simulator (sim-snp) over aTLS and answers
 * GET /v1/node, for the tests of evidence bundles whose evidence carries certificates (a VCEK,
 * an ASK) that expire. The bootstrapper attests with a TPM only; this stands in for a sim-snp
 * node's aTLS endpoint, and its evidence is the simulator's, produced by the real code path.
 *
 *   sim-snp-node POLICY_OUT [CLUSTER_ID]
 *
 * Writes the sim-snp policy that trusts this simulator's ARK and expects its launch measurement
 * to POLICY_OUT, prints "serving on 127.0.0.1:PORT", and serves until SIGTERM. With CLUSTER_ID
 * (64 hex digits) the node is launched with that cluster's HOST_DATA and the policy says
 * hostDataFromClusterId.
 */
#include <stdio.h>
#include <string.h>

#include "cloister/attest-atls.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/rpc.h"
#include "cloister/sev-snp.h"
#include "cloister/snp-sim.h"

static int node(void *userdata, const RpcRequest *req, json_t **ret, char *detail, size_t n)
{
        *ret = json_pack("{s:s}", "node", "sim-snp-node");
        return *ret ? 0 : -ENOMEM;
}

static const RpcRoute routes[] = {
        { "GET", "/v1/node", node },
        {},
};

int main(int argc, char *argv[])
{
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(rpc_server_freep) RpcServer *rpc = NULL;
        _cleanup_(json_decrefp) json_t *policy = NULL;
        _cleanup_(freep) char *ark = NULL, *text = NULL;
        char measurement[2 * 48 + 1];
        SimSnpAttester sa;
        AtlsAttester a;
        RpcServerConfig cfg;
        SnpSimConfig sc;
        uint8_t cid[32];

        if (argc < 2 || argc > 3 ||
            (argc == 3 && hex_decode_exact(argv[2], cid, sizeof(cid)) < 0)) {
                fprintf(stderr, "usage: sim-snp-node POLICY_OUT [CLUSTER_ID]\n");
                return 2;
        }
        snp_sim_config_defaults(&sc);
        if (argc == 3)
                snp_host_data_for_cluster(cid, sc.host_data);
        memset(sc.measurement, 0x42, sizeof(sc.measurement));
        hex_encode_buf(sc.measurement, sizeof(sc.measurement), measurement, sizeof(measurement));
        if (snp_sim_new(&sc, &sim) < 0 || snp_sim_ark_pem(sim, &ark) < 0)
                return 1;
        policy = json_pack("{s:i,s:s,s:{s:s,s:[s]}}", "version", 1, "variant", "sim-snp", "snp",
                           "trustedArks", ark, "measurements", measurement);
        if (!policy ||
            (argc == 3 && json_object_set_new(json_object_get(policy, "snp"),
                                              "hostDataFromClusterId", json_true()) < 0) ||
            json_dump_pretty(policy, &text) < 0 ||
            write_file_atomic(argv[1], text, strlen(text), 0644, 0) < 0)
                return 1;
        sa.sim = sim;
        a = sim_snp_attester(&sa);
        rpc_server_config_defaults(&cfg);
        cfg.address = "127.0.0.1";
        if (atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &atls) < 0 ||
            rpc_server_new(&cfg, atls, routes, NULL, &rpc) < 0)
                return 1;
        printf("serving on 127.0.0.1:%u\n", rpc_server_port(rpc));
        fflush(stdout);
        return rpc_server_run(rpc) < 0 ? 1 : 0;
}
