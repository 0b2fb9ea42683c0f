/* SPDX-License-Identifier: MIT */
#pragma once

/* arkeventctl verbs. Each returns an exit status: 0 success, 1 failure of what was asked (for
 * validate: problems were found; for start/fire --wait: the run did not succeed), 2 bad usage,
 * 3 daemon not reachable, 4 no such flow, trigger or run, 5 access denied. */

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILURE 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_UNREACHABLE 3
#define CTL_EXIT_NOT_FOUND 4
#define CTL_EXIT_DENIED 5

/* Options every verb takes, before or after the verb. */
extern bool arg_json;
extern bool arg_no_pager;
extern bool arg_no_legend;

enum {
        ARG_JSON = 0x100,
        ARG_NO_PAGER,
        ARG_NO_LEGEND,
        ARG_VERB_FIRST, /* verbs number their own long options from here */
};

#define CTL_COMMON_OPTIONS                                                                        \
        { "help", no_argument, NULL, 'h' }, { "json", no_argument, NULL, ARG_JSON },              \
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },                                  \
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND }

/* Handles a common option; returns true if c was one. */
bool ctl_common_option(int c);

#define CTL_COMMON_HELP                                                                           \
        "  -h --help       Show this help\n"                                                     \
        "     --json       Print JSON\n"                                                          \
        "     --no-pager   Do not pipe the output into a pager\n"                                 \
        "     --no-legend  Print no column headers and no footer\n"

/* Connects to the system bus. On failure logs a clear message and returns the exit code
 * (CTL_EXIT_UNREACHABLE); 0 on success. */
int ctl_bus_open(sd_bus **ret);

/* Logs a failed call ("Failed to WHAT: message") and maps it to an exit code. */
int ctl_bus_fail(int r, const sd_bus_error *error, const char *what);

/* Calls a manager method. */
int ctl_call(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
             const char *types, ...);

/* Colours, only on a terminal (and not with NO_COLOR). */
bool ctl_colors(void);
const char *ctl_ansi_state(const char *state); /* colour of a run or activity state */
const char *ctl_ansi_highlight(void);
const char *ctl_ansi_red(void);
const char *ctl_ansi_green(void);
const char *ctl_ansi_normal(void);
const char *ctl_ansi_grey(void);

/* Starts a pager when stdout is a terminal (not with --no-pager or --json);
 * ctl_pager_close() waits for it. */
void ctl_pager_open(void);
void ctl_pager_close(void);

/* A table printed like systemctl's: columns sized to their content, a bold header line. */
typedef struct Table Table;
Table *table_new(const char *first_header, ...); /* NULL-terminated headers */
int table_add_row(Table *t, const char *first_cell, ...); /* one per column */
/* Colour of the last added row's column col (an ANSI sequence, or NULL). */
void table_set_color(Table *t, size_t col, const char *ansi);
size_t table_rows(const Table *t);
void table_print(Table *t, FILE *f);
Table *table_free(Table *t);
static inline void table_freep(Table **t)
{
        if (*t)
                table_free(*t);
}

/* "2026-11-25 16:34:41 UTC" or "-" for 0. */
char *ctl_format_time(char buf[static 64], uint64_t usec);
/* "1.234s" / "2min 3s" or "-" */
char *ctl_format_duration(char buf[static 64], uint64_t usec);

void ctl_print_json(json_object *o);
/* What the list verbs print: arr with --json, else the table through the pager with a
 * "N <what> listed." legend. Returns CTL_EXIT_OK. */
int ctl_print_list(Table *t, json_object *arr, const char *what);

/* Properties.GetAll of path's interface, as a JSON object (t and u as numbers, arrays and
 * structs as arrays). */
int ctl_get_all(sd_bus *bus, const char *path, const char *interface, sd_bus_error *error,
                json_object **ret);

/* Reads --input: JSON text, or @FILE. */
int ctl_read_input(const char *arg, char **ret);

/* Parses a run id; logs and returns -EINVAL if it is not one. */
int ctl_parse_run_id(const char *s, uint64_t *ret);

int verb_validate(int argc, char *argv[]);
int verb_reload(int argc, char *argv[]);
int verb_api_token(int argc, char *argv[]);
int verb_token(int argc, char *argv[]);
int verb_start(int argc, char *argv[]);
int verb_fire(int argc, char *argv[]);
int verb_publish(int argc, char *argv[]);
int verb_runs(int argc, char *argv[]);
int verb_show(int argc, char *argv[]);
int verb_cancel(int argc, char *argv[]);
int verb_logs(int argc, char *argv[]);
int verb_list_flows(int argc, char *argv[]);
int verb_list_triggers(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_graph(int argc, char *argv[]);
int verb_submit(int argc, char *argv[]);
