/* SPDX-License-Identifier: MIT */
#pragma once

/* Topics shared by several hosts (topics.redis in arkevent.yaml): a message published on topic
 * T is appended to the Redis stream PREFIX+T, and every host whose triggers subscribe to T reads
 * that stream in one consumer group, so each message is taken by one host. That host fires its
 * subscribed triggers (the stream id is the fires' idempotency key) and acknowledges the message
 * once their runs are committed. A message a host took and never acknowledged (it died) is
 * claimed by another after claimIdleSeconds; one it took before a restart, it reads again. */

#include "daemon/manager.h"

typedef struct TopicRedis TopicRedis;

/* Called once the message is in the stream (id), or could not be appended (error < 0, msg). */
typedef void (*TopicRedisPublished)(int error, const char *id, const char *msg, void *userdata);

int topic_redis_new(Manager *m, TopicRedis **ret);
TopicRedis *topic_redis_free(TopicRedis *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(TopicRedis *, topic_redis_free);

/* The topics to read follow the triggers: call after every load of the resources. */
void topic_redis_sync(TopicRedis *t);

/* Appends json to topic's stream. -ENOTCONN when Redis cannot be reached now. */
int topic_redis_publish(TopicRedis *t, const char *topic, const char *json,
                        TopicRedisPublished done, void *userdata);

/* The stream of topic (PREFIX + topic), for answers. */
char *topic_redis_stream(TopicRedis *t, const char *topic);

/* Whether it reads a stream: the daemon must stay up to take messages. */
bool topic_redis_consuming(TopicRedis *t);
