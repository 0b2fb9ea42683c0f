/* SPDX-License-Identifier: MIT */
#pragma once

/* dev.arkonis.ArkEvent1 on the system bus. The manager object /dev/arkonis/ArkEvent1, one object
 * per trigger below /dev/arkonis/ArkEvent1/trigger and one per recent run below
 * /dev/arkonis/ArkEvent1/run. dbus/dev.arkonis.ArkEvent1.xml is the contract. */

#include "daemon/manager.h"

#define BUS_NAME "dev.arkonis.ArkEvent1"
#define BUS_MANAGER_PATH "/dev/arkonis/ArkEvent1"
#define BUS_MANAGER_INTERFACE "dev.arkonis.ArkEvent1.Manager"
#define BUS_TRIGGER_PREFIX "/dev/arkonis/ArkEvent1/trigger"
#define BUS_TRIGGER_INTERFACE "dev.arkonis.ArkEvent1.Trigger"
#define BUS_RUN_PREFIX "/dev/arkonis/ArkEvent1/run"
#define BUS_RUN_INTERFACE "dev.arkonis.ArkEvent1.Run"

#define BUS_ERROR_NOT_FOUND "dev.arkonis.ArkEvent1.Error.NotFound"
#define BUS_ERROR_INVALID_ARGUMENT "dev.arkonis.ArkEvent1.Error.InvalidArgument"
#define BUS_ERROR_QUEUE_FULL "dev.arkonis.ArkEvent1.Error.QueueFull"
#define BUS_ERROR_REFUSED "dev.arkonis.ArkEvent1.Error.Refused"
#define BUS_ERROR_SUSPENDED "dev.arkonis.ArkEvent1.Error.Suspended"
#define BUS_ERROR_ACCESS_DENIED "dev.arkonis.ArkEvent1.Error.AccessDenied"
#define BUS_ERROR_UNAVAILABLE "dev.arkonis.ArkEvent1.Error.Unavailable"
#define BUS_ERROR_ALREADY_FINISHED "dev.arkonis.ArkEvent1.Error.AlreadyFinished"
#define BUS_ERROR_NOT_WEBHOOK "dev.arkonis.ArkEvent1.Error.NotWebhook"

/* Connects to the system bus, publishes the objects and requests the name. */
int bus_manager_connect(Manager *m);

/* Emits PropertiesChanged for the counters. */
void bus_manager_emit_changed(Manager *m);

/* Signals and PropertiesChanged for run and activity state (from the engine listener). */
void bus_manager_emit_run(Manager *m, Run *run);
void bus_manager_emit_activity(Manager *m, Activity *a);

/* Forgets the callers' credentials asked for so far (one entry per bus connection). */
void bus_creds_cache_clear(void);

/* Splits "ns/name" (or "name": namespace "default"). */
int bus_parse_ref(const char *ref, char **ret_ns, const char **ret_name);

/* Whether the sender may change things: root, or a member of bus.adminGroup. Sets an
 * AccessDenied error and returns 0 when not; 1 when allowed; negative errno on failure. */
int bus_check_admin(sd_bus_message *msg, Manager *m, sd_bus_error *error);

/* Fires ns/name with input_json for the caller of msg and answers it with the run objects
 * (FireTrigger, and Fire on a trigger object). */
int bus_fire_trigger(sd_bus_message *msg, Manager *m, const char *ns, const char *name,
                     const char *input_json, sd_bus_error *error);

/* Cancels run id for the caller of msg (CancelRun, and Cancel on a run object). */
int bus_cancel_run(sd_bus_message *msg, Manager *m, uint64_t id, sd_bus_error *error);

/* Per-trigger objects (bus-trigger.c). */
int bus_trigger_setup(Manager *m);
int bus_trigger_path(const Trigger *t, char **ret);
/* Coalesced: one PropertiesChanged per trigger when the loop turn ends. */
void bus_trigger_emit_changed(Manager *m, const char *ns, const char *name);
/* Sends what is pending and forgets the rest (before the bus goes). */
void bus_trigger_changed_flush(void);
/* PropertiesChanged for every property of every trigger (after a reload). */
void bus_trigger_emit_all(Manager *m);

/* Per-run objects (bus-run.c). */
int bus_run_setup(Manager *m);
int bus_run_path(int64_t id, char **ret);
/* Coalesced: one PropertiesChanged per run when the loop turn ends. */
void bus_run_emit_changed(Manager *m, int64_t id);
/* Sends what is pending and forgets the rest (before the bus goes). */
void bus_run_changed_flush(void);
