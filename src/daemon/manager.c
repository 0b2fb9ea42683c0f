/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "bus/bus-manager.h"
#include "http/http-api.h"
#include "manager.h"
#include "model/loader.h"
#include "shared/log.h"
#include "shared/time-util.h"

int manager_new(const char *config_path, Manager **ret)
{
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = new0(Manager, 1);
        if (!m)
                return log_oom();

        r = config_init(&m->config);
        if (r < 0)
                return log_oom();
        m->config_path = strdup(config_path ?: CONFIG_FILE);
        if (!m->config_path)
                return log_oom();
        m->start_usec = now_usec(CLOCK_REALTIME);

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        http_server_free(m->http);
        sd_bus_slot_unref(m->bus_slot);
        sd_bus_flush_close_unref(m->bus);
        registry_free(m->registry);
        config_done(&m->config);
        free(m->config_path);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

void manager_send_status(Manager *m)
{
        size_t nf = m->registry ? m->registry->n_flows : 0;
        size_t nt = m->registry ? m->registry->n_triggers : 0;

        (void) sd_notifyf(false, "STATUS=%zu flows, %zu triggers, %u runs active", nf, nt,
                          m->n_runs_active);
}

static void log_diagnostics(const Diagnostics *diags)
{
        for (size_t i = 0; i < diags->n; i++) {
                _cleanup_free_ char *line = NULL;
                const Diagnostic *d = &diags->items[i];

                if (diag_format(d, &line) < 0)
                        continue;
                if (d->severity == DIAG_ERROR)
                        log_error("%s", line);
                else
                        log_warning("%s", line);
        }
}

static int manager_load_resources(Manager *m)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_(registry_freep) Registry *reg = NULL;
        int r;

        r = registry_load_dir(m->config.resource_dir, m->registry, &reg, &diags);
        if (r < 0)
                return log_error_errno(r, "Failed to load resources from %s: %m",
                                       m->config.resource_dir);
        diag_sort(&diags);
        log_diagnostics(&diags);

        registry_free(m->registry);
        m->registry = TAKE_PTR(reg);
        log_info("Loaded %zu flows and %zu triggers from %s (%zu problems).",
                 m->registry->n_flows, m->registry->n_triggers, m->config.resource_dir,
                 diags.n_errors);
        return 0;
}

static int manager_load_config(Manager *m)
{
        Config c;
        int r;

        r = config_init(&c);
        if (r < 0)
                return log_oom();
        r = config_load(&c, m->config_path);
        if (r < 0) {
                config_done(&c);
                return log_error_errno(r, "Failed to read %s, keeping the previous settings: %m",
                                       m->config_path);
        }
        config_done(&m->config);
        m->config = c;
        log_set_max_level(m->config.log_level);
        return 0;
}

int manager_reload(Manager *m)
{
        int r;

        log_info("Reloading configuration and resources.");
        (void) manager_load_config(m);
        r = manager_load_resources(m);
        if (r < 0)
                return r;
        m->n_reloads++;
        manager_send_status(m);
        bus_manager_emit_changed(m);
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;

        (void) sd_notify(false, "STOPPING=1");
        log_info("Received SIG%s, exiting.", si->ssi_signo == SIGINT ? "INT" : "TERM");
        return sd_event_exit(m->event, 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;

        (void) sd_notify(false, "RELOADING=1");
        (void) manager_reload(m);
        (void) sd_notify(false, "READY=1");
        return 0;
}

static int manager_listen_fd(Manager *m, int *ret_fd)
{
        char **names = NULL;
        int n, fd = -EBADF, r;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");

        for (int i = 0; i < n; i++) {
                int f = SD_LISTEN_FDS_START + i;

                if (fd < 0 && (streq(names[i], "http") || streq(names[i], "arkevent.socket")) &&
                    sd_is_socket(f, 0, SOCK_STREAM, 1) > 0)
                        fd = f;
                else {
                        log_warning("Closing unexpected socket '%s' passed by systemd.",
                                    names[i]);
                        close(f);
                }
                free(names[i]);
        }
        free(names);

        if (fd >= 0) {
                log_debug("Serving HTTP on the socket passed by systemd.");
                *ret_fd = fd;
                return 0;
        }

        r = http_listen(m->config.listen_address, m->config.port, &fd);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s port %u: %m",
                                       m->config.listen_address ?: "*", m->config.port);
        log_info("Listening on %s port %u.", m->config.listen_address ?: "*", m->config.port);
        *ret_fd = fd;
        return 0;
}

int manager_startup(Manager *m)
{
        HttpServerConfig hc;
        int fd = -EBADF, r;

        (void) manager_load_config(m);

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");

        r = sd_event_add_signal(m->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_sigterm,
                                m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGTERM: %m");
        r = sd_event_add_signal(m->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_sigterm, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGINT: %m");
        r = sd_event_add_signal(m->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGHUP: %m");

        r = manager_load_resources(m);
        if (r < 0)
                return r;

        r = bus_manager_connect(m);
        if (r < 0)
                log_warning_errno(r, "Not on the system bus, continuing without D-Bus: %m");

        r = manager_listen_fd(m, &fd);
        if (r < 0)
                return r;

        hc = (HttpServerConfig){
                .max_body_bytes = m->config.max_body_bytes,
                .max_connections = m->config.max_connections,
                .max_connections_per_ip = m->config.max_connections_per_ip,
                .connection_timeout_sec = m->config.connection_timeout_sec,
        };
        r = http_server_new(m->event, fd, &hc, http_api_handler, m, &m->http);
        if (r < 0) {
                close(fd);
                return r;
        }
        return 0;
}

int manager_run(Manager *m)
{
        int r;

        (void) sd_notify(false, "READY=1");
        manager_send_status(m);
        log_info("arkevent %s started.", PACKAGE_VERSION);

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
