/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The record of a report bundle (docs/bundle.md, "Report bundles"): a bundle whose bundle.json
 * has "kind": "report", kept by `cloister attestation verify-report ... --bundle OUT` from one
 * SEV-SNP report or TDX quote and everything its verification used. This module checks that
 * record against its schema and against the bundle's entries; what the entries mean is verified
 * by the CLI with verify-report's own code.
 *
 * A stored report was not made for a nonce the recorder chose: the record states REPORT_DATA as
 * found and BUNDLE_REPORT_CHOSEN_BY, and a record that says anything else is refused.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cloister/bundle.h"
#include "cloister/diag.h"

#define BUNDLE_REPORT_KIND      "report"
#define BUNDLE_REPORT_CHOSEN_BY "not recorded (imported report)"

typedef struct json_t json_t;

typedef struct BundleReportRecord {
        const char *type; /* "snp" or "tdx" (owned by the record's JSON) */
        time_t at;        /* the verification time */
        char at_text[32]; /* the same, as recorded (YYYY-MM-DDTHH:MM:SSZ) */
        uint8_t report_data[64];
        const char *policy;   /* the name the policy was given as, or NULL: none given */
        bool pass;            /* the recorded verdict */
        const json_t *checks; /* [{name, result, expected, actual, detail}], owned by the record */
} BundleReportRecord;

/* true if meta (a parsed bundle.json) is a report bundle's record. */
bool bundle_report_is(const json_t *meta);
/* Checks meta, the parsed bundle.json of b, as a report bundle's record: its schema, type, time,
 * binding (chosenBy exactly BUNDLE_REPORT_CHOSEN_BY), policy named iff "policy.json" is an entry,
 * every entry but bundle.json one that type holds and listed once in "inputs" (and every input
 * there), the required ones present, the verdict what its checks say. -EBADMSG with d naming
 * what no longer holds; *ret is written only on success. */
int bundle_report_record_check(const Bundle *b, const json_t *meta, BundleReportRecord *ret,
                               Diag *d);
