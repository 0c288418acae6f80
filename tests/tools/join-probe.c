/* SPDX-License-Identifier: Apache-2.0 */
/*
 * join-probe: a deliberately misbehaving join client, for tests of the join service only (never
 * installed). The real join client (cloister-bootstrapper) refuses to ask for a ticket when its
 * own PCR 15 is set and always presents fresh evidence; an attacker would not. This one sends
 * POST /v1/join as one of:
 *   --tcti CONF        fresh evidence from that TPM, whatever its PCR 15 holds
 *   --evidence FILE    a fixed evidence document (e.g. recorded from another node): a replay
 *   --no-attest        no client evidence at all
 * --rejoin UUID sends POST /v1/rejoin for --name with that disk UUID instead (a member's
 * identity, tried from another TPM). --disk-uuid UUID claims that disk in a join (default: a
 * fresh random one); --control-plane asks for that role, --authorization TOKEN passes an owner's
 * control-plane authorization with it. --get PATH sends GET PATH instead (e.g. an audit page);
 * --post PATH --body FILE sends that JSON document to PATH instead (e.g. a repeated /v1/init).
 * --attest sim-tdx --sim-tdx-root FILE makes the --tcti evidence sim-tdx (a genuine simulated
 * TDX node with that TPM as its identity); --no-identity leaves the TPM's identity quote out.
 * --no-tdx-collateral leaves the TDX collateral out of the evidence (as a real TD's evidence
 * comes: the join service must find it in its cache); --tdx-collateral-out DIR first writes the
 * simulated platform's collateral there (the files of verify-report --collateral DIR, for a PCS
 * stand-in to serve) and waits for DIR/go before it connects.
 * --wg-key HEX puts that WireGuard public key in the client certificate (bound by the evidence,
 * as a node's mesh request does: docs/mesh.md); with --wg-unbound the evidence binds the plain
 * aTLS binding instead (an attacker naming a key its evidence does not bind). A GET of /v1/mesh
 * answered 200 is unsealed (it comes sealed to this probe's key) and printed.
 * --source ADDR connects from that local address (127.0.0.N: a client of its own address, as
 * nodes on a network are, for the server's per-address fairness). --attempts N tries a join up
 * to N times when the connection fails below HTTP (a handshake timed out or closed under load, an
 * answer that did not come in 30 s) or the answer is 409 (its first attempt still in progress)
 * or 503 (the server busy),
 * 0.5 s apart doubling up to 5 s, as the bootstrapper does; each retry is said on stderr.
 * It verifies the join service against --policy with PCR 15 = --cluster-id, and prints the HTTP
 * status and body, or the handshake failure. Exit 0 only on HTTP 200.
 */
#include <getopt.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/attest-atls.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/node-attester.h"
#include "cloister/rpc.h"
#include "cloister/tdx-sim.h"
#include "cloister/tpm-device.h"

typedef struct FixedEvidence {
        uint8_t *data;
        size_t size;
} FixedEvidence;

/* --wg-unbound: the real evidence, bound as if the certificate carried no WireGuard key. */
static int unbound_issue(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                         const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        const AtlsAttester *inner = userdata;
        uint8_t plain[ATLS_BINDING_SIZE];
        int r;

        r = atls_binding(input->variant, input->role, input->nonce, input->spki, input->spki_size,
                         plain);
        if (r < 0)
                return r;
        return inner->issue(inner->userdata, plain, input, ret, ret_size, d);
}

static int fixed_issue(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                       const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        FixedEvidence *f = userdata;

        *ret = malloc(f->size);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, f->data, f->size);
        *ret_size = f->size;
        return 0;
}

/* The inner attester's evidence without its TDX collateral. */
static int bare_issue(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                      const AtlsBindingInput *input, uint8_t **ret, size_t *ret_size, Diag *d)
{
        const AtlsAttester *inner = userdata;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) uint8_t *doc = NULL;
        char *text = NULL;
        size_t n = 0;
        int r;

        r = inner->issue(inner->userdata, binding, input, &doc, &n, d);
        if (r < 0)
                return r;
        r = evidence_parse((const char *) doc, n, &e, d);
        if (r < 0)
                return r;
        blob_clear(&e->tdx.tcb_info);
        blob_clear(&e->tdx.tcb_info_chain);
        blob_clear(&e->tdx.qe_identity);
        blob_clear(&e->tdx.qe_identity_chain);
        blob_clear(&e->tdx.pck_crl);
        blob_clear(&e->tdx.root_crl);
        e->tdx.has_collateral = false;
        r = evidence_serialize(e, &text, &n);
        if (r < 0)
                return r;
        *ret = (uint8_t *) text;
        *ret_size = n;
        return 0;
}

/* The simulated platform's collateral as files, then a wait for DIR/go (up to 120 s). */
static int collateral_out(TdxSimulator *sim, const char *dir)
{
        TdxCollateral c;
        char path[PATH_MAX];
        struct {
                const char *name;
                const uint8_t *data;
                size_t size;
        } files[6];

        if (!sim || tdx_sim_collateral(sim, &c) < 0)
                return -EINVAL;
        files[0] = (typeof(files[0])){ "tcb_info.json", c.tcb_info, c.tcb_info_size };
        files[1] = (typeof(files[0])){ "tcb_info_issuer_chain.pem", c.tcb_info_chain,
                                       c.tcb_info_chain_size };
        files[2] = (typeof(files[0])){ "qe_identity.json", c.qe_identity, c.qe_identity_size };
        files[3] = (typeof(files[0])){ "qe_identity_issuer_chain.pem", c.qe_identity_chain,
                                       c.qe_identity_chain_size };
        files[4] = (typeof(files[0])){ "pck_crl.der", c.pck_crl, c.pck_crl_size };
        files[5] = (typeof(files[0])){ "root_ca_crl.der", c.root_crl, c.root_crl_size };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                (void) snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
                if (write_file_atomic(path, files[i].data, files[i].size, 0644, 0) < 0)
                        return -EIO;
        }
        {
                /* A quote of the platform (zero REPORTDATA): what verify-report looks up by. */
                uint8_t rd[64] = {}, *q = NULL;
                size_t qn = 0;
                int r;

                if (tdx_sim_quote(sim, rd, &q, &qn) < 0)
                        return -EIO;
                (void) snprintf(path, sizeof(path), "%s/quote.bin", dir);
                r = write_file_atomic(path, q, qn, 0644, 0);
                free(q);
                if (r < 0)
                        return -EIO;
        }
        (void) snprintf(path, sizeof(path), "%s/go", dir);
        for (int i = 0; i < 1200; i++) {
                if (access(path, F_OK) == 0)
                        return 0;
                (void) usleep(100 * 1000);
        }
        return -ETIMEDOUT;
}

int main(int argc, char *argv[])
{
        static const struct option options[] = {
                { "tcti", required_argument, NULL, 't' },
                { "evidence", required_argument, NULL, 'e' },
                { "no-attest", no_argument, NULL, 'n' },
                { "policy", required_argument, NULL, 'p' },
                { "cluster-id", required_argument, NULL, 'c' },
                { "url", required_argument, NULL, 'u' },
                { "name", required_argument, NULL, 'N' },
                { "rejoin", required_argument, NULL, 'R' },
                { "control-plane", no_argument, NULL, 'C' },
                { "disk-uuid", required_argument, NULL, 'D' },
                { "authorization", required_argument, NULL, 'A' },
                { "get", required_argument, NULL, 'G' },
                { "post", required_argument, NULL, 'P' },
                { "body", required_argument, NULL, 'B' },
                { "attest", required_argument, NULL, 'a' },
                { "sim-tdx-root", required_argument, NULL, 'S' },
                { "no-identity", no_argument, NULL, 'I' },
                { "no-tdx-collateral", no_argument, NULL, 'X' },
                { "tdx-collateral-out", required_argument, NULL, 'O' },
                { "wg-key", required_argument, NULL, 'W' },
                { "wg-unbound", no_argument, NULL, 'U' },
                { "source", required_argument, NULL, 's' },
                { "attempts", required_argument, NULL, 'r' },
                {},
        };
        const char *tcti = NULL, *evidence = NULL, *policy_path = NULL, *cid_hex = NULL,
                   *url = NULL, *name = "probe", *rejoin_uuid = NULL, *role = "worker",
                   *disk_uuid = NULL, *authorization = NULL, *get_path = NULL, *post_path = NULL,
                   *body_path = NULL;
        bool no_attest = false, no_identity = false, no_tdx_collateral = false, wg_unbound = false;
        const char *wg_hex = NULL;
        uint8_t wg_key[ATLS_WG_KEY_SIZE];
        AtlsAttester wg_inner;
        const char *collateral_dir = NULL, *source = NULL;
        unsigned attempts = 1, delay_ms = 500;
        AtlsAttester inner;
        const char *sim_tdx_root = NULL;
        AttestVariant variant = ATTEST_VARIANT_QEMU_VTPM;
        _cleanup_(node_attester_donep) NodeAttester node = {};
        SimTdxAttester bare;
        _cleanup_(attest_policy_freep) AttestPolicy *policy = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(tpm_device_closep) TpmDevice *tpm = NULL;
        _cleanup_(json_decrefp) json_t *body = NULL, *resp = NULL;
        _cleanup_(freep) char *text = NULL;
        uint8_t cid[CLUSTER_ID_SIZE];
        FixedEvidence fixed = {};
        NodeAttesterConfig cfg = {};
        AtlsAttester a;
        PolicyVerifier pv;
        AtlsVerifier v;
        RpcClientConfig rc;
        long status = 0;
        Diag d;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        tcti = optarg;
                        break;
                case 'e':
                        evidence = optarg;
                        break;
                case 'n':
                        no_attest = true;
                        break;
                case 'p':
                        policy_path = optarg;
                        break;
                case 'c':
                        cid_hex = optarg;
                        break;
                case 'u':
                        url = optarg;
                        break;
                case 'N':
                        name = optarg;
                        break;
                case 'R':
                        rejoin_uuid = optarg;
                        break;
                case 'C':
                        role = "control-plane";
                        break;
                case 'D':
                        disk_uuid = optarg;
                        break;
                case 'A':
                        authorization = optarg;
                        break;
                case 'G':
                        get_path = optarg;
                        break;
                case 'P':
                        post_path = optarg;
                        break;
                case 'B':
                        body_path = optarg;
                        break;
                case 'a':
                        variant = attest_variant_from_string(optarg);
                        break;
                case 'S':
                        sim_tdx_root = optarg;
                        break;
                case 'X':
                        no_tdx_collateral = true;
                        break;
                case 'O':
                        collateral_dir = optarg;
                        break;
                case 'I':
                        no_identity = true;
                        break;
                case 'W':
                        wg_hex = optarg;
                        break;
                case 'U':
                        wg_unbound = true;
                        break;
                case 's':
                        source = optarg;
                        break;
                case 'r':
                        attempts = (unsigned) strtoul(optarg, NULL, 10);
                        if (attempts < 1 || attempts > 20) {
                                fprintf(stderr, "join-probe: --attempts takes 1 to 20\n");
                                return 2;
                        }
                        break;
                default:
                        return 2;
                }
        if (!policy_path || !cid_hex || !url || (!!tcti + !!evidence + no_attest) != 1 ||
            hex_decode_exact(cid_hex, cid, sizeof(cid)) < 0 || !post_path != !body_path ||
            (wg_hex && hex_decode_exact(wg_hex, wg_key, sizeof(wg_key)) < 0) ||
            (wg_unbound && (!wg_hex || !tcti))) {
                fprintf(stderr,
                        "usage: join-probe (--tcti T|--evidence F|--no-attest) --policy P "
                        "--cluster-id HEX --url URL [--name N] [--source ADDR] [--attempts N]\n");
                return 2;
        }
        diag_clear(&d);
        if (attest_policy_load(policy_path, &policy, &d) < 0) {
                fprintf(stderr, "join-probe: %s\n", d.message);
                return 2;
        }
        if (attest_variant_quotes_pcrs(policy->variant)) {
                policy->pcrs[15] = (PcrExpectation){ .present = true };
                kdf_pcr15_expected(cid, policy->pcrs[15].expected);
        }
        pv = (PolicyVerifier){ .policy = policy };
        v = policy_verifier(&pv);
        if (tcti) {
                if (tpm_device_open(tcti, &tpm) < 0)
                        return 2;
                vtpm_issue_config_defaults(&cfg.vtpm);
                cfg.vtpm.event_log = "";
                cfg.tpm = tpm;
                cfg.variant = variant;
                cfg.sim_tdx_root = sim_tdx_root;
                if (node_attester_init(&node, &cfg, &d) < 0) {
                        fprintf(stderr, "join-probe: %s\n", d.message);
                        return 2;
                }
                a = node_attester_atls(&node);
                if (no_identity && node.tdx_sim) {
                        bare = (SimTdxAttester){ .sim = node.tdx_sim };
                        a = sim_tdx_attester(&bare);
                }
                if (collateral_dir && collateral_out(node.tdx_sim, collateral_dir) < 0) {
                        fprintf(stderr, "join-probe: cannot write the collateral to %s\n",
                                collateral_dir);
                        return 2;
                }
                if (no_tdx_collateral) {
                        inner = a;
                        a = (AtlsAttester){ .variant = inner.variant,
                                            .issue = bare_issue,
                                            .userdata = &inner };
                }
        } else if (evidence) {
                if (read_full_file(evidence, EVIDENCE_SIZE_MAX, &fixed.data, &fixed.size) < 0)
                        return 2;
                a = (AtlsAttester){ .variant = policy->variant,
                                    .issue = fixed_issue,
                                    .userdata = &fixed };
        }
        if (wg_unbound) {
                wg_inner = a;
                a = (AtlsAttester){ .variant = wg_inner.variant,
                                    .issue = unbound_issue,
                                    .userdata = &wg_inner };
        }
        r = atls_context_new(ATLS_ROLE_CLIENT, no_attest ? NULL : &a, &v, &atls);
        if (r < 0)
                return 2;
        if (wg_hex && !no_attest && atls_context_set_wg_key(atls, wg_key) < 0)
                return 2;
        /* A fresh disk UUID per probe: one name, one disk (the join service refuses a known name
         * with another disk). */
        {
                uint8_t u[16];
                char uuid[37];
                if (RAND_bytes(u, sizeof(u)) != 1)
                        return 2;
                (void) snprintf(
                        uuid, sizeof(uuid),
                        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                        u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                        u[12], u[13], u[14], u[15]);
                body = json_pack("{s:s,s:s,s:s,s:s}", "name", name, "role", role, "diskUuid",
                                 disk_uuid ?: uuid, "endpoint", "127.0.0.1:9");
                if (body && authorization &&
                    json_object_set_new(body, "controlPlaneAuthorization",
                                        json_string(authorization)) < 0)
                        return 2;
        }
        rpc_client_config_defaults(&rc);
        rc.retries = 0;
        rc.source_address = source;
        if (rejoin_uuid) {
                json_decref(body);
                body = json_pack("{s:s,s:s,s:s}", "name", name, "diskUuid", rejoin_uuid, "endpoint",
                                 "127.0.0.1:9");
        }
        if (post_path) {
                json_decref(body);
                body = NULL;
                if (json_parse_file(body_path, 1 << 20, &body, &d) < 0) {
                        fprintf(stderr, "join-probe: %s\n", d.message);
                        return 2;
                }
        }
        if (get_path)
                r = rpc_call(atls, &rc, "GET", url, get_path, NULL, true, &status, &resp, &d);
        else if (post_path)
                r = rpc_call(atls, &rc, "POST", url, post_path, body, false, &status, &resp, &d);
        else
                for (unsigned i = 1;; i++) {
                        diag_clear(&d);
                        json_decref(resp);
                        resp = NULL;
                        status = 0;
                        r = rpc_call(atls, &rc, "POST", url,
                                     rejoin_uuid ? "/v1/rejoin" : "/v1/join", body, false, &status,
                                     &resp, &d);
                        if (i >= attempts || (r >= 0 && status != 409 && status != 503) ||
                            (r < 0 && strcmp(d.check, "rpc-transport") != 0 &&
                             strcmp(d.check, "rpc-tls") != 0))
                                break;
                        fprintf(stderr, "join-probe: attempt %u: %s; again in %u ms\n", i,
                                r < 0           ? d.message
                                : status == 409 ? "HTTP 409 (in progress)"
                                                : "HTTP 503 (busy)",
                                delay_ms);
                        (void) usleep(delay_ms * 1000U);
                        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
                }
        free(fixed.data);
        if (r < 0) {
                printf("handshake failed: %s\n", d.message);
                return 1;
        }
        /* A join or rejoin ticket comes sealed to this probe's key: opened here (and refused if
         * it does not open), so that tests see what the node would. */
        if (((!get_path && !post_path) || (get_path && strcmp(get_path, "/v1/mesh") == 0)) &&
            status == 200) {
                diag_clear(&d);
                if (rpc_answer_unseal(atls,
                                      get_path      ? "mesh"
                                      : rejoin_uuid ? "rejoin"
                                                    : "join",
                                      &resp, &d) < 0) {
                        printf("HTTP %ld unsealed answer refused: %s\n", status, d.message);
                        return 1;
                }
        }
        if (resp)
                (void) json_dump_compact(resp, &text);
        printf("HTTP %ld %s\n", status, text ?: "");
        return status == 200 ? 0 : 1;
}
