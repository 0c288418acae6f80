/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The monitor signs its audit log's head (docs/audit-log.md, "Signed checkpoints"): a quote by
 * this node's TPM over the head's seq, hash and time, written next to the log as
 * <log>.checkpoint. Signed at start, after every admission, rejoin or other non-refusal entry,
 * before the log is served when its head moved, and every interval. Only the monitor writes the
 * log while it runs: it keeps where its own last append left the log, and signs nothing else. A
 * log that changed behind its back (rolled back to an older copy, cut, rewritten, or extended
 * by someone else) is never signed again in this run; the monitor goes on serving its last own
 * checkpoint, which no longer matches the log, so the owner's verify names what happened.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/audit-checkpoint.h"
#include "cloister/fileio.h"
#include "cloister/log.h"
#include "cloister/macro.h"

#include "join-service.h"

/* Where the log ends: its last entry and the byte after it. */
typedef struct LogEnd {
        int64_t seq;
        char hash[AUDIT_HASH_HEX_SIZE];
        off_t end;
} LogEnd;

struct JoinCheckpoint {
        char *path;
        unsigned interval_sec;
        /* Under js->audit_lock. Where this monitor last left the log (its own append, or the log
         * as it found it at start), and the last checkpoint it signed: what it serves, whatever
         * the file on disk says by then. */
        bool have;
        char self[AUDIT_SIGNER_HEX_SIZE]; /* this TPM's attestation key ("": unknown) */
        LogEnd written;
        char *text;
        char time[TIMESTAMP_UTC_SIZE];
        int64_t signed_seq;
        bool tampered;
        char why[512];
        /* The periodic signer. */
        pthread_t thread;
        bool running, stop;
        pthread_mutex_t lock;
        pthread_cond_t wake;
};

static int log_end(JoinService *js, off_t at, LogEnd *ret, Diag *d)
{
        *ret = (LogEnd){};
        return audit_log_entry_ending_at(js->audit_log, at, &ret->seq, ret->hash, &ret->end, d);
}

static bool log_end_equal(const LogEnd *a, const LogEnd *b)
{
        return a->seq == b->seq && a->end == b->end && strcmp(a->hash, b->hash) == 0;
}

static void checkpoint_refuse(JoinCheckpoint *c, const char *fmt, ...) _printf_(2, 3);

static void checkpoint_refuse(JoinCheckpoint *c, const char *fmt, ...)
{
        va_list ap;

        if (c->tampered)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
        c->tampered = true;
        log_error("join-service: THE AUDIT LOG WAS ALTERED BEHIND THIS JOIN SERVICE'S BACK: %s. "
                  "It is not signed again; the owner's 'cloister verify --cluster' reports it. "
                  "Keep the state disk for investigation.",
                  c->why);
}

/* Whether the log still holds entry e->seq with its hash, ending where it ended. */
static bool log_still_holds(JoinService *js, const LogEnd *e)
{
        LogEnd now;
        Diag d;

        if (e->seq == 0)
                return true; /* the empty log is a prefix of every log */
        diag_clear(&d);
        return log_end(js, e->end, &now, &d) >= 0 && log_end_equal(&now, e);
}

static int checkpoint_sign_locked(JoinService *js, JoinCheckpoint *c, const LogEnd *head)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) char *text = NULL;
        uint8_t binding[ATTEST_BINDING_SIZE];
        char now[TIMESTAMP_UTC_SIZE];
        Diag d;
        int r;

        diag_clear(&d);
        r = timestamp_format_utc(time(NULL), now);
        if (r >= 0)
                r = audit_checkpoint_binding(ATTEST_VARIANT_QEMU_VTPM, head->seq, head->hash,
                                             (int64_t) head->end, now, binding);
        if (r < 0)
                return log_error_errno(r, "join-service: cannot compute the audit checkpoint's "
                                          "binding: %m");
        /* The TPM's attestation key signs: the key this node's aTLS evidence is quoted with,
         * which never leaves the TPM and which only the monitor uses. */
        (void) pthread_mutex_lock(&js->attester->tpm.lock);
        r = attest_vtpm_issue(js->attester->tpm.tpm, &js->attester->tpm.config, binding, &e, &d);
        (void) pthread_mutex_unlock(&js->attester->tpm.lock);
        if (r < 0) {
                log_error("join-service: cannot sign the audit log's head (entry %" PRId64 "): %s",
                          head->seq, d.message);
                return r;
        }
        r = audit_checkpoint_format(head->seq, head->hash, (int64_t) head->end, now, e, &text);
        if (r >= 0)
                r = write_file_atomic(c->path, text, strlen(text), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return log_error_errno(r, "join-service: cannot write %s: %m", c->path);
        free(c->text);
        c->text = TAKE_PTR(text);
        memcpy(c->time, now, sizeof(now));
        log_debug("join-service: audit log head signed: entry %" PRId64 " at %s", head->seq, now);
        return 0;
}

/* At start: the checkpoint an earlier run left must be this TPM's, and still in the log, entry
 * and hash where they ended. A log that was extended meanwhile passes (nothing can tell entries
 * written while no join service ran; see the docs' limits). */
static void checkpoint_check_previous(JoinService *js, JoinCheckpoint *c)
{
        _cleanup_(audit_checkpoint_freep) AuditCheckpoint *old = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        char signer[AUDIT_SIGNER_HEX_SIZE];
        size_t size = 0;
        LogEnd was;
        Diag d;
        int r;

        r = read_full_file(c->path, AUDIT_CHECKPOINT_SIZE_MAX, &data, &size);
        if (r == -ENOENT)
                return;
        diag_clear(&d);
        if (r >= 0)
                r = audit_checkpoint_parse(data, size, c->path, &old, &d);
        if (r < 0) {
                log_warning("join-service: the previous audit checkpoint %s is unreadable (%s); "
                            "signing the log as it is",
                            c->path, d.message[0] ? d.message : strerror(-r));
                return;
        }
        if (c->self[0] &&
            (audit_checkpoint_signer(old->evidence, signer) < 0 || strcmp(signer, c->self) != 0)) {
                checkpoint_refuse(c,
                                  "%s was signed by another key than this TPM's: the log and its "
                                  "checkpoint are not this join service's",
                                  c->path);
                return;
        }
        was = (LogEnd){ .seq = old->seq, .end = (off_t) old->size };
        memcpy(was.hash, old->hash, sizeof(was.hash));
        if (!log_still_holds(js, &was))
                checkpoint_refuse(c,
                                  "entry %" PRId64 " (signed at %s) is no longer in the log where "
                                  "it was: the log was rolled back, cut or rewritten",
                                  old->seq, old->time);
}

int join_checkpoint_update_locked(JoinService *js, bool force)
{
        JoinCheckpoint *c = js->checkpoint;
        LogEnd now;
        Diag d;
        int r;

        if (!c || c->tampered)
                return c ? -ESTALE : 0;
        diag_clear(&d);
        r = log_end(js, -1, &now, &d);
        if (r == -ENOENT)
                now = (LogEnd){
                        .hash = "0000000000000000000000000000000000000000000000000000000000000000"
                };
        else if (r < 0) {
                /* A damaged last line: the owner's chain check names it; nothing to sign. */
                log_warning("join-service: the audit log's head is not signed: %s", d.message);
                return 0;
        }
        if (!c->have) {
                checkpoint_check_previous(js, c);
                if (c->tampered)
                        return -ESTALE;
                c->written = now;
                c->have = true;
        } else if (!log_end_equal(&now, &c->written)) {
                /* Only this monitor writes the log while it runs. */
                if (log_still_holds(js, &c->written))
                        checkpoint_refuse(c,
                                          "entries %" PRId64 " to %" PRId64 " were not written by "
                                          "this join service",
                                          c->written.seq + 1, now.seq);
                else
                        checkpoint_refuse(c,
                                          "entry %" PRId64 " is no longer in the log where this "
                                          "join service wrote it: the log was rolled back, cut "
                                          "or rewritten",
                                          c->written.seq);
                return -ESTALE;
        } else if (!force && c->text && c->signed_seq == now.seq)
                return 0;
        r = checkpoint_sign_locked(js, c, &now);
        if (r >= 0)
                c->signed_seq = now.seq;
        return 0;
}

void join_checkpoint_appended_locked(JoinService *js)
{
        JoinCheckpoint *c = js->checkpoint;
        LogEnd now;
        Diag d;

        if (!c || c->tampered || !c->have)
                return;
        diag_clear(&d);
        /* The entry just written must follow the one this monitor wrote last, which must still
         * be where it was: otherwise someone else wrote in between. */
        if (log_end(js, -1, &now, &d) < 0 || now.seq != c->written.seq + 1 ||
            !log_still_holds(js, &c->written)) {
                checkpoint_refuse(c,
                                  "the entry it just wrote does not follow entry %" PRId64
                                  ", which it wrote before: someone else wrote in between",
                                  c->written.seq);
                return;
        }
        c->written = now;
}

void join_checkpoint_update(JoinService *js)
{
        if (!js->checkpoint)
                return;
        (void) pthread_mutex_lock(&js->audit_lock);
        (void) join_checkpoint_update_locked(js, false);
        (void) pthread_mutex_unlock(&js->audit_lock);
}

int join_checkpoint_read_locked(JoinService *js, char **ret)
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size = 0;
        char *text;
        int r;

        if (!js->checkpoint)
                return -ENOENT;
        /* This run's own checkpoint, whatever the file says now; before it has one, the file an
         * earlier run left (a log rolled back behind it then fails against it). */
        if (js->checkpoint->text) {
                text = strdup(js->checkpoint->text);
                if (!text)
                        return -ENOMEM;
                *ret = text;
                return 0;
        }
        r = read_full_file(js->checkpoint->path, AUDIT_CHECKPOINT_SIZE_MAX, &data, &size);
        if (r < 0)
                return r;
        text = strndup((const char *) data, size);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

static void *checkpoint_thread(void *arg)
{
        JoinService *js = arg;
        JoinCheckpoint *c = js->checkpoint;

        (void) pthread_mutex_lock(&c->lock);
        while (!c->stop) {
                struct timespec until;
                (void) clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += c->interval_sec;
                if (pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT || c->stop)
                        continue;
                (void) pthread_mutex_unlock(&c->lock);
                /* A fresh time over the same head: the log was this at least until now. */
                (void) pthread_mutex_lock(&js->audit_lock);
                (void) join_checkpoint_update_locked(js, true);
                (void) pthread_mutex_unlock(&js->audit_lock);
                (void) pthread_mutex_lock(&c->lock);
        }
        (void) pthread_mutex_unlock(&c->lock);
        return NULL;
}

/* This TPM's attestation key, which signs every checkpoint ("" if it cannot quote now: the
 * first signature fails the same way and is logged). */
static void self_signer(JoinService *js, char ret[static AUDIT_SIGNER_HEX_SIZE])
{
        static const uint8_t zero[ATTEST_BINDING_SIZE];
        _cleanup_(evidence_freep) Evidence *e = NULL;
        Diag d;
        int r;

        diag_clear(&d);
        (void) pthread_mutex_lock(&js->attester->tpm.lock);
        r = attest_vtpm_issue(js->attester->tpm.tpm, &js->attester->tpm.config, zero, &e, &d);
        (void) pthread_mutex_unlock(&js->attester->tpm.lock);
        if (r < 0 || audit_checkpoint_signer(e, ret) < 0)
                ret[0] = '\0';
}

int join_checkpoint_start(JoinService *js, unsigned interval_sec)
{
        JoinCheckpoint *c;

        assert(js->attester);
        /* A checkpoint is a quote by the TPM key this join service's aTLS evidence names: the
         * evidence's own (qemu-vtpm) or its identity beside a TDX quote (docs/audit-log.md). */
        if (js->attester->variant != ATTEST_VARIANT_QEMU_VTPM &&
            !attest_variant_tpm_identity(js->attester->variant)) {
                log_notice("join-service: the audit log's head is not signed: checkpoints are "
                           "made by qemu-vtpm join services only, this one attests with %s",
                           attest_variant_to_string(js->attester->variant));
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return log_oom();
        if (asprintf(&c->path, "%s.checkpoint", js->audit_log) < 0) {
                free(c);
                return log_oom();
        }
        c->interval_sec = interval_sec;
        self_signer(js, c->self);
        (void) pthread_mutex_init(&c->lock, NULL);
        (void) pthread_cond_init(&c->wake, NULL);
        join_audit_flush(js);
        (void) pthread_mutex_lock(&js->audit_lock);
        js->checkpoint = c;
        (void) join_checkpoint_update_locked(js, true);
        (void) pthread_mutex_unlock(&js->audit_lock);
        if (interval_sec > 0 && pthread_create(&c->thread, NULL, checkpoint_thread, js) == 0)
                c->running = true;
        return 0;
}

void join_checkpoint_stop(JoinService *js)
{
        JoinCheckpoint *c = js->checkpoint;

        if (!c)
                return;
        if (c->running) {
                (void) pthread_mutex_lock(&c->lock);
                c->stop = true;
                (void) pthread_cond_signal(&c->wake);
                (void) pthread_mutex_unlock(&c->lock);
                (void) pthread_join(c->thread, NULL);
        }
        (void) pthread_mutex_lock(&js->audit_lock);
        js->checkpoint = NULL;
        (void) pthread_mutex_unlock(&js->audit_lock);
        (void) pthread_mutex_destroy(&c->lock);
        (void) pthread_cond_destroy(&c->wake);
        free(c->path);
        free(c->text);
        free(c);
}
