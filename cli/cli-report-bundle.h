/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Report bundles (docs/bundle.md, "Report bundles"): what `cloister attestation verify-report
 * --type snp|tdx ... --bundle OUT` was given and decided, kept in an evidence bundle of kind
 * "report", and `cloister verify --bundle IN` verifying it again offline with the very code that
 * verify-report runs. A stored report carries no nonce the CLI chose: the bundle records its
 * REPORT_DATA as found and says who chose it ("not recorded (imported report)"). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cli-bundle.h"
#include "cloister/attest.h"
#include "cloister/bundle-report.h"
#include "cloister/sev-snp.h"
#include "cloister/tdx.h"

/* One input of a verification, as an entry of the bundle: its name there, its exact bytes, and
 * where verify-report took it from (a path given, or a service it fetched it from). */
typedef struct CliReportInput {
        const char *entry;
        const uint8_t *data;
        size_t size;
        const char *origin;
} CliReportInput;

/* Appends one check, as the printers of verify-report report it, to record (a JSON array). */
int cli_report_record_check(json_t *record, const char *name, bool ok, const char *expected,
                            const char *actual, const char *detail);

/* Writes a report bundle: type "snp" or "tdx", the verification time, the 64 bytes of
 * REPORT_DATA as found, the inputs (the report or quote, every certificate, CRL and collateral
 * used, the policy if one was given: entry "policy.json"), every check (record) and the
 * verdict. Never overwrites path. Logs its errors. */
int cli_report_bundle_write(const char *path, const char *type, time_t at,
                            const uint8_t report_data[static 64], const char *policy_source,
                            const CliReportInput *inputs, size_t n_inputs, const json_t *record,
                            bool pass);

/* bundle.json of a bundle whose kind is "report" (bundle_report_record_check()); fills b->kind,
 * b->at, b->at_text. d says what no longer holds. */
int cli_report_meta_check(CliBundle *b, Diag *d);
/* verify --bundle on a report bundle: offline, at the recorded time or at, against the
 * bundle's policy or policy_path; prints what verify-report prints. */
int cli_verify_report_bundle(const CliBundle *b, const char *path, const char *policy_path,
                             time_t at, OutputFormat output);

/* The halves of verify-report that a bundle runs again (cloister-verify-report*.c). Each logs
 * its errors; the verify functions print the report and every check (text, or one JSON
 * document with extra's members added; nothing if quiet), append every check to record (may
 * be NULL), and return 0 if the verdict is pass, -EKEYREJECTED if not. */
int cli_snp_report_policy(const uint8_t *data, size_t size, const char *source, AttestPolicy **ret);
int cli_snp_report_trust(const AttestPolicy *pol, const char *policy_source, const uint8_t *crl,
                         size_t crl_size, const char *crl_source, SnpTrust **ret);
int cli_snp_report_verify(const SnpReport *rep, const uint8_t *raw, size_t raw_size,
                          const uint8_t *vcek, size_t vcek_size, const uint8_t *chain,
                          size_t chain_size, const SnpTrust *trust, const AttestPolicy *pol,
                          SnpProduct product, time_t at, OutputFormat output, bool quiet,
                          const json_t *extra, json_t *record);

typedef struct CliTdxReportInputs {
        const uint8_t *raw; /* the quote, exactly as given */
        size_t raw_size;
        const TdxCollateral *collateral; /* or NULL */
        const uint8_t *log, *table;      /* CCEL event log and table, or NULL */
        size_t log_size, table_size;
        const char *policy_source; /* NULL: the default policy */
        const TdxPcsResult *pcs;   /* where fetched collateral came from, or NULL */
        time_t at;                 /* 0: now */
} CliTdxReportInputs;

int cli_tdx_report_policy(const uint8_t *data, size_t size, const char *source, TdxPolicy *ret);
int cli_tdx_report_verify(const CliTdxReportInputs *in, const TdxQuote *q, const TdxPolicy *pol,
                          OutputFormat output, bool quiet, const json_t *extra, json_t *record);
