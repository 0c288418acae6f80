/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log verifier: line splitting and limits, JSON through the json module, keys and
 * values, the canonical re-serialisation (UTF-8 decoding, \u-escapes), hashes and the chain.
 * The same bytes are then fed to the streaming chain in pieces (as verify --cluster gets the
 * log, page by page), split at places taken from the input: the verdict, the failing check and
 * the summary must be those of the whole buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/audit-log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int feed_in_pieces(const uint8_t *data, size_t size, AuditLogSummary *sum, Diag *d)
{
        AuditLogChain c;
        size_t pos = 0, pending = 0; /* bytes of data[pos - pending, pos) not consumed yet */
        unsigned k = 0;
        int r;

        audit_log_chain_init(&c, "fuzz");
        while (pos < size) {
                /* Piece lengths from the data itself: 1 to 4 KiB + 1. */
                size_t piece = 1 + ((size_t) data[(k++ * 7919U) % size] * 17U) % 4097U, used = 0;
                if (piece > size - pos)
                        piece = size - pos;
                pos += piece;
                r = audit_log_chain_feed(&c, data + pos - piece - pending, piece + pending,
                                         pos == size, &used, d);
                if (r < 0)
                        return r;
                pending = piece + pending - used;
        }
        if (size == 0) {
                size_t used;
                r = audit_log_chain_feed(&c, data, 0, true, &used, d);
                if (r < 0)
                        return r;
        }
        audit_log_chain_summary(&c, sum);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        AuditLogSummary whole, pieces;
        Diag d1, d2;
        int r1, r2;

        diag_clear(&d1);
        diag_clear(&d2);
        r1 = audit_log_verify_buffer(data, size, "fuzz", &whole, &d1);
        r2 = feed_in_pieces(data, size, &pieces, &d2);
        if (r1 != r2 || strcmp(d1.check, d2.check) != 0 || d1.index != d2.index)
                abort();
        if (r1 == 0 && memcmp(&whole, &pieces, sizeof(whole)) != 0)
                abort();
        return 0;
}
