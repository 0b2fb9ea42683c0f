/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "run-view.h"
#include "shared/json-util.h"
#include "shared/time-util.h"

static void add_time(json_object *o, const char *key, sqlite3_stmt *st, int col)
{
        char buf[32];
        if (sqlite3_column_type(st, col) == SQLITE_NULL || sqlite3_column_int64(st, col) <= 0) {
                json_object_object_add(o, key, NULL);
                return;
        }
        json_object_object_add(
                o, key,
                json_object_new_string(format_rfc3339(buf, (uint64_t) sqlite3_column_int64(st, col),
                                                      true)));
}

static void add_text(json_object *o, const char *key, sqlite3_stmt *st, int col)
{
        const unsigned char *t = sqlite3_column_text(st, col);
        json_object_object_add(o, key, t ? json_object_new_string((const char *) t) : NULL);
}

static void add_int_or_null(json_object *o, const char *key, sqlite3_stmt *st, int col)
{
        json_object_object_add(o, key,
                               sqlite3_column_type(st, col) == SQLITE_NULL
                                       ? NULL
                                       : json_object_new_int64(sqlite3_column_int64(st, col)));
}

static void add_duration(json_object *o, sqlite3_stmt *st, int start_col, int end_col)
{
        int64_t a = sqlite3_column_int64(st, start_col), b = sqlite3_column_int64(st, end_col);
        json_object_object_add(o, "durationMs",
                               a > 0 && b >= a ? json_object_new_int64((b - a) / 1000) : NULL);
}

#define RUN_COLUMNS                                                                               \
        "id, name, namespace, flow, kind, state, input, output, error, trigger, created_usec, "  \
        "started_usec, finished_usec"

static json_object *run_row(sqlite3_stmt *st, const char *base_url)
{
        json_object *o = json_object_new_object();
        const unsigned char *input;
        char url[512];
        int64_t id = sqlite3_column_int64(st, 0);

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(id));
        add_text(o, "name", st, 1);
        add_text(o, "namespace", st, 2);
        add_text(o, "flow", st, 3);
        add_text(o, "kind", st, 4);
        add_text(o, "state", st, 5);
        input = sqlite3_column_text(st, 6);
        json_object_object_add(o, "input",
                               input ? json_tokener_parse((const char *) input) : NULL);
        add_text(o, "output", st, 7);
        add_text(o, "error", st, 8);
        add_text(o, "trigger", st, 9);
        add_time(o, "createdAt", st, 10);
        add_time(o, "startedAt", st, 11);
        add_time(o, "finishedAt", st, 12);
        add_duration(o, st, 11, 12);
        snprintf(url, sizeof(url), "%s/api/v1/runs/%" PRIi64, strempty(base_url), id);
        json_object_object_add(o, "url", json_object_new_string(url));
        return o;
}

int run_view_get(Store *s, int64_t id, const char *base_url, json_object **ret)
{
        _cleanup_(json_object_putp) json_object *run = NULL;
        json_object *acts;
        sqlite3_stmt *st;
        int r;

        r = store_query(s, &st, "SELECT " RUN_COLUMNS " FROM runs WHERE id=?", "i", id);
        if (r < 0)
                return r;
        if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_reset(st);
                return -ENOENT;
        }
        run = run_row(st, base_url);
        sqlite3_reset(st);
        if (!run)
                return -ENOMEM;

        acts = json_object_new_array();
        json_object_object_add(run, "activities", acts);
        r = store_query(s, &st,
                        "SELECT id, name, state, attempts, exit_code, result, unit, "
                        "invocation_id, output, reason, created_usec, started_usec, "
                        "finished_usec FROM activities WHERE run_id=? ORDER BY step_index",
                        "i", id);
        if (r < 0)
                return r;
        while (sqlite3_step(st) == SQLITE_ROW) {
                json_object *a = json_object_new_object();
                json_object_object_add(a, "id", json_object_new_int64(sqlite3_column_int64(st, 0)));
                add_text(a, "name", st, 1);
                add_text(a, "state", st, 2);
                json_object_object_add(a, "attempts",
                                       json_object_new_int(sqlite3_column_int(st, 3)));
                add_int_or_null(a, "exitCode", st, 4);
                add_text(a, "result", st, 5);
                add_text(a, "unit", st, 6);
                add_text(a, "invocationId", st, 7);
                add_text(a, "output", st, 8);
                add_text(a, "reason", st, 9);
                add_time(a, "createdAt", st, 10);
                add_time(a, "startedAt", st, 11);
                add_time(a, "finishedAt", st, 12);
                add_duration(a, st, 11, 12);
                json_object_array_add(acts, a);
        }
        sqlite3_reset(st);

        /* Every attempt, with its own unit and outcome. */
        r = store_query(s, &st,
                        "SELECT a.name, t.number, t.unit, t.invocation_id, t.state, t.exit_code, "
                        "t.result, t.started_usec, t.finished_usec FROM attempts t "
                        "JOIN activities a ON a.id = t.activity_id WHERE a.run_id=? "
                        "ORDER BY a.step_index, t.number",
                        "i", id);
        if (r < 0)
                return r;
        while (sqlite3_step(st) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(st, 0);
                for (size_t i = 0; i < json_object_array_length(acts); i++) {
                        json_object *a = json_object_array_get_idx(acts, i), *list, *t;
                        if (!streq_ptr(json_object_get_string(json_object_object_get(a, "name")),
                                       name))
                                continue;
                        if (!json_object_object_get_ex(a, "attemptList", &list)) {
                                list = json_object_new_array();
                                json_object_object_add(a, "attemptList", list);
                        }
                        t = json_object_new_object();
                        json_object_object_add(t, "number",
                                               json_object_new_int(sqlite3_column_int(st, 1)));
                        add_text(t, "unit", st, 2);
                        add_text(t, "invocationId", st, 3);
                        add_text(t, "state", st, 4);
                        add_int_or_null(t, "exitCode", st, 5);
                        add_text(t, "result", st, 6);
                        add_time(t, "startedAt", st, 7);
                        add_time(t, "finishedAt", st, 8);
                        json_object_array_add(list, t);
                }
        }
        sqlite3_reset(st);

        *ret = TAKE_PTR(run);
        return 0;
}

int run_view_list(Store *s, const RunFilter *f, const char *base_url, json_object **ret)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *items;
        sqlite3_stmt *st;
        unsigned limit = f->limit > 0 && f->limit <= 1000 ? f->limit : 100, n = 0;
        int64_t last = 0;
        int r;

        if (!o)
                return -ENOMEM;
        r = store_query(s, &st,
                        "SELECT " RUN_COLUMNS " FROM runs WHERE (?1 IS NULL OR namespace=?1) AND "
                        "(?2 IS NULL OR flow=?2) AND (?3 IS NULL OR state=?3) AND "
                        "(?4 = 0 OR id < ?4) ORDER BY id DESC LIMIT ?5",
                        "sssii", f->ns, f->flow, f->state, f->before_id, (int64_t) limit + 1);
        if (r < 0)
                return r;
        items = json_object_new_array();
        json_object_object_add(o, "runs", items);
        while (sqlite3_step(st) == SQLITE_ROW) {
                if (n == limit) {
                        char next[64];
                        snprintf(next, sizeof(next), "%" PRIi64, last);
                        json_object_object_add(o, "nextBefore", json_object_new_string(next));
                        break;
                }
                last = sqlite3_column_int64(st, 0);
                json_object_array_add(items, run_row(st, base_url));
                n++;
        }
        sqlite3_reset(st);
        *ret = TAKE_PTR(o);
        return 0;
}
