/* SPDX-License-Identifier: MIT */
#include "build-config.h"
#include "daemon/manager.h"
#include "http-api.h"
#include "shared/json-util.h"
#include "shared/log.h"

typedef int (*RouteHandler)(Manager *m, HttpRequest *req, char **captures);

typedef struct Route {
        const char *method;
        const char *pattern;
        RouteHandler handler;
} Route;

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
        json_object_object_add(o, "runsActive", json_object_new_int64(m->n_runs_active));
        json_object_object_add(o, "reloads", json_object_new_int64(m->n_reloads));
        return http_request_reply_json(req, 200, o);
}

static const Route routes[] = {
        { "GET", "/healthz", route_healthz },
};

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
