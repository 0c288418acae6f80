/* SPDX-License-Identifier: Apache-2.0 */
/* Signed audit checkpoints: the format, the binding and the checks (docs/audit-log.md, "Signed
 * checkpoints"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/audit-checkpoint.h"
#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/macro.h"

#define CHECKPOINT_DOMAIN "cloister-audit-checkpoint-v1"
#define ZERO_HASH         "0000000000000000000000000000000000000000000000000000000000000000"

AuditCheckpoint *audit_checkpoint_free(AuditCheckpoint *c)
{
        if (!c)
                return NULL;
        evidence_free(c->evidence);
        free(c);
        return NULL;
}

static bool is_hex64(const char *s)
{
        return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* seq and hash as a log head can be: seq 0 only with the zero hash, which no entry has. */
static bool head_ok(int64_t seq, const char *hash)
{
        if (seq < 0 || seq > (int64_t) AUDIT_ENTRIES_MAX || !is_hex64(hash))
                return false;
        return (seq == 0) == (strcmp(hash, ZERO_HASH) == 0);
}

int audit_checkpoint_binding(AttestVariant variant, int64_t seq, const char *hash, int64_t size,
                             const char *time, uint8_t ret[static ATTEST_BINDING_SIZE])
{
        const char *v = attest_variant_to_string(variant);
        time_t t;
        char buf[sizeof(CHECKPOINT_DOMAIN) + 32 + 24 + AUDIT_HASH_HEX_SIZE + 24 +
                 TIMESTAMP_UTC_SIZE];
        int n;

        if (!v || !head_ok(seq, hash) || size < 0 || size > AUDIT_CHECKPOINT_LOG_MAX || !time ||
            timestamp_parse_utc(time, &t) < 0)
                return -EINVAL;
        /* Fields are NUL-separated and none holds a NUL: no two heads give one input. */
        n = snprintf(buf, sizeof(buf), "%s%c%s%c%" PRId64 "%c%s%c%" PRId64 "%c%s",
                     CHECKPOINT_DOMAIN, 0, v, 0, seq, 0, hash, 0, size, 0, time);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return -EINVAL;
        crypto_sha256(buf, (size_t) n, ret);
        return 0;
}

int audit_checkpoint_format(int64_t seq, const char *hash, int64_t size, const char *time,
                            const Evidence *e, char **ret)
{
        _cleanup_(json_decrefp) json_t *ev = NULL, *doc = NULL;
        _cleanup_(freep) char *evtext = NULL, *text = NULL;
        size_t evsize = 0;
        char *line;
        Diag d;
        int r;

        if (!head_ok(seq, hash))
                return -EINVAL;
        r = evidence_serialize(e, &evtext, &evsize);
        if (r < 0)
                return r;
        diag_clear(&d);
        r = json_parse_buffer(evtext, evsize, "evidence", &ev, &d);
        if (r < 0)
                return r;
        doc = json_pack("{s:O,s:s,s:I,s:I,s:s,s:i}", "evidence", ev, "hash", hash, "seq",
                        (json_int_t) seq, "size", (json_int_t) size, "time", time, "version",
                        AUDIT_CHECKPOINT_VERSION);
        if (!doc || json_dump_compact(doc, &text) < 0)
                return -ENOMEM;
        if (asprintf(&line, "%s\n", text) < 0)
                return -ENOMEM;
        *ret = line;
        return 0;
}

int audit_checkpoint_parse(const void *data, size_t size, const char *source, AuditCheckpoint **ret,
                           Diag *d)
{
        static const char *const keys[] = { "evidence", "hash",    "seq", "size",
                                            "time",     "version", NULL };
        _cleanup_(audit_checkpoint_freep) AuditCheckpoint *c = NULL;
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *evtext = NULL;
        JsonCtx ctx = { .source = source, .path = "", .diag = d };
        const char *hash = NULL, *time = NULL;
        int64_t version = 0, seq = 0, log_size = 0;
        json_t *ev = NULL;
        int r;

        if (size > AUDIT_CHECKPOINT_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "audit-checkpoint-syntax", -1,
                                 "%s: the checkpoint is over %u bytes", source,
                                 AUDIT_CHECKPOINT_SIZE_MAX);
        r = json_parse_buffer(data, size, source, &doc, d);
        if (r >= 0)
                r = json_expect_object(&ctx, doc);
        if (r >= 0)
                r = json_check_keys(&ctx, doc, keys);
        if (r >= 0)
                r = json_get_int(&ctx, doc, "version", true, 0, INT32_MAX, &version);
        if (r >= 0 && version != AUDIT_CHECKPOINT_VERSION)
                r = diag_fail(d, -EBADMSG, "audit-checkpoint-syntax", -1,
                              "%s: checkpoint version %" PRId64 ", this verifier reads version %d",
                              source, version, AUDIT_CHECKPOINT_VERSION);
        if (r >= 0)
                r = json_get_int(&ctx, doc, "seq", true, 0, AUDIT_ENTRIES_MAX, &seq);
        if (r >= 0)
                r = json_get_int(&ctx, doc, "size", true, 0, AUDIT_CHECKPOINT_LOG_MAX, &log_size);
        if (r >= 0)
                r = json_get_string(&ctx, doc, "hash", true, &hash);
        if (r >= 0)
                r = json_get_string(&ctx, doc, "time", true, &time);
        if (r >= 0)
                r = json_get_object(&ctx, doc, "evidence", true, &ev);
        if (r < 0) {
                if (d)
                        (void) snprintf(d->check, sizeof(d->check), "audit-checkpoint-syntax");
                return r < 0 ? r : -EBADMSG;
        }
        if (!head_ok(seq, hash) || (seq == 0) != (log_size == 0))
                return diag_fail(
                        d, -EBADMSG, "audit-checkpoint-syntax", -1,
                        "%s: hash is not 64 lowercase hex digits, or hash and size are not "
                        "zero exactly for seq 0",
                        source);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        if (strlen(time) != TIMESTAMP_UTC_SIZE - 1 || timestamp_parse_utc(time, &c->when) < 0)
                return diag_fail(d, -EBADMSG, "audit-checkpoint-syntax", -1,
                                 "%s: time is not a UTC time YYYY-MM-DDTHH:MM:SSZ", source);
        if (json_dump_compact(ev, &evtext) < 0)
                return -ENOMEM;
        r = evidence_parse(evtext, strlen(evtext), &c->evidence, d);
        if (r < 0)
                return r;
        c->seq = seq;
        c->size = log_size;
        memcpy(c->hash, hash, AUDIT_HASH_HEX_SIZE);
        memcpy(c->time, time, TIMESTAMP_UTC_SIZE);
        *ret = TAKE_PTR(c);
        return 0;
}

int audit_checkpoint_signer(const Evidence *e, char ret[static AUDIT_SIGNER_HEX_SIZE])
{
        uint8_t digest[SHA256_DIGEST_SIZE];

        if (e->tpm.ak_public.size == 0)
                return -EOPNOTSUPP;
        crypto_sha256(e->tpm.ak_public.data, e->tpm.ak_public.size, digest);
        hex_encode_buf(digest, sizeof(digest), ret, AUDIT_SIGNER_HEX_SIZE);
        return 0;
}

int audit_checkpoint_verify(const AuditCheckpoint *c, const AttestPolicy *policy, time_t at,
                            const char *signer, Diag *d)
{
        uint8_t binding[ATTEST_BINDING_SIZE];
        char who[AUDIT_SIGNER_HEX_SIZE];
        int r;

        /* A join service whose variant identifies it by its TPM's key (TDX: docs/join.md) signs
         * with that key: a plain TPM quote, judged by its signature alone below. */
        bool tpm_identity = attest_variant_tpm_identity(policy->variant) &&
                            c->evidence->variant == ATTEST_VARIANT_QEMU_VTPM;

        if (c->evidence->variant != policy->variant && !tpm_identity)
                return diag_fail(d, -EPERM, "audit-checkpoint-variant", -1,
                                 "the checkpoint is %s evidence, the policy is for %s",
                                 attest_variant_to_string(c->evidence->variant),
                                 attest_variant_to_string(policy->variant));
        r = audit_checkpoint_signer(c->evidence, who);
        if (r < 0)
                return diag_fail(d, r, "audit-checkpoint-signer", -1,
                                 "%s evidence carries no attestation key of its own: its "
                                 "checkpoints cannot name their join service",
                                 attest_variant_to_string(c->evidence->variant));
        /* Before the evidence: a checkpoint of another join service, however genuine, is not
         * this one's, and says so by name. */
        if (!signer || strcmp(who, signer) != 0) {
                (void) diag_fail(d, -EKEYREJECTED, "audit-checkpoint-signer", -1,
                                 "the checkpoint is signed by another join service's key (AK "
                                 "sha256 %.16s...), not by the one that served the log",
                                 who);
                diag_set_values(d, signer ?: "", who);
                return -EKEYREJECTED;
        }
        r = audit_checkpoint_binding(c->evidence->variant, c->seq, c->hash, c->size, c->time,
                                     binding);
        if (r < 0)
                return diag_fail(d, r, "audit-checkpoint-syntax", -1,
                                 "cannot compute the checkpoint's binding");
        if (tpm_identity)
                return attest_verify_tpm_signed(c->evidence, binding, d);
        r = attest_verify(c->evidence, policy, binding, at, NULL, d);
        /* 1: ek-cert trust without credential activation, which a stored quote cannot do. The
         * key is the one the join service's own handshake proved (signer), so it is known. */
        return r < 0 ? r : 0;
}

int audit_checkpoint_check_head(const AuditCheckpoint *c, size_t entries, const char *last_hash,
                                uint64_t size, Diag *d)
{
        char want[128], have[128];

        if ((uint64_t) c->seq == entries && strcmp(c->hash, last_hash) == 0 &&
            (uint64_t) c->size == size)
                return 0;
        if ((uint64_t) c->seq > entries)
                (void) diag_fail(d, -EBADMSG, "audit-checkpoint-head", -1,
                                 "the log ends at entry %zu, but its signed checkpoint (%s) "
                                 "names entry %" PRId64 ": the log was cut or rolled back",
                                 entries, c->time, c->seq);
        else if ((uint64_t) c->seq < entries)
                (void) diag_fail(d, -EBADMSG, "audit-checkpoint-head", -1,
                                 "the log goes on to entry %zu, but its signed checkpoint (%s) "
                                 "names entry %" PRId64 ": entries were added that the join "
                                 "service did not sign (written behind its back, or its TPM "
                                 "failed to sign: see its journal)",
                                 entries, c->time, c->seq);
        else
                (void) diag_fail(d, -EBADMSG, "audit-checkpoint-head", -1,
                                 "entry %" PRId64 " is not the one the checkpoint (%s) signed: "
                                 "the log was rewritten",
                                 c->seq, c->time);
        (void) snprintf(want, sizeof(want), "seq %" PRId64 " hash %s size %" PRId64, c->seq,
                        c->hash, c->size);
        (void) snprintf(have, sizeof(have), "seq %zu hash %s size %" PRIu64, entries, last_hash,
                        size);
        diag_set_values(d, want, have);
        return -EBADMSG;
}
