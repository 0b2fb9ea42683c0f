/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <systemd/sd-bus.h>

#include "build-config.h"
#include "bus/bus-manager.h"
#include "ctl.h"
#include "shared/fileio.h"
#include "shared/log.h"
#include "triggers/trigger-tokens.h"


int verb_reload(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *mainpid;
        int r;

        if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                printf("arkeventctl reload\n\nRe-read the configuration and /etc/arkevent.d, and "
                       "wait until the daemon has applied them.\n");
                return CTL_EXIT_OK;
        }

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                       "Reload", &error, NULL, "");
        if (r >= 0)
                return CTL_EXIT_OK;

        /* Without the bus (ExecReload= while dbus is down), fall back to SIGHUP. */
        mainpid = getenv("MAINPID");
        if (mainpid && atoi(mainpid) > 1 && kill(atoi(mainpid), SIGHUP) >= 0) {
                log_warning("D-Bus call failed (%s), sent SIGHUP to %s instead.",
                            error.message ?: strerror(-r), mainpid);
                return CTL_EXIT_OK;
        }

        log_error("Failed to reload arkevent: %s", error.message ?: strerror(-r));
        return sd_bus_error_has_name(&error, SD_BUS_ERROR_SERVICE_UNKNOWN) || r == -ENOENT ||
                               r == -ECONNREFUSED
                       ? CTL_EXIT_UNREACHABLE
                       : CTL_EXIT_FAILURE;
}

int verb_api_token(int argc, char *argv[])
{
        _cleanup_free_ char *path = NULL, *token = NULL;
        int r;

        if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                printf("arkeventctl api-token\n\nPrint the bearer token of the REST API "
                       "(/api/v1/...). Needs root.\n");
                return CTL_EXIT_OK;
        }
        if (asprintf(&path, "%s/api-token", getenv("ARKEVENT_STATE_DIRECTORY") ?: STATE_DIR) < 0)
                return log_oom();
        r = read_file_capped(path, 4096, &token, NULL);
        if (r == -EACCES || r == -EPERM) {
                log_error("Permission denied reading %s: the API token is for root.", path);
                return CTL_EXIT_FAILURE;
        }
        if (r == -ENOENT) {
                log_error("%s does not exist yet: start arkevent once to create it.", path);
                return CTL_EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return CTL_EXIT_FAILURE;
        }
        printf("%s\n", token);
        return CTL_EXIT_OK;
}

int verb_token(int argc, char *argv[])
{
        const char *state = getenv("ARKEVENT_STATE_DIRECTORY") ?: STATE_DIR;
        _cleanup_free_ char *ns = NULL, *token = NULL;
        const char *arg = NULL, *slash, *name;
        bool rotate = false;
        int r;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
                        printf("arkeventctl token NAMESPACE/NAME [--rotate]\n\nPrint the bearer "
                               "token of a webhook trigger; --rotate replaces it first.\nNeeds "
                               "root.\n");
                        return CTL_EXIT_OK;
                }
                if (streq(argv[i], "--rotate"))
                        rotate = true;
                else if (!arg)
                        arg = argv[i];
                else {
                        log_error("Unexpected argument '%s'.", argv[i]);
                        return CTL_EXIT_USAGE;
                }
        }
        if (!arg) {
                log_error("Expected a trigger. See 'arkeventctl token --help'.");
                return CTL_EXIT_USAGE;
        }
        slash = strchr(arg, '/');
        ns = slash ? strndup(arg, (size_t) (slash - arg)) : strdup("default");
        if (!ns)
                return log_oom(), CTL_EXIT_FAILURE;
        name = slash ? slash + 1 : arg;

        r = rotate ? trigger_token_rotate(state, ns, name, &token)
                   : trigger_token_get(state, ns, name, &token);
        if (r == -ENOENT) {
                log_error("Trigger %s/%s has no token: is it a loaded webhook trigger?", ns, name);
                return CTL_EXIT_FAILURE;
        }
        if (r == -EACCES || r == -EPERM) {
                log_error("Permission denied: trigger tokens are for root.");
                return CTL_EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to %s the token of %s/%s: %m",
                                rotate ? "rotate" : "read", ns, name);
                return CTL_EXIT_FAILURE;
        }
        printf("%s\n", token);
        return CTL_EXIT_OK;
}
