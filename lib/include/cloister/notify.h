/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A state for the service manager (sd_notify(3): "READY=1", "STOPPING=1"); nothing without one.
 * For a process that serves through a child (the join service's monitor: with NotifyAccess=main
 * only the main process is heard). */
void service_notify(const char *state);
