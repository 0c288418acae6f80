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
 * SNP variants carry "snp": {"trustedArks": PEM, "allowDebug": false, "allowMigrationAgent":
 *    false, "allowSmt": true, "vmpl": 0, "minTcb": {"bootloader", "tee", "snp", "microcode",
 *    "fmc"}, "minGuestSvn": 0, "measurements": [hex], "hostData": hex, "idKeyDigests": [hex]}
 * instead of "measurements"/"akTrust". sim-snp trusts only trustedArks (never AMD's roots).
 */

#include <stdbool.h>
#include <time.h>

#include "cloister/diag.h"
#include "cloister/evidence.h"
#include "cloister/secret.h"
#include "cloister/sev-snp.h"
#include "cloister/tdx.h"

#define ATTEST_POLICY_VERSION  1
#define ATTEST_POLICY_SIZE_MAX (256U * 1024U)
#define ATTEST_AK_PINS_MAX     64
#define ATTEST_BINDING_SIZE    32
/* "measurementSets": the image measurements a policy admits during an upgrade (docs/upgrade.md). */
#define ATTEST_MEASUREMENT_SETS_MAX 8
#define ATTEST_SET_NAME_MAX         64

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

/* One named set of PCR expectations, named by the image version it describes. */
typedef struct MeasurementSet {
        char name[ATTEST_SET_NAME_MAX + 1];
        PcrExpectation pcrs[EVIDENCE_PCR_COUNT];
} MeasurementSet;

typedef struct AttestPolicy {
        AttestVariant variant;
        /* Checked for every node (PCR 15, the cluster's, is set here by verifiers). */
        PcrExpectation pcrs[EVIDENCE_PCR_COUNT];
        /* With sets (TPM variants only), a node must also match one set in full; the sets and pcrs
         * name disjoint PCRs. The first set that matches is reported (AttestReport.matched_set). */
        MeasurementSet sets[ATTEST_MEASUREMENT_SETS_MAX];
        size_t n_sets;
        AkTrust ak_trust;
        /* DER SubjectPublicKeyInfo of each pinned AK: a policy for several nodes pins each
         * node's key ("akPublic": one string or a list). */
        Blob ak_pinned[ATTEST_AK_PINS_MAX];
        size_t n_ak_pinned;
        Blob ek_ca_roots; /* PEM bundle */
        EventLogMode event_log;
        /* sev-snp and sim-snp */
        SnpPolicy snp;
        Blob snp_trusted_arks; /* PEM: ARKs trusted besides AMD's built-in ones */
        /* tdx (docs/tdx.md, "Policy") */
        TdxPolicy tdx;
} AttestPolicy;

AttestPolicy *attest_policy_free(AttestPolicy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AttestPolicy *, attest_policy_free);
int attest_policy_parse(const void *data, size_t size, const char *source, AttestPolicy **ret,
                        Diag *d);
int attest_policy_load(const char *path, AttestPolicy **ret, Diag *d);
/* Parsing refuses a policy that pins nothing (-EPERM, check "policy-permissive"): an SNP policy
 * with neither a launch measurement nor a minimum TCB, a TPM policy whose measurements are all
 * warnOnly. It lets an empty measurements object through (key trust only: a joining node fills
 * in its own PCRs); a policy used to verify as it is must also pass this check. */
int attest_policy_check_enforcing(const AttestPolicy *p, const char *source, Diag *d);
/* What a cluster's policy (the join services') must also do: for the TPM variants, enforce the
 * image PCRs 4, 9 and 11. Checked by the join service, the node at init and cloister apply. */
int attest_policy_check_cluster(const AttestPolicy *p, const char *source, Diag *d);
/* Binds what the policy derives from the cluster's ID (SEV-SNP hostDataFromClusterId, in every
 * variant whose evidence carries an SNP report); a verifier that knows the cluster calls it after
 * loading, else such a check fails. */
void attest_policy_bind_cluster(AttestPolicy *p, const uint8_t cluster_id[static 32]);

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
        /* the measurement set the node's PCRs matched ("" if the policy has none, or none
         * matched) */
        char matched_set[ATTEST_SET_NAME_MAX + 1];
} AttestReport;

void attest_report_done(AttestReport *r);

/*
 * Verifies evidence against policy. binding is the 32-byte digest the quote's qualifying data
 * must equal (aTLS: the domain-separated hash of nonce and TLS key); NULL skips that check and
 * records it as skipped (offline inspection only: such a result proves nothing about freshness).
 * at is the verification time for certificates (0 = now). Returns 0 if every enforced check
 * passed, else the errno of the first failure with d filled. With ak_trust ek-cert it returns 1
 * when everything else passed: the AK is not yet proven to live in the EK's TPM, and the caller
 * must complete credential activation (attest_credential_challenge_new()) before trusting it.
 */
int attest_verify(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                  AttestReport *report, Diag *d);
/* e's TPM quote alone: signed by e's own attestation key, over the PCR values e lists, with
 * qualifying data = binding. Proves only that the holder of that key signed binding; the caller
 * must already trust the key (a signed audit checkpoint of a join service whose attested
 * evidence names it). 0, or -errno with d filled (check "tpm-identity"). */
int attest_verify_tpm_signed(const Evidence *e, const uint8_t binding[static 32], Diag *d);

/* --- issuing evidence (attester side) ------------------------------------------------------- */

typedef struct TpmDevice TpmDevice;

typedef struct VtpmIssueConfig {
        uint32_t pcr_mask;     /* default 0xFFFF: PCRs 0-15 */
        const char *event_log; /* default /sys/kernel/security/tpm0/binary_bios_measurements;
                                * "" for none; a missing file is not an error */
        bool include_ek;       /* EK certificate and EK public, for ek-cert verifiers */
        /* The event log already read (a sandboxed process that may open no file): used instead
         * of event_log when set; the caller keeps it alive. */
        const uint8_t *event_log_data;
        size_t event_log_size;
} VtpmIssueConfig;

#define VTPM_EVENT_LOG_DEFAULT "/sys/kernel/security/tpm0/binary_bios_measurements"

void vtpm_issue_config_defaults(VtpmIssueConfig *c);
/* A qemu-vtpm evidence document whose quote's qualifying data is binding. */
int attest_vtpm_issue(TpmDevice *tpm, const VtpmIssueConfig *config,
                      const uint8_t binding[static ATTEST_BINDING_SIZE], Evidence **ret, Diag *d);

typedef struct SnpSimulator SnpSimulator;
/* A sim-snp evidence document: REPORT_DATA = binding || 32 zero bytes. */
int attest_sim_snp_issue(SnpSimulator *sim, const uint8_t binding[static ATTEST_BINDING_SIZE],
                         Evidence **ret, Diag *d);

typedef struct TdxSimulator TdxSimulator;
/* A sim-tdx evidence document: the simulator's quote (REPORTDATA = binding ‖ 32 zero bytes) and
 * its collateral. */
int attest_sim_tdx_issue(TdxSimulator *sim, const uint8_t binding[static ATTEST_BINDING_SIZE],
                         Evidence **ret, Diag *d);

/* A tdx evidence document from this TD (configfs-tsm), REPORTDATA = binding ‖ 32 zero bytes,
 * without collateral (the verifier brings its own). -ENODEV elsewhere. */
int attest_tdx_issue(const uint8_t binding[static ATTEST_BINDING_SIZE], Evidence **ret, Diag *d);

/* A sev-snp evidence document from this SEV-SNP guest (configfs-tsm or /dev/sev-guest), with
 * the host's certificate table when it supplies one. -ENODEV elsewhere. */
int attest_sev_snp_issue(const uint8_t binding[static ATTEST_BINDING_SIZE], Evidence **ret,
                         Diag *d);

/* --- credential activation (ak_trust ek-cert) ----------------------------------------------- */

#define ATTEST_CREDENTIAL_SIZE 32

typedef struct CredentialChallenge {
        Blob id_object;        /* marshaled TPM2B_ID_OBJECT, for the attester's TPM */
        Blob encrypted_secret; /* marshaled TPM2B_ENCRYPTED_SECRET */
        uint8_t credential[ATTEST_CREDENTIAL_SIZE];
} CredentialChallenge;

CredentialChallenge *credential_challenge_free(CredentialChallenge *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CredentialChallenge *, credential_challenge_free);

/* TPM2_MakeCredential in software (TPM 2.0 Part 1, 24): a fresh random credential sealed to the
 * EK in the evidence and bound to the evidence's AK name. Call only after attest_verify()
 * returned 1 for this evidence. */
int attest_credential_challenge_new(const Evidence *e, CredentialChallenge **ret, Diag *d);
/* Constant-time check of what the attester's TPM returned from ActivateCredential. */
int attest_credential_check(const CredentialChallenge *c, const uint8_t *response, size_t size,
                            Diag *d);

/* --- TDX collateral for evidence that carries none (docs/tdx.md) ---------------------------- */

/*
 * Where a process finds the collateral of a tdx/sim-tdx quote whose evidence carries none: a join
 * service's monitor looks in its cache (offline, never fetching), its network process asks the
 * monitor. 0 with *ret (freed by the caller) and note "" or a STALE report (which item, since
 * when, why not refreshed, the next step); <0 with d naming the FMSPC and the next step (-ENOENT:
 * not cached). Process-wide; none set (the default): such evidence is verified without collateral.
 */
typedef int (*AttestTdxCollateralSource)(void *userdata, const char *fmspc, const char *ca,
                                         time_t at, TdxCollateral **ret, char *note,
                                         size_t note_size, Diag *d);
void attest_tdx_collateral_source_set(AttestTdxCollateralSource fn, void *userdata);

/*
 * A verifier's own source (the CLI, a joining node's bootstrapper; docs/tdx.md, "The other
 * direction"): the collateral of the platform from pcs.cache_dir while it is valid at the
 * verification time, else fetched from pcs.base_url and cached; with pcs.offline the cache alone.
 * A missing platform is refused (tdx-collateral-missing) naming the FMSPC, the cache and the next
 * step (fetch_hint: how this verifier is told to fetch, e.g. "run without --pcs-cache to fetch
 * it from --pcs-url"); a stale item is returned with the STALE report as note (verification then
 * fails it as stale). Nothing here adds trust: tdx_verify_quote() checks it as files. Set with
 * attest_tdx_collateral_source_set(attest_tdx_collateral_from_pcs, &source); source must
 * outlive its use.
 */
/* The bound of one such lookup (every request, retry and Retry-After of its four items): a
 * verify or a join waits at most this long on a slow or hostile PCS, then is refused. */
#define ATTEST_TDX_PCS_BUDGET_MS 60000U
typedef struct AttestTdxPcsSource {
        TdxPcsConfig pcs;
        const char *fetch_hint;
} AttestTdxPcsSource;
int attest_tdx_collateral_from_pcs(void *userdata, const char *fmspc, const char *ca, time_t at,
                                   TdxCollateral **ret, char *note, size_t note_size, Diag *d);
