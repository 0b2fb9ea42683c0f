/* SPDX-License-Identifier: MIT */
#include <ctype.h>

#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "trigger-fire.h"
#include "trigger-topic.h"

void topic_result_done(TopicResult *r)
{
        free(r->run_ids);
        json_object_put(r->response);
        *r = (TopicResult){};
}

bool topic_name_valid(const char *topic)
{
        size_t n = topic ? strlen(topic) : 0;

        if (n == 0 || n > 128 || topic[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) topic[i]) && !strchr("._-", topic[i]))
                        return false;
        return true;
}

int topic_fire_local(Manager *m, const char *topic, json_object *body, const char *idempotency_key,
                  TopicResult *ret, char **ret_error)
{
        _cleanup_(json_object_putp) json_object *response = NULL;
        json_object *deliveries;
        size_t n_subscribers = 0, n_full = 0;
        char ts[32];
        int r;

        *ret = (TopicResult){};
        if (!topic_name_valid(topic)) {
                (void) asprintf(ret_error,
                                "bad topic name \"%s\" (1 to 128 of A-Z a-z 0-9 . _ -, not "
                                "starting with a dot)",
                                strempty(topic));
                return -EINVAL;
        }
        if (!m->engine) {
                *ret_error = strdup("the flow engine is not available");
                return -ENOTCONN;
        }

        response = json_object_new_object();
        deliveries = json_object_new_array();
        if (!response || !deliveries) {
                json_object_put(deliveries);
                return -ENOMEM;
        }
        json_object_object_add(response, "topic", json_object_new_string(topic));
        json_object_object_add(response, "publishedAt",
                               json_object_new_string(format_rfc3339(
                                       ts, now_usec(CLOCK_REALTIME), true)));
        json_object_object_add(response, "deliveries", deliveries);

        for (size_t i = 0; m->registry && i < m->registry->n_triggers; i++) {
                const Trigger *t = m->registry->triggers[i];
                _cleanup_(fire_result_done) FireResult fr = {};
                _cleanup_free_ char *error = NULL, *id = NULL;
                json_object *d;

                if (t->type != TRIGGER_TOPIC || !streq_ptr(t->topic, topic))
                        continue;
                n_subscribers++;
                if (asprintf(&id, "%s/%s", t->namespace, t->name) < 0)
                        return -ENOMEM;
                d = json_object_new_object();
                if (!d)
                        return -ENOMEM;
                json_object_array_add(deliveries, d);
                json_object_object_add(d, "trigger", json_object_new_string(id));

                FireRequest req = { .body = body, .idempotency_key = idempotency_key };
                r = trigger_fire(m, t, &req, &fr, &error);
                if (r < 0) {
                        if (r == -ENOMEM)
                                return r;
                        if (r == -ENOBUFS)
                                n_full++;
                        json_object_object_add(d, "fired", json_object_new_boolean(false));
                        json_object_object_add(d, "error",
                                               json_object_new_string(error ?: strerror(-r)));
                        log_notice("Topic %s: trigger %s did not fire: %s", topic, id,
                                   error ?: strerror(-r));
                        continue;
                }
                json_object *runs = NULL;
                if (json_object_object_get_ex(fr.response, "runs", &runs))
                        json_object_object_add(d, "runs", json_object_get(runs));
                json_object_object_add(d, "fired", json_object_new_boolean(true));
                if (fr.replayed)
                        json_object_object_add(d, "replayed", json_object_new_boolean(true));
                int64_t *ids = realloc(ret->run_ids,
                                       MAX(ret->n_runs + fr.n_runs, (size_t) 1) * sizeof(int64_t));
                if (!ids)
                        return -ENOMEM;
                ret->run_ids = ids;
                if (fr.n_runs > 0)
                        memcpy(ids + ret->n_runs, fr.run_ids, fr.n_runs * sizeof(int64_t));
                ret->n_runs += fr.n_runs;
                ret->n_fired++;
        }

        if (n_subscribers > 0 && n_full == n_subscribers) {
                *ret_error = strdup("the run queue is full, try again later");
                return -ENOBUFS;
        }
        log_info("Topic %s: message delivered to %zu of %zu subscribed triggers, %zu runs.",
                 topic, ret->n_fired, n_subscribers, ret->n_runs);
        ret->response = TAKE_PTR(response);
        return 0;
}
