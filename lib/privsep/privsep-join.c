/* SPDX-License-Identifier: Apache-2.0 */
/* The join service's typed requests and replies (privsep.h), every size bounded. */
#include "cloister/atls.h"
#include "cloister/attest.h"
#include "cloister/evidence.h"
#include "cloister/kdf.h"
#include "cloister/privsep.h"
#include "cloister/tdx.h"

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

#define EXACT_TEXT(n)                                                                              \
        {                                                                                          \
                .min = (n), .max = (n), .text = true                                               \
        }
#define UPTO(n)                                                                                    \
        {                                                                                          \
                .min = 0, .max = (n)                                                               \
        }

#define NODE_TEXT     TEXT(128)
#define DIGEST_TEXT   TEXT(65)
#define EVIDENCE      BYTES(EVIDENCE_SIZE_MAX)
#define NONCE         EXACT(ATLS_NONCE_SIZE)
#define SPKI          BYTES(1024)
#define ENDPOINT_TEXT TEXT(262)

const PrivsepSpec join_privsep_requests[] = {
        { JOIN_PRIVSEP_REFUSAL, "refusal", 3, { NODE_TEXT, DIGEST_TEXT, TEXT(512) } },
        { JOIN_PRIVSEP_POLICY, "policy", 1, { DIGEST_TEXT } },
        { JOIN_PRIVSEP_JOIN,
          "join",
          9,
          { EVIDENCE, NONCE, SPKI, NODE_TEXT, TEXT(64), TEXT(16), TEXT(40), ENDPOINT_TEXT,
            TEXT(1024) } },
        { JOIN_PRIVSEP_REJOIN,
          "rejoin",
          7,
          { EVIDENCE, NONCE, SPKI, NODE_TEXT, TEXT(64), TEXT(40), ENDPOINT_TEXT } },
        { JOIN_PRIVSEP_MEMBERS, "members", 0, {} },
        { JOIN_PRIVSEP_AUDIT, "audit", 1, { TEXT(64) } },
        { JOIN_PRIVSEP_NODE, "node", 0, {} },
        { JOIN_PRIVSEP_INIT_AGAIN,
          "init-again",
          3,
          { EXACT(MASTER_SECRET_SIZE), EXACT(MASTER_SALT_SIZE), EXACT(MEASUREMENT_SALT_SIZE) } },
        { JOIN_PRIVSEP_ATTEST, "attest", 2, { NONCE, SPKI } },
        { JOIN_PRIVSEP_NONCE, "nonce", 0, {} },
        { JOIN_PRIVSEP_POLICY_PUSH,
          "policy-push",
          4,
          { NODE_TEXT, TEXT(17), DIGEST_TEXT, TEXT(ATTEST_POLICY_SIZE_MAX + 1) } },
        { JOIN_PRIVSEP_TDX_COLLATERAL, "tdx-collateral", 2, { EXACT_TEXT(13), TEXT(16) } },
        { JOIN_PRIVSEP_METRICS, "metrics", 0, {} },
        { JOIN_PRIVSEP_MESH,
          "mesh",
          5,
          { EVIDENCE, NONCE, SPKI, NODE_TEXT, EXACT(ATLS_WG_KEY_SIZE) } },
        { JOIN_PRIVSEP_NODE_REMOVE,
          "node-remove",
          6,
          { NODE_TEXT, TEXT(64), TEXT(41), TEXT(65), TEXT(33), TEXT(65) } },
        { JOIN_PRIVSEP_ATTEST_WG, "attest-wg", 3, { NONCE, SPKI, EXACT(ATLS_WG_KEY_SIZE) } },
};

#define REPLY(op, name)                                                                            \
        {                                                                                          \
                (op), (name), 2,                                                                   \
                {                                                                                  \
                        TEXT(JOIN_PRIVSEP_DETAIL_MAX), TEXT(JOIN_PRIVSEP_ANSWER_MAX)               \
                }                                                                                  \
        }

const PrivsepSpec join_privsep_replies[] = {
        REPLY(JOIN_PRIVSEP_REFUSAL, "refusal"),
        REPLY(JOIN_PRIVSEP_POLICY, "policy"),
        REPLY(JOIN_PRIVSEP_JOIN, "join"),
        REPLY(JOIN_PRIVSEP_REJOIN, "rejoin"),
        REPLY(JOIN_PRIVSEP_MEMBERS, "members"),
        REPLY(JOIN_PRIVSEP_AUDIT, "audit"),
        REPLY(JOIN_PRIVSEP_NODE, "node"),
        REPLY(JOIN_PRIVSEP_INIT_AGAIN, "init-again"),
        REPLY(JOIN_PRIVSEP_ATTEST, "attest"),
        REPLY(JOIN_PRIVSEP_NONCE, "nonce"),
        REPLY(JOIN_PRIVSEP_POLICY_PUSH, "policy-push"),
        /* detail, stale note, then the files in TdxCollateral's order, each bounded as a PCS
         * download is (empty on failure) */
        { JOIN_PRIVSEP_TDX_COLLATERAL,
          "tdx-collateral",
          9,
          { TEXT(JOIN_PRIVSEP_DETAIL_MAX), TEXT(1024), UPTO(TDX_COLLATERAL_FILE_MAX),
            UPTO(TDX_COLLATERAL_FILE_MAX), UPTO(TDX_COLLATERAL_FILE_MAX),
            UPTO(TDX_COLLATERAL_FILE_MAX), UPTO(TDX_COLLATERAL_FILE_MAX),
            UPTO(TDX_COLLATERAL_FILE_MAX), UPTO(TDX_COLLATERAL_FILE_MAX) } },
        REPLY(JOIN_PRIVSEP_METRICS, "metrics"),
        REPLY(JOIN_PRIVSEP_MESH, "mesh"),
        REPLY(JOIN_PRIVSEP_NODE_REMOVE, "node-remove"),
        REPLY(JOIN_PRIVSEP_ATTEST_WG, "attest-wg"),
};

const size_t join_privsep_n_specs = ELEMENTSOF(join_privsep_requests);
