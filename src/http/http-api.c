/* SPDX-License-Identifier: MIT */
#include <unistd.h>

#include "build-config.h"
#include "engine/engine.h"
#include "http-api.h"
#include "http-routes.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/token.h"

typedef struct Route {
        const char *method;
        const char *pattern;
        RouteHandler handler;
} Route;

const char *http_base_url(Manager *m)
{
        return m->base_url;
}

int http_check_api_token(Manager *m, HttpRequest *req)
{
        const char *auth = http_request_header(req, "Authorization");
        const char *token = auth ? startswith(auth, "Bearer ") : NULL;

        /* ?token= as for webhooks: clients that cannot set headers (AkoFlow's own example sends
         * only Content-Type) put the token in the URL. */
        if (!token && !auth)
                token = http_request_query(req, "token");

        if (m->api_token && token && token_equal(token, m->api_token))
                return 0;
        (void) http_request_reply_error(req, 401, NULL,
                                        token ? "invalid API token"
                                              : "missing \"Authorization: Bearer <token>\" "
                                                "(see 'arkeventctl api-token')");
        return 1;
}

int http_parse_id(const char *s, int64_t *ret)
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

int http_parse_json_body(HttpRequest *req, json_object **ret)
{
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        size_t size;
        const char *body = http_request_body(req, &size);
        json_object *o;

        if (size == 0) {
                *ret = json_object_new_object();
                return *ret ? 0 : -ENOMEM;
        }
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, body, (int) size);
        if (!o || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != size) {
                _cleanup_(json_object_putp) json_object *extra = json_object_new_object();
                enum json_tokener_error e = json_tokener_get_error(tok);
                size_t pos = json_tokener_get_parse_end(tok);
                json_object_put(o);
                json_object_object_add(extra, "offset", json_object_new_int64((int64_t) pos));
                (void) http_request_reply_error(
                        req, 400, TAKE_PTR(extra), "malformed JSON body at offset %zu: %s", pos,
                        e == json_tokener_success ? "trailing data"
                        : e == json_tokener_continue ? "unexpected end of input"
                                                     : json_tokener_error_desc(e));
                return 1;
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                (void) http_request_reply_error(req, 400, NULL, "the body must be a JSON object");
                return 1;
        }
        *ret = o;
        return 0;
}

static int route_healthz(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        json_object_object_add(o, "status", json_object_new_string("ok"));
        json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
        json_object_object_add(o, "flows", json_object_new_int64((int64_t) m->registry->n_flows));
        json_object_object_add(o, "triggers",
                               json_object_new_int64((int64_t) m->registry->n_triggers));
        json_object_object_add(o, "runsActive", json_object_new_int64(manager_n_runs_active(m)));
        json_object_object_add(o, "unitsInFlight",
                               json_object_new_int64(m->engine ? engine_n_units_in_flight(m->engine)
                                                               : 0));
        json_object_object_add(o, "engine", json_object_new_boolean(m->engine != NULL));
        json_object_object_add(o, "reloads", json_object_new_int64(m->n_reloads));
        json_object_object_add(o, "httpConnections",
                               json_object_new_int64(m->http ? http_server_n_connections(m->http)
                                                             : 0));
        return http_request_reply_json(req, 200, o);
}

static int route_openapi(Manager *m, HttpRequest *req, char **captures)
{
        return http_request_reply(req, 200, "application/json", http_openapi_json,
                                  http_openapi_json_size, NULL);
}

static const Route routes[] = {
        { "GET", "/healthz", route_healthz },
        { "GET", "/metrics", route_metrics },
        { "GET", "/openapi.json", route_openapi },
        { "POST", "/api/v1/runs", route_runs_create },
        { "GET", "/api/v1/runs", route_runs_list },
        { "GET", "/api/v1/runs/{}", route_runs_get },
        { "DELETE", "/api/v1/runs/{}", route_runs_cancel },
        { "GET", "/api/v1/runs/{}/logs", route_runs_logs },
        { "POST", "/triggers/{}/{}/fire", route_trigger_fire },
        { "GET", "/api/v1/triggers", route_triggers_list },
        { "GET", "/api/v1/triggers/{}/{}", route_triggers_get },
        { "POST", "/api/v1/topics/{}/messages", route_topic_publish },
        { "POST", "/api/v1/pipelines", route_pipelines_create },
        { "GET", "/api/v1/pipelines", route_pipelines_list },
        { "GET", "/api/v1/pipelines/{}", route_pipelines_get },
        { "PUT", "/api/v1/pipelines/{}", route_pipelines_update },
        { "DELETE", "/api/v1/pipelines/{}", route_pipelines_delete },
        { "POST", "/api/v1/events/{}", route_events_start },
        { "GET", "/api/v1/events/{}", route_events_get },
        { "DELETE", "/api/v1/events/{}", route_events_delete },
        { "POST", "/workflows", route_workflows_create },
        { "GET", "/workflows", route_workflows_list },
        { "GET", "/workflows/{}", route_workflows_get },
        { "GET", "/workflows/{}/activities/{}/logs", route_workflow_activity_logs },
        { "GET", "/workflows/{}/artifacts", route_workflow_artifacts_list },
        { "GET", "/workflows/{}/artifacts/{**}", route_workflow_artifact_get },
        { "GET", "/api/v1/runs/{}/events", route_runs_events },
        { "GET", "/api/v1/runs/{}/deliveries", route_runs_deliveries },
};

bool http_api_route(size_t i, const char **ret_method, const char **ret_pattern)
{
        if (i >= ELEMENTSOF(routes))
                return false;
        *ret_method = routes[i].method;
        *ret_pattern = routes[i].pattern;
        return true;
}

#define MAX_CAPTURES 4

int http_api_handler(HttpRequest *req, void *userdata)
{
        Manager *m = userdata;
        const char *method = http_request_method(req), *path = http_request_path(req);
        bool path_known = false;
        int r;

        log_debug("HTTP %s %s from %s", method, path, http_request_peer(req));

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                char *captures[MAX_CAPTURES];

                if (!http_path_match(routes[i].pattern, path, captures, MAX_CAPTURES))
                        continue;
                path_known = true;
                if (!streq(routes[i].method, method)) {
                        for (size_t k = 0; k < MAX_CAPTURES; k++)
                                free(captures[k]);
                        continue;
                }
                r = routes[i].handler(m, req, captures);
                for (size_t k = 0; k < MAX_CAPTURES; k++)
                        free(captures[k]);
                return r;
        }

        if (path_known)
                return http_request_reply_error(req, 405, NULL, "method %s not allowed on %s",
                                                method, path);
        return http_request_reply_error(req, 404, NULL, "not found: %s", path);
}
