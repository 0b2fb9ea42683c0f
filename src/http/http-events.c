/* SPDX-License-Identifier: MIT */
/* GET /api/v1/runs/{id}/events: a text/event-stream of a run's state changes for live views.
 * The run's past events come first (from the store's events table), then one "data:" line of
 * JSON per run or activity state change as the engine tells them; the stream ends with the
 * run. */
#include <inttypes.h>

#include "engine/engine.h"
#include "http-routes.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

/* A reader of one run's events. The engine's listeners append to its buffer while the run goes
 * on; the HTTP server drains it (http_request_reply_stream) and frees the subscriber once the
 * connection is gone. */
typedef struct Subscriber {
        HttpRequest *req;
        int64_t run_id;
        char *buf;
        size_t off, len, allocated;
        bool ended;  /* nothing more will be appended: end the answer once drained */
        struct Subscriber *next;
} Subscriber;

static Subscriber *subscribers;

static void subscriber_unlink(Subscriber *s)
{
        for (Subscriber **p = &subscribers; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        return;
                }
}

static Subscriber *subscriber_free(Subscriber *s)
{
        if (!s)
                return NULL;
        subscriber_unlink(s);
        free(s->buf);
        free(s);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Subscriber *, subscriber_free);

static ssize_t subscriber_read(HttpRequest *req, char *buf, size_t max, void *userdata)
{
        Subscriber *s = userdata;
        size_t n;

        if (s->len > s->off) {
                n = MIN(max, s->len - s->off);
                memcpy(buf, s->buf + s->off, n);
                s->off += n;
                if (s->off == s->len)
                        s->off = s->len = 0;
                return (ssize_t) n;
        }
        return s->ended ? -1 : 0;
}

static void subscriber_done(void *userdata)
{
        subscriber_free(userdata);
}

/* Ends the stream once what is buffered has gone out; the listeners forget it. */
static void subscriber_end(Subscriber *s)
{
        s->ended = true;
        subscriber_unlink(s);
        if (s->req)
                http_request_stream_wake(s->req);
}

static int send_event(Subscriber *s, json_object *data)
{
        _cleanup_free_ char *line = NULL;
        const char *text = json_object_to_json_string_ext(
                data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        int n = asprintf(&line, "data: %s\n\n", text);

        if (n < 0)
                return -ENOMEM;
        if (s->len + (size_t) n > s->allocated) {
                size_t k = MAX(s->allocated * 2, s->len + (size_t) n);
                char *b;

                if (k > 16 * 1024 * 1024)
                        return -ENOBUFS; /* a reader that does not read */
                b = realloc(s->buf, k);
                if (!b)
                        return -ENOMEM;
                s->buf = b;
                s->allocated = k;
        }
        memcpy(s->buf + s->len, line, (size_t) n);
        s->len += (size_t) n;
        if (s->req)
                http_request_stream_wake(s->req);
        return 0;
}

static void add_now(json_object *o, uint64_t usec)
{
        char buf[32];
        json_object_object_add(o, "time", json_object_new_string(format_rfc3339(buf, usec, true)));
}

static json_object *run_event_json(Run *run)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "type", json_object_new_string("run"));
        json_object_object_add(o, "run", json_object_new_int64(run->id));
        json_object_object_add(o, "state",
                               json_object_new_string(run_state_to_string(run->state)));
        if (run->error)
                json_object_object_add(o, "error", json_object_new_string(run->error));
        add_now(o, now_usec(CLOCK_REALTIME));
        return o;
}

static json_object *activity_event_json(Activity *a)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "type", json_object_new_string("activity"));
        json_object_object_add(o, "run", json_object_new_int64(a->run->id));
        json_object_object_add(o, "activity", json_object_new_string(a->step->name));
        json_object_object_add(o, "state",
                               json_object_new_string(activity_state_to_string(a->state)));
        json_object_object_add(o, "attempt", json_object_new_int((int) a->attempt));
        if (a->unit)
                json_object_object_add(o, "unit", json_object_new_string(a->unit));
        if (activity_state_is_final(a->state) && a->exit_code >= 0)
                json_object_object_add(o, "exitCode", json_object_new_int(a->exit_code));
        if (a->reason)
                json_object_object_add(o, "reason", json_object_new_string(a->reason));
        add_now(o, now_usec(CLOCK_REALTIME));
        return o;
}

static void on_run_changed(Run *run, void *userdata)
{
        Subscriber *s, *next;

        for (s = subscribers; s; s = next) {
                _cleanup_(json_object_putp) json_object *o = NULL;

                next = s->next;
                if (s->run_id != run->id)
                        continue;
                o = run_event_json(run);
                if (!o || send_event(s, o) < 0 || run_state_is_final(run->state))
                        subscriber_end(s);
        }
}

static void on_activity_changed(Activity *a, void *userdata)
{
        Subscriber *s, *next;

        for (s = subscribers; s; s = next) {
                _cleanup_(json_object_putp) json_object *o = NULL;

                next = s->next;
                if (s->run_id != a->run->id)
                        continue;
                o = activity_event_json(a);
                if (!o || send_event(s, o) < 0)
                        subscriber_end(s);
        }
}

int http_events_setup(Manager *m)
{
        EngineListener l = {
                .run_changed = on_run_changed,
                .activity_changed = on_activity_changed,
        };
        return engine_add_listener(m->engine, &l);
}

/* The events table as it was recorded: "run" rows without data are the creation (Pending) and
 * the start (Running); the others carry their state. */
static int send_past_events(Store *store, Subscriber *s, int64_t id)
{
        sqlite3_stmt *st;
        unsigned n_bare_runs = 0;
        int r;

        r = store_query(store, &st, "SELECT usec, type, data FROM events WHERE run_id=? ORDER BY id",
                        "i", id);
        if (r < 0)
                return r;
        while (sqlite3_step(st) == SQLITE_ROW) {
                _cleanup_(json_object_putp) json_object *o = NULL;
                const char *type = (const char *) sqlite3_column_text(st, 1);
                const char *data = (const char *) sqlite3_column_text(st, 2);
                char buf[32];

                o = data ? json_tokener_parse(data) : NULL;
                if (!o || !json_object_is_type(o, json_type_object)) {
                        json_object_put(o);
                        o = json_object_new_object();
                        if (!o)
                                break;
                        if (streq_ptr(type, "run"))
                                json_object_object_add(
                                        o, "state",
                                        json_object_new_string(n_bare_runs++ == 0 ? "Pending"
                                                                                  : "Running"));
                }
                json_object_object_add(o, "type", json_object_new_string(strempty(type)));
                json_object_object_add(o, "run", json_object_new_int64(id));
                json_object_object_add(
                        o, "time",
                        json_object_new_string(format_rfc3339(
                                buf, (uint64_t) sqlite3_column_int64(st, 0), true)));
                json_object_object_add(o, "past", json_object_new_boolean(true));
                r = send_event(s, o);
                if (r < 0)
                        break;
        }
        sqlite3_reset(st);
        return r < 0 ? r : 0;
}

int route_runs_events(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(subscriber_freep) Subscriber *s = NULL;
        _cleanup_free_ char *state = NULL;
        Subscriber *sub;
        sqlite3_stmt *st;
        int64_t id;
        int r;

        /* EventSource cannot set headers: the check takes ?token= as well. */
        if (http_check_api_token(m, req))
                return 0;
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad run id: %s", captures[0]);
        if (!m->store)
                return http_request_reply_error(req, 503, NULL, "the store is not available");
        r = store_query(m->store, &st, "SELECT state FROM runs WHERE id=?", "i", id);
        if (r < 0)
                return r;
        if (sqlite3_step(st) == SQLITE_ROW)
                state = store_column_strdup(st, 0);
        sqlite3_reset(st);
        if (!state)
                return http_request_reply_error(req, 404, NULL, "no run %" PRIi64, id);

        s = new0(Subscriber, 1);
        if (!s)
                return -ENOMEM;
        s->run_id = id;
        r = send_past_events(m->store, s, id);
        if (r < 0)
                return r;
        /* Nothing more will happen to a run that is not active: end after its past. */
        if (!m->engine || !engine_find_run(m->engine, id))
                s->ended = true;
        /* The server takes it, and frees it through subscriber_done(), also on failure. */
        sub = TAKE_PTR(s);
        r = http_request_reply_stream(req, 200, "text/event-stream", subscriber_read,
                                      subscriber_done, sub);
        if (r < 0)
                return r;
        sub->req = req;
        if (!sub->ended) {
                sub->next = subscribers;
                subscribers = sub;
        }
        return 0;
}
