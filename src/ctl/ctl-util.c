/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>

#include "bus/bus-manager.h"
#include "ctl.h"
#include "shared/fileio.h"
#include "shared/log.h"

bool arg_json = false;
bool arg_no_pager = false;
bool arg_no_legend = false;

bool ctl_common_option(int c)
{
        switch (c) {
        case ARG_JSON:
                arg_json = true;
                return true;
        case ARG_NO_PAGER:
                arg_no_pager = true;
                return true;
        case ARG_NO_LEGEND:
                arg_no_legend = true;
                return true;
        }
        return false;
}

int ctl_bus_open(sd_bus **ret)
{
        int r;

        r = sd_bus_open_system(ret);
        if (r < 0) {
                log_error("Failed to connect to the system bus: %s. Is D-Bus running? arkevent "
                          "is reached over the system bus (%s).",
                          strerror(-r), BUS_NAME);
                return CTL_EXIT_UNREACHABLE;
        }
        return 0;
}

int ctl_bus_fail(int r, const sd_bus_error *error, const char *what)
{
        if (error && (sd_bus_error_has_name(error, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_NO_REPLY) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_TIMEOUT) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_DISCONNECTED) ||
                      (error->name && startswith(error->name, "org.freedesktop.DBus.Error.Spawn.")) ||
                      sd_bus_error_has_name(error, "org.freedesktop.systemd1.NoSuchUnit"))) {
                log_error("Failed to %s: arkevent is not reachable on the system bus (%s). Is "
                          "it installed, and does 'systemctl status arkevent' show why it "
                          "does not start?",
                          what, error->message ?: error->name);
                return CTL_EXIT_UNREACHABLE;
        }
        if (!error || !sd_bus_error_is_set(error)) {
                if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTCONN || r == -ECONNRESET) {
                        log_error("Failed to %s: arkevent is not reachable on the system bus: "
                                  "%s",
                                  what, strerror(-r));
                        return CTL_EXIT_UNREACHABLE;
                }
                log_error("Failed to %s: %s", what, strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        log_error("Failed to %s: %s", what, error->message ?: error->name);
        if (sd_bus_error_has_name(error, BUS_ERROR_NOT_FOUND))
                return CTL_EXIT_NOT_FOUND;
        if (sd_bus_error_has_name(error, BUS_ERROR_ACCESS_DENIED) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED)) {
                if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED))
                        log_error("This needs root (or membership of the group named by "
                                  "bus.adminGroup).");
                return CTL_EXIT_DENIED;
        }
        if (sd_bus_error_has_name(error, BUS_ERROR_INVALID_ARGUMENT) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_INVALID_ARGS))
                return CTL_EXIT_FAILURE;
        return CTL_EXIT_FAILURE;
}

int ctl_call(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
             const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, BUS_MANAGER_PATH,
                                           BUS_MANAGER_INTERFACE, method);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sd_bus_call(bus, m, 0, error, reply);
}

bool ctl_colors(void)
{
        static int cached = -1;
        const char *t;

        if (cached < 0) {
                t = getenv("TERM");
                cached = isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && !(t && streq(t, "dumb"));
                if (getenv("ARKEVENT_COLORS"))
                        cached = streq(getenv("ARKEVENT_COLORS"), "1");
        }
        return cached;
}

#define ANSI(name, seq)                                                                           \
        const char *ctl_ansi_##name(void)                                                         \
        {                                                                                         \
                return ctl_colors() ? seq : "";                                                   \
        }
ANSI(highlight, "\x1b[0;1;39m")
ANSI(red, "\x1b[0;1;31m")
ANSI(green, "\x1b[0;1;32m")
ANSI(normal, "\x1b[0m")
ANSI(grey, "\x1b[0;38;5;245m")

const char *ctl_ansi_state(const char *state)
{
        if (!state || !ctl_colors())
                return NULL;
        if (streq(state, "Succeeded") || streq(state, "yes") || streq(state, "Running"))
                return "\x1b[0;1;32m";
        if (streq(state, "Failed") || streq(state, "TimedOut") || streq(state, "no"))
                return "\x1b[0;1;31m";
        if (streq(state, "Cancelled") || streq(state, "Skipped") || streq(state, "Waiting"))
                return "\x1b[0;1;33m";
        return NULL;
}

static pid_t pager_pid = 0;

void ctl_pager_open(void)
{
        const char *pager;
        int fds[2];
        pid_t pid;

        if (arg_no_pager || arg_json || pager_pid > 0 || !isatty(STDOUT_FILENO))
                return;
        pager = getenv("ARKEVENT_PAGER") ?: getenv("PAGER");
        if (pager && (!*pager || streq(pager, "cat")))
                return;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return;
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return;
        }
        if (pid == 0) {
                (void) dup2(fds[0], STDIN_FILENO);
                setenv("LESS", "FRSXMK", 0);
                if (pager)
                        execl("/bin/sh", "sh", "-c", pager, (char *) NULL);
                execlp("less", "less", (char *) NULL);
                execlp("more", "more", (char *) NULL);
                /* No pager: copy through. */
                {
                        char buf[4096];
                        ssize_t n;
                        while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
                                if (write(STDOUT_FILENO, buf, (size_t) n) < 0)
                                        break;
                }
                _exit(0);
        }
        (void) dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        pager_pid = pid;
        /* The pager decides when we are done reading; ^C goes to it. */
        signal(SIGINT, SIG_IGN);
        signal(SIGPIPE, SIG_DFL);
}

void ctl_pager_close(void)
{
        if (pager_pid <= 0)
                return;
        fflush(stdout);
        fclose(stdout);
        close(STDOUT_FILENO);
        (void) waitpid(pager_pid, NULL, 0);
        pager_pid = 0;
}

struct Table {
        size_t n_columns;
        char **cells; /* n_rows + 1 (header) times n_columns */
        const char **colors;
        size_t n_rows;
};

Table *table_new(const char *first_header, ...)
{
        Table *t = new0(Table, 1);
        va_list ap;
        size_t n = 0;

        if (!t)
                return NULL;
        va_start(ap, first_header);
        for (const char *h = first_header; h; h = va_arg(ap, const char *))
                n++;
        va_end(ap);
        t->n_columns = n;
        t->cells = new0(char *, n);
        t->colors = new0(const char *, n);
        if (!t->cells || !t->colors)
                return table_free(t);
        va_start(ap, first_header);
        n = 0;
        for (const char *h = first_header; h; h = va_arg(ap, const char *))
                t->cells[n++] = strdup(h);
        va_end(ap);
        return t;
}

int table_add_row(Table *t, const char *first_cell, ...)
{
        size_t base = (t->n_rows + 1) * t->n_columns;
        char **nc = realloc(t->cells, (base + t->n_columns) * sizeof(char *));
        const char **ncol;
        va_list ap;

        if (!nc)
                return -ENOMEM;
        t->cells = nc;
        ncol = realloc(t->colors, (base + t->n_columns) * sizeof(char *));
        if (!ncol)
                return -ENOMEM;
        t->colors = ncol;
        va_start(ap, first_cell);
        for (size_t i = 0; i < t->n_columns; i++) {
                const char *c = i == 0 ? first_cell : va_arg(ap, const char *);
                t->cells[base + i] = strdup(c ?: "-");
                t->colors[base + i] = NULL;
        }
        va_end(ap);
        t->n_rows++;
        return 0;
}

void table_set_color(Table *t, size_t col, const char *ansi)
{
        if (t->n_rows > 0 && col < t->n_columns)
                t->colors[t->n_rows * t->n_columns + col] = ansi;
}

size_t table_rows(const Table *t)
{
        return t->n_rows;
}

void table_print(Table *t, FILE *f)
{
        size_t *w = new0(size_t, t->n_columns);

        if (!w)
                return;
        for (size_t r = 0; r <= t->n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++)
                        w[c] = MAX(w[c], strlen(strempty(t->cells[r * t->n_columns + c])));
        for (size_t r = arg_no_legend ? 1 : 0; r <= t->n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *s = strempty(t->cells[r * t->n_columns + c]);
                        const char *color = r == 0 ? (ctl_colors() ? "\x1b[4;1m" : NULL)
                                                   : t->colors[r * t->n_columns + c];
                        bool last = c + 1 == t->n_columns;
                        fprintf(f, "%s%s%s", color ?: "", s, color ? "\x1b[0m" : "");
                        if (!last)
                                fprintf(f, "%*s", (int) (w[c] - strlen(s) + 1), "");
                }
                fputc('\n', f);
        }
        free(w);
}

Table *table_free(Table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; t->cells && i < (t->n_rows + 1) * t->n_columns; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->colors);
        free(t);
        return NULL;
}

char *ctl_format_time(char buf[static 64], uint64_t usec)
{
        struct tm tm;
        time_t s = (time_t) (usec / 1000000);

        if (usec == 0) {
                strcpy(buf, "-");
                return buf;
        }
        gmtime_r(&s, &tm);
        strftime(buf, 64, "%Y-%m-%d %H:%M:%S UTC", &tm);
        return buf;
}

char *ctl_format_duration(char buf[static 64], uint64_t usec)
{
        if (usec == 0)
                strcpy(buf, "-");
        else if (usec < 60 * 1000000ULL)
                snprintf(buf, 64, "%" PRIu64 ".%03" PRIu64 "s", usec / 1000000,
                         (usec / 1000) % 1000);
        else if (usec < 3600 * 1000000ULL)
                snprintf(buf, 64, "%" PRIu64 "min %" PRIu64 "s", usec / 60000000,
                         (usec / 1000000) % 60);
        else
                snprintf(buf, 64, "%" PRIu64 "h %" PRIu64 "min", usec / (uint64_t) 3600000000,
                         (usec / 60000000) % 60);
        return buf;
}

void ctl_print_json(json_object *o)
{
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_SPACED |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
}

int ctl_print_list(Table *t, json_object *arr, const char *what)
{
        if (arg_json) {
                ctl_print_json(arr);
                return CTL_EXIT_OK;
        }
        ctl_pager_open();
        table_print(t, stdout);
        if (!arg_no_legend)
                printf("\n%zu %s listed.\n", table_rows(t), what);
        ctl_pager_close();
        return CTL_EXIT_OK;
}

int ctl_read_input(const char *arg, char **ret)
{
        int r;

        if (arg[0] == '@') {
                r = read_file_capped(arg + 1, 16 << 20, ret, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s: %m", arg + 1);
                return 0;
        }
        *ret = strdup(arg);
        return *ret ? 0 : log_oom();
}

int ctl_parse_run_id(const char *s, uint64_t *ret)
{
        const char *p = s;
        char *end;
        uint64_t id;

        /* Accept an object path too, as the bus hands them out. */
        if (startswith(s, BUS_RUN_PREFIX "/"))
                p = s + strlen(BUS_RUN_PREFIX "/");
        errno = 0;
        id = strtoull(p, &end, 10);
        if (errno != 0 || end == p || *end || id == 0 || *p == '-') {
                log_error("'%s' is not a run id.", s);
                return -EINVAL;
        }
        *ret = id;
        return 0;
}
