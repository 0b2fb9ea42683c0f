/* SPDX-License-Identifier: MIT */
/* reload, token, api-token, submit. */

#include <signal.h>
#include <systemd/sd-bus.h>

#include "build-config.h"
#include "bus/bus-manager.h"
#include "ctl.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/log.h"

enum {
        ARG_ROTATE = ARG_VERB_FIRST,
};

static int parse_common(int argc, char *argv[], const char *usage, const char *text,
                        int n_args)
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
        if (n_args >= 0 && argc - optind != n_args) {
                log_error("Wrong number of arguments. See 'arkeventctl %s --help'.", argv[0]);
                return CTL_EXIT_USAGE;
        }
        return -1;
}

int verb_reload(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *mainpid;
        int r;

        r = parse_common(argc, argv, "reload",
                         "Re-read the configuration and /etc/arkevent.d, and wait until the "
                         "daemon has\napplied them.",
                         0);
        if (r >= 0)
                return r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = ctl_call(bus, "Reload", &error, NULL, NULL);
        if (r >= 0) {
                if (arg_json)
                        printf("{ \"reloaded\": true }\n");
                return CTL_EXIT_OK;
        }

        /* Without the bus (ExecReload= while dbus is down), fall back to SIGHUP. */
        mainpid = getenv("MAINPID");
        if (mainpid && atoi(mainpid) > 1 && kill(atoi(mainpid), SIGHUP) >= 0) {
                log_warning("D-Bus call failed (%s), sent SIGHUP to %s instead.",
                            error.message ?: strerror(-r), mainpid);
                return CTL_EXIT_OK;
        }
        if (!bus)
                return ctl_bus_open(&bus);
        return ctl_bus_fail(r, &error, "reload arkevent");
}

int verb_api_token(int argc, char *argv[])
{
        _cleanup_free_ char *path = NULL, *token = NULL;
        int r;

        r = parse_common(argc, argv, "api-token",
                         "Print the bearer token of the REST API (/api/v1/...). Needs root.", 0);
        if (r >= 0)
                return r;
        if (asprintf(&path, "%s/api-token", getenv("ARKEVENT_STATE_DIRECTORY") ?: STATE_DIR) < 0)
                return log_oom(), CTL_EXIT_FAILURE;
        r = read_file_capped(path, 4096, &token, NULL);
        if (r == -EACCES || r == -EPERM) {
                log_error("Permission denied reading %s: the API token is for root.", path);
                return CTL_EXIT_DENIED;
        }
        if (r == -ENOENT) {
                log_error("%s does not exist yet: start arkevent once to create it.", path);
                return CTL_EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return CTL_EXIT_FAILURE;
        }
        token[strcspn(token, "\r\n")] = 0;
        if (arg_json)
                printf("{ \"token\": \"%s\" }\n", token);
        else
                printf("%s\n", token);
        return CTL_EXIT_OK;
}

int verb_token(int argc, char *argv[])
{
        static const struct option options[] = {
                CTL_COMMON_OPTIONS,
                { "rotate", no_argument, NULL, ARG_ROTATE },
                {},
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        bool rotate = false;
        const char *token;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (ctl_common_option(c))
                        continue;
                switch (c) {
                case 'h':
                        printf("arkeventctl token [OPTIONS...] TRIGGER\n\nPrint the bearer "
                               "token of a webhook trigger. Needs root.\n\nOptions:\n"
                               "     --rotate     Replace the token first; the old one stops "
                               "working at once\n" CTL_COMMON_HELP);
                        return CTL_EXIT_OK;
                case ARG_ROTATE:
                        rotate = true;
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }
        }
        if (optind + 1 != argc) {
                log_error("Expected one trigger. See 'arkeventctl token --help'.");
                return CTL_EXIT_USAGE;
        }
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_call(bus, rotate ? "RotateTriggerToken" : "GetTriggerToken", &error, &reply, "s",
                     argv[optind]);
        if (r < 0)
                return ctl_bus_fail(r, &error, rotate ? "rotate the token" : "get the token");
        r = sd_bus_message_read(reply, "s", &token);
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        if (arg_json)
                printf("{ \"trigger\": \"%s\", \"token\": \"%s\" }\n", argv[optind], token);
        else
                printf("%s\n", token);
        return CTL_EXIT_OK;
}

int verb_submit(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *arr = json_object_new_array();
        _cleanup_free_ char *text = NULL;
        const char *kind, *ns, *name;
        int r;

        r = parse_common(argc, argv, "submit [OPTIONS...] FILE",
                         "Send a resource document (YAML; - for standard input) to the daemon, "
                         "which\nchecks it, keeps it in its state directory and applies it at "
                         "once. Problems\nare printed as FILE:line:column.",
                         1);
        if (r >= 0)
                return r;
        r = read_file_capped(streq(argv[optind], "-") ? "/dev/stdin" : argv[optind], 16 << 20,
                             &text, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to read %s: %m", argv[optind]);
                return CTL_EXIT_FAILURE;
        }
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_call(bus, "SubmitResource", &error, &reply, "s", text);
        if (r < 0 && sd_bus_error_has_name(&error, BUS_ERROR_INVALID_ARGUMENT)) {
                /* One problem per line, "line:column: ...": prefix the file name. */
                const char *p = error.message;
                while (p && *p) {
                        size_t l = strcspn(p, "\n");
                        fprintf(stderr, "%s:%.*s\n", argv[optind], (int) l, p);
                        p += l + (p[l] ? 1 : 0);
                }
                return CTL_EXIT_FAILURE;
        }
        if (r < 0)
                return ctl_bus_fail(r, &error, "submit the resource");
        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        while ((r = sd_bus_message_read(reply, "(sss)", &kind, &ns, &name)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string(kind));
                json_object_object_add(o, "namespace", json_object_new_string(ns));
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_array_add(arr, o);
                if (!arg_json)
                        printf("Applied %s %s/%s.\n", kind, ns, name);
        }
        if (arg_json)
                ctl_print_json(arr);
        return CTL_EXIT_OK;
}
