/* SPDX-License-Identifier: MIT */
#pragma once

/* Runs of flows and their activities, as the engine holds them while they are not finished. */

#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "model/model.h"

typedef struct Engine Engine;
typedef struct Run Run;

typedef enum RunState {
        RUN_PENDING, /* committed, waiting for its flow's concurrency slot */
        RUN_RUNNING,
        RUN_SUCCEEDED,
        RUN_FAILED,
        RUN_CANCELLED,
        RUN_TIMED_OUT,
        _RUN_STATE_MAX,
        _RUN_STATE_INVALID = -EINVAL,
} RunState;

typedef enum ActivityState {
        ACTIVITY_PENDING,  /* dependencies not done yet */
        ACTIVITY_QUEUED,   /* ready, waiting for a unit slot */
        ACTIVITY_WAITING,  /* failed, waiting to retry */
        ACTIVITY_STARTING, /* StartTransientUnit sent */
        ACTIVITY_RUNNING,
        ACTIVITY_SUCCEEDED,
        ACTIVITY_FAILED,
        ACTIVITY_TIMED_OUT,
        ACTIVITY_SKIPPED,
        ACTIVITY_CANCELLED,
        _ACTIVITY_STATE_MAX,
        _ACTIVITY_STATE_INVALID = -EINVAL,
} ActivityState;

typedef struct Activity {
        Run *run;
        size_t index;
        const Step *step;
        int64_t id;
        ActivityState state;
        unsigned attempt; /* number of the current or last attempt, 0 before the first */
        char *unit;
        char *invocation_id;
        int exit_code; /* -1 when unknown */
        char *result;  /* systemd's Result= of the unit, e.g. "success", "exit-code", "timeout" */
        char *output;
        char *reason;  /* why Failed/Skipped/Cancelled */
        uint64_t created_usec, started_usec, finished_usec;
        sd_event_source *retry_source;
        sd_bus_slot *start_slot;
        bool seen_active; /* the unit was seen active, so an inactive state means it ended */
        /* Last values systemd announced for the unit, in case the result file is missing. */
        char *announced_result;
        int announced_code, announced_status;
        uint64_t next_attempt_usec; /* CLOCK_REALTIME of the next attempt while Waiting */
        sd_bus_message *start_msg; /* StartTransientUnit, held until the attempt is committed */
        sd_bus_slot *watch_slot;   /* the match for this unit's PropertiesChanged */
        bool watched_by_all;       /* watched by the match for every unit instead */
} Activity;

struct Run {
        Engine *engine;
        int64_t id;
        char *name;
        char *ns;
        char *flow_name;
        Flow *flow; /* the flow as it was when the run was created (its text is stored too) */
        char *trigger; /* "ns/name" of the trigger that fired it, or NULL */
        RunState state;
        RunState final_state; /* where the run goes once no activity is active any more */
        json_object *input;   /* effective input: flow defaults merged with the fired input */
        json_object *trigger_ctx; /* .trigger template context, or NULL */
        char *output;
        char *error;
        Activity *activities;
        size_t n_activities;
        unsigned n_active; /* activities starting or running */
        uint64_t created_usec, started_usec, finished_usec;
        sd_event_source *timeout_source;
        sd_event_source *result_watch; /* inotify on its meta directory: results as they come */
        char *dir; /* STATE/runs/ID */
        char *workspace;
        bool dirs_ready; /* dir, workspace and the input file exist (made when it starts) */
        bool waiting;    /* Pending, in the engine's queue of runs waiting for a unit slot */
        char *parked_input, *parked_trigger; /* input and trigger_ctx as text while waiting */
        bool ending; /* failure, cancel or timeout seen: start nothing new */
        bool accepted; /* handed to the engine at the end of its first turn: may start */
};

const char *run_state_to_string(RunState s) _pure_;
RunState run_state_from_string(const char *s) _pure_;
const char *activity_state_to_string(ActivityState s) _pure_;
ActivityState activity_state_from_string(const char *s) _pure_;
static inline bool run_state_is_final(RunState s)
{
        return s >= RUN_SUCCEEDED;
}
static inline bool activity_state_is_final(ActivityState s)
{
        return s >= ACTIVITY_SUCCEEDED;
}
static inline bool activity_state_is_active(ActivityState s)
{
        return s == ACTIVITY_STARTING || s == ACTIVITY_RUNNING;
}
