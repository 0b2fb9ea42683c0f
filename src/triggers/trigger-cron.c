/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>
#include <unistd.h>

#include "model/cron.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "shared/time-util.h"
#include "trigger-cron.h"
#include "trigger-fire.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define UNIT_NAME_MAX 255

/* A slot older than this that the store does not show as handled was lost even if its timer
 * elapsed: the fire it started would have reached the daemon long before. */
#define FIRE_IN_FLIGHT_USEC (120 * USEC_PER_SEC)
/* Reconciling again after a replaced timer has not been unloaded yet. */
#define RETRY_USEC (500 * USEC_PER_MSEC)

typedef struct TimerError {
        char *trigger; /* "ns/name" */
        char *message;
} TimerError;

static TimerError *errors;
static size_t n_errors;
static sd_event_source *retry_source;
static void next_cache_clear(void);

static void errors_clear(void)
{
        for (size_t i = 0; i < n_errors; i++) {
                free(errors[i].trigger);
                free(errors[i].message);
        }
        free(errors);
        errors = NULL;
        n_errors = 0;
}

static void error_set(const Trigger *t, const char *message)
{
        TimerError *n = realloc(errors, (n_errors + 1) * sizeof(TimerError));
        if (!n)
                return;
        errors = n;
        errors[n_errors] = (TimerError){};
        if (asprintf(&errors[n_errors].trigger, "%s/%s", t->namespace, t->name) < 0)
                return;
        errors[n_errors].message = strdup(message);
        n_errors++;
}

const char *trigger_cron_error(const Trigger *t)
{
        for (size_t i = 0; i < n_errors; i++) {
                const char *id = errors[i].trigger, *rest = startswith(id, t->namespace);
                if (rest && rest[0] == '/' && streq(rest + 1, t->name))
                        return errors[i].message;
        }
        return NULL;
}

bool trigger_cron_busy(void)
{
        int enabled = SD_EVENT_OFF;
        return retry_source && sd_event_source_get_enabled(retry_source, &enabled) >= 0 &&
               enabled != SD_EVENT_OFF;
}

/* systemd's unit name escaping of a path-like string ("ns/name" -> "ns-name", '-' -> \x2d). */
static char *unit_name_escape(const char *s)
{
        static const char hex[] = "0123456789abcdef";
        char *r = malloc(strlen(s) * 4 + 1), *t = r;

        if (!r)
                return NULL;
        for (const char *f = s; *f; f++) {
                unsigned char c = (unsigned char) *f;
                if (c == '/')
                        *t++ = '-';
                else if ((f == s && c == '.') || c == '-' || c == '\\' ||
                         !(isalnum(c) || c == ':' || c == '_' || c == '.')) {
                        *t++ = '\\';
                        *t++ = 'x';
                        *t++ = hex[c >> 4];
                        *t++ = hex[c & 15];
                } else
                        *t++ = (char) c;
        }
        *t = 0;
        return r;
}

char *trigger_cron_timer_name(const Trigger *t)
{
        _cleanup_free_ char *id = NULL, *esc = NULL;
        char *name = NULL;

        if (asprintf(&id, "%s/%s", t->namespace, t->name) < 0)
                return NULL;
        esc = unit_name_escape(id);
        if (!esc || asprintf(&name, CRON_TIMER_PREFIX "%s.timer", esc) < 0)
                return NULL;
        if (strlen(name) > UNIT_NAME_MAX) {
                free(name);
                return NULL;
        }
        return name;
}

static bool trigger_wants_timer(const Trigger *t)
{
        return t->type == TRIGGER_CRON && t->on_calendar && t->on_calendar[0] && !t->suspended;
}

static char *timer_description(const Trigger *t)
{
        _cleanup_free_ char *cal = strv_join(t->on_calendar, "; ");
        char *d = NULL;

        if (!cal)
                return NULL;
        if (asprintf(&d, "arkevent %s trigger %s/%s (%s)", t->cron ? "cron" : "calendar",
                     t->namespace, t->name, cal) < 0)
                return NULL;
        return d;
}

static int cron_timer_stop(Manager *m, const char *unit)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", &error, NULL,
                               "ss", unit, "replace");
        if (r < 0 && !sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))
                return log_warning_errno(r, "Failed to stop timer %s: %s", unit,
                                         error.message ?: strerror(-r));
        /* A failed transient unit stays loaded until its failure is reset. */
        sd_bus_error_free(&error);
        (void) sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit", &error,
                                  NULL, "s", unit);
        return 0;
}

/* True once systemd no longer knows unit (a stopped transient unit is unloaded soon after). */
static bool unit_gone(Manager *m, const char *unit)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &error, &reply,
                               "s", unit);
        return r < 0 && sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit");
}

static int wait_unit_gone(Manager *m, const char *unit)
{
        for (unsigned i = 0; i < 50; i++) {
                if (unit_gone(m, unit))
                        return 0;
                (void) usleep(10 * 1000);
        }
        return -EEXIST;
}

static int cron_timer_create(Manager *m, const Trigger *t, const char *unit, const char *description)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_call(m->bus, &msg, SD_DEST, SD_PATH, SD_MANAGER,
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(msg, "ss", unit, "replace");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(msg, 'a', "(sv)");
        if (r < 0)
                return r;
        r = sd_bus_message_append(msg, "(sv)(sv)(sv)", "Description", "s", description,
                                  "AccuracyUSec", "t", USEC_PER_SEC, "Documentation", "as", 1,
                                  "man:arkevent.d(5)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(msg, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(msg, "s", "TimersCalendar");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'v', "a(ss)");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "(ss)");
        for (char **c = t->on_calendar; r >= 0 && *c; c++)
                r = sd_bus_message_append(msg, "(ss)", "OnCalendar", *c);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_append(msg, "a(sa(sv))", 0);
        if (r < 0)
                return r;

        r = sd_bus_call(m->bus, msg, 0, &error, &reply);
        if (r < 0) {
                _cleanup_free_ char *why = NULL;

                if (sd_bus_error_has_name(&error, "org.freedesktop.systemd1.UnitExists"))
                        return -EEXIST;
                (void) asprintf(&why, "systemd refused the timer %s: %s", unit,
                                error.message ?: strerror(-r));
                /* source.calendar is checked lightly by the loader; systemd has the last word. */
                log_error("%s:%u:%u: trigger %s/%s: %s", t->loc.file, t->loc.line, t->loc.column,
                          t->namespace, t->name, strna(why));
                if (why)
                        error_set(t, why);
                return r;
        }
        log_info("Timer %s set: %s", unit, description);
        return 0;
}

static int schedule_retry(Manager *m);
static int slot_set(Manager *m, const Trigger *t, uint64_t usec);

int trigger_cron_reconcile(Manager *m)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **units = NULL, **descriptions = NULL, **kept = NULL;
        size_t n = m->registry ? m->registry->n_triggers : 0;
        bool retry = false;
        int r, ret = 0;

        next_cache_clear();

        if (!m->bus)
                return 0;
        errors_clear();

        /* What systemd has now, loaded in any state. */
        r = sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "ListUnitsByPatterns",
                               &error, &reply, "asas", 0, 1, CRON_TIMER_PATTERN);
        if (r < 0)
                return log_warning_errno(r, "Failed to list the cron timers: %s",
                                         error.message ?: strerror(-r));
        r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        if (r < 0)
                return r;
        for (;;) {
                const char *name, *desc, *load, *active;
                r = sd_bus_message_read(reply, "(ssssssouso)", &name, &desc, &load, &active, NULL,
                                        NULL, NULL, NULL, NULL, NULL);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                /* Only a timer in effect counts; anything else is replaced. */
                if (!streq(active, "active") && !streq(active, "activating") &&
                    !streq(active, "reloading"))
                        desc = "";
                if (strv_extend(&units, name) < 0 || strv_extend(&descriptions, desc) < 0)
                        return log_oom();
        }

        /* Timers no trigger wants, or whose schedule changed, go. */
        for (size_t i = 0; units && units[i]; i++) {
                bool keep = false;

                for (size_t j = 0; j < n; j++) {
                        const Trigger *t = m->registry->triggers[j];
                        _cleanup_free_ char *name = NULL, *desc = NULL;

                        if (!trigger_wants_timer(t))
                                continue;
                        name = trigger_cron_timer_name(t);
                        desc = timer_description(t);
                        if (name && desc && streq(name, units[i]) &&
                            streq(desc, descriptions[i])) {
                                keep = true;
                                break;
                        }
                }
                if (keep) {
                        if (strv_extend(&kept, units[i]) < 0)
                                return log_oom();
                        continue;
                }
                log_info("Removing timer %s.", units[i]);
                r = cron_timer_stop(m, units[i]);
                if (r < 0 && ret == 0)
                        ret = r;
        }

        for (size_t j = 0; j < n; j++) {
                const Trigger *t = m->registry->triggers[j];
                _cleanup_free_ char *name = NULL, *desc = NULL;

                if (t->type == TRIGGER_CRON && t->suspended)
                        (void) slot_set(m, t, now_usec(CLOCK_REALTIME)); /* no catch-up later */
                if (!trigger_wants_timer(t))
                        continue;
                name = trigger_cron_timer_name(t);
                desc = timer_description(t);
                if (!name || !desc) {
                        log_error("%s:%u:%u: trigger %s/%s: its name is too long for a timer "
                                  "unit.",
                                  t->loc.file, t->loc.line, t->loc.column, t->namespace, t->name);
                        error_set(t, "the trigger's name is too long for a timer unit");
                        continue;
                }
                if (strv_contains(kept, name))
                        continue;
                if (strv_contains(units, name) && wait_unit_gone(m, name) < 0) {
                        retry = true;
                        continue;
                }
                r = cron_timer_create(m, t, name, desc);
                if (r == -EEXIST)
                        retry = true;
                else if (r < 0 && ret == 0)
                        ret = r;
        }

        if (retry)
                (void) schedule_retry(m);
        return ret;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        (void) trigger_cron_reconcile(userdata);
        return 0;
}

static int schedule_retry(Manager *m)
{
        uint64_t when = now_usec(CLOCK_MONOTONIC) + RETRY_USEC;
        int r;

        if (!retry_source) {
                r = sd_event_add_time(m->event, &retry_source, CLOCK_MONOTONIC, when, 0,
                                      on_retry, m);
                if (r < 0)
                        return log_warning_errno(r, "Failed to schedule the timer retry: %m");
                (void) sd_event_source_set_description(retry_source, "cron-retry");
                return 0;
        }
        (void) sd_event_source_set_time(retry_source, when);
        return sd_event_source_set_enabled(retry_source, SD_EVENT_ONESHOT);
}

static int timer_get_usec(Manager *m, const Trigger *t, const char *property, uint64_t *ret)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *name = NULL;
        const char *path;
        int r;

        *ret = 0;
        if (!m->bus)
                return -ENOTCONN;
        name = trigger_cron_timer_name(t);
        if (!name)
                return -ENOMEM;
        r = sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &error, &reply,
                               "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_trivial(m->bus, SD_DEST, path, "org.freedesktop.systemd1.Timer",
                                           property, &error, 't', ret);
}

/* A timer's next elapse, as systemd last told it: asking costs two calls to systemd, and a
 * status listing asks for every cron trigger. Good until that moment has passed, or until the
 * timers are reconciled (a reload may change any schedule). */
static struct NextCache {
        char *timer;
        uint64_t usec;
} *next_cache;
static size_t n_next_cache;

static void next_cache_clear(void)
{
        for (size_t i = 0; i < n_next_cache; i++)
                free(next_cache[i].timer);
        free(TAKE_PTR(next_cache));
        n_next_cache = 0;
}

static void next_cache_put(const char *timer, uint64_t usec)
{
        struct NextCache *c;

        for (size_t i = 0; i < n_next_cache; i++)
                if (streq(next_cache[i].timer, timer)) {
                        next_cache[i].usec = usec;
                        return;
                }
        c = realloc(next_cache, (n_next_cache + 1) * sizeof(*c));
        if (!c)
                return;
        next_cache = c;
        c[n_next_cache].timer = strdup(timer);
        c[n_next_cache].usec = usec;
        if (c[n_next_cache].timer)
                n_next_cache++;
}

uint64_t trigger_cron_next_usec(Manager *m, const Trigger *t)
{
        _cleanup_free_ char *timer = NULL;
        uint64_t usec = 0, now = now_usec(CLOCK_REALTIME);

        if (!trigger_wants_timer(t))
                return 0;
        timer = trigger_cron_timer_name(t);
        if (!timer)
                return 0;
        for (size_t i = 0; i < n_next_cache; i++)
                if (streq(next_cache[i].timer, timer) && next_cache[i].usec > now)
                        return next_cache[i].usec;
        if (timer_get_usec(m, t, "NextElapseUSecRealtime", &usec) < 0 || usec == UINT64_MAX)
                return 0;
        if (usec > now)
                next_cache_put(timer, usec);
        return usec;
}

void trigger_cron_done(void)
{
        next_cache_clear();
}

static int slot_set(Manager *m, const Trigger *t, uint64_t usec)
{
        if (!m->store)
                return 0;
        return store_exec(m->store, NULL,
                          "INSERT INTO trigger_state(namespace, name, fired_count, last_slot_usec) "
                          "VALUES (?1, ?2, 0, ?3) ON CONFLICT(namespace, name) DO UPDATE SET "
                          "last_slot_usec = ?3",
                          "ssi", t->namespace, t->name, (int64_t) usec);
}

void trigger_cron_fired(Manager *m, const Trigger *t)
{
        if (t->type == TRIGGER_CRON)
                (void) slot_set(m, t, now_usec(CLOCK_REALTIME));
}

static int slot_get(Manager *m, const Trigger *t, uint64_t *ret)
{
        sqlite3_stmt *st;
        int r;

        *ret = 0;
        r = store_query(m->store, &st,
                        "SELECT last_slot_usec FROM trigger_state WHERE namespace=? AND name=?",
                        "ss", t->namespace, t->name);
        if (r < 0)
                return r;
        if (sqlite3_step(st) == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
}

uint64_t trigger_cron_missed_slot(const char *cron, uint64_t last_slot, uint64_t now,
                                  uint64_t window, uint64_t timer_last)
{
        _cleanup_(cron_freep) CronExpr *c = NULL;
        time_t from, next;

        if (!cron || last_slot == 0 || window == 0 || cron_parse(cron, &c, NULL, NULL) < 0)
                return 0;
        from = (time_t) (MAX(last_slot, now > window ? now - window : 0) / USEC_PER_SEC);
        for (unsigned i = 0; i < 100000; i++) {
                uint64_t slot;

                if (cron_next(c, from, &next) < 0)
                        return 0;
                slot = (uint64_t) next * USEC_PER_SEC;
                if (slot > now)
                        return 0;
                if (slot > last_slot && (timer_last < slot || slot + FIRE_IN_FLIGHT_USEC <= now))
                        return slot;
                from = next;
        }
        return 0;
}

static uint64_t find_missed_slot(Manager *m, const Trigger *t, uint64_t last_slot, uint64_t now)
{
        uint64_t timer_last = 0;

        /* source.calendar: systemd's expressions are not evaluated here. */
        if (!t->cron)
                return 0;
        (void) timer_get_usec(m, t, "LastTriggerUSec", &timer_last);
        return trigger_cron_missed_slot(t->cron, last_slot, now,
                                        m->config.cron_catch_up_sec * USEC_PER_SEC, timer_last);
}

int trigger_cron_startup(Manager *m)
{
        uint64_t now = now_usec(CLOCK_REALTIME);
        size_t n = m->registry ? m->registry->n_triggers : 0;

        /* Without the engine nothing could be fired: the slots stay missed for the next start. */
        if (m->store && m->engine)
                for (size_t i = 0; i < n; i++) {
                        const Trigger *t = m->registry->triggers[i];
                        uint64_t last = 0, missed;

                        if (t->type != TRIGGER_CRON)
                                continue;
                        if (slot_get(m, t, &last) < 0)
                                continue;
                        missed = last > 0 && !t->suspended && m->config.cron_catch_up_sec > 0
                                         ? find_missed_slot(m, t, last, now)
                                         : 0;
                        if (missed) {
                                _cleanup_(fire_result_done) FireResult res = {};
                                _cleanup_free_ char *err = NULL;
                                FireRequest req = {};
                                char ts[32];
                                int r;

                                log_info("Trigger %s/%s missed its slot at %s; firing it once "
                                         "now.",
                                         t->namespace, t->name, format_rfc3339(ts, missed, false));
                                r = trigger_fire(m, t, &req, &res, &err);
                                if (r < 0)
                                        log_warning_errno(r, "Catching up trigger %s/%s failed: %s",
                                                          t->namespace, t->name,
                                                          err ?: strerror(-r));
                        }
                        /* Every slot up to now is handled: fired, caught up, or too old. */
                        (void) slot_set(m, t, now);
                }
        return trigger_cron_reconcile(m);
}

void trigger_cron_status_json(Manager *m, const Trigger *t, json_object *o)
{
        _cleanup_free_ char *name = NULL;
        json_object *cal;
        uint64_t next;
        char ts[32];

        if (t->type != TRIGGER_CRON)
                return;
        cal = json_object_new_array();
        for (char **c = t->on_calendar; cal && c && *c; c++)
                json_object_array_add(cal, json_object_new_string(*c));
        json_object_object_add(o, "schedule", cal);
        name = trigger_wants_timer(t) ? trigger_cron_timer_name(t) : NULL;
        json_object_object_add(o, "timer", name ? json_object_new_string(name) : NULL);
        next = trigger_cron_next_usec(m, t);
        json_object_object_add(o, "nextFireAt",
                               next ? json_object_new_string(format_rfc3339(ts, next, false))
                                    : NULL);
}
