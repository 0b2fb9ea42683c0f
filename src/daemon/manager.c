/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "engine/unit-start.h"
#include "bus/bus-manager.h"
#include "http/http-api.h"
#include "http/http-routes.h"
#include "manager.h"
#include "model/loader.h"
#include "shared/fileio.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/token.h"
#include "triggers/trigger-tokens.h"
#include "daemon/idle.h"
#include "daemon/resource-watch.h"
#include "triggers/trigger-cron.h"
#include "triggers/trigger-flow-output.h"
#include "triggers/topic-redis.h"
#include "engine/runtime.h"

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
        /* The engine and the store first: pending commits answer their HTTP requests. */
        engine_free(m->engine);
        store_free(m->store);
        /* After the store: its last commit acknowledges the messages it ran. */
        topic_redis_free(m->topic_redis);
        free(m->topics_redis_applied);
        sd_event_source_disable_unref(m->status_source);
        sd_event_source_disable_unref(m->changed_source);
        outbox_free(m->outbox); /* after the store: a last commit may still call it */
        http_server_free(m->http);
        bus_run_changed_flush();
        bus_trigger_changed_flush();
        sd_bus_slot_unref(m->bus_slot);
        sd_bus_flush_close_unref(m->bus);
        bus_creds_cache_clear();
        trigger_tokens_cache_clear();
        trigger_cron_done();
        registry_free(m->registry);
        config_done(&m->config);
        free(m->config_path);
        free(m->api_token);
        free(m->base_url);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

unsigned manager_n_runs_active(Manager *m)
{
        return m->engine ? engine_n_active_runs(m->engine) : 0;
}

void manager_send_status(Manager *m)
{
        size_t nf = m->registry ? m->registry->n_flows : 0;
        size_t nt = m->registry ? m->registry->n_triggers : 0;

        (void) sd_notifyf(false, "STATUS=%zu flows, %zu triggers, %u runs active", nf, nt,
                          manager_n_runs_active(m));
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

int manager_submitted_path(Manager *m, const char *ns, const char *kind, const char *name,
                           char **ret)
{
        int r = name ? asprintf(ret, "%s/resources/%s_%s_%s.yaml", m->config.state_dir, ns, kind,
                                name)
                     : asprintf(ret, "%s/resources", m->config.state_dir);
        return r < 0 ? -ENOMEM : 0;
}

/* The resource directory, then what was submitted over the API (STATE/resources). */
static int manager_parse_resources(Manager *m, Registry **ret, Diagnostics *diags)
{
        _cleanup_free_ char *submitted = NULL;
        ResourceDoc **docs = NULL;
        size_t n = 0;
        int r;

        r = manager_submitted_path(m, NULL, NULL, NULL, &submitted);
        if (r < 0)
                return r;
        r = resource_dir_parse(m->config.resource_dir, &docs, &n, diags);
        if (r >= 0)
                r = resource_dir_parse(submitted, &docs, &n, diags);
        if (r >= 0)
                r = registry_build(docs, n, m->registry, ret, diags);
        resource_docs_free(docs, n);
        return r;
}

static int manager_load_resources(Manager *m)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_(registry_freep) Registry *reg = NULL;
        int r;

        r = manager_parse_resources(m, &reg, &diags);
        if (r < 0)
                return log_error_errno(r, "Failed to load resources from %s: %m",
                                       m->config.resource_dir);
        /* Runtimes are this host's configuration: checked here, not by the loader. */
        runtimes_use_config(&m->config);
        (void) runtimes_check_registry(reg, &diags);
        diag_sort(&diags);
        log_diagnostics(&diags);
        resource_watch_note_kept(m->registry, reg, &diags);

        registry_free(m->registry);
        m->registry = TAKE_PTR(reg);
        if (m->store)
                (void) trigger_tokens_sync(m->config.state_dir, m->registry, diags.n_errors == 0);
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

/* topics.redis as it is applied: a reload that changes it connects again. */
static char *topics_redis_settings(const Config *c)
{
        char *s = NULL;

        if (!c->redis_address || !*c->redis_address)
                return strdup("");
        if (asprintf(&s, "%s\n%s\n%s\n%s\n%" PRIu64, c->redis_address, strempty(c->redis_group),
                     strempty(c->redis_consumer), strempty(c->redis_prefix),
                     c->redis_claim_idle_sec) < 0)
                return NULL;
        return s;
}

/* Topics are shared through Redis when topics.redis.address is set, and stay on this host
 * otherwise. When a reload changes topics.redis, the connection is replaced: what the old one
 * took and had not acknowledged stays pending in its group and comes again there (no run is
 * repeated: the stream id is each run's idempotency key). */
static void manager_setup_topics(Manager *m)
{
        _cleanup_free_ char *want = topics_redis_settings(&m->config);
        int r;

        if (!want) {
                log_oom();
                return;
        }
        if (streq_ptr(want, m->topics_redis_applied)) {
                if (m->topic_redis)
                        topic_redis_sync(m->topic_redis);
                return;
        }
        if (m->topics_redis_applied) /* a reload */
                log_info("topics.redis %s.",
                         !*m->topics_redis_applied ? "set: topics are shared through Redis now"
                         : *want                   ? "changed: connecting again"
                                                   : "removed: topics stay on this host now");
        m->topic_redis = topic_redis_free(m->topic_redis);
        free_and_replace(m->topics_redis_applied, want);
        if (!m->engine || !*m->topics_redis_applied)
                return;
        r = topic_redis_new(m, &m->topic_redis);
        if (r < 0)
                log_warning_errno(r, "Topics stay on this host, not shared through Redis: %m");
}

int manager_reload(Manager *m)
{
        int r;

        log_info("Reloading configuration and resources.");
        (void) manager_load_config(m);
        if (m->engine)
                engine_set_retention(m->engine,
                                     (uint64_t) m->config.retention_days * 24 * 3600 * USEC_PER_SEC,
                                     m->config.retention_max_runs);
        r = manager_load_resources(m);
        if (r < 0)
                return r;
        m->n_reloads++;
        (void) trigger_cron_reconcile(m);
        trigger_flow_output_watch(m);
        manager_setup_topics(m);
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

static int on_status_due(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;

        m->status_sent_usec = usec;
        manager_send_status(m);
        return 0;
}

static int on_changed_turn(sd_event_source *s, void *userdata)
{
        bus_manager_emit_changed(userdata);
        return 0;
}

void manager_runs_changed(Manager *m)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        uint64_t due = MAX(now, m->status_sent_usec + USEC_PER_SEC);
        int enabled = SD_EVENT_OFF;

        if (m->status_source)
                (void) sd_event_source_get_enabled(m->status_source, &enabled);
        if (enabled == SD_EVENT_OFF) {
                if (!m->status_source)
                        (void) sd_event_add_time(m->event, &m->status_source, CLOCK_MONOTONIC,
                                                 due, 0, on_status_due, m);
                else {
                        (void) sd_event_source_set_time(m->status_source, due);
                        (void) sd_event_source_set_enabled(m->status_source, SD_EVENT_ONESHOT);
                }
        }
        if (!m->changed_source) {
                if (sd_event_add_defer(m->event, &m->changed_source, on_changed_turn, m) < 0)
                        bus_manager_emit_changed(m);
        } else
                (void) sd_event_source_set_enabled(m->changed_source, SD_EVENT_ONESHOT);
}

static void on_run_changed(Run *run, void *userdata)
{
        Manager *m = userdata;

        if (run->state == RUN_RUNNING || run_state_is_final(run->state))
                manager_runs_changed(m);
        bus_manager_emit_run(m, run);
}

static void on_activity_changed(Activity *a, void *userdata)
{
        bus_manager_emit_activity(userdata, a);
}

static int manager_setup_state(Manager *m)
{
        _cleanup_free_ char *db = NULL, *token = NULL;
        char host[256];
        int r;

        r = mkdir_p(m->config.state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", m->config.state_dir);

        if (asprintf(&db, "%s/arkevent.db", m->config.state_dir) < 0 ||
            asprintf(&token, "%s/api-token", m->config.state_dir) < 0)
                return log_oom();
        r = store_open(m->event, db, &m->store);
        if (r < 0)
                return log_error_errno(r, "Failed to open the database %s: %m", db);

        r = token_load_or_create(token, &m->api_token);
        if (r < 0)
                return log_error_errno(r, "Failed to read or create %s: %m", token);
        if (r > 0)
                log_info("Created the API token in %s.", token);

        if (m->config.public_url && *m->config.public_url)
                m->base_url = strdup(m->config.public_url);
        else {
                if (gethostname(host, sizeof(host)) < 0)
                        strcpy(host, "localhost");
                host[sizeof(host) - 1] = 0;
                (void) asprintf(&m->base_url, "http://%s:%u", host, m->config.port);
        }
        if (!m->base_url)
                return log_oom();
        while (endswith(m->base_url, "/"))
                m->base_url[strlen(m->base_url) - 1] = 0;
        return 0;
}

static int manager_setup_outbox(Manager *m)
{
        OutboxConfig oc = {
                .state_dir = m->config.state_dir,
                .timeout_usec = m->config.webhook_timeout_sec * USEC_PER_SEC,
                .max_age_usec = m->config.webhook_max_age_sec * USEC_PER_SEC,
                .backoff_initial_usec = m->config.webhook_backoff_initial_sec * USEC_PER_SEC,
                .backoff_max_usec = m->config.webhook_backoff_max_sec * USEC_PER_SEC,
        };
        int r;

        r = outbox_new(m->event, m->store, m->bus, &oc, &m->outbox);
        if (r >= 0)
                r = outbox_attach(m->outbox, m->engine);
        if (r >= 0)
                r = outbox_start(m->outbox);
        if (r < 0) {
                m->outbox = outbox_free(m->outbox);
                return log_warning_errno(r, "Failed to set up outbound webhooks, continuing "
                                            "without them: %m");
        }
        return 0;
}

static int manager_setup_engine(Manager *m)
{
        EngineConfig ec = {
                .state_dir = m->config.state_dir,
                .step_binary = STEP_BINARY,
                .max_units_in_flight = m->config.max_units_in_flight,
                .max_queued_runs = m->config.max_queued_runs,
                .output_max_bytes = 1024 * 1024,
                .sandbox = step_sandbox_from_string(m->config.step_sandbox),
                .retention_usec = (uint64_t) m->config.retention_days * 24 * 3600 * USEC_PER_SEC,
                .retention_max_runs = m->config.retention_max_runs,
                .systemd_private_socket = m->config.systemd_private_socket,
        };
        EngineListener l = {
                .run_changed = on_run_changed,
                .activity_changed = on_activity_changed,
                .userdata = m,
        };
        const char *step = getenv("ARKEVENT_STEP_BINARY");
        int r;

        if (!m->bus)
                return log_error_errno(ENOTCONN, "No system bus: runs cannot be started.");
        if (ec.sandbox < 0) {
                log_warning("engine.stepSandbox must be none, default or strict, not '%s'; "
                            "using default.",
                            m->config.step_sandbox);
                ec.sandbox = STEP_SANDBOX_DEFAULT;
        }
        if (step)
                ec.step_binary = step;

        r = engine_new(m->event, m->bus, m->store, &ec, &m->engine);
        if (r < 0)
                return r;
        r = engine_add_listener(m->engine, &l);
        if (r < 0)
                return r;
        r = http_triggers_setup(m);
        if (r < 0)
                return r;
        r = trigger_flow_output_setup(m);
        if (r < 0)
                return r;
        r = http_workflows_setup(m);
        if (r < 0)
                return r;
        /* Before recovery: what ended while the daemon was down is told, too. */
        (void) manager_setup_outbox(m);
        r = engine_recover(m->engine);
        if (r < 0)
                return log_error_errno(r, "Failed to recover unfinished runs: %m");
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

        r = manager_setup_state(m);
        if (r < 0)
                return r;

        r = manager_load_resources(m);
        if (r < 0)
                return r;

        r = bus_manager_connect(m);
        if (r < 0)
                log_warning_errno(r, "Not on the system bus, continuing without D-Bus: %m");

        r = manager_setup_engine(m);
        if (r < 0) {
                log_warning_errno(r, "The flow engine is disabled: %m");
                m->engine = engine_free(m->engine);
        }
        (void) trigger_cron_startup(m);
        (void) trigger_flow_output_catch_up(m);
        manager_setup_topics(m);
        (void) resource_watch_setup(m);
        (void) manager_idle_setup(m);

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

        /* What recovery wrote must not wait for the first event of the loop. */
        return store_commit(m->store);
}

int manager_run(Manager *m)
{
        int r;

        (void) sd_notify(false, "READY=1");
        manager_send_status(m);
        log_info("arkevent %s started.", PACKAGE_VERSION);

        r = sd_event_loop(m->event);
        if (m->outbox)
                (void) outbox_drain(m->outbox,
                                    m->config.webhook_shutdown_grace_sec * USEC_PER_SEC);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
