/* SPDX-License-Identifier: Apache-2.0 */
/* The join service's re-attestation protocol (privsep-reattest.h): the monitor parses what a
 * compromised re-attestation process may answer, that process the monitor's jobs. Input: one byte
 * choosing the table (even: requests, odd: replies), then one message without its length word. A
 * message that parses must encode back to the same bytes (one encoding per message: nothing hides
 * in slack). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloister/privsep-reattest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const PrivsepSpec *table, *spec = NULL;
        PrivsepMsg m;
        PrivsepBuf b;
        size_t n;

        if (size < 1)
                return 0;
        table = data[0] & 1 ? reattest_privsep_answers : reattest_privsep_jobs;
        n = data[0] & 1 ? reattest_privsep_n_answers : reattest_privsep_n_jobs;
        if (privsep_parse(data + 1, size - 1, table, n, &m) < 0)
                return 0;
        for (size_t k = 0; k < n; k++)
                if (table[k].op == (m.op & ~PRIVSEP_REPLY))
                        spec = &table[k];
        assert(spec && spec->n_fields == m.n_fields);
        privsep_buf_begin(&b, m.op, m.status);
        for (size_t i = 0; i < m.n_fields; i++) {
                const PrivsepField *f = &m.fields[i];
                assert(f->size >= spec->fields[i].min && f->size <= spec->fields[i].max);
                /* A text field holds its NUL and no other. */
                if (spec->fields[i].text)
                        assert(strlen((const char *) f->data) == f->size - 1);
                privsep_buf_add(&b, f->data, f->size);
        }
        assert(b.error == 0);
        assert(b.size - 4 == size - 1);
        assert(memcmp(b.data + 4, data + 1, size - 1) == 0);
        privsep_buf_done(&b);
        return 0;
}
