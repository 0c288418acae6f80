/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The journal's and the service manager's datagram protocols (lib/base/journal.c). */

#include <stdbool.h>
#include <stddef.h>

#include "cloister/macro.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* One record under construction: fields are appended until one does not fit, after which the
 * record stays refused (ok false) and is not sent. */
typedef struct JournalRecord {
        size_t size;
        bool ok;
        char buf[4096];
} JournalRecord;

#define JOURNAL_RECORD_INIT                                                                        \
        {                                                                                          \
                .ok = true                                                                         \
        }

bool journal_record_add(JournalRecord *rec, const char *key, const char *value);
bool journal_record_addf(JournalRecord *rec, const char *key, const char *format, ...)
        _printf_(3, 4);
/* Sends the record to the journal socket at socket_path (JOURNAL_SOCKET but in tests).
 * 0, or a negative errno (-EMSGSIZE for a record that did not fit). */
int journal_record_send(const JournalRecord *rec, const char *socket_path);
/* The process's journal socket, or -1 before the first record: a process that closes what it
 * does not need keeps it. */
int journal_socket_fd(void);

/* sd_notify(0, state): 1 when sent, 0 without $NOTIFY_SOCKET, a negative errno on failure. */
int service_manager_notify(const char *state);
