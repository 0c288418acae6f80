/* SPDX-License-Identifier: Apache-2.0 */
/* The join service's check of an owner's policy update (docs/policy-update.md): version text,
 * authenticator and document come from any network client. Input: "VERSION\nAUTHENTICATOR\n"
 * then the document. A fixed master secret, salt and cluster ID. Any outcome but a crash is fine;
 * a success for an input not made with the key is a bug (the check failing open), asserted. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloister/policy-update.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t key[32] = { 1, 2, 3 }, salt[32] = { 4, 5, 6 }, cid[32] = { 7, 8, 9 };
        _cleanup_(secret_freep) Secret *master = NULL;
        char version_text[24], auth[POLICY_UPDATE_AUTH_SIZE + 8], made[POLICY_UPDATE_AUTH_SIZE];
        const uint8_t *nl1, *nl2, *doc;
        size_t doc_size;
        int64_t version;
        Diag d;

        nl1 = memchr(data, '\n', size);
        nl2 = nl1 ? memchr(nl1 + 1, '\n', size - (size_t) (nl1 + 1 - data)) : NULL;
        if (!nl2 || (size_t) (nl1 - data) >= sizeof(version_text) ||
            (size_t) (nl2 - nl1 - 1) >= sizeof(auth) || secret_new_from(key, 32, &master) < 0)
                return 0;
        memcpy(version_text, data, (size_t) (nl1 - data));
        version_text[nl1 - data] = '\0';
        memcpy(auth, nl1 + 1, (size_t) (nl2 - nl1 - 1));
        auth[nl2 - nl1 - 1] = '\0';
        doc = nl2 + 1;
        doc_size = size - (size_t) (doc - data);
        if (policy_update_version_parse(version_text, &version) < 0)
                return 0;
        assert(version >= 1 && version <= POLICY_UPDATE_VERSION_MAX);
        diag_clear(&d);
        if (policy_update_check(master, salt, cid, version, doc, doc_size, auth, &d) == 0) {
                /* Only the genuine authenticator passes: the one authenticate() makes. */
                assert(policy_update_authenticate(master, salt, cid, version, doc, doc_size,
                                                  made) == 0);
                assert(strcmp(made, auth) == 0);
        }
        return 0;
}
