/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <systemd/sd-journal.h>

#include "engine/engine.h"
#include "engine/run-view.h"
#include "http-routes.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

static int engine_unavailable(HttpRequest *req)
{
        return http_request_reply_error(req, 503, NULL,
                                        "the flow engine is not available (no connection to "
                                        "systemd on the system bus)");
}

typedef struct CreateReply {
        HttpRequest *req;
        Manager *m;
        int64_t run_id;
} CreateReply;

static void on_created_committed(Store *s, int error, void *userdata)
{
        _cleanup_free_ CreateReply *c = userdata;
        _cleanup_(json_object_putp) json_object *o = NULL;

        if (error < 0) {
                (void) http_request_reply_error(c->req, 503, NULL,
                                                "the run could not be stored: %s",
                                                strerror(-error));
                return;
        }
        if (run_view_get(s, c->run_id, http_base_url(c->m), &o) < 0) {
                (void) http_request_reply_error(c->req, 500, NULL, "the run vanished");
                return;
        }
        (void) http_request_add_log_field(c->req, "ARKEVENT_RUN=%" PRIi64, c->run_id);
        (void) http_request_reply_json(c->req, 202, o);
}

int route_runs_create(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_free_ char *ns = NULL;
        json_object *jflow, *input = NULL;
        const char *flow, *slash, *name;
        CreateReply *c;
        Flow *f;
        Run *run;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (!m->engine)
                return engine_unavailable(req);
        if (http_parse_json_body(req, &body))
                return 0;

        if (!json_object_object_get_ex(body, "flow", &jflow) ||
            !json_object_is_type(jflow, json_type_string))
                return http_request_reply_error(req, 400, NULL,
                                                "\"flow\" must be a string: \"namespace/name\" "
                                                "or \"name\"");
        if (json_object_object_get_ex(body, "input", &input) && input &&
            !json_object_is_type(input, json_type_object))
                return http_request_reply_error(req, 400, NULL, "\"input\" must be an object");

        flow = json_object_get_string(jflow);
        slash = strchr(flow, '/');
        ns = slash ? strndup(flow, (size_t) (slash - flow)) : strdup("default");
        if (!ns)
                return -ENOMEM;
        name = slash ? slash + 1 : flow;

        f = registry_find_flow(m->registry, ns, name);
        if (!f)
                return http_request_reply_error(req, 404, NULL, "no flow %s/%s", ns, name);

        r = engine_submit(m->engine, f, input, NULL, NULL, &run);
        if (r == -ENOBUFS)
                return http_request_reply_error(req, 429, NULL,
                                                "the run queue is full, try again later");
        if (r < 0)
                return r;

        /* The 202 goes out only once the run is committed. */
        c = new0(CreateReply, 1);
        if (!c)
                return -ENOMEM;
        *c = (CreateReply){ req, m, run->id };
        r = store_on_commit(engine_store(m->engine), on_created_committed, c);
        if (r < 0) {
                free(c);
                return r;
        }
        return HTTP_SUSPENDED;
}

int route_runs_list(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *before = http_request_query(req, "before");
        const char *limit = http_request_query(req, "limit");
        RunFilter f = {
                .ns = http_request_query(req, "namespace"),
                .flow = http_request_query(req, "flow"),
                .state = http_request_query(req, "state"),
        };
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (!m->store)
                return engine_unavailable(req);
        if (f.flow && strchr(f.flow, '/')) {
                /* "ns/name" is accepted too. */
                static char nsbuf[256];
                const char *slash = strchr(f.flow, '/');
                snprintf(nsbuf, sizeof(nsbuf), "%.*s", (int) (slash - f.flow), f.flow);
                f.ns = nsbuf;
                f.flow = slash + 1;
        }
        if (before && http_parse_id(before, &f.before_id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad \"before\": %s", before);
        if (limit) {
                char *end;
                unsigned long v;
                errno = 0;
                v = strtoul(limit, &end, 10);
                if (errno != 0 || *end || !*limit || v == 0 || v > 1000)
                        return http_request_reply_error(req, 400, NULL,
                                                        "bad \"limit\": %s (1 to 1000)", limit);
                f.limit = (unsigned) v;
        }
        if (f.state && run_state_from_string(f.state) < 0)
                return http_request_reply_error(req, 400, NULL,
                                                "bad \"state\": %s (Pending, Running, Succeeded, "
                                                "Failed, Cancelled, TimedOut)",
                                                f.state);

        r = run_view_list(m->store, &f, http_base_url(m), &o);
        if (r < 0)
                return r;
        return http_request_reply_json(req, 200, o);
}

int route_runs_get(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        int64_t id;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (!m->store)
                return engine_unavailable(req);
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad run id: %s", captures[0]);
        r = run_view_get(m->store, id, http_base_url(m), &o);
        if (r == -ENOENT)
                return http_request_reply_error(req, 404, NULL, "no run %" PRIi64, id);
        if (r < 0)
                return r;
        return http_request_reply_json(req, 200, o);
}

int route_runs_cancel(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        int64_t id;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (!m->engine)
                return engine_unavailable(req);
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad run id: %s", captures[0]);

        r = engine_cancel(m->engine, id, "cancelled through the API");
        if (r == -ENOENT || r == -EALREADY) {
                if (run_view_get(m->store, id, http_base_url(m), &o) < 0)
                        return http_request_reply_error(req, 404, NULL, "no run %" PRIi64, id);
                if (r == -EALREADY)
                        return http_request_reply_json(req, 202, o);
                return http_request_reply_error(req, 409, NULL,
                                                "run %" PRIi64 " has already finished", id);
        }
        if (r < 0)
                return r;
        r = run_view_get(m->store, id, http_base_url(m), &o);
        if (r < 0)
                return r;
        return http_request_reply_json(req, 202, o);
}

/* One journal entry of a run as the logs API shows it. */
static json_object *log_entry_json(sd_journal *j)
{
        json_object *e = json_object_new_object();
        const void *d;
        size_t l;
        uint64_t t;
        char ts[32];

        if (!e)
                return NULL;
        if (sd_journal_get_realtime_usec(j, &t) >= 0)
                json_object_object_add(e, "time",
                                       json_object_new_string(format_rfc3339(ts, t, true)));
        if (sd_journal_get_data(j, "ARKEVENT_ACTIVITY", &d, &l) >= 0 && l > 18)
                json_object_object_add(e, "activity",
                                       json_object_new_string_len((const char *) d + 18,
                                                                  (int) l - 18));
        if (sd_journal_get_data(j, "_SYSTEMD_UNIT", &d, &l) >= 0 && l > 14)
                json_object_object_add(e, "unit",
                                       json_object_new_string_len((const char *) d + 14,
                                                                  (int) l - 14));
        if (sd_journal_get_data(j, "MESSAGE", &d, &l) >= 0 && l > 8)
                json_object_object_add(e, "message",
                                       json_object_new_string_len((const char *) d + 8,
                                                                  (int) l - 8));
        return e;
}

static int run_journal_open(int64_t id, sd_journal **ret)
{
        sd_journal *j = NULL;
        char match[64];
        int r;

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0)
                return r;
        snprintf(match, sizeof(match), "ARKEVENT_RUN=%" PRIi64, id);
        r = sd_journal_add_match(j, match, 0);
        if (r < 0) {
                sd_journal_close(j);
                return r;
        }
        *ret = j;
        return 0;
}

/* ?follow=1: the run's journal entries as JSON lines (application/x-ndjson), sent as they
 * arrive, until the run has ended and its last lines are out. The request costs no thread: the
 * connection is parked while there is nothing to send, and woken by the journal's fd. */
typedef struct LogFollow {
        Manager *m;
        HttpRequest *req;
        sd_journal *journal;
        sd_event_source *io_source, *timer_source;
        int64_t run_id;
        char *buf;
        size_t len, off, allocated;
        uint64_t ended_usec; /* when the run was first seen ended (CLOCK_MONOTONIC) */
        bool finished;
} LogFollow;

#define LOG_FOLLOW_GRACE_USEC (1500 * USEC_PER_MSEC)
#define LOG_FOLLOW_BUFFER_MAX (4u * 1024 * 1024)

static void log_follow_free(void *userdata)
{
        LogFollow *f = userdata;

        sd_event_source_disable_unref(f->io_source);
        sd_event_source_disable_unref(f->timer_source);
        if (f->journal)
                sd_journal_close(f->journal);
        free(f->buf);
        free(f);
}

static int log_follow_append(LogFollow *f, const char *text, size_t n)
{
        if (f->off > 0 && f->off == f->len)
                f->off = f->len = 0;
        if (f->len + n > f->allocated) {
                size_t a = MAX(f->allocated * 2, f->len + n + 4096);
                char *b = realloc(f->buf, a);
                if (!b)
                        return -ENOMEM;
                f->buf = b;
                f->allocated = a;
        }
        memcpy(f->buf + f->len, text, n);
        f->len += n;
        return 0;
}

static void log_follow_pump(LogFollow *f)
{
        bool any = false;

        while (f->len - f->off < LOG_FOLLOW_BUFFER_MAX && sd_journal_next(f->journal) > 0) {
                _cleanup_(json_object_putp) json_object *e = log_entry_json(f->journal);
                const char *text;
                size_t n;

                if (!e)
                        break;
                text = json_object_to_json_string_length(
                        e, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
                if (log_follow_append(f, text, n) < 0 || log_follow_append(f, "\n", 1) < 0)
                        break;
                any = true;
        }
        if (any)
                http_request_stream_wake(f->req);
}

static bool run_has_ended(Manager *m, int64_t id)
{
        sqlite3_stmt *st;
        bool ended = true;

        if (m->engine && engine_find_run(m->engine, id))
                return false;
        if (store_query(m->store, &st, "SELECT state FROM runs WHERE id=?", "i", id) < 0)
                return true;
        if (sqlite3_step(st) == SQLITE_ROW)
                ended = run_state_is_final(
                        run_state_from_string((const char *) sqlite3_column_text(st, 0)));
        sqlite3_reset(st);
        return ended;
}

static int on_follow_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        LogFollow *f = userdata;

        (void) sd_journal_process(f->journal);
        log_follow_pump(f);
        return 0;
}

static int on_follow_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        LogFollow *f = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        (void) sd_journal_process(f->journal);
        log_follow_pump(f);
        if (!f->ended_usec && run_has_ended(f->m, f->run_id))
                f->ended_usec = now;
        /* The journal may get a unit's last lines a little after the unit ended. */
        if (f->ended_usec && now >= f->ended_usec + LOG_FOLLOW_GRACE_USEC) {
                f->finished = true;
                http_request_stream_wake(f->req);
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        (void) sd_event_source_set_time_relative(s, 250 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static ssize_t log_follow_read(HttpRequest *req, char *buf, size_t max, void *userdata)
{
        LogFollow *f = userdata;
        size_t n = MIN(max, f->len - f->off);

        if (n == 0) {
                log_follow_pump(f);
                n = MIN(max, f->len - f->off);
        }
        if (n == 0)
                return f->finished ? -1 : 0;
        memcpy(buf, f->buf + f->off, n);
        f->off += n;
        return (ssize_t) n;
}

static int route_runs_logs_follow(Manager *m, HttpRequest *req, int64_t id)
{
        LogFollow *f;
        int fd, r;

        f = new0(LogFollow, 1);
        if (!f)
                return -ENOMEM;
        f->m = m;
        f->req = req;
        f->run_id = id;
        r = run_journal_open(id, &f->journal);
        if (r < 0) {
                log_follow_free(f);
                return http_request_reply_error(req, 503, NULL, "cannot open the journal: %s",
                                                strerror(-r));
        }
        fd = sd_journal_get_fd(f->journal);
        if (fd >= 0)
                r = sd_event_add_io(m->event, &f->io_source, fd,
                                    (uint32_t) sd_journal_get_events(f->journal), on_follow_io,
                                    f);
        if (fd < 0 || r < 0)
                log_debug("Cannot watch the journal's fd, following by timer only.");
        r = sd_event_add_time_relative(m->event, &f->timer_source, CLOCK_MONOTONIC,
                                       250 * USEC_PER_MSEC, 0, on_follow_timer, f);
        if (r < 0) {
                log_follow_free(f);
                return r;
        }
        log_follow_pump(f);
        /* f is taken, and freed through log_follow_free() even on failure. */
        return http_request_reply_stream(req, 200, "application/x-ndjson", log_follow_read,
                                         log_follow_free, f);
}

static bool run_exists(Manager *m, int64_t id)
{
        sqlite3_stmt *st;
        bool found;

        if (store_query(m->store, &st, "SELECT 1 FROM runs WHERE id=?", "i", id) < 0)
                return true; /* let the journal answer */
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        return found;
}

int route_runs_logs(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *follow = http_request_query(req, "follow");
        sd_journal *j = NULL;
        json_object *lines;
        int64_t id;
        unsigned n = 0;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (!m->store)
                return engine_unavailable(req);
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad run id: %s", captures[0]);
        (void) http_request_add_log_field(req, "ARKEVENT_RUN=%" PRIi64, id);
        if (!run_exists(m, id))
                return http_request_reply_error(req, 404, NULL, "no run %" PRIi64, id);
        if (follow && (streq(follow, "1") || streq(follow, "true") || streq(follow, "yes")))
                return route_runs_logs_follow(m, req, id);
        if (follow && !streq(follow, "0") && !streq(follow, "false") && !streq(follow, "no"))
                return http_request_reply_error(req, 400, NULL,
                                                "follow must be 1 or 0, not \"%s\"", follow);

        r = run_journal_open(id, &j);
        if (r < 0)
                return http_request_reply_error(req, 503, NULL, "cannot open the journal: %s",
                                                strerror(-r));

        o = json_object_new_object();
        lines = json_object_new_array();
        json_object_object_add(o, "run", json_object_new_int64(id));
        json_object_object_add(o, "lines", lines);
        SD_JOURNAL_FOREACH(j) {
                json_object *e = log_entry_json(j);
                if (e)
                        json_object_array_add(lines, e);
                if (++n >= 10000)
                        break;
        }
        sd_journal_close(j);
        return http_request_reply_json(req, 200, o);
}
