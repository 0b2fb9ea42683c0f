/* SPDX-License-Identifier: MIT */
#pragma once

/* dev.arkonis.ArkEvent1 on the system bus: the manager object /dev/arkonis/ArkEvent1. */

#include "daemon/manager.h"

#define BUS_NAME "dev.arkonis.ArkEvent1"
#define BUS_MANAGER_PATH "/dev/arkonis/ArkEvent1"
#define BUS_MANAGER_INTERFACE "dev.arkonis.ArkEvent1.Manager"

/* Connects to the system bus, publishes the manager object and requests the name. */
int bus_manager_connect(Manager *m);

/* Emits PropertiesChanged for the counters. */
void bus_manager_emit_changed(Manager *m);

/* Signals for run and activity state. */
void bus_manager_emit_run(Manager *m, Run *run);
void bus_manager_emit_activity(Manager *m, Activity *a);
