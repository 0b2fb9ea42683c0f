/* SPDX-License-Identifier: MIT */
/* Cron timers: unit names as systemd escapes them, and which missed slot fires at start. */

#include "model/model.h"
#include "shared/time-util.h"
#include "tests.h"
#include "triggers/trigger-cron.h"

static char *timer_name(const char *ns, const char *name)
{
        Trigger t = { .namespace = (char *) ns, .name = (char *) name };
        return trigger_cron_timer_name(&t);
}

TEST(timer_names)
{
        char *n;

        n = timer_name("default", "hourly");
        ASSERT_STREQ(n, "arkevent-cron@default-hourly.timer");
        free(n);
        /* As `systemd-escape ai-team/daily-report`. */
        n = timer_name("ai-team", "daily-report");
        ASSERT_STREQ(n, "arkevent-cron@ai\\x2dteam-daily\\x2dreport.timer");
        free(n);
        n = timer_name("ns", ".hidden x");
        ASSERT_STREQ(n, "arkevent-cron@ns-.hidden\\x20x.timer");
        free(n);
        n = timer_name(".a", "b");
        ASSERT_STREQ(n, "arkevent-cron@\\x2ea-b.timer");
        free(n);
        /* Too long for a unit name. */
        {
                char longname[300];
                memset(longname, 'x', sizeof(longname) - 1);
                longname[sizeof(longname) - 1] = 0;
                ASSERT_NULL(timer_name("default", longname));
        }
}

#define S(sec) ((uint64_t) (sec) * USEC_PER_SEC)
#define DAY 86400
/* 2026-01-10 12:00:00 UTC */
#define NOW 1768046400

TEST(missed_slot_when_the_machine_was_down)
{
        /* Daily at 08:00; last handled two days ago; no timer: 2026-01-10 08:00 was missed. */
        ASSERT_EQ(trigger_cron_missed_slot("0 8 * * *", S(NOW - 2 * DAY), S(NOW), S(DAY), 0),
                  S(NOW - 4 * 3600));
        /* Outside the window (one hour): nothing. */
        ASSERT_EQ(trigger_cron_missed_slot("0 8 * * *", S(NOW - 2 * DAY), S(NOW), S(3600), 0),
                  0);
        /* Handled after that slot: nothing. */
        ASSERT_EQ(trigger_cron_missed_slot("0 8 * * *", S(NOW - 3 * 3600), S(NOW), S(DAY), 0), 0);
        /* Never handled (a new trigger) or catching up turned off: nothing. */
        ASSERT_EQ(trigger_cron_missed_slot("0 8 * * *", 0, S(NOW), S(DAY), 0), 0);
        ASSERT_EQ(trigger_cron_missed_slot("0 8 * * *", S(NOW - 2 * DAY), S(NOW), 0, 0), 0);
        /* Not cron (a calendar trigger) or invalid: nothing. */
        ASSERT_EQ(trigger_cron_missed_slot(NULL, S(NOW - 2 * DAY), S(NOW), S(DAY), 0), 0);
        ASSERT_EQ(trigger_cron_missed_slot("61 * * * *", S(NOW - 2 * DAY), S(NOW), S(DAY), 0), 0);
}

TEST(missed_slot_and_the_timer)
{
        /* Every minute; the slot 30 s ago elapsed on the timer: its fire is on its way (the
         * start was bus activation for it), so it is not fired twice. */
        ASSERT_EQ(trigger_cron_missed_slot("* * * * *", S(NOW - 90), S(NOW + 30), S(DAY),
                                           S(NOW)),
                  0);
        /* The timer did not elapse for it: fired. */
        ASSERT_EQ(trigger_cron_missed_slot("* * * * *", S(NOW - 90), S(NOW + 30), S(DAY),
                                           S(NOW - 60)),
                  S(NOW));
        /* A slot the timer elapsed for five minutes ago that the store does not show as
         * handled: its fire was lost, so it is caught up. */
        ASSERT_EQ(trigger_cron_missed_slot("*/5 * * * *", S(NOW - 400), S(NOW + 10), S(DAY),
                                           S(NOW)),
                  S(NOW - 300));
}

TEST_MAIN()
