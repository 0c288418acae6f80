/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Attestation policy and verification of evidence documents (evidence.h) against it.
 *
 * Policy file (JSON, docs/evidence-format.md):
 *   {"version": 1, "variant": "qemu-vtpm",
 *    "measurements": {"4": {"expected": "<64 hex>", "warnOnly": false}, ...},
 *    "akTrust": {"mode": "pinned", "akPublic": "<base64 DER SubjectPublicKeyInfo>"}
 *             | {"mode": "ek-cert", "caRoots": "<PEM bundle>"}
 *             | {"mode": "insecure-any"},
 *    "eventLog": "required" | "if-present" | "ignore"}
 */

#include <stdbool.h>
#include <time.h>

#include "cloister/diag.h"
#include "cloister/evidence.h"
#include "cloister/secret.h"

#define ATTEST_POLICY_VERSION  1
#define ATTEST_POLICY_SIZE_MAX (256U * 1024U)
#define ATTEST_BINDING_SIZE    32

typedef enum AkTrust {
        AK_TRUST_PINNED,
        AK_TRUST_EK_CERT,
        AK_TRUST_INSECURE_ANY,
        _AK_TRUST_MAX,
        _AK_TRUST_INVALID = -EINVAL,
} AkTrust;

typedef enum EventLogMode {
        EVENT_LOG_IF_PRESENT,
        EVENT_LOG_REQUIRED,
        EVENT_LOG_IGNORE,
        _EVENT_LOG_MODE_MAX,
        _EVENT_LOG_MODE_INVALID = -EINVAL,
} EventLogMode;

typedef struct PcrExpectation {
        bool present;
        bool warn_only;
        uint8_t expected[EVIDENCE_PCR_SIZE];
} PcrExpectation;

typedef struct AttestPolicy {
        AttestVariant variant;
        PcrExpectation pcrs[EVIDENCE_PCR_COUNT];
        AkTrust ak_trust;
        Blob ak_pinned_spki; /* DER SubjectPublicKeyInfo */
        Blob ek_ca_roots;    /* PEM bundle */
        EventLogMode event_log;
} AttestPolicy;

AttestPolicy *attest_policy_free(AttestPolicy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AttestPolicy *, attest_policy_free);
int attest_policy_parse(const void *data, size_t size, const char *source, AttestPolicy **ret,
                        Diag *d);
int attest_policy_load(const char *path, AttestPolicy **ret, Diag *d);

const char *ak_trust_to_string(AkTrust t);
const char *event_log_mode_to_string(EventLogMode m);

typedef enum CheckStatus {
        CHECK_PASS,
        CHECK_FAIL,
        CHECK_WARN,    /* a warnOnly mismatch, or an insecure mode in use */
        CHECK_SKIPPED, /* not applicable or not requested; the detail says why */
        CHECK_PENDING, /* needs an online step (credential activation) */
        _CHECK_STATUS_MAX,
} CheckStatus;

const char *check_status_to_string(CheckStatus s);

typedef struct CheckResult {
        char name[DIAG_CHECK_MAX];
        int index;
        CheckStatus status;
        bool enforced;
        char expected[DIAG_VALUE_MAX];
        char actual[DIAG_VALUE_MAX];
        char detail[DIAG_MESSAGE_MAX];
} CheckResult;

/* Every check a verification ran, in order, for display (`cloister attestation verify`). */
typedef struct AttestReport {
        CheckResult *checks;
        size_t n_checks;
        bool needs_credential_activation;
} AttestReport;

void attest_report_done(AttestReport *r);

/*
 * Verifies evidence against policy. binding is the 32-byte digest the quote's qualifying data
 * must equal (aTLS: the domain-separated hash of nonce and TLS key); NULL skips that check and
 * records it as skipped (offline inspection only: such a result proves nothing about freshness).
 * at is the verification time for certificates (0 = now). Returns 0 if every enforced check
 * passed, else the errno of the first failure with d filled. With ak_trust ek-cert, success
 * still requires credential activation (report->needs_credential_activation): see
 * attest_credential_challenge_new().
 */
int attest_verify(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                  AttestReport *report, Diag *d);
