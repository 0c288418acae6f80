/* SPDX-License-Identifier: Apache-2.0 */
#include "helpers/unit.h"

#include "cloister/cp-authorization.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/policy-update.h"

/* The vectors live in docs/key-derivation.md (computed there with an independent implementation);
 * this test reads the one ```json block of that file, so the doc and the code cannot drift. */
static json_t *load_doc_vectors(void)
{
        _cleanup_(freep) uint8_t *doc = NULL;
        const char *start, *end;
        json_t *j = NULL;
        size_t size;

        assert_int_equal(read_full_file("docs/key-derivation.md", 1 << 20, &doc, &size), 0);
        start = strstr((char *) doc, "```json\n[");
        assert_non_null(start);
        start += strlen("```json\n");
        end = strstr(start, "\n```");
        assert_non_null(end);
        assert_int_equal(
                json_parse_buffer(start, (size_t) (end - start), "key-derivation.md", &j, NULL), 0);
        assert_true(json_array_size(j) >= 2);
        return j;
}

static void hexfield(json_t *v, const char *key, uint8_t *buf, size_t n)
{
        json_t *s = json_object_get(v, key);
        assert_non_null(s);
        assert_int_equal(hex_decode_exact(json_string_value(s), buf, n), 0);
}

static void test_kdf_matches_documented_vectors(void **state)
{
        _cleanup_(json_decrefp) json_t *vectors = load_doc_vectors();
        json_t *v;
        size_t i;

        json_array_foreach (vectors, i, v) {
                _cleanup_(secret_freep) Secret *master = NULL, *disk = NULL, *msec = NULL;
                uint8_t m[32], salt[32], msalt[32], want[32], cid[32], pcr[32];

                hexfield(v, "master_secret", m, 32);
                hexfield(v, "salt", salt, 32);
                hexfield(v, "measurement_salt", msalt, 32);
                assert_int_equal(secret_new_from(m, 32, &master), 0);

                assert_int_equal(kdf_disk_key(master, salt,
                                              json_string_value(json_object_get(v, "luks_uuid")),
                                              &disk),
                                 0);
                hexfield(v, "disk_key", want, 32);
                assert_memory_equal(secret_data(disk), want, 32);

                assert_int_equal(kdf_measurement_secret(master, salt, &msec), 0);
                hexfield(v, "measurement_secret", want, 32);
                assert_memory_equal(secret_data(msec), want, 32);

                assert_int_equal(kdf_cluster_id(msec, msalt, cid), 0);
                hexfield(v, "cluster_id", want, 32);
                assert_memory_equal(cid, want, 32);

                kdf_pcr15_expected(cid, pcr);
                hexfield(v, "pcr15", want, 32);
                assert_memory_equal(pcr, want, 32);

                {
                        const char *name = json_string_value(json_object_get(v, "cp_name"));
                        json_int_t not_after =
                                json_integer_value(json_object_get(v, "cp_not_after"));
                        char token[CP_AUTHORIZATION_MAX];
                        Diag d;

                        assert_int_equal(cp_authorization_make(master, salt, name,
                                                               (time_t) not_after, token),
                                         0);
                        assert_string_equal(
                                token, json_string_value(json_object_get(v, "cp_authorization")));
                        diag_clear(&d);
                        assert_int_equal(cp_authorization_check(master, salt, token, name,
                                                                (time_t) not_after, &d),
                                         0);
                }
                {
                        const char *doc =
                                json_string_value(json_object_get(v, "policy_update_document"));
                        json_int_t version =
                                json_integer_value(json_object_get(v, "policy_update_version"));
                        _cleanup_(secret_freep) Secret *key = NULL;
                        char auth[POLICY_UPDATE_AUTH_SIZE];
                        Diag d;

                        assert_int_equal(policy_update_key(master, salt, &key), 0);
                        hexfield(v, "policy_update_key", want, 32);
                        assert_memory_equal(secret_data(key), want, 32);
                        assert_int_equal(policy_update_authenticate(master, salt, cid, version, doc,
                                                                    strlen(doc), auth),
                                         0);
                        assert_string_equal(auth, json_string_value(json_object_get(
                                                          v, "policy_update_authenticator")));
                        diag_clear(&d);
                        assert_int_equal(policy_update_check(master, salt, cid, version, doc,
                                                             strlen(doc), auth, &d),
                                         0);
                }
        }
}

/* Each thing the authenticator covers, changed alone, is refused: the key (another master
 * secret or salt), the cluster, the version, one byte of the document; and malformed input. */
static void test_policy_update_check_refuses_other_key_cluster_version_document(void **state)
{
        static const char doc[] = "{\"variant\":\"qemu-vtpm\"}";
        _cleanup_(secret_freep) Secret *master = NULL, *other = NULL;
        uint8_t salt[32], osalt[32], cid[32], ocid[32], om[32];
        char auth[POLICY_UPDATE_AUTH_SIZE], bad[POLICY_UPDATE_AUTH_SIZE + 1];
        int64_t v;
        Diag d;

        for (size_t i = 0; i < 32; i++) {
                salt[i] = (uint8_t) i;
                osalt[i] = (uint8_t) (i + 1);
                cid[i] = ocid[i] = (uint8_t) (0x40 + i);
                om[i] = (uint8_t) (0x80 + i);
        }
        ocid[31] ^= 1;
        assert_int_equal(secret_new_from(om, 32, &other), 0);
        om[0] ^= 1;
        assert_int_equal(secret_new_from(om, 32, &master), 0);
        assert_int_equal(policy_update_authenticate(master, salt, cid, 5, doc, strlen(doc), auth),
                         0);
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 5, doc, strlen(doc), auth, &d), 0);
        assert_int_equal(policy_update_check(other, salt, cid, 5, doc, strlen(doc), auth, &d),
                         -EKEYREJECTED);
        assert_string_equal(d.check, "policy-authenticator");
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, osalt, cid, 5, doc, strlen(doc), auth, &d),
                         -EKEYREJECTED);
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, ocid, 5, doc, strlen(doc), auth, &d),
                         -EKEYREJECTED);
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 4, doc, strlen(doc), auth, &d),
                         -EKEYREJECTED);
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 6, doc, strlen(doc), auth, &d),
                         -EKEYREJECTED);
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 5, doc, strlen(doc) - 1, auth, &d),
                         -EKEYREJECTED);
        /* Malformed: uppercase, short, long, out-of-range versions. */
        memcpy(bad, auth, sizeof(auth));
        bad[0] = bad[0] == 'a' ? 'A' : 'F';
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 5, doc, strlen(doc), bad, &d),
                         -EBADMSG);
        bad[0] = auth[0];
        bad[63] = 0;
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 5, doc, strlen(doc), bad, &d),
                         -EBADMSG);
        memcpy(bad, auth, 64);
        bad[64] = '0';
        bad[65] = 0;
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 5, doc, strlen(doc), bad, &d),
                         -EBADMSG);
        diag_clear(&d);
        assert_int_equal(policy_update_check(master, salt, cid, 0, doc, strlen(doc), auth, &d),
                         -EBADMSG);
        assert_int_equal(policy_update_authenticate(master, salt, cid,
                                                    POLICY_UPDATE_VERSION_MAX + 1, doc, strlen(doc),
                                                    auth),
                         -EINVAL);
        /* Versions between processes: decimal, no sign, no leading zero, in range. */
        assert_int_equal(policy_update_version_parse("1", &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(policy_update_version_parse("9007199254740991", &v), 0);
        assert_int_equal(v, POLICY_UPDATE_VERSION_MAX);
        assert_int_equal(policy_update_version_parse("9007199254740992", &v), -EBADMSG);
        assert_int_equal(policy_update_version_parse("0", &v), -EBADMSG);
        assert_int_equal(policy_update_version_parse("01", &v), -EBADMSG);
        assert_int_equal(policy_update_version_parse("-1", &v), -EBADMSG);
        assert_int_equal(policy_update_version_parse("+1", &v), -EBADMSG);
        assert_int_equal(policy_update_version_parse("", &v), -EBADMSG);
        assert_int_equal(policy_update_version_parse("12345678901234567", &v), -EBADMSG);
}

/* A member's removal (docs/membership.md): the owner's key over the cluster and the admission
 * as recorded. Each field changed alone is refused; a policy update's authenticator is not a
 * removal's; the disk UUID's case does not matter (the key derivation lowercases it); a field
 * before the name that could shift the message (a dot) is malformed. */
static void test_node_removal_check_refuses_other_key_cluster_and_each_field(void **state)
{
        _cleanup_(secret_freep) Secret *master = NULL, *other = NULL;
        uint8_t salt[32], cid[32], ocid[32], m[32];
        char auth[POLICY_UPDATE_AUTH_SIZE], pu[POLICY_UPDATE_AUTH_SIZE];
        const NodeRemoval rm = { .name = "worker.1",
                                 .disk_uuid = "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a01",
                                 .ak_digest = "ab12",
                                 .admitted = "2026-12-07T10:00:00Z" };
        NodeRemoval x;
        Diag d;

        for (size_t i = 0; i < 32; i++) {
                salt[i] = (uint8_t) i;
                cid[i] = ocid[i] = (uint8_t) (0x40 + i);
                m[i] = (uint8_t) (0x80 + i);
        }
        ocid[0] ^= 1;
        assert_int_equal(secret_new_from(m, 32, &master), 0);
        m[31] ^= 1;
        assert_int_equal(secret_new_from(m, 32, &other), 0);
        assert_int_equal(node_removal_authenticate(master, salt, cid, &rm, auth), 0);
        diag_clear(&d);
        assert_int_equal(node_removal_check(master, salt, cid, &rm, auth, &d), 0);
        x = rm;
        x.disk_uuid = "7A1C9A2E-5B1D-4C8E-9A7F-2D6B8E1C4A01";
        assert_int_equal(node_removal_check(master, salt, cid, &x, auth, &d), 0);
        assert_int_equal(node_removal_check(other, salt, cid, &rm, auth, &d), -EKEYREJECTED);
        assert_string_equal(d.check, "removal-authenticator");
        assert_int_equal(node_removal_check(master, salt, ocid, &rm, auth, &d), -EKEYREJECTED);
        x = rm, x.name = "worker.2";
        assert_int_equal(node_removal_check(master, salt, cid, &x, auth, &d), -EKEYREJECTED);
        x = rm, x.disk_uuid = "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a02";
        assert_int_equal(node_removal_check(master, salt, cid, &x, auth, &d), -EKEYREJECTED);
        x = rm, x.ak_digest = "";
        assert_int_equal(node_removal_check(master, salt, cid, &x, auth, &d), -EKEYREJECTED);
        x = rm, x.admitted = "2026-12-07T10:00:01Z";
        assert_int_equal(node_removal_check(master, salt, cid, &x, auth, &d), -EKEYREJECTED);
        /* Another request under the same key: a policy update's authenticator. */
        assert_int_equal(policy_update_authenticate(master, salt, cid, 1, "x", 1, pu), 0);
        assert_int_equal(node_removal_check(master, salt, cid, &rm, pu, &d), -EKEYREJECTED);
        /* Malformed. */
        x = rm, x.admitted = "2026.12.07";
        diag_clear(&d);
        assert_int_equal(node_removal_check(master, salt, cid, &x, auth, &d), -EBADMSG);
        assert_string_equal(d.check, "removal-member");
        x = rm, x.disk_uuid = "";
        assert_int_equal(node_removal_authenticate(master, salt, cid, &x, pu), -EINVAL);
        x = rm, x.name = "";
        assert_int_equal(node_removal_authenticate(master, salt, cid, &x, pu), -EINVAL);
        auth[3] = 'G';
        assert_int_equal(node_removal_check(master, salt, cid, &rm, auth, &d), -EBADMSG);
}

static Secret *test_master(uint8_t salt[static 32])
{
        Secret *s = NULL;
        uint8_t m[32];

        for (size_t i = 0; i < 32; i++) {
                m[i] = (uint8_t) i;
                salt[i] = (uint8_t) (0x20 + i);
        }
        assert_int_equal(secret_new_from(m, 32, &s), 0);
        return s;
}

/* What the join service must refuse, each with its own errno and a sentence naming the cause. */
static void test_cp_authorization_refuses_other_names_keys_expiry_and_malformed_tokens(void **state)
{
        _cleanup_(secret_freep) Secret *master = NULL, *other = NULL;
        uint8_t salt[32], osalt[32];
        char token[CP_AUTHORIZATION_MAX], forged[CP_AUTHORIZATION_MAX],
                tampered[CP_AUTHORIZATION_MAX];
        Diag d;

        master = test_master(salt);
        other = test_master(osalt);
        osalt[0] ^= 1; /* another owner: same key bytes, another salt */
        assert_int_equal(cp_authorization_make(master, salt, "cp-2", 2000, token), 0);
        assert_int_equal(cp_authorization_make(other, osalt, "cp-2", 2000, forged), 0);
        (void) snprintf(tampered, sizeof(tampered), "%s", token);
        tampered[strlen("cpa1.cp-2.")] = '3'; /* a later expiry, same tag */

        diag_clear(&d);
        assert_int_equal(cp_authorization_check(master, salt, token, "cp-2", 2000, &d), 0);
        assert_int_equal(cp_authorization_check(master, salt, token, "cp-3", 1000, &d), -EPERM);
        assert_non_null(strstr(d.message, "is for 'cp-2', not 'cp-3'"));
        assert_int_equal(cp_authorization_check(master, salt, forged, "cp-2", 1000, &d), -EPERM);
        assert_non_null(strstr(d.message, "not made with this cluster's master secret"));
        assert_int_equal(cp_authorization_check(master, salt, tampered, "cp-2", 1000, &d), -EPERM);
        assert_int_equal(cp_authorization_check(master, salt, token, "cp-2", 2001, &d), -ETIME);
        assert_non_null(strstr(d.message, "expired 1 s ago"));

        static const char *const malformed[] = {
                "",
                "cpa2.cp-2.2000.00",
                "cpa1.cp-2.2000",
                "cpa1.cp-2..0000000000000000000000000000000000000000000000000000000000000000",
                "cpa1.cp-2.12345678901234567890."
                "0000000000000000000000000000000000000000000000000000000000000000",
                "cpa1.cp-2.2000.000000000000000000000000000000000000000000000000000000000000000",
                "cpa1.cp-2.2000.00000000000000000000000000000000000000000000000000000000000000000",
                "cpa1.cp-2.2000.000000000000000000000000000000000000000000000000000000000000000G",
                "cpa1.CP-2.2000.0000000000000000000000000000000000000000000000000000000000000000",
                "cpa1..2000.0000000000000000000000000000000000000000000000000000000000000000",
                "cpa1.cp-2.-1.0000000000000000000000000000000000000000000000000000000000000000",
                /* one expiry, one spelling: no leading zeros */
                "cpa1.cp-2.02000.0000000000000000000000000000000000000000000000000000000000000000",
        };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                diag_clear(&d);
                if (cp_authorization_check(master, salt, malformed[i], "cp-2", 1000, &d) !=
                    -EBADMSG)
                        fail_msg("case %zu ('%s') not refused as malformed: %s", i, malformed[i],
                                 d.message);
        }
        assert_int_equal(cp_authorization_make(master, salt, "Bad", 2000, token), -EINVAL);
        assert_int_equal(cp_authorization_make(master, salt, "cp-2", 0, token), -EINVAL);
}

static void test_kdf_disk_key_uuid_case_insensitive(void **state)
{
        _cleanup_(secret_freep) Secret *master = NULL, *a = NULL, *b = NULL;
        uint8_t salt[32] = { 1 };

        assert_int_equal(secret_new_random(32, &master), 0);
        assert_int_equal(kdf_disk_key(master, salt, "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a53", &a), 0);
        assert_int_equal(kdf_disk_key(master, salt, "0F3C9A2E-5B1D-4C8E-9A7F-2D6B8E1C4A53", &b), 0);
        assert_true(secret_equal(a, b));
}

static void test_kdf_disk_key_differs_per_uuid(void **state)
{
        _cleanup_(secret_freep) Secret *master = NULL, *a = NULL, *b = NULL;
        uint8_t salt[32] = { 1 };

        assert_int_equal(secret_new_random(32, &master), 0);
        assert_int_equal(kdf_disk_key(master, salt, "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a53", &a), 0);
        assert_int_equal(kdf_disk_key(master, salt, "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a54", &b), 0);
        assert_false(secret_equal(a, b));
}

static void test_kdf_disk_key_rejects_non_canonical_uuid(void **state)
{
        static const char *const bad[] = {
                "",
                "0f3c9a2e5b1d4c8e9a7f2d6b8e1c4a53",
                "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a5",
                "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a533",
                "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a5g",
                "{0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a}",
                "0f3c9a2e-5b1d-4c8e-9a7f/2d6b8e1c4a53",
                "x/../measurement-secret-aaaaaaaaaaaa",
        };
        _cleanup_(secret_freep) Secret *master = NULL;
        uint8_t salt[32] = {};

        assert_int_equal(secret_new_random(32, &master), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Secret *out = (Secret *) 0x1; /* poison: must stay untouched */
                assert_int_equal(kdf_disk_key(master, salt, bad[i], &out), -EINVAL);
                assert_ptr_equal(out, (Secret *) 0x1);
        }
}

/* The one lowercasing of a disk UUID (etcd keys, the owner's removal signature): ASCII letters
 * only, the rest (digits, dashes, bytes past ASCII) as they are; truncated as snprintf() does;
 * NULL is "". */
static void test_kdf_uuid_lower_lowercases_letters_only_and_truncates(void **state)
{
        char buf[40], small[9];

        memset(buf, 'X', sizeof(buf));
        assert_ptr_equal(kdf_uuid_lower("7A1C9A2E-5B1D-4C8E-9A7F-2D6B8E1C4A01", buf, sizeof(buf)),
                         buf);
        assert_string_equal(buf, "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a01");
        assert_string_equal(kdf_uuid_lower("az@[`{AZ\xc3\x89", buf, sizeof(buf)),
                            "az@[`{az\xc3\x89");
        assert_string_equal(kdf_uuid_lower("0F3C9A2E-5B1D", small, sizeof(small)), "0f3c9a2e");
        assert_string_equal(kdf_uuid_lower(NULL, buf, sizeof(buf)), "");
}

static void test_kdf_hkdf_rfc5869_case1(void **state)
{
        /* RFC 5869 appendix A.1, test case 1 (SHA-256). */
        _cleanup_(secret_freep) Secret *ikm = NULL, *okm = NULL;
        uint8_t ikmb[22], salt[13], want[42];
        char info[11];

        memset(ikmb, 0x0b, sizeof(ikmb));
        assert_int_equal(hex_decode_exact("000102030405060708090a0b0c", salt, 13), 0);
        assert_int_equal(hex_decode_exact("f0f1f2f3f4f5f6f7f8f9", info, 10), 0);
        info[10] = 0;
        assert_int_equal(hex_decode_exact("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56"
                                          "ecc4c5bf34007208d5b887185865",
                                          want, 42),
                         0);
        assert_int_equal(secret_new_from(ikmb, sizeof(ikmb), &ikm), 0);
        assert_int_equal(kdf_hkdf_sha256(ikm, salt, 13, info, 42, &okm), 0);
        assert_memory_equal(secret_data(okm), want, 42);
}

static void test_kdf_hkdf_rejects_bad_lengths(void **state)
{
        _cleanup_(secret_freep) Secret *ikm = NULL;
        Secret *out = NULL;

        assert_int_equal(secret_new_random(32, &ikm), 0);
        assert_int_equal(kdf_hkdf_sha256(ikm, NULL, 0, "x", 0, &out), -EINVAL);
        assert_int_equal(kdf_hkdf_sha256(ikm, NULL, 0, "x", 255 * 32 + 1, &out), -EINVAL);
        assert_null(out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kdf_matches_documented_vectors),
                cmocka_unit_test(
                        test_policy_update_check_refuses_other_key_cluster_version_document),
                cmocka_unit_test(
                        test_cp_authorization_refuses_other_names_keys_expiry_and_malformed_tokens),
                cmocka_unit_test(test_kdf_disk_key_uuid_case_insensitive),
                cmocka_unit_test(test_kdf_disk_key_differs_per_uuid),
                cmocka_unit_test(test_kdf_disk_key_rejects_non_canonical_uuid),
                cmocka_unit_test(test_kdf_uuid_lower_lowercases_letters_only_and_truncates),
                cmocka_unit_test(test_kdf_hkdf_rfc5869_case1),
                cmocka_unit_test(test_kdf_hkdf_rejects_bad_lengths),
                cmocka_unit_test(test_node_removal_check_refuses_other_key_cluster_and_each_field),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
