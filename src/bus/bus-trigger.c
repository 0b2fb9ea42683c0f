/* SPDX-License-Identifier: MIT */
/* One object per trigger: /dev/arkonis/ArkEvent1/trigger/<escaped "ns/name">, served by a
 * fallback vtable, listed by a node enumerator. */

#include "bus-manager.h"
#include "http/http-routes.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "triggers/trigger-cron.h"
#include "triggers/trigger-fire.h"

int bus_trigger_path(const Trigger *t, char **ret)
{
        _cleanup_free_ char *id = NULL;

        if (asprintf(&id, "%s/%s", t->namespace, t->name) < 0)
                return -ENOMEM;
        return sd_bus_path_encode(BUS_TRIGGER_PREFIX, id, ret);
}

static Trigger *trigger_from_path(Manager *m, const char *path)
{
        _cleanup_free_ char *id = NULL, *ns = NULL;
        const char *name;

        if (sd_bus_path_decode(path, BUS_TRIGGER_PREFIX, &id) <= 0 || !id)
                return NULL;
        if (bus_parse_ref(id, &ns, &name) < 0)
                return NULL;
        return registry_find_trigger(m->registry, ns, name);
}

/* The objects' userdata stays the manager: a reload replaces every Trigger, so each property
 * read looks its trigger up again by path. */
static int trigger_object_find(sd_bus *bus, const char *path, const char *interface,
                               void *userdata, void **ret_found, sd_bus_error *error)
{
        if (!trigger_from_path(userdata, path))
                return 0;
        *ret_found = userdata;
        return 1;
}

#define GET_TRIGGER(t, m, path, userdata)                                                                 Manager *m = userdata;                                                                            const Trigger *t = trigger_from_path(m, path);                                                    if (!t)                                                                                                   return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No trigger at %s.", path)

static int trigger_node_enumerator(sd_bus *bus, const char *path, void *userdata,
                                   char ***ret_nodes, sd_bus_error *error)
{
        Manager *m = userdata;
        char **l;
        size_t n = 0;

        l = new0(char *, m->registry->n_triggers + 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->registry->n_triggers; i++) {
                int r = bus_trigger_path(m->registry->triggers[i], &l[n]);
                if (r < 0) {
                        for (size_t j = 0; j < n; j++)
                                free(l[j]);
                        free(l);
                        return r;
                }
                n++;
        }
        *ret_nodes = l;
        return 0;
}

/* The Ready condition, as the REST API shows it. */
static int trigger_condition(Manager *m, const Trigger *t, const char *key, char **ret)
{
        _cleanup_(json_object_putp) json_object *st = trigger_status_json(m, t);
        json_object *cond = json_object_array_get_idx(json_object_object_get(st, "conditions"), 0);

        *ret = strdup(strempty(json_object_get_string(json_object_object_get(cond, key))));
        return *ret ? 0 : -ENOMEM;
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error)
{
        _cleanup_free_ char *v = NULL;
        int r;
        GET_TRIGGER(t, m, path, userdata);

        if (streq(property, "Namespace"))
                return sd_bus_message_append(reply, "s", t->namespace);
        if (streq(property, "Name"))
                return sd_bus_message_append(reply, "s", t->name);
        if (streq(property, "Type"))
                return sd_bus_message_append(reply, "s", trigger_type_to_string(t->type));
        if (streq(property, "ConcurrencyPolicy"))
                return sd_bus_message_append(
                        reply, "s", concurrency_policy_to_string(t->concurrency_policy));
        if (streq(property, "Schedule"))
                return sd_bus_message_append(reply, "s", strempty(t->cron));
        if (streq(property, "UpstreamFlow"))
                return sd_bus_message_append(reply, "s", strempty(t->flow));
        if (streq(property, "WebhookURL")) {
                if (t->type != TRIGGER_WEBHOOK)
                        return sd_bus_message_append(reply, "s", "");
                if (asprintf(&v, "%s/triggers/%s/%s/fire", m->base_url, t->namespace, t->name) <
                    0)
                        return -ENOMEM;
                return sd_bus_message_append(reply, "s", v);
        }
        r = trigger_condition(m, t, streq(property, "Reason") ? "reason" : "message", &v);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", v);
}

static int property_get_ready(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error)
{
        _cleanup_free_ char *v = NULL;
        int r;
        GET_TRIGGER(t, m, path, userdata);

        if (streq(property, "Suspended"))
                return sd_bus_message_append(reply, "b", t->suspended);
        r = trigger_condition(m, t, "status", &v);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "b", streq(v, "True"));
}

static int property_get_stats(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error)
{
        uint64_t count = 0, last = 0;
        GET_TRIGGER(t, m, path, userdata);

        if (streq(property, "NextFireUSec"))
                return sd_bus_message_append(reply, "t", trigger_cron_next_usec(m, t));
        (void) trigger_stats(m, t, &count, &last);
        return sd_bus_message_append(reply, "t", streq(property, "FireCount") ? count : last);
}

static int property_get_targets(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error)
{
        int r;
        GET_TRIGGER(t, m, path, userdata);

        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; i < t->n_targets; i++) {
                r = sd_bus_message_append(reply, "s", t->targets[i].pipeline);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int method_fire(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        const char *input_json;
        Trigger *t;
        int r;

        r = sd_bus_message_read(msg, "s", &input_json);
        if (r < 0)
                return r;
        t = trigger_from_path(userdata, sd_bus_message_get_path(msg));
        if (!t)
                return sd_bus_error_set(error, BUS_ERROR_NOT_FOUND, "No such trigger.");
        return bus_fire_trigger(msg, userdata, t->namespace, t->name, input_json, error);
}

static const sd_bus_vtable trigger_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Namespace", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Type", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Ready", "b", property_get_ready, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Reason", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Message", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Suspended", "b", property_get_ready, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ConcurrencyPolicy", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Targets", "as", property_get_targets, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Schedule", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpstreamFlow", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastFireUSec", "t", property_get_stats, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NextFireUSec", "t", property_get_stats, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FireCount", "t", property_get_stats, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("WebhookURL", "s", property_get_string, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Fire", SD_BUS_ARGS("s", input_json), SD_BUS_RESULT("ao", runs),
                                method_fire, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_trigger_setup(Manager *m)
{
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, BUS_TRIGGER_PREFIX, BUS_TRIGGER_INTERFACE,
                                       trigger_vtable, trigger_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(m->bus, NULL, BUS_TRIGGER_PREFIX,
                                          trigger_node_enumerator, m);
}

static void emit_trigger_changed(Manager *m, const char *ns, const char *name)
{
        _cleanup_free_ char *path = NULL;
        Trigger *t;

        if (!m->bus || !(t = registry_find_trigger(m->registry, ns, name)))
                return;
        if (bus_trigger_path(t, &path) < 0)
                return;
        (void) sd_bus_emit_properties_changed(m->bus, path, BUS_TRIGGER_INTERFACE, "FireCount",
                                              "LastFireUSec", "NextFireUSec", NULL);
}

/* Triggers fired in this loop turn ("ns/name"): one PropertiesChanged each when it ends. */
static struct {
        Manager *m;
        sd_event_source *source;
        char **refs;
} changed_triggers;

static int on_changed_triggers(sd_event_source *s, void *userdata)
{
        char **refs = TAKE_PTR(changed_triggers.refs);

        STRV_FOREACH(r, refs) {
                char *slash = strchr(*r, '/');
                if (!slash)
                        continue;
                *slash = 0;
                emit_trigger_changed(changed_triggers.m, *r, slash + 1);
        }
        strv_free(refs);
        return 0;
}

void bus_trigger_emit_changed(Manager *m, const char *ns, const char *name)
{
        _cleanup_free_ char *ref = NULL;

        if (!m->bus)
                return;
        if (asprintf(&ref, "%s/%s", ns, name) < 0 ||
            (!changed_triggers.source &&
             sd_event_add_defer(m->event, &changed_triggers.source, on_changed_triggers,
                                NULL) < 0)) {
                emit_trigger_changed(m, ns, name);
                return;
        }
        changed_triggers.m = m;
        if (!strv_contains(changed_triggers.refs, ref) &&
            strv_push(&changed_triggers.refs, TAKE_PTR(ref)) < 0) {
                emit_trigger_changed(m, ns, name);
                return;
        }
        (void) sd_event_source_set_enabled(changed_triggers.source, SD_EVENT_ONESHOT);
}

void bus_trigger_changed_flush(void)
{
        if (changed_triggers.refs && changed_triggers.m)
                (void) on_changed_triggers(NULL, NULL);
        changed_triggers.source = sd_event_source_disable_unref(changed_triggers.source);
        strv_free(TAKE_PTR(changed_triggers.refs));
        changed_triggers.m = NULL;
}

void bus_trigger_emit_all(Manager *m)
{
        if (!m->bus || !m->registry)
                return;
        for (size_t i = 0; i < m->registry->n_triggers; i++) {
                _cleanup_free_ char *path = NULL;
                if (bus_trigger_path(m->registry->triggers[i], &path) < 0)
                        continue;
                (void) sd_bus_emit_properties_changed(
                        m->bus, path, BUS_TRIGGER_INTERFACE, "Type", "Ready", "Reason", "Message",
                        "Suspended", "ConcurrencyPolicy", "Targets", "Schedule", "UpstreamFlow",
                        "NextFireUSec", "WebhookURL", NULL);
        }
}
