/* SPDX-License-Identifier: Apache-2.0 */
/* The record of a report bundle (lib/bundle/bundle-report.c): bundle.json of kind "report"
 * against its schema and a bundle's entries. The input is the record itself (fuzz-bundle reaches
 * it only through a matching manifest). The bundle beside it holds, for an input of even size,
 * the entries the record's inputs name (so that a record can be accepted and every check after
 * the inputs' runs), for an odd size a fixed SEV-SNP set (so that mismatches are met). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/bundle-report.h"
#include "cloister/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Bundle *entries(const json_t *record, bool listed)
{
        static const char *const fixed[] = { "snp/report", "snp/vcek", "snp/chain", "snp/crl",
                                             NULL };
        const json_t *inputs = json_object_get(record, "inputs"), *x;
        Bundle *b = bundle_new();
        size_t i;

        if (!b || bundle_add(b, "bundle.json", "{}", 2) < 0)
                abort();
        if (!listed) {
                for (i = 0; fixed[i]; i++)
                        if (bundle_add(b, fixed[i], "x", 1) < 0)
                                abort();
                return b;
        }
        json_array_foreach (inputs, i, x) {
                const char *name = json_string_value(json_object_get(x, "entry"));
                if (name) /* a bad or repeated name is refused by bundle_add(): not added */
                        (void) bundle_add(b, name, "x", 1);
        }
        return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        BundleReportRecord rec;
        json_t *j = NULL;
        Bundle *b;
        Diag d;

        diag_clear(&d);
        if (json_parse_buffer(data, size, "bundle.json", &j, &d) < 0)
                return 0;
        b = entries(j, size % 2 == 0);
        memset(&rec, 0xAA, sizeof(rec));
        if (bundle_report_record_check(b, j, &rec, &d) < 0) {
                for (size_t i = 0; i < sizeof(rec); i++) /* written only on success */
                        if (((const uint8_t *) &rec)[i] != 0xAA)
                                abort();
        } else if (!bundle_report_is(j) || !rec.checks ||
                   (strcmp(rec.type, "snp") != 0 && strcmp(rec.type, "tdx") != 0))
                abort();
        bundle_free(b);
        json_decref(j);
        return 0;
}
