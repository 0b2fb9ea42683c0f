/* SPDX-License-Identifier: MIT */
#pragma once

/* Firing a trigger: the one entry point shared by webhooks, D-Bus, cron timers and flow-output
 * chains. One run per target, all submitted together (fan-out); the caller answers once they are
 * committed. */

#include "daemon/manager.h"

typedef struct FireRequest {
        json_object *body;      /* .trigger.body (borrowed; NULL: {}) */
        const char *output;     /* .trigger.output (flow-output); NULL otherwise */
        const char *idempotency_key; /* NULL: none */
        bool sync;              /* exactly one target required */
} FireRequest;

typedef struct FireResult {
        int64_t *run_ids; /* a replayed fire's too, from its first answer */
        size_t n_runs;
        uint64_t fired_usec;
        json_object *response; /* the answer's body: fired, firedAt, trigger, runs[] */
        bool replayed;         /* answered from an earlier fire with the same idempotency key */
} FireResult;

void fire_result_done(FireResult *r);

/* Errors: -ENOENT a target flow is missing, -EBUSY refused by concurrencyPolicy: Forbid,
 * -ESHUTDOWN suspended, -ENOBUFS queue full, -EINVAL not possible (sync with several targets),
 * -ENOTCONN no engine. ret_error gets a message for the caller's error answer. */
int trigger_fire(Manager *m, const Trigger *t, const FireRequest *req, FireResult *ret,
                 char **ret_error);

/* Loads fired count and last fire time from the store. */
int trigger_stats(Manager *m, const Trigger *t, uint64_t *ret_count, uint64_t *ret_last_usec);
