/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon configuration, /etc/arkevent/arkevent.yaml. Every key has a default (shown in
 * conf/arkevent.yaml); a key with a bad value is reported with file:line:column and keeps its
 * default, so a typo never stops the daemon. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/macro.h"

/* One entry of runtimes: a name workflows use (spec.runtime), mapped to how a step runs. */
typedef struct ConfigRuntime {
        char *name;
        char *type;   /* local, systemd, apptainer, singularity */
        char *binary; /* apptainer/singularity: the program; NULL for the default */
} ConfigRuntime;

typedef struct Config {
        int log_level;
        char *resource_dir;
        char *state_dir;
        /* HTTP */
        char *listen_address; /* only used when not socket-activated */
        uint16_t port;
        char *public_url; /* base of webhookURL; default http://<hostname>:<port> */
        uint64_t max_body_bytes;
        unsigned max_connections;
        unsigned max_connections_per_ip;
        unsigned connection_timeout_sec;
        /* engine */
        unsigned max_units_in_flight;
        unsigned max_queued_runs;
        char *step_sandbox; /* none, default, strict */
        bool systemd_private_socket; /* talk to systemd on /run/systemd/private, not the bus */
        uint64_t idle_exit_sec; /* 0: never */
        /* D-Bus */
        char *bus_admin_group; /* members may call the changing methods; empty: root only */
        /* cron */
        uint64_t cron_catch_up_sec; /* a slot missed within this long fires once at start */
        uint64_t resource_watch_delay_msec; /* quiet time after a change before it applies; 0: off */
        /* workflows */
        bool workflows_require_token; /* api.workflowsRequireToken */
        ConfigRuntime *runtimes;
        size_t n_runtimes;
        /* outbound webhooks */
        uint64_t webhook_timeout_sec;
        uint64_t webhook_max_age_sec;
        uint64_t webhook_backoff_initial_sec;
        uint64_t webhook_backoff_max_sec;
        uint64_t webhook_shutdown_grace_sec;
        /* run retention */
        unsigned retention_days;     /* 0: no age limit */
        unsigned retention_max_runs; /* 0: no count limit */
        unsigned sync_timeout_max_sec; /* cap of ?mode=sync&timeout= */
        /* topics shared by several hosts through Redis Streams (topics.redis) */
        char *redis_address;     /* HOST:PORT or unix:PATH; NULL: embedded topics */
        char *redis_group;       /* consumer group, the same on every host */
        char *redis_consumer;    /* this host's name in it (NULL: the host name) */
        char *redis_prefix;      /* stream of topic T: PREFIX + T */
        uint64_t redis_claim_idle_sec; /* another consumer's message pending this long is taken */
} Config;

/* Fills in the defaults. */
int config_init(Config *c);
void config_done(Config *c);

/* Reads path on top of the defaults. A missing file is not an error (defaults apply). Returns the
 * number of problems reported (>= 0), or negative errno when the file could not be read or is not
 * YAML at all. */
int config_load(Config *c, const char *path);

/* One line per key, "key: value", as the daemon sees it (for --dump-config). */
void config_dump(const Config *c, FILE *f);
