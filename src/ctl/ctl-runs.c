/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "bus/bus-manager.h"
#include "ctl.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

static int bus_error_exit(int r, const sd_bus_error *error, const char *what)
{
        log_error("Failed to %s: %s", what, error && error->message ? error->message : strerror(-r));
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER) || r == -ENOENT ||
            r == -ECONNREFUSED)
                return CTL_EXIT_UNREACHABLE;
        return CTL_EXIT_FAILURE;
}

static int get_run(sd_bus *bus, uint64_t id, json_object **ret, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *json;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "GetRun",
                               error, &reply, "t", id);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0)
                return r;
        *ret = json_tokener_parse(json);
        return *ret ? 0 : -EBADMSG;
}

static void print_run(json_object *run)
{
        json_object *acts = json_object_object_get(run, "activities");

        printf("Run %s (%s/%s): %s\n", json_object_get_string(json_object_object_get(run, "id")),
               json_object_get_string(json_object_object_get(run, "namespace")),
               json_object_get_string(json_object_object_get(run, "flow")),
               json_object_get_string(json_object_object_get(run, "state")));
        for (size_t i = 0; acts && i < json_object_array_length(acts); i++) {
                json_object *a = json_object_array_get_idx(acts, i);
                const char *reason = json_object_get_string(json_object_object_get(a, "reason"));
                printf("  %-20s %-10s %s%s%s\n",
                       json_object_get_string(json_object_object_get(a, "name")),
                       json_object_get_string(json_object_object_get(a, "state")),
                       strempty(json_object_get_string(json_object_object_get(a, "unit"))),
                       reason ? "  " : "", strempty(reason));
        }
        if (json_object_object_get(run, "output"))
                printf("Output: %s\n",
                       json_object_get_string(json_object_object_get(run, "output")));
        if (json_object_object_get(run, "error"))
                printf("Error: %s\n", json_object_get_string(json_object_object_get(run, "error")));
}

static bool state_final(const char *s)
{
        return s && !streq(s, "Pending") && !streq(s, "Running");
}

int verb_start(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "input", required_argument, NULL, 'i' },
                { "wait", no_argument, NULL, 'w' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *input = NULL;
        bool wait = false, json = false;
        uint64_t id;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hi:wj", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("arkeventctl start FLOW [--input JSON|@FILE] [--wait] [--json]\n\n"
                               "Start a run of FLOW (\"namespace/name\" or \"name\").\n");
                        return CTL_EXIT_OK;
                case 'i':
                        if (optarg[0] == '@') {
                                r = read_file_capped(optarg + 1, 16 << 20, &input, NULL);
                                if (r < 0) {
                                        log_error_errno(r, "Failed to read %s: %m", optarg + 1);
                                        return CTL_EXIT_FAILURE;
                                }
                        } else if (!(input = strdup(optarg)))
                                return log_oom(), CTL_EXIT_FAILURE;
                        break;
                case 'w':
                        wait = true;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }
        if (optind + 1 != argc) {
                log_error("Expected exactly one flow. See 'arkeventctl start --help'.");
                return CTL_EXIT_USAGE;
        }

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error_exit(r, NULL, "connect to the system bus");
        r = sd_bus_call_method(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "StartRun",
                               &error, &reply, "ss", argv[optind], strempty(input));
        if (r < 0)
                return bus_error_exit(r, &error, "start the run");
        r = sd_bus_message_read(reply, "t", &id);
        if (r < 0)
                return bus_error_exit(r, NULL, "read the reply");

        if (!wait) {
                if (json)
                        printf("{\"id\":%" PRIu64 "}\n", id);
                else
                        printf("Started run %" PRIu64 ".\n", id);
                return CTL_EXIT_OK;
        }

        for (;;) {
                _cleanup_(json_object_putp) json_object *run = NULL;
                const char *state;

                sd_bus_error_free(&error);
                r = get_run(bus, id, &run, &error);
                if (r < 0)
                        return bus_error_exit(r, &error, "get the run");
                state = json_object_get_string(json_object_object_get(run, "state"));
                if (state_final(state)) {
                        if (json)
                                printf("%s\n", json_object_to_json_string_ext(
                                                       run, JSON_C_TO_STRING_PRETTY));
                        else
                                print_run(run);
                        return streq(state, "Succeeded") ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
                }
                usleep(100 * 1000);
        }
}

int verb_show(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *run = NULL;
        bool json = false;
        const char *idstr = NULL;
        char *end;
        uint64_t id;
        int r;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
                        printf("arkeventctl show RUN [--json]\n\nShow a run and its "
                               "activities.\n");
                        return CTL_EXIT_OK;
                }
                if (streq(argv[i], "--json"))
                        json = true;
                else
                        idstr = argv[i];
        }
        if (!idstr || (id = strtoull(idstr, &end, 10)) == 0 || *end) {
                log_error("Expected a run id. See 'arkeventctl show --help'.");
                return CTL_EXIT_USAGE;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error_exit(r, NULL, "connect to the system bus");
        r = get_run(bus, id, &run, &error);
        if (r < 0)
                return bus_error_exit(r, &error, "get the run");
        if (json)
                printf("%s\n", json_object_to_json_string_ext(run, JSON_C_TO_STRING_PRETTY));
        else
                print_run(run);
        return CTL_EXIT_OK;
}

int verb_cancel(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        char *end;
        uint64_t id;
        int r;

        if (argc == 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                printf("arkeventctl cancel RUN\n\nStop every unit of a run; it ends "
                       "Cancelled.\n");
                return CTL_EXIT_OK;
        }
        if (argc != 2 || (id = strtoull(argv[1], &end, 10)) == 0 || *end) {
                log_error("Expected a run id. See 'arkeventctl cancel --help'.");
                return CTL_EXIT_USAGE;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error_exit(r, NULL, "connect to the system bus");
        r = sd_bus_call_method(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                               "CancelRun", &error, NULL, "t", id);
        if (r < 0)
                return bus_error_exit(r, &error, "cancel the run");
        return CTL_EXIT_OK;
}
