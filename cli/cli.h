/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cloister/verbs.h"

/* image/kubernetes.json pins it (a test keeps the two equal). */
#define CLI_KUBERNETES_VERSION   "v1.35.1"
#define CLI_CLUSTER_NAME_DEFAULT "cloister"
#define CLI_SERVICE_CIDR_DEFAULT "10.96.0.0/12"
#define CLI_CONFIG_FILE_DEFAULT  "cloister.json"

/* Options shared by every verb of `cloister`. */
typedef struct CliOptions {
        OutputFormat output;
} CliOptions;

int verb_master_secret(int argc, char *argv[], void *userdata);
int verb_attestation(int argc, char *argv[], void *userdata);
int verb_verify_report(int argc, char *argv[], void *userdata);
/* attestation sim-tdx-root (cloister-attestation-sim-tdx.c). */
int verb_attestation_sim_tdx_root(int argc, char *argv[], void *userdata);
/* verify-report --type tdx (cloister-verify-report-tdx.c). */
int verify_report_tdx(int argc, char *argv[], CliOptions *o);
int verb_apply(int argc, char *argv[], void *userdata);
int verb_init_secret(int argc, char *argv[], void *userdata);
int verb_verify(int argc, char *argv[], void *userdata);
int verb_config(int argc, char *argv[], void *userdata);
int verb_mini(int argc, char *argv[], void *userdata);
int verb_recover(int argc, char *argv[], void *userdata);
int verb_status(int argc, char *argv[], void *userdata);
int verb_control_plane(int argc, char *argv[], void *userdata);
int verb_create(int argc, char *argv[], void *userdata);
int verb_terminate(int argc, char *argv[], void *userdata);
int verb_logs(int argc, char *argv[], void *userdata);
int verb_policy(int argc, char *argv[], void *userdata);
/* cloister node remove (cli/cloister-node.c, docs/membership.md). */
int verb_node(int argc, char *argv[], void *userdata);
int node_remove_verb(int argc, char *argv[], void *userdata);
/* cloister policy push (cloister-policy-push.c). */
int policy_push_verb(int argc, char *argv[], void *userdata);
/* cloister upgrade check (cloister-upgrade.c). */
int verb_upgrade(int argc, char *argv[], void *userdata);
/* cloister upgrade apply (cloister-upgrade-apply.c). */
int upgrade_apply_verb(int argc, char *argv[], void *userdata);

typedef struct AttestReport AttestReport;
typedef struct Diag Diag;
/* Whether a verdict covers the evidence's freshness: its binding (quote qualifying data, SNP
 * REPORT_DATA) to the verifier's nonce. Only a pass with CLI_FRESHNESS_CHECKED shows that the
 * evidence is not a replay. */
typedef enum CliFreshness {
        CLI_FRESHNESS_CHECKED,    /* an expected binding was given and enforced */
        CLI_FRESHNESS_NO_BINDING, /* none given: the caller must not report a pass */
        CLI_FRESHNESS_OFFLINE,    /* --no-binding: offline inspection, asked for explicitly */
} CliFreshness;
/* Every check of a verification; verdict < 0 fail, > 0 incomplete, 0 pass. Unless freshness is
 * CLI_FRESHNESS_CHECKED both say that freshness was not checked, and a pass is qualified. */
typedef struct json_t json_t;
/* One node's verdict as 'verify --node' prints it, live or from a bundle (cloister-verify.c). */
int cli_print_node_verdict(const char *endpoint, const char *state, json_t *versions,
                           const AttestReport *rep, int verdict, const Diag *d, OutputFormat output,
                           json_t *extra);
void cli_print_report_text(const AttestReport *rep, int verdict, const Diag *d,
                           CliFreshness freshness);
int cli_print_report_json(const AttestReport *rep, int verdict, const Diag *d,
                          CliFreshness freshness);
typedef struct RpcClientConfig RpcClientConfig;
/* --timeout SEC (1..3600) into the total (and, if larger, connect) timeout. */
int cli_parse_timeout(const char *arg, RpcClientConfig *c);
/* [--file FILE] and --help (prints usage, returns 0); 1 to go on, -errno on a usage error. */
int cli_parse_file_option(int argc, char *argv[], const char *usage, const char **file);
#define CLI_URL_MAX           300
#define CLI_NODE_PORT_DEFAULT 9000
/* An endpoint given as option (--endpoint, --node): https://HOST[:PORT] or HOST[:PORT] (a DNS
 * name, IPv4, or IPv6 in []), port 1..65535, 9000 by default, into https://HOST:PORT. Any other
 * scheme, a path or a malformed host or port is refused before any connection; logs the error. */
int cli_endpoint_url(const char *option, const char *arg, char url[static CLI_URL_MAX]);
/* cli_endpoint_url("--node", ...). */
int cli_node_url(const char *arg, char url[static CLI_URL_MAX]);
/* The cluster a verb talks to, as status, node remove and policy push take it: --node,
 * --cluster-id, --state-file and --timeout (CLI_TARGET_OPTIONS in the verb's option table). */
enum {
        CLI_ARG_TARGET_NODE = 0x1000,
        CLI_ARG_TARGET_CLUSTER_ID,
        CLI_ARG_TARGET_STATE,
        CLI_ARG_TARGET_TIMEOUT,
};
#define CLI_TARGET_OPTIONS                                                                         \
        { "node", required_argument, NULL, CLI_ARG_TARGET_NODE },                                  \
                { "cluster-id", required_argument, NULL, CLI_ARG_TARGET_CLUSTER_ID },              \
                { "state-file", required_argument, NULL, CLI_ARG_TARGET_STATE },                   \
        {                                                                                          \
                "timeout", required_argument, NULL, CLI_ARG_TARGET_TIMEOUT                         \
        }
#define CLI_TARGET_HELP                                                                            \
        "  --state-file FILE     the cluster ID and first endpoint (default\n"                     \
        "                        " CLI_STATE_FILE_DEFAULT ")\n"                                    \
        "  --node HOST[:PORT]    this join service instead of the state file's endpoint\n"         \
        "  --cluster-id HEX      with --node, no state file is read; else it must equal\n"         \
        "                        the state file's\n"
typedef struct CliTarget {
        const char *state_path; /* default cloister-state.json */
        const char *cluster_id; /* --cluster-id as given */
        bool state_given;
        char url[CLI_URL_MAX]; /* --node, else the state file's endpoint */
        uint8_t cid[32];       /* after cli_target_resolve() */
} CliTarget;
void cli_target_init(CliTarget *t, RpcClientConfig *rc);
/* 1 if c was one of CLI_TARGET_OPTIONS (taken), 0 if not, -EUSAGE (logged) if its value is bad. */
int cli_target_option(CliTarget *t, RpcClientConfig *rc, int c, const char *arg);
/* The cluster ID and the endpoint: with --node and --cluster-id and no --state-file, those two
 * alone; otherwise the state file, whose cluster ID must equal --cluster-id if both are given,
 * its endpoint used unless --node names another. Errors name the verb and the fix (logged). */
int cli_target_resolve(const char *verb, CliTarget *t);
/* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC. */
int cli_parse_time(const char *s, time_t *ret);
/* --at TIME and -o FORMAT as every verb takes them: parsed, or one error line (logged). */
int cli_parse_at_option(const char *arg, time_t *ret);
int cli_parse_output_option(const char *arg, OutputFormat *ret);

typedef struct Evidence Evidence;
/* A qemu-vtpm evidence document from path and its attestation key as base64 DER
 * SubjectPublicKeyInfo, what a pinned akTrust holds (trust on first use). Logs its errors. */
int cli_evidence_load_ak(const char *path, Evidence **ret_evidence, char **ret_ak_public);

typedef struct json_t json_t;
/* A configuration's "measurementsSource": the measurements file its PCRs were last taken from
 * (docs/config.md), what config fetch-measurements compares the next one with. */
typedef struct CliMeasurementsSource {
        bool present;
        /* the file's measurementsVersion, its fields (owned by CliConfig.json) and the SHA-256
         * of its exact bytes */
        int64_t version;
        const char *image, *image_version, *created, *source;
        int image_kind; /* MeasurementsImageKind: the file's imageKind; UNKNOWN if none */
        const char *kubernetes_version; /* the file's kubernetesVersion; NULL if none */
        uint8_t sha256[32];
        bool signature_checked;
} CliMeasurementsSource;
/* A cluster configuration file (docs/config.md), as `cloister config generate` writes it. */
typedef struct CliConfig {
        json_t *json; /* owns the strings below */
        const char *provider;
        const char *cluster_name, *kubernetes_version, *service_cidr; /* NULL if absent */
        char *policy;        /* the "attestation" object, serialised */
        char *policy_source; /* "FILE: attestation", for messages */
        CliMeasurementsSource measurements_source;
        /* "policyVersion": the version 'cloister policy push' sends the policy as (0: none;
         * docs/policy-update.md) */
        int64_t policy_version;
        /* "tdxPcsUrl": where TDX collateral is fetched from (NULL: --pcs-url or Intel PCS) */
        const char *tdx_pcs_url;
} CliConfig;

/* --policy FILE and --config FILE are alternatives: refuses both (naming verb), and loads the
 * configuration if that is the one given. Logs one line on failure. */
int cli_policy_or_config(const char *verb, const char *policy_path, const char *config_path,
                         CliConfig *config);
/* Loads and checks a configuration file, its attestation policy included (a value that is not
 * set yet is refused). Logs one line and returns -errno on failure. */
int cli_config_load(const char *path, CliConfig *ret);
/* The same, but a policy whose only fault is a value not set yet (null) is accepted: for
 * commands that fill such values in. */
int cli_config_load_unset(const char *path, CliConfig *ret);
void cli_config_done(CliConfig *c);

typedef struct MeasurementsFile MeasurementsFile;
/* A measurements file as `cloister-measure uki|image -o json` prints it: PCR 4, 9 and 11 and
 * PCRs predicted zero; anything else is refused. source names it in messages. Logs one line on
 * failure. */
int cli_measurements_parse(const void *data, size_t size, const char *source,
                           MeasurementsFile **ret);
/* Sets ms[PCR] = {"expected": hex of expected, or null if NULL, "warnOnly": warn_only}: how a
 * configuration's attestation.measurements holds one PCR. */
int cli_measurements_set_pcr(json_t *ms, unsigned pcr, const uint8_t *expected, bool warn_only);
/* The "measurementsSource" record of a format-2 measurements file taken from source (a URL or
 * a file name); NULL if out of memory. */
json_t *cli_measurements_source_json(const MeasurementsFile *m, const char *source,
                                     bool signature_checked);
/* The VMM that launches a provider's SEV-SNP nodes ("gce", "ec2"), as snp.launchMeasurements
 * names it; NULL for a provider whose launch measurement cannot be computed. */
const char *cli_provider_snp_vmm(const char *provider);
/* cloister config fetch-measurements (cloister-config-fetch.c). */
int verb_config_fetch_measurements(int argc, char *argv[], void *userdata);

/* clusterId (and the first node's endpoint, if endpoint is not NULL) from cloister-state.json;
 * logs its errors. */
int cli_state_load(const char *path, uint8_t cid[static 32], char *endpoint, size_t endpoint_size);
typedef struct RpcClientConfig RpcClientConfig;
/* verify --cluster: prints the table (or JSON); -EPERM if any node or audit log failed. */
/* With bundle_path, also writes an evidence bundle there (docs/bundle.md). */
/* With checkpoints_path, each join service's signed audit head is checked against the highest
 * one recorded there, and recorded (cloister-audit-checkpoints.json, docs/audit-log.md). */
int cli_verify_cluster(const char *url, const char *policy_path, const CliConfig *config,
                       const uint8_t cid[static 32], const RpcClientConfig *rc, OutputFormat output,
                       const char *bundle_path, const char *checkpoints_path);

/* The workspace (cli-workspace.c; its files: docs/workflows.md, "The workspace"). */
/* Takes -C DIR, --workspace DIR, --workspace=DIR and --debug out of argv wherever they stand
 * (before a "--"), compacting argv. -EUSAGE (logged) for -C without a directory or two of them. */
int cli_global_options(int *argc, char *argv[], const char **ret_workspace, bool *ret_debug);
/* chdir(dir), as git -C does: relative paths on the command line and every default file are then
 * the workspace's. A missing directory or a file is -EUSAGE; logs its errors. */
int cli_workspace_enter(const char *dir);
/* Whether -C / --workspace named the workspace (messages then repeat it). */
bool cli_workspace_given(void);
/* Neither --policy nor --config given: *config_path = the workspace's cloister.json if it exists.
 * Returns what it set, or NULL. */
const char *cli_workspace_config_default(const char *policy, const char **config_path);
/* The cluster ID (and first endpoint) from state_path. Unless required, a missing file or one that
 * records no initialised cluster yet (status created or pending) is 0 and leaves cid untouched;
 * 1 when loaded; -errno (logged) for a malformed file. */
int cli_workspace_cluster(const char *state_path, bool required, uint8_t cid[static 32],
                          char *endpoint, size_t endpoint_size);
#define CLI_STATE_FILE_DEFAULT "cloister-state.json"
#define CLI_LOCK_FILE          "cloister-workspace.lock"
/* Takes the lock of the cluster whose state file is state_path (CLI_LOCK_FILE beside it) for the
 * rest of this process, or refuses (-EBUSY, logged) naming what holds it (its pid and command)
 * and the next step. what names the caller ("upgrade apply"). Taken already by this process: 0.
 * The kernel drops it when the process ends, however: a killed holder's lock is taken over. */
int cli_workspace_lock(const char *state_path, const char *what);
#define CLI_DEBUG_LOG "cloister-debug.log"
/* --debug: appends a header (time, version, pid, workspace, command_line) to the workspace's
 * cloister-debug.log (created 0600; refused if it is not a regular file of ours) and sends every
 * log record there, debug level included; says where on stderr. Returns the fd, or -errno. */
int cli_debug_log_open(const char *command_line, const char *version);
/* argv as one shell-quoted line (control characters as '?'), for the debug log; NULL if out of
 * memory. */
char *cli_command_line(int argc, char *argv[]);

typedef struct AttestPolicy AttestPolicy;
/* The policy of --policy FILE, or, if policy_path is NULL, of a loaded configuration. */
int cli_policy_load(const char *policy_path, const CliConfig *config, AttestPolicy **ret, Diag *d);

/* TDX collateral for evidence that carries none (cli-tdx-collateral.c): the cache pcs_cache
 * (offline unless pcs_url is given too) or the user's ($XDG_CACHE_HOME/cloister/tdx), fetched
 * from pcs_url, else the configuration's tdxPcsUrl, else Intel PCS; offline: the cache alone
 * whatever else is given. -EUSAGE (logged) for a URL that is not a TDX PCS base. */
int cli_tdx_collateral_setup(const char *pcs_url, const char *pcs_cache, const CliConfig *config,
                             bool offline);
/* The user's cache directory for leaf ("tdx", "snp"): $XDG_CACHE_HOME/cloister/LEAF, else
 * HOME/.cache/cloister/LEAF with HOME $HOME or the account's home directory (relative values
 * ignored), never a shared directory; *ret NULL if there is none. 0, or -ENOMEM (logged). */
int cli_user_cache_dir(const char *leaf, char **ret);
/* option's URL ends in /tdx/certification/v4, or -EUSAGE (logged). */
int cli_tdx_pcs_url_check(const char *option, const char *url);
/* The --help lines of --pcs-url and --pcs-cache. */
#define CLI_TDX_COLLATERAL_HELP                                                                    \
        "  --pcs-url URL  TDX evidence without collateral (a real TD's): its platform's\n"         \
        "                 collateral is fetched from Intel PCS or a PCCS (a URL ending in\n"       \
        "                 /tdx/certification/v4; default the configuration's tdxPcsUrl,\n"         \
        "                 else Intel PCS) into $XDG_CACHE_HOME/cloister/tdx, when not\n"           \
        "                 cached or past its nextUpdate\n"                                         \
        "  --pcs-cache DIR  that collateral from DIR (the layout 'cloister attestation\n"          \
        "                 verify-report --type tdx --cache-dir DIR' fills), offline: a\n"          \
        "                 platform not in DIR is refused naming its FMSPC; with --pcs-url\n"       \
        "                 too, DIR is filled from it\n"
/* What a member of cluster cid shows, whatever the policy file says: PCR 15 = the cluster's
 * value (enforced), and, with snp.hostDataFromClusterId, HOST_DATA = the cluster's value. */
void cli_policy_bind_cluster(AttestPolicy *p, const uint8_t cid[static 32]);
