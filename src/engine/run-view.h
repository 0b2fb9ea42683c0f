/* SPDX-License-Identifier: MIT */
#pragma once

/* Runs as the API shows them, read from the store (the one place state lives). */

#include <json-c/json.h>

#include "store/store.h"

typedef struct RunFilter {
        const char *ns;
        const char *flow;
        const char *state;
        int64_t before_id; /* paging: runs with a smaller id; 0 for the newest */
        unsigned limit;
} RunFilter;

/* -ENOENT when there is no such run. */
int run_view_get(Store *s, int64_t id, const char *base_url, json_object **ret);
int run_view_list(Store *s, const RunFilter *f, const char *base_url, json_object **ret);
