/* SPDX-License-Identifier: MIT */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "shared/time-util.h"
#include "topic-redis.h"
#include "trigger-topic.h"

#define RECONNECT_USEC (1 * USEC_PER_SEC)
#define READ_BLOCK_MSEC 2000
#define READ_COUNT 64

/* One connection to Redis, driven by sd-event. Two are kept: one blocks in XREADGROUP, the
 * other carries everything else (a command sent behind a blocking read would wait for it). */
typedef struct RedisConn {
        TopicRedis *owner;
        const char *role;
        redisAsyncContext *ac;
        sd_event_source *io;
        sd_event_source *retry;
        uint32_t events;
        bool connected;
} RedisConn;

struct TopicRedis {
        Manager *m;
        char *host, *unix_path;
        int port;
        char *group, *consumer, *prefix;
        uint64_t claim_idle_usec;
        RedisConn cmd, rd;
        sd_event_source *claim_source;
        sd_event_source *read_delay; /* the next read waits (a full run queue, an error) */
        char **streams;      /* read: the streams of the topics subscribed here */
        char **grouped;      /* those whose consumer group exists */
        char **caught_up;    /* those whose entries pending for this consumer were read again */
        bool reading;        /* an XREADGROUP is on its way */
        bool freeing;
        uint64_t generation; /* which connection this is; a reload may replace it */
};

static void conn_connect(RedisConn *c);
static void read_next(TopicRedis *t);

/* ---- hiredis on sd-event ------------------------------------------------------------------ */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        RedisConn *c = userdata;

        /* Either call may end the connection (and clean up this source). */
        if (c->ac && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                redisAsyncHandleRead(c->ac);
        if (c->ac && (revents & EPOLLOUT))
                redisAsyncHandleWrite(c->ac);
        return 0;
}

static void conn_update(RedisConn *c)
{
        if (!c->ac)
                return;
        if (!c->io) {
                if (sd_event_add_io(c->owner->m->event, &c->io, c->ac->c.fd, c->events, on_io,
                                    c) < 0)
                        return;
                (void) sd_event_source_set_description(c->io, "redis");
        } else
                (void) sd_event_source_set_io_events(c->io, c->events);
        (void) sd_event_source_set_enabled(c->io, c->events ? SD_EVENT_ON : SD_EVENT_OFF);
}

static void conn_events(RedisConn *c, uint32_t flag, bool on)
{
        if (on)
                c->events |= flag;
        else
                c->events &= ~flag;
        conn_update(c);
}

static void ev_add_read(void *p)
{
        conn_events(p, EPOLLIN, true);
}

static void ev_del_read(void *p)
{
        conn_events(p, EPOLLIN, false);
}

static void ev_add_write(void *p)
{
        conn_events(p, EPOLLOUT, true);
}

static void ev_del_write(void *p)
{
        conn_events(p, EPOLLOUT, false);
}

static void ev_cleanup(void *p)
{
        RedisConn *c = p;
        c->io = sd_event_source_disable_unref(c->io);
        c->events = 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        conn_connect(userdata);
        return 0;
}

static void conn_retry_later(RedisConn *c)
{
        if (c->owner->freeing)
                return;
        c->retry = sd_event_source_disable_unref(c->retry);
        (void) sd_event_add_time_relative(c->owner->m->event, &c->retry, CLOCK_MONOTONIC,
                                          RECONNECT_USEC, 0, on_retry, c);
}

static RedisConn *conn_of(const redisAsyncContext *ac)
{
        return ac->data;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
        RedisConn *c = conn_of(ac);

        if (status != REDIS_OK) {
                log_warning("Redis (%s): cannot connect: %s; trying again.", c->role,
                            ac->errstr ? ac->errstr : "error");
                c->ac = NULL; /* hiredis frees it */
                conn_retry_later(c);
                return;
        }
        c->connected = true;
        log_info("Redis (%s): connected.", c->role);
        if (c == &c->owner->cmd)
                topic_redis_sync(c->owner);
        else
                read_next(c->owner);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
        RedisConn *c = conn_of(ac);

        c->ac = NULL;
        c->connected = false;
        if (c == &c->owner->rd)
                c->owner->reading = false;
        if (c->owner->freeing)
                return;
        log_warning("Redis (%s): connection lost%s%s; connecting again.", c->role,
                    ac->errstr ? ": " : "", ac->errstr ? ac->errstr : "");
        /* Groups may be gone with a restarted server: make sure of them again. */
        c->owner->grouped = strv_free(c->owner->grouped);
        c->owner->caught_up = strv_free(c->owner->caught_up);
        conn_retry_later(c);
}

static void conn_connect(RedisConn *c)
{
        TopicRedis *t = c->owner;
        redisAsyncContext *ac;

        c->retry = sd_event_source_disable_unref(c->retry);
        ac = t->unix_path ? redisAsyncConnectUnix(t->unix_path) : redisAsyncConnect(t->host, t->port);
        if (!ac || ac->err) {
                log_warning("Redis (%s): cannot connect: %s; trying again.", c->role,
                            ac ? ac->errstr : "out of memory");
                if (ac)
                        redisAsyncFree(ac);
                conn_retry_later(c);
                return;
        }
        c->ac = ac;
        ac->data = c;
        ac->ev.data = c;
        ac->ev.addRead = ev_add_read;
        ac->ev.delRead = ev_del_read;
        ac->ev.addWrite = ev_add_write;
        ac->ev.delWrite = ev_del_write;
        ac->ev.cleanup = ev_cleanup;
        (void) redisAsyncSetConnectCallback(ac, on_connect);
        (void) redisAsyncSetDisconnectCallback(ac, on_disconnect);
        /* The connection is made once the socket is writable. */
        ev_add_write(c);
}

/* ---- messages ------------------------------------------------------------------------------- */

typedef struct Ack {
        Manager *m;
        uint64_t generation;
        char *stream, *id;
} Ack;

static void on_ack_committed(Store *s, int error, void *userdata)
{
        Ack *a = userdata;
        TopicRedis *t = a->m->topic_redis;

        /* Not committed: not acknowledged, so it comes again (and replays, if it got that far).
         * Taken by a connection a reload has replaced since: left pending where it was taken,
         * for that group to read or claim again. */
        if (error >= 0 && t && t->generation == a->generation && !t->freeing &&
            t->cmd.connected)
                (void) redisAsyncCommand(t->cmd.ac, NULL, NULL, "XACK %s %s %s", a->stream,
                                         t->group, a->id);
        free(a->stream);
        free(a->id);
        free(a);
}

static const char *reply_field(const redisReply *fields, const char *name)
{
        for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
             i += 2)
                if (fields->element[i]->type == REDIS_REPLY_STRING &&
                    streq(fields->element[i]->str, name) &&
                    fields->element[i + 1]->type == REDIS_REPLY_STRING)
                        return fields->element[i + 1]->str;
        return NULL;
}

/* One entry [id, [field, value, ...]] of stream: fires the triggers here; returns -ENOBUFS when
 * the run queue is full (the entry stays pending, to be read again). */
static int take_entry(TopicRedis *t, const char *stream, const redisReply *entry)
{
        _cleanup_(topic_result_done) TopicResult res = {};
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_free_ char *key = NULL, *error = NULL;
        const char *id, *text, *topic = stream + strlen(t->prefix);
        Ack *a;
        int r;

        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
            entry->element[0]->type != REDIS_REPLY_STRING)
                return 0;
        id = entry->element[0]->str;
        text = reply_field(entry->element[1], "message");
        body = text ? json_tokener_parse(text) : NULL;
        if (!body || !json_object_is_type(body, json_type_object)) {
                /* Nothing can ever run it: acknowledged, and said so. */
                log_warning("Topic %s: message %s on %s is not a JSON object; dropped.", topic, id,
                            stream);
                body = NULL;
        } else {
                if (asprintf(&key, "redis:%s", id) < 0)
                        return -ENOMEM;
                r = topic_fire_local(t->m, topic, body, key, &res, &error);
                if (r == -ENOBUFS)
                        return r;
                if (r < 0)
                        log_warning("Topic %s: message %s not run: %s", topic, id,
                                    error ?: strerror(-r));
        }
        a = new0(Ack, 1);
        if (!a)
                return -ENOMEM;
        *a = (Ack){ .m = t->m,
                    .generation = t->generation,
                    .stream = strdup(stream),
                    .id = strdup(id) };
        if (!a->stream || !a->id || store_on_commit(t->m->store, on_ack_committed, a) < 0) {
                free(a->stream);
                free(a->id);
                free(a);
                return -ENOMEM;
        }
        return 0;
}

static int on_read_delay(sd_event_source *s, uint64_t usec, void *userdata)
{
        TopicRedis *t = userdata;

        t->read_delay = sd_event_source_disable_unref(t->read_delay);
        read_next(t);
        return 0;
}

static void read_later(TopicRedis *t)
{
        if (t->read_delay || t->freeing)
                return;
        (void) sd_event_add_time_relative(t->m->event, &t->read_delay, CLOCK_MONOTONIC,
                                          RECONNECT_USEC, 0, on_read_delay, t);
}

/* [[stream, [entry...]], ...]: returns whether any entry must wait for room in the queue. */
static bool take_streams(TopicRedis *t, const redisReply *reply, bool from_pending)
{
        bool full = false;

        for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
                const redisReply *s = reply->element[i];
                const char *stream;

                if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
                    s->element[0]->type != REDIS_REPLY_STRING)
                        continue;
                stream = s->element[0]->str;
                /* Reading our own pending entries again ("0") until there are none left. */
                if (from_pending && strv_contains(t->streams, stream) &&
                    !strv_contains(t->caught_up, stream) &&
                    (s->element[1]->type != REDIS_REPLY_ARRAY || s->element[1]->elements == 0))
                        (void) strv_extend(&t->caught_up, stream);
                for (size_t k = 0; s->element[1]->type == REDIS_REPLY_ARRAY &&
                                   k < s->element[1]->elements;
                     k++)
                        if (take_entry(t, stream, s->element[1]->element[k]) == -ENOBUFS)
                                full = true;
        }
        return full;
}

static void on_read(redisAsyncContext *ac, void *r, void *privdata)
{
        TopicRedis *t = privdata;
        redisReply *reply = r;
        bool full = false;

        t->reading = false;
        if (t->freeing || !reply)
                return; /* gone: the disconnect callback takes it from here */
        if (reply->type == REDIS_REPLY_ERROR) {
                log_warning("Redis: XREADGROUP failed: %s", reply->str);
                t->grouped = strv_free(t->grouped); /* NOGROUP: a flushed server */
                topic_redis_sync(t);
                read_later(t);
                return;
        }
        if (reply->type == REDIS_REPLY_ARRAY)
                full = take_streams(t, reply, true);
        if (full) {
                /* Taken again from the pending entries once the queue has room. */
                t->caught_up = strv_free(t->caught_up);
                read_later(t);
                return;
        }
        read_next(t);
}

static void read_next(TopicRedis *t)
{
        static const char *const head[] = { "XREADGROUP", "GROUP", NULL, NULL, "COUNT",
                                            NULL, "BLOCK", NULL, "STREAMS" };
        _cleanup_free_ const char **argv = NULL;
        _cleanup_free_ size_t *lens = NULL;
        size_t n = strv_length(t->grouped), argc = 0;
        char count[16], block[16];

        if (t->freeing || t->reading || t->read_delay || !t->rd.connected || n == 0)
                return;
        argv = new0(const char *, ELEMENTSOF(head) + 2 * n);
        lens = new0(size_t, ELEMENTSOF(head) + 2 * n);
        if (!argv || !lens)
                return;
        snprintf(count, sizeof(count), "%d", READ_COUNT);
        snprintf(block, sizeof(block), "%d", READ_BLOCK_MSEC);
        for (size_t i = 0; i < ELEMENTSOF(head); i++)
                argv[argc++] = head[i];
        argv[2] = t->group;
        argv[3] = t->consumer;
        argv[5] = count;
        argv[7] = block;
        STRV_FOREACH(s, t->grouped)
                argv[argc++] = *s;
        /* "0": this consumer's own entries not yet acknowledged (taken before a restart). */
        STRV_FOREACH(s, t->grouped)
                argv[argc++] = strv_contains(t->caught_up, *s) ? ">" : "0";
        for (size_t i = 0; i < argc; i++)
                lens[i] = strlen(argv[i]);
        if (redisAsyncCommandArgv(t->rd.ac, on_read, t, (int) argc, argv, lens) == REDIS_OK)
                t->reading = true;
}

/* Entries pending for another consumer longer than claimIdleSeconds: that host is gone. */
static void on_claimed(redisAsyncContext *ac, void *r, void *privdata)
{
        TopicRedis *t = ac->data ? conn_of(ac)->owner : NULL;
        redisReply *reply = r;
        char *stream = privdata;

        if (t && !t->freeing && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
            reply->element[1]->type == REDIS_REPLY_ARRAY) {
                for (size_t i = 0; i < reply->element[1]->elements; i++)
                        (void) take_entry(t, stream, reply->element[1]->element[i]);
                if (reply->element[1]->elements > 0)
                        log_info("Redis: took %zu message(s) of %s that another consumer left.",
                                 reply->element[1]->elements, stream);
        }
        free(stream);
}

static int on_claim_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        TopicRedis *t = userdata;
        char idle[32];

        snprintf(idle, sizeof(idle), "%" PRIu64, t->claim_idle_usec / USEC_PER_MSEC);
        STRV_FOREACH(st, t->grouped) {
                char *stream = strdup(*st);
                if (!stream || !t->cmd.connected ||
                    redisAsyncCommand(t->cmd.ac, on_claimed, stream,
                                      "XAUTOCLAIM %s %s %s %s 0-0 COUNT %d", *st, t->group,
                                      t->consumer, idle, READ_COUNT) != REDIS_OK)
                        free(stream);
        }
        (void) sd_event_source_set_time(s, now_usec(CLOCK_MONOTONIC) +
                                                   MAX(t->claim_idle_usec / 2, USEC_PER_SEC / 2));
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- the streams to read ------------------------------------------------------------------ */

static void on_group(redisAsyncContext *ac, void *r, void *privdata)
{
        TopicRedis *t = ac->data ? conn_of(ac)->owner : NULL;
        redisReply *reply = r;
        char *stream = privdata;

        /* Created, or there already (BUSYGROUP): read it. */
        if (t && !t->freeing && reply &&
            (reply->type != REDIS_REPLY_ERROR || startswith(reply->str, "BUSYGROUP"))) {
                if (strv_contains(t->streams, stream) && !strv_contains(t->grouped, stream))
                        (void) strv_extend(&t->grouped, stream);
                read_next(t);
        } else if (t && !t->freeing && reply)
                log_warning("Redis: cannot create group %s on %s: %s", t->group, stream,
                            reply->str);
        free(stream);
}

char *topic_redis_stream(TopicRedis *t, const char *topic)
{
        char *s = NULL;
        return asprintf(&s, "%s%s", t->prefix, topic) < 0 ? NULL : s;
}

void topic_redis_sync(TopicRedis *t)
{
        _cleanup_strv_free_ char **streams = NULL;
        Registry *reg = t->m->registry;

        for (size_t i = 0; reg && i < reg->n_triggers; i++) {
                const Trigger *tr = reg->triggers[i];
                _cleanup_free_ char *s = NULL;
                if (tr->type != TRIGGER_TOPIC || !tr->topic)
                        continue;
                s = topic_redis_stream(t, tr->topic);
                if (s && !strv_contains(streams, s))
                        (void) strv_extend(&streams, s);
        }
        strv_free(t->streams);
        t->streams = TAKE_PTR(streams);
        /* Streams no longer subscribed: not read from the next read on. */
        for (char **g = t->grouped; g && *g;) {
                if (strv_contains(t->streams, *g)) {
                        g++;
                        continue;
                }
                free(*g);
                memmove(g, g + 1, (strv_length(g + 1) + 1) * sizeof(char *));
        }
        if (!t->cmd.connected)
                return;
        STRV_FOREACH(s, t->streams) {
                char *stream;
                if (strv_contains(t->grouped, *s) || !(stream = strdup(*s)))
                        continue;
                /* From "$": a new group starts with what comes next. */
                if (redisAsyncCommand(t->cmd.ac, on_group, stream,
                                      "XGROUP CREATE %s %s $ MKSTREAM", *s, t->group) != REDIS_OK)
                        free(stream);
        }
        read_next(t);
}

bool topic_redis_consuming(TopicRedis *t)
{
        return t && strv_length(t->streams) > 0;
}

/* ---- publishing --------------------------------------------------------------------------- */

typedef struct Publish {
        TopicRedisPublished done;
        void *userdata;
} Publish;

static void on_xadd(redisAsyncContext *ac, void *r, void *privdata)
{
        Publish *p = privdata;
        redisReply *reply = r;

        if (!reply)
                p->done(-ECONNRESET, NULL, "the connection to Redis was lost", p->userdata);
        else if (reply->type != REDIS_REPLY_STRING)
                p->done(-EIO, NULL, reply->type == REDIS_REPLY_ERROR ? reply->str : "bad answer",
                        p->userdata);
        else
                p->done(0, reply->str, NULL, p->userdata);
        free(p);
}

int topic_redis_publish(TopicRedis *t, const char *topic, const char *json,
                        TopicRedisPublished done, void *userdata)
{
        _cleanup_free_ char *stream = NULL;
        Publish *p;

        if (!t->cmd.connected)
                return -ENOTCONN;
        stream = topic_redis_stream(t, topic);
        p = new0(Publish, 1);
        if (!stream || !p) {
                free(p);
                return -ENOMEM;
        }
        *p = (Publish){ done, userdata };
        if (redisAsyncCommand(t->cmd.ac, on_xadd, p, "XADD %s * message %b", stream, json,
                              strlen(json)) != REDIS_OK) {
                free(p);
                return -EIO;
        }
        return 0;
}

/* ---- life --------------------------------------------------------------------------------- */

int topic_redis_new(Manager *m, TopicRedis **ret)
{
        static uint64_t generations;
        _cleanup_(topic_redis_freep) TopicRedis *t = NULL;
        const char *a = m->config.redis_address;
        char host[256];
        int r;

        t = new0(TopicRedis, 1);
        if (!t)
                return -ENOMEM;
        t->m = m;
        t->generation = ++generations;
        t->cmd = (RedisConn){ .owner = t, .role = "commands" };
        t->rd = (RedisConn){ .owner = t, .role = "reads" };
        if (startswith(a, "unix:"))
                t->unix_path = strdup(a + 5);
        else {
                const char *colon = strrchr(a, ':');
                t->port = 6379;
                if (colon && sscanf(colon + 1, "%d", &t->port) != 1)
                        return log_error_errno(-EINVAL, "topics.redis.address: bad port in '%s'.",
                                               a);
                t->host = colon ? strndup(a, (size_t) (colon - a)) : strdup(a);
        }
        if (gethostname(host, sizeof(host)) < 0)
                snprintf(host, sizeof(host), "arkevent");
        host[sizeof(host) - 1] = 0;
        t->consumer = strdup(m->config.redis_consumer ?: host);
        t->group = strdup(m->config.redis_group ?: "arkevent");
        t->prefix = strdup(m->config.redis_prefix ?: "arkevent:topic:");
        t->claim_idle_usec = MAX(m->config.redis_claim_idle_sec, 1u) * USEC_PER_SEC;
        if ((!t->host && !t->unix_path) || !t->consumer || !t->group || !t->prefix)
                return -ENOMEM;
        r = sd_event_add_time_relative(m->event, &t->claim_source, CLOCK_MONOTONIC,
                                       MAX(t->claim_idle_usec / 2, USEC_PER_SEC / 2), 0,
                                       on_claim_timer, t);
        if (r < 0)
                return r;
        log_info("Topics are shared through Redis at %s (group %s, consumer %s).", a, t->group,
                 t->consumer);
        conn_connect(&t->cmd);
        conn_connect(&t->rd);
        *ret = TAKE_PTR(t);
        return 0;
}

TopicRedis *topic_redis_free(TopicRedis *t)
{
        if (!t)
                return NULL;
        t->freeing = true;
        for (RedisConn *c = &t->cmd; c; c = c == &t->cmd ? &t->rd : NULL) {
                if (c->ac)
                        redisAsyncFree(c->ac); /* pending callbacks get NULL */
                c->ac = NULL;
                c->io = sd_event_source_disable_unref(c->io);
                c->retry = sd_event_source_disable_unref(c->retry);
        }
        sd_event_source_disable_unref(t->claim_source);
        sd_event_source_disable_unref(t->read_delay);
        strv_free(t->streams);
        strv_free(t->grouped);
        strv_free(t->caught_up);
        free(t->host);
        free(t->unix_path);
        free(t->group);
        free(t->consumer);
        free(t->prefix);
        free(t);
        return NULL;
}
