/* SPDX-License-Identifier: MIT */
#pragma once

/* Embedded topics: a message published on a topic fires every topic trigger subscribed to it
 * (source.type: topic, source.topic), each with the message as .trigger.body. The message is
 * durable as the runs it starts: they are committed before the publisher's answer. A topic
 * nobody subscribes to keeps nothing. */

#include "daemon/manager.h"

typedef struct TopicResult {
        int64_t *run_ids; /* every run started, over all subscribed triggers */
        size_t n_runs;
        size_t n_fired; /* triggers that fired (or replayed an earlier fire) */
        json_object *response; /* topic, publishedAt, deliveries[] {trigger, fired, runs | error} */
} TopicResult;

void topic_result_done(TopicResult *r);

/* A topic name: 1 to 128 of [A-Za-z0-9._-], not starting with a dot. */
bool topic_name_valid(const char *topic);

/* Publishes body (borrowed; NULL: {}) on topic here: fires the triggers of this host that
 * subscribe to it (embedded topics, and a message taken from Redis). A trigger that refuses (suspended, Forbid, a
 * missing target) is reported in its delivery and does not stop the others. Errors: -EINVAL a
 * bad topic name, -ENOBUFS the run queue is full for every subscriber, -ENOTCONN no engine;
 * ret_error gets a message for the caller's error answer. */
int topic_fire_local(Manager *m, const char *topic, json_object *body, const char *idempotency_key,
                  TopicResult *ret, char **ret_error);
