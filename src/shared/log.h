/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/* Logging: to the journal (native protocol, structured) when stderr is connected to it or when
 * running under systemd, otherwise to stderr. Every *_errno() variant returns -abs(error) so that
 * the edge that decides can write "return log_error_errno(r, ...)". */

void log_set_max_level(int level);
int log_get_max_level(void);
int log_parse_level(const char *s);
void log_open(void);
void log_set_ident(const char *ident);
void log_set_target_console(bool console);

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

/* Logs a message with extra journal fields: "FIELD=value" strings, NULL terminated. */
int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, const char *format, ...) _printf_(7, 8);

#define log_full_errno(level, error, ...)                                                         \
        log_internal(level, error, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

#define log_struct(level, fields, ...)                                                            \
        log_struct_internal(level, 0, __FILE__, __LINE__, __func__, fields, __VA_ARGS__)
