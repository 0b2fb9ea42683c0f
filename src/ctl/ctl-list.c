/* SPDX-License-Identifier: MIT */
/* list-flows, list-triggers, status TRIGGER, graph FLOW. */

#include <inttypes.h>

#include "bus/bus-manager.h"
#include "ctl.h"
#include "shared/json-util.h"
#include "shared/log.h"

/* Parses the verb's options (only the common ones). Returns -1 to go on, else an exit code. */
static int parse_simple(int argc, char *argv[], const char *usage, const char *text,
                        int n_args_min, int n_args_max)
{
        static const struct option options[] = { CTL_COMMON_OPTIONS, {} };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (ctl_common_option(c))
                        continue;
                if (c == 'h') {
                        printf("arkeventctl %s\n\n%s\n\nOptions:\n" CTL_COMMON_HELP, usage, text);
                        return CTL_EXIT_OK;
                }
                return CTL_EXIT_USAGE;
        }
        if (argc - optind < n_args_min || argc - optind > n_args_max) {
                log_error("Wrong number of arguments. See 'arkeventctl %s --help'.", argv[0]);
                return CTL_EXIT_USAGE;
        }
        return -1;
}

int verb_list_flows(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *arr = json_object_new_array();
        _cleanup_(table_freep) Table *t = table_new("NAMESPACE", "NAME", "KIND", "STEPS", "FILE",
                                                    NULL);
        const char *ns, *name, *kind, *file;
        uint32_t steps;
        int r;

        r = parse_simple(argc, argv, "list-flows [OPTIONS...]",
                         "List the flows in effect (ArkFlow and AkoFlow workflows).", 0, 0);
        if (r >= 0)
                return r;
        if (!arr || !t)
                return log_oom(), CTL_EXIT_FAILURE;
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_call(bus, "ListFlows", &error, &reply, NULL);
        if (r < 0)
                return ctl_bus_fail(r, &error, "list flows");
        r = sd_bus_message_enter_container(reply, 'a', "(sssus)");
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        while ((r = sd_bus_message_read(reply, "(sssus)", &ns, &name, &kind, &steps, &file)) > 0) {
                char buf[16];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "namespace", json_object_new_string(ns));
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "kind", json_object_new_string(kind));
                json_object_object_add(o, "steps", json_object_new_int((int) steps));
                json_object_object_add(o, "file", json_object_new_string(file));
                json_object_array_add(arr, o);
                snprintf(buf, sizeof(buf), "%" PRIu32, steps);
                table_add_row(t, ns, name, kind, buf, *file ? file : "-");
        }
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        return ctl_print_list(t, arr, "flows");
}

int verb_list_triggers(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *arr = json_object_new_array();
        _cleanup_(table_freep) Table *t = table_new("NAMESPACE", "NAME", "TYPE", "READY",
                                                    "REASON", NULL);
        const char *ns, *name, *type, *reason, *path;
        int ready, r;

        r = parse_simple(argc, argv, "list-triggers [OPTIONS...]",
                         "List the triggers in effect and whether they are ready.", 0, 0);
        if (r >= 0)
                return r;
        if (!arr || !t)
                return log_oom(), CTL_EXIT_FAILURE;
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_call(bus, "ListTriggers", &error, &reply, NULL);
        if (r < 0)
                return ctl_bus_fail(r, &error, "list triggers");
        r = sd_bus_message_enter_container(reply, 'a', "(sssbso)");
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        while ((r = sd_bus_message_read(reply, "(sssbso)", &ns, &name, &type, &ready, &reason,
                                        &path)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "namespace", json_object_new_string(ns));
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "type", json_object_new_string(type));
                json_object_object_add(o, "ready", json_object_new_boolean(ready));
                json_object_object_add(o, "reason", json_object_new_string(reason));
                json_object_object_add(o, "object", json_object_new_string(path));
                json_object_array_add(arr, o);
                table_add_row(t, ns, name, type, ready ? "yes" : "no", reason);
                table_set_color(t, 3, ctl_ansi_state(ready ? "yes" : "no"));
        }
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        return ctl_print_list(t, arr, "triggers");
}

/* Reads one variant (or any value) of m into JSON. */
static int read_value(sd_bus_message *m, json_object **ret)
{
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        switch (type) {
        case 's':
        case 'o': {
                const char *s;
                r = sd_bus_message_read_basic(m, type, &s);
                *ret = r < 0 ? NULL : json_object_new_string(s);
                return r;
        }
        case 'b': {
                int b;
                r = sd_bus_message_read_basic(m, type, &b);
                *ret = r < 0 ? NULL : json_object_new_boolean(b);
                return r;
        }
        case 't': {
                uint64_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                *ret = r < 0 ? NULL : json_object_new_int64((int64_t) v);
                return r;
        }
        case 'u': {
                uint32_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                *ret = r < 0 ? NULL : json_object_new_int64(v);
                return r;
        }
        case 'i': {
                int32_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                *ret = r < 0 ? NULL : json_object_new_int(v);
                return r;
        }
        case 'v':
        case 'a':
        case 'r': {
                json_object *o = type == 'v' ? NULL : json_object_new_array();
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                for (;;) {
                        json_object *x = NULL;
                        r = sd_bus_message_at_end(m, false);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                        r = read_value(m, &x);
                        if (r < 0) {
                                json_object_put(o);
                                return r;
                        }
                        if (type == 'v')
                                o = x;
                        else
                                json_object_array_add(o, x);
                }
                *ret = o;
                return sd_bus_message_exit_container(m);
        }
        default:
                return sd_bus_message_skip(m, NULL);
        }
}

int ctl_get_all(sd_bus *bus, const char *path, const char *interface, sd_bus_error *error,
                json_object **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *name;
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                               error, &reply, "s", interface);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                json_object *v = NULL;
                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                r = read_value(reply, &v);
                if (r < 0)
                        return r;
                json_object_object_add(o, name, v);
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static const char *jstr(json_object *o, const char *key)
{
        return json_object_get_string(json_object_object_get(o, key));
}

static uint64_t jt(json_object *o, const char *key)
{
        return (uint64_t) json_object_get_int64(json_object_object_get(o, key));
}

int verb_status(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *props = NULL, *runs = json_object_new_array();
        _cleanup_free_ char *ns = NULL, *path = NULL, *id = NULL, *targets = NULL;
        const char *name, *fl, *state, *trig, *rpath;
        uint64_t rid, created, started, finished;
        json_object *tl;
        char b1[64], b2[64];
        bool ready;
        int r;

        r = parse_simple(argc, argv, "status [OPTIONS...] TRIGGER",
                         "Show a trigger like 'systemctl status' shows a unit: its Ready "
                         "condition,\nlast and next fire, and its recent runs. TRIGGER is "
                         "NAMESPACE/NAME, or NAME in\nthe namespace \"default\".",
                         1, 1);
        if (r >= 0)
                return r;
        if (bus_parse_ref(argv[optind], &ns, &name) < 0 || asprintf(&id, "%s/%s", ns, name) < 0 ||
            sd_bus_path_encode(BUS_TRIGGER_PREFIX, id, &path) < 0) {
                log_error("'%s' is not a trigger name (NAMESPACE/NAME or NAME).", argv[optind]);
                return CTL_EXIT_USAGE;
        }
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_get_all(bus, path, BUS_TRIGGER_INTERFACE, &error, &props);
        if (r < 0 && sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                log_error("No trigger %s.", id);
                return CTL_EXIT_NOT_FOUND;
        }
        if (r < 0)
                return ctl_bus_fail(r, &error, "get the trigger's properties");

        /* Its recent runs. */
        r = ctl_call(bus, "ListRuns", &error, &reply, "ssu", "", "", (uint32_t) 1000);
        if (r < 0)
                return ctl_bus_fail(r, &error, "list runs");
        r = sd_bus_message_enter_container(reply, 'a', "(tsssttto)");
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        while ((r = sd_bus_message_read(reply, "(tsssttto)", &rid, &fl, &state, &trig, &created,
                                        &started, &finished, &rpath)) > 0) {
                json_object *o;
                if (!streq(trig, id) || json_object_array_length(runs) >= 10)
                        continue;
                o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64((int64_t) rid));
                json_object_object_add(o, "flow", json_object_new_string(fl));
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_object_add(o, "createdUSec", json_object_new_int64((int64_t) created));
                json_object_object_add(o, "finishedUSec",
                                       json_object_new_int64((int64_t) finished));
                json_object_array_add(runs, o);
        }
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");

        if (arg_json) {
                json_object_object_add(props, "object", json_object_new_string(path));
                json_object_object_add(props, "recentRuns", json_object_get(runs));
                ctl_print_json(props);
                return CTL_EXIT_OK;
        }

        tl = json_object_object_get(props, "Targets");
        for (size_t i = 0; i < json_object_array_length(tl); i++) {
                char *n = NULL;
                if (asprintf(&n, "%s%s%s", targets ?: "", targets ? ", " : "",
                             json_object_get_string(json_object_array_get_idx(tl, i))) < 0)
                        return log_oom(), CTL_EXIT_FAILURE;
                free(targets);
                targets = n;
        }
        ready = json_object_get_boolean(json_object_object_get(props, "Ready"));

        ctl_pager_open();
        printf("%s●%s %s - %s trigger\n", ready ? ctl_ansi_green() : ctl_ansi_red(),
               ctl_ansi_normal(), id, jstr(props, "Type"));
        printf("      Ready: %s%s%s (%s: %s)\n", ready ? ctl_ansi_green() : ctl_ansi_red(),
               ready ? "yes" : "no", ctl_ansi_normal(), jstr(props, "Reason"),
               jstr(props, "Message"));
        printf("    Targets: %s\n", targets ?: "-");
        printf("     Policy: %s%s\n", jstr(props, "ConcurrencyPolicy"),
               json_object_get_boolean(json_object_object_get(props, "Suspended"))
                       ? ", suspended"
                       : "");
        if (*strempty(jstr(props, "Schedule")))
                printf("   Schedule: %s (UTC)\n", jstr(props, "Schedule"));
        if (*strempty(jstr(props, "UpstreamFlow")))
                printf("   Upstream: %s\n", jstr(props, "UpstreamFlow"));
        if (*strempty(jstr(props, "WebhookURL")))
                printf("    Webhook: %s\n", jstr(props, "WebhookURL"));
        printf("  Last fire: %s (fired %" PRIu64 " time%s)\n",
               ctl_format_time(b1, jt(props, "LastFireUSec")), jt(props, "FireCount"),
               jt(props, "FireCount") == 1 ? "" : "s");
        printf("  Next fire: %s\n", ctl_format_time(b2, jt(props, "NextFireUSec")));
        printf("     Object: %s\n", path);
        if (json_object_array_length(runs) > 0) {
                _cleanup_(table_freep) Table *t = table_new("RUN", "FLOW", "STATE", "CREATED",
                                                            NULL);
                printf("\nRecent runs:\n");
                for (size_t i = 0; i < json_object_array_length(runs); i++) {
                        json_object *o = json_object_array_get_idx(runs, i);
                        table_add_row(t, jstr(o, "id"), jstr(o, "flow"), jstr(o, "state"),
                                      ctl_format_time(b1, jt(o, "createdUSec")));
                        table_set_color(t, 2, ctl_ansi_state(jstr(o, "state")));
                }
                table_print(t, stdout);
        }
        ctl_pager_close();
        return CTL_EXIT_OK;
}

static void dot_quote(const char *s)
{
        putchar('"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        putchar('\\');
                putchar(*s);
        }
        putchar('"');
}

int verb_graph(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *flow = NULL;
        _cleanup_free_ char *title = NULL;
        json_object *steps;
        const char *text;
        int r;

        r = parse_simple(argc, argv, "graph [OPTIONS...] FLOW",
                         "Print the DAG of a flow in Graphviz dot, like 'systemd-analyze dot':\n"
                         "  arkeventctl graph default/diamond | dot -Tsvg > diamond.svg", 1, 1);
        if (r >= 0)
                return r;
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_call(bus, "GetFlow", &error, &reply, "s", argv[optind]);
        if (r < 0)
                return ctl_bus_fail(r, &error, "get the flow");
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0 || !(flow = json_tokener_parse(text)))
                return ctl_bus_fail(r < 0 ? r : -EBADMSG, NULL, "read the reply");
        if (arg_json) {
                ctl_print_json(flow);
                return CTL_EXIT_OK;
        }
        steps = json_object_object_get(flow, "steps");
        if (asprintf(&title, "%s/%s", jstr(flow, "namespace"), jstr(flow, "name")) < 0)
                return log_oom(), CTL_EXIT_FAILURE;

        printf("digraph ");
        dot_quote(title);
        printf(" {\n\trankdir=LR;\n\tnode [shape=box];\n");
        for (size_t i = 0; i < json_object_array_length(steps); i++) {
                json_object *s = json_object_array_get_idx(steps, i);
                json_object *deps = json_object_object_get(s, "dependsOn");
                putchar('\t');
                dot_quote(jstr(s, "name"));
                if (jstr(s, "if")) {
                        printf(" [style=dashed, tooltip=");
                        dot_quote(jstr(s, "if"));
                        printf("]");
                }
                printf(";\n");
                for (size_t j = 0; j < json_object_array_length(deps); j++) {
                        putchar('\t');
                        dot_quote(json_object_get_string(json_object_array_get_idx(deps, j)));
                        printf(" -> ");
                        dot_quote(jstr(s, "name"));
                        printf(";\n");
                }
        }
        printf("}\n");
        return CTL_EXIT_OK;
}
