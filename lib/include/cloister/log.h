/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Structured logging. Under systemd (stderr connected to the journal, detected through
 * $JOURNAL_STREAM) records go to the journal with PRIORITY, CODE_FILE, CODE_LINE, CODE_FUNC and
 * ERRNO fields; otherwise to stderr as "level: message".
 *
 * Secret material cannot be logged by mistake: secrets live in the opaque Secret type
 * (secret.h), and every log function is printf-checked, so passing a Secret to any of them is a
 * compile error under -Wformat -Werror (tests/compile-fail proves it).
 *
 * Library code logs at debug level only; a program logs once where it handles an error.
 */

#include <stdbool.h>
#include <syslog.h>

#include "cloister/macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

void log_set_max_level(int level);
/* Also writes every record, debug level included, with a UTC timestamp to fd (-1: no more);
 * what stderr (the journal, a sink) shows keeps the level log_set_max_level() set. The program
 * owns fd. Records are what the program logs, and no log function takes a Secret. */
void log_set_file(int fd);
int log_get_max_level(void);
/* Parses "debug", "info", "notice", "warning", "err"/"error", "crit" into a syslog level. */
int log_level_from_string(const char *s);
void log_set_target(LogTarget t);
LogTarget log_get_effective_target(void);
/* Where journal records go: JOURNAL_SOCKET (NULL restores it); another path only in tests. */
void log_set_journal_socket(const char *path);
/* Reads $CLOISTER_LOG_LEVEL (a level name) if set. */
void log_parse_environment(void);

/* Returns error (negative errno, or 0), so callers can write return log_error_errno(r, ...). */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                          \
        ({                                                                                         \
                int _l_ = (level), _e_ = (error);                                                  \
                (log_get_max_level() >= _l_)                                                       \
                        ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, __VA_ARGS__)        \
                        : -(_e_ < 0 ? -_e_ : _e_);                                                 \
        })

#define log_full(level, ...) ((void) log_full_errno(level, 0, __VA_ARGS__))

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

/* The last message this process logged at error level or above ("" if none), whatever the
 * target: what a tool that failed puts into its -o json error object (json-result.h). */
const char *log_last_error(void);

/* Keeps this process's records from now on ("level: message" lines, what the console shows) in
 * memory, at most size bytes: the oldest whole records go first. 0 turns it off. A daemon that
 * hands its own log to someone (the bootstrapper to its attested owner after a failed init) uses
 * it; secrets never reach a log record (secret.h). */
int log_ring_enable(size_t size);
/* A NUL-terminated copy of the kept records (free() it); *ret_dropped if older ones were
 * dropped. -ENODATA if the ring is off. */
int log_ring_read(char **ret, size_t *ret_size, bool *ret_dropped);

/* For tests: capture formatted records instead of writing them. NULL restores normal output. */
typedef void (*LogSink)(int level, int error, const char *message, void *userdata);
void log_set_sink(LogSink sink, void *userdata);
