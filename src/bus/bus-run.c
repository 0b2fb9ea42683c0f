/* SPDX-License-Identifier: MIT */
/* One object per run: /dev/arkonis/ArkEvent1/run/<id>. Every stored run can be addressed; the
 * node enumerator lists the active ones and the most recent, so `busctl tree` stays short. A
 * property comes from the engine while the run is active there, from the store afterwards. */

#include <inttypes.h>

#include "bus-manager.h"
#include "engine/engine.h"
#include "shared/log.h"

#define BUS_RUNS_LISTED 100

int bus_run_path(int64_t id, char **ret)
{
        /* Plain digits: ids are valid path elements as they are. */
        return asprintf(ret, BUS_RUN_PREFIX "/%" PRIi64, id) < 0 ? -ENOMEM : 0;
}

static int run_id_from_path(const char *path, int64_t *ret)
{
        const char *s = startswith(path, BUS_RUN_PREFIX "/");
        char *end;
        long long v;

        if (!s || *s < '1' || *s > '9')
                return -ENOENT;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end || v <= 0)
                return -ENOENT;
        *ret = v;
        return 0;
}

static bool run_stored(Manager *m, int64_t id)
{
        sqlite3_stmt *st;
        bool found;

        if (!m->store || store_query(m->store, &st, "SELECT 1 FROM runs WHERE id=?", "i", id) < 0)
                return false;
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        return found;
}

static int run_object_find(sd_bus *bus, const char *path, const char *interface,
                           void *userdata, void **ret_found, sd_bus_error *error)
{
        Manager *m = userdata;
        int64_t id;

        if (run_id_from_path(path, &id) < 0)
                return 0;
        if (!(m->engine && engine_find_run(m->engine, id)) && !run_stored(m, id))
                return 0;
        *ret_found = m;
        return 1;
}

static int run_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes,
                               sd_bus_error *error)
{
        Manager *m = userdata;
        sqlite3_stmt *st;
        char **l = NULL;
        size_t n = 0, allocated = 0;
        int r;

        if (!m->store) {
                *ret_nodes = new0(char *, 1);
                return *ret_nodes ? 0 : -ENOMEM;
        }
        r = store_query(m->store, &st,
                        "SELECT id FROM runs WHERE state IN ('Pending', 'Running') UNION "
                        "SELECT id FROM (SELECT id FROM runs ORDER BY id DESC LIMIT ?) "
                        "ORDER BY 1",
                        "i", (int64_t) BUS_RUNS_LISTED);
        if (r < 0)
                return r;
        while (sqlite3_step(st) == SQLITE_ROW) {
                if (n + 2 > allocated) {
                        size_t na = MAX(allocated * 2, (size_t) 16);
                        char **nl = realloc(l, na * sizeof(char *));
                        if (!nl) {
                                r = -ENOMEM;
                                break;
                        }
                        l = nl;
                        allocated = na;
                }
                r = bus_run_path(sqlite3_column_int64(st, 0), &l[n]);
                if (r < 0)
                        break;
                l[++n] = NULL;
                r = 0;
        }
        sqlite3_reset(st);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(l[i]);
                free(l);
                return r;
        }
        if (!l && !(l = new0(char *, 1)))
                return -ENOMEM;
        *ret_nodes = l;
        return 0;
}

/* Reads one column of the run's row. */
static int stored_run_column(Manager *m, int64_t id, const char *column, sqlite3_stmt **ret)
{
        _cleanup_free_ char *sql = NULL;
        int r;

        if (asprintf(&sql, "SELECT %s FROM runs WHERE id=?", column) < 0)
                return -ENOMEM;
        r = store_query(m->store, ret, sql, "i", id);
        if (r < 0)
                return r;
        if (sqlite3_step(*ret) != SQLITE_ROW) {
                sqlite3_reset(*ret);
                return -ENOENT;
        }
        return 0;
}

#define GET_RUN(m, id, run, path, userdata)                                                       \
        Manager *m = userdata;                                                                    \
        int64_t id;                                                                               \
        Run *run;                                                                                 \
        if (run_id_from_path(path, &id) < 0)                                                      \
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No run at %s.", path);     \
        run = m->engine ? engine_find_run(m->engine, id) : NULL

static int property_get_string(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error)
{
        _cleanup_free_ char *flow = NULL;
        sqlite3_stmt *st;
        int r;
        GET_RUN(m, id, run, path, userdata);

        if (run) {
                if (streq(property, "Flow")) {
                        if (asprintf(&flow, "%s/%s", run->ns, run->flow_name) < 0)
                                return -ENOMEM;
                        return sd_bus_message_append(reply, "s", flow);
                }
                if (streq(property, "State"))
                        return sd_bus_message_append(reply, "s", run_state_to_string(run->state));
                if (streq(property, "Trigger"))
                        return sd_bus_message_append(reply, "s", strempty(run->trigger));
                if (streq(property, "Output"))
                        return sd_bus_message_append(reply, "s", strempty(run->output));
                return sd_bus_message_append(reply, "s", strempty(run->error));
        }

        r = stored_run_column(m, id,
                              streq(property, "Flow")      ? "namespace || '/' || flow"
                              : streq(property, "State")   ? "state"
                              : streq(property, "Trigger") ? "trigger"
                              : streq(property, "Output")  ? "output"
                                                           : "error",
                              &st);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No run %" PRIi64 ".", id);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "s", strempty((const char *) sqlite3_column_text(st, 0)));
        sqlite3_reset(st);
        return r;
}

static int property_get_usec(sd_bus *bus, const char *path, const char *interface,
                             const char *property, sd_bus_message *reply, void *userdata,
                             sd_bus_error *error)
{
        sqlite3_stmt *st;
        uint64_t v;
        int r;
        GET_RUN(m, id, run, path, userdata);

        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "t", (uint64_t) id);
        if (run)
                return sd_bus_message_append(reply, "t",
                                             streq(property, "CreatedUSec")   ? run->created_usec
                                             : streq(property, "StartedUSec") ? run->started_usec
                                                                              : run->finished_usec);
        r = stored_run_column(m, id,
                              streq(property, "CreatedUSec")   ? "created_usec"
                              : streq(property, "StartedUSec") ? "started_usec"
                                                               : "finished_usec",
                              &st);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No run %" PRIi64 ".", id);
        if (r < 0)
                return r;
        v = (uint64_t) sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return sd_bus_message_append(reply, "t", v);
}

static int property_get_activities(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error)
{
        sqlite3_stmt *st;
        int r;
        GET_RUN(m, id, run, path, userdata);

        r = sd_bus_message_open_container(reply, 'a', "(sssitt)");
        if (r < 0)
                return r;
        if (run)
                for (size_t i = 0; i < run->n_activities; i++) {
                        const Activity *a = &run->activities[i];
                        r = sd_bus_message_append(reply, "(sssitt)", a->step->name,
                                                  activity_state_to_string(a->state),
                                                  strempty(a->unit), (int32_t) a->exit_code,
                                                  a->started_usec, a->finished_usec);
                        if (r < 0)
                                return r;
                }
        else {
                r = store_query(m->store, &st,
                                "SELECT name, state, unit, exit_code, started_usec, "
                                "finished_usec FROM activities WHERE run_id=? ORDER BY "
                                "step_index",
                                "i", id);
                if (r < 0)
                        return r;
                while (sqlite3_step(st) == SQLITE_ROW) {
                        r = sd_bus_message_append(
                                reply, "(sssitt)", (const char *) sqlite3_column_text(st, 0),
                                (const char *) sqlite3_column_text(st, 1),
                                strempty((const char *) sqlite3_column_text(st, 2)),
                                sqlite3_column_type(st, 3) == SQLITE_NULL
                                        ? (int32_t) -1
                                        : (int32_t) sqlite3_column_int(st, 3),
                                (uint64_t) sqlite3_column_int64(st, 4),
                                (uint64_t) sqlite3_column_int64(st, 5));
                        if (r < 0)
                                break;
                }
                sqlite3_reset(st);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        int64_t id;

        if (run_id_from_path(sd_bus_message_get_path(msg), &id) < 0)
                return sd_bus_error_set(error, BUS_ERROR_NOT_FOUND, "No such run.");
        return bus_cancel_run(msg, userdata, (uint64_t) id, error);
}

static const sd_bus_vtable run_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", property_get_usec, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Flow", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Trigger", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CreatedUSec", "t", property_get_usec, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StartedUSec", "t", property_get_usec, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FinishedUSec", "t", property_get_usec, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Output", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Error", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Activities", "a(sssitt)", property_get_activities, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_run_setup(Manager *m)
{
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, BUS_RUN_PREFIX, BUS_RUN_INTERFACE,
                                       run_vtable, run_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(m->bus, NULL, BUS_RUN_PREFIX, run_node_enumerator, m);
}

/* Runs whose properties changed in this loop turn: one PropertiesChanged each when the turn
 * ends, however many times they changed (a run's start, its activities, its end). */
static struct {
        Manager *m;
        sd_event_source *source;
        int64_t *ids;
        size_t n, allocated;
} changed_runs;

static int cmp_id(const void *a, const void *b)
{
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

static void emit_run_changed(Manager *m, int64_t id)
{
        _cleanup_free_ char *path = NULL;

        if (!m->bus || bus_run_path(id, &path) < 0)
                return;
        (void) sd_bus_emit_properties_changed(m->bus, path, BUS_RUN_INTERFACE, "State",
                                              "StartedUSec", "FinishedUSec", "Output", "Error",
                                              "Activities", NULL);
}

static int on_changed_runs(sd_event_source *s, void *userdata)
{
        int64_t *ids = TAKE_PTR(changed_runs.ids);
        size_t n = changed_runs.n;

        changed_runs.n = changed_runs.allocated = 0;
        qsort(ids, n, sizeof(int64_t), cmp_id);
        for (size_t i = 0; i < n; i++)
                if (i == 0 || ids[i] != ids[i - 1])
                        emit_run_changed(changed_runs.m, ids[i]);
        free(ids);
        return 0;
}

void bus_run_emit_changed(Manager *m, int64_t id)
{
        if (!m->bus)
                return;
        if (changed_runs.n > 0 && changed_runs.ids[changed_runs.n - 1] == id)
                return;
        if (changed_runs.n >= changed_runs.allocated) {
                size_t k = MAX(64u, changed_runs.allocated * 2);
                int64_t *p = realloc(changed_runs.ids, k * sizeof(int64_t));
                if (!p) {
                        emit_run_changed(m, id);
                        return;
                }
                changed_runs.ids = p;
                changed_runs.allocated = k;
        }
        if (!changed_runs.source &&
            sd_event_add_defer(m->event, &changed_runs.source, on_changed_runs, NULL) < 0) {
                emit_run_changed(m, id);
                return;
        }
        changed_runs.m = m;
        changed_runs.ids[changed_runs.n++] = id;
        (void) sd_event_source_set_enabled(changed_runs.source, SD_EVENT_ONESHOT);
}

void bus_run_changed_flush(void)
{
        if (changed_runs.n > 0 && changed_runs.m)
                (void) on_changed_runs(NULL, NULL);
        changed_runs.source = sd_event_source_disable_unref(changed_runs.source);
        free(TAKE_PTR(changed_runs.ids));
        changed_runs.n = changed_runs.allocated = 0;
        changed_runs.m = NULL;
}
