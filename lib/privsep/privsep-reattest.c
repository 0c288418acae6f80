/* SPDX-License-Identifier: Apache-2.0 */
/* The re-attestation protocol's messages (privsep-reattest.h), every size bounded. */
#include "cloister/privsep-reattest.h"
#include "cloister/atls.h"
#include "cloister/evidence.h"

#define TEXT(n)                                                                                    \
        {                                                                                          \
                .min = 1, .max = (n), .text = true                                                 \
        }
#define BYTES(n)                                                                                   \
        {                                                                                          \
                .min = 1, .max = (n)                                                               \
        }
#define EXACT(n)                                                                                   \
        {                                                                                          \
                .min = (n), .max = (n)                                                             \
        }

#define ID_TEXT       TEXT(21)
#define NAME_TEXT     TEXT(64)
#define ENDPOINT_TEXT TEXT(262)
#define DETAIL_TEXT   TEXT(REATTEST_PRIVSEP_DETAIL_MAX)

const PrivsepSpec reattest_privsep_jobs[] = {
        { REATTEST_PRIVSEP_JOB,
          "job",
          5,
          { ID_TEXT, EXACT(ATLS_NONCE_SIZE), NAME_TEXT, ENDPOINT_TEXT, TEXT(12) } },
};
const size_t reattest_privsep_n_jobs = ELEMENTSOF(reattest_privsep_jobs);

const PrivsepSpec reattest_privsep_answers[] = {
        { REATTEST_PRIVSEP_ANSWERED,
          "answered",
          6,
          { ID_TEXT, BYTES(EVIDENCE_SIZE_MAX), BYTES(1024), NAME_TEXT, TEXT(32), DETAIL_TEXT } },
        { REATTEST_PRIVSEP_UNREACHABLE, "unreachable", 2, { ID_TEXT, DETAIL_TEXT } },
};
const size_t reattest_privsep_n_answers = ELEMENTSOF(reattest_privsep_answers);
