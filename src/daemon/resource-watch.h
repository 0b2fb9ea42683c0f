/* SPDX-License-Identifier: MIT */
#pragma once

/* Live reload: inotify on the resource directory. Creating, writing, deleting or renaming a
 * *.yaml / *.yml file (editors' atomic saves included) reloads after a short quiet time, on the
 * event loop, through manager_reload(). */

#include "daemon/manager.h"

#define RESOURCE_WATCH_DEBOUNCE_USEC (200 * 1000)

int resource_watch_setup(Manager *m);
/* True while a change waits for its reload. */
bool resource_watch_pending(void);
