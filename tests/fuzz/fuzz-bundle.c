/* SPDX-License-Identifier: Apache-2.0 */
/* The evidence bundle reader (lib/bundle): JSON through the json module, the container's keys,
 * entry names, base64, the manifest digests and the canonical form. What it accepts must be
 * exactly what the writer makes of the same entries (the reader refuses every other spelling),
 * and every entry it reports must be there. A report bundle's record (bundle.json of kind
 * "report", lib/bundle/bundle-report.c) is checked against its entries too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/bundle-report.h"
#include "cloister/bundle.h"
#include "cloister/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void report_record(const Bundle *b)
{
        BundleReportRecord rec = { .type = "poison" };
        const uint8_t *meta;
        json_t *j = NULL;
        size_t n;
        Diag d;

        diag_clear(&d);
        if (bundle_get(b, "bundle.json", &meta, &n) < 0 ||
            json_parse_buffer(meta, n, "bundle.json", &j, &d) < 0)
                return;
        if (bundle_report_is(j)) {
                if (bundle_report_record_check(b, j, &rec, &d) < 0) {
                        if (strcmp(rec.type, "poison") != 0) /* written only on success */
                                abort();
                } else if (bundle_get(b, rec.type[0] == 's' ? "snp/report" : "tdx/quote", &meta,
                                      &n) < 0)
                        abort(); /* a record accepted without its report */
        }
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Bundle *b = NULL;
        char *text = NULL;
        size_t text_size = 0;
        Diag d;

        diag_clear(&d);
        if (bundle_parse(data, size, &b, &d) < 0) {
                if (b) /* outputs are written only on success */
                        abort();
                return 0;
        }
        if (bundle_serialize(b, &text, &text_size) < 0 || text_size != size ||
            memcmp(text, data, size) != 0)
                abort();
        free(text);
        report_record(b);
        bundle_free(b);
        return 0;
}
