/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <systemd/sd-journal.h>

#include "engine/engine.h"
#include "engine/run-view.h"
#include "http-routes.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

static int parse_run_id(const char *s, int64_t *ret)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end || v <= 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

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
        if (before && parse_run_id(before, &f.before_id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad \"before\": %s", before);
        if (limit)
                f.limit = (unsigned) strtoul(limit, NULL, 10);

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
        if (parse_run_id(captures[0], &id) < 0)
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
        if (parse_run_id(captures[0], &id) < 0)
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

int route_runs_logs(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        sd_journal *j = NULL;
        json_object *lines;
        char match[64];
        int64_t id;
        unsigned n = 0;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (parse_run_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad run id: %s", captures[0]);

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0)
                return http_request_reply_error(req, 503, NULL, "cannot open the journal: %s",
                                                strerror(-r));
        snprintf(match, sizeof(match), "ARKEVENT_RUN=%" PRIi64, id);
        r = sd_journal_add_match(j, match, 0);
        if (r < 0) {
                sd_journal_close(j);
                return r;
        }

        o = json_object_new_object();
        lines = json_object_new_array();
        json_object_object_add(o, "run", json_object_new_int64(id));
        json_object_object_add(o, "lines", lines);
        SD_JOURNAL_FOREACH(j) {
                const void *d;
                size_t l;
                uint64_t t;
                char ts[32];
                json_object *e = json_object_new_object();

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
                json_object_array_add(lines, e);
                if (++n >= 10000)
                        break;
        }
        sd_journal_close(j);
        return http_request_reply_json(req, 200, o);
}
