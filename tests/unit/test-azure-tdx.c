/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The azure-tdx variant, from real components (there is no Azure TDX evidence in the test data):
 * a swtpm with an RSA-2048 restricted signing key made as Azure's paravisor makes its AK
 * (tpm2-tools), that key's TPM quote of the nonce and PCRs 0-7, runtime data naming the key as
 * HCLAkPub in an HCL report of type TDX, and a sim-tdx quote whose REPORTDATA[0:32] is SHA-256 of
 * that runtime data. Labelled sim-azure-tdx (the simulator's root in the policy), it goes through
 * attest_verify() after a round trip through the evidence document: the path `cloister
 * attestation verify` and aTLS take. Each link broken fails with its own check.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "helpers/unit.h"
#include "helpers/vtpm.h"

#include "cloister/atls.h"
#include "cloister/attest.h"
#include "cloister/base64.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/spawn.h"
#include "cloister/tdx-sim.h"
#include "cloister/tpm-device.h"

static Vtpm tpm;
/* The AK the runtime data names (endorsement hierarchy) and another key (owner hierarchy). */
static char ak_ctx[128], other_ctx[128], *ak_n64, *other_n64;

static int tpm2(const char *tool, const char *const *args)
{
        char log[160];
        const char *argv[24] = { tool, "-T", tpm.tcti };
        size_t n = 3;
        int r;

        for (; *args && n < ELEMENTSOF(argv) - 1; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        (void) snprintf(log, sizeof(log), "%s/tpm2-tools.log", tpm.dir);
        r = spawn_wait((char *const *) argv, log);
        if (r != 0)
                return -EIO;
        /* No resource manager behind the socket: drop the transient objects the tool left. */
        {
                const char *const flush[] = { "tpm2_flushcontext", "-T", tpm.tcti, "-t", NULL };
                r = spawn_wait((char *const *) flush, log);
        }
        return r == 0 ? 0 : -EIO;
}

/* base64url without padding (RFC 7515) of the key's modulus. */
static char *modulus_b64url(const char *der_path)
{
        _cleanup_(freep) uint8_t *der = NULL, *n = NULL;
        const unsigned char *p;
        BIGNUM *bn = NULL;
        EVP_PKEY *k;
        char *s = NULL;
        size_t size;
        int len;

        assert_int_equal(read_full_file(der_path, 4096, &der, &size), 0);
        p = der;
        k = d2i_PUBKEY(NULL, &p, (long) size);
        assert_non_null(k);
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
        len = BN_num_bytes(bn);
        n = malloc((size_t) len);
        assert_int_equal(BN_bn2bin(bn, n), len);
        assert_int_equal(base64_encode(n, (size_t) len, &s), 0);
        for (char *c = s; *c; c++)
                *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
        *strchrnul(s, '=') = 0;
        BN_free(bn);
        EVP_PKEY_free(k);
        return s;
}

static int make_key(const char *hierarchy, char *ctx, const char *name, char **ret_n64)
{
        char der[160];
        const char *const create[] = { "-C",
                                       hierarchy,
                                       "-g",
                                       "sha256",
                                       "-G",
                                       "rsa2048:rsassa-sha256:null",
                                       "-a",
                                       "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
                                       "restricted|sign|noda",
                                       "-c",
                                       ctx,
                                       NULL };
        const char *const pub[] = { "-c", ctx, "-f", "der", "-o", der, NULL };

        (void) snprintf(ctx, 128, "%s/%s.ctx", tpm.dir, name);
        (void) snprintf(der, sizeof(der), "%s/%s.der", tpm.dir, name);
        if (tpm2("tpm2_createprimary", create) < 0 || tpm2("tpm2_readpublic", pub) < 0)
                return -1;
        *ret_n64 = modulus_b64url(der);
        return 0;
}

static int group_setup(void **state)
{
        if (vtpm_start(&tpm, false) < 0)
                return -1;
        if (make_key("e", ak_ctx, "ak", &ak_n64) < 0 ||
            make_key("o", other_ctx, "other", &other_n64) < 0)
                return -1;
        return strcmp(ak_n64, other_n64) != 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
        vtpm_stop(&tpm);
        free(ak_n64);
        free(other_n64);
        return 0;
}

static TdxSimulator *simulator(uint64_t td_attributes)
{
        TdxSimulator *sim = NULL;
        TdxSimConfig c;

        tdx_sim_config_defaults(&c);
        memset(c.mr_td, 0x42, 48);
        c.td_attributes = td_attributes;
        assert_int_equal(tdx_sim_new(&c, &sim), 0);
        return sim;
}

/* The runtime data as Azure's paravisor writes it: a "keys" array with HCLAkPub, more keys, the
 * VM configuration and user data. */
static char *runtime_data(const char *n64, const char *user_data)
{
        json_t *j = json_pack("{s:[{s:s,s:s,s:s,s:s,s:[s]}],s:{s:b,s:b},s:s}", "keys", "kid",
                              "HCLAkPub", "kty", "RSA", "e", "AQAB", "n", n64, "key_ops", "sign",
                              "vm-configuration", "tpm-enabled", 1, "secure-boot", 1, "user-data",
                              user_data);
        char *s = NULL;

        assert_non_null(j);
        assert_int_equal(json_dump_compact(j, &s), 0);
        json_decref(j);
        return s;
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v, p[1] = (uint8_t) (v >> 8), p[2] = (uint8_t) (v >> 16),
        p[3] = (uint8_t) (v >> 24);
}

/* The HCL report (az-cvm-vtpm's layout): header, the hardware report area with a TDREPORT whose
 * REPORTDATA (offset 128) carries the runtime data's hash, IGVM request data of type 4 (TDX),
 * hash type 1 (SHA-256), the runtime data. */
static void hcl_report(const char *runtime, Blob *ret)
{
        size_t n = strlen(runtime), size = 0x4C0 + 20 + n;
        uint8_t *b = calloc(1, size);

        memcpy(b, "HCLA", 4);
        put32(b + 4, 2);               /* version */
        put32(b + 8, (uint32_t) size); /* report size */
        put32(b + 12, 2);              /* request type */
        crypto_sha256(runtime, n, b + 0x20 + 128);
        put32(b + 0x4C0, 20 + (uint32_t) n);
        put32(b + 0x4C4, 1);
        put32(b + 0x4C8, 4);
        put32(b + 0x4CC, 1);
        put32(b + 0x4D0, (uint32_t) n);
        memcpy(b + 0x4D4, runtime, n);
        *ret = (Blob){ b, size };
}

typedef struct Issue {
        TdxSimulator *sim;
        const char *runtime;   /* what the HCL report carries */
        const char *quoted;    /* what the TD quote's REPORTDATA hashes (NULL: runtime) */
        const char *quote_key; /* the TPM key context that signs the TPM quote */
        uint8_t binding[ATTEST_BINDING_SIZE];
} Issue;

/* A sim-azure-tdx evidence document, serialised and parsed back. */
static Evidence *issue(const Issue *in)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_SIM_AZURE_TDX),
                                           *td = NULL;
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        _cleanup_(freep) char *text = NULL;
        const char *quoted = in->quoted ?: in->runtime;
        char hex[65], msg[160], sig[160];
        uint8_t hash[32];
        Evidence *back = NULL;
        size_t n;
        Diag d;

        /* The TD quote: the simulator's, REPORTDATA = SHA-256(runtime data) ‖ 32 zero bytes. */
        crypto_sha256(quoted, strlen(quoted), hash);
        assert_int_equal(attest_sim_tdx_issue(in->sim, hash, &td, &d), 0);
        e->tdx = td->tdx;
        td->tdx = (EvidenceTdx){};
        e->has_tdx = true;
        hcl_report(in->runtime, &e->tdx.hcl_report);

        /* The vTPM quote of the binding and PCRs 0-7, by the given key. */
        hex_encode_buf(in->binding, sizeof(in->binding), hex, sizeof(hex));
        (void) snprintf(msg, sizeof(msg), "%s/quote.msg", tpm.dir);
        (void) snprintf(sig, sizeof(sig), "%s/quote.sig", tpm.dir);
        {
                const char *const args[] = { "-c", in->quote_key, "-l", "sha256:0,1,2,3,4,5,6,7",
                                             "-q", hex,           "-m", msg,
                                             "-s", sig,           "-g", "sha256",
                                             NULL };
                assert_int_equal(tpm2("tpm2_quote", args), 0);
        }
        assert_int_equal(read_full_file(msg, 4096, &e->tpm.quote.data, &e->tpm.quote.size), 0);
        assert_int_equal(read_full_file(sig, 4096, &e->tpm.signature.data, &e->tpm.signature.size),
                         0);
        assert_int_equal(tpm_device_open(tpm.tcti, &t), 0);
        assert_int_equal(tpm_device_pcr_read(t, 0xFF, e->tpm.pcrs), 0);
        e->tpm.pcr_mask = 0xFF;
        e->has_tpm = true;

        assert_int_equal(evidence_serialize(e, &text, &n), 0);
        if (evidence_parse(text, n, &back, &d) < 0)
                fail_msg("%s", d.message);
        assert_int_equal(back->variant, ATTEST_VARIANT_SIM_AZURE_TDX);
        assert_int_equal(back->tdx.hcl_report.size, e->tdx.hcl_report.size);
        return back;
}

/* A policy: the TDX object (mrTd of the simulator, its root unless root is false, extra keys),
 * PCRs 0-7 as they are (pcr0 flipped if asked). */
static AttestPolicy *policy(TdxSimulator *sim, const char *variant, bool root, const char *extra,
                            bool wrong_pcr0, int expect, Diag *d)
{
        _cleanup_(freep) char *pem = NULL, *doc = NULL, *tdx_doc = NULL;
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        uint8_t pcrs[TPM_DEVICE_PCRS][32];
        json_t *j, *tdx, *m;
        AttestPolicy *p = NULL;
        char mrtd[97], hex[65];

        memset(mrtd, '4', 96), mrtd[96] = 0;
        for (int i = 1; i < 96; i += 2)
                mrtd[i] = '2';
        assert_int_equal(tdx_sim_root_pem(sim, &pem), 0);
        assert_int_equal(asprintf(&tdx_doc, "{\"mrTd\":[\"%s\"]%s}", mrtd, extra ?: "") > 0, 1);
        tdx = json_loads(tdx_doc, 0, NULL);
        assert_non_null(tdx);
        if (root)
                json_object_set_new(tdx, "trustedRoot", json_string(pem));
        assert_int_equal(tpm_device_open(tpm.tcti, &t), 0);
        assert_int_equal(tpm_device_pcr_read(t, 0xFF, pcrs), 0);
        if (wrong_pcr0)
                pcrs[0][0] ^= 1;
        m = json_object();
        for (int i = 0; i < 8; i++) {
                char key[16];
                (void) snprintf(key, sizeof(key), "%d", i);
                hex_encode_buf(pcrs[i], 32, hex, sizeof(hex));
                json_object_set_new(m, key, json_pack("{s:s}", "expected", hex));
        }
        j = json_pack("{s:i,s:s,s:o,s:o}", "version", 1, "variant", variant, "tdx", tdx,
                      "measurements", m);
        assert_int_equal(json_dump_compact(j, &doc), 0);
        json_decref(j);
        assert_int_equal(attest_policy_parse(doc, strlen(doc), "policy.json", &p, d), expect);
        return p;
}

static const CheckResult *find(const AttestReport *r, const char *name)
{
        for (size_t i = 0; i < r->n_checks; i++)
                if (strcmp(r->checks[i].name, name) == 0)
                        return &r->checks[i];
        fail_msg("no check %s in the report", name);
        return NULL;
}

static CheckStatus status_of(const AttestReport *r, const char *name)
{
        const CheckResult *c = find(r, name);
        return c ? c->status : _CHECK_STATUS_MAX;
}

static void test_azure_tdx_evidence_verifies_quote_runtime_data_ak_and_pcrs(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(TDX_TD_ATTR_SEPT_VE_DISABLE);
        _cleanup_(freep) char *runtime = runtime_data(ak_n64, "00");
        Issue in = { .sim = sim, .runtime = runtime, .quote_key = ak_ctx };
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        static const char *const chain[] = {
                "tdx-pck-chain",      "tdx-quote-signature", "tdx-tcb-status", "tdx-mrtd",
                "azure-runtime-data", "quote-signature",     "binding",        "pcr-digest"
        };
        AttestReport rep = {};
        Diag d;

        memset(in.binding, 0xa5, sizeof(in.binding));
        e = issue(&in);
        p = policy(sim, "sim-azure-tdx", true, NULL, false, 0, &d);
        if (attest_verify(e, p, in.binding, 0, &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        /* Every link of the chain was checked and passed. */
        for (size_t i = 0; i < ELEMENTSOF(chain); i++) {
                if (status_of(&rep, chain[i]) != CHECK_PASS)
                        fail_msg("check %s did not pass", chain[i]);
        }
        assert_int_equal(status_of(&rep, "pcr"), CHECK_PASS);
        attest_report_done(&rep);
        /* Without an expected binding: freshness recorded as not checked. */
        assert_int_equal(attest_verify(e, p, NULL, 0, &rep, &d), 0);
        assert_int_equal(status_of(&rep, "binding"), CHECK_SKIPPED);
        attest_report_done(&rep);
}

/* One link broken: evidence issued as described, verified against the simulator's policy, must
 * fail with err at check (index -1: any). */
typedef struct Refusal {
        uint64_t td_attributes;
        const char *quoted_user_data; /* NULL: the TD quote binds the runtime data carried */
        bool other_key;               /* the TPM quote by another key of the same TPM */
        bool other_nonce;             /* verified against another binding */
        bool policy_other_pcr0;
        int pcr_tampered; /* a PCR value in the evidence changed after quoting (-1: none) */
        int err;
        const char *check;
        int index;
} Refusal;

static void assert_refused(const Refusal *c)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(c->td_attributes);
        _cleanup_(freep) char *runtime = runtime_data(ak_n64, "00"),
                              *quoted = c->quoted_user_data
                                                ? runtime_data(ak_n64, c->quoted_user_data)
                                                : NULL;
        Issue in = { .sim = sim,
                     .runtime = runtime,
                     .quoted = quoted,
                     .quote_key = c->other_key ? other_ctx : ak_ctx };
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        AttestReport rep = {};
        Diag d;

        memset(in.binding, 0x11, sizeof(in.binding));
        e = issue(&in);
        p = policy(sim, "sim-azure-tdx", true, NULL, c->policy_other_pcr0, 0, &d);
        if (c->other_nonce)
                in.binding[31] ^= 1;
        if (c->pcr_tampered >= 0)
                e->tpm.pcrs[c->pcr_tampered][0] ^= 1;
        assert_int_equal(attest_verify(e, p, in.binding, 0, &rep, &d), c->err);
        assert_string_equal(d.check, c->check);
        if (c->index >= 0)
                assert_int_equal(d.index, c->index);
        attest_report_done(&rep);
}

static void test_azure_tdx_changed_runtime_data_fails_the_hash(void **state)
{
        /* The TD quote vouches for other runtime data (same AK, other user data). */
        assert_refused(&(Refusal){ .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE,
                                   .quoted_user_data = "01",
                                   .pcr_tampered = -1,
                                   .err = -EKEYREJECTED,
                                   .check = "azure-runtime-data",
                                   .index = -1 });
}

static void test_azure_tdx_runtime_data_naming_another_ak_than_the_quotes_fails(void **state)
{
        /* The TPM quote is genuine, by another key of the same TPM: not the vouched-for AK. */
        assert_refused(&(Refusal){ .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE,
                                   .other_key = true,
                                   .pcr_tampered = -1,
                                   .err = -EKEYREJECTED,
                                   .check = "quote-signature",
                                   .index = -1 });
}

static void test_azure_tdx_quote_of_another_nonce_is_stale(void **state)
{
        assert_refused(&(Refusal){ .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE,
                                   .other_nonce = true,
                                   .pcr_tampered = -1,
                                   .err = -ESTALE,
                                   .check = "binding",
                                   .index = -1 });
}

static void test_azure_tdx_pcr_other_than_the_policys_fails(void **state)
{
        assert_refused(&(Refusal){ .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE,
                                   .policy_other_pcr0 = true,
                                   .pcr_tampered = -1,
                                   .err = -EPERM,
                                   .check = "pcr",
                                   .index = 0 });
        /* A PCR value in the evidence that the quote does not cover. */
        assert_refused(&(Refusal){ .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE,
                                   .pcr_tampered = 3,
                                   .err = -EKEYREJECTED,
                                   .check = "pcr-digest",
                                   .index = -1 });
}

static void test_azure_tdx_debug_td_is_refused(void **state)
{
        assert_refused(&(Refusal){ .td_attributes = TDX_TD_ATTR_SEPT_VE_DISABLE | TDX_TD_ATTR_DEBUG,
                                   .pcr_tampered = -1,
                                   .err = -EPERM,
                                   .check = "tdx-debug",
                                   .index = -1 });
}

static void test_azure_tdx_sept_ve_disable_clear_is_the_paravisors_explicit_exception(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(0);
        _cleanup_(freep) char *runtime = runtime_data(ak_n64, "00");
        Issue in = { .sim = sim, .runtime = runtime, .quote_key = ak_ctx };
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL, *strict = NULL;
        const CheckResult *c;
        AttestReport rep = {};
        Diag d;

        /* The default: accepted, and the report says why (the exception, by name). */
        e = issue(&in);
        p = policy(sim, "sim-azure-tdx", true, NULL, false, 0, &d);
        assert_true(p->tdx.require_sept_ve_disable);
        assert_true(p->tdx.azure_paravisor);
        if (attest_verify(e, p, in.binding, 0, &rep, &d) != 0)
                fail_msg("%s [%s]", d.message, d.check);
        c = find(&rep, "tdx-sept-ve-disable");
        assert_non_null(c);
        assert_non_null(strstr(c->detail, "azureParavisor"));
        attest_report_done(&rep);
        /* "azureParavisor": false (a DCesv6 machine sets the bit): required. */
        strict = policy(sim, "sim-azure-tdx", true, ",\"azureParavisor\":false", false, 0, &d);
        assert_int_equal(attest_verify(e, strict, in.binding, 0, &rep, &d), -EPERM);
        assert_string_equal(d.check, "tdx-sept-ve-disable");
        attest_report_done(&rep);
}

static void test_azure_tdx_is_anchored_in_intels_root_only(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(TDX_TD_ATTR_SEPT_VE_DISABLE);
        _cleanup_(freep) char *runtime = runtime_data(ak_n64, "00");
        Issue in = { .sim = sim, .runtime = runtime, .quote_key = ak_ctx };
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL, *q = NULL, *r = NULL;
        AttestReport rep = {};
        Diag d;

        /* An azure-tdx policy may not name a root; a sim-azure-tdx one must. */
        assert_null(policy(sim, "azure-tdx", true, NULL, false, -EBADMSG, &d));
        assert_string_equal(d.check, "json-schema");
        assert_non_null(strstr(d.message, "trustedRoot"));
        assert_null(policy(sim, "sim-azure-tdx", false, NULL, false, -EBADMSG, &d));
        /* Simulated evidence relabelled azure-tdx meets Intel's root, and fails there. */
        e = issue(&in);
        e->variant = ATTEST_VARIANT_AZURE_TDX;
        p = policy(sim, "azure-tdx", false, NULL, false, 0, &d);
        assert_int_equal(attest_verify(e, p, in.binding, 0, &rep, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "tdx-pck-root");
        attest_report_done(&rep);
        /* And the simulator's policy does not take real-labelled evidence. */
        q = policy(sim, "sim-azure-tdx", true, NULL, false, 0, &d);
        assert_int_equal(attest_verify(e, q, in.binding, 0, &rep, &d), -EPERM);
        assert_string_equal(d.check, "variant");
        attest_report_done(&rep);
        /* A policy that pins no MRTD is refused: any TD can put any runtime data in REPORTDATA. */
        {
                _cleanup_(freep) char *pem = NULL, *doc = NULL;
                json_t *j;
                assert_int_equal(tdx_sim_root_pem(sim, &pem), 0);
                j = json_pack("{s:i,s:s,s:{s:s},s:{s:{s:s}}}", "version", 1, "variant",
                              "sim-azure-tdx", "tdx", "trustedRoot", pem, "measurements", "0",
                              "expected",
                              "0000000000000000000000000000000000000000000000000000000000000000");
                assert_int_equal(json_dump_compact(j, &doc), 0);
                json_decref(j);
                assert_int_equal(attest_policy_parse(doc, strlen(doc), "p.json", &r, &d), -EPERM);
                assert_string_equal(d.check, "policy-permissive");
        }
}

static void test_azure_tdx_policy_refuses_members_it_would_not_check(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(TDX_TD_ATTR_SEPT_VE_DISABLE);
        static const char *const members[] = { "akTrust", "eventLog", "snp" };
        _cleanup_(freep) char *pem = NULL;
        char mrtd[97];

        memset(mrtd, '4', 96), mrtd[96] = 0;
        assert_int_equal(tdx_sim_root_pem(sim, &pem), 0);
        for (size_t i = 0; i < ELEMENTSOF(members); i++) {
                _cleanup_(freep) char *doc = NULL;
                AttestPolicy *p = NULL;
                json_t *j;
                Diag d;

                /* A policy that parses without the member; with it, refused, naming it. */
                j = json_pack("{s:i,s:s,s:{s:[s],s:s},s:{s:{s:s}},s:s}", "version", 1, "variant",
                              "sim-azure-tdx", "tdx", "mrTd", mrtd, "trustedRoot", pem,
                              "measurements", "4", "expected",
                              "0000000000000000000000000000000000000000000000000000000000000000",
                              members[i], "x");
                assert_int_equal(json_dump_compact(j, &doc), 0);
                json_decref(j);
                assert_int_equal(attest_policy_parse(doc, strlen(doc), "p.json", &p, &d), -EBADMSG);
                assert_string_equal(d.check, "json-schema");
                assert_non_null(strstr(d.message, members[i]));
        }
        {
                _cleanup_(freep) char *doc = NULL;
                _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
                json_t *j = json_pack(
                        "{s:i,s:s,s:{s:[s],s:s},s:{s:{s:s}}}", "version", 1, "variant",
                        "sim-azure-tdx", "tdx", "mrTd", mrtd, "trustedRoot", pem, "measurements",
                        "4", "expected",
                        "0000000000000000000000000000000000000000000000000000000000000000");
                Diag d;

                assert_int_equal(json_dump_compact(j, &doc), 0);
                json_decref(j);
                assert_int_equal(attest_policy_parse(doc, strlen(doc), "p.json", &p, &d), 0);
                assert_int_equal(p->event_log, EVENT_LOG_IGNORE);
        }
}

static void test_azure_tdx_evidence_members_are_strict(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(TDX_TD_ATTR_SEPT_VE_DISABLE);
        _cleanup_(freep) char *runtime = runtime_data(ak_n64, "00"), *text = NULL;
        Issue in = { .sim = sim, .runtime = runtime, .quote_key = ak_ctx };
        _cleanup_(evidence_freep) Evidence *e = issue(&in);
        Evidence *back = NULL;
        size_t n;
        Diag d;

        /* An hclReport in sim-tdx evidence is refused, not ignored. */
        e->variant = ATTEST_VARIANT_SIM_TDX;
        e->has_tpm = false;
        assert_int_equal(evidence_serialize(e, &text, &n), 0);
        assert_int_equal(evidence_parse(text, n, &back, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "hclReport"));
        free(TAKE_PTR(text));
        /* azure-tdx evidence without its HCL report is refused. */
        e->variant = ATTEST_VARIANT_SIM_AZURE_TDX;
        e->has_tpm = true;
        blob_clear(&e->tdx.hcl_report);
        assert_int_equal(evidence_serialize(e, &text, &n), 0);
        assert_int_equal(evidence_parse(text, n, &back, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "hclReport"));
}

static void test_azure_tdx_hcl_report_of_snp_type_is_refused(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = simulator(TDX_TD_ATTR_SEPT_VE_DISABLE);
        _cleanup_(freep) char *runtime = runtime_data(ak_n64, "00");
        Issue in = { .sim = sim, .runtime = runtime, .quote_key = ak_ctx };
        _cleanup_(evidence_freep) Evidence *e = issue(&in);
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        AttestReport rep = {};
        Diag d;

        p = policy(sim, "sim-azure-tdx", true, NULL, false, 0, &d);
        /* Report type 2 (SNP) where the variant is TDX; then a truncated runtime data. */
        e->tdx.hcl_report.data[0x4C8] = 2;
        assert_int_equal(attest_verify(e, p, in.binding, 0, &rep, &d), -EBADMSG);
        assert_string_equal(d.check, "azure-hcl-format");
        attest_report_done(&rep);
        e->tdx.hcl_report.data[0x4C8] = 4;
        e->tdx.hcl_report.size--;
        assert_int_equal(attest_verify(e, p, in.binding, 0, &rep, &d), -EBADMSG);
        assert_string_equal(d.check, "azure-hcl-format");
        attest_report_done(&rep);
}

static void test_azure_tdx_atls_oids_follow_the_earlier_variants(void **state)
{
        /* A new variant takes the next OID; the OIDs peers already use do not move. */
        static const struct {
                const char *variant, *oid;
        } cases[] = {
                { "qemu-vtpm", ATLS_OID_ARC ".1.1" },     { "tdx", ATLS_OID_ARC ".1.5" },
                { "sim-tdx", ATLS_OID_ARC ".1.6" },       { "azure-tdx", ATLS_OID_ARC ".1.7" },
                { "sim-azure-tdx", ATLS_OID_ARC ".1.8" },
        };
        char oid[128];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(atls_variant_oid(attest_variant_from_string(cases[i].variant), oid,
                                                  sizeof(oid)),
                                 0);
                assert_string_equal(oid, cases[i].oid);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_azure_tdx_evidence_verifies_quote_runtime_data_ak_and_pcrs),
                cmocka_unit_test(test_azure_tdx_changed_runtime_data_fails_the_hash),
                cmocka_unit_test(
                        test_azure_tdx_runtime_data_naming_another_ak_than_the_quotes_fails),
                cmocka_unit_test(test_azure_tdx_quote_of_another_nonce_is_stale),
                cmocka_unit_test(test_azure_tdx_pcr_other_than_the_policys_fails),
                cmocka_unit_test(test_azure_tdx_debug_td_is_refused),
                cmocka_unit_test(
                        test_azure_tdx_sept_ve_disable_clear_is_the_paravisors_explicit_exception),
                cmocka_unit_test(test_azure_tdx_is_anchored_in_intels_root_only),
                cmocka_unit_test(test_azure_tdx_policy_refuses_members_it_would_not_check),
                cmocka_unit_test(test_azure_tdx_evidence_members_are_strict),
                cmocka_unit_test(test_azure_tdx_hcl_report_of_snp_type_is_refused),
                cmocka_unit_test(test_azure_tdx_atls_oids_follow_the_earlier_variants),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
