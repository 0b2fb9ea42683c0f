/* SPDX-License-Identifier: MIT */
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>

#include "bus/bus-manager.h"
#include "daemon/idle.h"
#include "triggers/topic-redis.h"
#include "daemon/resource-watch.h"
#include "outbox/outbox.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "triggers/trigger-cron.h"
#include "triggers/trigger-flow-output.h"

#define IDLE_CHECK_MIN_USEC (250 * USEC_PER_MSEC)
#define IDLE_CHECK_MAX_USEC (10 * USEC_PER_SEC)
/* systemd refuses a sixth start within 10 s (StartLimitBurst=5, StartLimitIntervalSec=10s) and
 * then fails the socket too. Living at least this long keeps idle exits and wake-ups, however
 * frequent, below that limit. */
#define IDLE_MIN_LIFETIME_USEC (2500 * USEC_PER_MSEC)

static sd_event_source *idle_source;
static uint64_t busy_usec; /* CLOCK_MONOTONIC: when the daemon was last seen busy */
static uint64_t start_usec; /* CLOCK_MONOTONIC */

bool manager_is_idle(Manager *m)
{
        uint64_t queued = 0;

        if (m->engine && (engine_n_active_runs(m->engine) > 0 ||
                          engine_n_queued_runs(m->engine) > 0 ||
                          engine_n_units_in_flight(m->engine) > 0))
                return false;
        /* Open connections include suspended requests (mode=sync waiters). */
        if (m->http && http_server_n_connections(m->http) > 0)
                return false;
        if (m->bus && sd_bus_get_n_queued_read(m->bus, &queued) >= 0 && queued > 0)
                return false;
        if (resource_watch_pending() || trigger_cron_busy() || trigger_flow_output_busy())
                return false;
        /* Messages in a shared stream come from no socket: whoever reads it must stay. */
        if (topic_redis_consuming(m->topic_redis))
                return false;

        /* Outbound webhook deliveries still to make (retries included) keep the daemon up. */
        if (outbox_n_pending(m->outbox) > 0)
                return false;

        return true;
}

static uint64_t check_interval(uint64_t idle_usec)
{
        if (idle_usec == 0)
                return IDLE_CHECK_MAX_USEC;
        return MIN(MAX(idle_usec / 4, IDLE_CHECK_MIN_USEC), IDLE_CHECK_MAX_USEC);
}

/* Asks systemd to start this unit again once it has stopped: the start job waits for the stop
 * that STOPPING=1 began. */
static void restart_after_exit(Manager *m)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *unit = NULL;
        int r;

        if (!m->bus || sd_pid_get_unit(0, &unit) < 0)
                return;
        r = sd_bus_call_method(m->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "StartUnit", &error, NULL, "ss",
                               unit, "replace");
        if (r < 0)
                log_warning_errno(r, "Failed to queue a start of %s: %s", unit,
                                  error.message ?: strerror(-r));
}

static int on_idle_check(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC), idle = m->config.idle_exit_sec * USEC_PER_SEC;
        int r;

        (void) sd_event_source_set_time(s, now + check_interval(idle));
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);

        if (idle == 0 || !manager_is_idle(m)) {
                busy_usec = now;
                return 0;
        }
        if (now - busy_usec < idle || now - start_usec < IDLE_MIN_LIFETIME_USEC)
                return 0;

        log_info("Idle for %" PRIu64 "s, exiting; the socket and the bus name start the "
                 "daemon again.",
                 m->config.idle_exit_sec);
        /* First STOPPING=1: from now on an activation (a connection on the socket, a call to the
         * bus name) queues a start that runs once this process is gone. The socket stays with
         * systemd; connections not yet accepted wait in its backlog for the next instance. */
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Idle, exiting.");

        /* Then the bus name goes, and what was sent to this instance before is handled. */
        if (m->bus) {
                r = sd_bus_release_name(m->bus, BUS_NAME);
                if (r < 0)
                        log_warning_errno(r, "Failed to release %s, ignoring: %m", BUS_NAME);
                while (sd_bus_process(m->bus, NULL) > 0)
                        ;
        }
        /* Work that arrived meanwhile is stored; the next instance carries it on. */
        if (!manager_is_idle(m)) {
                log_info("Work arrived while exiting; the next start carries it on.");
                restart_after_exit(m);
        }
        return sd_event_exit(m->event, 0);
}

int manager_idle_setup(Manager *m)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        int r;

        if (idle_source)
                return 0;
        busy_usec = start_usec = now;
        r = sd_event_add_time(m->event, &idle_source, CLOCK_MONOTONIC,
                              now + check_interval(m->config.idle_exit_sec * USEC_PER_SEC), 0,
                              on_idle_check, m);
        if (r < 0)
                return log_warning_errno(r, "Failed to arm the idle check: %m");
        (void) sd_event_source_set_description(idle_source, "idle-exit");
        return 0;
}
