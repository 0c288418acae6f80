/* SPDX-License-Identifier: Apache-2.0 */
#include "cloister/journal.h"
#include "cloister/notify.h"

void service_notify(const char *state)
{
        (void) service_manager_notify(state);
}
