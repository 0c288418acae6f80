/* SPDX-License-Identifier: Apache-2.0 */
/* Version strings come from attested nodes (GET /v1/node "versions") and os-release files: the
 * first line of the input is a version checked against the CLI's, the whole input an os-release
 * text. Any outcome but a crash is fine; a value found must be NUL-terminated, within bounds and
 * free of control characters (asserted). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloister/version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char line[VERSION_STRING_MAX + 8], why[256], value[VERSION_STRING_MAX];
        CloisterVersion v;
        size_t n = 0;

        while (n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n] != '\0')
                n++;
        memcpy(line, data, n);
        line[n] = '\0';
        if (cloister_version_parse(line, &v) == 0)
                assert(v.major <= 99999 && v.minor <= 99999 && v.patch <= 99999);
        if (cloister_version_skew(CLOISTER_VERSION, line, why, sizeof(why)) < 0)
                assert(memchr(why, '\0', sizeof(why)));
        if (os_release_parse((const char *) data, size, "IMAGE_VERSION", value, sizeof(value)) ==
            0) {
                size_t len = strnlen(value, sizeof(value));
                assert(len > 0 && len < sizeof(value));
                for (size_t i = 0; i < len; i++)
                        assert((unsigned char) value[i] >= ' ' && value[i] != 0x7f);
        }
        return 0;
}
