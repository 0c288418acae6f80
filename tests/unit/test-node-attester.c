/* SPDX-License-Identifier: Apache-2.0 */
/* The node attester (lib/attest/node-attester.c): a node's evidence by its configured variant,
 * and for sim-tdx the TPM identity quote beside the TDX quote (docs/join.md, "Members without a
 * TPM attestation key"), verified by attest_verify() with the real TDX path, a real swtpm. */
#include <stdio.h>
#include <unistd.h>

#include "helpers/unit.h"
#include "helpers/vtpm.h"

#include "cloister/attest.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/node-attester.h"
#include "cloister/tdx-sim.h"
#include "cloister/tpm-device.h"

static Vtpm tpm_a, tpm_b;
static char root_path[64], bad_root_path[64];
static AttestPolicy *policy;
static const uint8_t binding1[32] = { 0xb1 }, binding2[32] = { 0xb2 };

static int group_setup(void **state)
{
        _cleanup_(tdx_sim_freep) TdxSimulator *sim = NULL, *other = NULL;
        _cleanup_(freep) char *root = NULL, *other_root = NULL, *pem = NULL, *text = NULL,
                              *mixed = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        Diag d;
        int fd;

        if (vtpm_start(&tpm_a, false) < 0 || vtpm_start(&tpm_b, false) < 0)
                return -1;
        if (tdx_sim_new(NULL, &sim) < 0 || tdx_sim_root_export(sim, &root) < 0 ||
            tdx_sim_root_pem(sim, &pem) < 0 || tdx_sim_new(NULL, &other) < 0 ||
            tdx_sim_root_export(other, &other_root) < 0)
                return -1;
        (void) snprintf(root_path, sizeof(root_path), "/tmp/node-attester-root-XXXXXX");
        fd = mkstemp(root_path);
        if (fd < 0 || write(fd, root, strlen(root)) != (ssize_t) strlen(root))
                return -1;
        (void) close(fd);
        /* This root's certificate with another root's key. */
        mixed = malloc(strlen(root) + strlen(other_root) + 1);
        if (!mixed)
                return -1;
        (void) snprintf(mixed, strlen(root) + strlen(other_root) + 1, "%.*s%s",
                        (int) (strstr(root, "-----BEGIN PRIVATE KEY") - root), root,
                        strstr(other_root, "-----BEGIN PRIVATE KEY"));
        (void) snprintf(bad_root_path, sizeof(bad_root_path), "/tmp/node-attester-bad-XXXXXX");
        fd = mkstemp(bad_root_path);
        if (fd < 0 || write(fd, mixed, strlen(mixed)) != (ssize_t) strlen(mixed))
                return -1;
        (void) close(fd);
        j = json_pack("{s:i,s:s,s:{s:s,s:[s]}}", "version", 1, "variant", "sim-tdx", "tdx",
                      "trustedRoot", pem, "mrTd",
                      "000000000000000000000000000000000000000000000000000000000000000000000000000"
                      "000000000000000000000");
        diag_clear(&d);
        if (!j || json_dump_compact(j, &text) < 0 ||
            attest_policy_parse(text, strlen(text), "test policy", &policy, &d) < 0) {
                fprintf(stderr, "policy: %s\n", d.message);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state)
{
        vtpm_stop(&tpm_a);
        vtpm_stop(&tpm_b);
        (void) unlink(root_path);
        (void) unlink(bad_root_path);
        policy = attest_policy_free(policy);
        return 0;
}

/* sim-tdx evidence of a node whose TPM is tcti, through the document (as a verifier gets it). */
static void issue(const char *tcti, const uint8_t *binding, Evidence **ret)
{
        _cleanup_(node_attester_donep) NodeAttester a = {};
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) char *doc = NULL;
        NodeAttesterConfig c = { .variant = ATTEST_VARIANT_SIM_TDX, .sim_tdx_root = root_path };
        size_t size;
        Diag d;

        assert_int_equal(tpm_device_open(tcti, &t), 0);
        c.tpm = t;
        vtpm_issue_config_defaults(&c.vtpm);
        diag_clear(&d);
        assert_int_equal(node_attester_init(&a, &c, &d), 0);
        assert_int_equal(node_attester_issue(&a, binding, &e, &d), 0);
        assert_int_equal(evidence_serialize(e, &doc, &size), 0);
        assert_int_equal(evidence_parse(doc, size, ret, &d), 0);
}

static int verify(const Evidence *e, const uint8_t *binding, Diag *d)
{
        AttestReport rep = {};
        int r;

        diag_clear(d);
        r = attest_verify(e, policy, binding, 0, &rep, d);
        attest_report_done(&rep);
        return r;
}

static void test_sim_tdx_node_evidence_carries_its_tpm_identity_and_verifies(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, &e);
        assert_int_equal(e->variant, ATTEST_VARIANT_SIM_TDX);
        assert_true(e->has_tdx && e->has_tpm);
        /* PCR 15 alone: what the join service reads (once per boot), no event log. */
        assert_int_equal(e->tpm.pcr_mask, 1U << 15);
        assert_null(e->tpm.event_log.data);
        assert_int_equal(verify(e, binding1, &d), 0);
        /* The TDX quote's own binding is checked first. */
        assert_int_equal(verify(e, binding2, &d), -ESTALE);
        assert_string_equal(d.check, "tdx-report-data");
}

static void test_sim_tdx_identity_quote_of_another_connection_fails_tpm_identity(void **state)
{
        /* A fresh TDX quote for this connection with the TPM quote captured from another one:
         * the identity must be bound to the same connection as the quote. */
        _cleanup_(evidence_freep) Evidence *e = NULL, *old = NULL;
        EvidenceTpm swap;
        Diag d;

        issue(tpm_a.tcti, binding1, &e);
        issue(tpm_a.tcti, binding2, &old);
        swap = e->tpm, e->tpm = old->tpm, old->tpm = swap;
        assert_int_equal(verify(e, binding1, &d), -ESTALE);
        assert_string_equal(d.check, "tpm-identity");
}

static void test_sim_tdx_identity_quote_with_a_flipped_signature_byte_fails(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, &e);
        e->tpm.signature.data[e->tpm.signature.size - 1] ^= 1;
        assert_int_equal(verify(e, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "tpm-identity");
}

static void test_sim_tdx_identity_with_another_tpms_key_fails_its_signature(void **state)
{
        /* tpm_b's key claimed for tpm_a's quote: what a node lying about its identity sends. */
        _cleanup_(evidence_freep) Evidence *e = NULL, *b = NULL;
        Blob swap;
        Diag d;

        issue(tpm_a.tcti, binding1, &e);
        issue(tpm_b.tcti, binding1, &b);
        swap = e->tpm.ak_public, e->tpm.ak_public = b->tpm.ak_public, b->tpm.ak_public = swap;
        assert_int_equal(verify(e, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "tpm-identity");
}

static void test_sim_tdx_identity_with_a_changed_pcr15_fails_the_digest(void **state)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, &e);
        e->tpm.pcrs[15][0] ^= 1;
        assert_int_equal(verify(e, binding1, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "pcr-digest");
}

static void test_two_tpms_under_one_sim_tdx_root_are_two_identities_under_one_policy(void **state)
{
        _cleanup_(evidence_freep) Evidence *a = NULL, *b = NULL;
        Diag d;

        issue(tpm_a.tcti, binding1, &a);
        issue(tpm_b.tcti, binding1, &b);
        assert_int_equal(verify(a, binding1, &d), 0);
        assert_int_equal(verify(b, binding1, &d), 0);
        /* Two TPMs, two identities. */
        assert_int_not_equal(a->tpm.ak_public.size == b->tpm.ak_public.size &&
                                     memcmp(a->tpm.ak_public.data, b->tpm.ak_public.data,
                                            a->tpm.ak_public.size) == 0,
                             1);
}

static void test_sim_tdx_node_without_its_root_is_refused(void **state)
{
        _cleanup_(node_attester_donep) NodeAttester a = {};
        NodeAttesterConfig c = { .variant = ATTEST_VARIANT_SIM_TDX };
        Diag d;

        diag_clear(&d);
        assert_int_equal(node_attester_init(&a, &c, &d), -EINVAL);
        assert_string_equal(d.check, "attester");
        assert_non_null(strstr(d.message, "--sim-tdx-root"));
}

static void test_sim_tdx_root_whose_key_is_not_the_certificates_is_refused(void **state)
{
        _cleanup_(node_attester_donep) NodeAttester a = {};
        NodeAttesterConfig c = { .variant = ATTEST_VARIANT_SIM_TDX, .sim_tdx_root = bad_root_path };
        Diag d;

        diag_clear(&d);
        assert_int_equal(node_attester_init(&a, &c, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "is not a certificate and its P-256 key"));
}

static void test_node_attester_refuses_a_variant_no_node_issues(void **state)
{
        _cleanup_(node_attester_donep) NodeAttester a = {};
        NodeAttesterConfig c = { .variant = ATTEST_VARIANT_SEV_SNP };
        Diag d;

        diag_clear(&d);
        assert_int_equal(node_attester_init(&a, &c, &d), -EOPNOTSUPP);
        assert_non_null(strstr(d.message, "a node cannot attest with sev-snp"));
}

static void test_qemu_vtpm_node_evidence_is_the_tpm_quote_alone(void **state)
{
        _cleanup_(node_attester_donep) NodeAttester a = {};
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        NodeAttesterConfig c = { .variant = ATTEST_VARIANT_QEMU_VTPM };
        Diag d;

        assert_int_equal(tpm_device_open(tpm_a.tcti, &t), 0);
        c.tpm = t;
        vtpm_issue_config_defaults(&c.vtpm);
        c.vtpm.event_log = "";
        diag_clear(&d);
        assert_int_equal(node_attester_init(&a, &c, &d), 0);
        assert_int_equal(node_attester_issue(&a, binding1, &e, &d), 0);
        assert_int_equal(e->variant, ATTEST_VARIANT_QEMU_VTPM);
        assert_true(e->has_tpm && !e->has_tdx);
        assert_int_equal(e->tpm.pcr_mask, 0xFFFF);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sim_tdx_node_evidence_carries_its_tpm_identity_and_verifies),
                cmocka_unit_test(
                        test_sim_tdx_identity_quote_of_another_connection_fails_tpm_identity),
                cmocka_unit_test(test_sim_tdx_identity_quote_with_a_flipped_signature_byte_fails),
                cmocka_unit_test(test_sim_tdx_identity_with_another_tpms_key_fails_its_signature),
                cmocka_unit_test(test_sim_tdx_identity_with_a_changed_pcr15_fails_the_digest),
                cmocka_unit_test(
                        test_two_tpms_under_one_sim_tdx_root_are_two_identities_under_one_policy),
                cmocka_unit_test(test_sim_tdx_node_without_its_root_is_refused),
                cmocka_unit_test(test_sim_tdx_root_whose_key_is_not_the_certificates_is_refused),
                cmocka_unit_test(test_node_attester_refuses_a_variant_no_node_issues),
                cmocka_unit_test(test_qemu_vtpm_node_evidence_is_the_tpm_quote_alone),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
