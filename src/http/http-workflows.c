/* SPDX-License-Identifier: MIT */
/* AkoFlow workflows over HTTP: POST /workflows with {"workflow": "<base64 YAML>"}, the list, one
 * workflow with its activities, an activity's logs from the journal, and artifacts. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "engine/artifacts.h"
#include "engine/engine.h"
#include "engine/run-view.h"
#include "engine/runtime.h"
#include "http-routes.h"
#include "model/loader.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define WORKFLOW_NAME "<workflow>"

static int check_auth(Manager *m, HttpRequest *req)
{
        if (!m->config.workflows_require_token)
                return 0;
        return http_check_api_token(m, req);
}

static int b64_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

/* Standard or URL-safe alphabet, padding optional, line breaks ignored. On error *ret_offset is
 * the offset of the offending character in the base64 text. */
static int base64_decode(const char *in, size_t len, char **ret, size_t *ret_len,
                         size_t *ret_offset, const char **ret_why)
{
        _cleanup_free_ char *out = malloc(len / 4 * 3 + 4);
        uint32_t acc = 0;
        size_t n = 0, o = 0, pad = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) in[i];
                int v;

                if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
                        continue;
                if (c == '=') {
                        pad++;
                        continue;
                }
                v = b64_value(c);
                if (v < 0 || pad > 0) {
                        *ret_offset = i;
                        *ret_why = pad > 0 ? "data after padding" : "not a base64 character";
                        return -EBADMSG;
                }
                acc = (acc << 6) | (uint32_t) v;
                if (++n == 4) {
                        out[o++] = (char) (acc >> 16);
                        out[o++] = (char) (acc >> 8);
                        out[o++] = (char) acc;
                        n = 0;
                        acc = 0;
                }
        }
        if (n == 1 || pad > 2 || (pad > 0 && n + pad != 4)) {
                *ret_offset = len;
                *ret_why = "truncated (length is not a multiple of 4)";
                return -EBADMSG;
        }
        if (n == 2)
                out[o++] = (char) (acc >> 4);
        else if (n == 3) {
                out[o++] = (char) (acc >> 10);
                out[o++] = (char) (acc >> 2);
        }
        out[o] = 0;
        if (memchr(out, 0, o)) {
                *ret_offset = 0;
                *ret_why = "the decoded text contains NUL bytes (not YAML)";
                return -EBADMSG;
        }
        *ret_len = o;
        *ret = TAKE_PTR(out);
        return 0;
}

static json_object *problem_new(unsigned line, unsigned column, const char *message)
{
        json_object *e = json_object_new_object();
        if (!e)
                return NULL;
        json_object_object_add(e, "line", json_object_new_int((int) line));
        json_object_object_add(e, "column", json_object_new_int((int) column));
        json_object_object_add(e, "message", json_object_new_string(message));
        return e;
}

/* Runtimes are the host's configuration, not the loader's: checked here, with the position of
 * the runtime: key that names them. */
static int check_runtimes(const Flow *f, const char *text, json_object *errors)
{
        _cleanup_free_ char *known = runtimes_known_names();
        unsigned first_step_line = f->n_steps > 0 ? f->steps[0].loc.line : 0;
        Runtime rt;

        if (!known)
                return -ENOMEM;
        if (f->runtime && runtime_lookup(f->runtime, &rt) < 0) {
                _cleanup_free_ char *msg = NULL;
                unsigned line = 1, col = 1;
                if (!text_find_key(text, 1, first_step_line, "runtime", &line, &col))
                        (void) text_find_key(text, 1, 0, "runtime", &line, &col);
                if (asprintf(&msg, "spec.runtime: unknown runtime '%s' (known: %s; map it in "
                                   "runtimes: of arkevent.yaml)",
                             f->runtime, known) < 0)
                        return -ENOMEM;
                json_object_array_add(errors, problem_new(line, col + 9, msg));
        }
        for (size_t i = 0; i < f->n_steps; i++) {
                const Step *s = &f->steps[i];
                _cleanup_free_ char *msg = NULL;
                unsigned line = s->loc.line, col = s->loc.column;

                if (!s->runtime || runtime_lookup(s->runtime, &rt) >= 0)
                        continue;
                if (text_find_key(text, s->loc.line,
                             i + 1 < f->n_steps ? f->steps[i + 1].loc.line : 0, "runtime",
                             &line, &col))
                        col += 9;
                if (asprintf(&msg, "activities[%zu] (%s): unknown runtime '%s' (known: %s)", i,
                             s->name, s->runtime, known) < 0)
                        return -ENOMEM;
                json_object_array_add(errors, problem_new(line, col, msg));
        }
        return 0;
}

static int reply_problems(HttpRequest *req, json_object *errors, const char *what)
{
        _cleanup_(json_object_putp) json_object *extra = json_object_new_object();
        size_t n = json_object_array_length(errors);
        json_object *first = json_object_array_get_idx(errors, 0);

        if (!extra)
                return -ENOMEM;
        json_object_object_add(extra, "errors", json_object_get(errors));
        return http_request_reply_error(
                req, 400, TAKE_PTR(extra), "%s: %zu problem%s, first at %i:%i: %s", what, n,
                n == 1 ? "" : "s", json_object_get_int(json_object_object_get(first, "line")),
                json_object_get_int(json_object_object_get(first, "column")),
                json_object_get_string(json_object_object_get(first, "message")));
}

typedef struct WorkflowReply {
        HttpRequest *req;
        Manager *m;
        int64_t run_id;
} WorkflowReply;

static json_object *workflow_row(sqlite3_stmt *st, const char *base_url);

static void on_workflow_committed(Store *s, int error, void *userdata)
{
        _cleanup_free_ WorkflowReply *c = userdata;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *msg = NULL;
        sqlite3_stmt *st;

        if (error < 0) {
                (void) http_request_reply_error(c->req, 503, NULL,
                                                "the workflow could not be stored: %s",
                                                strerror(-error));
                return;
        }
        if (store_query(s, &st,
                        "SELECT id, flow, namespace, state, created_usec, started_usec, "
                        "finished_usec, error FROM runs WHERE id=?",
                        "i", c->run_id) < 0 ||
            sqlite3_step(st) != SQLITE_ROW) {
                (void) http_request_reply_error(c->req, 500, NULL, "the workflow vanished");
                return;
        }
        o = workflow_row(st, http_base_url(c->m));
        sqlite3_reset(st);
        if (!o || asprintf(&msg, "workflow %s accepted as run %" PRIi64,
                           json_object_get_string(json_object_object_get(o, "name")),
                           c->run_id) < 0) {
                (void) http_request_reply_error(c->req, 500, NULL, "out of memory");
                return;
        }
        json_object_object_add(o, "message", json_object_new_string(msg));
        (void) http_request_reply_json(c->req, 202, o);
}

int route_workflows_create(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *body = NULL, *errors = NULL;
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_free_ char *yaml = NULL;
        ResourceDoc **docs = NULL;
        size_t n_docs = 0, yaml_len = 0, off = 0;
        const char *why = NULL;
        json_object *jw;
        ResourceDoc *doc = NULL;
        WorkflowReply *c;
        Run *run;
        int r;

        if (check_auth(m, req))
                return 0;
        if (!m->engine)
                return http_request_reply_error(req, 503, NULL,
                                                "the flow engine is not available (no connection "
                                                "to systemd on the system bus)");
        if (http_parse_json_body(req, &body))
                return 0;
        if (!json_object_object_get_ex(body, "workflow", &jw) ||
            !json_object_is_type(jw, json_type_string))
                return http_request_reply_error(req, 400, NULL,
                                                "\"workflow\" must be a string: the workflow's "
                                                "YAML, base64-encoded");

        r = base64_decode(json_object_get_string(jw), (size_t) json_object_get_string_len(jw),
                          &yaml, &yaml_len, &off, &why);
        if (r == -EBADMSG) {
                _cleanup_(json_object_putp) json_object *extra = json_object_new_object();
                _cleanup_free_ char *msg = NULL;
                const char *b64 = json_object_get_string(jw);
                unsigned line = 1, col = 1;
                json_object *list;

                /* There is no YAML yet: the position is in the base64 text (which may be broken
                 * into lines, as MIME tools do). */
                for (size_t i = 0; i < off && b64[i]; i++) {
                        if (b64[i] == '\n') {
                                line++;
                                col = 1;
                        } else
                                col++;
                }
                list = json_object_new_array();
                if (!extra || !list ||
                    asprintf(&msg, "\"workflow\" is not valid base64: %s", why) < 0) {
                        json_object_put(list);
                        return -ENOMEM;
                }
                json_object_array_add(list, problem_new(line, col, msg));
                json_object_object_add(extra, "errors", list);
                json_object_object_add(extra, "offset", json_object_new_int64((int64_t) off));
                return http_request_reply_error(req, 400, TAKE_PTR(extra),
                                                "\"workflow\" is not valid base64 at %u:%u "
                                                "(offset %zu): %s",
                                                line, col, off, why);
        }
        if (r < 0)
                return r;

        errors = json_object_new_array();
        if (!errors)
                return -ENOMEM;
        r = resource_text_parse(WORKFLOW_NAME, yaml, yaml_len, &docs, &n_docs, &diags);
        if (r < 0)
                return r;

        diag_sort(&diags);
        for (size_t i = 0; i < diags.n; i++)
                if (diags.items[i].severity == DIAG_ERROR)
                        json_object_array_add(errors, problem_new(diags.items[i].line,
                                                                  diags.items[i].column,
                                                                  diags.items[i].message));
        for (size_t i = 0; i < n_docs && json_object_array_length(errors) == 0; i++) {
                if (docs[i]->unreadable)
                        continue;
                if (doc) {
                        json_object_array_add(errors,
                                              problem_new(docs[i]->loc.line, docs[i]->loc.column,
                                                          "one workflow per submission: a "
                                                          "second document starts here"));
                        break;
                }
                doc = docs[i];
        }
        if (json_object_array_length(errors) == 0) {
                if (!doc || (!doc->flow && !doc->trigger))
                        json_object_array_add(errors,
                                              problem_new(1, 1, "the workflow is empty: expected "
                                                                "name and spec.activities"));
                else if (!doc->flow)
                        json_object_array_add(errors,
                                              problem_new(doc->loc.line, doc->loc.column,
                                                          "expected a workflow (name and "
                                                          "spec.activities), not a trigger"));
                else
                        r = check_runtimes(doc->flow, yaml, errors);
        }
        if (r < 0 || json_object_array_length(errors) > 0) {
                resource_docs_free(docs, n_docs);
                return r < 0 ? r : reply_problems(req, errors, "invalid workflow");
        }

        r = engine_submit(m->engine, doc->flow, NULL, NULL, NULL, &run);
        resource_docs_free(docs, n_docs);
        if (r == -ENOBUFS)
                return http_request_reply_error(req, 429, NULL,
                                                "the run queue is full, try again later");
        if (r < 0)
                return r;
        /* The submission as it came: what WORKFLOW_DONE carries as RawWorkflow. */
        r = store_exec(engine_store(m->engine), NULL, "UPDATE runs SET raw_yaml=? WHERE id=?",
                       "si", yaml, run->id);
        if (r < 0)
                return r;
        log_info("Workflow %s/%s submitted from %s as run %" PRIi64 ".", run->ns,
                 run->flow_name, http_request_peer(req), run->id);

        c = new0(WorkflowReply, 1);
        if (!c)
                return -ENOMEM;
        *c = (WorkflowReply){ req, m, run->id };
        r = store_on_commit(engine_store(m->engine), on_workflow_committed, c);
        if (r < 0) {
                free(c);
                return r;
        }
        return HTTP_SUSPENDED;
}

static void add_time(json_object *o, const char *key, sqlite3_stmt *st, int col)
{
        char buf[32];
        int64_t v = sqlite3_column_int64(st, col);
        json_object_object_add(o, key,
                               v > 0 ? json_object_new_string(format_rfc3339(buf, (uint64_t) v,
                                                                             true))
                                     : NULL);
}

/* id, flow, namespace, state, created, started, finished, error */
static json_object *workflow_row(sqlite3_stmt *st, const char *base_url)
{
        json_object *o = json_object_new_object();
        int64_t id = sqlite3_column_int64(st, 0), a, b;
        const char *err = (const char *) sqlite3_column_text(st, 7);
        char url[512];

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "name",
                               json_object_new_string((const char *) sqlite3_column_text(st, 1)));
        json_object_object_add(o, "namespace",
                               json_object_new_string((const char *) sqlite3_column_text(st, 2)));
        json_object_object_add(o, "status",
                               json_object_new_string((const char *) sqlite3_column_text(st, 3)));
        add_time(o, "createdAt", st, 4);
        add_time(o, "startedAt", st, 5);
        add_time(o, "finishedAt", st, 6);
        a = sqlite3_column_int64(st, 5);
        b = sqlite3_column_int64(st, 6);
        json_object_object_add(o, "durationMs",
                               a > 0 && b >= a ? json_object_new_int64((b - a) / 1000) : NULL);
        json_object_object_add(o, "error", err ? json_object_new_string(err) : NULL);
        snprintf(url, sizeof(url), "%s/workflows/%" PRIi64, strempty(base_url), id);
        json_object_object_add(o, "url", json_object_new_string(url));
        return o;
}

int route_workflows_list(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *limit_s = http_request_query(req, "limit"),
                   *status = http_request_query(req, "status");
        unsigned limit = limit_s ? (unsigned) strtoul(limit_s, NULL, 10) : 100;
        json_object *items;
        sqlite3_stmt *st;
        int r;

        if (check_auth(m, req))
                return 0;
        if (!o)
                return -ENOMEM;
        if (!m->store)
                return http_request_reply_error(req, 503, NULL, "the store is not available");
        if (limit == 0 || limit > 1000)
                limit = 100;
        r = store_query(m->store, &st,
                        "SELECT id, flow, namespace, state, created_usec, started_usec, "
                        "finished_usec, error FROM runs WHERE kind='Workflow' AND "
                        "(?1 IS NULL OR state=?1) ORDER BY id DESC LIMIT ?2",
                        "si", status, (int64_t) limit);
        if (r < 0)
                return r;
        items = json_object_new_array();
        json_object_object_add(o, "workflows", items);
        while (sqlite3_step(st) == SQLITE_ROW)
                json_object_array_add(items, workflow_row(st, http_base_url(m)));
        sqlite3_reset(st);
        return http_request_reply_json(req, 200, o);
}

int route_workflows_get(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *acts, *v;
        char url[1024];
        int64_t id;
        int r;

        if (check_auth(m, req))
                return 0;
        if (!m->store)
                return http_request_reply_error(req, 503, NULL, "the store is not available");
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad workflow id: %s",
                                                captures[0]);
        r = run_view_get(m->store, id, http_base_url(m), &o);
        if (r == -ENOENT)
                return http_request_reply_error(req, 404, NULL, "no workflow %" PRIi64, id);
        if (r < 0)
                return r;

        /* The AkoFlow view: "status" beside "state", and links. */
        if (json_object_object_get_ex(o, "flow", &v))
                json_object_object_add(o, "workflow", json_object_get(v));
        if (json_object_object_get_ex(o, "state", &v))
                json_object_object_add(o, "status", json_object_get(v));
        snprintf(url, sizeof(url), "%s/workflows/%" PRIi64 "/artifacts", http_base_url(m), id);
        json_object_object_add(o, "artifacts", json_object_new_string(url));
        snprintf(url, sizeof(url), "%s/api/v1/runs/%" PRIi64 "/events", http_base_url(m), id);
        json_object_object_add(o, "events", json_object_new_string(url));
        if (json_object_object_get_ex(o, "activities", &acts))
                for (size_t i = 0; i < json_object_array_length(acts); i++) {
                        json_object *a = json_object_array_get_idx(acts, i);
                        if (json_object_object_get_ex(a, "state", &v))
                                json_object_object_add(a, "status", json_object_get(v));
                        if (!json_object_object_get_ex(a, "name", &v))
                                continue;
                        snprintf(url, sizeof(url), "%s/workflows/%" PRIi64 "/activities/%s/logs",
                                 http_base_url(m), id, json_object_get_string(v));
                        json_object_object_add(a, "logs", json_object_new_string(url));
                }
        return http_request_reply_json(req, 200, o);
}

static bool run_exists(Store *s, int64_t id, char **ret_state)
{
        sqlite3_stmt *st;
        bool found;

        if (store_query(s, &st, "SELECT state FROM runs WHERE id=?", "i", id) < 0)
                return false;
        found = sqlite3_step(st) == SQLITE_ROW;
        if (found && ret_state)
                *ret_state = store_column_strdup(st, 0);
        sqlite3_reset(st);
        return found;
}

int route_workflow_activity_logs(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        _cleanup_free_ char *m1 = NULL, *m2 = NULL, *text = NULL;
        const char *format = http_request_query(req, "format");
        bool as_text = streq_ptr(format, "text");
        size_t text_len = 0;
        FILE *tf = NULL;
        json_object *lines;
        sqlite3_stmt *st;
        unsigned n = 0;
        int64_t id;
        bool known;
        int r;

        if (check_auth(m, req))
                return 0;
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad workflow id: %s",
                                                captures[0]);
        if (!m->store || !run_exists(m->store, id, NULL))
                return http_request_reply_error(req, 404, NULL, "no workflow %" PRIi64, id);
        r = store_query(m->store, &st, "SELECT 1 FROM activities WHERE run_id=? AND name=?", "is",
                        id, captures[1]);
        if (r < 0)
                return r;
        known = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        if (!known)
                return http_request_reply_error(req, 404, NULL,
                                                "workflow %" PRIi64 " has no activity %s", id,
                                                captures[1]);

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0)
                return http_request_reply_error(req, 503, NULL, "cannot open the journal: %s",
                                                strerror(-r));
        if (asprintf(&m1, "ARKEVENT_RUN=%" PRIi64, id) < 0 ||
            asprintf(&m2, "ARKEVENT_ACTIVITY=%s", captures[1]) < 0)
                return -ENOMEM;
        r = sd_journal_add_match(j, m1, 0);
        if (r >= 0)
                r = sd_journal_add_match(j, m2, 0);
        if (r < 0)
                return r;

        o = json_object_new_object();
        lines = json_object_new_array();
        if (!o || !lines) {
                json_object_put(lines);
                return -ENOMEM;
        }
        json_object_object_add(o, "workflow", json_object_new_int64(id));
        json_object_object_add(o, "activity", json_object_new_string(captures[1]));
        json_object_object_add(o, "lines", lines);
        if (as_text) {
                tf = open_memstream(&text, &text_len);
                if (!tf)
                        return -ENOMEM;
        }
        SD_JOURNAL_FOREACH(j) {
                const void *d;
                size_t l;
                uint64_t t;
                char ts[32];
                bool step;
                json_object *e;

                /* The step's own output, and the daemon's notes about the activity. */
                step = sd_journal_get_data(j, "_SYSTEMD_UNIT", &d, &l) >= 0 && l > 14 &&
                       strncmp((const char *) d + 14, "arkevent-", 9) == 0;
                if (sd_journal_get_data(j, "MESSAGE", &d, &l) < 0 || l < 8)
                        continue;
                if (tf) {
                        fprintf(tf, "%.*s\n", (int) l - 8, (const char *) d + 8);
                        continue;
                }
                e = json_object_new_object();
                if (sd_journal_get_realtime_usec(j, &t) >= 0)
                        json_object_object_add(e, "time",
                                               json_object_new_string(format_rfc3339(ts, t, true)));
                json_object_object_add(e, "source",
                                       json_object_new_string(step ? "step" : "arkevent"));
                json_object_object_add(e, "message",
                                       json_object_new_string_len((const char *) d + 8,
                                                                  (int) l - 8));
                if (sd_journal_get_data(j, "_SYSTEMD_UNIT", &d, &l) >= 0 && l > 14)
                        json_object_object_add(e, "unit",
                                               json_object_new_string_len((const char *) d + 14,
                                                                          (int) l - 14));
                json_object_array_add(lines, e);
                if (++n >= 10000)
                        break;
        }
        if (tf) {
                fclose(tf);
                return http_request_reply(req, 200, "text/plain; charset=utf-8", text, text_len,
                                          NULL);
        }
        return http_request_reply_json(req, 200, o);
}

int route_workflow_artifacts_list(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *items;
        sqlite3_stmt *st;
        char buf[32];
        int64_t id;
        int r;

        if (check_auth(m, req))
                return 0;
        if (!o)
                return -ENOMEM;
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad workflow id: %s",
                                                captures[0]);
        if (!m->store || !run_exists(m->store, id, NULL))
                return http_request_reply_error(req, 404, NULL, "no workflow %" PRIi64, id);
        r = store_query(m->store, &st,
                        "SELECT path, size, sha256, activity, mtime_usec FROM artifacts WHERE "
                        "run_id=? ORDER BY path",
                        "i", id);
        if (r < 0)
                return r;
        json_object_object_add(o, "workflow", json_object_new_int64(id));
        items = json_object_new_array();
        json_object_object_add(o, "artifacts", items);
        while (sqlite3_step(st) == SQLITE_ROW) {
                json_object *a = json_object_new_object();
                const char *path = (const char *) sqlite3_column_text(st, 0);
                _cleanup_free_ char *url = NULL;

                json_object_object_add(a, "path", json_object_new_string(path));
                json_object_object_add(a, "size",
                                       json_object_new_int64(sqlite3_column_int64(st, 1)));
                json_object_object_add(a, "sha256",
                                       json_object_new_string(
                                               (const char *) sqlite3_column_text(st, 2)));
                json_object_object_add(a, "activity",
                                       sqlite3_column_text(st, 3)
                                               ? json_object_new_string((const char *)
                                                                                sqlite3_column_text(
                                                                                        st, 3))
                                               : NULL);
                json_object_object_add(a, "modifiedAt",
                                       json_object_new_string(format_rfc3339(
                                               buf, (uint64_t) sqlite3_column_int64(st, 4), true)));
                if (asprintf(&url, "%s/workflows/%" PRIi64 "/artifacts/%s", http_base_url(m), id,
                             path) >= 0)
                        json_object_object_add(a, "url", json_object_new_string(url));
                json_object_array_add(items, a);
        }
        sqlite3_reset(st);
        return http_request_reply_json(req, 200, o);
}

int route_workflow_artifact_get(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_free_ char *workspace = NULL, *sha = NULL, *disp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *path = captures[1], *base;
        sqlite3_stmt *st;
        struct stat stt;
        int64_t id;
        int r;

        if (check_auth(m, req))
                return 0;
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad workflow id: %s",
                                                captures[0]);
        if (artifact_path_check(path) < 0)
                return http_request_reply_error(req, 400, NULL,
                                                "bad artifact path '%s': it must stay inside the "
                                                "workspace (no '..', '.', empty or absolute "
                                                "components)",
                                                path);
        if (!m->store || !run_exists(m->store, id, NULL))
                return http_request_reply_error(req, 404, NULL, "no workflow %" PRIi64, id);
        r = store_query(m->store, &st, "SELECT sha256 FROM artifacts WHERE run_id=? AND path=?",
                        "is", id, path);
        if (r < 0)
                return r;
        if (sqlite3_step(st) == SQLITE_ROW)
                sha = store_column_strdup(st, 0);
        sqlite3_reset(st);
        if (!sha)
                return http_request_reply_error(req, 404, NULL,
                                                "workflow %" PRIi64 " has no artifact %s", id,
                                                path);

        if (asprintf(&workspace, "%s/runs/%" PRIi64 "/workspace", m->config.state_dir, id) < 0)
                return -ENOMEM;
        r = artifact_open(workspace, path, &fd);
        if (r == -EXDEV || r == -ELOOP || r == -EINVAL)
                return http_request_reply_error(req, 400, NULL,
                                                "artifact path '%s' leads out of the workspace "
                                                "(%s)",
                                                path, strerror(-r));
        if (r == -ENOENT || r == -EISDIR || r == -ENOTDIR)
                return http_request_reply_error(req, 404, NULL,
                                                "artifact %s of workflow %" PRIi64
                                                " is no longer in the workspace",
                                                path, id);
        if (r < 0)
                return r;
        if (fstat(fd, &stt) < 0)
                return -errno;
        base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        if (asprintf(&disp, "attachment; filename=\"%s\"", base) < 0)
                return -ENOMEM;
        for (char *p = disp + 22; *p && p[1]; p++)
                if (*p == '"' || *p == '\\' || (unsigned char) *p < 0x20)
                        *p = '_';
        const char *headers[] = { "Content-Disposition", disp, "X-Arkevent-Sha256", sha, NULL };
        return http_request_reply_fd(req, 200, "application/octet-stream", TAKE_FD(fd),
                                     (uint64_t) stt.st_size, headers);
}

int http_workflows_setup(Manager *m)
{
        int r;

        runtimes_use_config(&m->config);
        r = artifacts_watch(m->engine);
        if (r < 0)
                return r;
        return http_events_setup(m);
}
