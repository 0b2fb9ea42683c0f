/* SPDX-License-Identifier: MIT */
#pragma once

/* The REST API's route handlers. Each returns like an HttpHandler. */

#include "daemon/manager.h"
#include "http/http-server.h"

typedef int (*RouteHandler)(Manager *m, HttpRequest *req, char **captures);

/* Checks "Authorization: Bearer <api token>". Returns 0 when allowed, 1 when it has already
 * answered 401. */
int http_check_api_token(Manager *m, HttpRequest *req);

/* Parses the body as a JSON object (an empty body is {}). On error answers 400 with the parse
 * position and returns 1. */
int http_parse_json_body(HttpRequest *req, json_object **ret);

/* A positive integer id from a path segment; -EINVAL otherwise. */
int http_parse_id(const char *s, int64_t *ret);

/* Base URL for links in answers ("http://host:port"). */
const char *http_base_url(Manager *m);

int route_runs_create(Manager *m, HttpRequest *req, char **captures);
int route_runs_list(Manager *m, HttpRequest *req, char **captures);
int route_runs_get(Manager *m, HttpRequest *req, char **captures);
int route_runs_cancel(Manager *m, HttpRequest *req, char **captures);
int route_runs_logs(Manager *m, HttpRequest *req, char **captures);
int route_runs_deliveries(Manager *m, HttpRequest *req, char **captures);

int route_trigger_fire(Manager *m, HttpRequest *req, char **captures);
int route_triggers_list(Manager *m, HttpRequest *req, char **captures);
int route_triggers_get(Manager *m, HttpRequest *req, char **captures);
int route_topic_publish(Manager *m, HttpRequest *req, char **captures);

/* GET /metrics, in the Prometheus text format (http-metrics.c). */
int route_metrics(Manager *m, HttpRequest *req, char **captures);

/* Seed 001: pipelines (flows over REST) and their event triggers (http-pipelines.c). */
int route_pipelines_create(Manager *m, HttpRequest *req, char **captures);
int route_pipelines_list(Manager *m, HttpRequest *req, char **captures);
int route_pipelines_get(Manager *m, HttpRequest *req, char **captures);
int route_pipelines_update(Manager *m, HttpRequest *req, char **captures);
int route_pipelines_delete(Manager *m, HttpRequest *req, char **captures);
int route_events_start(Manager *m, HttpRequest *req, char **captures);
int route_events_get(Manager *m, HttpRequest *req, char **captures);
int route_events_delete(Manager *m, HttpRequest *req, char **captures);

/* Registers the engine listener that answers sync fires. */
int http_triggers_setup(Manager *m);
/* A trigger as GET /api/v1/triggers shows it: status with conditions, fire counts. */
json_object *trigger_status_json(Manager *m, const Trigger *t);

int route_workflows_create(Manager *m, HttpRequest *req, char **captures);
int route_workflows_list(Manager *m, HttpRequest *req, char **captures);
int route_workflows_get(Manager *m, HttpRequest *req, char **captures);
int route_workflow_activity_logs(Manager *m, HttpRequest *req, char **captures);
int route_workflow_artifacts_list(Manager *m, HttpRequest *req, char **captures);
int route_workflow_artifact_get(Manager *m, HttpRequest *req, char **captures);
int route_runs_events(Manager *m, HttpRequest *req, char **captures);

/* Workflows: runtimes from the configuration, the artifact and workspace listener, and the
 * listener behind GET /api/v1/runs/{id}/events. Called once the engine exists. */
int http_workflows_setup(Manager *m);
int http_events_setup(Manager *m);
