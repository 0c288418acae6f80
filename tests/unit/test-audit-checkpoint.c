/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/x509.h>

#include "helpers/unit.h"
#include "helpers/vtpm.h"

#include "cloister/audit-checkpoint.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/tpm-device.h"
#include "cloister/tpm-quote.h"

/* Signed audit checkpoints (docs/audit-log.md, "Signed checkpoints") with two real swtpms: a
 * checkpoint verifies only as its own head, signed by its own join service's key. */

#define HEAD  "3a039580b7a54177ec2a0508962350f62489b32b0430237994e579c2372deeff"
#define TIME  "2026-11-23T12:02:03Z"
#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static Vtpm tpm_a, tpm_b;

static int group_setup(void **state)
{
        return vtpm_start(&tpm_a, false) < 0 || vtpm_start(&tpm_b, false) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
        vtpm_stop(&tpm_a);
        vtpm_stop(&tpm_b);
        return 0;
}

static Evidence *quote(const char *tcti, int64_t seq, const char *hash, int64_t size,
                       const char *time)
{
        _cleanup_(tpm_device_closep) TpmDevice *t = NULL;
        uint8_t binding[ATTEST_BINDING_SIZE];
        VtpmIssueConfig cfg;
        Evidence *e = NULL;
        Diag d;

        assert_int_equal(
                audit_checkpoint_binding(ATTEST_VARIANT_QEMU_VTPM, seq, hash, size, time, binding),
                0);
        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        diag_clear(&d);
        assert_int_equal(tpm_device_open(tcti, &t), 0);
        if (attest_vtpm_issue(t, &cfg, binding, &e, &d) < 0)
                fail_msg("issue: %s", d.message);
        return e;
}

/* A policy pinning both TPMs' AKs and tpm_a's PCRs: both are genuine members. */
static AttestPolicy *policy_for(const Evidence *a, const Evidence *b)
{
        AttestPolicy *p = calloc(1, sizeof(*p));
        const Evidence *ev[] = { a, b };

        assert_non_null(p);
        p->variant = ATTEST_VARIANT_QEMU_VTPM;
        p->ak_trust = AK_TRUST_PINNED;
        p->event_log = EVENT_LOG_IF_PRESENT;
        for (int i = 0; i < 16; i++) {
                p->pcrs[i].present = true;
                memcpy(p->pcrs[i].expected, a->tpm.pcrs[i], 32);
        }
        for (size_t k = 0; k < 2; k++) {
                unsigned char *der = NULL;
                TpmPublic ak;
                int n;

                assert_int_equal(tpm_public_parse(ev[k]->tpm.ak_public.data,
                                                  ev[k]->tpm.ak_public.size, &ak, NULL),
                                 0);
                n = i2d_PUBKEY(ak.key, &der);
                assert_true(n > 0);
                assert_int_equal(blob_set(&p->ak_pinned[k], der, (size_t) n), 0);
                OPENSSL_free(der);
                tpm_public_done(&ak);
        }
        p->n_ak_pinned = 2;
        return p;
}

static AuditCheckpoint *parse_text(const char *text, Diag *d)
{
        AuditCheckpoint *c = NULL;

        diag_clear(d);
        assert_int_equal(audit_checkpoint_parse(text, strlen(text), "cp", &c, d), 0);
        return c;
}

/* Computed independently in Python from the format in docs/audit-log.md:
 * sha256(b"\0".join([b"cloister-audit-checkpoint-v1", b"qemu-vtpm", b"3", HEAD, b"1234",
 * TIME])). */
static void test_audit_checkpoint_binding_matches_the_documented_format(void **state)
{
        uint8_t b[ATTEST_BINDING_SIZE], want[ATTEST_BINDING_SIZE];

        assert_int_equal(hex_decode_exact("6ea6243fce51e9c8597d4e52d7d566a097d41caa07848080649414"
                                          "acc8a29d56",
                                          want, sizeof(want)),
                         0);
        assert_int_equal(audit_checkpoint_binding(ATTEST_VARIANT_QEMU_VTPM, 3, HEAD, 1234, TIME, b),
                         0);
        assert_memory_equal(b, want, sizeof(b));
        /* Out of form: refused rather than bound. */
        assert_int_equal(audit_checkpoint_binding(ATTEST_VARIANT_QEMU_VTPM, 0, HEAD, 0, TIME, b),
                         -EINVAL);
        assert_int_equal(audit_checkpoint_binding(ATTEST_VARIANT_QEMU_VTPM, 3, "3A03", 1, TIME, b),
                         -EINVAL);
        assert_int_equal(audit_checkpoint_binding(ATTEST_VARIANT_QEMU_VTPM, 3, HEAD, 1,
                                                  "2026-02-30T00:00:00Z", b),
                         -EINVAL);
}

static void test_audit_checkpoint_verifies_only_as_its_head_and_signer(void **state)
{
        _cleanup_(evidence_freep) Evidence *a = quote(tpm_a.tcti, 3, HEAD, 1234, TIME);
        _cleanup_(evidence_freep) Evidence *b = quote(tpm_b.tcti, 3, HEAD, 1234, TIME);
        _cleanup_(evidence_freep) Evidence *a_other = quote(tpm_a.tcti, 4, HEAD, 1234, TIME);
        _cleanup_(attest_policy_freep) AttestPolicy *p = policy_for(a, b);
        _cleanup_(audit_checkpoint_freep) AuditCheckpoint *c = NULL, *cb = NULL, *co = NULL;
        _cleanup_(freep) char *text = NULL, *tb = NULL, *to = NULL;
        char sa[AUDIT_SIGNER_HEX_SIZE], sb[AUDIT_SIGNER_HEX_SIZE];
        Diag d;

        assert_int_equal(audit_checkpoint_signer(a, sa), 0);
        assert_int_equal(audit_checkpoint_signer(b, sb), 0);
        assert_string_not_equal(sa, sb);

        assert_int_equal(audit_checkpoint_format(3, HEAD, 1234, TIME, a, &text), 0);
        assert_true(text[strlen(text) - 1] == '\n');
        c = parse_text(text, &d);
        assert_int_equal(c->seq, 3);
        assert_int_equal(c->size, 1234);
        assert_string_equal(c->hash, HEAD);
        assert_string_equal(c->time, TIME);
        diag_clear(&d);
        assert_int_equal(audit_checkpoint_verify(c, p, 0, sa, &d), 0);

        /* The same head, genuinely quoted by the other TPM: refused by name before anything
         * else. */
        assert_int_equal(audit_checkpoint_format(3, HEAD, 1234, TIME, b, &tb), 0);
        cb = parse_text(tb, &d);
        diag_clear(&d);
        assert_int_equal(audit_checkpoint_verify(cb, p, 0, sa, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "audit-checkpoint-signer");
        assert_string_equal(d.expected, sa);
        assert_string_equal(d.actual, sb);

        /* tpm_a's quote of entry 4 presented as entry 3: the binding differs. */
        assert_int_equal(audit_checkpoint_format(3, HEAD, 1234, TIME, a_other, &to), 0);
        co = parse_text(to, &d);
        diag_clear(&d);
        assert_true(audit_checkpoint_verify(co, p, 0, sa, &d) < 0);
        assert_string_not_equal(d.check, "audit-checkpoint-signer");
}

static void test_audit_checkpoint_check_head_names_what_does_not_hold(void **state)
{
        _cleanup_(evidence_freep) Evidence *a = quote(tpm_a.tcti, 3, HEAD, 1234, TIME);
        _cleanup_(audit_checkpoint_freep) AuditCheckpoint *c = NULL;
        _cleanup_(freep) char *text = NULL;
        Diag d;

        assert_int_equal(audit_checkpoint_format(3, HEAD, 1234, TIME, a, &text), 0);
        c = parse_text(text, &d);
        diag_clear(&d);
        assert_int_equal(audit_checkpoint_check_head(c, 3, HEAD, 1234, &d), 0);
        assert_int_equal(audit_checkpoint_check_head(c, 2, HEAD, 1000, &d), -EBADMSG);
        assert_string_equal(d.check, "audit-checkpoint-head");
        assert_non_null(strstr(d.message, "cut or rolled back"));
        assert_int_equal(audit_checkpoint_check_head(c, 4, HEAD, 1500, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "did not sign"));
        assert_int_equal(audit_checkpoint_check_head(c, 3, ZEROS, 1234, &d), -EBADMSG);
        assert_non_null(strstr(d.message, "rewritten"));
        /* Same entry and hash, other length: a line changed without its hash. */
        assert_int_equal(audit_checkpoint_check_head(c, 3, HEAD, 1235, &d), -EBADMSG);
}

static void test_audit_checkpoint_parse_refuses_each_malformation(void **state)
{
        _cleanup_(evidence_freep) Evidence *a = quote(tpm_a.tcti, 3, HEAD, 1234, TIME);
        _cleanup_(freep) char *text = NULL;
        _cleanup_(json_decrefp) json_t *good = NULL;
        static const struct {
                const char *key;
                const char *json; /* the value put in, or NULL to remove the key */
        } cases[] = {
                { "extra", "1" },
                { "version", "2" },
                { "version", NULL },
                { "seq", "-1" },
                { "seq", "10000001" },
                { "seq", "\"3\"" },
                { "hash", "\"3A039580B7A54177EC2A0508962350F62489B32B0430237994E579C2372DEEFF\"" },
                { "hash", "\"" ZEROS "\"" }, /* zeros belong to seq 0 only */
                { "size", "0" },             /* and so does size 0 */
                { "time", "\"2026-02-30T12:00:00Z\"" },
                { "time", "\"2026-11-23 12:02:03\"" },
                { "evidence", "{}" },
                { "evidence", NULL },
        };
        Diag d;

        assert_int_equal(audit_checkpoint_format(3, HEAD, 1234, TIME, a, &text), 0);
        assert_int_equal(json_parse_buffer(text, strlen(text), "cp", &good, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_decrefp) json_t *o = json_deep_copy(good);
                _cleanup_(audit_checkpoint_freep) AuditCheckpoint *c = NULL;
                _cleanup_(freep) char *bad = NULL;
                json_t *v = NULL;

                /* A scalar alone is not a document json_parse_buffer() takes. */
                if (cases[i].json)
                        assert_non_null(v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
                if (v)
                        assert_int_equal(json_object_set_new(o, cases[i].key, v), 0);
                else
                        assert_int_equal(json_object_del(o, cases[i].key), 0);
                assert_int_equal(json_dump_compact(o, &bad), 0);
                diag_clear(&d);
                if (audit_checkpoint_parse(bad, strlen(bad), "cp", &c, &d) >= 0)
                        fail_msg("case %zu (%s) was accepted", i, cases[i].key);
                assert_null(c);
        }
        /* Not JSON, cut short, too large. */
        diag_clear(&d);
        {
                AuditCheckpoint *c = NULL;
                assert_int_equal(audit_checkpoint_parse(text, strlen(text) / 2, "cp", &c, &d),
                                 -EBADMSG);
                assert_int_equal(
                        audit_checkpoint_parse(text, AUDIT_CHECKPOINT_SIZE_MAX + 1, "cp", &c, &d),
                        -EMSGSIZE);
                assert_null(c);
        }
}

static void test_audit_log_entry_ending_at_reads_one_entry_where_it_ends(void **state)
{
        char path[300], hash[AUDIT_HASH_HEX_SIZE];
        const AuditEntry e = {
                .event = "admission", .node = "worker-1", .role = "worker", .verdict = "admitted"
        };
        int64_t seq = -1;
        off_t end = 0, first_end;
        Diag d;

        (void) snprintf(path, sizeof(path), "%s/ending-at.log", test_tmpdir());
        diag_clear(&d);
        assert_int_equal(audit_log_entry_ending_at(path, -1, &seq, hash, &end, &d), -ENOENT);
        assert_int_equal(audit_log_append(path, &e, &d), 0);
        assert_int_equal(audit_log_entry_ending_at(path, -1, &seq, hash, &first_end, &d), 0);
        assert_int_equal(seq, 1);
        assert_int_equal(audit_log_append(path, &e, &d), 0);
        assert_int_equal(audit_log_append(path, &e, &d), 0);
        assert_int_equal(audit_log_entry_ending_at(path, -1, &seq, hash, &end, &d), 0);
        assert_int_equal(seq, 3);
        assert_int_equal(audit_log_entry_ending_at(path, first_end, &seq, hash, NULL, &d), 0);
        assert_int_equal(seq, 1);
        assert_int_equal(audit_log_entry_ending_at(path, 0, &seq, hash, NULL, &d), 0);
        assert_int_equal(seq, 0);
        assert_string_equal(hash, ZEROS);
        /* Past the end: the file is shorter than it was. Mid-line: not an entry's end. */
        assert_int_equal(audit_log_entry_ending_at(path, end + 1, &seq, hash, NULL, &d), -ESPIPE);
        assert_true(audit_log_entry_ending_at(path, first_end - 1, &seq, hash, NULL, &d) < 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_audit_checkpoint_binding_matches_the_documented_format),
                cmocka_unit_test(test_audit_checkpoint_verifies_only_as_its_head_and_signer),
                cmocka_unit_test(test_audit_checkpoint_check_head_names_what_does_not_hold),
                cmocka_unit_test(test_audit_checkpoint_parse_refuses_each_malformation),
                cmocka_unit_test(test_audit_log_entry_ending_at_reads_one_entry_where_it_ends),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
