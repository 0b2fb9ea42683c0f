/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "build-config.h"
#include "bus-manager.h"
#include "engine/run-view.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "triggers/trigger-fire.h"

static int property_get_n_flows(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error)
{
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) m->registry->n_flows);
}

static int property_get_n_triggers(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error)
{
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) m->registry->n_triggers);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_n_runs_active(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply,
                                      void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "u", (uint32_t) manager_n_runs_active(userdata));
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int r;

        r = manager_reload(m);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Reload failed: %m");
        return sd_bus_reply_method_return(msg, NULL);
}

#define BUS_ERROR_NOT_FOUND "dev.arkonis.ArkEvent1.Error.NotFound"
#define BUS_ERROR_INVALID_ARGUMENT "dev.arkonis.ArkEvent1.Error.InvalidArgument"
#define BUS_ERROR_QUEUE_FULL "dev.arkonis.ArkEvent1.Error.QueueFull"
#define BUS_ERROR_UNAVAILABLE "dev.arkonis.ArkEvent1.Error.Unavailable"
#define BUS_ERROR_ALREADY_FINISHED "dev.arkonis.ArkEvent1.Error.AlreadyFinished"

static int method_start_run(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(json_object_putp) json_object *input = NULL;
        _cleanup_free_ char *ns = NULL;
        const char *flow, *input_json, *slash, *name;
        Manager *m = userdata;
        Flow *f;
        Run *run;
        int r;

        r = sd_bus_message_read(msg, "ss", &flow, &input_json);
        if (r < 0)
                return r;
        if (!m->engine)
                return sd_bus_error_set(error, BUS_ERROR_UNAVAILABLE,
                                        "The flow engine is not available.");
        if (*input_json) {
                input = json_tokener_parse(input_json);
                if (!input || !json_object_is_type(input, json_type_object))
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                                 "The input must be a JSON object.");
        }
        slash = strchr(flow, '/');
        ns = slash ? strndup(flow, (size_t) (slash - flow)) : strdup("default");
        if (!ns)
                return -ENOMEM;
        name = slash ? slash + 1 : flow;
        f = registry_find_flow(m->registry, ns, name);
        if (!f)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No flow %s/%s.", ns, name);

        r = engine_submit(m->engine, f, input, NULL, NULL, &run);
        if (r == -ENOBUFS)
                return sd_bus_error_set(error, BUS_ERROR_QUEUE_FULL, "The run queue is full.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot start the run: %m");
        r = store_commit(m->store);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot store the run: %m");
        return sd_bus_reply_method_return(msg, "t", (uint64_t) run->id);
}

static int method_get_run(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        Manager *m = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "t", &id);
        if (r < 0)
                return r;
        if (!m->store)
                return sd_bus_error_set(error, BUS_ERROR_UNAVAILABLE, "No run store.");
        r = run_view_get(m->store, (int64_t) id, m->base_url, &o);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No run %" PRIu64 ".", id);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(
                msg, "s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

static int method_cancel_run(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "t", &id);
        if (r < 0)
                return r;
        if (!m->engine)
                return sd_bus_error_set(error, BUS_ERROR_UNAVAILABLE,
                                        "The flow engine is not available.");
        r = engine_cancel(m->engine, (int64_t) id, "cancelled over D-Bus");
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND,
                                         "No active run %" PRIu64 ".", id);
        if (r == -EALREADY)
                return sd_bus_error_setf(error, BUS_ERROR_ALREADY_FINISHED,
                                         "Run %" PRIu64 " is already ending.", id);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_fire_trigger(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_(fire_result_done) FireResult res = {};
        _cleanup_free_ char *ns = NULL, *err = NULL;
        const char *id, *input_json, *slash, *name;
        Manager *m = userdata;
        FireRequest req = {};
        Trigger *t;
        int r;

        r = sd_bus_message_read(msg, "ss", &id, &input_json);
        if (r < 0)
                return r;
        if (*input_json) {
                body = json_tokener_parse(input_json);
                if (!body || !json_object_is_type(body, json_type_object))
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                                 "The input must be a JSON object.");
        }
        slash = strchr(id, '/');
        ns = slash ? strndup(id, (size_t) (slash - id)) : strdup("default");
        if (!ns)
                return -ENOMEM;
        name = slash ? slash + 1 : id;
        t = registry_find_trigger(m->registry, ns, name);
        if (!t)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No trigger %s/%s.", ns, name);

        req.body = body;
        r = trigger_fire(m, t, &req, &res, &err);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "%s", strna(err));
        if (r == -ENOBUFS)
                return sd_bus_error_set(error, BUS_ERROR_QUEUE_FULL, "The run queue is full.");
        if (r == -ENOTCONN)
                return sd_bus_error_set(error, BUS_ERROR_UNAVAILABLE,
                                        "The flow engine is not available.");
        if (r < 0)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT, "Cannot fire: %s",
                                         err ?: strerror(-r));
        r = store_commit(m->store);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot store the runs: %m");

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < res.n_runs; i++) {
                char path[128];
                snprintf(path, sizeof(path), BUS_MANAGER_PATH "/run/%" PRIi64, res.run_ids[i]);
                r = sd_bus_message_append(reply, "o", path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NFlows", "u", property_get_n_flows, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NTriggers", "u", property_get_n_triggers, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NRunsActive", "u", property_get_n_runs_active, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD("Reload", "", "", method_reload, 0),
        SD_BUS_METHOD_WITH_ARGS("StartRun", SD_BUS_ARGS("s", flow, "s", input_json),
                                SD_BUS_RESULT("t", run_id), method_start_run, 0),
        SD_BUS_METHOD_WITH_ARGS("GetRun", SD_BUS_ARGS("t", run_id), SD_BUS_RESULT("s", json),
                                method_get_run, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelRun", SD_BUS_ARGS("t", run_id), SD_BUS_NO_RESULT,
                                method_cancel_run, 0),
        SD_BUS_METHOD_WITH_ARGS("FireTrigger", SD_BUS_ARGS("s", trigger, "s", input_json),
                                SD_BUS_RESULT("ao", runs), method_fire_trigger, 0),
        SD_BUS_SIGNAL_WITH_ARGS("RunStarted", SD_BUS_ARGS("t", run_id, "s", flow), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ActivityCompleted",
                                SD_BUS_ARGS("t", run_id, "s", activity, "s", state), 0),
        SD_BUS_SIGNAL_WITH_ARGS("RunFinished", SD_BUS_ARGS("t", run_id, "s", state), 0),
        SD_BUS_VTABLE_END,
};

int bus_manager_connect(Manager *m)
{
        int r;

        r = sd_bus_default_system(&m->bus);
        if (r < 0)
                return r;

        r = sd_bus_add_object_vtable(m->bus, &m->bus_slot, BUS_MANAGER_PATH,
                                     BUS_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish the manager object: %m");

        r = sd_bus_request_name_async(m->bus, NULL, BUS_NAME, 0, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to request the bus name: %m");

        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        return 0;
}

void bus_manager_emit_changed(Manager *m)
{
        if (!m->bus)
                return;
        (void) sd_bus_emit_properties_changed(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                              "NFlows", "NTriggers", "NRunsActive", NULL);
}

void bus_manager_emit_run(Manager *m, Run *run)
{
        _cleanup_free_ char *flow = NULL;

        if (!m->bus)
                return;
        if (run->state == RUN_RUNNING) {
                if (asprintf(&flow, "%s/%s", run->ns, run->flow_name) < 0)
                        return;
                (void) sd_bus_emit_signal(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                          "RunStarted", "ts", (uint64_t) run->id, flow);
        } else if (run_state_is_final(run->state))
                (void) sd_bus_emit_signal(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                          "RunFinished", "ts", (uint64_t) run->id,
                                          run_state_to_string(run->state));
}

void bus_manager_emit_activity(Manager *m, Activity *a)
{
        if (!m->bus || !activity_state_is_final(a->state))
                return;
        (void) sd_bus_emit_signal(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                  "ActivityCompleted", "tss", (uint64_t) a->run->id,
                                  a->step->name, activity_state_to_string(a->state));
}
