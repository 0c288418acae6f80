/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the files of lib/attest/: building the check list of an AttestReport. */

#include "cloister/attest.h"
#include "cloister/tpm-quote.h"

CheckResult *report_add(AttestReport *r, const char *name, int index, CheckStatus status,
                        bool enforced, const char *format, ...) _printf_(6, 7);
/* A verifier's per-check callback (the SNP and TDX policy checks) recording into the report given
 * as userdata: name, pass or fail, expected and actual values, detail. */
void attest_report_record(void *userdata, const char *name, bool ok, const char *expected,
                          const char *actual, const char *detail);
void report_set_hex(CheckResult *c, const void *expected, size_t en, const void *actual, size_t an);
/* Records a failed enforced check in r and (if it is the first) in d; returns error. */
int report_fail(AttestReport *r, Diag *d, int error, const char *name, int index,
                const void *expected, size_t en, const void *actual, size_t an, const char *format,
                ...) _printf_(10, 11);

/* Compares the quoted PCRs with the policy's measurements, recording every PCR in r. */
int attest_check_measurements(const AttestPolicy *p, uint32_t quoted_mask,
                              const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE],
                              AttestReport *r, Diag *d);

/* Replays the event log (per the policy's eventLog mode) against the quoted PCRs. */
int attest_check_event_log(const Evidence *e, const AttestPolicy *p, uint32_t quoted_mask,
                           const uint8_t pcrs[EVIDENCE_PCR_COUNT][EVIDENCE_PCR_SIZE],
                           AttestReport *r, Diag *d);
/* ek-cert trust: EK certificate chains to the policy's roots at time at, and the EK public in
 * the evidence is the certificate's key; marks the report as needing credential activation. */
int attest_check_ek_certificate(const Evidence *e, const AttestPolicy *p, time_t at,
                                AttestReport *r, Diag *d);

int attest_verify_tdx(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                      AttestReport *r, Diag *d);
int attest_verify_snp(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                      AttestReport *r, Diag *d);

int attest_verify_azure(const Evidence *e, const AttestPolicy *p, const uint8_t *qualifying,
                        size_t qualifying_size, time_t at, AttestReport *r, Diag *d);

/* The quote covers exactly the SHA-256 PCRs the evidence lists, and their values reproduce the
 * signed digest. */
int attest_check_quote_pcrs(const EvidenceTpm *t, const TpmQuoteInfo *q, uint16_t sig_hash,
                            AttestReport *r, Diag *d);
