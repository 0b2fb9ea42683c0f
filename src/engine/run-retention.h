/* SPDX-License-Identifier: MIT */
#pragma once

/* Retention: ended runs older than a number of days, or beyond the newest N ended runs, are
 * removed from the store together with their directories (workspace, metadata) under
 * STATE/runs/. Runs that have not ended are never touched. */

#include <stdint.h>

#include "store/store.h"

typedef struct RetentionPolicy {
        uint64_t max_age_usec; /* 0: no age limit */
        unsigned max_runs;     /* ended runs kept; 0: no count limit */
} RetentionPolicy;

/* Removes at most batch runs that the policy no longer keeps: their rows are deleted and
 * committed first, then their directories. Also forgets idempotency keys older than 24 h.
 * Returns the number of runs removed (>= 0) or negative errno. */
int runs_prune(Store *s, const char *state_dir, const RetentionPolicy *p, unsigned batch);

/* Removes directories under STATE/runs/ whose run is not in the store (left by a crash between
 * the commit and the removal). Returns how many. */
int runs_prune_orphans(Store *s, const char *state_dir);
