/* SPDX-License-Identifier: MIT */
/* start, fire, runs, show, cancel, logs. */

#include <inttypes.h>
#include <poll.h>
#include <systemd/sd-journal.h>

#include "bus/bus-manager.h"
#include "ctl.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

static const char *jstr(json_object *o, const char *key)
{
        return json_object_get_string(json_object_object_get(o, key));
}

static int get_run(sd_bus *bus, uint64_t id, json_object **ret, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *json;
        int r;

        r = ctl_call(bus, "GetRun", error, &reply, "t", id);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0)
                return r;
        *ret = json_tokener_parse(json);
        return *ret ? 0 : -EBADMSG;
}

static bool state_final(const char *s)
{
        return s && !streq(s, "Pending") && !streq(s, "Running");
}

static void print_run(json_object *run)
{
        json_object *acts = json_object_object_get(run, "activities");
        const char *state = jstr(run, "state");
        _cleanup_(table_freep) Table *t = table_new("ACTIVITY", "STATE", "EXIT", "DURATION",
                                                    "UNIT", "REASON", NULL);

        printf("%s●%s Run %s - %s/%s\n", ctl_ansi_state(state) ?: "", ctl_ansi_normal(),
               jstr(run, "id"), jstr(run, "namespace"), jstr(run, "flow"));
        printf("     State: %s%s%s\n", ctl_ansi_state(state) ?: "", strna(state),
               ctl_ansi_normal());
        if (jstr(run, "trigger"))
                printf("   Trigger: %s\n", jstr(run, "trigger"));
        printf("   Created: %s\n", strna(jstr(run, "createdAt")));
        if (jstr(run, "startedAt"))
                printf("   Started: %s\n", jstr(run, "startedAt"));
        if (jstr(run, "finishedAt"))
                printf("  Finished: %s (%s ms)\n", jstr(run, "finishedAt"),
                       strna(jstr(run, "durationMs")));
        if (jstr(run, "output"))
                printf("    Output: %s\n", jstr(run, "output"));
        if (jstr(run, "error"))
                printf("     Error: %s%s%s\n", ctl_ansi_red(), jstr(run, "error"),
                       ctl_ansi_normal());
        if (!t || json_object_array_length(acts) == 0)
                return;
        putchar('\n');
        for (size_t i = 0; i < json_object_array_length(acts); i++) {
                json_object *a = json_object_array_get_idx(acts, i);
                char dur[64];
                const char *ms = jstr(a, "durationMs");
                if (ms)
                        snprintf(dur, sizeof(dur), "%sms", ms);
                table_add_row(t, jstr(a, "name"), jstr(a, "state"), jstr(a, "exitCode"),
                              ms ? dur : NULL, jstr(a, "unit"), jstr(a, "reason"));
                table_set_color(t, 1, ctl_ansi_state(jstr(a, "state")));
        }
        table_print(t, stdout);
}

/* Live progress of runs until they all end. */
typedef struct Watch {
        sd_bus *bus;
        uint64_t *ids;
        size_t n;
        bool *done;
        size_t n_done;
        bool tty;
        unsigned drawn; /* lines of the live view on screen */
} Watch;

static bool watch_has(Watch *w, uint64_t id, size_t *ret_i)
{
        for (size_t i = 0; i < w->n; i++)
                if (w->ids[i] == id) {
                        *ret_i = i;
                        return true;
                }
        return false;
}

/* On a terminal: one line per activity of each run, redrawn in place. */
static void watch_draw(Watch *w)
{
        if (!w->tty)
                return;
        for (unsigned i = 0; i < w->drawn; i++)
                printf("\x1b[1A\x1b[2K");
        w->drawn = 0;
        for (size_t i = 0; i < w->n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(json_object_putp) json_object *run = NULL;
                json_object *acts;

                if (get_run(w->bus, w->ids[i], &run, &error) < 0)
                        continue;
                acts = json_object_object_get(run, "activities");
                printf("%sRun %" PRIu64 "%s %s/%s: %s%s%s\n", ctl_ansi_highlight(), w->ids[i],
                       ctl_ansi_normal(), jstr(run, "namespace"), jstr(run, "flow"),
                       ctl_ansi_state(jstr(run, "state")) ?: "", jstr(run, "state"),
                       ctl_ansi_normal());
                w->drawn++;
                for (size_t j = 0; j < json_object_array_length(acts); j++) {
                        json_object *a = json_object_array_get_idx(acts, j);
                        const char *st = jstr(a, "state");
                        const char *mark = streq_ptr(st, "Succeeded")   ? "✓"
                                           : streq_ptr(st, "Running")   ? "▶"
                                           : streq_ptr(st, "Starting")  ? "▶"
                                           : state_final(st) && !streq_ptr(st, "Queued") &&
                                                             !streq_ptr(st, "Waiting")
                                                   ? "✗"
                                                   : "·";
                        printf("  %s%s%s %-24s %s%s%s\n", ctl_ansi_state(st) ?: "", mark,
                               ctl_ansi_normal(), jstr(a, "name"), ctl_ansi_state(st) ?: "",
                               st, ctl_ansi_normal());
                        w->drawn++;
                }
        }
        fflush(stdout);
}

static int on_activity(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        Watch *w = userdata;
        const char *name, *state, *path;
        uint64_t id;
        size_t i;

        if (sd_bus_message_read(m, "tsso", &id, &name, &state, &path) < 0 ||
            !watch_has(w, id, &i))
                return 0;
        if (!w->tty && !arg_json)
                printf("run %" PRIu64 ": activity %s %s\n", id, name, state);
        fflush(stdout);
        watch_draw(w);
        return 0;
}

static int on_run_started(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        Watch *w = userdata;
        const char *flow, *path;
        uint64_t id;
        size_t i;

        if (sd_bus_message_read(m, "tso", &id, &flow, &path) < 0 || !watch_has(w, id, &i))
                return 0;
        if (!w->tty && !arg_json)
                printf("run %" PRIu64 ": started (%s)\n", id, flow);
        fflush(stdout);
        watch_draw(w);
        return 0;
}

static void watch_mark_done(Watch *w, size_t i, const char *state)
{
        if (w->done[i])
                return;
        w->done[i] = true;
        w->n_done++;
        if (!w->tty && !arg_json)
                printf("run %" PRIu64 ": %s\n", w->ids[i], state);
        fflush(stdout);
}

static int on_run_finished(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        Watch *w = userdata;
        const char *state, *path;
        uint64_t id;
        size_t i;

        if (sd_bus_message_read(m, "tso", &id, &state, &path) < 0 || !watch_has(w, id, &i))
                return 0;
        watch_draw(w);
        watch_mark_done(w, i, state);
        return 0;
}

static int watch_subscribe(sd_bus *bus, Watch *w)
{
        static const struct {
                const char *member;
                sd_bus_message_handler_t handler;
        } sigs[] = {
                { "RunStarted", on_run_started },
                { "ActivityCompleted", on_activity },
                { "RunFinished", on_run_finished },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                r = sd_bus_match_signal(bus, NULL, BUS_NAME, BUS_MANAGER_PATH,
                                        BUS_MANAGER_INTERFACE, sigs[i].member, sigs[i].handler,
                                        w);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Waits for every run of w to end; prints the outcome. Exit code 0 when all succeeded. */
static int watch_run(Watch *w)
{
        _cleanup_(json_object_putp) json_object *all = json_object_new_array();
        bool ok = true;
        int r;

        watch_draw(w);
        while (w->n_done < w->n) {
                r = sd_bus_process(w->bus, NULL);
                if (r < 0)
                        return ctl_bus_fail(r, NULL, "follow the run");
                if (r > 0)
                        continue;
                r = sd_bus_wait(w->bus, 1000000);
                if (r < 0)
                        return ctl_bus_fail(r, NULL, "follow the run");
                if (r > 0)
                        continue;
                /* Quiet for a second: ask, in case a signal was missed. */
                for (size_t i = 0; i < w->n; i++) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                        _cleanup_(json_object_putp) json_object *run = NULL;
                        if (w->done[i])
                                continue;
                        r = get_run(w->bus, w->ids[i], &run, &error);
                        if (r < 0)
                                return ctl_bus_fail(r, &error, "get the run");
                        if (state_final(jstr(run, "state"))) {
                                watch_draw(w);
                                watch_mark_done(w, i, jstr(run, "state"));
                        }
                }
        }

        for (size_t i = 0; i < w->n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                json_object *run = NULL;
                r = get_run(w->bus, w->ids[i], &run, &error);
                if (r < 0)
                        return ctl_bus_fail(r, &error, "get the run");
                if (!streq_ptr(jstr(run, "state"), "Succeeded"))
                        ok = false;
                json_object_array_add(all, run);
        }
        if (arg_json)
                ctl_print_json(w->n == 1 ? json_object_array_get_idx(all, 0) : all);
        else if (!w->tty)
                for (size_t i = 0; i < w->n; i++) {
                        json_object *run = json_object_array_get_idx(all, i);
                        if (jstr(run, "output"))
                                printf("run %s output: %s\n", jstr(run, "id"),
                                       jstr(run, "output"));
                        if (jstr(run, "error"))
                                printf("run %s error: %s\n", jstr(run, "id"), jstr(run, "error"));
                }
        else
                for (size_t i = 0; i < w->n; i++) {
                        json_object *run = json_object_array_get_idx(all, i);
                        if (jstr(run, "output"))
                                printf("Output: %s\n", jstr(run, "output"));
                        if (jstr(run, "error"))
                                printf("%sError: %s%s\n", ctl_ansi_red(), jstr(run, "error"),
                                       ctl_ansi_normal());
                }
        return ok ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}

enum {
        ARG_INPUT = ARG_VERB_FIRST,
        ARG_WAIT,
        ARG_SCHEDULED,
        ARG_FLOW,
        ARG_STATE,
        ARG_LIMIT,
};

typedef enum RunVerb { RUN_VERB_START, RUN_VERB_FIRE, RUN_VERB_PUBLISH } RunVerb;

static int run_verb(int argc, char *argv[], RunVerb kind)
{
        bool fire = kind != RUN_VERB_START, publish = kind == RUN_VERB_PUBLISH;
        const char *what = publish ? "topic" : fire ? "trigger" : "flow";
        static const struct option options[] = {
                CTL_COMMON_OPTIONS,
                { "input", required_argument, NULL, ARG_INPUT },
                { "wait", no_argument, NULL, ARG_WAIT },
                { "scheduled", no_argument, NULL, ARG_SCHEDULED },
                {},
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *input = NULL;
        _cleanup_free_ uint64_t *ids = NULL;
        _cleanup_free_ bool *done = NULL;
        bool wait = false, scheduled = false;
        size_t n = 0;
        const char *path;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hi:w", options, NULL)) >= 0) {
                if (ctl_common_option(c))
                        continue;
                switch (c) {
                case 'h':
                        if (publish)
                                printf("arkeventctl publish [OPTIONS...] TOPIC\n\n"
                                       "Publish a message on an embedded topic: every topic "
                                       "trigger subscribed to\nit fires, one run per target. "
                                       "Prints the runs started (none when nobody\n"
                                       "subscribes).\n\n");
                        else if (fire)
                                printf("arkeventctl fire [OPTIONS...] TRIGGER\n\n"
                                       "Fire a trigger of any type, as its event would: one run "
                                       "per target.\nTRIGGER is NAMESPACE/NAME, or NAME in the "
                                       "namespace \"default\".\n\n");
                        else
                                printf("arkeventctl start [OPTIONS...] FLOW\n\n"
                                       "Start a run of FLOW (NAMESPACE/NAME or NAME).\n\n");
                        printf("Options:\n"
                               "  -i --input=JSON|@FILE  The input (a JSON object)%s\n"
                               "  -w --wait              Follow the run(s) until they end: live "
                               "progress on a\n"
                               "                         terminal, one line per event "
                               "otherwise; exit 1 unless\n"
                               "                         every run succeeded\n",
                               publish ? " (the message), as .trigger.body"
                               : fire  ? ", as .trigger.body"
                                       : "");
                        if (fire && !publish)
                                printf("     --scheduled         The fire comes from the "
                                       "trigger's schedule\n"
                                       "                         (arkevent-cron@.service)\n");
                        printf(CTL_COMMON_HELP);
                        return CTL_EXIT_OK;
                case 'i':
                case ARG_INPUT:
                        free(input);
                        input = NULL;
                        if (ctl_read_input(optarg, &input) < 0)
                                return CTL_EXIT_FAILURE;
                        break;
                case 'w':
                case ARG_WAIT:
                        wait = true;
                        break;
                case ARG_SCHEDULED:
                        scheduled = true;
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }
        }
        if (optind + 1 != argc) {
                log_error("Expected exactly one %s. See 'arkeventctl %s --help'.",
                          what, argv[0]);
                return CTL_EXIT_USAGE;
        }

        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;

        Watch w = { .bus = bus, .tty = isatty(STDOUT_FILENO) && !arg_json };
        if (wait) {
                /* Subscribe before the call, so that no signal of the new runs is missed. */
                r = watch_subscribe(bus, &w);
                if (r < 0)
                        return ctl_bus_fail(r, NULL, "subscribe to the run signals");
        }

        if (fire) {
                r = ctl_call(bus, publish ? "Publish" : "FireTrigger", &error, &reply, "ss",
                             argv[optind], strempty(input));
                if (r < 0)
                        return ctl_bus_fail(r, &error,
                                            publish ? "publish the message" : "fire the trigger");
                r = sd_bus_message_enter_container(reply, 'a', "o");
                if (r < 0)
                        return ctl_bus_fail(r, NULL, "read the reply");
                while ((r = sd_bus_message_read(reply, "o", &path)) > 0) {
                        uint64_t *nids = realloc(ids, (n + 1) * sizeof(uint64_t));
                        if (!nids)
                                return log_oom(), CTL_EXIT_FAILURE;
                        ids = nids;
                        if (ctl_parse_run_id(path, &ids[n]) < 0)
                                return CTL_EXIT_FAILURE;
                        n++;
                }
                if (r < 0)
                        return ctl_bus_fail(r, NULL, "read the reply");
        } else {
                ids = new0(uint64_t, 1);
                if (!ids)
                        return log_oom(), CTL_EXIT_FAILURE;
                r = ctl_call(bus, "StartRun", &error, &reply, "ss", argv[optind],
                             strempty(input));
                if (r < 0)
                        return ctl_bus_fail(r, &error, "start the run");
                r = sd_bus_message_read(reply, "t", &ids[0]);
                if (r < 0)
                        return ctl_bus_fail(r, NULL, "read the reply");
                n = 1;
        }

        if (publish && n == 0 && !arg_json) {
                printf("No run was started by this call: no trigger here subscribes to topic "
                       "%s, or each\nrefused it (see the journal), or topics are shared through "
                       "Redis and the host\nthat takes the message runs it.\n", argv[optind]);
                return CTL_EXIT_OK;
        }
        if (scheduled) {
                log_info("Trigger %s fired on schedule: %zu run(s).", argv[optind], n);
                return CTL_EXIT_OK;
        }
        if (!wait) {
                if (arg_json) {
                        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                        json_object *a = json_object_new_array();
                        json_object_object_add(o, what,
                                               json_object_new_string(argv[optind]));
                        json_object_object_add(o, "runs", a);
                        for (size_t i = 0; i < n; i++) {
                                json_object *e = json_object_new_object();
                                _cleanup_free_ char *p = NULL;
                                (void) bus_run_path((int64_t) ids[i], &p);
                                json_object_object_add(e, "id",
                                                       json_object_new_int64((int64_t) ids[i]));
                                json_object_object_add(e, "object", json_object_new_string(p));
                                json_object_array_add(a, e);
                        }
                        ctl_print_json(o);
                } else
                        for (size_t i = 0; i < n; i++)
                                printf("Started run %" PRIu64 ".\n", ids[i]);
                return CTL_EXIT_OK;
        }

        done = new0(bool, n);
        if (!done)
                return log_oom(), CTL_EXIT_FAILURE;
        w.ids = ids;
        w.n = n;
        w.done = done;
        return watch_run(&w);
}

int verb_start(int argc, char *argv[])
{
        return run_verb(argc, argv, RUN_VERB_START);
}

int verb_fire(int argc, char *argv[])
{
        return run_verb(argc, argv, RUN_VERB_FIRE);
}

int verb_publish(int argc, char *argv[])
{
        return run_verb(argc, argv, RUN_VERB_PUBLISH);
}

int verb_runs(int argc, char *argv[])
{
        static const struct option options[] = {
                CTL_COMMON_OPTIONS,
                { "flow", required_argument, NULL, ARG_FLOW },
                { "state", required_argument, NULL, ARG_STATE },
                { "limit", required_argument, NULL, ARG_LIMIT },
                {},
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *arr = json_object_new_array();
        _cleanup_(table_freep) Table *t = table_new("RUN", "FLOW", "STATE", "TRIGGER", "CREATED",
                                                    "DURATION", NULL);
        const char *flow = "", *state = "", *fl, *st, *trig, *path;
        uint64_t id, created, started, finished;
        unsigned limit = 50;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (ctl_common_option(c))
                        continue;
                switch (c) {
                case 'h':
                        printf("arkeventctl runs [OPTIONS...]\n\nList runs, newest first.\n\n"
                               "Options:\n"
                               "     --flow=FLOW    Only runs of FLOW (NAMESPACE/NAME or NAME)\n"
                               "     --state=STATE  Only runs in STATE (Pending, Running, "
                               "Succeeded, Failed,\n"
                               "                    Cancelled, TimedOut)\n"
                               "     --limit=N      At most N runs (default 50)\n" CTL_COMMON_HELP);
                        return CTL_EXIT_OK;
                case ARG_FLOW:
                        flow = optarg;
                        break;
                case ARG_STATE:
                        state = optarg;
                        break;
                case ARG_LIMIT:
                        if (sscanf(optarg, "%u", &limit) != 1 || limit == 0) {
                                log_error("--limit needs a positive number, not '%s'.", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }
        }
        if (optind != argc) {
                log_error("Unexpected argument '%s'. See 'arkeventctl runs --help'.",
                          argv[optind]);
                return CTL_EXIT_USAGE;
        }
        if (!arr || !t)
                return log_oom(), CTL_EXIT_FAILURE;
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_call(bus, "ListRuns", &error, &reply, "ssu", flow, state, (uint32_t) limit);
        if (r < 0)
                return ctl_bus_fail(r, &error, "list runs");
        r = sd_bus_message_enter_container(reply, 'a', "(tsssttto)");
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        while ((r = sd_bus_message_read(reply, "(tsssttto)", &id, &fl, &st, &trig, &created,
                                        &started, &finished, &path)) > 0) {
                char ids[32], b1[64], b2[64];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64((int64_t) id));
                json_object_object_add(o, "flow", json_object_new_string(fl));
                json_object_object_add(o, "state", json_object_new_string(st));
                json_object_object_add(o, "trigger", *trig ? json_object_new_string(trig) : NULL);
                json_object_object_add(o, "createdUSec", json_object_new_int64((int64_t) created));
                json_object_object_add(o, "startedUSec", json_object_new_int64((int64_t) started));
                json_object_object_add(o, "finishedUSec",
                                       json_object_new_int64((int64_t) finished));
                json_object_object_add(o, "object", json_object_new_string(path));
                json_object_array_add(arr, o);
                snprintf(ids, sizeof(ids), "%" PRIu64, id);
                table_add_row(t, ids, fl, st, *trig ? trig : "-", ctl_format_time(b1, created),
                              ctl_format_duration(b2, started && finished >= started
                                                              ? finished - started
                                                              : 0));
                table_set_color(t, 2, ctl_ansi_state(st));
        }
        if (r < 0)
                return ctl_bus_fail(r, NULL, "read the reply");
        return ctl_print_list(t, arr, "runs");
}

static int parse_run_verb(int argc, char *argv[], const char *usage, const char *text,
                          uint64_t *ret_id, bool *follow)
{
        static const struct option options[] = {
                CTL_COMMON_OPTIONS,
                { "follow", no_argument, NULL, 'f' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, follow ? "hf" : "h", options, NULL)) >= 0) {
                if (ctl_common_option(c))
                        continue;
                if (c == 'h') {
                        printf("arkeventctl %s\n\n%s\n\nOptions:\n%s" CTL_COMMON_HELP, usage, text,
                               follow ? "  -f --follow     Follow new messages until the run "
                                        "ends\n"
                                      : "");
                        return CTL_EXIT_OK;
                }
                if (c == 'f' && follow) {
                        *follow = true;
                        continue;
                }
                return CTL_EXIT_USAGE;
        }
        if (optind + 1 != argc) {
                log_error("Expected one run id. See 'arkeventctl %s --help'.", argv[0]);
                return CTL_EXIT_USAGE;
        }
        if (ctl_parse_run_id(argv[optind], ret_id) < 0)
                return CTL_EXIT_USAGE;
        return -1;
}

int verb_show(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *run = NULL;
        uint64_t id;
        int r;

        r = parse_run_verb(argc, argv, "show [OPTIONS...] RUN",
                           "Show a run and its activities.", &id, NULL);
        if (r >= 0)
                return r;
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = get_run(bus, id, &run, &error);
        if (r < 0)
                return ctl_bus_fail(r, &error, "get the run");
        if (arg_json) {
                ctl_print_json(run);
                return CTL_EXIT_OK;
        }
        ctl_pager_open();
        print_run(run);
        ctl_pager_close();
        return CTL_EXIT_OK;
}

int verb_cancel(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        uint64_t id;
        int r;

        r = parse_run_verb(argc, argv, "cancel [OPTIONS...] RUN",
                           "Stop every unit of a run; it ends Cancelled.", &id, NULL);
        if (r >= 0)
                return r;
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = ctl_call(bus, "CancelRun", &error, NULL, "t", id);
        if (r < 0)
                return ctl_bus_fail(r, &error, "cancel the run");
        if (arg_json)
                printf("{ \"id\": %" PRIu64 ", \"cancelled\": true }\n", id);
        return CTL_EXIT_OK;
}

static const char *journal_field(sd_journal *j, const char *field)
{
        const void *d;
        size_t l, fl = strlen(field);
        static char buf[8][4096];
        static unsigned slot;
        char *b;

        if (sd_journal_get_data(j, field, &d, &l) < 0 || l <= fl + 1)
                return NULL;
        b = buf[slot++ % ELEMENTSOF(buf)];
        l -= fl + 1;
        if (l >= sizeof(buf[0]))
                l = sizeof(buf[0]) - 1;
        memcpy(b, (const char *) d + fl + 1, l);
        b[l] = 0;
        return b;
}

static void print_entry(sd_journal *j)
{
        const char *msg = journal_field(j, "MESSAGE");
        const char *act = journal_field(j, "ARKEVENT_ACTIVITY");
        const char *unit = journal_field(j, "_SYSTEMD_UNIT");
        uint64_t t = 0;
        char ts[32];

        if (!msg)
                return;
        (void) sd_journal_get_realtime_usec(j, &t);
        format_rfc3339(ts, t, true);
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                json_object_object_add(o, "time", json_object_new_string(ts));
                json_object_object_add(o, "activity", act ? json_object_new_string(act) : NULL);
                json_object_object_add(o, "unit", unit ? json_object_new_string(unit) : NULL);
                json_object_object_add(o, "message", json_object_new_string(msg));
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
        } else
                printf("%s%s%s %s%s%s: %s\n", ctl_ansi_grey(), ts, ctl_ansi_normal(),
                       ctl_ansi_highlight(), act ?: unit ?: "arkevent", ctl_ansi_normal(), msg);
}

int verb_logs(int argc, char *argv[])
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        _cleanup_(json_object_putp) json_object *run = NULL;
        char match[64];
        bool follow = false, ended = false;
        uint64_t id;
        int r;

        r = parse_run_verb(argc, argv, "logs [OPTIONS...] RUN",
                           "Print the journal of a run: every activity's output and the daemon's "
                           "messages\nabout it (journalctl ARKEVENT_RUN=RUN).",
                           &id, &follow);
        if (r >= 0)
                return r;
        r = ctl_bus_open(&bus);
        if (r > 0)
                return r;
        r = get_run(bus, id, &run, &error);
        if (r < 0)
                return ctl_bus_fail(r, &error, "get the run");
        ended = state_final(jstr(run, "state"));

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0) {
                log_error_errno(r, "Failed to open the journal: %m");
                return CTL_EXIT_FAILURE;
        }
        snprintf(match, sizeof(match), "ARKEVENT_RUN=%" PRIu64, id);
        r = sd_journal_add_match(j, match, 0);
        if (r < 0) {
                log_error_errno(r, "Failed to filter the journal: %m");
                return CTL_EXIT_FAILURE;
        }
        if (!follow)
                ctl_pager_open();
        for (;;) {
                while ((r = sd_journal_next(j)) > 0)
                        print_entry(j);
                if (r < 0) {
                        log_error_errno(r, "Failed to read the journal: %m");
                        return CTL_EXIT_FAILURE;
                }
                fflush(stdout);
                if (!follow)
                        break;
                if (ended) {
                        /* The run is over: one last look for what the journal still had to
                         * write, then stop. */
                        r = sd_journal_wait(j, 500000);
                        if (r == SD_JOURNAL_NOP)
                                break;
                        continue;
                }
                r = sd_journal_wait(j, 1000000);
                if (r < 0) {
                        log_error_errno(r, "Failed to wait for the journal: %m");
                        return CTL_EXIT_FAILURE;
                }
                if (r == SD_JOURNAL_NOP) {
                        _cleanup_(json_object_putp) json_object *now = NULL;
                        sd_bus_error_free(&error);
                        if (get_run(bus, id, &now, &error) >= 0)
                                ended = state_final(jstr(now, "state"));
                }
        }
        ctl_pager_close();
        return CTL_EXIT_OK;
}
