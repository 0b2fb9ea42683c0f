/* SPDX-License-Identifier: MIT */
/* Seed 001's Events API: pipelines are flows created over REST as JSON, and a pipeline's event
 * trigger runs it for every message on the topic named by its options.event.
 *
 * A pipeline is kept as its JSON document (STATE/pipelines/ID.json, every version also as
 * ID.vN.json) and as the flow made of it (an ArkFlow document among the submitted resources,
 * STATE/resources/, named ID). Its event trigger is a topic trigger there too, "event-ID",
 * targeting the flow (or a flow pinned to one version, "ID-vN"). So the registry, the engine
 * and the topics treat them like any other flow and trigger, and they survive restarts; the
 * daemon may exit when idle and the next message wakes it through the socket (scale to zero). */

#include <dirent.h>
#include <inttypes.h>
#include <unistd.h>

#include "http-routes.h"
#include "model/loader.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/token.h"

#define PIPELINE_NS "default"

/* Members of a pipeline document that are not the flow's: the rest is the flow's spec. */
static const char *const pipeline_own_keys[] = { "id",        "name",      "description",
                                                 "version",   "createdAt", "updatedAt",
                                                 NULL };

static bool pipeline_id_valid(const char *id)
{
        size_t n = id ? strlen(id) : 0;

        if (n == 0 || n > 60 || id[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') ||
                      id[i] == '-'))
                        return false;
        return true;
}

static int pipeline_path(Manager *m, const char *id, unsigned version, char **ret)
{
        if (version > 0)
                return asprintf(ret, "%s/pipelines/%s.v%u.json", m->config.state_dir, id,
                                version) < 0
                               ? -ENOMEM
                               : 0;
        return asprintf(ret, "%s/pipelines/%s.json", m->config.state_dir, id) < 0 ? -ENOMEM : 0;
}

static int resource_path(Manager *m, const char *kind, const char *name, char **ret)
{
        return manager_submitted_path(m, PIPELINE_NS, kind, name, ret);
}

/* Stores version `version` of pipeline id (doc) and its flow; the version first, the current
 * document last, so that what is current always exists. */
static int pipeline_write(Manager *m, const char *id, unsigned version, const char *doc,
                          const char *flow)
{
        _cleanup_free_ char *pdir = NULL, *rdir = NULL, *vpath = NULL, *fpath = NULL,
                            *cpath = NULL;
        int r;

        if (asprintf(&pdir, "%s/pipelines", m->config.state_dir) < 0 ||
            manager_submitted_path(m, NULL, NULL, NULL, &rdir) < 0 ||
            pipeline_path(m, id, version, &vpath) < 0 || resource_path(m, "ArkFlow", id, &fpath) < 0 ||
            pipeline_path(m, id, 0, &cpath) < 0)
                return -ENOMEM;
        r = mkdir_p(pdir, 0700);
        if (r >= 0)
                r = mkdir_p(rdir, 0700);
        if (r >= 0)
                r = write_file_atomic(vpath, doc, 0600);
        if (r >= 0)
                r = write_file_atomic(fpath, flow, 0600);
        if (r >= 0)
                r = write_file_atomic(cpath, doc, 0600);
        return r;
}

/* Reads version (0: the current one) of pipeline id. -ENOENT when there is none. */
static int pipeline_load(Manager *m, const char *id, unsigned version, json_object **ret)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        json_object *o;
        int r;

        if (!pipeline_id_valid(id))
                return -ENOENT;
        r = pipeline_path(m, id, version, &path);
        if (r < 0)
                return r;
        r = read_file_capped(path, 4 * 1024 * 1024, &text, NULL);
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

static const char *pipeline_string(json_object *p, const char *key)
{
        json_object *v = NULL;
        return json_object_object_get_ex(p, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static unsigned pipeline_version(json_object *p)
{
        json_object *v = NULL;
        return json_object_object_get_ex(p, "version", &v) ? (unsigned) json_object_get_int(v)
                                                            : 0;
}

/* The ArkFlow document of pipeline p, as flow `name`: p without its own members is the spec. */
static char *flow_text(json_object *p, const char *name)
{
        json_object *doc = json_object_new_object(), *meta = json_object_new_object(),
                    *spec = json_object_new_object();
        char *text;

        if (!doc || !meta || !spec) {
                json_object_put(doc);
                json_object_put(meta);
                json_object_put(spec);
                return NULL;
        }
        json_object_object_foreach(p, k, v) {
                bool own = false;
                for (const char *const *o = pipeline_own_keys; *o; o++)
                        own = own || streq(*o, k);
                if (!own)
                        json_object_object_add(spec, k, json_object_get(v));
        }
        json_object_object_add(meta, "name", json_object_new_string(name));
        json_object_object_add(meta, "namespace", json_object_new_string(PIPELINE_NS));
        json_object_object_add(doc, "kind", json_object_new_string("ArkFlow"));
        json_object_object_add(doc, "metadata", meta);
        json_object_object_add(doc, "spec", spec);
        /* JSON is YAML: the loader reads it as any other document. */
        text = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(doc);
        return text;
}

/* Checks a flow document as the loader would; the problems as a JSON array of messages. */
static int flow_check(const char *text, json_object **ret_errors)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        ResourceDoc **docs = NULL;
        size_t n_docs = 0;
        int r;

        r = resource_text_parse("<pipeline>", text, strlen(text), &docs, &n_docs, &diags);
        resource_docs_free(docs, n_docs);
        if (r < 0)
                return r;
        if (diags.n_errors == 0)
                return 0;
        *ret_errors = json_object_new_array();
        for (size_t i = 0; *ret_errors && i < diags.n; i++)
                if (diags.items[i].severity == DIAG_ERROR)
                        json_object_array_add(*ret_errors,
                                              json_object_new_string(diags.items[i].message));
        return -EINVAL;
}

static int reply_reload_failed(HttpRequest *req, int r)
{
        return http_request_reply_error(req, 500, NULL, "stored, but the reload failed: %s",
                                        strerror(-r));
}

/* Applies what was just written (a reload) and answers 200 {"message": message}. */
static int reload_and_reply(Manager *m, HttpRequest *req, const char *message)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = manager_reload(m);
        if (r < 0)
                return reply_reload_failed(req, r);
        json_object_object_add(o, "message", json_object_new_string(message));
        return http_request_reply_json(req, 200, o);
}

/* Validates the body of a POST or PUT and stores it as version `version` of pipeline id. */
static int pipeline_store(Manager *m, HttpRequest *req, const char *id, unsigned version,
                          const char *created_at, json_object **ret)
{
        _cleanup_(json_object_putp) json_object *body = NULL, *errors = NULL;
        _cleanup_free_ char *flow = NULL;
        json_object *steps = NULL;
        char ts[32];
        int r;

        if (http_parse_json_body(req, &body))
                return 0;
        if (!pipeline_string(body, "name"))
                return http_request_reply_error(req, 400, NULL,
                                                "a pipeline needs a \"name\" (a string)");
        if (!json_object_object_get_ex(body, "steps", &steps) ||
            !json_object_is_type(steps, json_type_array) || json_object_array_length(steps) == 0)
                return http_request_reply_error(req, 400, NULL,
                                                "a pipeline needs \"steps\" (a non-empty array)");

        format_rfc3339(ts, now_usec(CLOCK_REALTIME), true);
        json_object_object_add(body, "id", json_object_new_string(id));
        json_object_object_add(body, "version", json_object_new_int((int) version));
        json_object_object_add(body, "createdAt", json_object_new_string(created_at ?: ts));
        json_object_object_add(body, "updatedAt", json_object_new_string(ts));

        flow = flow_text(body, id);
        if (!flow)
                return -ENOMEM;
        r = flow_check(flow, &errors);
        if (r == -EINVAL) {
                json_object *extra = json_object_new_object();
                json_object_object_add(extra, "errors", TAKE_PTR(errors));
                return http_request_reply_error(req, 400, extra, "invalid pipeline");
        }
        if (r < 0)
                return r;

        r = pipeline_write(m, id, version,
                           json_object_to_json_string_ext(body, JSON_C_TO_STRING_PRETTY |
                                                                        JSON_C_TO_STRING_NOSLASHESCAPE),
                           flow);
        if (r < 0)
                return http_request_reply_error(req, 500, NULL, "cannot store the pipeline: %s",
                                                strerror(-r));
        log_info("Pipeline %s (%s) stored, version %u.", id, pipeline_string(body, "name"),
                 version);
        r = manager_reload(m);
        if (r < 0)
                return reply_reload_failed(req, r);
        *ret = TAKE_PTR(body);
        return 1;
}

int route_pipelines_create(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *p = NULL;
        _cleanup_free_ char *token = NULL, *id = NULL;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        r = token_generate(&token);
        if (r < 0)
                return r;
        if (asprintf(&id, "pipeline-%.8s", token) < 0)
                return -ENOMEM;
        r = pipeline_store(m, req, id, 1, NULL, &p);
        if (r <= 0)
                return r;
        return http_request_reply_json(req, 201, p);
}

static int json_compare_created_at(const void *a, const void *b)
{
        json_object *x = *(json_object *const *) a, *y = *(json_object *const *) b;
        return strcmp(strempty(pipeline_string(x, "createdAt")),
                      strempty(pipeline_string(y, "createdAt")));
}

int route_pipelines_list(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        _cleanup_free_ char *dir = NULL;
        json_object *list = json_object_new_array();
        DIR *d;

        if (http_check_api_token(m, req)) {
                json_object_put(list);
                return 0;
        }
        if (!o || !list || asprintf(&dir, "%s/pipelines", m->config.state_dir) < 0) {
                json_object_put(list);
                return -ENOMEM;
        }
        json_object_object_add(o, "pipelines", list);
        d = opendir(dir);
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *id = NULL;
                const char *dot = strrchr(de->d_name, '.');
                json_object *p = NULL;

                /* ID.json, not the versions (ID.vN.json). */
                if (!dot || !streq(dot, ".json"))
                        continue;
                id = strndup(de->d_name, (size_t) (dot - de->d_name));
                if (!id || strchr(id, '.') || pipeline_load(m, id, 0, &p) < 0)
                        continue;
                json_object_array_add(list, p);
        }
        if (d)
                closedir(d);
        json_object_array_sort(list, json_compare_created_at);
        return http_request_reply_json(req, 200, o);
}

static int reply_no_pipeline(HttpRequest *req, const char *id)
{
        return http_request_reply_error(req, 404, NULL, "no pipeline %s", id);
}

int route_pipelines_get(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *p = NULL;

        if (http_check_api_token(m, req))
                return 0;
        if (pipeline_load(m, captures[0], 0, &p) < 0)
                return reply_no_pipeline(req, captures[0]);
        return http_request_reply_json(req, 200, p);
}

int route_pipelines_update(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *old = NULL, *p = NULL;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (pipeline_load(m, captures[0], 0, &old) < 0)
                return reply_no_pipeline(req, captures[0]);
        r = pipeline_store(m, req, captures[0], pipeline_version(old) + 1,
                           pipeline_string(old, "createdAt"), &p);
        if (r <= 0)
                return r;
        return http_request_reply_json(req, 200, p);
}

/* Removes the event trigger of pipeline id and any flow pinned for it. Returns whether there
 * was a trigger. */
static int event_remove(Manager *m, const char *id, json_object *p)
{
        _cleanup_free_ char *trigger = NULL, *path = NULL;
        unsigned last = pipeline_version(p);
        bool had;

        if (asprintf(&trigger, "event-%s", id) < 0 || resource_path(m, "ArkEvent", trigger, &path) < 0)
                return -ENOMEM;
        had = access(path, F_OK) >= 0;
        (void) unlink(path);
        for (unsigned v = 1; v <= last; v++) {
                _cleanup_free_ char *pinned = NULL, *ppath = NULL;
                if (asprintf(&pinned, "%s-v%u", id, v) < 0 ||
                    resource_path(m, "ArkFlow", pinned, &ppath) < 0)
                        return -ENOMEM;
                (void) unlink(ppath);
        }
        return had;
}

int route_pipelines_delete(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *p = NULL;
        _cleanup_free_ char *path = NULL;
        const char *id = captures[0];
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (pipeline_load(m, id, 0, &p) < 0)
                return reply_no_pipeline(req, id);
        r = event_remove(m, id, p);
        if (r < 0)
                return r;
        if (resource_path(m, "ArkFlow", id, &path) < 0)
                return -ENOMEM;
        (void) unlink(path);
        for (unsigned v = 0; v <= pipeline_version(p); v++) {
                _cleanup_free_ char *vpath = NULL;
                if (pipeline_path(m, id, v, &vpath) < 0)
                        return -ENOMEM;
                (void) unlink(vpath);
        }
        log_info("Pipeline %s deleted.", id);
        return reload_and_reply(m, req, "Pipeline deleted successfully");
}

int route_events_start(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *p = NULL, *used = NULL, *doc = NULL;
        _cleanup_free_ char *trigger = NULL, *target = NULL, *path = NULL;
        const char *id = captures[0], *want = http_request_query(req, "pipeline_version");
        const char *topic;
        json_object *spec, *source, *targets, *t;
        unsigned version = 0;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (pipeline_load(m, id, 0, &p) < 0)
                return reply_no_pipeline(req, id);
        if (want && (sscanf(want, "%u", &version) != 1 || version == 0))
                return http_request_reply_error(req, 400, NULL,
                                                "pipeline_version must be a version number, not "
                                                "\"%s\"",
                                                want);
        if (version == 0 || version == pipeline_version(p))
                used = json_object_get(p);
        else if (pipeline_load(m, id, version, &used) < 0)
                return http_request_reply_error(req, 404, NULL, "pipeline %s has no version %u",
                                                id, version);

        json_object *options = NULL, *event = NULL;
        if (!json_object_object_get_ex(used, "options", &options) ||
            !json_object_object_get_ex(options, "event", &event) ||
            !json_object_is_type(event, json_type_string) || !*json_object_get_string(event))
                /* The seed documents 500 for this. */
                return http_request_reply_error(req, 500, NULL,
                                                "Pipeline does not have an event option");
        topic = json_object_get_string(event);

        /* Whatever was there before goes first (the seed: existing services are deleted). */
        r = event_remove(m, id, p);
        if (r < 0)
                return r;
        if (used == p || version == pipeline_version(p))
                target = strdup(id);
        else {
                _cleanup_free_ char *pinned_text = NULL;
                if (asprintf(&target, "%s-v%u", id, version) < 0)
                        return -ENOMEM;
                pinned_text = flow_text(used, target);
                if (!pinned_text || resource_path(m, "ArkFlow", target, &path) < 0)
                        return -ENOMEM;
                r = write_file_atomic(path, pinned_text, 0600);
                if (r < 0)
                        return http_request_reply_error(req, 500, NULL, "cannot store %s: %s",
                                                        path, strerror(-r));
                free(TAKE_PTR(path));
        }
        if (!target || asprintf(&trigger, "event-%s", id) < 0)
                return -ENOMEM;

        doc = json_object_new_object();
        spec = json_object_new_object();
        source = json_object_new_object();
        targets = json_object_new_array();
        t = json_object_new_object();
        json_object *meta = json_object_new_object();
        if (!doc || !spec || !source || !targets || !t || !meta)
                return -ENOMEM;
        json_object_object_add(meta, "name", json_object_new_string(trigger));
        json_object_object_add(meta, "namespace", json_object_new_string(PIPELINE_NS));
        json_object_object_add(source, "type", json_object_new_string("topic"));
        json_object_object_add(source, "topic", json_object_new_string(topic));
        json_object_object_add(t, "pipeline", json_object_new_string(target));
        json_object_array_add(targets, t);
        json_object_object_add(spec, "source", source);
        json_object_object_add(spec, "targets", targets);
        json_object_object_add(doc, "kind", json_object_new_string("ArkEvent"));
        json_object_object_add(doc, "metadata", meta);
        json_object_object_add(doc, "spec", spec);
        if (resource_path(m, "ArkEvent", trigger, &path) < 0)
                return -ENOMEM;
        r = write_file_atomic(path, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY),
                              0600);
        if (r < 0)
                return http_request_reply_error(req, 500, NULL, "cannot store %s: %s", path,
                                                strerror(-r));
        log_info("Event of pipeline %s started: topic %s runs flow %s.", id, topic, target);
        return reload_and_reply(m, req, "Event started successfully");
}

int route_events_get(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *p = NULL, *o = json_object_new_object();
        _cleanup_free_ char *trigger = NULL;
        const Trigger *t;
        bool ready;

        if (http_check_api_token(m, req))
                return 0;
        if (pipeline_load(m, captures[0], 0, &p) < 0)
                return reply_no_pipeline(req, captures[0]);
        if (!o || asprintf(&trigger, "event-%s", captures[0]) < 0)
                return -ENOMEM;
        t = registry_find_trigger(m->registry, PIPELINE_NS, trigger);
        ready = t && !t->suspended && m->engine;
        for (size_t i = 0; ready && i < t->n_targets; i++)
                ready = registry_find_flow(m->registry, PIPELINE_NS, t->targets[i].pipeline);
        json_object_object_add(o, "ready", json_object_new_boolean(ready));
        if (t) {
                json_object_object_add(o, "topic", json_object_new_string(strempty(t->topic)));
                json_object_object_add(o, "trigger", json_object_new_string(trigger));
        }
        return http_request_reply_json(req, 200, o);
}

int route_events_delete(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *p = NULL;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (pipeline_load(m, captures[0], 0, &p) < 0)
                return reply_no_pipeline(req, captures[0]);
        r = event_remove(m, captures[0], p);
        if (r < 0)
                return r;
        if (r == 0)
                return http_request_reply_error(req, 404, NULL, "pipeline %s has no event",
                                                captures[0]);
        log_info("Event of pipeline %s deleted.", captures[0]);
        return reload_and_reply(m, req, "Event deleted successfully");
}
