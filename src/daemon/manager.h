/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's top-level object: owns the event loop, the configuration, the resources in effect,
 * the HTTP server and the bus connection, and wires them together. */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemon/config.h"
#include "engine/engine.h"
#include "store/store.h"
#include "http/http-server.h"
#include "model/model.h"
#include "outbox/outbox.h"

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *bus_slot;
        Config config;
        char *config_path;
        Registry *registry;
        HttpServer *http;
        Store *store;
        Engine *engine; /* NULL when systemd cannot be reached on the system bus */
        char *api_token;
        char *base_url;
        unsigned n_reloads;
        uint64_t start_usec; /* CLOCK_REALTIME */
        Outbox *outbox; /* outbound webhooks; NULL without the engine */
        sd_event_source *status_source; /* STATUS= to systemd, at most once a second */
        uint64_t status_sent_usec;      /* CLOCK_MONOTONIC */
        sd_event_source *changed_source; /* the manager's PropertiesChanged, once a turn */
        struct TopicRedis *topic_redis; /* topics shared through Redis; NULL: embedded topics */
        char *topics_redis_applied;     /* the topics.redis settings it was made with */
} Manager;

int manager_new(const char *config_path, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Loads configuration and resources, connects to the bus, starts serving HTTP. */
int manager_startup(Manager *m);

/* Re-reads configuration and resources; resources that fail to load keep their previous version. */
int manager_reload(Manager *m);

/* Tells systemd READY=1 and runs the loop until asked to stop. Returns the exit code. */
int manager_run(Manager *m);

void manager_send_status(Manager *m);

/* Resources submitted over the API (D-Bus SubmitResource, REST pipelines) live in
 * STATE/resources, one file per document: NS_KIND_NAME.yaml. name NULL: the directory. */
int manager_submitted_path(Manager *m, const char *ns, const char *kind, const char *name,
                           char **ret);
/* The run counts changed: STATUS= (at most once a second, systemd answers every one with a
 * PropertiesChanged of its own) and the manager's properties (once per loop turn). */
void manager_runs_changed(Manager *m);

unsigned manager_n_runs_active(Manager *m);
