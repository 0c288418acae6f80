/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Measurements files: the PCR values an image is expected to produce, published signed
 * (docs/measured-boot.md, "Measurements files"). Format 2, what `cloister-measure uki|image -o
 * json` writes:
 *   {"version": 2, "measurementsVersion": N, "image": "<name>", "imageVersion": "<version>",
 *    "created": "YYYY-MM-DDTHH:MM:SSZ",
 *    "imageKind": "cloud" | "test",          (optional: which Kubernetes the image carries)
 *    "kubernetesVersion": "v1.Y.Z",          (optional: the Kubernetes release it carries)
 *    "measurements": {"4": {"expected": hex, "warnOnly": b}, ...},
 *    "snp": {"launchMeasurements": [...]},   (optional: SEV-SNP launch digests, snp-measurements.h)
 *    "tdx": {"rtmr1": hex, "rtmr2": hex, "rtmr3": hex}}   (optional: predicted TDX RTMRs)
 * measurementsVersion is the publisher's counter: every file it publishes has a larger one, so
 * a consumer that remembers the last one it took can refuse an older signed file (a rollback).
 * Format 1 ({"version": 1, "image", "measurements"}) has no such counter: it is still parsed
 * (format_version 1), and every consumer that cares about rollback refuses it.
 * Signatures are detached ECDSA P-256 / SHA-256 over the exact file bytes, DER-encoded.
 */

#include <stdint.h>
#include <time.h>

#include "cloister/attest.h"
#include "cloister/sev-snp.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"

#define MEASUREMENTS_FILE_SIZE_MAX (64U * 1024U)
#define MEASUREMENTS_SIGNATURE_MAX 128U
/* The format cloister-measure writes; 1 is the old one without measurementsVersion. */
#define MEASUREMENTS_FORMAT_VERSION 2
/* 2^53 - 1: every JSON implementation holds integers up to it exactly. */
#define MEASUREMENTS_VERSION_MAX ((int64_t) 9007199254740991LL)
/* "image" and "imageVersion": non-empty, at most this many bytes, no control characters. */
#define MEASUREMENTS_TEXT_MAX 128U

/* "imageKind" (format 2, optional; image/README.md, "Kubernetes"): a cloud image carries the
 * pinned, verified Kubernetes; a test image the kubeadm test double, never for production. Files
 * made before the field existed say nothing: UNKNOWN. */
typedef enum MeasurementsImageKind {
        MEASUREMENTS_IMAGE_KIND_UNKNOWN = 0,
        MEASUREMENTS_IMAGE_KIND_CLOUD,
        MEASUREMENTS_IMAGE_KIND_TEST,
        _MEASUREMENTS_IMAGE_KIND_MAX,
        _MEASUREMENTS_IMAGE_KIND_INVALID = -EINVAL,
} MeasurementsImageKind;

typedef struct MeasurementsFile {
        unsigned format_version;      /* the file's "version": 1 or 2 */
        int64_t measurements_version; /* format 2: 1..MEASUREMENTS_VERSION_MAX; 0 in format 1 */
        char *image;
        char *image_version;              /* format 2; NULL in format 1 */
        char created[TIMESTAMP_UTC_SIZE]; /* format 2, as written; "" in format 1 */
        time_t created_time;              /* format 2; 0 in format 1 */
        MeasurementsImageKind image_kind; /* format 2, optional; UNKNOWN without it */
        char *kubernetes_version;         /* format 2, optional v1.Y.Z; NULL without it */
        uint8_t sha256[32];               /* SHA-256 of the exact bytes parsed */
        PcrExpectation pcrs[EVIDENCE_PCR_COUNT];
        /* format 2, optional "snp": {"launchMeasurements": [...]} (snp-measurements.h) */
        SnpLaunchEntry snp_launch[SNP_POLICY_LAUNCH_MAX];
        size_t n_snp_launch;
        /* format 2, optional "tdx": {"rtmr0".."rtmr3": 96 hex digits}, at least one: the RTMRs
         * of a TD booting the image (SHA-384; docs/tdx.md, "RTMR prediction") */
        bool tdx_rtmr_present[4];
        uint8_t tdx_rtmr[4][48];
} MeasurementsFile;

MeasurementsFile *measurements_file_free(MeasurementsFile *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(MeasurementsFile *, measurements_file_free);
/* Format 1 or 2, unknown keys refused, each field typed and bounded as above. -EMSGSIZE larger
 * than MEASUREMENTS_FILE_SIZE_MAX, -EBADMSG malformed, -EPROTONOSUPPORT a format version this
 * parser does not know; the reason in d, naming source. */
int measurements_file_parse(const void *data, size_t size, const char *source,
                            MeasurementsFile **ret, Diag *d);
/* The RTMRs m predicts, into a tdx policy: each RTMR the file has becomes the policy's only
 * accepted value for it (p->rtmr[i]); the others are left as they are. Returns how many were
 * set (0: the file has no "tdx" section). */
size_t measurements_file_tdx_rtmrs(const MeasurementsFile *m, TdxPolicy *p);
/* The same into a policy file's "tdx" object (docs/tdx.md, "Policy"): "rtmrN": ["<96 hex>"]
 * for each RTMR m has, replacing what tdx held for it; what `config generate --tee tdx` and
 * `config fetch-measurements` write. Returns how many were set, or -ENOMEM. */
int measurements_file_tdx_policy_json(const MeasurementsFile *m, json_t *tdx);
/* "cloud", "test"; NULL for UNKNOWN. */
const char *measurements_image_kind_to_string(MeasurementsImageKind k);
/* "cloud" or "test"; -EINVAL for anything else ("unknown" is not a kind a file can state). */
MeasurementsImageKind measurements_image_kind_from_string(const char *s);
/* What a person is told next to the image's version: " (TEST image: kubeadm double, not for
 * production)" for a test image, " (cloud image)" for a cloud image, "" when unknown. */
const char *measurements_image_kind_note(MeasurementsImageKind k);
/* Whether s may be a file's "image" or "imageVersion" (MEASUREMENTS_TEXT_MAX, above). */
bool measurements_text_valid(const char *s);

/* key_pem: a P-256 private key; the signature goes to *ret (DER). */
int measurements_sign(const void *data, size_t size, const void *key_pem, size_t key_size,
                      uint8_t **ret, size_t *ret_size, Diag *d);
/* pub_pem: a P-256 public key. -EKEYREJECTED if the signature does not verify. */
int measurements_verify(const void *data, size_t size, const void *sig, size_t sig_size,
                        const void *pub_pem, size_t pub_size, Diag *d);
