/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "engine/engine.h"
#include "model/template.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "trigger-cron.h"
#include "trigger-fire.h"

#define IDEMPOTENCY_WINDOW_USEC (24 * 3600 * USEC_PER_SEC)

void fire_result_done(FireResult *r)
{
        free(r->run_ids);
        json_object_put(r->response);
        *r = (FireResult){};
}

/* The run ids of an answer (a replayed fire keeps no other record of them). */
static int fire_result_ids_from_response(FireResult *ret)
{
        json_object *runs = NULL;
        size_t n;

        if (!json_object_object_get_ex(ret->response, "runs", &runs) ||
            !json_object_is_type(runs, json_type_array))
                return 0;
        n = json_object_array_length(runs);
        ret->run_ids = new0(int64_t, MAX(n, (size_t) 1));
        if (!ret->run_ids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *id = NULL;
                if (json_object_object_get_ex(json_object_array_get_idx(runs, i), "id", &id))
                        ret->run_ids[ret->n_runs++] = json_object_get_int64(id);
        }
        return 0;
}

/* Expands the string leaves of a target's input template against ctx. */
static int expand_input(json_object *tmpl, json_object *ctx, json_object **ret)
{
        switch (json_object_get_type(tmpl)) {
        case json_type_string: {
                _cleanup_free_ char *v = NULL;
                int r = template_expand(json_object_get_string(tmpl), ctx, &v);
                if (r < 0)
                        return r;
                *ret = json_object_new_string(v);
                return *ret ? 0 : -ENOMEM;
        }
        case json_type_object: {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                json_object_object_foreach(tmpl, k, v) {
                        json_object *x;
                        int r = expand_input(v, ctx, &x);
                        if (r < 0)
                                return r;
                        json_object_object_add(o, k, x);
                }
                *ret = TAKE_PTR(o);
                return 0;
        }
        case json_type_array: {
                _cleanup_(json_object_putp) json_object *a = json_object_new_array();
                if (!a)
                        return -ENOMEM;
                for (size_t i = 0; i < json_object_array_length(tmpl); i++) {
                        json_object *x;
                        int r = expand_input(json_object_array_get_idx(tmpl, i), ctx, &x);
                        if (r < 0)
                                return r;
                        json_object_array_add(a, x);
                }
                *ret = TAKE_PTR(a);
                return 0;
        }
        default:
                *ret = json_object_get(tmpl);
                return 0;
        }
}

static int idempotency_lookup(Manager *m, const Trigger *t, const char *key, json_object **ret)
{
        sqlite3_stmt *st;
        int r;

        r = store_query(m->store, &st,
                        "SELECT response FROM idempotency WHERE namespace=? AND name=? AND key=? "
                        "AND created_usec > ?",
                        "sssi", t->namespace, t->name, key,
                        (int64_t) (now_usec(CLOCK_REALTIME) - IDEMPOTENCY_WINDOW_USEC));
        if (r < 0)
                return r;
        r = 0;
        if (sqlite3_step(st) == SQLITE_ROW) {
                *ret = json_tokener_parse((const char *) sqlite3_column_text(st, 0));
                r = *ret ? 1 : 0;
        }
        sqlite3_reset(st);
        return r;
}

int trigger_stats(Manager *m, const Trigger *t, uint64_t *ret_count, uint64_t *ret_last_usec)
{
        sqlite3_stmt *st;
        int r;

        *ret_count = 0;
        *ret_last_usec = 0;
        if (!m->store)
                return 0;
        r = store_query(m->store, &st,
                        "SELECT fired_count, last_fired_usec FROM trigger_state "
                        "WHERE namespace=? AND name=?",
                        "ss", t->namespace, t->name);
        if (r < 0)
                return r;
        if (sqlite3_step(st) == SQLITE_ROW) {
                *ret_count = (uint64_t) sqlite3_column_int64(st, 0);
                *ret_last_usec = (uint64_t) sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
        return 0;
}

int trigger_fire(Manager *m, const Trigger *t, const FireRequest *req, FireResult *ret,
                 char **ret_error)
{
        _cleanup_(json_object_putp) json_object *ctx = NULL, *response = NULL;
        _cleanup_free_ char *trigger_id = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        json_object *runs;
        char ts[32];
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        *ret = (FireResult){};
        if (!m->engine) {
                *ret_error = strdup("the flow engine is not available");
                return -ENOTCONN;
        }
        if (asprintf(&trigger_id, "%s/%s", t->namespace, t->name) < 0)
                return -ENOMEM;

        if (req->idempotency_key) {
                json_object *prev = NULL;
                r = idempotency_lookup(m, t, req->idempotency_key, &prev);
                if (r < 0)
                        return r;
                if (r > 0) {
                        ret->response = prev;
                        ret->replayed = true;
                        return fire_result_ids_from_response(ret);
                }
        }

        trigger_cron_fired(m, t); /* the slot is handled, whatever the outcome */
        if (t->suspended) {
                (void) asprintf(ret_error, "trigger %s is suspended", trigger_id);
                return -ESHUTDOWN;
        }
        if (req->sync && t->n_targets != 1) {
                (void) asprintf(ret_error,
                                "mode=sync needs exactly one target; trigger %s has %zu",
                                trigger_id, t->n_targets);
                return -EINVAL;
        }
        for (size_t i = 0; i < t->n_targets; i++)
                if (!registry_find_flow(m->registry, t->namespace, t->targets[i].pipeline)) {
                        (void) asprintf(ret_error, "target flow %s/%s does not exist",
                                        t->namespace, t->targets[i].pipeline);
                        return -ENOENT;
                }
        if (engine_n_active_runs(m->engine) + t->n_targets > m->config.max_queued_runs) {
                *ret_error = strdup("the run queue is full, try again later");
                return -ENOBUFS;
        }
        if (t->concurrency_policy == CONCURRENCY_FORBID &&
            engine_count_trigger_runs(m->engine, trigger_id) > 0) {
                (void) asprintf(ret_error,
                                "a run of trigger %s is still going (concurrencyPolicy: Forbid)",
                                trigger_id);
                return -EBUSY;
        }
        if (t->concurrency_policy == CONCURRENCY_REPLACE)
                (void) engine_cancel_trigger_runs(m->engine, trigger_id,
                                                  "replaced by a newer fire (concurrencyPolicy: "
                                                  "Replace)");

        ctx = json_object_new_object();
        if (!ctx)
                return -ENOMEM;
        format_rfc3339(ts, now, true);
        json_object_object_add(ctx, "name", json_object_new_string(t->name));
        json_object_object_add(ctx, "namespace", json_object_new_string(t->namespace));
        json_object_object_add(ctx, "firedAt", json_object_new_string(ts));
        json_object_object_add(ctx, "body",
                               req->body ? json_object_get(req->body) : json_object_new_object());
        if (req->output)
                json_object_object_add(ctx, "output", json_object_new_string(req->output));

        response = json_object_new_object();
        runs = json_object_new_array();
        ids = new0(int64_t, t->n_targets);
        if (!response || !runs || !ids)
                return -ENOMEM;
        json_object_object_add(response, "fired", json_object_new_boolean(true));
        json_object_object_add(response, "firedAt", json_object_new_string(ts));
        json_object_object_add(response, "trigger", json_object_new_string(trigger_id));
        json_object_object_add(response, "runs", runs);

        for (size_t i = 0; i < t->n_targets; i++) {
                _cleanup_(json_object_putp) json_object *input = NULL, *tctx = NULL;
                Flow *f = registry_find_flow(m->registry, t->namespace, t->targets[i].pipeline);
                json_object *full = json_object_new_object(), *entry;
                char url[512];
                Run *run;

                if (!full)
                        return -ENOMEM;
                json_object_object_add(full, "trigger", json_object_get(ctx));
                if (t->targets[i].input) {
                        r = expand_input(t->targets[i].input, full, &input);
                        if (r < 0) {
                                json_object_put(full);
                                (void) asprintf(ret_error, "cannot expand the input of target "
                                                           "%s: %s",
                                                t->targets[i].pipeline, strerror(-r));
                                return r;
                        }
                } else if (req->body)
                        input = json_object_get(req->body); /* no template: the body is the input */
                json_object_put(full);

                r = engine_submit(m->engine, f, input, trigger_id, json_object_get(ctx), &run);
                if (r == -ENOBUFS) {
                        *ret_error = strdup("the run queue is full, try again later");
                        return r;
                }
                if (r < 0)
                        return r;
                ids[i] = run->id;
                entry = json_object_new_object();
                snprintf(url, sizeof(url), "%s/api/v1/runs/%" PRIi64, m->base_url, run->id);
                json_object_object_add(entry, "id", json_object_new_int64(run->id));
                json_object_object_add(entry, "pipeline",
                                       json_object_new_string(t->targets[i].pipeline));
                json_object_object_add(entry, "url", json_object_new_string(url));
                json_object_array_add(runs, entry);
        }

        (void) store_exec(m->store, NULL,
                          "INSERT INTO trigger_state(namespace, name, fired_count, last_fired_usec) "
                          "VALUES (?1, ?2, 1, ?3) ON CONFLICT(namespace, name) DO UPDATE SET "
                          "fired_count = fired_count + 1, last_fired_usec = ?3",
                          "ssi", t->namespace, t->name, (int64_t) now);
        if (req->idempotency_key)
                (void) store_exec(m->store, NULL,
                                  "INSERT OR REPLACE INTO idempotency(namespace, name, key, "
                                  "created_usec, response) VALUES (?, ?, ?, ?, ?)",
                                  "sssis", t->namespace, t->name, req->idempotency_key,
                                  (int64_t) now,
                                  json_object_to_json_string_ext(response,
                                                                 JSON_C_TO_STRING_PLAIN));

        ret->run_ids = TAKE_PTR(ids);
        ret->n_runs = t->n_targets;
        ret->fired_usec = now;
        ret->response = TAKE_PTR(response);
        return 0;
}
