/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/inotify.h>
#include <pwd.h>
#include <sys/stat.h>

#include "engine.h"
#include "engine/run-retention.h"
#include "engine/unit-start.h"
#include "model/loader.h"
#include "model/template.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "shared/time-util.h"

typedef struct QueueEntry {
        int64_t run_id;
        size_t index;
} QueueEntry;

struct Engine {
        sd_event *event;
        sd_bus *bus;        /* where systemd is asked and heard: its private socket, or api_bus */
        sd_bus *api_bus;    /* the system bus */
        sd_bus *lost_bus;   /* the private socket after systemd closed it */
        bool direct;        /* bus is systemd's private socket (a peer, not a bus daemon) */
        sd_bus_slot *subscribe_slot;         /* Subscribe on the system bus after the switch */
        sd_event_source *subscribe_again;    /* ... and its retry while systemd is away */
        Store *store;
        EngineConfig config;
        char *state_dir;
        char *step_binary;
        Run **runs; /* not finished, in order of creation */
        size_t n_runs, n_runs_allocated;
        QueueEntry *queue; /* activities ready to start, waiting for a unit slot (FIFO ring) */
        size_t queue_head, queue_len, queue_allocated;
        unsigned n_units_in_flight;
        unsigned n_pending; /* runs in state Pending */
        int64_t *waiting; /* Pending runs waiting for a unit slot, oldest first (from waiting_head) */
        size_t waiting_head, n_waiting, n_waiting_allocated;
        bool dispatching;
        sd_bus_slot *match_slot;
        EngineListener *listeners;
        size_t n_listeners;
        sd_event_source *prune_source;
        QueueEntry *starts; /* attempts recorded in the open transaction, to start once committed */
        size_t n_starts, n_starts_allocated;
        char **resets; /* failed units whose result is in the open transaction, to reset once
                        * committed (then systemd collects them) */
        unsigned n_unit_matches; /* units watched by a match of their own */
        unsigned n_watched_by_all; /* units watched by match_slot, beyond that budget */
};

/* Matches of one unit each, so the daemon hears only of its own units (not of the mounts,
 * targets and other units a start touches); beyond this many, one match for every unit: the
 * match rule budget (512 per connection) does not grow with the number of units. */
#define UNIT_MATCH_BUDGET 256u

/* On systemd's private socket messages come from the peer itself, with no sender name. */
static const char *systemd_sender(Engine *e)
{
        return e->direct ? NULL : "org.freedesktop.systemd1";
}

/* A reply that only says the connection it was asked on is gone: not an answer. What was asked
 * is found out again on the connection that replaces it (engine_switch_bus()). */
static bool reply_from_lost_bus(sd_bus_message *reply)
{
        return sd_bus_is_open(sd_bus_message_get_bus(reply)) <= 0;
}

/* Errors that say systemd could not be asked just now (it is being re-executed, the bus is
 * restarting), not anything about the unit. */
static bool systemd_unreachable(const sd_bus_error *err)
{
        return sd_bus_error_has_names(err, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                      SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_NO_REPLY,
                                      SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_DISCONNECTED,
                                      SD_BUS_ERROR_NO_SERVER, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                      "org.freedesktop.systemd1.ShuttingDown") ||
               (err && err->name && startswith(err->name, "org.freedesktop.DBus.Error.Spawn."));
}

#define SYSTEMD_AGAIN_USEC (200 * USEC_PER_MSEC)

#define PRUNE_INTERVAL_USEC (3600 * USEC_PER_SEC)
#define PRUNE_SOON_USEC (2 * USEC_PER_SEC)
#define PRUNE_BATCH 500

static const char *const run_state_table[_RUN_STATE_MAX] = {
        [RUN_PENDING] = "Pending",     [RUN_RUNNING] = "Running",
        [RUN_SUCCEEDED] = "Succeeded", [RUN_FAILED] = "Failed",
        [RUN_CANCELLED] = "Cancelled", [RUN_TIMED_OUT] = "TimedOut",
};

static const char *const activity_state_table[_ACTIVITY_STATE_MAX] = {
        [ACTIVITY_PENDING] = "Pending",     [ACTIVITY_QUEUED] = "Queued",
        [ACTIVITY_WAITING] = "Waiting",     [ACTIVITY_STARTING] = "Starting",
        [ACTIVITY_RUNNING] = "Running",     [ACTIVITY_SUCCEEDED] = "Succeeded",
        [ACTIVITY_FAILED] = "Failed",       [ACTIVITY_TIMED_OUT] = "TimedOut",
        [ACTIVITY_SKIPPED] = "Skipped",     [ACTIVITY_CANCELLED] = "Cancelled",
};

const char *run_state_to_string(RunState s)
{
        return s >= 0 && s < _RUN_STATE_MAX ? run_state_table[s] : NULL;
}

RunState run_state_from_string(const char *s)
{
        for (int i = 0; s && i < _RUN_STATE_MAX; i++)
                if (streq(run_state_table[i], s))
                        return (RunState) i;
        return _RUN_STATE_INVALID;
}

const char *activity_state_to_string(ActivityState s)
{
        return s >= 0 && s < _ACTIVITY_STATE_MAX ? activity_state_table[s] : NULL;
}

ActivityState activity_state_from_string(const char *s)
{
        for (int i = 0; s && i < _ACTIVITY_STATE_MAX; i++)
                if (streq(activity_state_table[i], s))
                        return (ActivityState) i;
        return _ACTIVITY_STATE_INVALID;
}

static void engine_dispatch(Engine *e);
static void on_starts_committed(Store *s, int error, void *userdata);
static void engine_prune_soon(Engine *e);
static void run_advance(Run *run);
static int activity_start_unit(Activity *a);

/* ---- runs in memory ---------------------------------------------------------------------- */

static void activity_unwatch(Activity *a);

static void activity_done(Activity *a)
{
        activity_unwatch(a);
        sd_event_source_disable_unref(a->retry_source);
        sd_bus_slot_unref(a->start_slot);
        sd_bus_message_unref(a->start_msg);
        free(a->unit);
        free(a->invocation_id);
        free(a->result);
        free(a->output);
        free(a->reason);
        free(a->announced_result);
}

static Run *run_free(Run *run)
{
        if (!run)
                return NULL;
        for (size_t i = 0; i < run->n_activities; i++)
                activity_done(&run->activities[i]);
        free(run->activities);
        sd_event_source_disable_unref(run->timeout_source);
        sd_event_source_disable_unref(run->result_watch);
        flow_free(run->flow);
        json_object_put(run->input);
        json_object_put(run->trigger_ctx);
        free(run->parked_input);
        free(run->parked_trigger);
        free(run->name);
        free(run->ns);
        free(run->flow_name);
        free(run->trigger);
        free(run->output);
        free(run->error);
        free(run->dir);
        free(run->workspace);
        free(run);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Run *, run_free);

Run *engine_find_run(Engine *e, int64_t id)
{
        /* Runs are kept in creation order, so ids ascend: binary search. */
        size_t lo = 0, hi = e->n_runs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (e->runs[mid]->id == id)
                        return e->runs[mid];
                if (e->runs[mid]->id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static int engine_add_run(Engine *e, Run *run)
{
        size_t pos = e->n_runs;

        if (e->n_runs >= e->n_runs_allocated) {
                size_t n = MAX(64u, e->n_runs_allocated * 2);
                Run **r = realloc(e->runs, n * sizeof(Run *));
                if (!r)
                        return -ENOMEM;
                e->runs = r;
                e->n_runs_allocated = n;
        }
        /* Recovered runs may arrive out of order; keep the array sorted. */
        while (pos > 0 && e->runs[pos - 1]->id > run->id)
                pos--;
        memmove(e->runs + pos + 1, e->runs + pos, (e->n_runs - pos) * sizeof(Run *));
        e->runs[pos] = run;
        e->n_runs++;
        if (run->state == RUN_PENDING)
                e->n_pending++;
        return 0;
}

static void engine_remove_run(Engine *e, Run *run)
{
        /* Sorted by id: binary search, then close the gap. */
        size_t lo = 0, hi = e->n_runs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (e->runs[mid]->id < run->id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < e->n_runs && e->runs[lo] == run) {
                memmove(e->runs + lo, e->runs + lo + 1, (e->n_runs - lo - 1) * sizeof(Run *));
                e->n_runs--;
                if (run->state == RUN_PENDING && e->n_pending > 0)
                        e->n_pending--;
        }
}

unsigned engine_n_active_runs(Engine *e)
{
        return (unsigned) e->n_runs;
}

unsigned engine_n_queued_runs(Engine *e)
{
        return e->n_pending;
}

unsigned engine_n_units_in_flight(Engine *e)
{
        return e->n_units_in_flight;
}

Store *engine_store(Engine *e)
{
        return e->store;
}

int engine_add_listener(Engine *e, const EngineListener *l)
{
        EngineListener *n = realloc(e->listeners, (e->n_listeners + 1) * sizeof(EngineListener));
        if (!n)
                return -ENOMEM;
        e->listeners = n;
        e->listeners[e->n_listeners++] = *l;
        return 0;
}

static void notify_run(Run *run)
{
        Engine *e = run->engine;
        for (size_t i = 0; i < e->n_listeners; i++)
                if (e->listeners[i].run_changed)
                        e->listeners[i].run_changed(run, e->listeners[i].userdata);
}

static void notify_activity(Activity *a)
{
        Engine *e = a->run->engine;
        for (size_t i = 0; i < e->n_listeners; i++)
                if (e->listeners[i].activity_changed)
                        e->listeners[i].activity_changed(a, e->listeners[i].userdata);
}

/* ---- persistence ------------------------------------------------------------------------- */

static int64_t usec_or_null(uint64_t u)
{
        return (int64_t) u;
}

static int run_save(Run *run)
{
        int r = store_exec(run->engine->store, NULL,
                           "UPDATE runs SET state=?, output=?, error=?, started_usec=?, "
                           "finished_usec=? WHERE id=?",
                           "sssiii", run_state_to_string(run->state), run->output, run->error,
                           usec_or_null(run->started_usec), usec_or_null(run->finished_usec),
                           run->id);
        if (r < 0)
                log_error_errno(r, "Failed to record run %" PRIi64 ": %m", run->id);
        return r;
}

static int activity_save(Activity *a)
{
        int r = store_exec(a->run->engine->store, NULL,
                           "UPDATE activities SET state=?, attempts=?, exit_code=?, result=?, "
                           "unit=?, invocation_id=?, output=?, reason=?, started_usec=?, "
                           "finished_usec=? WHERE id=?",
                           "siisssssiii", activity_state_to_string(a->state), (int64_t) a->attempt,
                           (int64_t) a->exit_code, a->result, a->unit, a->invocation_id,
                           a->output, a->reason, usec_or_null(a->started_usec),
                           usec_or_null(a->finished_usec), a->id);
        if (r < 0)
                log_error_errno(r, "Failed to record activity %s of run %" PRIi64 ": %m",
                                a->step->name, a->run->id);
        return r;
}

static void run_event(Run *run, const char *type, json_object *data)
{
        const char *text = data ? json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN) : NULL;
        (void) store_exec(run->engine->store, NULL,
                          "INSERT INTO events(run_id, usec, type, data) VALUES (?, ?, ?, ?)", "iiss",
                          run->id, (int64_t) now_usec(CLOCK_REALTIME), type, text);
        json_object_put(data);
}

static void activity_set_state(Activity *a, ActivityState s)
{
        json_object *d;

        a->state = s;
        (void) activity_save(a);
        d = json_object_new_object();
        if (d) {
                json_object_object_add(d, "activity", json_object_new_string(a->step->name));
                json_object_object_add(d, "state",
                                       json_object_new_string(activity_state_to_string(s)));
                json_object_object_add(d, "attempt", json_object_new_int((int) a->attempt));
                if (a->reason)
                        json_object_object_add(d, "reason", json_object_new_string(a->reason));
        }
        run_event(a->run, "activity", d);
        notify_activity(a);
}

/* ---- templates --------------------------------------------------------------------------- */

static json_object *run_template_context(Run *run)
{
        json_object *ctx = json_object_new_object(), *pipeline, *steps;

        if (!ctx)
                return NULL;
        pipeline = json_object_new_object();
        steps = json_object_new_object();
        json_object_object_add(pipeline, "input", json_object_get(run->input));
        json_object_object_add(ctx, "pipeline", pipeline);
        for (size_t i = 0; i < run->n_activities; i++) {
                Activity *a = &run->activities[i];
                json_object *s = json_object_new_object();
                json_object_object_add(s, "output", json_object_new_string(strempty(a->output)));
                json_object_object_add(
                        s, "state", json_object_new_string(activity_state_to_string(a->state)));
                json_object_object_add(steps, a->step->name, s);
        }
        json_object_object_add(ctx, "steps", steps);
        if (run->trigger_ctx)
                json_object_object_add(ctx, "trigger", json_object_get(run->trigger_ctx));
        return ctx;
}

/* ---- scheduling -------------------------------------------------------------------------- */

static int queue_push(Engine *e, Activity *a)
{
        if (e->queue_len >= e->queue_allocated) {
                size_t n = MAX(64u, e->queue_allocated * 2);
                QueueEntry *q = malloc(n * sizeof(QueueEntry));
                if (!q)
                        return -ENOMEM;
                for (size_t i = 0; i < e->queue_len; i++)
                        q[i] = e->queue[(e->queue_head + i) % e->queue_allocated];
                free(e->queue);
                e->queue = q;
                e->queue_head = 0;
                e->queue_allocated = n;
        }
        e->queue[(e->queue_head + e->queue_len) % e->queue_allocated] =
                (QueueEntry){ a->run->id, a->index };
        e->queue_len++;
        return 0;
}

static Activity *queue_pop(Engine *e)
{
        while (e->queue_len > 0) {
                QueueEntry q = e->queue[e->queue_head];
                Run *run;

                e->queue_head = (e->queue_head + 1) % e->queue_allocated;
                e->queue_len--;
                /* Entries of runs that ended meanwhile are dropped here. */
                run = engine_find_run(e, q.run_id);
                if (run && q.index < run->n_activities &&
                    run->activities[q.index].state == ACTIVITY_QUEUED && !run->ending)
                        return &run->activities[q.index];
        }
        return NULL;
}

/* Runs start only when a unit slot is free and no activity waits for one: a burst of fires
 * queues rows, and makes no directories, files or signals for runs that cannot go yet. */
static bool engine_at_capacity(Engine *e)
{
        return e->n_units_in_flight + e->queue_len >= e->config.max_units_in_flight;
}

static int waiting_push(Engine *e, Run *run)
{
        if (run->waiting)
                return 0;
        if (e->waiting_head > 0 && e->waiting_head * 2 >= e->n_waiting) {
                memmove(e->waiting, e->waiting + e->waiting_head,
                        (e->n_waiting - e->waiting_head) * sizeof(int64_t));
                e->n_waiting -= e->waiting_head;
                e->waiting_head = 0;
        }
        if (e->n_waiting >= e->n_waiting_allocated) {
                size_t n = MAX(64u, e->n_waiting_allocated * 2);
                int64_t *w = realloc(e->waiting, n * sizeof(int64_t));
                if (!w)
                        return -ENOMEM;
                e->waiting = w;
                e->n_waiting_allocated = n;
        }
        e->waiting[e->n_waiting++] = run->id;
        run->waiting = true;
        return 0;
}

/* A run waiting for a slot keeps its input and trigger context as text, a tenth of the memory
 * of the parsed objects: a burst of fires may leave tens of thousands of them queued. */
static void run_park(Run *run)
{
        if (run->parked_input)
                return;
        run->parked_input = strdup(json_object_to_json_string_ext(run->input,
                                                                  JSON_C_TO_STRING_PLAIN));
        run->parked_trigger = run->trigger_ctx ? strdup(json_object_to_json_string_ext(
                                                         run->trigger_ctx, JSON_C_TO_STRING_PLAIN))
                                               : NULL;
        if (!run->parked_input || (run->trigger_ctx && !run->parked_trigger)) {
                free(TAKE_PTR(run->parked_input));
                free(TAKE_PTR(run->parked_trigger));
                return;
        }
        json_object_put(TAKE_PTR(run->input));
        json_object_put(TAKE_PTR(run->trigger_ctx));
}

static int run_unpark(Run *run)
{
        if (!run->parked_input)
                return 0;
        run->input = json_tokener_parse(run->parked_input);
        run->trigger_ctx = run->parked_trigger ? json_tokener_parse(run->parked_trigger) : NULL;
        if (!run->input || (run->parked_trigger && !run->trigger_ctx)) {
                json_object_put(TAKE_PTR(run->input));
                json_object_put(TAKE_PTR(run->trigger_ctx));
                return -ENOMEM;
        }
        free(TAKE_PTR(run->parked_input));
        free(TAKE_PTR(run->parked_trigger));
        return 0;
}

static Run *waiting_pop(Engine *e)
{
        while (e->waiting_head < e->n_waiting) {
                Run *run = engine_find_run(e, e->waiting[e->waiting_head++]);
                if (run && run->waiting) {
                        run->waiting = false;
                        return run;
                }
        }
        e->waiting_head = e->n_waiting = 0;
        return NULL;
}

static void engine_dispatch(Engine *e)
{
        /* run_advance() dispatches too: the outermost call does the work. */
        if (e->dispatching)
                return;
        e->dispatching = true;
        while (e->n_units_in_flight < e->config.max_units_in_flight) {
                Activity *a = queue_pop(e);
                if (a) {
                        (void) activity_start_unit(a);
                        continue;
                }
                Run *run = waiting_pop(e);
                if (!run)
                        break;
                run_advance(run);
        }
        e->dispatching = false;
}

static bool deps_state(Run *run, const Step *step, bool *ret_any_failed)
{
        bool all_done = true;

        *ret_any_failed = false;
        STRV_FOREACH(d, step->depends_on) {
                Step *ds = flow_find_step(run->flow, *d);
                if (!ds)
                        continue;
                Activity *da = &run->activities[ds - run->flow->steps];
                if (da->state == ACTIVITY_SUCCEEDED || da->state == ACTIVITY_SKIPPED)
                        continue;
                if (activity_state_is_final(da->state))
                        *ret_any_failed = true;
                all_done = false;
        }
        return all_done;
}

static void activity_finish(Activity *a, ActivityState s, const char *reason)
{
        if (reason)
                (void) free_and_strdup(&a->reason, reason);
        if (!a->finished_usec || !activity_state_is_final(a->state))
                a->finished_usec = now_usec(CLOCK_REALTIME);
        activity_set_state(a, s);
}

static void activity_make_ready(Activity *a)
{
        Run *run = a->run;

        if (a->step->if_expr) {
                _cleanup_(json_object_putp) json_object *ctx = run_template_context(run);
                _cleanup_free_ char *v = NULL;

                if (!ctx || template_expand(a->step->if_expr, ctx, &v) < 0) {
                        activity_finish(a, ACTIVITY_FAILED, "cannot evaluate if:");
                        run->ending = true;
                        run->final_state = RUN_FAILED;
                        return;
                }
                if (!template_truthy(v)) {
                        _cleanup_free_ char *why = NULL;
                        (void) asprintf(&why, "condition is false: %s", a->step->if_expr);
                        activity_finish(a, ACTIVITY_SKIPPED, why);
                        return;
                }
        }

        activity_set_state(a, ACTIVITY_QUEUED);
        if (queue_push(run->engine, a) < 0)
                log_oom();
}

static void run_finish(Run *run)
{
        Engine *e = run->engine;
        json_object *d;

        (void) run_unpark(run); /* its output template may use its input */
        if (run->state == RUN_PENDING && e->n_pending > 0)
                e->n_pending--;
        run->state = run->final_state;
        run->finished_usec = now_usec(CLOCK_REALTIME);

        if (run->state == RUN_SUCCEEDED) {
                if (run->flow->output) {
                        _cleanup_(json_object_putp) json_object *ctx = run_template_context(run);
                        _cleanup_free_ char *out = NULL;
                        if (ctx && template_expand(run->flow->output, ctx, &out) >= 0)
                                free_and_replace(run->output, out);
                } else
                        for (size_t i = run->n_activities; i > 0; i--)
                                if (run->activities[i - 1].state == ACTIVITY_SUCCEEDED) {
                                        (void) free_and_strdup(&run->output,
                                                               run->activities[i - 1].output);
                                        break;
                                }
        }

        (void) run_save(run);
        d = json_object_new_object();
        if (d) {
                json_object_object_add(d, "state",
                                       json_object_new_string(run_state_to_string(run->state)));
                if (run->error)
                        json_object_object_add(d, "error", json_object_new_string(run->error));
        }
        run_event(run, "run", d);

        {
                const char *fields[] = { NULL, NULL, "ARKEVENT_EVENT=run-finished", NULL };
                char f1[64], f2[512];
                snprintf(f1, sizeof(f1), "ARKEVENT_RUN=%" PRIi64, run->id);
                snprintf(f2, sizeof(f2), "ARKEVENT_FLOW=%s/%s", run->ns, run->flow_name);
                fields[0] = f1;
                fields[1] = f2;
                log_struct(LOG_INFO, fields, "Run %" PRIi64 " of %s/%s %s%s%s.", run->id, run->ns,
                           run->flow_name, run_state_to_string(run->state),
                           run->error ? ": " : "", strempty(run->error));
        }

        sd_event_source_disable_unref(TAKE_PTR(run->timeout_source));
        notify_run(run);
        engine_remove_run(e, run);
        engine_prune_soon(e);

        /* A slot of this flow may have freed up (only a flow with a concurrency cap has runs
         * waiting for one). */
        for (size_t i = 0; run->flow->concurrency > 0 && i < e->n_runs; i++) {
                Run *p = e->runs[i];
                if (p->state == RUN_PENDING && p->accepted && streq(p->ns, run->ns) &&
                    streq(p->flow_name, run->flow_name)) {
                        run_advance(p);
                        break;
                }
        }
        run_free(run);
}

static unsigned flow_running_runs(Engine *e, const char *ns, const char *name)
{
        unsigned n = 0;
        for (size_t i = 0; i < e->n_runs; i++)
                if (e->runs[i]->state == RUN_RUNNING && streq(e->runs[i]->ns, ns) &&
                    streq(e->runs[i]->flow_name, name))
                        n++;
        return n;
}

static int on_run_timeout(sd_event_source *s, uint64_t usec, void *userdata);
static int run_prepare_dirs(Run *run, bool recovering);
static void run_fail(Run *run, RunState final, const char *error);

/* Moves a run forward: starts it when its flow has room, makes ready activities ready, and
 * finishes it when nothing is left to do. */
static void run_advance(Run *run)
{
        Engine *e = run->engine;
        bool busy = false;

        if (!run->accepted)
                return;

        /* A run that ends before it started (cancelled while pending) just finishes. */
        if (run->state == RUN_PENDING && !run->ending) {
                if (run->flow->concurrency > 0 &&
                    flow_running_runs(e, run->ns, run->flow_name) >= run->flow->concurrency)
                        return;
                if (engine_at_capacity(e)) {
                        if (waiting_push(e, run) >= 0) {
                                run_park(run);
                                return;
                        }
                        /* Cannot remember it: let it start now rather than never. */
                }
                run->waiting = false;
                if (run_unpark(run) < 0) {
                        /* Kept parked: tried again when the next slot frees up. */
                        (void) waiting_push(e, run);
                        return;
                }
                if (!run->dirs_ready) {
                        int r = run_prepare_dirs(run, false);
                        if (r < 0) {
                                log_error_errno(r, "Failed to create the workspace of run %" PRIi64
                                                   ": %m", run->id);
                                run_fail(run, RUN_FAILED, "cannot create the run's workspace");
                        }
                }
                if (e->n_pending > 0)
                        e->n_pending--;
                run->state = RUN_RUNNING;
                run->started_usec = now_usec(CLOCK_REALTIME);
                (void) run_save(run);
                run_event(run, "run", NULL);
                notify_run(run);
                if (run->flow->timeout_usec > 0 && !run->timeout_source)
                        (void) sd_event_add_time_relative(e->event, &run->timeout_source,
                                                          CLOCK_MONOTONIC,
                                                          run->flow->timeout_usec, 0,
                                                          on_run_timeout, run);
        }

        for (bool again = true; again;) {
                again = false;
                for (size_t i = 0; i < run->n_activities; i++) {
                        Activity *a = &run->activities[i];
                        bool failed_dep;

                        if (a->state != ACTIVITY_PENDING)
                                continue;
                        if (run->ending) {
                                activity_finish(a, run->final_state == RUN_FAILED
                                                           ? ACTIVITY_SKIPPED
                                                           : ACTIVITY_CANCELLED,
                                                run->error ?: "run ended");
                                continue;
                        }
                        if (!deps_state(run, a->step, &failed_dep))
                                continue;
                        activity_make_ready(a);
                        /* A skipped activity may make its dependents ready. */
                        if (activity_state_is_final(a->state))
                                again = true;
                }
        }

        for (size_t i = 0; i < run->n_activities; i++) {
                ActivityState s = run->activities[i].state;
                if (!activity_state_is_final(s)) {
                        if (run->ending && (s == ACTIVITY_QUEUED || s == ACTIVITY_WAITING)) {
                                Activity *a = &run->activities[i];
                                sd_event_source_disable_unref(TAKE_PTR(a->retry_source));
                                activity_finish(a, run->final_state == RUN_FAILED
                                                           ? ACTIVITY_SKIPPED
                                                           : ACTIVITY_CANCELLED,
                                                run->error ?: "run ended");
                                continue;
                        }
                        busy = true;
                }
        }

        if (!busy) {
                if (!run->ending)
                        run->final_state = RUN_SUCCEEDED;
                run_finish(run);
                return;
        }
        engine_dispatch(e);
}

static void run_fail(Run *run, RunState final, const char *error)
{
        if (run->ending)
                return;
        run->ending = true;
        run->final_state = final;
        (void) free_and_strdup(&run->error, error);
        /* Written down with the activity that caused it: a restart before the run's end ends it
         * the same way (recover_run()). */
        (void) store_exec(run->engine->store, NULL, "UPDATE runs SET ending=?, error=? WHERE id=?",
                          "ssi", run_state_to_string(final), run->error, run->id);
}

/* ---- units ------------------------------------------------------------------------------- */

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        Activity *a = userdata;

        a->retry_source = sd_event_source_disable_unref(a->retry_source);
        if (a->state != ACTIVITY_WAITING)
                return 0;
        activity_set_state(a, ACTIVITY_QUEUED);
        if (queue_push(a->run->engine, a) < 0)
                log_oom();
        engine_dispatch(a->run->engine);
        return 0;
}

/* The attempt ended (or could not start). Decides between success, retry and failure. */
static void activity_attempt_ended(Activity *a, ActivityState outcome, const char *reason)
{
        Run *run = a->run;
        Engine *e = run->engine;

        if (activity_state_is_active(a->state)) {
                if (e->n_units_in_flight > 0)
                        e->n_units_in_flight--;
                if (run->n_active > 0)
                        run->n_active--;
        }
        activity_unwatch(a);
        (void) store_exec(e->store, NULL,
                          "UPDATE attempts SET state=?, exit_code=?, result=?, invocation_id=?, "
                          "finished_usec=? WHERE activity_id=? AND number=?",
                          "sissiii", activity_state_to_string(outcome), (int64_t) a->exit_code,
                          a->result, a->invocation_id, (int64_t) now_usec(CLOCK_REALTIME), a->id,
                          (int64_t) a->attempt);

        {
                const char *fields[] = { NULL, NULL, NULL, NULL };
                char f1[64], f2[512], f3[512];
                snprintf(f1, sizeof(f1), "ARKEVENT_RUN=%" PRIi64, run->id);
                snprintf(f2, sizeof(f2), "ARKEVENT_FLOW=%s/%s", run->ns, run->flow_name);
                snprintf(f3, sizeof(f3), "ARKEVENT_ACTIVITY=%s", a->step->name);
                fields[0] = f1;
                fields[1] = f2;
                fields[2] = f3;
                log_struct(outcome == ACTIVITY_SUCCEEDED ? LOG_INFO : LOG_NOTICE, fields,
                           "Run %" PRIi64 " activity %s attempt %u: %s%s%s", run->id,
                           a->step->name, a->attempt, activity_state_to_string(outcome),
                           reason ? ": " : "", strempty(reason));
        }

        if (outcome != ACTIVITY_SUCCEEDED && !run->ending &&
            a->attempt <= a->step->retries_limit) {
                uint64_t backoff = a->step->retries_backoff_usec;
                for (unsigned i = 1; i < a->attempt && backoff < 3600 * USEC_PER_SEC; i++)
                        backoff *= 2;
                (void) free_and_strdup(&a->reason, reason);
                /* When the retry is due is stored too: a restart keeps the backoff. */
                a->next_attempt_usec = now_usec(CLOCK_REALTIME) + backoff;
                (void) store_exec(e->store, NULL,
                                  "UPDATE activities SET next_attempt_usec=? WHERE id=?", "ii",
                                  (int64_t) a->next_attempt_usec, a->id);
                activity_set_state(a, ACTIVITY_WAITING);
                a->retry_source = sd_event_source_disable_unref(a->retry_source);
                if (sd_event_add_time_relative(e->event, &a->retry_source, CLOCK_MONOTONIC,
                                               backoff, 0, on_retry, a) < 0)
                        on_retry(NULL, 0, a);
                engine_dispatch(e);
                return;
        }

        if (outcome != ACTIVITY_SUCCEEDED && run->ending && run->final_state != RUN_FAILED)
                outcome = run->final_state == RUN_TIMED_OUT ? ACTIVITY_TIMED_OUT
                                                            : ACTIVITY_CANCELLED;
        activity_finish(a, outcome, reason);
        if (outcome != ACTIVITY_SUCCEEDED) {
                _cleanup_free_ char *err = NULL;
                (void) asprintf(&err, "activity %s %s%s%s", a->step->name,
                                outcome == ACTIVITY_TIMED_OUT ? "timed out" : "failed",
                                reason ? ": " : "", strempty(reason));
                run_fail(run, RUN_FAILED, err);
        }
        run_advance(run); /* may free run */
        /* The unit slot is free: whatever waits in the queue, of any run, may start. */
        engine_dispatch(e);
}

static char *activity_path(Activity *a, const char *suffix)
{
        char *p = NULL;
        if (asprintf(&p, "%s/meta/%zu%s", a->run->dir, a->index, suffix) < 0)
                return NULL;
        return p;
}

static char *attempt_result_path(Activity *a)
{
        char *p = NULL;
        if (asprintf(&p, "%s/meta/%zu-%u.result", a->run->dir, a->index, a->attempt) < 0)
                return NULL;
        return p;
}

static void activity_read_output(Activity *a)
{
        _cleanup_free_ char *out_path = activity_path(a, ".output");
        _cleanup_free_ char *cap_path = activity_path(a, ".stdout");
        _cleanup_free_ char *data = NULL;
        size_t size = 0;

        if (out_path && read_file_capped(out_path, a->run->engine->config.output_max_bytes,
                                         &data, &size) >= 0 &&
            size > 0) {
                free_and_replace(a->output, data);
                return;
        }
        free(TAKE_PTR(data));
        if (cap_path && read_file_capped(cap_path, a->run->engine->config.output_max_bytes,
                                         &data, &size) >= 0) {
                /* A trailing newline is the shell's, not the step's. */
                while (size > 0 && data[size - 1] == '\n')
                        data[--size] = 0;
                free_and_replace(a->output, data);
        }
}

/* Reads the result the step's wrapper or the unit's ExecStopPost= left. Returns 0 when found, -ENOENT if not there. */
static int activity_read_result(Activity *a, ActivityState *ret_state, char **ret_reason)
{
        _cleanup_free_ char *path = attempt_result_path(a), *text = NULL;
        _cleanup_free_ char *result = NULL, *code = NULL, *status = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_capped(path, 4096, &text, NULL);
        if (r < 0)
                return r;

        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                const char *v;
                if ((v = startswith(line, "SERVICE_RESULT=")))
                        result = strdup(v);
                else if ((v = startswith(line, "EXIT_CODE=")))
                        code = strdup(v);
                else if ((v = startswith(line, "EXIT_STATUS=")))
                        status = strdup(v);
        }
        return unit_result_interpret(result, code, status, &a->exit_code, &a->result, ret_state,
                                     ret_reason);
}

/* systemd's own verdicts on a unit, which the step's exit (as the wrapper saw it) does not show. */
static bool result_is_verdict(const char *result)
{
        return result && *result && !streq(result, "success") && !streq(result, "exit-code") &&
               !streq(result, "signal") && !streq(result, "core-dump");
}

static void on_resets_committed(Store *s, int error, void *userdata)
{
        Engine *e = userdata;
        _cleanup_strv_free_ char **units = TAKE_PTR(e->resets);

        /* Not recorded: keep the units, a restart reads them again. */
        if (error < 0)
                return;
        STRV_FOREACH(u, units)
                (void) sd_bus_call_method_async(e->bus, NULL, "org.freedesktop.systemd1",
                                                "/org/freedesktop/systemd1",
                                                "org.freedesktop.systemd1.Manager",
                                                "ResetFailedUnit", NULL, NULL, "s", *u);
}

/* The attempt ended as s (its exit code and result already read): its output, then the rest. */
static void activity_record_end(Activity *a, ActivityState s, const char *reason)
{
        activity_read_output(a);
        activity_attempt_ended(a, s, reason); /* may free a */
}

/* The unit ended; unit_failed: it is still loaded in the "failed" state, kept for us. */
static void activity_unit_ended(Activity *a, bool unit_failed)
{
        _cleanup_free_ char *reason = NULL;
        Engine *e = a->run->engine;
        bool reset = false;
        ActivityState s;
        int r;

        if (unit_failed && a->unit) {
                reset = !e->resets;
                if (strv_extend(&e->resets, a->unit) < 0)
                        reset = false;
        }

        r = result_is_verdict(a->announced_result) ? -EEXIST : activity_read_result(a, &s, &reason);
        if (r < 0) {
                /* No record from ExecStopPost=: use what systemd announced. */
                char code[32], status[32];
                snprintf(code, sizeof(code), "%s",
                         a->announced_code == 1   ? "exited"
                         : a->announced_code == 2 ? "killed"
                         : a->announced_code == 3 ? "dumped"
                                                  : "");
                snprintf(status, sizeof(status), "%i", a->announced_status);
                /* The main process exited 0 but the unit failed with "exit-code": that can only
                 * be our ExecStopPost= recorder (which systemd could not run, e.g. 219/CGROUP).
                 * The step itself succeeded. */
                if (streq_ptr(a->announced_result, "exit-code") && a->announced_code == 1 &&
                    a->announced_status == 0)
                        (void) free_and_strdup(&a->announced_result, "success");
                (void) unit_result_interpret(a->announced_result ?: "resources", code, status,
                                             &a->exit_code, &a->result, &s, &reason);
        }
        activity_record_end(a, s, reason); /* may free a */
        /* Reset once the result is committed: a kill -9 before finds the unit still there. */
        if (reset && store_after_commit(e->store, on_resets_committed, e) < 0)
                strv_free(TAKE_PTR(e->resets));
}

/* A result file renamed into the run's meta directory (by the wrapper as its command ends, or
 * by the ExecStopPost= recorder): a success is recorded at once, before systemd has seen the
 * process go, taken the unit down and announced it. Anything else waits for systemd's word,
 * which may add its own verdict (timeout, oom-kill) and leaves the unit failed, to be reset
 * once recorded. (A unit that systemd fails after its command succeeded, in the instant
 * between, stays failed until the next start resets recorded units.) */
static int on_result_file(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
        Run *run = userdata;
        _cleanup_free_ char *reason = NULL;
        ActivityState state;
        unsigned attempt;
        size_t index;
        int n = 0;
        Activity *a;

        if (!(ev->mask & IN_MOVED_TO) || ev->len == 0 ||
            sscanf(ev->name, "%zu-%u.result%n", &index, &attempt, &n) != 2 || ev->name[n] != 0 ||
            index >= run->n_activities)
                return 0;
        a = &run->activities[index];
        if (a->attempt != attempt || !activity_state_is_active(a->state) ||
            result_is_verdict(a->announced_result) ||
            activity_read_result(a, &state, &reason) < 0 || state != ACTIVITY_SUCCEEDED)
                return 0;
        activity_record_end(a, state, reason);
        return 0;
}

static void run_watch_results(Run *run)
{
        _cleanup_free_ char *meta = NULL;

        if (run->result_watch || asprintf(&meta, "%s/meta", run->dir) < 0)
                return;
        /* Without it results still come, from systemd's signals, a little later. */
        if (sd_event_add_inotify(run->engine->event, &run->result_watch, meta,
                                 IN_MOVED_TO | IN_ONLYDIR, on_result_file, run) < 0)
                run->result_watch = NULL;
}

/* ---- watching a unit ---------------------------------------------------------------------- */

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
static void activity_unit_state(Activity *a, const char *active);
static const char *activity_read_properties(Activity *a, sd_bus_message *m);
static void unit_stop(Engine *e, const char *unit);

static int on_unit_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Activity *a = userdata;
        const char *iface;

        if (!activity_state_is_active(a->state) || sd_bus_message_read(m, "s", &iface) < 0)
                return 0;
        activity_unit_state(a, activity_read_properties(a, m));
        return 0;
}

static int on_recheck(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Activity *a = userdata;

        if (sd_bus_message_is_method_error(reply, NULL) || !activity_state_is_active(a->state))
                return 0;
        activity_unit_state(a, activity_read_properties(a, reply));
        return 0;
}
static int engine_watch_all(Engine *e)
{
        if (e->match_slot)
                return 0;
        return sd_bus_match_signal_async(e->bus, &e->match_slot, systemd_sender(e),
                                         NULL, "org.freedesktop.DBus.Properties",
                                         "PropertiesChanged", on_properties_changed, NULL, e);
}

static int on_unit_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Activity *a = userdata;
        Engine *e = a->run->engine;

        if (!sd_bus_message_is_method_error(m, NULL))
                return 0;
        /* No match of its own (the bus refused it): the one for every unit hears it. The
         * refused one is gone, so no signal was missed in between only if that one was already
         * there; it is installed before the unit is asked about again. */
        log_warning("Cannot watch %s on its own (%s), watching every unit.", a->unit,
                  sd_bus_message_get_error(m)->message);
        a->watch_slot = sd_bus_slot_unref(a->watch_slot);
        if (e->n_unit_matches > 0)
                e->n_unit_matches--;
        if (engine_watch_all(e) >= 0) {
                a->watched_by_all = true;
                e->n_watched_by_all++;
        }
        /* What it announced before that match was there: ask (all interfaces), after it. */
        _cleanup_free_ char *path = NULL;
        if (activity_state_is_active(a->state) &&
            sd_bus_path_encode("/org/freedesktop/systemd1/unit", a->unit, &path) >= 0)
                (void) sd_bus_call_method_async(e->bus, NULL, "org.freedesktop.systemd1", path,
                                                "org.freedesktop.DBus.Properties", "GetAll",
                                                on_recheck, a, "s", "");
        return 0;
}

/* Before systemd hears of the unit (the bus installs the match before it passes on the start
 * sent after it), so none of its signals is missed. */
static int activity_watch(Activity *a)
{
        Engine *e = a->run->engine;
        _cleanup_free_ char *path = NULL;
        int r;

        /* Already watched: the same unit (a start sent again, an adoption asked again). A new
         * attempt, a new unit, comes after activity_attempt_ended() dropped the old match. */
        if (a->watch_slot || a->watched_by_all)
                return 0;
        if (e->n_unit_matches < UNIT_MATCH_BUDGET &&
            sd_bus_path_encode("/org/freedesktop/systemd1/unit", a->unit, &path) >= 0 &&
            sd_bus_match_signal_async(e->bus, &a->watch_slot, systemd_sender(e), path,
                                      "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                      on_unit_properties_changed, on_unit_match_installed,
                                      a) >= 0) {
                e->n_unit_matches++;
                return 0;
        }
        r = engine_watch_all(e);
        if (r < 0)
                return r;
        a->watched_by_all = true;
        e->n_watched_by_all++;
        return 0;
}

static void activity_unwatch(Activity *a)
{
        Engine *e = a->run->engine;

        if (a->watch_slot) {
                a->watch_slot = sd_bus_slot_unref(a->watch_slot);
                if (e->n_unit_matches > 0)
                        e->n_unit_matches--;
        }
        if (a->watched_by_all) {
                a->watched_by_all = false;
                if (e->n_watched_by_all > 0 && --e->n_watched_by_all == 0)
                        e->match_slot = sd_bus_slot_unref(e->match_slot);
        }
}

/* ---- adopting a unit that may exist (after a restart) ----------------------------------- */

static void activity_adopt(Activity *a);
static const char *activity_read_properties(Activity *a, sd_bus_message *m);

/* A start that never reached systemd: send it again, as the same attempt under the same unit
 * name (systemd refuses a second start of a unit that is there: UnitExists). */
static void activity_resend_start(Activity *a)
{
        Engine *e = a->run->engine;

        if (e->n_units_in_flight > 0)
                e->n_units_in_flight--;
        if (a->run->n_active > 0)
                a->run->n_active--;
        a->attempt--;
        a->state = ACTIVITY_QUEUED;
        (void) activity_start_unit(a);
}

static bool activity_result_recorded(Activity *a)
{
        _cleanup_free_ char *probe = attempt_result_path(a);
        /* Written atomically (rename), so it is there whole or not at all. */
        return probe && access(probe, F_OK) >= 0;
}

static void activity_adopt(Activity *a);

static int on_ask_again(sd_event_source *s, uint64_t usec, void *userdata)
{
        Activity *a = userdata;

        a->retry_source = sd_event_source_disable_unref(a->retry_source);
        if (activity_state_is_active(a->state))
                activity_adopt(a);
        return 0;
}

/* When reply says systemd could not be reached, where a's unit stands is asked again in a moment
 * (a start that may not have reached it is then sent again under the same unit name, which
 * systemd refuses if it did): never guessed from the error. Returns whether that is so. */
static bool activity_ask_again(Activity *a, const char *why)
{
        log_debug("Cannot reach systemd about %s (%s), asking again.", a->unit, why);
        if (!a->retry_source &&
            sd_event_add_time_relative(a->run->engine->event, &a->retry_source, CLOCK_MONOTONIC,
                                       SYSTEMD_AGAIN_USEC, 0, on_ask_again, a) < 0)
                return false;
        return true;
}

/* A reply that is no answer about a's unit: the connection it was asked on is gone (what was
 * asked is found out again on the next one, engine's on_subscribed_again()), or systemd could not
 * be reached (asked again in a moment). */
static bool activity_reply_unanswered(Activity *a, sd_bus_message *reply)
{
        const sd_bus_error *err = sd_bus_message_get_error(reply);

        if (reply_from_lost_bus(reply))
                return true;
        return activity_state_is_active(a->state) && err && systemd_unreachable(err) &&
               activity_ask_again(a, err->name);
}

/* After a restart or a lost connection to systemd: where a's unit stands is found out again,
 * and a cancel's or a timeout's stop, which may have been lost, is sent again. (A failed
 * activity lets its running siblings finish.) */
static void activity_readopt(Activity *a)
{
        Run *run = a->run;

        activity_adopt(a);
        if (run->ending && run->final_state != RUN_FAILED)
                unit_stop(run->engine, a->unit);
}

static void activity_adopt_running(Activity *a)
{
        if (a->state == ACTIVITY_STARTING)
                activity_set_state(a, ACTIVITY_RUNNING);
}

/* A failed unit kept for us: its Result= and main process status, then its end. */
static int on_adopt_failed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Activity *a = userdata;

        a->start_slot = sd_bus_slot_unref(a->start_slot);
        if (activity_reply_unanswered(a, reply) || !activity_state_is_active(a->state))
                return 0;
        if (!sd_bus_message_is_method_error(reply, NULL))
                (void) activity_read_properties(a, reply);
        activity_adopt_running(a);
        activity_unit_ended(a, true);
        return 0;
}

static int on_adopt_state(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Activity *a = userdata;
        const char *state = NULL;

        a->start_slot = sd_bus_slot_unref(a->start_slot);
        if (activity_reply_unanswered(a, reply) || !activity_state_is_active(a->state))
                return 0;
        if (!sd_bus_message_is_method_error(reply, NULL))
                (void) sd_bus_message_read(reply, "v", "s", &state);

        if (streq_ptr(state, "failed")) {
                /* systemd's verdict (timeout, oom-kill) goes before what the wrapper saw. */
                _cleanup_free_ char *path = NULL;
                if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", a->unit, &path) >= 0 &&
                    sd_bus_call_method_async(a->run->engine->bus, &a->start_slot,
                                             "org.freedesktop.systemd1", path,
                                             "org.freedesktop.DBus.Properties", "GetAll",
                                             on_adopt_failed, a, "s",
                                             "org.freedesktop.systemd1.Service") >= 0)
                        return 0;
        }
        if (activity_result_recorded(a)) {
                activity_adopt_running(a);
                activity_unit_ended(a, streq_ptr(state, "failed"));
                return 0;
        }
        if (!state) {
                /* Gone between the two calls: ask again from the start. */
                activity_adopt(a);
                return 0;
        }
        activity_adopt_running(a);
        if (streq(state, "failed")) {
                activity_unit_ended(a, true);
                return 0;
        }
        /* "inactive" without a result: its start job has not run yet, so the next inactive
         * state is not its end. Anything else: it has been active. */
        a->seen_active = !streq(state, "inactive");
        return 0;
}

static int on_adopt_get_unit(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Activity *a = userdata;
        const char *path;
        int r;

        a->start_slot = sd_bus_slot_unref(a->start_slot);
        if (activity_reply_unanswered(a, reply) || !activity_state_is_active(a->state))
                return 0;

        if (sd_bus_message_is_method_error(reply, NULL) ||
            sd_bus_message_read(reply, "o", &path) < 0) {
                /* Not loaded: it ended (and its result is written down), or it never started. */
                if (activity_result_recorded(a)) {
                        activity_adopt_running(a);
                        activity_unit_ended(a, false);
                } else if (a->state == ACTIVITY_STARTING)
                        activity_resend_start(a);
                else {
                        a->exit_code = -1;
                        activity_attempt_ended(a, ACTIVITY_FAILED,
                                               "the unit disappeared while arkevent was not "
                                               "running");
                }
                return 0;
        }
        r = sd_bus_call_method_async(a->run->engine->bus, &a->start_slot,
                                     "org.freedesktop.systemd1", path,
                                     "org.freedesktop.DBus.Properties", "Get", on_adopt_state, a,
                                     "ss", "org.freedesktop.systemd1.Unit", "ActiveState");
        if (r < 0) {
                activity_adopt_running(a);
                a->seen_active = true;
        }
        return 0;
}

/* Finds out where a unit of ours stands (running, waiting for its start job, ended and
 * recorded, or never started) without loading it, and takes it from there. */
static void activity_adopt(Activity *a)
{
        int r;

        a->start_slot = sd_bus_slot_unref(a->start_slot);
        r = activity_watch(a);
        if (r >= 0)
                r = sd_bus_call_method_async(a->run->engine->bus, &a->start_slot,
                                     "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "GetUnit",
                                     on_adopt_get_unit, a, "s", a->unit);
        if (r < 0) {
                a->exit_code = -1;
                activity_attempt_ended(a, ACTIVITY_FAILED, "cannot ask systemd about the unit");
        }
}

static int on_start_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Activity *a = userdata;
        const sd_bus_error *err = sd_bus_message_get_error(reply);

        a->start_slot = sd_bus_slot_unref(a->start_slot);
        if (activity_reply_unanswered(a, reply) || a->state != ACTIVITY_STARTING)
                return 0;

        if (err && !sd_bus_error_has_name(err, "org.freedesktop.systemd1.UnitExists")) {
                _cleanup_free_ char *reason = NULL;
                (void) asprintf(&reason, "cannot start unit %s: %s", a->unit, err->message);
                a->exit_code = -1;
                activity_attempt_ended(a, ACTIVITY_FAILED, reason);
                return 0;
        }

        if (err) {
                /* Already there: a start we sent before a restart. Find out how far it got. */
                activity_adopt(a);
                return 0;
        }
        activity_set_state(a, ACTIVITY_RUNNING);
        return 0;
}

/* The paths an attempt's unit is given, owned by the caller of activity_unit_spec(). */
typedef struct AttemptPaths {
        char *output, *capture, *result, *input, *script;
} AttemptPaths;

static void attempt_paths_done(AttemptPaths *p)
{
        free(p->output);
        free(p->capture);
        free(p->result);
        free(p->input);
        free(p->script);
}

/* How the unit of a's current attempt is (or was) started: the engine's start and the unit
 * description that outbound webhooks carry come from this one place. */
static int activity_unit_spec(Activity *a, json_object *ctx, AttemptPaths *paths, UnitSpec *ret)
{
        Run *run = a->run;
        Engine *e = run->engine;

        *paths = (AttemptPaths){
                .output = activity_path(a, ".output"),
                .capture = activity_path(a, ".stdout"),
                .result = attempt_result_path(a),
                .script = activity_path(a, ".sh"),
        };
        /* A step that runs as another user reads its own copy of the input (see
         * prepare_user_step()). */
        if (a->step->user)
                paths->input = activity_path(a, ".input.json");
        else if (asprintf(&paths->input, "%s/meta/input.json", run->dir) < 0)
                paths->input = NULL;
        if (!paths->output || !paths->capture || !paths->result || !paths->input ||
            !paths->script)
                return -ENOMEM;
        *ret = (UnitSpec){
                .unit = a->unit,
                .run_id = run->id,
                .ns = run->ns,
                .flow = run->flow_name,
                .flow_def = run->flow,
                .step = a->step,
                .attempt = a->attempt,
                .workspace = run->workspace,
                .input_path = paths->input,
                .output_path = paths->output,
                .capture_path = paths->capture,
                .result_path = paths->result,
                .script_path = step_needs_script(a->step) ? paths->script : NULL,
                .step_binary = e->step_binary,
                .output_max_bytes = e->config.output_max_bytes,
                .template_ctx = ctx,
                .sandbox = (StepSandbox) e->config.sandbox,
        };
        return 0;
}

int engine_describe_unit(Activity *a, json_object **ret)
{
        _cleanup_(attempt_paths_done) AttemptPaths paths = {};
        _cleanup_(json_object_putp) json_object *ctx = json_object_new_object();
        UnitSpec spec;
        int r;

        if (!a->unit || !a->run->dir)
                return -ENOENT;
        if (!ctx)
                return -ENOMEM;
        r = activity_unit_spec(a, ctx, &paths, &spec);
        if (r < 0)
                return r;
        return unit_start_describe(a->run->engine->bus, &spec, ret);
}

/* $ARKEVENT_INPUT's text: the run's effective input as JSON. */
static const char *run_input_text(Run *run)
{
        return json_object_to_json_string_ext(run->input, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* A step with user: runs as that user, who must reach its files: the run's directories are
 * made traversable (not listable) for this run alone, the workspace is given to the first such
 * user while it is still root's (root steps keep their access), and the step gets its own
 * input copy and output files, owned by it and private to it. Other runs stay root's alone. */
static int prepare_user_step(Run *run, const char *user, AttemptPaths *paths, uid_t *ret_uid,
                             gid_t *ret_gid, char **ret_reason)
{
        _cleanup_free_ char *runs = NULL, *meta = NULL;
        struct passwd pwbuf, *pw = NULL;
        const char *input;
        char buf[4096];
        struct stat st;
        int r;

        r = getpwnam_r(user, &pwbuf, buf, sizeof(buf), &pw);
        if (r != 0 || !pw) {
                (void) asprintf(ret_reason, "user '%s' does not exist on this host", user);
                return r > 0 ? -r : -ESRCH;
        }
        if (asprintf(&runs, "%s/runs", run->engine->state_dir) < 0 ||
            asprintf(&meta, "%s/meta", run->dir) < 0)
                return -ENOMEM;
        if (chmod(run->engine->state_dir, 0711) < 0 || chmod(runs, 0711) < 0 ||
            chmod(run->dir, 0711) < 0 || chmod(meta, 0711) < 0)
                return -errno;
        if (stat(run->workspace, &st) < 0)
                return -errno;
        if (st.st_uid == 0 && pw->pw_uid != 0 &&
            chown(run->workspace, pw->pw_uid, pw->pw_gid) < 0)
                return -errno;
        input = run_input_text(run);
        r = write_private_file(paths->input, input, strlen(input), pw->pw_uid, pw->pw_gid);
        if (r >= 0)
                r = prepare_output_file(paths->output, pw->pw_uid, pw->pw_gid);
        if (r >= 0)
                r = prepare_output_file(paths->capture, pw->pw_uid, pw->pw_gid);
        if (r >= 0) {
                *ret_uid = pw->pw_uid;
                *ret_gid = pw->pw_gid;
        }
        return r;
}

static int activity_start_unit(Activity *a)
{
        Run *run = a->run;
        Engine *e = run->engine;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(json_object_putp) json_object *ctx = NULL;
        _cleanup_(attempt_paths_done) AttemptPaths paths = {};
        _cleanup_free_ char *script = NULL;
        UnitSpec spec = {};
        uid_t uid = (uid_t) -1;
        gid_t gid = (gid_t) -1;
        int r;

        a->attempt++;
        free(a->unit);
        if (asprintf(&a->unit, "arkevent-%" PRIi64 "-%zu-%u.service", run->id, a->index,
                     a->attempt) < 0)
                return log_oom();
        if (!a->started_usec)
                a->started_usec = now_usec(CLOCK_REALTIME);
        a->seen_active = false;
        a->exit_code = -1;
        a->announced_code = 0;
        free(TAKE_PTR(a->result));
        free(TAKE_PTR(a->announced_result));

        ctx = run_template_context(run);
        if (!ctx || activity_unit_spec(a, ctx, &paths, &spec) < 0)
                return log_oom();

        /* Fresh output files for this attempt, owned by whoever the step runs as. */
        (void) unlink(paths.result);
        if (a->step->user) {
                _cleanup_free_ char *reason = NULL;
                r = prepare_user_step(run, a->step->user, &paths, &uid, &gid, &reason);
                if (r < 0) {
                        activity_attempt_ended(a, ACTIVITY_FAILED,
                                               reason ?: "cannot prepare the step's files");
                        return r;
                }
        } else {
                r = prepare_output_file(paths.output, -1, -1);
                if (r >= 0)
                        r = prepare_output_file(paths.capture, -1, -1);
                if (r < 0) {
                        activity_attempt_ended(a, ACTIVITY_FAILED,
                                               "cannot prepare the output files");
                        return r;
                }
        }
        /* The command as a file for /bin/sh, when it cannot go on the command line. */
        if (spec.script_path) {
                r = step_script_text(a->step, &script);
                if (r >= 0)
                        r = write_private_file(spec.script_path, script, strlen(script), uid, gid);
        }
        if (r < 0) {
                activity_attempt_ended(a, ACTIVITY_FAILED, "cannot write the step's script");
                return r;
        }

        r = unit_start_message(e->bus, &spec, &m);
        if (r < 0) {
                _cleanup_free_ char *reason = NULL;
                (void) asprintf(&reason, "cannot build the unit: %s",
                                unit_start_last_error() ?: strerror(-r));
                activity_attempt_ended(a, ACTIVITY_FAILED, reason);
                return r;
        }

        /* Recorded before the call: a restart finds the attempt and adopts its unit. */
        (void) store_exec(e->store, NULL,
                          "INSERT OR IGNORE INTO attempts(activity_id, number, unit, state, "
                          "started_usec) VALUES (?, ?, ?, 'Starting', ?)",
                          "iisi", a->id, (int64_t) a->attempt, a->unit,
                          (int64_t) now_usec(CLOCK_REALTIME));
        e->n_units_in_flight++;
        run->n_active++;
        activity_set_state(a, ACTIVITY_STARTING);

        /* systemd hears of the unit only once the attempt is committed: a kill -9 at any
         * moment leaves either no unit, or a unit the store knows of. */
        a->start_msg = TAKE_PTR(m);
        if (e->n_starts >= e->n_starts_allocated) {
                size_t n = MAX(64u, e->n_starts_allocated * 2);
                QueueEntry *q = realloc(e->starts, n * sizeof(QueueEntry));
                if (!q) {
                        activity_attempt_ended(a, ACTIVITY_FAILED, "out of memory");
                        return -ENOMEM;
                }
                e->starts = q;
                e->n_starts_allocated = n;
        }
        e->starts[e->n_starts++] = (QueueEntry){ run->id, a->index };
        if (e->n_starts == 1) {
                r = store_after_commit(e->store, on_starts_committed, e);
                if (r < 0) {
                        e->n_starts = 0;
                        activity_attempt_ended(a, ACTIVITY_FAILED, "cannot record the attempt");
                        return r;
                }
        }
        return 0;
}

static void on_starts_committed(Store *s, int error, void *userdata)
{
        Engine *e = userdata;
        _cleanup_free_ QueueEntry *list = TAKE_PTR(e->starts);
        size_t n = e->n_starts;

        e->n_starts = e->n_starts_allocated = 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                _cleanup_free_ char *reason = NULL;
                Run *run = engine_find_run(e, list[i].run_id);
                Activity *a;
                int r;

                if (!run || list[i].index >= run->n_activities)
                        continue;
                a = &run->activities[list[i].index];
                m = TAKE_PTR(a->start_msg);
                if (!m || a->state != ACTIVITY_STARTING)
                        continue;
                if (error < 0) {
                        (void) asprintf(&reason, "cannot record the attempt: %s", strerror(-error));
                        activity_attempt_ended(a, ACTIVITY_FAILED, reason);
                        continue;
                }
                if (run->ending) {
                        /* Cancelled or failed meanwhile: the unit is not started at all. */
                        activity_attempt_ended(a, ACTIVITY_CANCELLED, run->error ?: "run ended");
                        continue;
                }
                r = activity_watch(a);
                if (r >= 0)
                        r = sd_bus_call_async(e->bus, &a->start_slot, m, on_start_reply, a, 0);
                /* The connection to systemd is going (systemd re-executed): where the start got
                 * is found out again, and it is sent again if it got nowhere. */
                if ((r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE || r == -ESHUTDOWN ||
                     r == -ECONNREFUSED) &&
                    activity_ask_again(a, strerror(-r)))
                        continue;
                if (r < 0) {
                        (void) asprintf(&reason, "cannot call systemd: %s", strerror(-r));
                        activity_attempt_ended(a, ACTIVITY_FAILED, reason);
                }
        }
}

/* ---- the unit watcher -------------------------------------------------------------------- */

static Activity *engine_find_unit(Engine *e, const char *unit)
{
        int64_t run_id;
        size_t index;
        unsigned attempt;
        int n = 0;
        Run *run;

        if (sscanf(unit, "arkevent-%" SCNi64 "-%zu-%u.service%n", &run_id, &index, &attempt, &n) !=
                    3 ||
            unit[n] != 0)
                return NULL;
        run = engine_find_run(e, run_id);
        if (!run || index >= run->n_activities)
                return NULL;
        if (run->activities[index].attempt != attempt)
                return NULL;
        return &run->activities[index];
}

/* Reads a unit's a{sv} properties (PropertiesChanged or GetAll) into a; returns ActiveState,
 * if there. */
static const char *activity_read_properties(Activity *a, sd_bus_message *m)
{
        const char *active = NULL;

        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return NULL;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *prop, *s;
                int32_t i;

                if (sd_bus_message_read(m, "s", &prop) < 0)
                        return active;
                if (streq(prop, "ActiveState") && sd_bus_message_read(m, "v", "s", &s) >= 0)
                        active = s;
                else if (streq(prop, "Result") && sd_bus_message_read(m, "v", "s", &s) >= 0)
                        (void) free_and_strdup(&a->announced_result, s);
                else if (streq(prop, "ExecMainCode") && sd_bus_message_read(m, "v", "i", &i) >= 0)
                        a->announced_code = i;
                else if (streq(prop, "ExecMainStatus") &&
                         sd_bus_message_read(m, "v", "i", &i) >= 0)
                        a->announced_status = i;
                else if (streq(prop, "InvocationID")) {
                        const uint8_t *id;
                        size_t sz;
                        if (sd_bus_message_enter_container(m, 'v', "ay") >= 0) {
                                if (sd_bus_message_read_array(m, 'y', (const void **) &id, &sz) >=
                                            0 &&
                                    sz == 16) {
                                        char hex[33];
                                        for (size_t k = 0; k < 16; k++)
                                                snprintf(hex + 2 * k, 3, "%02x", id[k]);
                                        (void) free_and_strdup(&a->invocation_id, hex);
                                }
                                (void) sd_bus_message_exit_container(m);
                        }
                } else
                        (void) sd_bus_message_skip(m, "v");
                (void) sd_bus_message_exit_container(m);
        }

        return active;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Engine *e = userdata;
        _cleanup_free_ char *unit = NULL;
        const char *iface, *active = NULL;
        Activity *a;
        int r;

        r = sd_bus_path_decode(sd_bus_message_get_path(m), "/org/freedesktop/systemd1/unit",
                               &unit);
        if (r <= 0 || !startswith(unit, "arkevent-"))
                return 0;
        a = engine_find_unit(e, unit);
        if (!a || !activity_state_is_active(a->state))
                return 0;

        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0)
                return 0;
        active = activity_read_properties(a, m);
        activity_unit_state(a, active);
        return 0;
}

/* The unit's ActiveState, as announced or read. */
static void activity_unit_state(Activity *a, const char *active)
{
        if (!active)
                return;
        if (streq(active, "active") || streq(active, "activating") ||
            streq(active, "deactivating") || streq(active, "reloading")) {
                a->seen_active = true;
                return;
        }
        if ((streq(active, "inactive") || streq(active, "failed")) &&
            (a->seen_active || streq(active, "failed")))
                activity_unit_ended(a, streq(active, "failed"));
}

/* ---- submit, cancel, timeout ------------------------------------------------------------- */

/* The run's input as a file for its steps. Not fsync'ed: the store holds the input durably (and
 * group-committed), and recovery writes the file again from it, so a fire costs no fsync of its
 * own. */
static int write_input_file(const char *path, const char *text)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        /* Root's alone, whatever the daemon's umask: a step that runs as another user gets a
         * copy of its own (prepare_user_step()). */
        if (fchmod(fd, 0600) < 0)
                return -errno;
        r = loop_write(fd, text, strlen(text));
        if (r < 0)
                return r;
        if (rename(tmp, path) < 0)
                return -errno;
        return 0;
}

static int run_set_paths(Run *run)
{
        if (run->dir)
                return 0;
        if (asprintf(&run->dir, "%s/runs/%" PRIi64, run->engine->state_dir, run->id) < 0 ||
            asprintf(&run->workspace, "%s/workspace", run->dir) < 0)
                return -ENOMEM;
        return 0;
}

/* The run's directories and its input file: made when it starts, not when it is accepted, so
 * a burst of fires queues rows, not directories. */
static int run_prepare_dirs(Run *run, bool recovering)
{
        _cleanup_free_ char *meta = NULL, *input = NULL;
        int r;

        r = run_set_paths(run);
        if (r < 0)
                return r;
        if (asprintf(&meta, "%s/meta", run->dir) < 0 ||
            asprintf(&input, "%s/meta/input.json", run->dir) < 0)
                return -ENOMEM;

        r = mkdir_p(run->workspace, 0755);
        if (r < 0)
                return r;
        r = mkdir_p(meta, 0755);
        if (r < 0)
                return r;
        if (recovering || access(input, F_OK) < 0) {
                r = write_input_file(input, run_input_text(run));
                if (r < 0)
                        return r;
        }
        run->dirs_ready = true;
        run_watch_results(run);
        return 0;
}

static int run_load_flow(Run *run, const char *yaml)
{
        ResourceDoc **docs = NULL;
        size_t n_docs = 0;
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_free_ char *name = NULL;
        int r;

        if (asprintf(&name, "<run %" PRIi64 ">", run->id) < 0)
                return -ENOMEM;
        r = resource_text_parse(name, yaml, strlen(yaml), &docs, &n_docs,
                                &diags);
        if (r >= 0) {
                r = -EBADMSG;
                for (size_t i = 0; i < n_docs; i++)
                        if (docs[i]->flow && !run->flow) {
                                run->flow = TAKE_PTR(docs[i]->flow);
                                r = 0;
                        }
        }
        for (size_t i = 0; i < n_docs; i++)
                resource_doc_free(docs[i]);
        free(docs);
        return r;
}

static int run_init_activities(Run *run)
{
        run->activities = new0(Activity, run->flow->n_steps);
        if (!run->activities)
                return -ENOMEM;
        run->n_activities = run->flow->n_steps;
        for (size_t i = 0; i < run->n_activities; i++) {
                Activity *a = &run->activities[i];
                a->run = run;
                a->index = i;
                a->step = &run->flow->steps[i];
                a->exit_code = -1;
        }
        return 0;
}

static void on_runs_accepted(Store *s, int error, void *userdata)
{
        Engine *e = userdata;
        size_t first = e->n_runs;

        /* Everything created in this turn may start now. New runs have the highest ids, so the
         * ones not yet accepted are the tail of the array: no scan of a long backlog per turn. */
        while (first > 0 && !e->runs[first - 1]->accepted)
                first--;
        for (size_t i = first; i < e->n_runs; i++) {
                Run *run = e->runs[i];
                if (run->accepted)
                        continue;
                run->accepted = true;
                run_advance(run);
                /* run_advance() may have finished (and removed) the run. */
                if (i < e->n_runs && e->runs[i] != run)
                        i--;
        }
}

static json_object *merge_input(const Flow *flow, json_object *input)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        if (flow->input_defaults && json_object_is_type(flow->input_defaults, json_type_object)) {
                json_object_object_foreach(flow->input_defaults, k, v)
                        json_object_object_add(o, k, json_object_get(v));
        }
        if (input && json_object_is_type(input, json_type_object)) {
                json_object_object_foreach(input, k2, v2)
                        json_object_object_add(o, k2, json_object_get(v2));
        }
        return o;
}

int engine_submit(Engine *e, const Flow *flow, json_object *input, const char *trigger,
                  json_object *trigger_ctx, Run **ret)
{
        _cleanup_(run_freep) Run *run = NULL;
        int64_t now = (int64_t) now_usec(CLOCK_REALTIME);
        int r;

        if (e->n_runs >= e->config.max_queued_runs) {
                json_object_put(trigger_ctx);
                return -ENOBUFS;
        }

        run = new0(Run, 1);
        if (!run) {
                json_object_put(trigger_ctx);
                return -ENOMEM;
        }
        run->engine = e;
        run->trigger_ctx = trigger_ctx;
        run->state = RUN_PENDING;
        run->created_usec = (uint64_t) now;
        run->ns = strdup(flow->namespace);
        run->flow_name = strdup(flow->name);
        run->trigger = trigger ? strdup(trigger) : NULL;
        run->input = merge_input(flow, input);
        if (!run->ns || !run->flow_name || !run->input ||
            (trigger && !run->trigger))
                return -ENOMEM;

        r = store_exec(e->store, &run->id,
                       "INSERT INTO runs(namespace, flow, kind, state, input, trigger, flow_yaml, "
                       "created_usec, trigger_ctx) VALUES (?, ?, ?, 'Pending', ?, ?, ?, ?, ?)",
                       "ssssssis", run->ns, run->flow_name,
                       flow->kind == RESOURCE_WORKFLOW ? "Workflow" : "ArkFlow",
                       json_object_to_json_string_ext(run->input, JSON_C_TO_STRING_PLAIN),
                       run->trigger, strempty(flow->raw_yaml), now,
                       run->trigger_ctx ? json_object_to_json_string_ext(run->trigger_ctx,
                                                                         JSON_C_TO_STRING_PLAIN)
                                        : NULL);
        if (r < 0)
                return r;

        /* The flow as loaded now, shared (the stored text is what a restart parses again). */
        run->flow = flow_ref((Flow *) flow);
        r = run_init_activities(run);
        if (r < 0)
                return r;
        for (size_t i = 0; i < run->n_activities; i++) {
                Activity *a = &run->activities[i];
                a->created_usec = (uint64_t) now;
                r = store_exec(e->store, &a->id,
                               "INSERT INTO activities(run_id, step_index, name, state, "
                               "created_usec) VALUES (?, ?, ?, 'Pending', ?)",
                               "iisi", run->id, (int64_t) i, a->step->name, now);
                if (r < 0)
                        return r;
        }
        if (asprintf(&run->name, "%s-%" PRIi64, run->flow_name, run->id) < 0)
                return -ENOMEM;
        (void) store_exec(e->store, NULL, "UPDATE runs SET name=? WHERE id=?", "si", run->name,
                          run->id);

        r = run_set_paths(run);
        if (r < 0)
                return r;

        r = engine_add_run(e, run);
        if (r < 0)
                return r;
        run_event(run, "run", NULL);
        {
                const char *fields[] = { NULL, NULL, "ARKEVENT_EVENT=run-created", NULL };
                char f1[64], f2[512];
                snprintf(f1, sizeof(f1), "ARKEVENT_RUN=%" PRIi64, run->id);
                snprintf(f2, sizeof(f2), "ARKEVENT_FLOW=%s/%s", run->ns, run->flow_name);
                fields[0] = f1;
                fields[1] = f2;
                log_struct(LOG_INFO, fields, "Run %" PRIi64 " of %s/%s created%s%s.", run->id,
                           run->ns, run->flow_name, trigger ? " by " : "", strempty(trigger));
        }

        /* Advanced at the end of this turn, inside the transaction that stores it: its first
         * attempts are recorded in the same commit, and (on_starts_committed) nothing reaches
         * systemd before that commit. */
        r = store_before_commit(e->store, on_runs_accepted, e);
        if (r < 0) {
                engine_remove_run(e, run);
                return r;
        }
        if (ret)
                *ret = run;
        TAKE_PTR(run);
        return 0;
}

static void unit_stop(Engine *e, const char *unit)
{
        (void) sd_bus_call_method_async(e->bus, NULL, "org.freedesktop.systemd1",
                                        "/org/freedesktop/systemd1",
                                        "org.freedesktop.systemd1.Manager", "StopUnit", NULL, NULL,
                                        "ss", unit, "replace");
}

static void run_stop(Run *run, RunState final, const char *reason)
{
        run_fail(run, final, reason);
        for (size_t i = 0; i < run->n_activities; i++)
                if (activity_state_is_active(run->activities[i].state))
                        unit_stop(run->engine, run->activities[i].unit);
        run_advance(run);
}

unsigned engine_count_trigger_runs(Engine *e, const char *trigger)
{
        unsigned n = 0;
        for (size_t i = 0; i < e->n_runs; i++)
                if (streq_ptr(e->runs[i]->trigger, trigger) && !e->runs[i]->ending)
                        n++;
        return n;
}

unsigned engine_cancel_trigger_runs(Engine *e, const char *trigger, const char *reason)
{
        unsigned n = 0;
        /* run_stop() may finish and remove runs: restart the scan after each. */
        for (bool again = true; again;) {
                again = false;
                for (size_t i = 0; i < e->n_runs; i++) {
                        Run *run = e->runs[i];
                        if (streq_ptr(run->trigger, trigger) && !run->ending) {
                                run_stop(run, RUN_CANCELLED, reason);
                                n++;
                                again = true;
                                break;
                        }
                }
        }
        return n;
}

int engine_cancel(Engine *e, int64_t run_id, const char *reason)
{
        Run *run = engine_find_run(e, run_id);
        if (!run)
                return -ENOENT;
        if (run->ending)
                return -EALREADY;
        run_stop(run, RUN_CANCELLED, reason ?: "cancelled");
        return 0;
}

static int on_run_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        Run *run = userdata;
        _cleanup_free_ char *why = NULL;

        run->timeout_source = sd_event_source_disable_unref(run->timeout_source);
        (void) asprintf(&why, "flow timed out after %" PRIu64 "s",
                        run->flow->timeout_usec / USEC_PER_SEC);
        run_stop(run, RUN_TIMED_OUT, why);
        return 0;
}

/* ---- recovery ---------------------------------------------------------------------------- */

static int recover_run(Engine *e, sqlite3_stmt *st)
{
        _cleanup_(run_freep) Run *run = NULL;
        _cleanup_free_ char *input = NULL, *flow_yaml = NULL, *trigger_ctx = NULL;
        sqlite3_stmt *act;
        int r;

        run = new0(Run, 1);
        if (!run)
                return -ENOMEM;
        run->engine = e;
        run->id = sqlite3_column_int64(st, 0);
        run->name = store_column_strdup(st, 1);
        run->ns = store_column_strdup(st, 2);
        run->flow_name = store_column_strdup(st, 3);
        run->state = run_state_from_string((const char *) sqlite3_column_text(st, 4));
        input = store_column_strdup(st, 5);
        run->trigger = store_column_strdup(st, 6);
        flow_yaml = store_column_strdup(st, 7);
        run->created_usec = (uint64_t) sqlite3_column_int64(st, 8);
        run->started_usec = (uint64_t) sqlite3_column_int64(st, 9);
        trigger_ctx = store_column_strdup(st, 10);
        run->accepted = true;
        if (!run->ns || !run->flow_name || !flow_yaml || run->state < 0)
                return -EBADMSG;
        run->input = input ? json_tokener_parse(input) : json_object_new_object();
        if (!run->input)
                run->input = json_object_new_object();
        run->trigger_ctx = trigger_ctx ? json_tokener_parse(trigger_ctx) : NULL;

        r = run_load_flow(run, flow_yaml);
        if (r < 0)
                return r;
        r = run_init_activities(run);
        if (r < 0)
                return r;
        /* A pending run gets its directories when it starts, as a new one does. */
        r = run->state == RUN_PENDING ? run_set_paths(run) : run_prepare_dirs(run, true);
        if (r < 0)
                return r;

        r = store_query(e->store, &act,
                        "SELECT step_index, id, state, attempts, exit_code, result, unit, "
                        "invocation_id, output, reason, created_usec, started_usec, "
                        "finished_usec, next_attempt_usec FROM activities WHERE run_id=?",
                        "i", run->id);
        if (r < 0)
                return r;
        while (sqlite3_step(act) == SQLITE_ROW) {
                size_t idx = (size_t) sqlite3_column_int64(act, 0);
                Activity *a;
                if (idx >= run->n_activities)
                        continue;
                a = &run->activities[idx];
                a->id = sqlite3_column_int64(act, 1);
                a->state = activity_state_from_string((const char *) sqlite3_column_text(act, 2));
                a->attempt = (unsigned) sqlite3_column_int(act, 3);
                a->exit_code = sqlite3_column_type(act, 4) == SQLITE_NULL
                                       ? -1
                                       : sqlite3_column_int(act, 4);
                a->result = store_column_strdup(act, 5);
                a->unit = store_column_strdup(act, 6);
                a->invocation_id = store_column_strdup(act, 7);
                a->output = store_column_strdup(act, 8);
                a->reason = store_column_strdup(act, 9);
                a->created_usec = (uint64_t) sqlite3_column_int64(act, 10);
                a->started_usec = (uint64_t) sqlite3_column_int64(act, 11);
                a->finished_usec = (uint64_t) sqlite3_column_int64(act, 12);
                a->next_attempt_usec = (uint64_t) sqlite3_column_int64(act, 13);
                if (a->state < 0)
                        a->state = ACTIVITY_PENDING;
        }
        sqlite3_reset(act);

        /* Ending already (an activity failed, a cancel, its timeout): the same way. */
        RunState ending = sqlite3_column_type(st, 11) == SQLITE_NULL
                                  ? (RunState) -1
                                  : run_state_from_string((const char *) sqlite3_column_text(st, 11));
        if (ending >= 0) {
                _cleanup_free_ char *error = store_column_strdup(st, 12);
                run_fail(run, ending, error ?: "run ended");
        }

        r = engine_add_run(e, run);
        if (r < 0)
                return r;
        TAKE_PTR(run);
        return 0;
}

/* Failed units kept for a result that is recorded already (a kill -9 came between the commit
 * and the reset): reset once what is open now is committed too. */
static int on_failed_units(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Engine *e = userdata;
        bool was_empty = !e->resets;
        const char *name;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                return 0;
        r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        if (r < 0)
                return 0;
        while (sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL, NULL,
                                   NULL, NULL, NULL, NULL) > 0) {
                int64_t run_id;
                size_t index;
                unsigned attempt;
                int n = 0;
                Activity *a;

                /* Activity units only (not arkevent-cron@ and the like). */
                if (sscanf(name, "arkevent-%" SCNi64 "-%zu-%u.service%n", &run_id, &index,
                           &attempt, &n) != 3 ||
                    name[n] != 0)
                        continue;
                a = engine_find_unit(e, name);
                if (a && activity_state_is_active(a->state))
                        continue; /* not recorded yet: its adoption reads and resets it */
                if (strv_extend(&e->resets, name) < 0)
                        break;
        }
        if (was_empty && e->resets && store_after_commit(e->store, on_resets_committed, e) < 0)
                strv_free(TAKE_PTR(e->resets));
        return 0;
}

int engine_recover(Engine *e)
{
        sqlite3_stmt *st;
        unsigned n = 0;
        int r;

        r = store_query(e->store, &st,
                        "SELECT id, name, namespace, flow, state, input, trigger, flow_yaml, "
                        "created_usec, started_usec, trigger_ctx, ending, error FROM runs "
                        "WHERE state IN ('Pending', 'Running') ORDER BY id",
                        NULL);
        if (r < 0)
                return r;
        while (sqlite3_step(st) == SQLITE_ROW) {
                r = recover_run(e, st);
                if (r < 0)
                        log_error_errno(r, "Failed to recover run %" PRIi64 ", ignoring: %m",
                                        (int64_t) sqlite3_column_int64(st, 0));
                else
                        n++;
        }
        sqlite3_reset(st);
        if (n > 0)
                log_info("Recovering %u unfinished runs.", n);

        /* Re-attach: units we know were started are looked up; a start that may not have
         * reached systemd is sent again under the same unit name, which systemd refuses if it
         * did (UnitExists), so no attempt ever runs twice. */
        for (size_t i = 0; i < e->n_runs; i++) {
                Run *run = e->runs[i];
                for (size_t k = 0; k < run->n_activities; k++) {
                        Activity *a = &run->activities[k];

                        if (a->state == ACTIVITY_RUNNING || a->state == ACTIVITY_STARTING) {
                                /* The start may or may not have reached systemd, and the unit
                                 * may have ended and been collected since: ask first. */
                                e->n_units_in_flight++;
                                run->n_active++;
                                activity_readopt(a);
                        } else if (a->state == ACTIVITY_QUEUED) {
                                (void) queue_push(e, a);
                        } else if (a->state == ACTIVITY_WAITING) {
                                uint64_t now = now_usec(CLOCK_REALTIME);
                                if (a->next_attempt_usec > now &&
                                    sd_event_add_time_relative(e->event, &a->retry_source,
                                                               CLOCK_MONOTONIC,
                                                               a->next_attempt_usec - now, 0,
                                                               on_retry, a) >= 0)
                                        continue;
                                a->state = ACTIVITY_QUEUED;
                                (void) queue_push(e, a);
                        }
                }
        }
        for (size_t i = 0; i < e->n_runs; i++) {
                Run *run = e->runs[i];
                run_advance(run);
                if (i < e->n_runs && e->runs[i] != run)
                        i--;
        }
        engine_dispatch(e);

        r = sd_bus_call_method_async(e->bus, NULL, "org.freedesktop.systemd1",
                                     "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "ListUnitsByPatterns",
                                     on_failed_units, e, "asas", 1, "failed", 1,
                                     "arkevent-*.service");
        if (r < 0)
                log_debug_errno(r, "Cannot list failed units, ignoring: %m");
        return (int) n;
}

/* ---- retention --------------------------------------------------------------------------- */

int engine_prune(Engine *e)
{
        RetentionPolicy p = {
                .max_age_usec = e->config.retention_usec,
                .max_runs = e->config.retention_max_runs,
        };
        return runs_prune(e->store, e->state_dir, &p, PRUNE_BATCH);
}

void engine_set_retention(Engine *e, uint64_t max_age_usec, unsigned max_runs)
{
        e->config.retention_usec = max_age_usec;
        e->config.retention_max_runs = max_runs;
        engine_prune_soon(e);
}

static int on_prune(sd_event_source *s, uint64_t usec, void *userdata)
{
        Engine *e = userdata;
        int r;

        r = engine_prune(e);
        if (r < 0)
                log_warning_errno(r, "Retention failed, ignoring: %m");
        /* A full batch: more are due, go on soon without holding the loop. */
        (void) sd_event_source_set_time_relative(
                s, r >= PRUNE_BATCH ? 100 * USEC_PER_MSEC : PRUNE_INTERVAL_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* After a run ends, the count limit may be passed: prune within a moment, once for many runs. */
static void engine_prune_soon(Engine *e)
{
        uint64_t next, soon;

        if (!e->prune_source || e->config.retention_max_runs == 0)
                return;
        if (sd_event_source_get_time(e->prune_source, &next) < 0)
                return;
        soon = now_usec(CLOCK_MONOTONIC) + PRUNE_SOON_USEC;
        if (next > soon)
                (void) sd_event_source_set_time(e->prune_source, soon);
}

/* ---- systemd's connection ---------------------------------------------------------------- */

static int on_systemd_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
static void engine_subscribe_again(Engine *e);
static int on_subscribe_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* systemd's private socket, as systemctl uses it as root: no bus daemon in between (a call or
 * a signal is one hop instead of two, and systemd need not ask the bus who the caller is), and
 * no match rules or pending replies counted against a budget. */
static int systemd_connect_private(Engine *e, sd_bus **ret)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        int r;

        if (geteuid() != 0)
                return -EPERM;
        if (access("/run/systemd/private", F_OK) < 0)
                return -errno;
        r = sd_bus_new(&b);
        if (r >= 0)
                r = sd_bus_set_address(b, "unix:path=/run/systemd/private");
        if (r >= 0)
                r = sd_bus_set_description(b, "systemd-private");
        if (r >= 0)
                r = sd_bus_start(b);
        if (r >= 0)
                r = sd_bus_attach_event(b, e->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_match_signal(b, NULL, "org.freedesktop.DBus.Local",
                                        "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected",
                                        on_systemd_disconnected, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

/* systemd closed its private socket (re-executed, or going down): the system bus from now on,
 * and every unit of ours still going is found out again there, as after a restart. Answers
 * the lost connection owed are not taken as answers (activity_reply_unanswered()). */
static int on_systemd_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Engine *e = userdata;

        log_notice("systemd closed its private socket; asking it over the system bus now.");
        sd_bus_unref(e->lost_bus);
        e->lost_bus = TAKE_PTR(e->bus); /* this is its callback: released with the engine */
        e->bus = sd_bus_ref(e->api_bus);
        e->direct = false;
        e->match_slot = sd_bus_slot_unref(e->match_slot);
        e->n_unit_matches = e->n_watched_by_all = 0;
        for (size_t i = 0; i < e->n_runs; i++)
                for (size_t k = 0; k < e->runs[i]->n_activities; k++) {
                        Activity *a = &e->runs[i]->activities[k];
                        a->watch_slot = sd_bus_slot_unref(a->watch_slot);
                        a->watched_by_all = false;
                }
        engine_subscribe_again(e);
        return 0;
}

/* On the system bus systemd sends unit signals only to subscribers; while it is re-executed it
 * is not there to subscribe to, so this is tried until it answers. Then every unit of ours still
 * going is found out again (after the subscription, so nothing it says is missed). */
static int on_subscribed_again(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Engine *e = userdata;

        e->subscribe_slot = sd_bus_slot_unref(e->subscribe_slot);
        if (sd_bus_message_is_method_error(reply, NULL)) {
                log_debug("Cannot subscribe to systemd yet (%s), trying again.",
                          sd_bus_message_get_error(reply)->message);
                if (sd_event_add_time_relative(e->event, &e->subscribe_again, CLOCK_MONOTONIC,
                                               SYSTEMD_AGAIN_USEC, 0, on_subscribe_timer,
                                               e) >= 0)
                        return 0;
        }
        for (size_t i = 0; i < e->n_runs; i++) {
                Run *run = e->runs[i];
                for (size_t k = 0; k < run->n_activities; k++) {
                        Activity *a = &run->activities[k];

                        if (a->state == ACTIVITY_RUNNING || a->state == ACTIVITY_STARTING)
                                activity_readopt(a);
                }
        }
        return 0;
}

static int on_subscribe_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Engine *e = userdata;

        e->subscribe_again = sd_event_source_disable_unref(e->subscribe_again);
        engine_subscribe_again(e);
        return 0;
}

static void engine_subscribe_again(Engine *e)
{
        e->subscribe_slot = sd_bus_slot_unref(e->subscribe_slot);
        if (sd_bus_call_method_async(e->bus, &e->subscribe_slot, "org.freedesktop.systemd1",
                                     "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "Subscribe",
                                     on_subscribed_again, e, NULL) < 0)
                log_warning("Cannot subscribe to systemd's signals on the system bus.");
}

/* ---- setup ------------------------------------------------------------------------------- */

int engine_new(sd_event *event, sd_bus *bus, Store *store, const EngineConfig *config,
               Engine **ret)
{
        _cleanup_(engine_freep) Engine *e = NULL;
        _cleanup_free_ char *runs = NULL;
        int r;

        e = new0(Engine, 1);
        if (!e)
                return -ENOMEM;
        e->event = sd_event_ref(event);
        e->api_bus = sd_bus_ref(bus);
        e->store = store;
        e->config = *config;
        e->state_dir = strdup(config->state_dir);
        e->step_binary = strdup(config->step_binary);
        if (!e->state_dir || !e->step_binary)
                return -ENOMEM;
        e->config.state_dir = e->state_dir;
        e->config.step_binary = e->step_binary;
        if (e->config.max_units_in_flight == 0)
                e->config.max_units_in_flight = 1;

        if (asprintf(&runs, "%s/runs", e->state_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(runs, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", runs);

        if (config->systemd_private_socket) {
                r = systemd_connect_private(e, &e->bus);
                if (r < 0)
                        log_info_errno(r, "Not on systemd's private socket, using the system bus: %m");
                else
                        e->direct = true;
        }
        if (!e->bus)
                e->bus = sd_bus_ref(bus);

        /* Units are watched one by one (activity_watch()). */
        r = sd_bus_call_method(e->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Subscribe", NULL, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to systemd's signals: %m");

        /* Retention: once right after start (with directories left by a crash), then hourly. */
        (void) runs_prune_orphans(store, e->state_dir);
        r = sd_event_add_time_relative(event, &e->prune_source, CLOCK_MONOTONIC, 0, 0, on_prune,
                                       e);
        if (r < 0)
                return log_error_errno(r, "Failed to add the retention timer: %m");
        (void) sd_event_source_set_description(e->prune_source, "retention");

        *ret = TAKE_PTR(e);
        return 0;
}

Engine *engine_free(Engine *e)
{
        if (!e)
                return NULL;
        for (size_t i = 0; i < e->n_runs; i++)
                run_free(e->runs[i]);
        free(e->runs);
        free(e->queue);
        free(e->waiting);
        free(e->starts);
        strv_free(e->resets);
        free(e->listeners);
        sd_event_source_disable_unref(e->prune_source);
        sd_bus_slot_unref(e->match_slot);
        sd_bus_slot_unref(e->subscribe_slot);
        sd_event_source_disable_unref(e->subscribe_again);
        if (e->direct)
                sd_bus_flush_close_unref(e->bus);
        else
                sd_bus_unref(e->bus);
        sd_bus_close_unref(e->lost_bus);
        sd_bus_unref(e->api_bus);
        sd_event_unref(e->event);
        free(e->state_dir);
        free(e->step_binary);
        free(e);
        return NULL;
}
