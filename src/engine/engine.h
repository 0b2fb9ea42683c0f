/* SPDX-License-Identifier: MIT */
#pragma once

/* The flow engine: the scheduler (concurrency, per-flow parallelism, queue), the one place that
 * starts units (StartTransientUnit), and the unit watcher (systemd's signals) that turns unit
 * ends into activity results and carries each run's DAG on. */

#include "engine/run.h"
#include "store/store.h"

typedef struct EngineConfig {
        const char *state_dir;
        const char *step_binary;
        unsigned max_units_in_flight;
        unsigned max_queued_runs;
        uint64_t output_max_bytes;
        int sandbox; /* StepSandbox */
        uint64_t retention_usec;     /* ended runs older than this are removed; 0: kept */
        unsigned retention_max_runs; /* ended runs kept at most; 0: no limit */
        bool systemd_private_socket; /* units started on systemd's private socket (as root) */
} EngineConfig;

/* Told about state changes, in order; for D-Bus signals, webhooks, flow-output triggers and
 * sync waiters. A run's final state is told once, after it is stored. */
typedef struct EngineListener {
        void (*run_changed)(Run *run, void *userdata);
        void (*activity_changed)(Activity *a, void *userdata);
        void *userdata;
} EngineListener;

/* bus: the system bus; the engine talks to systemd on its private socket instead when it can
 * (config->systemd_private_socket, as root), and on the system bus otherwise. */
int engine_new(sd_event *event, sd_bus *bus, Store *store, const EngineConfig *config,
               Engine **ret);
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free);

int engine_add_listener(Engine *e, const EngineListener *l);

/* Creates a run of flow with input (merged over the flow's defaults; NULL for none), records it,
 * and schedules it once recorded. trigger_ctx is the .trigger template context (taken; may be
 * NULL). Returns -ENOBUFS when the queue is full. */
int engine_submit(Engine *e, const Flow *flow, json_object *input, const char *trigger,
                  json_object *trigger_ctx, Run **ret);

/* Stops every unit of the run; the run ends Cancelled. -ENOENT: not an active run. */
int engine_cancel(Engine *e, int64_t run_id, const char *reason);

/* At start: picks up runs that were not finished, re-attaches to their units, records what
 * ended while the daemon was down, and carries the DAGs on. */
int engine_recover(Engine *e);

/* The unit of a's current attempt as it is started (unit_start_describe()), for webhooks. */
int engine_describe_unit(Activity *a, json_object **ret);

Run *engine_find_run(Engine *e, int64_t id);
/* Active runs fired by trigger ("ns/name"). */
unsigned engine_count_trigger_runs(Engine *e, const char *trigger);
/* Cancels every active run fired by trigger; returns how many. */
unsigned engine_cancel_trigger_runs(Engine *e, const char *trigger, const char *reason);
unsigned engine_n_active_runs(Engine *e);
unsigned engine_n_queued_runs(Engine *e);
unsigned engine_n_units_in_flight(Engine *e);
Store *engine_store(Engine *e);
/* Applies the retention policy now (also done at start, hourly, and soon after runs end).
 * Returns the number of runs removed. */
int engine_prune(Engine *e);
/* Changes the retention policy (on reload); applied at the next pruning. */
void engine_set_retention(Engine *e, uint64_t max_age_usec, unsigned max_runs);
