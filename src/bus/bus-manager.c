/* SPDX-License-Identifier: MIT */
#include <grp.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "build-config.h"
#include "bus-manager.h"
#include "engine/run-view.h"
#include "http/http-routes.h"
#include "model/loader.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "triggers/trigger-fire.h"
#include "triggers/topic-redis.h"
#include "triggers/trigger-topic.h"
#include "triggers/trigger-tokens.h"

int bus_parse_ref(const char *ref, char **ret_ns, const char **ret_name)
{
        const char *slash = strchr(ref, '/');
        char *ns;

        if (!*ref || (slash && (slash == ref || !slash[1] || strchr(slash + 1, '/'))))
                return -EINVAL;
        ns = slash ? strndup(ref, (size_t) (slash - ref)) : strdup("default");
        if (!ns)
                return -ENOMEM;
        *ret_ns = ns;
        *ret_name = slash ? slash + 1 : ref;
        return 0;
}

/* Who a caller is costs a round trip to the bus (and a read of /proc); asked once per
 * connection. A unique name is never given to another connection, and the bus identifies a
 * connection by the credentials it had when it connected, as dbus-daemon's own policy does. */
#define CREDS_CACHE_SIZE 16
static struct {
        char *sender;
        sd_bus_creds *creds;
} creds_cache[CREDS_CACHE_SIZE];
static unsigned creds_cache_next;

static sd_bus_creds *creds_cache_find(const char *sender)
{
        for (unsigned i = 0; sender && i < CREDS_CACHE_SIZE; i++)
                if (streq_ptr(creds_cache[i].sender, sender))
                        return sd_bus_creds_ref(creds_cache[i].creds);
        return NULL;
}

static void creds_cache_add(const char *sender, sd_bus_creds *c)
{
        unsigned i = creds_cache_next++ % CREDS_CACHE_SIZE;
        char *copy = sender ? strdup(sender) : NULL;

        if (!copy)
                return;
        free(creds_cache[i].sender);
        sd_bus_creds_unref(creds_cache[i].creds);
        creds_cache[i].sender = copy;
        creds_cache[i].creds = sd_bus_creds_ref(c);
}

void bus_creds_cache_clear(void)
{
        for (unsigned i = 0; i < CREDS_CACHE_SIZE; i++) {
                free(TAKE_PTR(creds_cache[i].sender));
                creds_cache[i].creds = sd_bus_creds_unref(creds_cache[i].creds);
        }
}

static int sender_uid(sd_bus_message *msg, sd_bus_creds **ret_creds, uid_t *ret_uid)
{
        const char *sender = sd_bus_message_get_sender(msg);
        sd_bus_creds *c = creds_cache_find(sender);
        int r;

        if (c) {
                r = sd_bus_creds_get_euid(c, ret_uid);
                if (r < 0)
                        r = sd_bus_creds_get_uid(c, ret_uid);
                if (r >= 0) {
                        *ret_creds = c;
                        return 0;
                }
                c = sd_bus_creds_unref(c);
        }
        r = sd_bus_query_sender_creds(msg,
                                      SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID |
                                              SD_BUS_CREDS_SUPPLEMENTARY_GIDS |
                                              SD_BUS_CREDS_EGID | SD_BUS_CREDS_AUGMENT,
                                      &c);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(c, ret_uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(c, ret_uid);
        if (r < 0) {
                sd_bus_creds_unref(c);
                return r;
        }
        creds_cache_add(sender, c);
        *ret_creds = c;
        return 0;
}

int bus_check_admin(sd_bus_message *msg, Manager *m, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *c = NULL;
        const char *group = m->config.bus_admin_group;
        const gid_t *gids = NULL;
        struct group *gr;
        gid_t egid;
        uid_t uid;
        int n, r;

        r = sender_uid(msg, &c, &uid);
        if (r < 0)
                return sd_bus_error_set(error, BUS_ERROR_ACCESS_DENIED,
                                        "Cannot tell who is calling; access denied.");
        if (uid == 0)
                return 1;
        if (group && *group && (gr = getgrnam(group))) {
                if (sd_bus_creds_get_egid(c, &egid) >= 0 && egid == gr->gr_gid)
                        return 1;
                n = sd_bus_creds_get_supplementary_gids(c, &gids);
                for (int i = 0; i < n; i++)
                        if (gids[i] == gr->gr_gid)
                                return 1;
        }
        sd_bus_error_setf(error, BUS_ERROR_ACCESS_DENIED,
                          "Access denied: %s needs root%s%s%s.", sd_bus_message_get_member(msg),
                          group && *group ? " or membership of group '" : "",
                          group && *group ? group : "", group && *group ? "'" : "");
        return 0;
}

static int check_root(sd_bus_message *msg, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *c = NULL;
        uid_t uid;

        if (sender_uid(msg, &c, &uid) < 0 || uid != 0)
                return sd_bus_error_setf(error, BUS_ERROR_ACCESS_DENIED,
                                         "Access denied: %s is for root only.",
                                         sd_bus_message_get_member(msg)),
                       0;
        return 1;
}

#define REQUIRE_ADMIN(msg, m, error)                                                              \
        do {                                                                                      \
                int _r_ = bus_check_admin(msg, m, error);                                         \
                if (_r_ <= 0)                                                                     \
                        return _r_ < 0 ? _r_ : -EACCES;                                           \
        } while (0)

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

static int property_get_n_runs_queued(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply,
                                      void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u",
                                     (uint32_t) (m->engine ? engine_n_queued_runs(m->engine) : 0));
}

static int reply_engine_missing(Manager *m, sd_bus_error *error)
{
        return sd_bus_error_set(error, BUS_ERROR_UNAVAILABLE,
                                "The flow engine is not available (is systemd reachable?).");
}

static int parse_input(const char *input_json, json_object **ret, sd_bus_error *error)
{
        enum json_tokener_error jerr = json_tokener_success;
        json_object *o;

        *ret = NULL;
        if (!*input_json)
                return 0;
        o = json_tokener_parse_verbose(input_json, &jerr);
        if (!o && jerr != json_tokener_success)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                         "The input is not valid JSON: %s.",
                                         json_tokener_error_desc(jerr));
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return sd_bus_error_set(error, BUS_ERROR_INVALID_ARGUMENT,
                                        "The input must be a JSON object.");
        }
        *ret = o;
        return 0;
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int r;

        REQUIRE_ADMIN(msg, m, error);
        r = manager_reload(m);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Reload failed: %m");
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_list_flows(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssus)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->registry->n_flows; i++) {
                const Flow *f = m->registry->flows[i];
                r = sd_bus_message_append(reply, "(sssus)", f->namespace, f->name,
                                          resource_kind_to_string(f->kind),
                                          (uint32_t) f->n_steps, f->loc.file ?: "");
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int find_flow(Manager *m, const char *ref, Flow **ret, sd_bus_error *error)
{
        _cleanup_free_ char *ns = NULL;
        const char *name;
        int r;

        r = bus_parse_ref(ref, &ns, &name);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                         "'%s' is not a flow name (NAMESPACE/NAME or NAME).", ref);
        if (r < 0)
                return r;
        *ret = registry_find_flow(m->registry, ns, name);
        if (!*ret)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No flow %s/%s.", ns, name);
        return 0;
}

static int method_get_flow(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        Manager *m = userdata;
        json_object *steps;
        const char *ref;
        Flow *f;
        int r;

        r = sd_bus_message_read(msg, "s", &ref);
        if (r < 0)
                return r;
        r = find_flow(m, ref, &f, error);
        if (r < 0)
                return r;

        o = json_object_new_object();
        steps = json_object_new_array();
        if (!o || !steps)
                return -ENOMEM;
        json_object_object_add(o, "namespace", json_object_new_string(f->namespace));
        json_object_object_add(o, "name", json_object_new_string(f->name));
        json_object_object_add(o, "kind", json_object_new_string(resource_kind_to_string(f->kind)));
        if (f->loc.file)
                json_object_object_add(o, "file", json_object_new_string(f->loc.file));
        if (f->event_topic)
                json_object_object_add(o, "event", json_object_new_string(f->event_topic));
        json_object_object_add(o, "steps", steps);
        for (size_t i = 0; i < f->n_steps; i++) {
                const Step *s = &f->steps[i];
                json_object *so = json_object_new_object(), *deps = json_object_new_array();
                for (char **d = s->depends_on; d && *d; d++)
                        json_object_array_add(deps, json_object_new_string(*d));
                json_object_object_add(so, "name", json_object_new_string(s->name));
                json_object_object_add(so, "dependsOn", deps);
                if (s->if_expr)
                        json_object_object_add(so, "if", json_object_new_string(s->if_expr));
                json_object_array_add(steps, so);
        }
        return sd_bus_reply_method_return(
                msg, "s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

static int method_list_triggers(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssbso)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->registry->n_triggers; i++) {
                const Trigger *t = m->registry->triggers[i];
                _cleanup_(json_object_putp) json_object *st = trigger_status_json(m, t);
                json_object *cond = json_object_array_get_idx(
                        json_object_object_get(st, "conditions"), 0);
                _cleanup_free_ char *path = NULL;

                r = bus_trigger_path(t, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(
                        reply, "(sssbso)", t->namespace, t->name, trigger_type_to_string(t->type),
                        streq_ptr(json_object_get_string(json_object_object_get(cond, "status")),
                                  "True"),
                        strempty(json_object_get_string(json_object_object_get(cond, "reason"))),
                        path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_runs(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *ns = NULL;
        const char *flow, *state, *name = NULL;
        Manager *m = userdata;
        sqlite3_stmt *st;
        uint32_t limit;
        int r;

        r = sd_bus_message_read(msg, "ssu", &flow, &state, &limit);
        if (r < 0)
                return r;
        if (!m->store)
                return sd_bus_error_set(error, BUS_ERROR_UNAVAILABLE, "No run store.");
        if (*flow) {
                r = bus_parse_ref(flow, &ns, &name);
                if (r == -EINVAL)
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                                 "'%s' is not a flow name.", flow);
                if (r < 0)
                        return r;
        }
        if (*state && run_state_from_string(state) < 0)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                         "'%s' is not a run state (Pending, Running, Succeeded, "
                                         "Failed, Cancelled, TimedOut).",
                                         state);
        if (limit == 0 || limit > 10000)
                limit = 100;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(tsssttto)");
        if (r < 0)
                return r;
        r = store_query(m->store, &st,
                        "SELECT id, namespace, flow, state, trigger, created_usec, started_usec, "
                        "finished_usec FROM runs WHERE (?1 IS NULL OR namespace=?1) AND "
                        "(?2 IS NULL OR flow=?2) AND (?3 IS NULL OR state=?3) "
                        "ORDER BY id DESC LIMIT ?4",
                        "sssi", ns, name, *state ? state : NULL, (int64_t) limit);
        if (r < 0)
                return r;
        while (sqlite3_step(st) == SQLITE_ROW) {
                _cleanup_free_ char *path = NULL, *fl = NULL;
                int64_t id = sqlite3_column_int64(st, 0);
                const char *trig = (const char *) sqlite3_column_text(st, 4);

                if (bus_run_path(id, &path) < 0 ||
                    asprintf(&fl, "%s/%s", (const char *) sqlite3_column_text(st, 1),
                             (const char *) sqlite3_column_text(st, 2)) < 0) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
                r = sd_bus_message_append(reply, "(tsssttto)", (uint64_t) id, fl,
                                          (const char *) sqlite3_column_text(st, 3),
                                          strempty(trig), (uint64_t) sqlite3_column_int64(st, 5),
                                          (uint64_t) sqlite3_column_int64(st, 6),
                                          (uint64_t) sqlite3_column_int64(st, 7), path);
                if (r < 0) {
                        sqlite3_reset(st);
                        return r;
                }
        }
        sqlite3_reset(st);
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

typedef struct CommitReply {
        sd_bus_message *call;
        sd_bus_message *reply;
} CommitReply;

static void on_committed(Store *s, int error, void *userdata)
{
        CommitReply *c = userdata;

        if (error < 0)
                (void) sd_bus_reply_method_errorf(c->call, SD_BUS_ERROR_FAILED,
                                                  "The runs could not be stored: %s",
                                                  strerror(-error));
        else
                (void) sd_bus_send(NULL, c->reply, NULL);
        sd_bus_message_unref(c->call);
        sd_bus_message_unref(c->reply);
        free(c);
}

/* Sends reply once everything the call wrote is committed (with the loop turn's group commit):
 * an answer never promises a run that a crash right after it would lose. */
static int reply_after_commit(Manager *m, sd_bus_message *call, sd_bus_message *reply)
{
        CommitReply *c = new0(CommitReply, 1);
        int r;

        if (!c)
                return -ENOMEM;
        c->call = sd_bus_message_ref(call);
        c->reply = sd_bus_message_ref(reply);
        r = store_on_commit(m->store, on_committed, c);
        if (r < 0) {
                sd_bus_message_unref(c->call);
                sd_bus_message_unref(c->reply);
                free(c);
                return r;
        }
        return 1;
}

static int method_start_run(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *input = NULL;
        const char *flow, *input_json;
        Manager *m = userdata;
        Flow *f;
        Run *run;
        int r;

        r = sd_bus_message_read(msg, "ss", &flow, &input_json);
        if (r < 0)
                return r;
        REQUIRE_ADMIN(msg, m, error);
        if (!m->engine)
                return reply_engine_missing(m, error);
        r = parse_input(input_json, &input, error);
        if (r < 0)
                return r;
        r = find_flow(m, flow, &f, error);
        if (r < 0)
                return r;

        r = engine_submit(m->engine, f, input, NULL, NULL, &run);
        if (r == -ENOBUFS)
                return sd_bus_error_set(error, BUS_ERROR_QUEUE_FULL,
                                        "The run queue is full, try again later.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot start the run: %m");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "t", (uint64_t) run->id);
        if (r < 0)
                return r;
        return reply_after_commit(m, msg, reply);
}

/* Answers msg with the objects of the runs (ao) once they are committed. */
static int reply_runs_after_commit(Manager *m, sd_bus_message *msg, const int64_t *ids, size_t n)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                r = bus_run_path(ids[i], &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "o", path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return reply_after_commit(m, msg, reply);
}

int bus_fire_trigger(sd_bus_message *msg, Manager *m, const char *ns, const char *name,
                     const char *input_json, sd_bus_error *error)
{
        _cleanup_(json_object_putp) json_object *input = NULL;
        _cleanup_(fire_result_done) FireResult res = {};
        _cleanup_free_ char *err = NULL;
        Trigger *t;
        int r;

        REQUIRE_ADMIN(msg, m, error);
        t = registry_find_trigger(m->registry, ns, name);
        if (!t)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No trigger %s/%s.", ns,
                                         name);
        r = parse_input(input_json, &input, error);
        if (r < 0)
                return r;

        FireRequest fr = { .body = input };
        r = trigger_fire(m, t, &fr, &res, &err);
        switch (r) {
        case 0:
                break;
        case -ENOENT:
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "Cannot fire %s/%s: %s.", ns,
                                         name, strna(err));
        case -EBUSY:
                return sd_bus_error_setf(error, BUS_ERROR_REFUSED, "Refused: %s.", strna(err));
        case -ESHUTDOWN:
                return sd_bus_error_setf(error, BUS_ERROR_SUSPENDED, "Not fired: %s.",
                                         strna(err));
        case -ENOBUFS:
                return sd_bus_error_setf(error, BUS_ERROR_QUEUE_FULL, "Not fired: %s.",
                                         strna(err));
        case -EINVAL:
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT, "Not fired: %s.",
                                         strna(err));
        case -ENOTCONN:
                return reply_engine_missing(m, error);
        default:
                return sd_bus_error_set_errnof(error, r, "Cannot fire %s/%s: %m", ns, name);
        }

        {
                char f1[512], f2[64];
                const char *fields[] = { f1, f2, NULL };
                snprintf(f1, sizeof(f1), "ARKEVENT_TRIGGER=%s/%s", ns, name);
                snprintf(f2, sizeof(f2), "ARKEVENT_RUN=%" PRIi64,
                         res.n_runs > 0 ? res.run_ids[0] : (int64_t) 0);
                log_struct(LOG_INFO, fields, "Trigger %s/%s fired over D-Bus by %s: %zu run(s)",
                           ns, name, strna(sd_bus_message_get_sender(msg)), res.n_runs);
        }
        bus_trigger_emit_changed(m, ns, name);
        return reply_runs_after_commit(m, msg, res.run_ids, res.n_runs);
}

static void on_bus_published(int error, const char *id, const char *msg, void *userdata)
{
        sd_bus_message *call = userdata;

        if (error < 0)
                (void) sd_bus_reply_method_errorf(call, BUS_ERROR_UNAVAILABLE,
                                                  "The message could not be appended: %s.", msg);
        else {
                log_info("Message published over D-Bus as %s; a host reading the stream runs it.",
                         id);
                (void) sd_bus_reply_method_return(call, "ao", 0);
        }
        sd_bus_message_unref(call);
}

static int method_publish(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(json_object_putp) json_object *input = NULL;
        _cleanup_(topic_result_done) TopicResult res = {};
        _cleanup_free_ char *err = NULL;
        const char *topic, *input_json;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_read(msg, "ss", &topic, &input_json);
        if (r < 0)
                return r;
        REQUIRE_ADMIN(msg, m, error);
        r = parse_input(input_json, &input, error);
        if (r < 0)
                return r;
        if (m->topic_redis && topic_name_valid(topic)) {
                /* Shared through Redis: the runs start wherever the message is taken. */
                r = topic_redis_publish(m->topic_redis, topic,
                                        input ? json_object_to_json_string_ext(
                                                        input, JSON_C_TO_STRING_PLAIN)
                                              : "{}",
                                        on_bus_published, sd_bus_message_ref(msg));
                if (r < 0) {
                        sd_bus_message_unref(msg);
                        return sd_bus_error_setf(error, BUS_ERROR_UNAVAILABLE,
                                                 "Redis cannot be reached: %s.", strerror(-r));
                }
                return 1;
        }
        r = topic_fire_local(m, topic, input, NULL, &res, &err);
        switch (r) {
        case 0:
                break;
        case -EINVAL:
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT, "Not published: %s.",
                                         strna(err));
        case -ENOBUFS:
                return sd_bus_error_setf(error, BUS_ERROR_QUEUE_FULL, "Not published: %s.",
                                         strna(err));
        case -ENOTCONN:
                return reply_engine_missing(m, error);
        default:
                return sd_bus_error_set_errnof(error, r, "Cannot publish on %s: %m", topic);
        }
        log_info("Message published on topic %s over D-Bus by %s: %zu run(s).", topic,
                 strna(sd_bus_message_get_sender(msg)), res.n_runs);
        return reply_runs_after_commit(m, msg, res.run_ids, res.n_runs);
}

static int method_fire_trigger(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_free_ char *ns = NULL;
        const char *ref, *input_json, *name;
        int r;

        r = sd_bus_message_read(msg, "ss", &ref, &input_json);
        if (r < 0)
                return r;
        r = bus_parse_ref(ref, &ns, &name);
        if (r == -EINVAL) {
                /* Who may fire is told before what is wrong with the name. */
                r = bus_check_admin(msg, userdata, error);
                if (r <= 0)
                        return r < 0 ? r : -EACCES;
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                         "'%s' is not a trigger name (NAMESPACE/NAME or NAME).",
                                         ref);
        }
        if (r < 0)
                return r;
        return bus_fire_trigger(msg, userdata, ns, name, input_json, error);
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

int bus_cancel_run(sd_bus_message *msg, Manager *m, uint64_t id, sd_bus_error *error)
{
        sqlite3_stmt *st;
        int r;

        REQUIRE_ADMIN(msg, m, error);
        if (!m->engine)
                return reply_engine_missing(m, error);
        r = engine_cancel(m->engine, (int64_t) id, "cancelled over D-Bus");
        if (r == -ENOENT) {
                bool exists = false;
                if (store_query(m->store, &st, "SELECT state FROM runs WHERE id=?", "i",
                                (int64_t) id) >= 0) {
                        exists = sqlite3_step(st) == SQLITE_ROW;
                        sqlite3_reset(st);
                }
                if (exists)
                        return sd_bus_error_setf(error, BUS_ERROR_ALREADY_FINISHED,
                                                 "Run %" PRIu64 " has already finished.", id);
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No run %" PRIu64 ".", id);
        }
        if (r == -EALREADY)
                return sd_bus_error_setf(error, BUS_ERROR_ALREADY_FINISHED,
                                         "Run %" PRIu64 " is already ending.", id);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot cancel run %" PRIu64 ": %m", id);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_cancel_run(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "t", &id);
        if (r < 0)
                return r;
        return bus_cancel_run(msg, userdata, id, error);
}

static int method_trigger_token(sd_bus_message *msg, void *userdata, sd_bus_error *error,
                                bool rotate)
{
        _cleanup_free_ char *ns = NULL, *token = NULL;
        const char *ref, *name;
        Manager *m = userdata;
        Trigger *t;
        int r;

        r = sd_bus_message_read(msg, "s", &ref);
        if (r < 0)
                return r;
        r = check_root(msg, error);
        if (r <= 0)
                return r < 0 ? r : -EACCES;
        r = bus_parse_ref(ref, &ns, &name);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT,
                                         "'%s' is not a trigger name.", ref);
        if (r < 0)
                return r;
        t = registry_find_trigger(m->registry, ns, name);
        if (!t)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND, "No trigger %s/%s.", ns,
                                         name);
        if (t->type != TRIGGER_WEBHOOK)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_WEBHOOK,
                                         "Trigger %s/%s is a %s trigger; only webhook triggers "
                                         "have tokens.",
                                         ns, name, trigger_type_to_string(t->type));
        r = rotate ? trigger_token_rotate(m->config.state_dir, ns, name, &token)
                   : trigger_token_get(m->config.state_dir, ns, name, &token);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_FOUND,
                                         "Trigger %s/%s has no token yet.", ns, name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot %s the token of %s/%s: %m",
                                               rotate ? "rotate" : "read", ns, name);
        if (rotate)
                log_info("Token of trigger %s/%s rotated over D-Bus.", ns, name);
        return sd_bus_reply_method_return(msg, "s", token);
}

static int method_get_trigger_token(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_trigger_token(msg, userdata, error, false);
}

static int method_rotate_trigger_token(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return method_trigger_token(msg, userdata, error, true);
}

/* Where resources submitted over the bus live (the daemon cannot write /etc). */
static int method_submit_resource(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_free_ char *dir = NULL, *problems = NULL;
        ResourceDoc **docs = NULL;
        size_t n_docs = 0, n_valid = 0, len = 0;
        Manager *m = userdata;
        FILE *f;
        const char *yaml;
        int r;

        r = sd_bus_message_read(msg, "s", &yaml);
        if (r < 0)
                return r;
        REQUIRE_ADMIN(msg, m, error);
        r = manager_submitted_path(m, NULL, NULL, NULL, &dir);
        if (r < 0)
                return r;

        r = resource_text_parse("<submitted>", yaml, strlen(yaml), &docs, &n_docs, &diags);
        if (r < 0)
                goto finish;
        for (size_t i = 0; i < n_docs; i++) {
                const ResourceDoc *d = docs[i];
                const SourceLoc *loc = d->flow ? &d->flow->loc : d->trigger ? &d->trigger->loc : NULL;
                const char *existing = NULL;

                if (!d->flow && !d->trigger)
                        continue;
                n_valid++;
                if (d->flow) {
                        Flow *old = registry_find_flow(m->registry, d->flow->namespace,
                                                       d->flow->name);
                        if (old && old->loc.file && !startswith(old->loc.file, dir))
                                existing = old->loc.file;
                } else {
                        Trigger *old = registry_find_trigger(m->registry, d->trigger->namespace,
                                                             d->trigger->name);
                        if (old && old->loc.file && !startswith(old->loc.file, dir))
                                existing = old->loc.file;
                }
                if (existing)
                        (void) diag_add(&diags, DIAG_ERROR, "<submitted>", loc->line, loc->column,
                                        "%s/%s is already defined in %s; edit that file instead",
                                        d->namespace, d->name, existing);
        }
        if (diags.n_errors == 0 && n_valid == 0)
                (void) diag_add(&diags, DIAG_ERROR, "<submitted>", 1, 1,
                                "no resource in the document");

        if (diags.n_errors > 0) {
                diag_sort(&diags);
                f = open_memstream(&problems, &len);
                if (!f) {
                        r = -ENOMEM;
                        goto finish;
                }
                for (size_t i = 0; i < diags.n; i++) {
                        _cleanup_free_ char *line = NULL;
                        const Diagnostic *d = &diags.items[i];
                        if (d->severity != DIAG_ERROR || diag_format(d, &line) < 0)
                                continue;
                        fprintf(f, "%s%s", i > 0 ? "\n" : "",
                                startswith(line, "<submitted>:") ?: line);
                }
                fclose(f);
                r = sd_bus_error_setf(error, BUS_ERROR_INVALID_ARGUMENT, "%s", problems);
                goto finish;
        }

        r = mkdir_p(dir, 0700);
        if (r < 0) {
                r = sd_bus_error_set_errnof(error, r, "Cannot create %s: %m", dir);
                goto finish;
        }
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sss)");
        if (r < 0)
                goto finish;
        /* One file per document, so each replaces its own earlier submission. */
        for (size_t i = 0; i < n_docs; i++) {
                const ResourceDoc *d = docs[i];
                _cleanup_free_ char *path = NULL, *text = NULL;
                const char *kind = resource_kind_to_string(d->kind);
                const char *raw;

                if (!d->flow && !d->trigger)
                        continue;
                r = manager_submitted_path(m, d->namespace, kind, d->name, &path);
                if (r < 0)
                        goto finish;
                raw = d->flow && d->flow->raw_yaml ? d->flow->raw_yaml : NULL;
                if (!raw) {
                        /* A trigger keeps no source text: store the whole submission when it is
                         * the only document, which is the common case. */
                        if (n_docs != 1) {
                                r = sd_bus_error_set(error, BUS_ERROR_INVALID_ARGUMENT,
                                                     "Submit triggers one document at a time.");
                                goto finish;
                        }
                        raw = yaml;
                }
                r = write_file_atomic(path, raw, 0600);
                if (r < 0) {
                        r = sd_bus_error_set_errnof(error, r, "Cannot write %s: %m", path);
                        goto finish;
                }
                log_info("Resource %s %s/%s submitted over D-Bus, stored in %s.", kind,
                         d->namespace, d->name, path);
                r = sd_bus_message_append(reply, "(sss)", kind, d->namespace, d->name);
                if (r < 0)
                        goto finish;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                goto finish;
        r = manager_reload(m);
        if (r < 0) {
                r = sd_bus_error_set_errnof(error, r, "Stored, but the reload failed: %m");
                goto finish;
        }
        r = sd_bus_send(NULL, reply, NULL);
finish:
        resource_docs_free(docs, n_docs);
        return r;
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
        SD_BUS_PROPERTY("NRunsQueued", "u", property_get_n_runs_queued, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("ListFlows", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssus)", flows), method_list_flows,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetFlow", SD_BUS_ARGS("s", flow), SD_BUS_RESULT("s", json),
                                method_get_flow, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListTriggers", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssbso)", triggers), method_list_triggers,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListRuns", SD_BUS_ARGS("s", flow, "s", state, "u", limit),
                                SD_BUS_RESULT("a(tsssttto)", runs), method_list_runs,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetRun", SD_BUS_ARGS("t", run_id), SD_BUS_RESULT("s", json),
                                method_get_run, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("FireTrigger", SD_BUS_ARGS("s", trigger, "s", input_json),
                                SD_BUS_RESULT("ao", runs), method_fire_trigger,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Publish", SD_BUS_ARGS("s", topic, "s", input_json),
                                SD_BUS_RESULT("ao", runs), method_publish,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartRun", SD_BUS_ARGS("s", flow, "s", input_json),
                                SD_BUS_RESULT("t", run_id), method_start_run,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelRun", SD_BUS_ARGS("t", run_id), SD_BUS_NO_RESULT,
                                method_cancel_run, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SubmitResource", SD_BUS_ARGS("s", yaml),
                                SD_BUS_RESULT("a(sss)", resources), method_submit_resource,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetTriggerToken", SD_BUS_ARGS("s", trigger),
                                SD_BUS_RESULT("s", token), method_get_trigger_token,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RotateTriggerToken", SD_BUS_ARGS("s", trigger),
                                SD_BUS_RESULT("s", token), method_rotate_trigger_token,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("RunStarted", SD_BUS_ARGS("t", run_id, "s", flow, "o", run), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ActivityCompleted",
                                SD_BUS_ARGS("t", run_id, "s", activity, "s", state, "o", run), 0),
        SD_BUS_SIGNAL_WITH_ARGS("RunFinished", SD_BUS_ARGS("t", run_id, "s", state, "o", run),
                                0),
        SD_BUS_VTABLE_END,
};

int bus_manager_connect(Manager *m)
{
        int r;

        bus_creds_cache_clear(); /* a new bus gives out its unique names anew */
        r = sd_bus_default_system(&m->bus);
        if (r < 0)
                return r;

        r = sd_bus_add_object_vtable(m->bus, &m->bus_slot, BUS_MANAGER_PATH,
                                     BUS_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish the manager object: %m");
        r = bus_trigger_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish the trigger objects: %m");
        r = bus_run_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish the run objects: %m");

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
        static unsigned announced_reloads = 0;

        if (!m->bus)
                return;
        (void) sd_bus_emit_properties_changed(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                              "NFlows", "NTriggers", "NRunsActive",
                                              "NRunsQueued", NULL);
        /* After a reload every trigger may have changed (conditions, targets, policy). */
        if (m->n_reloads != announced_reloads) {
                announced_reloads = m->n_reloads;
                bus_trigger_emit_all(m);
        }
}

void bus_manager_emit_run(Manager *m, Run *run)
{
        _cleanup_free_ char *flow = NULL, *path = NULL, *tns = NULL;
        const char *tname;

        if (!m->bus)
                return;
        if (bus_run_path(run->id, &path) < 0)
                return;
        if (run->state == RUN_RUNNING) {
                if (asprintf(&flow, "%s/%s", run->ns, run->flow_name) < 0)
                        return;
                (void) sd_bus_emit_signal(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                          "RunStarted", "tso", (uint64_t) run->id, flow, path);
        } else if (run_state_is_final(run->state))
                (void) sd_bus_emit_signal(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                          "RunFinished", "tso", (uint64_t) run->id,
                                          run_state_to_string(run->state), path);
        bus_run_emit_changed(m, run->id);
        /* A new run of a trigger changes its FireCount and LastFireUSec. */
        if (run->trigger && run->state == RUN_PENDING &&
            bus_parse_ref(run->trigger, &tns, &tname) >= 0)
                bus_trigger_emit_changed(m, tns, tname);
}

void bus_manager_emit_activity(Manager *m, Activity *a)
{
        _cleanup_free_ char *path = NULL;

        if (!m->bus)
                return;
        bus_run_emit_changed(m, a->run->id);
        if (!activity_state_is_final(a->state) || bus_run_path(a->run->id, &path) < 0)
                return;
        (void) sd_bus_emit_signal(m->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                  "ActivityCompleted", "tsso", (uint64_t) a->run->id,
                                  a->step->name, activity_state_to_string(a->state), path);
}
