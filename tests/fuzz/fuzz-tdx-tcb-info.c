/* SPDX-License-Identifier: Apache-2.0 */
/* Intel PCS TCB info (the signed-span scan and the schema), then Intel's TCB evaluation of a
 * fixed platform against whatever parsed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cloister/tdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static TdxQeIdentity qe = { .n_levels = 1, .levels = { { .isvsvn = 4 } } };
        TdxPckExtensions pck = { .pcesvn = 11, .comp_svn = { 5, 5, 2, 2, 3, 1 } };
        TdxQuote q = { .tee_tcb_svn = { 6, 1, 7 } };
        TdxTcbEvaluation e;
        TdxTcbInfo *t = NULL;
        const uint8_t *span;
        size_t n;

        (void) tdx_json_member_span(data, size, "tcbInfo", &span, &n);
        if (tdx_tcb_info_parse(data, size, &t, NULL) < 0)
                return 0;
        q.qe_report.isvsvn = 4;
        (void) tdx_evaluate_tcb(&q, &pck, t, &qe, &e, NULL);
        q.tee_tcb_svn[1] = 0;
        (void) tdx_evaluate_tcb(&q, &pck, t, &qe, &e, NULL);
        free(t);
        return 0;
}
