/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "engine/engine.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "trigger-fire.h"
#include "trigger-flow-output.h"

/* How far back the start looks for upstream runs that ended without their fire. */
#define CATCH_UP_USEC (24 * 3600 * USEC_PER_SEC)
#define CATCH_UP_RUNS_MAX 1000

/* A run that ended, waiting for the next turn of the loop to fire its flow-output triggers
 * (not from inside the engine's notification, which is still walking its runs). */
typedef struct EndedRun {
        int64_t id;
        char *ns;
        char *flow;
        RunState state;
        char *output;
        struct EndedRun *next;
} EndedRun;

static EndedRun *ended, **ended_tail = &ended;
static sd_event_source *defer_source;

static void ended_run_free(EndedRun *e)
{
        free(e->ns);
        free(e->flow);
        free(e->output);
        free(e);
}

bool trigger_flow_output_busy(void)
{
        return ended != NULL;
}

static bool phase_matches(OnPhase p, RunState s)
{
        switch (p) {
        case ON_PHASE_SUCCEEDED:
                return s == RUN_SUCCEEDED;
        case ON_PHASE_FAILED:
                return s == RUN_FAILED || s == RUN_TIMED_OUT;
        case ON_PHASE_ANY:
                return run_state_is_final(s);
        default:
                return false;
        }
}

static bool trigger_watches(const Trigger *t, const char *ns, const char *flow, RunState s)
{
        return t->type == TRIGGER_FLOW_OUTPUT && t->flow && streq(t->namespace, ns) &&
               streq(t->flow, flow) && phase_matches(t->on_phase, s);
}

/* 1 when trigger t already fired (or decided not to) for upstream run id. */
static int fire_recorded(Manager *m, const Trigger *t, int64_t id)
{
        sqlite3_stmt *st;
        int r;

        r = store_query(m->store, &st,
                        "SELECT 1 FROM flow_output_fires WHERE upstream_run_id=? AND namespace=? "
                        "AND name=?",
                        "iss", id, t->namespace, t->name);
        if (r < 0)
                return r;
        r = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        return r;
}

static void fire_one(Manager *m, const Trigger *t, int64_t id, const char *flow, RunState state,
                     const char *output)
{
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        _cleanup_(fire_result_done) FireResult res = {};
        _cleanup_free_ char *err = NULL;
        FireRequest req = { .body = body, .output = output ?: "" };
        int r;

        if (!body) {
                log_oom();
                return;
        }
        r = fire_recorded(m, t, id);
        if (r != 0) {
                if (r < 0)
                        log_warning_errno(r, "Cannot read the fires of trigger %s/%s: %m",
                                          t->namespace, t->name);
                return;
        }
        json_object_object_add(body, "run", json_object_new_int64(id));
        json_object_object_add(body, "flow", json_object_new_string(flow));
        json_object_object_add(body, "phase", json_object_new_string(run_state_to_string(state)));
        json_object_object_add(body, "output", output ? json_object_new_string(output) : NULL);

        r = trigger_fire(m, t, &req, &res, &err);
        if (r == -ENOBUFS || r == -ENOTCONN || r == -ENOMEM) {
                /* Not recorded: the next start tries again. */
                log_warning_errno(r, "Trigger %s/%s could not fire for run %" PRIi64 " of %s: %s",
                                  t->namespace, t->name, id, flow, err ?: strerror(-r));
                return;
        }
        if (r < 0)
                log_warning_errno(r, "Trigger %s/%s refused to fire for run %" PRIi64 " of %s: %s",
                                  t->namespace, t->name, id, flow, err ?: strerror(-r));
        else
                log_info("Run %" PRIi64 " of %s/%s ended %s: trigger %s/%s fired %zu run(s).", id,
                         t->namespace, flow, run_state_to_string(state), t->namespace, t->name,
                         res.n_runs);
        /* Same transaction as the runs the fire created (the store commits once per turn). */
        r = store_exec(m->store, NULL,
                       "INSERT OR IGNORE INTO flow_output_fires(upstream_run_id, namespace, name, "
                       "fired_usec) VALUES (?, ?, ?, ?)",
                       "issi", id, t->namespace, t->name, (int64_t) now_usec(CLOCK_REALTIME));
        if (r < 0)
                log_warning_errno(r, "Failed to record the fire of %s/%s for run %" PRIi64 ": %m",
                                  t->namespace, t->name, id);
}

static void fire_for_run(Manager *m, int64_t id, const char *ns, const char *flow, RunState state,
                         const char *output, uint64_t finished_usec)
{
        size_t n = m->registry ? m->registry->n_triggers : 0;

        for (size_t i = 0; i < n; i++) {
                const Trigger *t = m->registry->triggers[i];

                if (!trigger_watches(t, ns, flow, state))
                        continue;
                if (finished_usec > 0) {
                        /* Catching up: only runs that ended while t was already in effect. */
                        sqlite3_stmt *st;
                        uint64_t since = UINT64_MAX;

                        if (store_query(m->store, &st,
                                        "SELECT last_slot_usec FROM trigger_state WHERE "
                                        "namespace=? AND name=? AND last_slot_usec IS NOT NULL",
                                        "ss", t->namespace, t->name) < 0)
                                continue;
                        if (sqlite3_step(st) == SQLITE_ROW)
                                since = (uint64_t) sqlite3_column_int64(st, 0);
                        sqlite3_reset(st);
                        if (finished_usec < since)
                                continue;
                }
                fire_one(m, t, id, flow, state, output);
        }
}

static int on_defer(sd_event_source *s, void *userdata)
{
        Manager *m = userdata;

        while (ended) {
                EndedRun *e = ended;

                ended = e->next;
                if (!ended)
                        ended_tail = &ended;
                fire_for_run(m, e->id, e->ns, e->flow, e->state, e->output, 0);
                ended_run_free(e);
        }
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

static void on_run_changed(Run *run, void *userdata)
{
        Manager *m = userdata;
        size_t n = m->registry ? m->registry->n_triggers : 0;
        EndedRun *e;
        bool wanted = false;

        if (!run_state_is_final(run->state))
                return;
        for (size_t i = 0; i < n && !wanted; i++)
                wanted = trigger_watches(m->registry->triggers[i], run->ns, run->flow_name,
                                         run->state);
        if (!wanted)
                return;

        e = new0(EndedRun, 1);
        if (!e) {
                log_oom();
                return;
        }
        e->id = run->id;
        e->state = run->state;
        e->ns = strdup(run->ns);
        e->flow = strdup(run->flow_name);
        e->output = run->output ? strdup(run->output) : NULL;
        if (!e->ns || !e->flow || (run->output && !e->output)) {
                ended_run_free(e);
                log_oom();
                return;
        }
        *ended_tail = e;
        ended_tail = &e->next;
        (void) sd_event_source_set_enabled(defer_source, SD_EVENT_ONESHOT);
}

int trigger_flow_output_setup(Manager *m)
{
        EngineListener l = { .run_changed = on_run_changed, .userdata = m };
        int r;

        if (!m->engine)
                return 0;
        if (!defer_source) {
                r = sd_event_add_defer(m->event, &defer_source, on_defer, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up flow-output triggers: %m");
                (void) sd_event_source_set_enabled(defer_source, SD_EVENT_OFF);
                (void) sd_event_source_set_description(defer_source, "flow-output");
        }
        trigger_flow_output_watch(m);
        return engine_add_listener(m->engine, &l);
}

void trigger_flow_output_watch(Manager *m)
{
        size_t n = m->registry ? m->registry->n_triggers : 0;
        int64_t now = (int64_t) now_usec(CLOCK_REALTIME);

        if (!m->store)
                return;
        for (size_t i = 0; i < n; i++) {
                const Trigger *t = m->registry->triggers[i];

                if (t->type != TRIGGER_FLOW_OUTPUT)
                        continue;
                /* For flow-output triggers last_slot_usec is the time watching began. */
                (void) store_exec(m->store, NULL,
                                  "INSERT INTO trigger_state(namespace, name, fired_count, "
                                  "last_slot_usec) VALUES (?1, ?2, 0, ?3) ON CONFLICT(namespace, "
                                  "name) DO UPDATE SET last_slot_usec = "
                                  "COALESCE(last_slot_usec, ?3)",
                                  "ssi", t->namespace, t->name, now);
        }
}

int trigger_flow_output_catch_up(Manager *m)
{
        sqlite3_stmt *st;
        int64_t *ids = NULL;
        size_t n = 0;
        int r;

        if (!m->engine || !m->store)
                return 0;
        /* Collect first: firing writes to the store while the statement would still be open. */
        r = store_query(m->store, &st,
                        "SELECT id FROM runs WHERE finished_usec >= ? AND state IN ('Succeeded', "
                        "'Failed', 'Cancelled', 'TimedOut') ORDER BY id DESC LIMIT ?",
                        "ii", (int64_t) (now_usec(CLOCK_REALTIME) - CATCH_UP_USEC),
                        (int64_t) CATCH_UP_RUNS_MAX);
        if (r < 0)
                return log_warning_errno(r, "Failed to look for unfired flow outputs: %m");
        ids = new0(int64_t, CATCH_UP_RUNS_MAX);
        if (!ids) {
                sqlite3_reset(st);
                return log_oom();
        }
        while (n < CATCH_UP_RUNS_MAX && sqlite3_step(st) == SQLITE_ROW)
                ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);

        for (size_t i = n; i > 0; i--) {
                _cleanup_free_ char *ns = NULL, *flow = NULL, *state = NULL, *output = NULL;
                uint64_t finished = 0;

                r = store_query(m->store, &st,
                                "SELECT namespace, flow, state, output, finished_usec FROM runs "
                                "WHERE id=?",
                                "i", ids[i - 1]);
                if (r < 0)
                        break;
                if (sqlite3_step(st) == SQLITE_ROW) {
                        ns = store_column_strdup(st, 0);
                        flow = store_column_strdup(st, 1);
                        state = store_column_strdup(st, 2);
                        output = store_column_strdup(st, 3);
                        finished = (uint64_t) sqlite3_column_int64(st, 4);
                }
                sqlite3_reset(st);
                if (!ns || !flow || !state || run_state_from_string(state) < 0)
                        continue;
                fire_for_run(m, ids[i - 1], ns, flow, run_state_from_string(state), output,
                             MAX(finished, 1));
        }
        free(ids);
        return 0;
}
