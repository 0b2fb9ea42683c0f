/* SPDX-License-Identifier: MIT */
#pragma once

/* Live reload: inotify on the resource directory. Creating, writing, deleting or renaming a
 * *.yaml / *.yml file (editors' atomic saves included) reloads after a short quiet time
 * (resourceWatchDelayMilliseconds, 0 turns watching off), on the event loop, through
 * manager_reload(). */

#include "daemon/manager.h"
#include "model/diag.h"

int resource_watch_setup(Manager *m);
/* True while a change waits for its reload. */
bool resource_watch_pending(void);

/* After a load: remembers which triggers of next are the previous version kept because their
 * new document is broken (the same object as in previous), with the first error of their file. */
void resource_watch_note_kept(const Registry *previous, const Registry *next,
                              const Diagnostics *diags);
/* Why t is a kept previous version ("file:line:column: error: ..."), or NULL. */
const char *resource_watch_kept_reason(const Trigger *t);
