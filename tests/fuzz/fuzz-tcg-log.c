/* SPDX-License-Identifier: Apache-2.0 */
/* The TCG event log parser, replay of every bank, and the event describer. */
#include <stddef.h>
#include <stdint.h>

#include "cloister/tcg-log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint16_t banks[] = { 0x0004, 0x000B, 0x000C, 0x000D };
        _cleanup_(tcg_log_freep) TcgLog *log = NULL;
        char buf[256];
        TcgLogPcrs out;

        if (tcg_log_parse(data, size, &log, NULL) < 0)
                return 0;
        for (size_t i = 0; i < sizeof(banks) / sizeof(banks[0]); i++)
                (void) tcg_log_replay(log, banks[i], &out);
        for (size_t i = 0; i < log->n_events; i++) {
                tcg_event_describe(&log->events[i], buf, sizeof(buf));
                (void) tcg_event_type_to_string(log->events[i].type);
        }
        return 0;
}
