/* SPDX-License-Identifier: MIT */
/* The cron module against systemd itself: for every expression, the next five elapse times of
 * the OnCalendar= conversion (asked of `systemd-analyze calendar`) must equal the next five
 * times the cron expression denotes, computed here by a brute-force matcher of its own. */

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "model/cron.h"
#include "shared/strv.h"
#include "tests.h"

/* ---- an independent reading of cron ------------------------------------------------------ */

typedef struct Ref {
        bool min[60], hour[24], dom[32], mon[13], dow[8];
        bool dom_star, dow_star;
} Ref;

static const char *const mons[] = { "jan", "feb", "mar", "apr", "may", "jun",
                                    "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const dows[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static int ref_value(const char *s, int field)
{
        if (isdigit((unsigned char) s[0]))
                return atoi(s);
        for (int i = 0; field == 3 && i < 12; i++)
                if (strncasecmp(s, mons[i], 3) == 0)
                        return i + 1;
        for (int i = 0; field == 4 && i < 7; i++)
                if (strncasecmp(s, dows[i], 3) == 0)
                        return i;
        return -1;
}

static bool ref_field(char *text, int field, bool *set, int lo, int hi, bool *star)
{
        *star = streq(text, "*") || streq(text, "?") || streq(text, "*/1");
        for (char *item = strtok(text, ","); item; item = strtok(NULL, ",")) {
                char *slash = strchr(item, '/');
                int step = 1, a, b;
                if (slash) {
                        *slash = 0;
                        step = atoi(slash + 1);
                }
                if (streq(item, "*") || streq(item, "?")) {
                        a = lo;
                        b = hi;
                } else {
                        char *dash = strchr(item, '-');
                        a = ref_value(item, field);
                        b = dash ? ref_value(dash + 1, field) : (slash ? hi : a);
                }
                if (a < 0 || b < 0 || step <= 0)
                        return false;
                for (int v = a; v <= b; v += step)
                        set[field == 4 && v == 7 ? 0 : v] = true;
        }
        return true;
}

static bool ref_parse(const char *expr, Ref *r)
{
        char buf[256], *f[5];
        int n = 0;
        const char *e = expr;

        if (streq(expr, "@hourly"))
                e = "0 * * * *";
        else if (streq(expr, "@daily") || streq(expr, "@midnight"))
                e = "0 0 * * *";
        else if (streq(expr, "@weekly"))
                e = "0 0 * * 0";
        else if (streq(expr, "@monthly"))
                e = "0 0 1 * *";
        else if (streq(expr, "@yearly") || streq(expr, "@annually"))
                e = "0 0 1 1 *";
        snprintf(buf, sizeof(buf), "%s", e);
        for (char *s = strtok(buf, " "); s && n < 5; s = strtok(NULL, " "))
                f[n++] = strdup(s);
        if (n != 5)
                return false;
        memset(r, 0, sizeof(*r));
        bool ok = true, unused;
        ok = ok && ref_field(f[0], 0, r->min, 0, 59, &unused);
        ok = ok && ref_field(f[1], 1, r->hour, 0, 23, &unused);
        ok = ok && ref_field(f[2], 2, r->dom, 1, 31, &r->dom_star);
        ok = ok && ref_field(f[3], 3, r->mon, 1, 12, &unused);
        ok = ok && ref_field(f[4], 4, r->dow, 0, 6, &r->dow_star);
        for (int i = 0; i < 5; i++)
                free(f[i]);
        return ok;
}

static bool ref_day(const Ref *r, const struct tm *tm)
{
        bool d = r->dom[tm->tm_mday], w = r->dow[tm->tm_wday];
        return (r->dom_star || r->dow_star) ? d && w : d || w;
}

/* The next n firing times strictly after `after`, minute by minute (a whole day at a time when
 * the day does not match). */
static int ref_next(const Ref *r, time_t after, time_t *out, int n)
{
        time_t t = after - after % 60 + 60, limit = after + (time_t) 30 * 366 * 86400;
        int k = 0;
        while (k < n && t < limit) {
                struct tm tm;
                gmtime_r(&t, &tm);
                if (!r->mon[tm.tm_mon + 1] || !ref_day(r, &tm)) {
                        t = t - (t % 86400) + 86400;
                        continue;
                }
                if (r->hour[tm.tm_hour] && r->min[tm.tm_min])
                        out[k++] = t;
                t += 60;
        }
        return k;
}

/* ---- systemd's reading of the conversion ------------------------------------------------- */

static int cmp_time(const void *a, const void *b)
{
        time_t x = *(const time_t *) a, y = *(const time_t *) b;
        return x < y ? -1 : x > y;
}

static int systemd_next(char **lines, time_t *out, int n)
{
        char cmd[4096] = "TZ=UTC systemd-analyze calendar --iterations=5";
        time_t all[64];
        int k = 0, m = 0;
        char buf[512];
        FILE *f;

        STRV_FOREACH(l, lines) {
                strcat(cmd, " '");
                strcat(cmd, *l);
                strcat(cmd, "'");
        }
        strcat(cmd, " 2>&1");
        f = popen(cmd, "r");
        if (!f)
                return -errno;
        while (fgets(buf, sizeof(buf), f) && k < 64) {
                struct tm tm = {};
                char *p = strstr(buf, "Next elapse:");
                if (!p)
                        p = strstr(buf, "Iter. #");
                if (!p)
                        continue;
                p = strchr(p, ':') + 1;
                if (sscanf(p, " %*s %d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                           &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6) {
                        tm.tm_year -= 1900;
                        tm.tm_mon -= 1;
                        all[k++] = timegm(&tm);
                }
        }
        if (pclose(f) != 0)
                return -EIO;
        qsort(all, (size_t) k, sizeof(time_t), cmp_time);
        for (int i = 0; i < k && m < n; i++)
                if (m == 0 || all[i] != out[m - 1])
                        out[m++] = all[i];
        return m;
}

static const char *const expressions[] = {
        "* * * * *",           "*/5 * * * *",         "0 * * * *",
        "0 8 * * *",           "30 2 * * *",          "0 0 1 * *",
        "0 0 1 1 *",           "15 14 1 * *",         "0 22 * * 1-5",
        "23 0-20/2 * * *",     "5 4 * * sun",         "0 0,12 1 */2 *",
        "0 4 8-14 * *",        "0 0 1,15 * 3",        "5 0 * 8 *",
        "15 10 * * 6,0",       "0 */3 * * *",         "0 9-17 * * MON-FRI",
        "*/15 9-17 * * 1-5",   "0 12 * JAN,APR,JUL,OCT *", "0 0 * * 7",
        "0 0 29 2 *",          "0 0 31 * *",          "0 0 30 * *",
        "1-59/2 * * * *",      "0 5/6 * * *",         "10,20,30 1 * * *",
        "0 0 */10 * *",        "0 0 13 * 5",          "0 6 1-7 * 1",
        "0 0 * * 1/2",         "45 23 28-31 * *",     "0 0 1 jan-mar sat",
        "0 3 * * tue,thu",     "0 0 ? * mon",         "0 0 15 * ?",
        "59 23 31 12 *",       "0 12 */2 * 1",        "30 */4 1-10 6-8 *",
        "@hourly",             "@daily",              "@weekly",
        "@monthly",            "@yearly",             "@midnight",
        "0 0 1-31/7 * 0-6/3",  "7 7 7 7 7",           "0 0 29 2 1",
        "0 0 1 * */1",         "0-10 0 * * *",
};

TEST(conversion_matches_systemd)
{
        unsigned checked = 0;

        for (size_t i = 0; i < ELEMENTSOF(expressions); i++) {
                _cleanup_(cron_freep) CronExpr *c = NULL;
                _cleanup_strv_free_ char **lines = NULL;
                _cleanup_free_ char *e = NULL;
                time_t want[5], got[5];
                Ref ref;
                int nw = 0, ng = 0;

                if (cron_parse(expressions[i], &c, &e, NULL) < 0) {
                        fprintf(stderr, "  cron_parse(\"%s\"): %s\n", expressions[i], strna(e));
                        ASSERT_TRUE(false);
                }
                ASSERT_OK(cron_to_on_calendar(c, &lines));
                ASSERT_TRUE(ref_parse(expressions[i], &ref));

                for (int attempt = 0; attempt < 3; attempt++) {
                        time_t before = time(NULL), after;
                        ng = systemd_next(lines, got, 5);
                        after = time(NULL);
                        if (before / 60 != after / 60)
                                continue; /* a minute boundary passed: ask again */
                        nw = ref_next(&ref, before, want, 5);
                        break;
                }
                ASSERT_EQ(ng, 5);
                ASSERT_EQ(nw, 5);
                for (int k = 0; k < 5; k++)
                        if (want[k] != got[k]) {
                                char a[64], b[64];
                                strftime(a, sizeof(a), "%F %T", gmtime(&want[k]));
                                strftime(b, sizeof(b), "%F %T", gmtime(&got[k]));
                                fprintf(stderr, "  \"%s\" -> %s ...: elapse #%d is %s, cron says %s\n",
                                        expressions[i], lines[0], k + 1, b, a);
                                ASSERT_TRUE(want[k] == got[k]);
                        }
                checked++;
        }
        ASSERT_TRUE(checked >= 40);
}

TEST(next_matches_reference)
{
        time_t base = 1764547200; /* 2025-12-01 00:00:00 UTC */
        for (size_t i = 0; i < ELEMENTSOF(expressions); i++) {
                _cleanup_(cron_freep) CronExpr *c = NULL;
                time_t want[3], t = base;
                Ref ref;

                ASSERT_OK(cron_parse(expressions[i], &c, NULL, NULL));
                ASSERT_TRUE(ref_parse(expressions[i], &ref));
                ASSERT_EQ(ref_next(&ref, base, want, 3), 3);
                for (int k = 0; k < 3; k++) {
                        ASSERT_OK(cron_next(c, t, &t));
                        ASSERT_EQ(t, want[k]);
                }
        }
}

TEST(or_rule_splits)
{
        _cleanup_(cron_freep) CronExpr *c = NULL;
        _cleanup_strv_free_ char **l = NULL;

        ASSERT_OK(cron_parse("0 0 13 * 5", &c, NULL, NULL));
        ASSERT_OK(cron_to_on_calendar(c, &l));
        ASSERT_EQ(strv_length(l), 2);
        ASSERT_STREQ(l[0], "*-*-13 00:00:00 UTC");
        ASSERT_STREQ(l[1], "Fri *-*-* 00:00:00 UTC");
}

TEST(errors)
{
        static const struct {
                const char *expr;
                size_t offset;
                const char *message;
        } bad[] = {
                { "* * * *", 7, "expected 5 fields" },
                { "* * * * * *", 10, "too many fields" },
                { "60 * * * *", 0, "minute: 60 is out of range" },
                { "* 24 * * *", 2, "hour: 24 is out of range" },
                { "* * 0 * *", 4, "day of month: 0 is out of range" },
                { "* * * 13 *", 6, "month: 13 is out of range" },
                { "* * * * 8", 8, "day of week: 8 is out of range" },
                { "5-1 * * * *", 0, "goes backwards" },
                { "*/0 * * * *", 2, "step must be" },
                { "* * * FOO *", 6, "expected a number" },
                { "1,,2 * * * *", 2, "expected a number" },
                { "1, * * * *", 2, "list ends with" },
                { "@reboot", 0, "unknown shorthand" },
                { "0 0 30 2 *", 4, "never fires" },
                { "1x * * * *", 1, "unexpected character" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(cron_freep) CronExpr *c = NULL;
                _cleanup_free_ char *e = NULL;
                size_t off = 999;
                ASSERT_EQ(cron_parse(bad[i].expr, &c, &e, &off), -EINVAL);
                if (!e || !strstr(e, bad[i].message) || off != bad[i].offset)
                        fprintf(stderr, "  \"%s\": got \"%s\" at %zu, want \"%s\" at %zu\n",
                                bad[i].expr, strna(e), off, bad[i].message, bad[i].offset);
                ASSERT_TRUE(e && strstr(e, bad[i].message));
                ASSERT_EQ(off, bad[i].offset);
        }
}

TEST_MAIN()
