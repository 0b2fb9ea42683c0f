/* SPDX-License-Identifier: MIT */
#pragma once

/* Cron and calendar triggers as systemd timers. Each such trigger gets one transient timer,
 * arkevent-cron@<escaped ns/name>.timer (OnCalendar= in UTC, AccuracySec=1s), which starts the
 * static template unit arkevent-cron@.service; that asks the daemon over D-Bus to fire the
 * trigger, so bus activation brings a stopped daemon back. The set of timers is reconciled
 * against the registry at start and after every reload: exactly one timer per trigger, none
 * left over.
 *
 * Missed slots: trigger_state.last_slot_usec holds the time up to which every slot of a cron
 * trigger was handled. At start, a slot after it and within the catch-up window that no timer
 * covered fires the trigger once. */

#include <stdint.h>

#include "daemon/manager.h"

#define CRON_TIMER_PREFIX "arkevent-cron@"
#define CRON_TIMER_PATTERN "arkevent-cron@*.timer"

/* Makes the timers match the registry: creates missing ones, replaces changed ones, stops the
 * ones no trigger wants any more. Failures are logged; returns the first error. */
int trigger_cron_reconcile(Manager *m);

/* At start, once runs are recovered: reconciles the timers and fires every cron trigger that
 * missed a slot within the catch-up window, once. */
int trigger_cron_startup(Manager *m);

/* Records that t's slots are handled up to now (called whenever a cron trigger fires). */
void trigger_cron_fired(Manager *m, const Trigger *t);

/* The unit name of t's timer ("arkevent-cron@ns-name.timer"); NULL when out of memory or the
 * name would be too long for a unit. */
char *trigger_cron_timer_name(const Trigger *t);

/* The first slot of cron (µs since the epoch) after last_slot and within window before now
 * that was missed, or 0. A slot counts as missed when the timer did not elapse for it
 * (timer_last, its LastTriggerUSec, is older: the timer did not exist, e.g. the machine was
 * down), or when it elapsed so long ago (2 minutes) that its fire would be recorded by now.
 * last_slot 0 (never handled) and window 0 mean nothing is missed. */
uint64_t trigger_cron_missed_slot(const char *cron, uint64_t last_slot, uint64_t now,
                                  uint64_t window, uint64_t timer_last);

/* When t's timer elapses next (CLOCK_REALTIME µs, from the timer's NextElapseUSecRealtime);
 * 0 when unknown or t has no timer. */
uint64_t trigger_cron_next_usec(Manager *m, const Trigger *t);
/* Forgets what trigger_cron_next_usec() remembers (at exit). */
void trigger_cron_done(void);

/* Adds nextFireAt (from the timer), schedule (the OnCalendar= lines) and timer (its unit name)
 * to a cron trigger's status object o; does nothing for other triggers. */
void trigger_cron_status_json(Manager *m, const Trigger *t, json_object *o);

/* Why t's timer could not be set up (for its Ready condition), or NULL. */
const char *trigger_cron_error(const Trigger *t);

/* True while a deferred reconcile is pending. */
bool trigger_cron_busy(void);
