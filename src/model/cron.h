/* SPDX-License-Identifier: MIT */
#pragma once

/* Standard 5-field cron expressions (UTC): minute hour day-of-month month day-of-week, with
 * lists, ranges, steps, month and weekday names, and the @hourly/@daily/@weekly/@monthly/
 * @yearly (@annually, @midnight) shorthands; converted to systemd OnCalendar= expressions. */

#include <stdint.h>
#include <time.h>

#include "shared/macro.h"

typedef struct CronExpr CronExpr;

/* Parses expr. On failure returns -EINVAL and, if the pointers are non-NULL, a malloc'ed message
 * and the 0-based offset into expr where the problem is. An expression that can never fire
 * ("0 0 30 2 *") is an error too, so a parsed expression always has a next firing time. */
int cron_parse(const char *expr, CronExpr **ret, char **ret_error, size_t *ret_offset);
CronExpr *cron_free(CronExpr *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CronExpr *, cron_free);

/* Converts to one or more OnCalendar= expressions (NULL-terminated strv, each ending in " UTC")
 * whose union of elapse times equals exactly the cron expression's firing times. cron's rule that
 * a restricted day-of-month and a restricted day-of-week fire on either (OR) is expressed by
 * emitting several lines. */
int cron_to_on_calendar(const CronExpr *c, char ***ret);

/* The first firing time strictly after `after` (seconds since the epoch, UTC). -ERANGE only when
 * the answer would not fit in time_t / struct tm. */
int cron_next(const CronExpr *c, time_t after, time_t *ret);
