/* SPDX-License-Identifier: Apache-2.0 */
/* Answers sealed to the client's aTLS key (atls_seal()): {"sealed": BASE64}. */
#include <string.h>

#include "cloister/atls.h"
#include "cloister/base64.h"
#include "cloister/json.h"
#include "cloister/rpc.h"

int rpc_answer_seal(const uint8_t *spki, size_t spki_size, const char *label, const json_t *answer,
                    json_t **ret)
{
        _cleanup_(freep) char *text = NULL, *b64 = NULL;
        _cleanup_(freep) uint8_t *sealed = NULL;
        size_t size;
        int r;

        r = json_dump_compact(answer, &text);
        if (r < 0)
                return r;
        r = atls_seal(spki, spki_size, label, text, strlen(text), &sealed, &size);
        explicit_wipe(text, strlen(text));
        if (r < 0)
                return r;
        r = base64_encode(sealed, size, &b64);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s}", "sealed", b64);
        return *ret ? 0 : -ENOMEM;
}

int rpc_answer_unseal(AtlsContext *atls, const char *label, json_t **io, Diag *d)
{
        static const char *const keys[] = { "sealed", NULL };
        JsonCtx ctx = { .source = "sealed answer", .path = "", .diag = d };
        _cleanup_(secret_freep) Secret *plain = NULL;
        _cleanup_(freep) uint8_t *sealed = NULL;
        const char *b64 = NULL;
        json_t *opened = NULL;
        size_t size;
        int r;

        /* Only sealed answers: one in the clear could come from the server's network-facing
         * process, which must not be able to hand this node a ticket of its own making. */
        if (!*io || json_check_keys(&ctx, *io, keys) < 0 ||
            json_get_string(&ctx, *io, "sealed", true, &b64) < 0)
                return diag_fail(d, -EBADMSG, "sealed-answer", -1,
                                 "the answer is not sealed to this node's key: %s", d->message);
        r = base64_decode(b64, &sealed, &size);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "sealed-answer", -1,
                                 "the sealed answer is not base64");
        r = atls_context_unseal(atls, label, sealed, size, &plain);
        if (r < 0)
                return diag_fail(d, r == -ENOMEM ? r : -EBADMSG, "sealed-answer", -1,
                                 "the sealed answer does not open with this node's key for '%s' "
                                 "(altered, or sealed to another key)",
                                 label);
        r = json_parse_buffer(secret_data(plain), secret_size(plain), "sealed answer", &opened, d);
        if (r < 0)
                return r;
        json_decref(*io);
        *io = opened;
        return 0;
}
