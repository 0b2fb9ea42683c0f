/* SPDX-License-Identifier: MIT */
/* GET /api/v1/runs/{id}/deliveries: the outbound webhook deliveries of a run, oldest first. */
#include <inttypes.h>

#include "http-routes.h"
#include "outbox/outbox.h"
#include "shared/json-util.h"
#include "shared/time-util.h"

static json_object *column_time(sqlite3_stmt *st, int col)
{
        char buf[32];

        if (sqlite3_column_type(st, col) == SQLITE_NULL || sqlite3_column_int64(st, col) <= 0)
                return NULL;
        return json_object_new_string(
                format_rfc3339(buf, (uint64_t) sqlite3_column_int64(st, col), true));
}

static json_object *column_string(sqlite3_stmt *st, int col)
{
        const unsigned char *t = sqlite3_column_text(st, col);
        return t ? json_object_new_string((const char *) t) : NULL;
}

static json_object *column_int(sqlite3_stmt *st, int col)
{
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
                return NULL;
        return json_object_new_int64(sqlite3_column_int64(st, col));
}

int route_runs_deliveries(Manager *m, HttpRequest *req, char **captures)
{
        _cleanup_(json_object_putp) json_object *list = NULL;
        sqlite3_stmt *st;
        int64_t id;
        bool found;
        int r;

        if (http_check_api_token(m, req))
                return 0;
        if (!m->store)
                return http_request_reply_error(req, 503, NULL, "the store is not available");
        if (http_parse_id(captures[0], &id) < 0)
                return http_request_reply_error(req, 400, NULL, "bad run id: %s", captures[0]);

        r = store_query(m->store, &st, "SELECT 1 FROM runs WHERE id=?", "i", (int64_t) id);
        if (r < 0)
                return r;
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        if (!found)
                return http_request_reply_error(req, 404, NULL, "no run %" PRIi64, id);

        list = json_object_new_array();
        if (!list)
                return -ENOMEM;
        r = store_query(m->store, &st,
                        "SELECT id, webhook, url, event, state, attempts, last_status, last_error, "
                        "created_usec, delivered_usec, next_attempt_usec, activity_id "
                        "FROM deliveries WHERE run_id=? ORDER BY id",
                        "i", (int64_t) id);
        if (r < 0)
                return r;
        while (sqlite3_step(st) == SQLITE_ROW) {
                json_object *o = json_object_new_object();
                char did[OUTBOX_DELIVERY_ID_MAX];
                bool pending = streq_ptr((const char *) sqlite3_column_text(st, 4), "pending");

                if (!o) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
                json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(st, 0)));
                json_object_object_add(o, "webhook", column_string(st, 1));
                json_object_object_add(o, "url", column_string(st, 2));
                json_object_object_add(o, "event", column_string(st, 3));
                json_object_object_add(o, "state", column_string(st, 4));
                json_object_object_add(o, "attempts", column_int(st, 5));
                json_object_object_add(o, "lastStatus",
                                       sqlite3_column_int64(st, 6) > 0 ? column_int(st, 6) : NULL);
                json_object_object_add(o, "lastError", column_string(st, 7));
                json_object_object_add(o, "createdAt", column_time(st, 8));
                json_object_object_add(o, "deliveredAt", column_time(st, 9));
                json_object_object_add(o, "nextAttemptAt", pending ? column_time(st, 10) : NULL);
                json_object_object_add(o, "activityId", column_int(st, 11));
                /* The X-Arkevent-Delivery header the receiver saw. */
                json_object_object_add(
                        o, "deliveryId",
                        m->outbox ? json_object_new_string(outbox_delivery_id(
                                            m->outbox, sqlite3_column_int64(st, 0), did))
                                  : NULL);
                json_object_array_add(list, o);
        }
        sqlite3_reset(st);
        return http_request_reply_json(req, 200, list);
}
