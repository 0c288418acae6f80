/* SPDX-License-Identifier: Apache-2.0 */
/* The signed audit checkpoint parser (<log>.checkpoint, served with the audit log and kept in
 * bundles): JSON through the json module, the keys and their ranges, the embedded evidence
 * document through evidence_parse(). A checkpoint that parses is written again and must parse
 * to the same head; its binding, signer and the head checks must not fail on it in any other
 * way than by an errno. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/audit-checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        AuditCheckpoint *c = NULL, *again = NULL;
        char signer[AUDIT_SIGNER_HEX_SIZE];
        uint8_t binding[ATTEST_BINDING_SIZE];
        char *text = NULL;
        Diag d;

        diag_clear(&d);
        if (audit_checkpoint_parse(data, size, "fuzz", &c, &d) < 0) {
                if (c)
                        abort(); /* nothing written on failure */
                return 0;
        }
        if (audit_checkpoint_binding(c->evidence->variant, c->seq, c->hash, c->size, c->time,
                                     binding) < 0)
                abort(); /* whatever parses has a binding */
        (void) audit_checkpoint_signer(c->evidence, signer);
        (void) audit_checkpoint_check_head(c, (size_t) c->seq, c->hash, (uint64_t) c->size, &d);
        if (audit_checkpoint_format(c->seq, c->hash, c->size, c->time, c->evidence, &text) >= 0) {
                diag_clear(&d);
                if (audit_checkpoint_parse(text, strlen(text), "again", &again, &d) < 0 ||
                    again->seq != c->seq || again->size != c->size ||
                    strcmp(again->hash, c->hash) != 0 || strcmp(again->time, c->time) != 0)
                        abort();
        }
        audit_checkpoint_free(again);
        audit_checkpoint_free(c);
        free(text);
        return 0;
}
