/* SPDX-License-Identifier: MIT */
#pragma once

/* Scale to zero: with nothing running, queued or waiting to be delivered for idleExitSeconds,
 * the daemon exits cleanly (exit code 0). systemd keeps the HTTP socket and dbus the bus name,
 * so the next request or cron timer starts it again and is served. */

#include <stdbool.h>

#include "daemon/manager.h"

/* Nothing running, queued, suspended or waiting to be delivered. */
bool manager_is_idle(Manager *m);

/* Arms the idle check (a no-op check while idleExitSeconds is 0). */
int manager_idle_setup(Manager *m);
