/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Intel TDX quotes (Intel TDX DCAP Quote Generation Library and Quote Verification Library API,
 * "Quote Format" appendix; quote versions 4 and 5, TD 1.0 and TD 1.5 bodies): parsing through the
 * bounded reader, the ECDSA P-256 quote signature, the QE report and its signature by the PCK
 * certificate, the QE report data binding, the PCK chain to the Intel SGX Root CA pinned by
 * fingerprint, PCK certificate extensions, Intel's collateral (TCB info, QE identity, CRLs) with
 * its windows at the verification time, TCB evaluation by Intel's algorithm, a TDX policy, and
 * CCEL event log replay to the RTMRs. docs/tdx.md has the details.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cloister/diag.h"
#include "cloister/macro.h"

#define TDX_QUOTE_SIZE_MAX   (64U * 1024U)
#define TDX_HEADER_SIZE      48
#define TDX_BODY_TD10_SIZE   584
#define TDX_BODY_TD15_SIZE   648
#define TDX_QE_REPORT_SIZE   384
#define TDX_PCK_CHAIN_MAX    (16U * 1024U)
#define TDX_TEE_TYPE         0x81U
#define TDX_ATT_KEY_ECDSA256 2

/* TD attributes (Intel TDX Module ABI, "TDINFO_STRUCT", ATTRIBUTES). */
#define TDX_TD_ATTR_DEBUG           (1ULL << 0)
#define TDX_TD_ATTR_TUD_RESERVED    0xFEULL /* bits 1-7: reserved, must be zero */
#define TDX_TD_ATTR_SEPT_VE_DISABLE (1ULL << 28)
#define TDX_TD_ATTR_MIGRATABLE      (1ULL << 29)
#define TDX_TD_ATTR_PKS             (1ULL << 30)
#define TDX_TD_ATTR_KL              (1ULL << 31)
#define TDX_TD_ATTR_PERFMON         (1ULL << 63)

/* The SGX report body of the Quoting Enclave (SGX "REPORT_BODY"). */
typedef struct TdxQeReport {
        uint8_t cpusvn[16];
        uint32_t miscselect;
        uint8_t attributes[16];
        uint8_t mrenclave[32];
        uint8_t mrsigner[32];
        uint16_t isvprodid;
        uint16_t isvsvn;
        uint8_t report_data[64];
} TdxQeReport;

/*
 * A parsed quote. The pointers (qe_auth_data, pck_chain) point into the buffer that was parsed,
 * which must outlive the quote.
 */
typedef struct TdxQuote {
        uint16_t version;   /* 4 or 5 */
        uint16_t body_type; /* 2: TD 1.0 body, 3: TD 1.5 body (version 4 is always 2) */
        uint16_t att_key_type;
        uint32_t tee_type;
        uint8_t qe_vendor_id[16];
        uint8_t user_data[20];
        /* TD quote body */
        uint8_t tee_tcb_svn[16];
        uint8_t mr_seam[48];
        uint8_t mr_signer_seam[48];
        uint64_t seam_attributes;
        uint64_t td_attributes;
        uint64_t xfam;
        uint8_t mr_td[48];
        uint8_t mr_config_id[48];
        uint8_t mr_owner[48];
        uint8_t mr_owner_config[48];
        uint8_t rtmr[4][48];
        uint8_t report_data[64];
        uint8_t tee_tcb_svn2[16];  /* TD 1.5 only, else zero */
        uint8_t mr_service_td[48]; /* TD 1.5 only, else zero */
        /* Bytes [0, signed_size) of the buffer are signed by the attestation key. */
        size_t signed_size;
        uint8_t signature[64];       /* r ‖ s, big-endian */
        uint8_t attestation_key[64]; /* x ‖ y of a P-256 point */
        uint8_t qe_report_raw[TDX_QE_REPORT_SIZE];
        TdxQeReport qe_report;
        uint8_t qe_report_signature[64];
        const uint8_t *qe_auth_data;
        uint16_t qe_auth_size;
        const uint8_t *pck_chain; /* PEM: PCK, its CA, the root */
        size_t pck_chain_size;
        size_t trailing; /* bytes after the declared signature data (tolerated) */
} TdxQuote;

/* Checks "tdx-quote-format", "tdx-quote-version", "tdx-quote-size",
 * "tdx-certification-data": -EBADMSG (-EMSGSIZE for a buffer over TDX_QUOTE_SIZE_MAX). */
int tdx_quote_parse(const uint8_t *data, size_t size, TdxQuote *ret, Diag *d);
/* The QE certification data (type 6) alone: the QE report, its signature, the QE auth data and
 * the inner PEM PCK chain (type 5). Used by tdx_quote_parse(); exposed for fuzzing. */
int tdx_certification_data_parse(const uint8_t *data, size_t size, TdxQuote *q, Diag *d);

/* SGX extensions of a PCK certificate (Intel SGX PCK Certificate and CRL Profile, 1.3.6.1.4.1...
 * 1.2.840.113741.1.13.1). */
typedef struct TdxPckExtensions {
        uint8_t ppid[16];
        uint8_t comp_svn[16]; /* SGX TCB components 1..16 */
        uint16_t pcesvn;
        uint8_t cpusvn[16];
        uint8_t pce_id[2];
        uint8_t fmspc[6];
        int sgx_type; /* 0 Standard, 1 Scalable, 2 Scalable with integrity */
} TdxPckExtensions;

/* The SGX extension's DER value (from the certificate). For fuzzing and tests. */
int tdx_pck_extensions_parse(const uint8_t *der, size_t size, TdxPckExtensions *ret);

/* ---- TCB status ---------------------------------------------------------------------------- */

/* A status is a set of flags: "OutOfDateConfigurationNeeded" is OUT_OF_DATE|CONFIGURATION_NEEDED.
 * UpToDate is the empty set. */
typedef enum TdxTcbStatus {
        TDX_TCB_UP_TO_DATE = 0,
        TDX_TCB_SW_HARDENING_NEEDED = 1 << 0,
        TDX_TCB_CONFIGURATION_NEEDED = 1 << 1,
        TDX_TCB_OUT_OF_DATE = 1 << 2,
        TDX_TCB_REVOKED = 1 << 3,
        /* terminal outcomes of the evaluation, never in collateral */
        TDX_TCB_NOT_SUPPORTED = 1 << 4,
        TDX_TCB_MODULE_MISMATCH = 1 << 5,
} TdxTcbStatus;

#define TDX_TCB_TERMINAL (TDX_TCB_REVOKED | TDX_TCB_NOT_SUPPORTED | TDX_TCB_MODULE_MISMATCH)

/* Intel's names ("UpToDate", "OutOfDateConfigurationNeeded", ...); -EBADMSG for others. */
int tdx_tcb_status_from_string(const char *s, unsigned *ret);
/* Intel's name, or "TCBNotSupported" / "TDXModuleMismatch" for the terminal outcomes. */
const char *tdx_tcb_status_to_string(unsigned status);

/* ---- collateral ---------------------------------------------------------------------------- */

#define TDX_COLLATERAL_FILE_MAX   (256U * 1024U)
#define TDX_TCB_LEVELS_MAX        64
#define TDX_ISV_LEVELS_MAX        32
#define TDX_MODULE_IDENTITIES_MAX 16
#define TDX_ADVISORIES_MAX        64  /* per level, and in an evaluation's result */
#define TDX_ADVISORY_POOL_MAX     512 /* per document */
#define TDX_ADVISORY_ID_MAX       24  /* "INTEL-SA-00000" and its NUL, with room */

typedef struct TdxAdvisories {
        char id[TDX_ADVISORIES_MAX][TDX_ADVISORY_ID_MAX];
        unsigned n;
} TdxAdvisories;

/* The advisory IDs of one document, once; levels refer to a range of them. Keeps a parsed TCB
 * info small (it is cached and copied). */
typedef struct TdxAdvisoryPool {
        char id[TDX_ADVISORY_POOL_MAX][TDX_ADVISORY_ID_MAX];
        unsigned n;
} TdxAdvisoryPool;

typedef struct TdxAdvisoryRef {
        uint16_t first, n;
} TdxAdvisoryRef;

typedef struct TdxTcbLevel {
        uint8_t sgx_svn[16];
        uint16_t pcesvn;
        uint8_t tdx_svn[16];
        unsigned status;
        time_t tcb_date;
        TdxAdvisoryRef advisories;
} TdxTcbLevel;

/* A TDX module identity level ("tcb": {"isvsvn": N}) or a QE identity level. */
typedef struct TdxIsvLevel {
        uint16_t isvsvn;
        unsigned status;
        time_t tcb_date;
        TdxAdvisoryRef advisories;
} TdxIsvLevel;

typedef struct TdxModuleIdentity {
        char id[16]; /* "TDX_01"; "" for the base "tdxModule" */
        uint8_t mrsigner[48];
        uint64_t attributes, attributes_mask;
        TdxIsvLevel levels[TDX_ISV_LEVELS_MAX];
        unsigned n_levels;
} TdxModuleIdentity;

/* Intel PCS TCB info v3 for TDX ("tcbInfo" of /tdx/certification/v4/tcb). */
typedef struct TdxTcbInfo {
        time_t issue_date, next_update;
        uint8_t fmspc[6];
        uint8_t pce_id[2];
        unsigned tcb_eval_number;
        TdxModuleIdentity module; /* tdxModule: mrsigner and attributes, no levels */
        TdxModuleIdentity identities[TDX_MODULE_IDENTITIES_MAX];
        unsigned n_identities;
        TdxTcbLevel levels[TDX_TCB_LEVELS_MAX];
        unsigned n_levels;
        TdxAdvisoryPool pool;
        /* the exact signed bytes (the value of "tcbInfo") inside the parsed buffer */
        const uint8_t *signed_data;
        size_t signed_size;
        uint8_t signature[64];
} TdxTcbInfo;

/* Intel PCS QE identity v2 for the TD QE ("enclaveIdentity", id "TD_QE"). */
typedef struct TdxQeIdentity {
        time_t issue_date, next_update;
        unsigned tcb_eval_number;
        uint32_t miscselect, miscselect_mask;
        uint8_t attributes[16], attributes_mask[16];
        uint8_t mrsigner[32];
        uint16_t isvprodid;
        TdxIsvLevel levels[TDX_ISV_LEVELS_MAX];
        unsigned n_levels;
        TdxAdvisoryPool pool;
        const uint8_t *signed_data;
        size_t signed_size;
        uint8_t signature[64];
} TdxQeIdentity;

/* PCS response form {"tcbInfo": {...}, "signature": "<128 hex>"}; the data must outlive the
 * result (signed_data points into it). Heap-allocated: free with free(). -EBADMSG, -EMSGSIZE. */
int tdx_tcb_info_parse(const uint8_t *data, size_t size, TdxTcbInfo **ret, Diag *d);
int tdx_qe_identity_parse(const uint8_t *data, size_t size, TdxQeIdentity **ret, Diag *d);
/* The raw bytes of the value of member key of the top-level JSON object in data (exact
 * span, no re-serialisation): what Intel signs. -EBADMSG if absent, malformed or duplicated. */
int tdx_json_member_span(const uint8_t *data, size_t size, const char *key, const uint8_t **ret,
                         size_t *ret_size);

/* The collateral files in the layout of a PCS/PCCS download (docs/tdx.md): tcb_info.json,
 * tcb_info_issuer_chain.pem, qe_identity.json, qe_identity_issuer_chain.pem, pck_crl.der,
 * pck_crl_issuer_chain.pem, root_ca_crl.der. */
typedef struct TdxCollateral {
        uint8_t *tcb_info, *tcb_info_chain, *qe_identity, *qe_identity_chain;
        uint8_t *pck_crl, *pck_crl_chain, *root_crl;
        size_t tcb_info_size, tcb_info_chain_size, qe_identity_size, qe_identity_chain_size;
        size_t pck_crl_size, pck_crl_chain_size, root_crl_size;
} TdxCollateral;

int tdx_collateral_load_dir(const char *dir, TdxCollateral **ret, Diag *d);
TdxCollateral *tdx_collateral_free(TdxCollateral *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(TdxCollateral *, tdx_collateral_free);

/* ---- verification -------------------------------------------------------------------------- */

/* SHA-256 of the DER of the first certificate in a PEM string. -EBADMSG if there is none. */
int tdx_pem_sha256(const char *pem, uint8_t out[static 32]);

/* SHA-256 of the DER of the Intel SGX Root CA (44:A0:19:6B:...:74:D3), the built-in anchor. */
extern const uint8_t tdx_intel_root_sha256[32];

typedef struct TdxVerifyOptions {
        time_t at; /* verification time; 0 = now */
        /* The trusted root: a PEM certificate whose SHA-256 fingerprint must equal root_sha256.
         * NULL/NULL: the built-in Intel SGX Root CA. Anything else is for tests and sim-tdx. */
        const char *root_pem;
        const uint8_t *root_sha256;
} TdxVerifyOptions;

typedef struct TdxTcbEvaluation {
        unsigned status;          /* final, converged */
        unsigned platform_status; /* the matched platform TCB level's */
        int platform_level;       /* index into tcbLevels, -1 if none matched */
        time_t platform_tcb_date;
        unsigned module_status;
        char module_id[16]; /* "TDX_01", or "" (base module, version 0) */
        int module_level;   /* -1: no level (base module or none matched) */
        unsigned qe_status;
        int qe_level;
        unsigned tcb_eval_number; /* the TCB info's */
        unsigned qe_tcb_eval_number;
        TdxAdvisories advisories; /* platform, module and QE levels', without duplicates */
} TdxTcbEvaluation;

typedef struct TdxVerification {
        TdxPckExtensions pck;
        char pck_ca[64];          /* the PCK issuer's CN */
        time_t pck_not_after;     /* earliest expiry in the PCK chain */
        bool collateral;          /* collateral was given and verified */
        TdxTcbEvaluation tcb;     /* valid when collateral */
        time_t collateral_expiry; /* earliest nextUpdate/notAfter over all collateral */
} TdxVerification;

typedef void (*TdxCheckFunc)(void *userdata, const char *name, bool ok, const char *expected,
                             const char *actual, const char *detail);

/*
 * Authenticity of a parsed quote (raw: the buffer it was parsed from): the PCK chain to the
 * pinned root valid at the verification time, PCK extensions, the QE report's signature by the
 * PCK key, SHA-256(attestation key ‖ QE auth data) = QE report data[0:32] (the rest zero), the
 * quote's signature by the attestation key. With collateral: the TCB info's and QE identity's
 * signatures over their exact bytes, their signer chain to the root valid at the time, the PCK
 * CRL (issued by the PCK's issuer) and the root CA CRL, every issueDate/nextUpdate window, the QE
 * identity, the TDX module identity, and the TCB evaluation (ret->tcb). Terminal TCB outcomes
 * (Revoked, not supported, module mismatch) fail here; which other statuses are acceptable is a
 * policy question (tdx_check_policy). Every check passed is reported to cb (may be NULL); the
 * first failure goes into d and stops. -EBADMSG malformed, -EKEYREJECTED signature/chain/
 * revocation, -ESTALE collateral outside its window, -EPERM terminal TCB outcome.
 */
int tdx_verify_quote(const TdxQuote *q, const uint8_t *raw, size_t raw_size,
                     const TdxCollateral *collateral, const TdxVerifyOptions *opts,
                     TdxVerification *ret, TdxCheckFunc cb, void *userdata, Diag *d);

/* Verified PCK chains and collateral sets are cached process-wide (16 each, keyed by their exact
 * bytes and the root; validity at the verification time, revocation, windows and the TCB
 * evaluation run on every call). For tests and benchmarks. */
void tdx_cache_flush(void);

/* Intel's TCB evaluation alone, on parsed collateral (collateral signatures not checked here).
 * For tests and tdx_verify_quote(). */
int tdx_evaluate_tcb(const TdxQuote *q, const TdxPckExtensions *pck, const TdxTcbInfo *tcb,
                     const TdxQeIdentity *qe, TdxTcbEvaluation *ret, Diag *d);

/* ---- policy -------------------------------------------------------------------------------- */

#define TDX_POLICY_VALUES_MAX 16
#define TDX_ROOT_PEM_MAX      4096

typedef struct TdxPolicyValues {
        uint8_t v[TDX_POLICY_VALUES_MAX][48];
        size_t n; /* 0: any value */
} TdxPolicyValues;

typedef struct TdxPolicy {
        TdxPolicyValues mr_td, rtmr[4], mr_seam, mr_signer_seam, mr_config_id, mr_owner,
                mr_owner_config, mr_service_td;
        bool check_xfam;
        uint64_t xfam;
        bool allow_debug;             /* default false */
        bool allow_migratable;        /* default false: a migratable TD's state can be exported */
        bool require_sept_ve_disable; /* default true */
        bool azure_paravisor;  /* the paravisor's TD leaves SEPT_VE_DISABLE clear: accepted */
        unsigned accepted_tcb; /* statuses (flags) each of whose bits is accepted; default
                                  UpToDate only */
        unsigned min_tcb_eval_number;
        bool check_advisories; /* false: advisories are reported, not judged */
        TdxAdvisories allowed_advisories;
        bool require_collateral; /* default true: no TCB status, no pass */
        /* sim-tdx only: the simulator's root (PEM), trusted instead of Intel's */
        char trusted_root_pem[TDX_ROOT_PEM_MAX];
} TdxPolicy;

void tdx_policy_defaults(TdxPolicy *p);

/* The "tdx" object of a policy file (docs/tdx.md). */
typedef struct JsonCtx JsonCtx;
typedef struct json_t json_t;
int tdx_policy_from_json(const JsonCtx *ctx, const json_t *o, TdxPolicy *ret);
/* A policy file {"version": 1, "variant": "tdx", "tdx": {...}}. */
int tdx_policy_load(const char *path, TdxPolicy *ret, Diag *d);
/* The same from the exact bytes of one (source names them in messages). */
int tdx_policy_parse(const uint8_t *data, size_t size, const char *source, TdxPolicy *ret, Diag *d);

/* Every check by name ("tdx-debug", "tdx-sept-ve-disable", "tdx-mrtd", "tdx-rtmr" with its
 * index in the detail, "tdx-tcb-status", ...). v may be NULL only if the policy does not require
 * collateral. report_data: the 64 bytes REPORTDATA must equal (constant time), or NULL.
 * Returns 0 or the errno of the first failure (-EPERM policy, -ESTALE report data). */
int tdx_check_policy(const TdxQuote *q, const TdxVerification *v, const TdxPolicy *p,
                     const uint8_t *report_data, TdxCheckFunc cb, void *userdata, Diag *d);

/* ---- issuing inside a TD -------------------------------------------------------------------- */

#define TDX_GUEST_CONFIGFS_TSM "/sys/kernel/config/tsm/report"
#define TDX_GUEST_DEVICE       "/dev/tdx_guest"

/* A quote with REPORTDATA = report_data through configfs-tsm (provider tdx_guest). -ENODEV
 * outside a TD; -EOPNOTSUPP with only /dev/tdx_guest (a TDREPORT is not a quote); -EPROTO if
 * what comes back is not a quote of that REPORTDATA. Untested on hardware here. */
int tdx_guest_get_quote(const uint8_t report_data[static 64], uint8_t **ret, size_t *ret_size,
                        Diag *d);

/* ---- CCEL event log ------------------------------------------------------------------------ */

#define TDX_CCEL_TABLE_SIZE 56
#define TDX_CCEL_LOG_MAX    (4U * 1024U * 1024U)

/* The RTMRs a CCEL log replays to (SHA-384, MR index 1..4 → RTMR0..3). */
typedef struct TdxRtmrs {
        uint8_t rtmr[4][48];
        uint32_t touched; /* bit i: some event extended RTMR i */
        size_t n_events;
} TdxRtmrs;

/* The ACPI CCEL table (ACPI 6.5, "CC Event Log ACPI Table"); table may be NULL. -EBADMSG if the
 * table is not a TDX CCEL. The log (the LASA area) ends at its first unused record. */
int tdx_ccel_replay(const uint8_t *table, size_t table_size, const uint8_t *log, size_t log_size,
                    TdxRtmrs *ret, Diag *d);
/* Replays and compares with the quote: -EPERM naming the first RTMR that differs
 * ("tdx-rtmr-replay", index 0..3). */
int tdx_ccel_check(const TdxQuote *q, const uint8_t *table, size_t table_size, const uint8_t *log,
                   size_t log_size, TdxRtmrs *ret, Diag *d);

/* ---- RTMR events and their prediction from an image (docs/tdx.md, "RTMR prediction") ------- */

/* One measurement into an RTMR: MR index 1..4 (RTMR0..3), the TCG event type, SHA-384. */
typedef struct TdxRtmrEvent {
        uint32_t mr_index;
        uint32_t type;
        char description[48];
        uint8_t digest[48];
} TdxRtmrEvent;

#define TDX_RTMR_EVENTS_MAX 16

/* RTMR[i] = SHA-384(RTMR[i] || digest) for each event, from zero (TDX module base spec, TDG.MR.
 * RTMR.EXTEND). -EINVAL if an event's MR index is not 1..4. */
int tdx_rtmrs_fold(const TdxRtmrEvent *events, size_t n, TdxRtmrs *ret);

/* The events of a CCEL log (as tdx_ccel_replay() reads it) with their SHA-384 digests, EV_NO_ACTION
 * left out; *ret is allocated. */
int tdx_ccel_events(const uint8_t *table, size_t table_size, const uint8_t *log, size_t log_size,
                    TdxRtmrEvent **ret, size_t *ret_n, Diag *d);

/* The event types the model names (TCG PC Client PFP 10.4.1). */
#define TDX_EV_EFI_ACTION                    0x80000007U
#define TDX_EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003U
#define TDX_EV_EFI_GPT_EVENT                 0x80000006U
#define TDX_EV_EVENT_TAG                     0x00000006U
#define TDX_EV_SEPARATOR                     0x00000004U

/* RTMR1 of a TDVF boot (edk2 OvmfPkg TdTcg2Dxe + DxeTpm2MeasureBootLib) that loads the EFI
 * applications app_digests[] (Authenticode SHA-384, in load order) from a GPT disk whose
 * UEFI_GPT_DATA has the SHA-384 gpt_digest, then exits boot services: "Calling EFI Application
 * from Boot Option", one separator, the GPT, the applications, "Exit Boot Services
 * Invocation", "Exit Boot Services Returned with Success". Appends to events (room for
 * n_apps + 5 more); -E2BIG if there is none. */
int tdx_rtmr1_boot_events(const uint8_t gpt_digest[static 48], const uint8_t (*app_digests)[48],
                          size_t n_apps, TdxRtmrEvent *events, size_t *n, size_t max);

/* What a TD running TDVF measures into RTMR1..3 when it boots a systemd-stub UKI directly from
 * a GPT disk (the model of docs/tdx.md, "RTMR prediction"). RTMR0 (the TD's firmware
 * configuration: TD HOB, ACPI tables, Secure Boot and boot variables) is not predicted. */
typedef struct TdxRtmrPrediction {
        TdxRtmrEvent events[TDX_RTMR_EVENTS_MAX];
        size_t n_events;
        TdxRtmrs rtmrs;
        bool predicted[4]; /* [0] never */
        bool kernel_cc;    /* the kernel's EFI stub measures into EFI_CC_MEASUREMENT_PROTOCOL */
} TdxRtmrPrediction;

/* uki: the UKI (as uki_predict() accepts it); gpt_data: the disk's UEFI_GPT_DATA
 * (tcg_gpt_event_data()). -EOPNOTSUPP a UKI outside the model, reason in d. */
int tdx_predict_uki_rtmrs(const uint8_t *uki, size_t size, const uint8_t *gpt_data, size_t gpt_size,
                          TdxRtmrPrediction *ret, Diag *d);

/* ---- collateral from Intel PCS or a PCCS, cached (docs/tdx.md, "Caching and cost") ---------- */

#define TDX_PCS_URL_DEFAULT      "https://api.trustedservices.intel.com/tdx/certification/v4"
#define TDX_ROOT_CRL_URL_DEFAULT "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"

/* A PCS or PCCS base URL as every option and the configuration take it: ending in
 * /tdx/certification/v4. */
bool tdx_pcs_url_ok(const char *url);

typedef struct TdxPcsConfig {
        /* ".../tdx/certification/v4" of Intel PCS or a PCCS; the PCK CRL is fetched from the
         * same URL with "/sgx/" for "/tdx/" (".../sgx/certification/v4/pckcrl"). */
        const char *base_url;
        /* NULL: TDX_ROOT_CRL_URL_DEFAULT for Intel PCS, ".../sgx/certification/v4/rootcacrl"
         * for any other base URL (a PCCS). */
        const char *root_crl_url;
        const char *cache_dir; /* NULL: no cache */
        bool offline;          /* cache only */
        unsigned timeout_ms, retries, backoff_ms;
        /* 0: none; else the bound of one lookup, every request, retry and wait of its items */
        unsigned budget_ms;
} TdxPcsConfig;

void tdx_pcs_config_defaults(TdxPcsConfig *c);
/* Network requests made by this process (tests and bench: zero once cached). */
unsigned tdx_pcs_requests(void);

typedef struct TdxPcsResult {
        char fmspc[13];        /* hex */
        char ca[16];           /* "processor" or "platform" */
        unsigned fetched;      /* items fetched now (0: all from the cache) */
        unsigned stale;        /* items past their nextUpdate at the verification time */
        bool refresh_failed;   /* a refresh of a stale item failed (the rest are not tried) */
        char stale_note[1024]; /* which, since when, why not refreshed, the next step */
} TdxPcsResult;

/*
 * The collateral of the quote's platform (FMSPC and PCK CA from its PCK certificate): TCB info
 * per FMSPC, QE identity, PCK CRL per CA, root CA CRL, each from the cache when it is still
 * valid at time at (0: now), else fetched (unless offline) and cached; the issuer chains come
 * from the response headers, URL-decoded. A cached item past its nextUpdate that cannot be
 * refreshed is returned as it is and counted stale (verification then fails it as stale): never
 * silently accepted, never silently dropped. Nothing here is trusted: tdx_verify_quote() checks
 * the result exactly as files. -ENOENT offline and not cached, other errors from the service.
 */
int tdx_pcs_collateral(const TdxPcsConfig *c, const TdxQuote *q, time_t at, TdxCollateral **ret,
                       TdxPcsResult *res, Diag *d);

/* The same, keyed by FMSPC (12 lowercase hex digits) and PCK CA ("processor" or "platform"),
 * as a join service's monitor looks them up for evidence that carries no collateral (anything
 * else is refused, -EINVAL: the key names cache files). */
int tdx_pcs_collateral_for(const TdxPcsConfig *c, const char *fmspc, const char *ca, time_t at,
                           TdxCollateral **ret, TdxPcsResult *res, Diag *d);
bool tdx_pcs_key_ok(const char *fmspc, const char *ca);
/* Writes col into the cache cache_dir as the collateral of (fmspc, ca), in the layout a fetch
 * leaves: for a simulated platform (cloister attestation sim-tdx-root --collateral-cache), whose
 * collateral no PCS serves. Adds no trust: readers verify it as any. -EINVAL, or -errno. */
int tdx_pcs_cache_put(const char *cache_dir, const char *fmspc, const char *ca,
                      const TdxCollateral *col);
/* The FMSPC and PCK CA of the quote's PCK certificate, into res->fmspc and res->ca. */
int tdx_pcs_platform(const TdxQuote *q, TdxPcsResult *res, Diag *d);

/* Percent-decoding of a header value (PCS issuer chains: URL-encoded PEM); '+' is literal.
 * -EBADMSG on a malformed escape or a NUL, -EMSGSIZE past max. For fuzzing and tests. */
int tdx_url_decode(const uint8_t *in, size_t size, size_t max, uint8_t **ret, size_t *ret_size);

/* ---- refreshing cached collateral ahead of nextUpdate (docs/tdx.md, "Joins and the cache") --- */

#define TDX_REFRESH_KEYS_MAX 16

/*
 * A join service's refresher: for every platform it has seen (FMSPC, PCK CA; at most
 * TDX_REFRESH_KEYS_MAX, the oldest forgotten), fetches again each cached item whose nextUpdate
 * falls within ahead_sec of now, every interval_sec; a failed round is retried after a doubling
 * backoff (from interval_sec / 8, at most interval_sec), logged each time. Runs in its own
 * thread, never on a verification's path: lookups read the cache only.
 */
typedef struct TdxRefresher {
        TdxPcsConfig pcs; /* base_url, cache_dir (required); offline is ignored */
        unsigned ahead_sec, interval_sec;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stop, running;
        pthread_t thread;
        char fmspc[TDX_REFRESH_KEYS_MAX][13], ca[TDX_REFRESH_KEYS_MAX][16];
        size_t n_keys, next_key;
        unsigned rounds, failures; /* rounds run; consecutive failed rounds */
} TdxRefresher;

void tdx_refresher_init(TdxRefresher *t);
/* Records a platform to keep fresh (a malformed key is ignored); wakes the thread when new. */
void tdx_refresher_seen(TdxRefresher *t, const char *fmspc, const char *ca);
/* The platforms whose collateral the cache holds (a TCB info per FMSPC, with each PCK CA whose
 * CRL is there), recorded as seen: kept fresh across restarts. Returns how many. */
size_t tdx_refresher_seen_from_cache(TdxRefresher *t);
/* One round over every key, at time now: the number of keys that failed (logged). */
unsigned tdx_refresher_round(TdxRefresher *t, time_t now);
int tdx_refresher_start(TdxRefresher *t);
void tdx_refresher_stop(TdxRefresher *t);
