/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cloister/attest-atls.h"
#include "cloister/audit-log.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/kdf.h"
#include "cloister/log.h"

#include "join-service.h"

static bool same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int policy_holder_load(PolicyHolder *h, const uint8_t *data, size_t size,
                              const struct stat *st, Diag *d);

int policy_holder_refresh(PolicyHolder *h, Diag *d)
{
        _cleanup_(freep) uint8_t *data = NULL;
        struct stat st;
        size_t size;
        int r;

        if (stat(h->path, &st) < 0)
                return diag_fail(d, -errno, "policy", -1, "%s: %s", h->path, strerror(errno));
        if (h->policy && same_file(&st, &h->st))
                return 0;
        /* A replacement is expected to be renamed into place (atomic); the bytes parsed are the
         * bytes digested, whatever happens to the file meanwhile. */
        r = read_full_file(h->path, ATTEST_POLICY_SIZE_MAX, &data, &size);
        if (r < 0)
                return diag_fail(d, r, "policy", -1, "%s: cannot read: %s", h->path, strerror(-r));
        return policy_holder_load(h, data, size, &st, d);
}

/* The network process: the policy text as its monitor read it (the same checks again). */
int policy_holder_load_text(PolicyHolder *h, const uint8_t *data, size_t size, Diag *d)
{
        static const struct stat none;

        return policy_holder_load(h, data, size, &none, d);
}

static int policy_holder_load(PolicyHolder *h, const uint8_t *data, size_t size,
                              const struct stat *st, Diag *d)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL, *member = NULL;
        uint8_t digest[32];
        int r;

        r = attest_policy_parse(data, size, h->path, &p, d);
        if (r < 0)
                return r;
        /* The variant is part of the aTLS context: it cannot change under a running service. */
        if (h->policy && p->variant != h->policy->variant)
                return diag_fail(d, -EINVAL, "policy", -1,
                                 "%s: the variant changed from %s to %s; restart the join service "
                                 "for that",
                                 h->path, attest_variant_to_string(h->policy->variant),
                                 attest_variant_to_string(p->variant));
        /* A policy that does not pin the image admits any image with a trusted key. */
        r = attest_policy_check_cluster(p, h->path, d);
        if (r < 0)
                return r;
        /* Any TPM can produce a quote with any PCR values it was extended with: without a
         * trusted attestation key, a policy proves nothing about who is asking. */
        if (p->variant == ATTEST_VARIANT_QEMU_VTPM && p->ak_trust == AK_TRUST_INSECURE_ANY) {
                if (!h->insecure_any_ak)
                        return diag_fail(d, -EPERM, "policy", -1,
                                         "%s: akTrust insecure-any trusts any TPM, so anyone can "
                                         "join with made-up measurements; a join service refuses "
                                         "such a policy (pin the nodes' keys or use ek-cert; for "
                                         "a throw-away test only: --insecure-allow-any-ak)",
                                         h->path);
                log_warning("INSECURE: %s trusts ANY attestation key (--insecure-allow-any-ak): "
                            "anyone who reaches this port can join as a worker and receive a "
                            "disk key. Control planes are refused.",
                            h->path);
        }
        /* Joining nodes belong to no cluster yet, whatever the file says about PCR 15. */
        p->pcrs[15] = (PcrExpectation){ .present = true };
        r = attest_policy_parse(data, size, h->path, &member, d);
        if (r < 0)
                return r;
        member->pcrs[15] = (PcrExpectation){ .present = true };
        kdf_pcr15_expected(h->cluster_id, member->pcrs[15].expected);
        /* snp.hostDataFromClusterId: a joining node's HOST_DATA is this cluster's value, both for
         * joins and for members' rejoins. */
        attest_policy_bind_cluster(p, h->cluster_id);
        attest_policy_bind_cluster(member, h->cluster_id);
        crypto_sha256(data, size, digest);
        attest_policy_free(h->policy);
        h->policy = TAKE_PTR(p);
        attest_policy_free(h->member);
        h->member = TAKE_PTR(member);
        free(h->text);
        h->text = strndup((const char *) data, size);
        hex_encode_buf(digest, sizeof(digest), h->digest, sizeof(h->digest));
        h->st = *st;
        log_info("join-service: policy %s loaded (sha256 %s)", h->path, h->digest);
        return 0;
}

void policy_holder_done(PolicyHolder *h)
{
        h->policy = attest_policy_free(h->policy);
        h->member = attest_policy_free(h->member);
        free(h->text);
        h->text = NULL;
        (void) pthread_mutex_destroy(&h->lock);
}

static void audit_write(JoinService *js, const char *event, const char *node, const char *role,
                        const char *evidence_digest, const char *verdict, const char *reason,
                        bool to_etcd);

/* Takes the counts held back (audit_lock held) into out; returns how many. */
static size_t tally_take_locked(JoinService *js, JoinTally out[static JOIN_TALLY_KINDS],
                                time_t *ret_since)
{
        size_t n = 0;

        for (size_t i = 0; i < js->n_tally; i++)
                if (js->tally[i].count > 0)
                        out[n++] = js->tally[i];
        *ret_since = js->tally_start;
        js->n_tally = 0;
        js->tally_start = time(NULL);
        return n;
}

/* Writes them (no lock held: writing takes the policy and audit locks). */
static void tally_write(JoinService *js, const JoinTally *t, size_t n, time_t since)
{
        for (size_t i = 0; i < n; i++) {
                char reason[320];

                (void) snprintf(reason, sizeof(reason),
                                "%u more refusal(s) like the previous one of %s (%s) since %lld, "
                                "counted, not written one by one",
                                t[i].count, t[i].node, t[i].reason, (long long) since);
                audit_write(js, "refusal", t[i].node, "", t[i].key, "refused", reason, true);
        }
}

void join_audit_flush(JoinService *js)
{
        JoinTally taken[JOIN_TALLY_KINDS];
        time_t since;
        size_t n;

        (void) pthread_mutex_lock(&js->audit_lock);
        n = tally_take_locked(js, taken, &since);
        (void) pthread_mutex_unlock(&js->audit_lock);
        tally_write(js, taken, n, since);
}

/* true if this refusal is a repeat within the window (counted instead of written). */
static bool tally_repeat(JoinService *js, const char *key, const char *node, const char *reason)
{
        JoinTally taken[JOIN_TALLY_KINDS], *t;
        time_t now = time(NULL), since;
        size_t n;

        /* A window that ended: what it held back is written first. */
        (void) pthread_mutex_lock(&js->audit_lock);
        if (now - js->tally_start >= JOIN_TALLY_WINDOW_SEC || now < js->tally_start) {
                n = tally_take_locked(js, taken, &since);
                (void) pthread_mutex_unlock(&js->audit_lock);
                tally_write(js, taken, n, since);
                (void) pthread_mutex_lock(&js->audit_lock);
        }
        for (size_t i = 0; i < js->n_tally; i++)
                if (strcmp(js->tally[i].key, key) == 0) {
                        js->tally[i].count++;
                        (void) pthread_mutex_unlock(&js->audit_lock);
                        return true;
                }
        /* A new kind: written; with every slot taken, the last slot stands for all others. */
        if (js->n_tally == JOIN_TALLY_KINDS) {
                js->tally[JOIN_TALLY_KINDS - 1].count++;
                (void) pthread_mutex_unlock(&js->audit_lock);
                return true;
        }
        t = &js->tally[js->n_tally++];
        *t = (JoinTally){};
        (void) snprintf(t->key, sizeof(t->key), "%s", key);
        (void) snprintf(t->node, sizeof(t->node), "%s", node);
        (void) snprintf(t->reason, sizeof(t->reason), "%s", reason);
        (void) pthread_mutex_unlock(&js->audit_lock);
        return false;
}

void join_audit(JoinService *js, const char *event, const char *node, const char *role,
                const char *evidence_digest, const char *verdict, const char *reason)
{
        audit_write(js, event, node, role, evidence_digest, verdict, reason, true);
}

void join_audit_local(JoinService *js, const char *event, const char *node, const char *role,
                      const char *evidence_digest, const char *verdict, const char *reason)
{
        audit_write(js, event, node, role, evidence_digest, verdict, reason, false);
}

void join_audit_entry(JoinService *js, AuditEntry *e, char policy_digest[static 65],
                      const char *event, const char *node, const char *role,
                      const char *evidence_digest, const char *verdict, const char *reason)
{
        (void) pthread_mutex_lock(&js->policy.lock);
        memcpy(policy_digest, js->policy.digest, sizeof(js->policy.digest));
        (void) pthread_mutex_unlock(&js->policy.lock);
        *e = (AuditEntry){
                .event = event,
                .node = node ?: "",
                .role = role ?: "",
                .evidence_digest = evidence_digest ?: "",
                .policy_digest = policy_digest,
                .verdict = verdict,
                .reason = reason ?: "",
        };
}

static void audit_write(JoinService *js, const char *event, const char *node, const char *role,
                        const char *evidence_digest, const char *verdict, const char *reason,
                        bool to_etcd)
{
        char policy_digest[sizeof(js->policy.digest)];

        /* policy.lock is recursive: the handshake's verifier holds it when it audits. */
        (void) pthread_mutex_lock(&js->policy.lock);
        memcpy(policy_digest, js->policy.digest, sizeof(policy_digest));
        (void) pthread_mutex_unlock(&js->policy.lock);

        const AuditEntry e = {
                .event = event,
                .node = node ?: "",
                .role = role ?: "",
                .evidence_digest = evidence_digest ?: "",
                .policy_digest = policy_digest,
                .verdict = verdict,
                .reason = reason ?: "",
        };
        Diag d;
        int r;

        diag_clear(&d);
        (void) pthread_mutex_lock(&js->audit_lock);
        r = audit_log_append(js->audit_log, &e, &d);
        if (r >= 0)
                join_checkpoint_appended_locked(js);
        (void) pthread_mutex_unlock(&js->audit_lock);
        if (r < 0)
                log_error("join-service: CANNOT WRITE THE AUDIT LOG %s: %s", js->audit_log,
                          d.message);
        /* The cluster's chain in etcd too (admissions and rejoins are written there with their
         * member record, in one transaction, and come here with to_etcd false). */
        if (to_etcd && js->etcd) {
                diag_clear(&d);
                if (join_etcd_audit(js, &e, &d) < 0)
                        log_error("join-service: cannot append to the cluster's audit chain in "
                                  "etcd (the entry is in %s): %s",
                                  js->audit_log, d.message);
        }
        /* Every admission, rejoin and recovery is signed at once (refusals with the next
         * checkpoint: each would cost a quote, and anyone can cause one). */
        if (r >= 0 && strcmp(event, "refusal") != 0)
                join_checkpoint_update(js);
        if (strcmp(verdict, "refused") == 0)
                log_warning("join-service: %s refused (%s): %s", node ?: "?", event, reason);
        else
                log_info("join-service: %s: %s %s", event, node ?: "?", verdict);
}

void join_monitor_refusal(JoinService *js, const char *node, const char *digest, const char *reason)
{
        /* A client that did not attest, or the same failing evidence again (a replay costs its
         * sender nothing): counted. The network process can report refusals only: an admission
         * is the monitor's own verdict. */
        if (tally_repeat(js, digest, node, reason))
                return;
        join_audit(js, "refusal", node, "", digest, "refused", reason);
}

/* The network process: refusals go to the monitor, which owns the audit log. */
void join_network_refusal(JoinService *js, const char *node, const char *digest, const char *reason)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        const char *detail, *answer;
        PrivsepBuf b;
        size_t size;
        int status, r;

        privsep_buf_begin(&b, JOIN_PRIVSEP_REFUSAL, 0);
        privsep_buf_add_text(&b, node);
        privsep_buf_add_text(&b, digest);
        privsep_buf_add_text(&b, reason);
        r = monitor_call(js->monitor, &b, &status, &detail, &answer, &buf, &size);
        privsep_buf_done(&b);
        if (r < 0)
                log_error("join-service: cannot report a refusal to the monitor: %s", strerror(-r));
}

int policy_holder_refresh_from_monitor(JoinService *js, Diag *d)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        const char *digest, *text;
        PrivsepBuf b;
        size_t size;
        int status, r;

        privsep_buf_begin(&b, JOIN_PRIVSEP_POLICY, 0);
        privsep_buf_add_text(&b, js->policy.digest);
        r = monitor_call(js->monitor, &b, &status, &digest, &text, &buf, &size);
        privsep_buf_done(&b);
        if (r >= 0)
                r = status;
        if (r < 0)
                return diag_fail(d, r, "policy", -1, "the monitor has no policy: %s",
                                 digest && digest[0] ? digest : strerror(-r));
        if (!text[0] || strcmp(digest, js->policy.digest) == 0)
                return 0;
        return policy_holder_load_text(&js->policy, (const uint8_t *) text, strlen(text), d);
}

/* Verifies evidence against the policy (PCR 15 zero, or this cluster's for a member finishing
 * its join; the handler then admits only that member). policy.lock held. */
static int verify_with_policies(JoinService *js, const uint8_t *evidence, size_t size,
                                const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        PolicyVerifier pv = { .policy = js->policy.policy };
        AtlsVerifier v = policy_verifier(&pv);
        int r;

        r = v.verify(v.userdata, evidence, size, binding, d);
        if (r < 0 && strcmp(d->check, "pcr") == 0 && d->index == 15) {
                Diag md;
                diag_clear(&md);
                pv = (PolicyVerifier){ .policy = js->policy.member };
                v = policy_verifier(&pv);
                if (v.verify(v.userdata, evidence, size, binding, &md) >= 0)
                        r = 0;
        }
        return r;
}

int join_call_verify(JoinService *js, const JoinCall *c, char ret_digest[static 65], Diag *d)
{
        uint8_t digest[32], binding[ATLS_BINDING_SIZE];
        Diag pd;
        int r;

        ret_digest[0] = '\0';
        if (!c->evidence || !c->nonce || !c->spki)
                return diag_fail(d, -EPERM, "evidence", -1, "the client did not attest");
        crypto_sha256(c->evidence, c->evidence_size, digest);
        hex_encode_buf(digest, sizeof(digest), ret_digest, 65);
        (void) pthread_mutex_lock(&js->policy.lock);
        diag_clear(&pd);
        if (policy_holder_refresh(&js->policy, &pd) < 0)
                log_error("join-service: the changed policy is refused, the previous one stays in "
                          "force: %s",
                          pd.message);
        /* The binding a client computes for this nonce and its own key (and the WireGuard key
         * its certificate carried, for a mesh request): evidence made for another connection or
         * key does not verify. */
        r = atls_binding_wg(js->policy.policy->variant, ATLS_ROLE_CLIENT, c->nonce, c->spki,
                            c->spki_size, c->wg_key, binding);
        if (r >= 0)
                r = verify_with_policies(js, c->evidence, c->evidence_size, binding, d);
        else
                (void) diag_fail(d, r, "atls-binding", -1, "cannot compute the binding");
        (void) pthread_mutex_unlock(&js->policy.lock);
        if (r < 0)
                return r;
        /* Genuine evidence, but for a handshake of this service? Only a nonce this process
         * issued, once: evidence captured from an earlier connection, replayed by the network
         * process, is bound to a nonce already used or never issued here. */
        r = privsep_nonce_consume(&js->nonces, c->nonce);
        if (r == -EALREADY)
                return diag_fail(d, -EPERM, "nonce", -1,
                                 "its nonce was used already (evidence replayed from another "
                                 "request)");
        if (r == -ETIME)
                return diag_fail(d, -EPERM, "nonce", -1,
                                 "its nonce expired (issued over %d s ago); connect again",
                                 JOIN_NONCE_TTL_SEC);
        if (r < 0)
                return diag_fail(d, -EPERM, "nonce", -1,
                                 "its nonce was not issued by this join service (evidence "
                                 "replayed from another connection?)");
        return 0;
}

static int join_verify_cb(void *userdata, const uint8_t *evidence, size_t size,
                          const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        JoinService *js = userdata;
        uint8_t digest[32];
        char hex[65];
        Diag pd;
        int r;

        /* The network process, in the handshake: the policy as the monitor has it now (a
         * policy file that no longer parses keeps the last good one in force there). */
        crypto_sha256(evidence, size, digest);
        hex_encode_buf(digest, sizeof(digest), hex, sizeof(hex));
        (void) pthread_mutex_lock(&js->policy.lock);
        diag_clear(&pd);
        if (policy_holder_refresh_from_monitor(js, &pd) < 0)
                log_error("join-service: the policy could not be refreshed, the previous one stays "
                          "in force: %s",
                          pd.message);
        r = verify_with_policies(js, evidence, size, binding, d);
        (void) pthread_mutex_unlock(&js->policy.lock);
        if (r < 0)
                join_network_refusal(js, "(handshake)", hex, d->message);
        return r;
}

AtlsVerifier join_verifier(JoinService *js)
{
        return (AtlsVerifier){ .variant = js->policy.policy->variant,
                               .verify = join_verify_cb,
                               .userdata = js };
}

void join_service_init_locks(JoinService *js)
{
        pthread_mutexattr_t attr;

        (void) pthread_mutexattr_init(&attr);
        (void) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        (void) pthread_mutex_init(&js->policy.lock, &attr);
        (void) pthread_mutexattr_destroy(&attr);
        (void) pthread_mutex_init(&js->members_lock, NULL);
        (void) pthread_mutex_init(&js->audit_lock, NULL);
        (void) pthread_mutex_init(&js->certkey_lock, NULL);
        js->tally_start = time(NULL);
}

void join_service_done(JoinService *js)
{
        if (js->audit_log)
                join_audit_flush(js);
        for (size_t i = 0; i < JOIN_TICKETS_MAX; i++)
                js->issued[i].ticket = secret_free(js->issued[i].ticket);
        policy_holder_done(&js->policy);
        js->etcd = etcd_client_free(js->etcd);
        (void) pthread_mutex_destroy(&js->members_lock);
        (void) pthread_mutex_destroy(&js->audit_lock);
        (void) pthread_mutex_destroy(&js->certkey_lock);
}
