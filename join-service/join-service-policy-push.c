/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The owner's policy updates (docs/policy-update.md). The network process takes POST /v1/policy
 * from anyone (the owner's CLI does not attest) and forwards its fields as one typed request
 * (JOIN_PRIVSEP_POLICY_PUSH); the monitor, which holds the master secret, decides: the
 * authenticator must be this cluster owner's, the version must not be older than the one stored,
 * the policy must be one a join service runs with. Then it stores the update atomically (the
 * version record first: it is the commit), swaps the policy in and audits the change with the old
 * and the new digest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/attest.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/policy-update.h"
#include "cloister/privsep.h"

#include "join-service.h"

static void digest_hex(const void *data, size_t size, char ret[static 2 * SHA256_DIGEST_SIZE + 1])
{
        uint8_t digest[SHA256_DIGEST_SIZE];

        crypto_sha256(data, size, digest);
        hex_encode_buf(digest, sizeof(digest), ret, 2 * SHA256_DIGEST_SIZE + 1);
}

/* The record first (the commit), then the policy file the holder reads. */
static int policy_store(const JoinService *js, int64_t version, const char *text, size_t size,
                        Diag *d)
{
        int r;

        r = policy_update_record_write(js->state_dir, version, text, size, d);
        if (r < 0)
                return r;
        r = write_file_atomic(js->policy.path, text, size, 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return diag_fail(d, r, "policy-record", -1, "cannot write %s: %s", js->policy.path,
                                 strerror(-r));
        return 0;
}

/* What a join service runs with, checked as the policy holder checks a changed file (and
 * stricter: an update never trusts any attestation key, whatever --insecure-allow-any-ak). */
static int policy_acceptable(const JoinService *js, const char *text, size_t size, Diag *d)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        int r;

        r = attest_policy_parse(text, size, "the pushed policy", &p, d);
        if (r < 0)
                return -EBADMSG;
        if (js->policy.policy && p->variant != js->policy.policy->variant)
                return diag_fail(d, -EPERM, "policy", -1,
                                 "the pushed policy is for %s, this join service runs %s: the "
                                 "variant of a running cluster does not change",
                                 attest_variant_to_string(p->variant),
                                 attest_variant_to_string(js->policy.policy->variant));
        r = attest_policy_check_cluster(p, "the pushed policy", d);
        if (r < 0)
                return -EPERM;
        if (p->variant == ATTEST_VARIANT_QEMU_VTPM && p->ak_trust == AK_TRUST_INSECURE_ANY)
                return diag_fail(d, -EPERM, "policy", -1,
                                 "the pushed policy trusts any attestation key (akTrust "
                                 "insecure-any): a policy update never makes a cluster admit "
                                 "made-up measurements");
        return 0;
}

void join_policy_push_restore(JoinService *js)
{
        _cleanup_(policy_update_record_done) PolicyUpdateRecord rec = {};
        Diag d;
        int r;

        diag_clear(&d);
        (void) pthread_mutex_lock(&js->policy.lock);
        r = policy_update_record_load(js->state_dir, &rec, &d);
        if (r < 0)
                log_error("join-service: %s; policy updates are refused until it is repaired",
                          d.message);
        else if (rec.version > 0 && strcmp(rec.digest, js->policy.digest) != 0) {
                /* An update committed (its record) whose policy file was not replaced yet: a stop
                 * between the two renames. The record is the owner's word. */
                log_warning("join-service: %s holds the policy of version %" PRId64
                            " (sha256 %s), not the one in force (sha256 %s): putting it in force",
                            POLICY_UPDATE_RECORD_FILE, rec.version, rec.digest, js->policy.digest);
                r = write_file_atomic(js->policy.path, rec.text, rec.size, 0600, WRITE_FILE_SYNC);
                if (r >= 0)
                        r = policy_holder_refresh(&js->policy, &d);
                if (r < 0)
                        log_error("join-service: cannot put the stored policy version %" PRId64
                                  " in force: %s",
                                  rec.version, d.message[0] ? d.message : strerror(-r));
        }
        (void) pthread_mutex_unlock(&js->policy.lock);
}

int join_policy_version(JoinService *js, json_t **ret)
{
        _cleanup_(policy_update_record_done) PolicyUpdateRecord rec = {};
        Diag d;
        int r;

        diag_clear(&d);
        (void) pthread_mutex_lock(&js->policy.lock);
        if (policy_holder_refresh(&js->policy, &d) < 0)
                log_error("join-service: the changed policy is refused, the previous one stays in "
                          "force: %s",
                          d.message);
        diag_clear(&d);
        r = policy_update_record_load(js->state_dir, &rec, &d);
        /* A version stands for the policy in force only if that is the one it was pushed with
         * (a file replaced by hand since shows none). */
        if (r >= 0 && rec.version > 0 && strcmp(rec.digest, js->policy.digest) != 0)
                r = -ESTALE;
        (void) pthread_mutex_unlock(&js->policy.lock);
        *ret = r < 0 ? json_null() : json_integer(rec.version);
        return *ret ? 0 : -ENOMEM;
}

/* Audits a refusal (counted when repeated: anyone can send one) and returns r with detail. */
static int refuse(JoinService *js, const char *peer, int r, const char *why, char *detail, size_t n)
{
        char reason[JOIN_PRIVSEP_DETAIL_MAX + 32];

        (void) snprintf(reason, sizeof(reason), "policy update refused: %s", why);
        join_monitor_refusal(js, peer, "", reason);
        (void) snprintf(detail, n, "%s", why);
        return r;
}

int join_handle_policy_push(JoinService *js, const char *peer, const char *version_text,
                            const char *authenticator, const char *text, size_t size,
                            json_t **ret_response, char *detail, size_t n)
{
        _cleanup_(policy_update_record_done) PolicyUpdateRecord rec = {};
        char digest[2 * SHA256_DIGEST_SIZE + 1], old_digest[sizeof(js->policy.digest)];
        char why[JOIN_PRIVSEP_DETAIL_MAX], reason[320];
        int64_t version;
        bool changed = false;
        json_t *answer;
        Diag d;
        int r;

        diag_clear(&d);
        if (policy_update_version_parse(version_text, &version) < 0)
                return refuse(js, peer, -EBADMSG,
                              "the version is not a decimal number from 1 to 2^53-1", detail, n);
        /* Who: the owner's key over this cluster, this version and these exact bytes. Nothing
         * else of the request is looked at before this holds. */
        r = policy_update_check(js->master->key, js->master->salt, js->cluster_id, version, text,
                                size, authenticator, &d);
        if (r < 0)
                return refuse(js, peer, r == -EBADMSG ? -EBADMSG : -EPERM, d.message, detail, n);
        digest_hex(text, size, digest);

        (void) pthread_mutex_lock(&js->policy.lock);
        memcpy(old_digest, js->policy.digest, sizeof(old_digest));
        r = policy_update_record_load(js->state_dir, &rec, &d);
        if (r < 0) {
                (void) snprintf(why, sizeof(why), "%.400s (repair it from another join service)",
                                d.message);
                r = -EIO;
                goto refused;
        }
        /* The version only grows: a replayed older update is refused; the same one again is
         * done already; another document under a version already taken is a conflict the owner
         * must resolve (a new version). */
        if (version < rec.version) {
                (void) snprintf(why, sizeof(why),
                                "version %" PRId64 " is older than version %" PRId64
                                ", which this join service holds (a replayed update?)",
                                version, rec.version);
                r = -EPERM;
                goto refused;
        }
        if (version == rec.version && strcmp(digest, rec.digest) != 0) {
                (void) snprintf(why, sizeof(why),
                                "version %" PRId64 " is held here with another policy (sha256 "
                                "%.16s...); push this one as a new version",
                                version, rec.digest);
                r = -EEXIST;
                goto refused;
        }
        if (version > rec.version) {
                r = policy_acceptable(js, text, size, &d);
                if (r >= 0)
                        r = policy_store(js, version, text, size, &d);
                if (r >= 0) {
                        r = policy_holder_refresh(&js->policy, &d);
                        if (r < 0)
                                r = -EIO;
                }
                if (r < 0) {
                        (void) snprintf(why, sizeof(why), "%s", d.message);
                        goto refused;
                }
                changed = true;
                (void) snprintf(reason, sizeof(reason),
                                "policy version %" PRId64 " (sha256:%s) replaces version %" PRId64
                                " (sha256:%s)",
                                version, digest, rec.version, old_digest);
                /* policy.lock is recursive: the entry's policyDigest is the new one. */
                join_audit(js, "policy-update", peer, "", "", "admitted", reason);
        }
        (void) pthread_mutex_unlock(&js->policy.lock);
        if (!changed)
                log_info("join-service: policy version %" PRId64 " pushed again: already in force",
                         version);
        answer = json_pack("{s:I,s:s,s:I,s:s,s:b}", "version", (json_int_t) version, "policyDigest",
                           digest, "previousVersion", (json_int_t) rec.version, "previousDigest",
                           changed ? old_digest : digest, "changed", changed);
        if (!answer)
                return -ENOMEM;
        *ret_response = answer;
        return 0;

refused:
        (void) pthread_mutex_unlock(&js->policy.lock);
        return refuse(js, peer, r, why, detail, n);
}

/* The network process: POST /v1/policy {"policy": TEXT, "version": N, "authenticator": HEX},
 * from any client (the owner's CLI does not attest); the monitor decides everything. */
int join_net_policy_push(void *userdata, const RpcRequest *req, json_t **ret_response, char *detail,
                         size_t n)
{
        static const char *const keys[] = { "policy", "version", "authenticator", NULL };
        JoinService *js = userdata;
        JsonCtx ctx = { .source = "policy update", .path = "" };
        const char *text = NULL, *authenticator = NULL;
        char version_text[24];
        int64_t version = 0;
        PrivsepBuf b;
        Diag d;

        diag_clear(&d);
        ctx.diag = &d;
        if (json_check_keys(&ctx, req->body, keys) < 0 ||
            json_get_string(&ctx, req->body, "policy", true, &text) < 0 ||
            json_get_int(&ctx, req->body, "version", true, 1, POLICY_UPDATE_VERSION_MAX, &version) <
                    0 ||
            json_get_string(&ctx, req->body, "authenticator", true, &authenticator) < 0) {
                join_network_refusal(js, req->peer, "", d.message);
                (void) snprintf(detail, n, "%s", d.message);
                return -EBADMSG;
        }
        /* The fields' bounds in the typed protocol: a request outside them would make the
         * monitor close the channel. (The JSON parser refuses \u0000 already; the document
         * travels as text.) */
        if (strlen(text) != json_string_length(json_object_get(req->body, "policy")) ||
            strlen(text) == 0 || strlen(text) > ATTEST_POLICY_SIZE_MAX ||
            strlen(authenticator) > 64) {
                (void) snprintf(detail, n,
                                "policy update: .policy must be 1 to %u bytes without NUL, "
                                ".authenticator 64 hex digits",
                                ATTEST_POLICY_SIZE_MAX);
                join_network_refusal(js, req->peer, "", detail);
                return -EBADMSG;
        }
        (void) snprintf(version_text, sizeof(version_text), "%" PRId64, version);
        privsep_buf_begin(&b, JOIN_PRIVSEP_POLICY_PUSH, 0);
        privsep_buf_add_text(&b, req->peer);
        privsep_buf_add_text(&b, version_text);
        privsep_buf_add_text(&b, authenticator);
        privsep_buf_add_text(&b, text);
        return join_network_ask(js, &b, ret_response, detail, n);
}
