/* SPDX-License-Identifier: Apache-2.0 */
#include <systemd/sd-daemon.h>

#include "cloister/notify.h"

void service_notify(const char *state)
{
        (void) sd_notify(0, state);
}
