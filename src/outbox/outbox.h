/* SPDX-License-Identifier: MIT */
#pragma once

/* Outbound webhooks: the durable outbox. When an activity of a run ends, and when the run ends,
 * an ACTIVITY_COMPLETED or WORKFLOW_DONE event is written for every webhook of the run's flow
 * into the store's deliveries table, in the same transaction as the state change (an engine
 * listener). The deliveries are POSTed with the libcurl multi socket interface on the sd-event
 * loop: a per-request timeout, retries with exponential backoff and jitter until a maximum age,
 * and per receiver the order in which the events happened (a run's deliveries to one webhook go
 * strictly in id order, one at a time). Pending deliveries survive a restart. */

#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "engine/engine.h"
#include "store/store.h"

typedef struct Outbox Outbox;

typedef struct OutboxConfig {
        const char *state_dir;         /* holds the per-install delivery id prefix */
        uint64_t timeout_usec;         /* per request */
        uint64_t max_age_usec;         /* a delivery not done this long after its event fails */
        uint64_t backoff_initial_usec; /* first retry delay, doubled per attempt ... */
        uint64_t backoff_max_usec;     /* ... up to this */
} OutboxConfig;

/* Event names, also the X-Arkevent-Event header. */
#define OUTBOX_EVENT_ACTIVITY_COMPLETED "ACTIVITY_COMPLETED"
#define OUTBOX_EVENT_WORKFLOW_DONE "WORKFLOW_DONE"

int outbox_new(sd_event *event, Store *store, sd_bus *bus, const OutboxConfig *config,
               Outbox **ret);
/* Does not touch the store: free it after the store (a pending commit may still call it). */
Outbox *outbox_free(Outbox *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Outbox *, outbox_free);

/* Registers the engine listener that enqueues events. Call before engine_recover(), so events of
 * activities that ended while the daemon was down are enqueued too. */
int outbox_attach(Outbox *o, Engine *e);

/* Starts delivering what is pending (also what an earlier daemon left). */
int outbox_start(Outbox *o);

/* Deliveries waiting to be delivered (pending, in flight or waiting to retry). */
unsigned outbox_n_pending(Outbox *o);
/* Deliveries being sent right now. */
unsigned outbox_n_in_flight(Outbox *o);

/* At shutdown, after the event loop has ended: gives transfers in flight, and deliveries that are
 * due, up to grace_usec to complete, then stops. What is not delivered stays pending for the
 * next start. */
int outbox_drain(Outbox *o, uint64_t grace_usec);

/* The X-Arkevent-Delivery value of delivery id: the per-install prefix and the row id, the same
 * for every attempt. buf must hold OUTBOX_DELIVERY_ID_MAX bytes. */
#define OUTBOX_DELIVERY_ID_MAX 64
const char *outbox_delivery_id(Outbox *o, int64_t id, char buf[static OUTBOX_DELIVERY_ID_MAX]);

/* ---- payloads (outbox-payload.c) ---------------------------------------------------------- */

/* The Status codes of the payloads: 1 completed, 2 failed, 3 cancelled, 4 timed out,
 * 5 skipped (activities only); 0 for a state that is not final. */
int outbox_activity_status(ActivityState s) _pure_;
int outbox_run_status(RunState s) _pure_;

/* {"type": "ACTIVITY_COMPLETED", "data": {...}} with the fields, order and types of AkoFlow's
 * webhook. unit_json is the JSON description of the unit as started (NULL when the activity
 * never started one); depends_on_id the id of the activity it depends on first, or -1. */
int outbox_activity_payload(const Activity *a, const char *unit_json, int64_t depends_on_id,
                            char **ret);
/* {"type": "WORKFLOW_DONE", "data": {...}}; raw_yaml is the YAML the workflow was submitted as. */
int outbox_workflow_payload(const Run *run, const char *raw_yaml, char **ret);

/* Standard base64 with padding. */
int base64_encode(const void *data, size_t size, char **ret);
/* "sha256=<hex HMAC-SHA256 of body under secret>". */
int outbox_signature(const void *secret, size_t secret_size, const void *body, size_t body_size,
                     char **ret);
/* The delay before retry number attempts (1 = the first retry): initial * 2^(attempts-1), at
 * most max, with the upper half jittered by r (0..UINT32_MAX). */
uint64_t outbox_backoff_usec(uint64_t initial, uint64_t max, unsigned attempts, uint32_t r) _pure_;
