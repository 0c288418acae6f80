/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log's re-attestation entries (docs/audit-log.md, "Re-attestation entries";
 * docs/reattestation.md): the four kinds are appended and verified, each only with its verdict;
 * a line claiming another verdict is refused by the verifier even with its hash recomputed. */
#include "helpers/unit.h"

#include "cloister/audit-log.h"
#include "cloister/crypto.h"
#include "cloister/hex.h"

static const char *log_path(const char *name)
{
        static char buf[256];
        (void) snprintf(buf, sizeof(buf), "%s/%s.log", test_tmpdir(), name);
        return buf;
}

static AuditEntry entry(const char *event, const char *verdict)
{
        return (AuditEntry){
                .event = event,
                .node = "worker-1",
                .role = "worker",
                .evidence_digest = "",
                .policy_digest = "",
                .verdict = verdict,
                .reason = "pcr: PCR 9 differs; response: cordoned",
        };
}

static void test_audit_log_accepts_the_reattestation_kinds_with_their_verdicts(void **state)
{
        static const struct {
                const char *event, *verdict;
        } ok[] = {
                { "reattest-failed", "refused" },
                { "reattest-unreachable", "refused" },
                { "reattest-passed", "admitted" },
                { "eviction", "refused" },
        };
        const char *path = log_path("kinds");
        AuditLogSummary sum;
        Diag d;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                AuditEntry e = entry(ok[i].event, ok[i].verdict);
                diag_clear(&d);
                assert_int_equal(audit_log_append(path, &e, &d), 0);
        }
        diag_clear(&d);
        assert_int_equal(audit_log_verify(path, &sum, &d), 0);
        assert_int_equal(sum.entries, 4);
}

static void test_audit_log_refuses_a_reattestation_kind_with_the_other_verdict(void **state)
{
        static const struct {
                const char *event, *verdict;
        } bad[] = {
                { "reattest-failed", "admitted" }, { "reattest-unreachable", "admitted" },
                { "reattest-passed", "refused" },  { "eviction", "admitted" },
                { "reattest-maybe", "refused" },
        };
        const char *path = log_path("bad");

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                AuditEntry e = entry(bad[i].event, bad[i].verdict);
                Diag d;
                diag_clear(&d);
                assert_int_equal(audit_log_append(path, &e, &d), -EINVAL);
                assert_string_equal(d.check, "audit-entry");
        }
}

/* A line written by hand (hash recomputed as docs/audit-log.md says): a failure turned into an
 * admission is refused by the verifier, not only by append. */
static void test_audit_log_verify_refuses_a_failure_rewritten_as_admitted(void **state)
{
        static const char body[] =
                "{\"event\":\"reattest-failed\",\"evidenceDigest\":\"\",\"node\":\"worker-1\","
                "\"policyDigest\":\"\",\"prev\":\"000000000000000000000000000000000000000000000"
                "0000000000000000000\",\"reason\":\"x\",\"role\":\"worker\",\"seq\":1,\"time\":"
                "\"2026-12-07T12:00:00Z\",\"verdict\":\"admitted\"}";
        uint8_t digest[32];
        char hex[65], line[1024];
        AuditLogSummary sum;
        Diag d;

        (void) state;
        crypto_sha256(body, strlen(body), digest);
        hex_encode_buf(digest, sizeof(digest), hex, sizeof(hex));
        /* The canonical form puts "hash" between "evidenceDigest" and "node". */
        (void) snprintf(line, sizeof(line),
                        "{\"event\":\"reattest-failed\",\"evidenceDigest\":\"\",\"hash\":\"%s\","
                        "%s\n",
                        hex,
                        body + strlen("{\"event\":\"reattest-failed\",\"evidenceDigest\":\"\","));
        diag_clear(&d);
        assert_int_equal(audit_log_verify_buffer(line, strlen(line), "hand", &sum, &d), -EBADMSG);
        assert_string_equal(d.check, "audit-value");
        assert_non_null(strstr(d.message, "reattest-failed"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                        test_audit_log_accepts_the_reattestation_kinds_with_their_verdicts),
                cmocka_unit_test(
                        test_audit_log_refuses_a_reattestation_kind_with_the_other_verdict),
                cmocka_unit_test(test_audit_log_verify_refuses_a_failure_rewritten_as_admitted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
