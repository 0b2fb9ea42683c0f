/* SPDX-License-Identifier: MIT */
/* GET /metrics: the daemon's state in the Prometheus text format (version 0.0.4). */

#include <inttypes.h>
#include <stdio.h>

#include "engine/engine.h"
#include "http-routes.h"
#include "shared/log.h"

/* A label value, escaped as the format wants (\\, \", \n). */
static void put_label(FILE *f, const char *v)
{
        for (; v && *v; v++) {
                if (*v == '\\' || *v == '"')
                        fputc('\\', f);
                if (*v == '\n') {
                        fputs("\\n", f);
                        continue;
                }
                fputc(*v, f);
        }
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

/* One family from a query whose rows are (label value, number). */
static void family_from_query(FILE *f, Manager *m, const char *name, const char *type,
                              const char *help, const char *label, const char *sql)
{
        sqlite3_stmt *st;

        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        if (!m->store || store_query(m->store, &st, sql, NULL) < 0)
                return;
        while (sqlite3_step(st) == SQLITE_ROW) {
                fprintf(f, "%s{%s=\"", name, label);
                put_label(f, (const char *) sqlite3_column_text(st, 0));
                fprintf(f, "\"} %" PRIi64 "\n", (int64_t) sqlite3_column_int64(st, 1));
        }
        sqlite3_reset(st);
}

int route_metrics(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        gauge(f, "arkevent_start_time_seconds", "When the daemon started (Unix time).",
              (double) m->start_usec / 1e6);
        gauge(f, "arkevent_flows", "Flows loaded.", (double) m->registry->n_flows);
        gauge(f, "arkevent_triggers", "Triggers loaded.", (double) m->registry->n_triggers);
        gauge(f, "arkevent_runs_active", "Runs not finished (pending or running).",
              m->engine ? (double) engine_n_active_runs(m->engine) : 0);
        gauge(f, "arkevent_runs_pending", "Runs waiting for a unit slot or their flow's turn.",
              m->engine ? (double) engine_n_queued_runs(m->engine) : 0);
        gauge(f, "arkevent_units_in_flight", "Activity units started and not yet recorded.",
              m->engine ? (double) engine_n_units_in_flight(m->engine) : 0);
        gauge(f, "arkevent_http_connections", "Open HTTP connections.",
              m->http ? (double) http_server_n_connections(m->http) : 0);
        fprintf(f, "# HELP arkevent_reloads_total Reloads since the daemon started.\n"
                   "# TYPE arkevent_reloads_total counter\narkevent_reloads_total %u\n",
                m->n_reloads);
        fprintf(f, "# HELP arkevent_store_commits_total Database commits since the daemon "
                   "started.\n# TYPE arkevent_store_commits_total counter\n"
                   "arkevent_store_commits_total %" PRIu64 "\n",
                m->store ? store_n_commits(m->store) : 0);
        family_from_query(f, m, "arkevent_runs_stored", "gauge",
                          "Runs in the store by state (retention removes old ones).", "state",
                          "SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state");
        family_from_query(f, m, "arkevent_trigger_fires_total", "counter",
                          "Fires of each trigger, kept across restarts.", "trigger",
                          "SELECT namespace || '/' || name, fired_count FROM trigger_state "
                          "ORDER BY 1");
        family_from_query(f, m, "arkevent_deliveries", "gauge",
                          "Outbound webhook deliveries in the store by state.", "state",
                          "SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state");
        if (fclose(f) != 0)
                return -ENOMEM;
        r = http_request_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len,
                               NULL);
        return r;
}
