/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <time.h>

#include "macro.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define NSEC_PER_USEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

uint64_t now_usec(clockid_t clock);

/* Parses durations such as "90s", "2m", "1m30s", "1h", "500ms", or a bare number of seconds. */
int parse_duration(const char *s, uint64_t *ret_usec);

/* Formats a CLOCK_REALTIME timestamp as RFC 3339 UTC ("2025-03-09T12:00:00Z", or with
 * milliseconds when with_ms). buf must hold 32 bytes. */
char *format_rfc3339(char buf[static 32], uint64_t usec, bool with_ms);
