/* SPDX-License-Identifier: MIT */
#include <sys/inotify.h>

#include "resource-watch.h"
#include "shared/log.h"
#include "shared/time-util.h"

static sd_event_source *watch_source, *debounce_source;
static bool pending;

bool resource_watch_pending(void)
{
        return pending;
}

static int on_debounce(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;

        pending = false;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        log_info("Change in %s seen.", m->config.resource_dir);
        (void) manager_reload(m);
        return 0;
}

static bool is_resource_name(const char *name)
{
        return name && name[0] != '.' && (endswith(name, ".yaml") || endswith(name, ".yml"));
}

static int on_inotify(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
        Manager *m = userdata;
        uint64_t when;
        int r;

        if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                log_warning("%s went away; changes in it are no longer seen until "
                            "the next start.",
                            m->config.resource_dir);
                return 0;
        }
        /* Editors write a temporary file (".x.yaml.swp", "x.yaml~", "4913") and rename it over
         * the real one: the temporary names are not resources, the rename (IN_MOVED_TO) is. */
        if (!(ev->mask & IN_Q_OVERFLOW) && !(ev->len > 0 && is_resource_name(ev->name)))
                return 0;

        if (m->config.resource_watch_delay_msec == 0)
                return 0; /* turned off by a reload */
        when = now_usec(CLOCK_MONOTONIC) + m->config.resource_watch_delay_msec * USEC_PER_MSEC;
        if (!debounce_source) {
                r = sd_event_add_time(m->event, &debounce_source, CLOCK_MONOTONIC, when, 0,
                                      on_debounce, m);
                if (r < 0)
                        return log_warning_errno(r, "Failed to arm the reload timer: %m");
                (void) sd_event_source_set_description(debounce_source, "resource-debounce");
        } else {
                (void) sd_event_source_set_time(debounce_source, when);
                (void) sd_event_source_set_enabled(debounce_source, SD_EVENT_ONESHOT);
        }
        pending = true;
        return 0;
}

int resource_watch_setup(Manager *m)
{
        int r;

        if (watch_source || m->config.resource_watch_delay_msec == 0)
                return 0;
        r = sd_event_add_inotify(m->event, &watch_source, m->config.resource_dir,
                                 IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM |
                                         IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF |
                                         IN_MOVE_SELF | IN_ONLYDIR,
                                 on_inotify, m);
        if (r < 0)
                return log_warning_errno(r, "Cannot watch %s, changes need a reload: %m",
                                         m->config.resource_dir);
        (void) sd_event_source_set_description(watch_source, "resource-watch");
        log_debug("Watching %s for changes.", m->config.resource_dir);
        return 0;
}

typedef struct KeptTrigger {
        char *ns;
        char *name;
        char *reason;
} KeptTrigger;

static KeptTrigger *kept;
static size_t n_kept;

static void kept_clear(void)
{
        for (size_t i = 0; i < n_kept; i++) {
                free(kept[i].ns);
                free(kept[i].name);
                free(kept[i].reason);
        }
        free(kept);
        kept = NULL;
        n_kept = 0;
}

static bool registry_has_trigger(const Registry *r, const Trigger *t)
{
        for (size_t i = 0; r && i < r->n_triggers; i++)
                if (r->triggers[i] == t)
                        return true;
        return false;
}

void resource_watch_note_kept(const Registry *previous, const Registry *next,
                              const Diagnostics *diags)
{
        kept_clear();
        for (size_t i = 0; next && i < next->n_triggers; i++) {
                const Trigger *t = next->triggers[i];
                const Diagnostic *d = NULL;
                _cleanup_free_ char *line = NULL;
                KeptTrigger *n;

                if (!registry_has_trigger(previous, t))
                        continue;
                for (size_t k = 0; k < diags->n && !d; k++)
                        if (diags->items[k].severity == DIAG_ERROR &&
                            streq_ptr(diags->items[k].file, t->loc.file))
                                d = &diags->items[k];
                if (!d || diag_format(d, &line) < 0)
                        continue;
                n = realloc(kept, (n_kept + 1) * sizeof(KeptTrigger));
                if (!n)
                        return;
                kept = n;
                kept[n_kept] = (KeptTrigger){ strdup(t->namespace), strdup(t->name), NULL };
                (void) asprintf(&kept[n_kept].reason,
                                "%s; the previous version stays in effect", line);
                n_kept++;
        }
}

const char *resource_watch_kept_reason(const Trigger *t)
{
        for (size_t i = 0; i < n_kept; i++)
                if (streq_ptr(kept[i].ns, t->namespace) && streq_ptr(kept[i].name, t->name))
                        return kept[i].reason;
        return NULL;
}
