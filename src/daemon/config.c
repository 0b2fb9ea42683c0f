/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <limits.h>
#include <yaml.h>

#include "build-config.h"
#include "config.h"
#include "shared/log.h"

typedef enum ConfigType {
        CONFIG_STRING,
        CONFIG_PORT,
        CONFIG_UNSIGNED,
        CONFIG_UINT64,
        CONFIG_LOG_LEVEL,
        CONFIG_BOOL,
} ConfigType;

typedef struct ConfigKey {
        const char *path;
        ConfigType type;
        size_t offset;
} ConfigKey;

#define KEY(p, t, field) { p, t, offsetof(Config, field) }

static const ConfigKey config_keys[] = {
        KEY("logLevel", CONFIG_LOG_LEVEL, log_level),
        KEY("resourceDirectory", CONFIG_STRING, resource_dir),
        KEY("stateDirectory", CONFIG_STRING, state_dir),
        KEY("idleExitSeconds", CONFIG_UINT64, idle_exit_sec),
        KEY("http.listenAddress", CONFIG_STRING, listen_address),
        KEY("http.port", CONFIG_PORT, port),
        KEY("http.publicURL", CONFIG_STRING, public_url),
        KEY("http.maxBodyBytes", CONFIG_UINT64, max_body_bytes),
        KEY("http.maxConnections", CONFIG_UNSIGNED, max_connections),
        KEY("http.maxConnectionsPerIP", CONFIG_UNSIGNED, max_connections_per_ip),
        KEY("http.connectionTimeoutSeconds", CONFIG_UNSIGNED, connection_timeout_sec),
        KEY("engine.maxUnitsInFlight", CONFIG_UNSIGNED, max_units_in_flight),
        KEY("engine.maxQueuedRuns", CONFIG_UNSIGNED, max_queued_runs),
        KEY("engine.stepSandbox", CONFIG_STRING, step_sandbox),
        KEY("engine.systemdPrivateSocket", CONFIG_BOOL, systemd_private_socket),
        KEY("bus.adminGroup", CONFIG_STRING, bus_admin_group),
        KEY("cron.catchUpSeconds", CONFIG_UINT64, cron_catch_up_sec),
        KEY("resourceWatchDelayMilliseconds", CONFIG_UINT64, resource_watch_delay_msec),
        KEY("api.workflowsRequireToken", CONFIG_BOOL, workflows_require_token),
        KEY("webhooks.timeoutSec", CONFIG_UINT64, webhook_timeout_sec),
        KEY("webhooks.maxAgeSec", CONFIG_UINT64, webhook_max_age_sec),
        KEY("webhooks.backoff.initialSec", CONFIG_UINT64, webhook_backoff_initial_sec),
        KEY("webhooks.backoff.maxSec", CONFIG_UINT64, webhook_backoff_max_sec),
        KEY("webhooks.shutdownGraceSec", CONFIG_UINT64, webhook_shutdown_grace_sec),
        KEY("retention.days", CONFIG_UNSIGNED, retention_days),
        KEY("retention.maxRuns", CONFIG_UNSIGNED, retention_max_runs),
        KEY("http.syncTimeoutMaxSeconds", CONFIG_UNSIGNED, sync_timeout_max_sec),
        KEY("topics.redis.address", CONFIG_STRING, redis_address),
        KEY("topics.redis.group", CONFIG_STRING, redis_group),
        KEY("topics.redis.consumer", CONFIG_STRING, redis_consumer),
        KEY("topics.redis.streamPrefix", CONFIG_STRING, redis_prefix),
        KEY("topics.redis.claimIdleSeconds", CONFIG_UINT64, redis_claim_idle_sec),
};

int config_init(Config *c)
{
        *c = (Config){
                .log_level = LOG_INFO,
                .port = 8092,
                .max_body_bytes = 1024 * 1024,
                .max_connections = 4096,
                .max_connections_per_ip = 1024,
                .connection_timeout_sec = 30,
                .max_units_in_flight = 64,
                .max_queued_runs = 10000,
                .systemd_private_socket = true,
                .idle_exit_sec = 300,
                .cron_catch_up_sec = 24 * 3600,
                .resource_watch_delay_msec = 200,
                .workflows_require_token = true,
                .webhook_timeout_sec = 10,
                .webhook_max_age_sec = 86400,
                .webhook_backoff_initial_sec = 1,
                .webhook_backoff_max_sec = 300,
                .webhook_shutdown_grace_sec = 5,
                .retention_days = 30,
                .retention_max_runs = 10000,
                .sync_timeout_max_sec = 3600,
                .redis_claim_idle_sec = 60,
        };
        c->resource_dir = strdup(RESOURCE_DIR);
        c->state_dir = strdup(STATE_DIR);
        c->step_sandbox = strdup("default");
        c->bus_admin_group = strdup("arkevent");
        c->redis_group = strdup("arkevent");
        c->redis_prefix = strdup("arkevent:topic:");
        if (!c->resource_dir || !c->state_dir || !c->step_sandbox || !c->bus_admin_group ||
            !c->redis_group || !c->redis_prefix)
                return -ENOMEM;
        return 0;
}

void config_done(Config *c)
{
        free(c->resource_dir);
        free(c->state_dir);
        free(c->listen_address);
        free(c->public_url);
        free(c->step_sandbox);
        free(c->bus_admin_group);
        free(c->redis_address);
        free(c->redis_group);
        free(c->redis_consumer);
        free(c->redis_prefix);
        for (size_t i = 0; i < c->n_runtimes; i++) {
                free(c->runtimes[i].name);
                free(c->runtimes[i].type);
                free(c->runtimes[i].binary);
        }
        free(c->runtimes);
        *c = (Config){};
}

static int set_value(Config *c, const ConfigKey *k, const char *v)
{
        void *p = (uint8_t *) c + k->offset;
        unsigned long long u;
        char *end;
        int l;

        switch (k->type) {
        case CONFIG_STRING:
                return free_and_strdup(p, v);
        case CONFIG_LOG_LEVEL:
                l = log_parse_level(v);
                if (l < 0)
                        return -EINVAL;
                *(int *) p = l;
                return 0;
        case CONFIG_BOOL:
                if (streq(v, "true") || streq(v, "yes") || streq(v, "on"))
                        *(bool *) p = true;
                else if (streq(v, "false") || streq(v, "no") || streq(v, "off"))
                        *(bool *) p = false;
                else
                        return -EINVAL;
                return 0;
        case CONFIG_PORT:
        case CONFIG_UNSIGNED:
        case CONFIG_UINT64:
                if (!*v || *v == '-')
                        return -EINVAL;
                errno = 0;
                u = strtoull(v, &end, 10);
                if (errno != 0 || *end)
                        return -EINVAL;
                if (k->type == CONFIG_PORT) {
                        if (u == 0 || u > 65535)
                                return -ERANGE;
                        *(uint16_t *) p = (uint16_t) u;
                } else if (k->type == CONFIG_UNSIGNED) {
                        if (u > UINT_MAX)
                                return -ERANGE;
                        *(unsigned *) p = (unsigned) u;
                } else
                        *(uint64_t *) p = u;
                return 0;
        }
        return -EINVAL;
}

static void yaml_parser_deletep(yaml_parser_t *p)
{
        yaml_parser_delete(p);
}

static void yaml_document_deletep(yaml_document_t *d)
{
        yaml_document_delete(d);
}

static const char *const runtime_types[] = { "local", "systemd", "apptainer", "singularity",
                                             NULL };

static bool runtime_type_valid(const char *t)
{
        for (size_t i = 0; runtime_types[i]; i++)
                if (streq(runtime_types[i], t))
                        return true;
        return false;
}

/* runtimes: NAME: TYPE, or NAME: {type: TYPE, binary: PATH}. */
static int walk_runtimes(Config *c, const char *path, yaml_document_t *doc, yaml_node_t *node,
                         unsigned *problems)
{
        if (node->type != YAML_MAPPING_NODE) {
                log_warning("%s:%zu:%zu: warning: runtimes: expected a mapping of names, "
                            "ignoring.",
                            path, node->start_mark.line + 1, node->start_mark.column + 1);
                (*problems)++;
                return 0;
        }
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(doc, pair->key);
                yaml_node_t *value = yaml_document_get_node(doc, pair->value);
                const char *type = NULL, *binary = NULL;
                ConfigRuntime *n;

                if (!key || !value || key->type != YAML_SCALAR_NODE)
                        continue;
                if (value->type == YAML_SCALAR_NODE)
                        type = (const char *) value->data.scalar.value;
                else if (value->type == YAML_MAPPING_NODE)
                        for (yaml_node_pair_t *q = value->data.mapping.pairs.start;
                             q < value->data.mapping.pairs.top; q++) {
                                yaml_node_t *k = yaml_document_get_node(doc, q->key);
                                yaml_node_t *v = yaml_document_get_node(doc, q->value);
                                const char *ks;

                                if (!k || !v || k->type != YAML_SCALAR_NODE ||
                                    v->type != YAML_SCALAR_NODE)
                                        continue;
                                ks = (const char *) k->data.scalar.value;
                                if (streq(ks, "type"))
                                        type = (const char *) v->data.scalar.value;
                                else if (streq(ks, "binary"))
                                        binary = (const char *) v->data.scalar.value;
                                else {
                                        log_warning("%s:%zu:%zu: warning: unknown setting "
                                                    "'runtimes.%s.%s' (expected type or "
                                                    "binary), ignoring.",
                                                    path, k->start_mark.line + 1,
                                                    k->start_mark.column + 1,
                                                    (const char *) key->data.scalar.value, ks);
                                        (*problems)++;
                                }
                        }
                if (!type || !runtime_type_valid(type) || (binary && binary[0] != '/')) {
                        log_warning("%s:%zu:%zu: warning: runtime '%s': expected a type (local, "
                                    "systemd, apptainer or singularity) and optionally an "
                                    "absolute binary path, ignoring.",
                                    path, value->start_mark.line + 1,
                                    value->start_mark.column + 1,
                                    (const char *) key->data.scalar.value);
                        (*problems)++;
                        continue;
                }
                n = realloc(c->runtimes, (c->n_runtimes + 1) * sizeof(ConfigRuntime));
                if (!n)
                        return -ENOMEM;
                c->runtimes = n;
                n[c->n_runtimes] = (ConfigRuntime){
                        .name = strdup((const char *) key->data.scalar.value),
                        .type = strdup(type),
                        .binary = binary ? strdup(binary) : NULL,
                };
                if (!n[c->n_runtimes].name || !n[c->n_runtimes].type ||
                    (binary && !n[c->n_runtimes].binary)) {
                        free(n[c->n_runtimes].name);
                        free(n[c->n_runtimes].type);
                        free(n[c->n_runtimes].binary);
                        return -ENOMEM;
                }
                c->n_runtimes++;
        }
        return 0;
}

static int walk(Config *c, const char *path, yaml_document_t *doc, yaml_node_t *node,
                const char *prefix, unsigned *problems)
{
        if (node->type != YAML_MAPPING_NODE) {
                log_warning("%s:%zu:%zu: warning: expected a mapping, ignoring.", path,
                            node->start_mark.line + 1, node->start_mark.column + 1);
                (*problems)++;
                return 0;
        }

        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *key = yaml_document_get_node(doc, pair->key);
                yaml_node_t *value = yaml_document_get_node(doc, pair->value);
                _cleanup_free_ char *full = NULL;
                const ConfigKey *k = NULL;

                if (!key || !value || key->type != YAML_SCALAR_NODE)
                        continue;
                if (asprintf(&full, "%s%s%s", prefix, *prefix ? "." : "",
                             (const char *) key->data.scalar.value) < 0)
                        return -ENOMEM;

                if (streq(full, "runtimes")) {
                        int r = walk_runtimes(c, path, doc, value, problems);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (value->type == YAML_MAPPING_NODE) {
                        int r = walk(c, path, doc, value, full, problems);
                        if (r < 0)
                                return r;
                        continue;
                }

                for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                        if (streq(config_keys[i].path, full))
                                k = &config_keys[i];
                if (!k) {
                        log_warning("%s:%zu:%zu: warning: unknown setting '%s', ignoring.", path,
                                    key->start_mark.line + 1, key->start_mark.column + 1, full);
                        (*problems)++;
                        continue;
                }
                if (value->type != YAML_SCALAR_NODE ||
                    set_value(c, k, (const char *) value->data.scalar.value) < 0) {
                        log_warning("%s:%zu:%zu: warning: invalid value for '%s', keeping the "
                                    "default.",
                                    path, value->start_mark.line + 1,
                                    value->start_mark.column + 1, full);
                        (*problems)++;
                }
        }
        return 0;
}

int config_load(Config *c, const char *path)
{
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_(yaml_parser_deletep) yaml_parser_t parser = {};
        _cleanup_(yaml_document_deletep) yaml_document_t doc = {};
        unsigned problems = 0;
        yaml_node_t *root;
        int r;

        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_file(&parser, f);
        if (!yaml_parser_load(&parser, &doc)) {
                log_error("%s:%zu:%zu: error: %s", path, parser.problem_mark.line + 1,
                          parser.problem_mark.column + 1, strna(parser.problem));
                return -EBADMSG;
        }

        root = yaml_document_get_root_node(&doc);
        if (!root) /* empty file */
                return 0;
        if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
                return 0;

        r = walk(c, path, &doc, root, "", &problems);
        if (r < 0)
                return r;
        return (int) problems;
}

void config_dump(const Config *c, FILE *f)
{
        static const char *const level_names[] = { "emerg", "alert", "crit", "err",
                                                    "warning", "notice", "info", "debug" };
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                const ConfigKey *k = &config_keys[i];
                const void *p = (const uint8_t *) c + k->offset;

                fprintf(f, "%s: ", k->path);
                switch (k->type) {
                case CONFIG_STRING:
                        fprintf(f, "%s\n", strempty(*(char *const *) p));
                        break;
                case CONFIG_LOG_LEVEL:
                        fprintf(f, "%s\n", level_names[*(const int *) p & 7]);
                        break;
                case CONFIG_PORT:
                        fprintf(f, "%u\n", *(const uint16_t *) p);
                        break;
                case CONFIG_UNSIGNED:
                        fprintf(f, "%u\n", *(const unsigned *) p);
                        break;
                case CONFIG_UINT64:
                        fprintf(f, "%" PRIu64 "\n", *(const uint64_t *) p);
                        break;
                case CONFIG_BOOL:
                        fprintf(f, "%s\n", *(const bool *) p ? "true" : "false");
                        break;
                }
        }
        for (size_t i = 0; i < c->n_runtimes; i++)
                fprintf(f, "runtimes.%s: %s%s%s\n", c->runtimes[i].name, c->runtimes[i].type,
                        c->runtimes[i].binary ? " " : "", strempty(c->runtimes[i].binary));
}
