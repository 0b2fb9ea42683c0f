/* SPDX-License-Identifier: MIT */
/* POST /triggers/{ns}/{name}/fire and the trigger status routes. */

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include "engine/engine.h"
#include "http-routes.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/token.h"
#include "daemon/resource-watch.h"
#include "triggers/trigger-cron.h"
#include "triggers/trigger-fire.h"
#include "triggers/topic-redis.h"
#include "triggers/trigger-topic.h"
#include "triggers/trigger-tokens.h"

#define SYNC_TIMEOUT_DEFAULT_USEC (120 * USEC_PER_SEC)

/* A request waiting for its run to end (mode=sync). Costs no thread: the request is suspended
 * in libmicrohttpd and answered from the engine's run-finished notification. */
typedef struct SyncWaiter {
        Manager *m;
        HttpRequest *req;
        int64_t run_id;
        uint64_t started_usec;
        sd_event_source *timeout_source;
        struct SyncWaiter *prev, *next;
} SyncWaiter;

static SyncWaiter *waiters;

static void waiter_free(SyncWaiter *w)
{
        if (w->prev)
                w->prev->next = w->next;
        else
                waiters = w->next;
        if (w->next)
                w->next->prev = w->prev;
        sd_event_source_disable_unref(w->timeout_source);
        free(w);
}

static json_object *run_ref(Manager *m, int64_t id, const char *state)
{
        json_object *o = json_object_new_object();
        char url[512];
        snprintf(url, sizeof(url), "%s/api/v1/runs/%" PRIi64, m->base_url, id);
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "url", json_object_new_string(url));
        if (state)
                json_object_object_add(o, "state", json_object_new_string(state));
        return o;
}

static void on_run_changed(Run *run, void *userdata)
{
        if (!run_state_is_final(run->state))
                return;

        for (SyncWaiter *w = waiters, *next; w; w = next) {
                _cleanup_(json_object_putp) json_object *o = NULL;
                next = w->next;
                if (w->run_id != run->id)
                        continue;

                o = json_object_new_object();
                json_object_object_add(
                        o, "status",
                        json_object_new_string(run->state == RUN_SUCCEEDED ? "succeeded"
                                                                            : "failed"));
                json_object_object_add(o, "output",
                                       run->output ? json_object_new_string(run->output) : NULL);
                if (run->error)
                        json_object_object_add(o, "error", json_object_new_string(run->error));
                json_object_object_add(
                        o, "durationMs",
                        json_object_new_int64((int64_t) ((now_usec(CLOCK_REALTIME) -
                                                          run->created_usec) /
                                                         USEC_PER_MSEC)));
                json_object_object_add(o, "run",
                                       run_ref(w->m, run->id, run_state_to_string(run->state)));
                (void) http_request_reply_json(w->req, run->state == RUN_SUCCEEDED ? 200 : 500,
                                               o);
                waiter_free(w);
        }
}

static int on_sync_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        SyncWaiter *w = userdata;
        json_object *extra = json_object_new_object();

        json_object_object_add(extra, "run", run_ref(w->m, w->run_id, NULL));
        json_object_object_add(extra, "statusText", json_object_new_string("timeout"));
        (void) http_request_reply_error(w->req, 504, extra,
                                        "run %" PRIi64 " did not finish in time; it goes on",
                                        w->run_id);
        waiter_free(w);
        return 0;
}

static void on_waiter_abort(HttpRequest *req, void *userdata)
{
        waiter_free(userdata);
}

int http_triggers_setup(Manager *m)
{
        EngineListener l = { .run_changed = on_run_changed, .userdata = m };
        return m->engine ? engine_add_listener(m->engine, &l) : 0;
}

static bool check_signature(const char *secret_file, HttpRequest *req)
{
        _cleanup_free_ char *secret = NULL;
        const char *sig = http_request_header(req, "X-Hub-Signature-256"), *hex;
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        char expected[2 * EVP_MAX_MD_SIZE + 1];
        size_t body_len, secret_len;
        const char *body = http_request_body(req, &body_len);

        if (!sig || !(hex = startswith(sig, "sha256=")))
                return false;
        if (read_file_capped(secret_file, 4096, &secret, &secret_len) < 0)
                return false;
        while (secret_len > 0 && (secret[secret_len - 1] == '\n' || secret[secret_len - 1] == '\r'))
                secret[--secret_len] = 0;
        if (!HMAC(EVP_sha256(), secret, (int) secret_len, (const uint8_t *) body, body_len, mac,
                  &mac_len))
                return false;
        for (unsigned i = 0; i < mac_len; i++)
                snprintf(expected + 2 * i, 3, "%02x", mac[i]);
        return strlen(hex) == 2 * mac_len && CRYPTO_memcmp(hex, expected, 2 * mac_len) == 0;
}

static int parse_sync(Manager *m, HttpRequest *req, bool *ret_sync, uint64_t *ret_timeout)
{
        uint64_t cap = (uint64_t) (m->config.sync_timeout_max_sec ?: 1) * USEC_PER_SEC;
        const char *mode = http_request_query(req, "mode");
        const char *timeout = http_request_query(req, "timeout");

        *ret_sync = false;
        *ret_timeout = MIN(SYNC_TIMEOUT_DEFAULT_USEC, cap);
        if (mode && !streq(mode, "sync") && !streq(mode, "async"))
                return http_request_reply_error(req, 400, NULL,
                                                "mode must be \"sync\" or \"async\", not \"%s\"",
                                                mode) < 0
                               ? -EIO
                               : 1;
        *ret_sync = mode && streq(mode, "sync");
        if (timeout) {
                if (parse_duration(timeout, ret_timeout) < 0 || *ret_timeout == 0)
                        return http_request_reply_error(req, 400, NULL,
                                                        "bad timeout \"%s\" (use 90s, 2m, 1m30s)",
                                                        timeout) < 0
                                       ? -EIO
                                       : 1;
                if (*ret_timeout > cap)
                        *ret_timeout = cap;
        }
        return 0;
}

typedef struct AsyncReply {
        HttpRequest *req;
        json_object *response;
} AsyncReply;

static void on_fire_committed(Store *s, int error, void *userdata)
{
        AsyncReply *a = userdata;

        if (error < 0)
                (void) http_request_reply_error(a->req, 503, NULL,
                                                "the runs could not be stored: %s",
                                                strerror(-error));
        else
                (void) http_request_reply_json(a->req, 202, a->response);
        json_object_put(a->response);
        free(a);
}

/* Answers 202 with *response (taken) once what is written so far is committed. */
static int reply_202_after_commit(Manager *m, HttpRequest *req, json_object **response)
{
        AsyncReply *a = new0(AsyncReply, 1);
        int r;

        if (!a)
                return -ENOMEM;
        a->req = req;
        a->response = TAKE_PTR(*response);
        r = store_on_commit(m->store, on_fire_committed, a);
        if (r < 0) {
                json_object_put(a->response);
                free(a);
                return r;
        }
        return HTTP_SUSPENDED;
}

int route_trigger_fire(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_free_ char *token = NULL, *error = NULL;
        _cleanup_(fire_result_done) FireResult res = {};
        const char *ns = captures[0], *name = captures[1];
        const char *auth = http_request_header(req, "Authorization");
        const char *given = auth ? startswith(auth, "Bearer ") : http_request_query(req, "token");
        uint64_t timeout;
        bool sync;
        Trigger *t;
        int r;

        (void) http_request_add_log_field(req, "ARKEVENT_TRIGGER=%s/%s", ns, name);
        t = registry_find_trigger(m->registry, ns, name);
        if (!t)
                return http_request_reply_error(req, 404, NULL, "no trigger %s/%s", ns, name);
        if (t->type != TRIGGER_WEBHOOK)
                return http_request_reply_error(req, 400, NULL,
                                                "trigger %s/%s is a %s trigger, not a webhook", ns,
                                                name, trigger_type_to_string(t->type));

        r = trigger_token_get(m->config.state_dir, ns, name, &token);
        if (r < 0 || !given || !token_equal(given, token))
                return http_request_reply_error(req, 401, NULL,
                                                given ? "invalid token for trigger %s/%s"
                                                      : "missing token for trigger %s/%s "
                                                        "(Authorization: Bearer or ?token=)",
                                                ns, name);
        if (t->hmac_secret_file && access(t->hmac_secret_file, R_OK) < 0) {
                json_object *extra = json_object_new_object();
                json_object_object_add(extra, "reason", json_object_new_string("InvalidSource"));
                return http_request_reply_error(req, 503, extra,
                                                "trigger %s/%s cannot check signatures: "
                                                "hmacSecretFile %s cannot be read",
                                                ns, name, t->hmac_secret_file);
        }
        if (t->hmac_secret_file && !check_signature(t->hmac_secret_file, req))
                return http_request_reply_error(req, 401, NULL,
                                                "missing or wrong X-Hub-Signature-256");

        r = parse_sync(m, req, &sync, &timeout);
        if (r != 0)
                return r < 0 ? r : 0;
        if (http_parse_json_body(req, &body))
                return 0;

        FireRequest fr = {
                .body = body,
                .idempotency_key = http_request_header(req, "Idempotency-Key"),
                .sync = sync,
        };
        r = trigger_fire(m, t, &fr, &res, &error);
        switch (r) {
        case 0:
                break;
        case -ESHUTDOWN:
                return http_request_reply_error(req, 503, NULL, "%s", error);
        case -ENOENT: {
                json_object *extra = json_object_new_object();
                json_object_object_add(extra, "reason", json_object_new_string("PipelineNotFound"));
                return http_request_reply_error(req, 503, extra, "%s", error);
        }
        case -EBUSY:
                return http_request_reply_error(req, 409, NULL, "%s", error);
        case -ENOBUFS:
                return http_request_reply_error(req, 429, NULL, "%s", error);
        case -EINVAL:
                return http_request_reply_error(req, 400, NULL, "%s", error);
        case -ENOTCONN:
                return http_request_reply_error(req, 503, NULL, "%s", error);
        default:
                return r;
        }

        for (size_t i = 0; i < res.n_runs && i < 4; i++)
                (void) http_request_add_log_field(req, "ARKEVENT_RUN=%" PRIi64, res.run_ids[i]);
        if (res.replayed)
                (void) http_request_add_log_field(req, "ARKEVENT_IDEMPOTENT_REPLAY=1");

        if (sync && !res.replayed) {
                SyncWaiter *w = new0(SyncWaiter, 1);
                if (!w)
                        return -ENOMEM;
                *w = (SyncWaiter){ .m = m, .req = req, .run_id = res.run_ids[0],
                                   .started_usec = now_usec(CLOCK_MONOTONIC), .next = waiters };
                if (waiters)
                        waiters->prev = w;
                waiters = w;
                http_request_set_userdata(req, w, on_waiter_abort);
                r = sd_event_add_time_relative(m->event, &w->timeout_source, CLOCK_MONOTONIC,
                                               timeout, 0, on_sync_timeout, w);
                if (r < 0) {
                        waiter_free(w);
                        return r;
                }
                return HTTP_SUSPENDED;
        }

        /* The 202 goes out once every run is committed: a crash right after it loses nothing.
         * A replay waits too, for the original fire may be in this very commit. */
        return reply_202_after_commit(m, req, &res.response);
}

/* A publish waiting for Redis to take the message; the request may go first. */
typedef struct RedisPublish {
        HttpRequest *req; /* NULL once its connection has gone */
        char *topic, *stream;
} RedisPublish;

static void redis_publish_free(RedisPublish *p)
{
        free(p->topic);
        free(p->stream);
        free(p);
}

static void on_redis_publish_abort(HttpRequest *req, void *userdata)
{
        RedisPublish *p = userdata;
        p->req = NULL; /* freed when Redis answers */
}

static void on_redis_published(int error, const char *id, const char *msg, void *userdata)
{
        RedisPublish *p = userdata;

        if (p->req && error < 0)
                (void) http_request_reply_error(p->req, 503, NULL,
                                                "the message could not be appended to %s: %s",
                                                p->stream, msg);
        else if (p->req) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                char ts[32];
                json_object_object_add(o, "topic", json_object_new_string(p->topic));
                json_object_object_add(o, "publishedAt",
                                       json_object_new_string(format_rfc3339(
                                               ts, now_usec(CLOCK_REALTIME), true)));
                json_object_object_add(o, "stream", json_object_new_string(p->stream));
                json_object_object_add(o, "messageId", json_object_new_string(id));
                /* The runs start on whichever host takes the message from the stream. */
                json_object_object_add(o, "deliveries", json_object_new_array());
                (void) http_request_reply_json(p->req, 202, o);
        }
        redis_publish_free(p);
}

/* With topics.redis: 202 once the message is in the topic's stream. */
static int publish_to_redis(Manager *m, HttpRequest *req, const char *topic, json_object *body)
{
        RedisPublish *p = new0(RedisPublish, 1);
        int r;

        if (!p)
                return -ENOMEM;
        *p = (RedisPublish){ .req = req, .topic = strdup(topic),
                             .stream = topic_redis_stream(m->topic_redis, topic) };
        if (!p->topic || !p->stream) {
                redis_publish_free(p);
                return -ENOMEM;
        }
        r = topic_redis_publish(m->topic_redis, topic,
                                json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
                                on_redis_published, p);
        if (r < 0) {
                redis_publish_free(p);
                return http_request_reply_error(req, 503, NULL, "Redis cannot be reached: %s",
                                                strerror(-r));
        }
        http_request_set_userdata(req, p, on_redis_publish_abort);
        return HTTP_SUSPENDED;
}

/* POST /api/v1/topics/{topic}/messages: the body is the message; 202 once the runs of every
 * subscribed trigger are committed, with what each trigger did (or, with topics.redis, once
 * the message is in the topic's stream). */
int route_topic_publish(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_(topic_result_done) TopicResult res = {};
        _cleanup_free_ char *error = NULL;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        (void) http_request_add_log_field(req, "ARKEVENT_TOPIC=%s", captures[0]);
        if (!topic_name_valid(captures[0]))
                return http_request_reply_error(req, 400, NULL,
                                                "bad topic name \"%s\" (1 to 128 of A-Z a-z 0-9 "
                                                ". _ -, not starting with a dot)",
                                                captures[0]);
        if (http_parse_json_body(req, &body))
                return 0;
        if (m->topic_redis)
                return publish_to_redis(m, req, captures[0], body);
        r = topic_fire_local(m, captures[0], body, http_request_header(req, "Idempotency-Key"),
                             &res, &error);
        if (r == -ENOBUFS)
                return http_request_reply_error(req, 429, NULL, "%s", error);
        if (r == -ENOTCONN)
                return http_request_reply_error(req, 503, NULL, "%s", error);
        if (r == -EINVAL)
                return http_request_reply_error(req, 400, NULL, "%s", error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < res.n_runs && i < 4; i++)
                (void) http_request_add_log_field(req, "ARKEVENT_RUN=%" PRIi64, res.run_ids[i]);

        return reply_202_after_commit(m, req, &res.response);
}

static json_object *condition(const char *status, const char *reason, const char *message)
{
        json_object *c = json_object_new_object();
        json_object_object_add(c, "type", json_object_new_string("Ready"));
        json_object_object_add(c, "status", json_object_new_string(status));
        json_object_object_add(c, "reason", json_object_new_string(reason));
        json_object_object_add(c, "message", json_object_new_string(message));
        return c;
}

json_object *trigger_status_json(Manager *m, const Trigger *t)
{
        json_object *o = json_object_new_object(), *targets = json_object_new_array(),
                    *conds = json_object_new_array();
        _cleanup_free_ char *msg = NULL;
        const char *missing = NULL;
        uint64_t count = 0, last = 0;
        char url[1024], ts[32];

        json_object_object_add(o, "namespace", json_object_new_string(t->namespace));
        json_object_object_add(o, "name", json_object_new_string(t->name));
        json_object_object_add(o, "type", json_object_new_string(trigger_type_to_string(t->type)));
        if (t->type == TRIGGER_WEBHOOK) {
                snprintf(url, sizeof(url), "%s/triggers/%s/%s/fire", m->base_url, t->namespace,
                         t->name);
                json_object_object_add(o, "webhookURL", json_object_new_string(url));
        }
        if (t->cron)
                json_object_object_add(o, "cron", json_object_new_string(t->cron));
        if (t->flow)
                json_object_object_add(o, "flow", json_object_new_string(t->flow));
        if (t->topic)
                json_object_object_add(o, "topic", json_object_new_string(t->topic));
        for (size_t i = 0; i < t->n_targets; i++) {
                json_object_array_add(targets, json_object_new_string(t->targets[i].pipeline));
                if (!missing && !registry_find_flow(m->registry, t->namespace,
                                                    t->targets[i].pipeline))
                        missing = t->targets[i].pipeline;
        }
        json_object_object_add(o, "targets", targets);
        json_object_object_add(
                o, "concurrencyPolicy",
                json_object_new_string(concurrency_policy_to_string(t->concurrency_policy)));
        json_object_object_add(o, "suspended", json_object_new_boolean(t->suspended));

        if (t->suspended)
                json_object_array_add(conds, condition("False", "Suspended",
                                                       "spec.suspended is true"));
        else if (t->type == TRIGGER_WEBHOOK && t->hmac_secret_file &&
                 access(t->hmac_secret_file, R_OK) < 0) {
                (void) asprintf(&msg, "hmacSecretFile %s cannot be read: %s",
                                t->hmac_secret_file, strerror(errno));
                json_object_array_add(conds, condition("False", "InvalidSource", strna(msg)));
        } else if (missing) {
                (void) asprintf(&msg, "target flow %s/%s not found", t->namespace, missing);
                json_object_array_add(conds, condition("False", "PipelineNotFound", strna(msg)));
        } else if (resource_watch_kept_reason(t))
                json_object_array_add(conds, condition("True", "PreviousVersion",
                                                       resource_watch_kept_reason(t)));
        else if (t->type == TRIGGER_WEBHOOK)
                json_object_array_add(conds, condition("True", "WebhookReady",
                                                       "waiting for webhook POST"));
        else if (t->type == TRIGGER_CRON && trigger_cron_error(t))
                json_object_array_add(conds, condition("False", "TimerFailed",
                                                       trigger_cron_error(t)));
        else if (t->type == TRIGGER_CRON)
                json_object_array_add(conds, condition("True", "ScheduleReady",
                                                       "waiting for the schedule"));
        else if (t->type == TRIGGER_FLOW_OUTPUT) {
                (void) asprintf(&msg, "waiting for flow %s to complete", strna(t->flow));
                json_object_array_add(conds, condition("True", "FlowOutputReady", strna(msg)));
        } else
                json_object_array_add(conds, condition("True", "TopicReady",
                                                       "waiting for messages"));
        json_object_object_add(o, "conditions", conds);

        (void) trigger_stats(m, t, &count, &last);
        json_object_object_add(o, "firedCount", json_object_new_int64((int64_t) count));
        json_object_object_add(o, "lastFiredAt",
                               last ? json_object_new_string(format_rfc3339(ts, last, true))
                                    : NULL);
        trigger_cron_status_json(m, t, o);
        return o;
}

int route_triggers_list(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *items = json_object_new_array();
        const char *ns = http_request_query(req, "namespace");

        if (http_check_api_token(m, req))
                return 0;
        json_object_object_add(o, "triggers", items);
        for (size_t i = 0; i < m->registry->n_triggers; i++)
                if (!ns || streq(ns, m->registry->triggers[i]->namespace))
                        json_object_array_add(items,
                                              trigger_status_json(m, m->registry->triggers[i]));
        return http_request_reply_json(req, 200, o);
}

int route_triggers_get(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *o = NULL;
        Trigger *t;

        if (http_check_api_token(m, req))
                return 0;
        t = registry_find_trigger(m->registry, captures[0], captures[1]);
        if (!t)
                return http_request_reply_error(req, 404, NULL, "no trigger %s/%s", captures[0],
                                                captures[1]);
        o = trigger_status_json(m, t);
        return http_request_reply_json(req, 200, o);
}
