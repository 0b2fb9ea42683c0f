/* SPDX-License-Identifier: MIT */
/* bench-units: the transient-unit floor beside arkevent's one-activity runs.
 *
 *   bench-units floor[_sandbox][_private] SERIAL PIPELINED WINDOW
 *   bench-units arkevent SERIAL PIPELINED WINDOW FLOW
 *
 * floor: starts trivial transient units (/bin/true) directly with StartTransientUnit and waits
 * for each to end (PropertiesChanged to inactive), the same way arkevent watches its units.
 * floor_private, floor_sandbox_private: the same, on systemd's private socket
 * (/run/systemd/private, as systemctl uses it as root, and arkevent does) instead of the bus.
 * floor_sandbox: the same units with the properties of arkevent's default step sandbox
 * (engine.stepSandbox: default), PrivateTmp=, NoNewPrivileges=, RestrictSUIDSGID= (or the
 * boolean properties named in $BENCH_FLOOR_PROPS, comma-separated): the like-for-like floor.
 * arkevent: starts runs of FLOW with the daemon's StartRun and waits for its RunFinished signal
 * (start-to-recorded). Both print serial latency percentiles and pipelined throughput as
 * "key=value" lines. Runs against the system bus it finds (the test bed's). */

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

static uint64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

#define MAX_ITEMS 100000

typedef struct Item {
        uint64_t key; /* unit number or run id */
        uint64_t started;
        uint64_t ended;
} Item;

static Item items[MAX_ITEMS];
static unsigned n_items, n_done;
static const char *mode;
static char prefix[64];
static char **sandbox_props; /* boolean properties set to true in floor_sandbox mode */
static bool direct;          /* floor_*_private: on systemd's private socket, not the bus */

static Item *find_item(uint64_t key)
{
        for (unsigned i = n_items; i > 0; i--)
                if (items[i - 1].key == key)
                        return &items[i - 1];
        return NULL;
}

static void mark_done(uint64_t key)
{
        Item *it = find_item(key);
        if (it && !it->ended) {
                it->ended = now_us();
                n_done++;
        }
}

static int on_props(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        char *unit = NULL;
        const char *iface, *prop, *val;
        unsigned long long n;

        if (sd_bus_path_decode(sd_bus_message_get_path(m), "/org/freedesktop/systemd1/unit",
                               &unit) <= 0)
                return 0;
        if (sscanf(unit, "bench-floor-%*[0-9a-f]-%llu.service", &n) != 1 ||
            strncmp(unit, prefix, strlen(prefix)) != 0) {
                free(unit);
                return 0;
        }
        free(unit);
        if (sd_bus_message_read(m, "s", &iface) < 0 ||
            sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &prop) < 0)
                        return 0;
                if (strcmp(prop, "ActiveState") == 0 &&
                    sd_bus_message_read(m, "v", "s", &val) >= 0) {
                        if (strcmp(val, "inactive") == 0 || strcmp(val, "failed") == 0)
                                mark_done(n);
                } else
                        sd_bus_message_skip(m, "v");
                sd_bus_message_exit_container(m);
        }
        return 0;
}

static int on_run_finished(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        uint64_t id;
        const char *state;
        if (sd_bus_message_read(m, "ts", &id, &state) >= 0)
                mark_done(id);
        return 0;
}

static int start_floor(sd_bus *bus, uint64_t n)
{
        sd_bus_message *m = NULL;
        char name[128];
        int r;

        snprintf(name, sizeof(name), "%s%" PRIu64 ".service", prefix, n);
        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager",
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", name, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "Type", "s", "exec");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "CollectMode", "s", "inactive-or-failed");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "ExecStart", "a(sasb)", 1, "/bin/true", 1,
                                          "/bin/true", 0);
        for (char **p = sandbox_props; r >= 0 && p && *p; p++)
                r = sd_bus_message_append(m, "(sv)", *p, "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r >= 0) {
                items[n_items++] = (Item){ .key = n, .started = now_us() };
                r = sd_bus_call_async(bus, NULL, m, NULL, NULL, 0);
        }
        sd_bus_message_unref(m);
        return r;
}

static int start_run(sd_bus *bus, const char *flow)
{
        sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t t0 = now_us(), id;
        int r;

        /* StartRun answers with the id once the run is stored; the clock starts before. */
        r = sd_bus_call_method(bus, "dev.arkonis.ArkEvent1", "/dev/arkonis/ArkEvent1",
                               "dev.arkonis.ArkEvent1.Manager", "StartRun", &error, &reply, "ss",
                               flow, "");
        if (r < 0) {
                fprintf(stderr, "StartRun: %s\n", error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "t", &id);
        sd_bus_message_unref(reply);
        if (r < 0)
                return r;
        if (!find_item(id))
                items[n_items++] = (Item){ .key = id, .started = t0 };
        else
                find_item(id)->started = t0;
        return 0;
}

static int wait_until(sd_bus *bus, unsigned target, uint64_t deadline)
{
        while (n_done < target) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (now_us() > deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, 100000);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[])
{
        sd_bus *bus = NULL;
        unsigned serial, pipelined, window;
        const char *flow = NULL;
        uint64_t lat[MAX_ITEMS], t0, t1, next = 0;
        int r;

        if (argc < 5 ||
            (strcmp(argv[1], "floor") != 0 && strcmp(argv[1], "floor_sandbox") != 0 &&
             strcmp(argv[1], "floor_private") != 0 &&
             strcmp(argv[1], "floor_sandbox_private") != 0 && strcmp(argv[1], "arkevent") != 0) ||
            (strcmp(argv[1], "arkevent") == 0 && argc < 6)) {
                fprintf(stderr, "Usage: bench-units floor[_sandbox][_private] SERIAL PIPELINED WINDOW\n"
                                "       bench-units arkevent SERIAL PIPELINED WINDOW FLOW\n");
                return 2;
        }
        mode = argv[1];
        serial = (unsigned) atoi(argv[2]);
        pipelined = (unsigned) atoi(argv[3]);
        window = (unsigned) atoi(argv[4]);
        if (argc > 5 && strcmp(mode, "arkevent") == 0)
                flow = argv[5];
        direct = strstr(mode, "_private") != NULL;
        if (strncmp(mode, "floor_sandbox", 13) == 0) {
                static char *props[32];
                static char list[1024];
                unsigned n = 0;

                snprintf(list, sizeof(list), "%s",
                         getenv("BENCH_FLOOR_PROPS")
                                 ?: "PrivateTmp,NoNewPrivileges,RestrictSUIDSGID");
                for (char *t = strtok(list, ","); t && n < 31; t = strtok(NULL, ","))
                        props[n++] = t;
                sandbox_props = props;
        }
        if (serial + pipelined > MAX_ITEMS || serial == 0 || window == 0)
                return 2;
        snprintf(prefix, sizeof(prefix), "bench-floor-%x-", (unsigned) (now_us() & 0xffffff));

        if (direct) {
                /* systemd's private socket, as systemctl uses it as root (and arkevent does). */
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else
                r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bus: %s\n", strerror(-r));
                return 1;
        }
        if (flow) {
                r = sd_bus_match_signal(bus, NULL, "dev.arkonis.ArkEvent1",
                                        "/dev/arkonis/ArkEvent1", "dev.arkonis.ArkEvent1.Manager",
                                        "RunFinished", on_run_finished, NULL);
        } else {
                /* On the private socket the peer is systemd, and its messages have no sender. */
                r = sd_bus_add_match(bus, NULL,
                                     direct ? "type='signal',"
                                              "interface='org.freedesktop.DBus.Properties',"
                                              "member='PropertiesChanged',"
                                              "path_namespace='/org/freedesktop/systemd1/unit'"
                                            : "type='signal',sender='org.freedesktop.systemd1',"
                                              "interface='org.freedesktop.DBus.Properties',"
                                              "member='PropertiesChanged',"
                                              "path_namespace='/org/freedesktop/systemd1/unit'",
                                     on_props, NULL);
                if (r >= 0)
                        r = sd_bus_call_method(bus, "org.freedesktop.systemd1",
                                               "/org/freedesktop/systemd1",
                                               "org.freedesktop.systemd1.Manager", "Subscribe",
                                               NULL, NULL, NULL);
        }
        if (r < 0) {
                fprintf(stderr, "setup: %s\n", strerror(-r));
                return 1;
        }

        /* Serial: one at a time, start to end. */
        for (unsigned i = 0; i < serial; i++) {
                r = flow ? start_run(bus, flow) : start_floor(bus, next++);
                if (r < 0)
                        return 1;
                if (wait_until(bus, n_done + 1, now_us() + 30 * 1000000ULL) < 0) {
                        fprintf(stderr, "timed out waiting for item %u\n", i);
                        return 1;
                }
        }
        for (unsigned i = 0; i < serial; i++)
                lat[i] = items[i].ended - items[i].started;
        qsort(lat, serial, sizeof(uint64_t), cmp_u64);
        printf("%s_serial_p50_ms=%.2f\n", mode, lat[serial / 2] / 1000.0);
        printf("%s_serial_p99_ms=%.2f\n", mode, lat[(serial * 99) / 100] / 1000.0);

        /* Pipelined: keep WINDOW in flight. */
        t0 = now_us();
        unsigned base = n_done;
        for (unsigned started = 0; started < pipelined;) {
                while (started < pipelined && started - (n_done - base) < window) {
                        r = flow ? start_run(bus, flow) : start_floor(bus, next++);
                        if (r < 0)
                                return 1;
                        started++;
                }
                if (wait_until(bus, n_done + 1, now_us() + 60 * 1000000ULL) < 0) {
                        fprintf(stderr, "timed out in the pipelined phase\n");
                        return 1;
                }
        }
        if (wait_until(bus, base + pipelined, now_us() + 120 * 1000000ULL) < 0) {
                fprintf(stderr, "timed out draining\n");
                return 1;
        }
        t1 = now_us();
        printf("%s_pipelined_per_s=%.1f\n", mode, pipelined / ((t1 - t0) / 1e6));
        sd_bus_flush_close_unref(bus);
        return 0;
}
