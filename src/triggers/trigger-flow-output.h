/* SPDX-License-Identifier: MIT */
#pragma once

/* Flow-output triggers: when a run of the watched flow ends in the trigger's phase (onPhase:
 * Succeeded, Failed or Any), every target fires, all in parallel, with the upstream output as
 * {{ .trigger.output }}. Once per upstream run: the fire and its record in flow_output_fires
 * share one store transaction, and at start the runs that ended without a record (the daemon
 * stopped at that moment) are fired for. */

#include "daemon/manager.h"

/* Registers the engine listener; call before engine_recover(). */
int trigger_flow_output_setup(Manager *m);

/* Marks the flow-output triggers of the registry as watching from now on (runs that ended
 * before a trigger existed never fire it); at start and after each reload. */
void trigger_flow_output_watch(Manager *m);

/* At start, after engine_recover(): fires for recent upstream runs that ended with no record. */
int trigger_flow_output_catch_up(Manager *m);

/* True while fires are queued for the next turn of the loop. */
bool trigger_flow_output_busy(void);
