/* SPDX-License-Identifier: MIT */
/* The cron module against systemd itself: for every expression, the next five elapse times of
 * the OnCalendar= conversion, as `systemd-analyze calendar` computes them, must equal the next
 * five times the cron expression denotes, computed here by a brute-force matcher with a field
 * parser of its own, so that a misreading in the module cannot hide behind the same misreading
 * in the test. cron_next() is checked against the same matcher. */

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>

#include "model/cron.h"
#include "shared/strv.h"
#include "tests.h"

/* ---- an independent reading of cron ------------------------------------------------------ */

typedef struct Ref {
        bool min[60], hour[24], dom[32], mon[13], dow[7];
        bool dom_any, dow_any; /* the day field is unrestricted */
} Ref;

/* Field descriptors: the range of values, where "*" and "N/step" stop, and the names. */
static const struct {
        int lo, hi, star_hi;
        const char *names; /* three letters each, for values lo, lo+1, ... */
} ref_fields[5] = {
        { 0, 59, 59, NULL },
        { 0, 23, 23, NULL },
        { 1, 31, 31, NULL },
        { 1, 12, 12, "janfebmaraprmayjunjulaugsepoctnovdec" },
        { 0, 7, 6, "sunmontuewedthufrisat" },
};

/* A number or a name, or -1. */
static int ref_value(const char *s, int field)
{
        const char *names = ref_fields[field].names;

        if (*s && strspn(s, "0123456789") == strlen(s))
                return atoi(s);
        if (names && strlen(s) == 3)
                for (int i = 0; names[3 * i]; i++)
                        if (strncasecmp(s, names + 3 * i, 3) == 0)
                                return ref_fields[field].lo + i;
        return -1;
}

/* Marks the field's values in set (indexed by value; day of week 7 folds onto 0). */
static bool ref_field(const char *text, int field, bool *set, bool *any)
{
        char buf[128], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", text);
        for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                char *slash = strchr(item, '/'), *dash;
                int step = 1, a, b;

                if (slash) {
                        *slash = 0;
                        step = atoi(slash + 1);
                }
                if (streq(item, "*") || streq(item, "?")) {
                        a = ref_fields[field].lo;
                        b = ref_fields[field].star_hi;
                        if (step == 1)
                                *any = true;
                } else {
                        dash = strchr(item, '-');
                        if (dash)
                                *dash = 0;
                        a = ref_value(item, field);
                        b = dash ? ref_value(dash + 1, field) : a;
                        if (!dash && slash)
                                b = a > ref_fields[field].star_hi ? a : ref_fields[field].star_hi;
                }
                if (a < 0 || b < 0 || step <= 0)
                        return false;
                for (int v = a; v <= b; v += step)
                        set[field == 4 ? v % 7 : v] = true;
        }
        return true;
}

static bool ref_parse(const char *expr, Ref *r)
{
        static const char *const shorthands[][2] = {
                { "@hourly", "0 * * * *" },  { "@daily", "0 0 * * *" },
                { "@midnight", "0 0 * * *" }, { "@weekly", "0 0 * * 0" },
                { "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
                { "@annually", "0 0 1 1 *" },
        };
        char f[5][128];
        bool unused;

        for (size_t i = 0; i < ELEMENTSOF(shorthands); i++)
                if (strcasecmp(expr, shorthands[i][0]) == 0)
                        expr = shorthands[i][1];
        if (sscanf(expr, "%127s %127s %127s %127s %127s", f[0], f[1], f[2], f[3], f[4]) != 5)
                return false;
        *r = (Ref){};
        return ref_field(f[0], 0, r->min, &unused) && ref_field(f[1], 1, r->hour, &unused) &&
               ref_field(f[2], 2, r->dom, &r->dom_any) && ref_field(f[3], 3, r->mon, &unused) &&
               ref_field(f[4], 4, r->dow, &r->dow_any);
}

static bool ref_day(const Ref *r, const struct tm *tm)
{
        bool d = r->dom[tm->tm_mday], w = r->dow[tm->tm_wday];

        return r->dom_any || r->dow_any ? d && w : d || w;
}

/* The first n firing times strictly after `after`, testing every minute of every hour of every
 * day, but skipping a whole day (hour) when the day (hour) does not match. Gives up after 30
 * years. Returns how many it found. */
static int ref_next(const Ref *r, time_t after, time_t *out, int n)
{
        time_t t = after - (after % 60 + 60) % 60 + 60, limit = after + (time_t) 30 * 366 * 86400;
        int k = 0;

        while (k < n && t < limit) {
                struct tm tm;

                ASSERT_NOT_NULL(gmtime_r(&t, &tm));
                if (!r->mon[tm.tm_mon + 1] || !ref_day(r, &tm))
                        t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
                else if (!r->hour[tm.tm_hour])
                        t += 3600 - tm.tm_min * 60;
                else {
                        if (r->min[tm.tm_min])
                                out[k++] = t;
                        t += 60;
                }
        }
        return k;
}

/* ---- systemd's reading of the conversion ------------------------------------------------- */

static int cmp_time(const void *a, const void *b)
{
        time_t x = *(const time_t *) a, y = *(const time_t *) b;

        return x < y ? -1 : x > y;
}

/* Runs `systemd-analyze calendar --iterations=5 LINE...` with TZ=UTC; returns its output. */
static char *run_analyze(char **lines, int *ret_status)
{
        _cleanup_free_ char *out = NULL;
        size_t size = 0, cap = 0;
        char *argv[16] = { (char *) "systemd-analyze", (char *) "calendar",
                           (char *) "--iterations=5" };
        int pipefd[2], status, n = 3;
        pid_t pid;

        STRV_FOREACH(l, lines) {
                ASSERT_TRUE(n < (int) ELEMENTSOF(argv) - 1);
                argv[n++] = *l;
        }
        argv[n] = NULL;

        ASSERT_OK(pipe(pipefd));
        pid = fork();
        ASSERT_OK(pid);
        if (pid == 0) {
                dup2(pipefd[1], STDOUT_FILENO);
                dup2(pipefd[1], STDERR_FILENO);
                close(pipefd[0]);
                close(pipefd[1]);
                setenv("TZ", "UTC", 1);
                setenv("SYSTEMD_COLORS", "0", 1);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(pipefd[1]);
        for (;;) {
                ssize_t k;

                if (cap - size < 4096) {
                        char *o = realloc(out, cap + 8192);
                        ASSERT_NOT_NULL(o);
                        out = o;
                        cap += 8192;
                }
                k = read(pipefd[0], out + size, cap - size - 1);
                if (k <= 0)
                        break;
                size += (size_t) k;
        }
        out[size] = 0;
        close(pipefd[0]);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        *ret_status = status;
        return TAKE_PTR(out);
}

/* The first n distinct elapse times over all lines, from systemd-analyze's "Next elapse:" and
 * "Iter. #k:" lines. */
static int analyze_times(const char *output, time_t *out, int n)
{
        time_t all[256];
        int k = 0, m = 0;

        for (const char *p = output; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                const char *v = NULL;
                struct tm tm = {};

                if (startswith(p + strspn(p, " "), "Next elapse:") ||
                    startswith(p + strspn(p, " "), "Iter. #"))
                        v = strchr(p, ':') + 1;
                if (!v || k == (int) ELEMENTSOF(all))
                        continue;
                if (sscanf(v, " %*s %d-%d-%d %d:%d:%d UTC", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                           &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
                        continue; /* "never" */
                tm.tm_year -= 1900;
                tm.tm_mon -= 1;
                all[k++] = timegm(&tm);
        }
        qsort(all, (size_t) k, sizeof(time_t), cmp_time);
        for (int i = 0; i < k && m < n; i++)
                if (m == 0 || all[i] != out[m - 1])
                        out[m++] = all[i];
        return m;
}

static void format_time(time_t t, char *buf, size_t size)
{
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%a %F %H:%M", &tm) == 0)
                snprintf(buf, size, "(%lld)", (long long) t);
}

/* Prints both columns side by side, marking the rows that differ. */
static void print_diff(const char *what, const time_t *want, int nw, const char *want_name,
                       const time_t *got, int ng, const char *got_name)
{
        fprintf(stderr, "  %s\n  %-24s %-24s\n", what, want_name, got_name);
        for (int i = 0; i < MAX(nw, ng); i++) {
                bool same = i < nw && i < ng && want[i] == got[i];
                char a[48] = "-", b[48] = "-";

                if (i < nw)
                        format_time(want[i], a, sizeof(a));
                if (i < ng)
                        format_time(got[i], b, sizeof(b));
                fprintf(stderr, "%s %-24s %-24s\n", same ? " " : "!", a, b);
        }
}

static bool times_equal(const time_t *a, int na, const time_t *b, int nb)
{
        return na == nb && memcmp(a, b, sizeof(time_t) * (size_t) na) == 0;
}

/* ---- the expressions --------------------------------------------------------------------- */

static const char *const expressions[] = {
        /* plain values, stars, steps */
        "* * * * *",
        "*/5 * * * *",
        "0 * * * *",
        "0 8 * * *",
        "30 2 * * *",
        "0 */3 * * *",
        "*/1 */1 * * *",
        "1-59/2 * * * *",
        "0-10 0 * * *",
        "10,20,30 1 * * *",
        "5,6,7,40-44 * * * *",
        "*/7 * * * *",
        "*/90 */2 * * *",
        "23 0-20/2 * * *",
        "0 5/6 * * *",
        "45/5 12 * * *",
        "0 0,12 1 */2 *",
        "30 */4 1-10 6-8 *",
        /* days of the month, months and their names */
        "0 0 1 * *",
        "0 0 1 1 *",
        "15 14 1 * *",
        "0 4 8-14 * *",
        "5 0 * 8 *",
        "0 0 */10 * *",
        "0 0 1-31/7 * *",
        "0 0 10/5 * *",
        "0 0 29 2 *",
        "0 0 30 * *",
        "0 0 31 * *",
        "0 0 31 1-4 *",
        "0 0 30,31 2,4 *",
        "45 23 28-31 * *",
        "59 23 31 12 *",
        "0 12 * JAN,APR,JUL,OCT *",
        "0 0 1 jan-mar *",
        "0 0 1 Jun/3 *",
        "0 0 15 * ?",
        "0 0 1-31 * *",
        /* days of the week */
        "0 22 * * 1-5",
        "5 4 * * sun",
        "15 10 * * 6,0",
        "0 9-17 * * MON-FRI",
        "*/15 9-17 * * 1-5",
        "0 0 * * 7",
        "0 0 * * 5-7",
        "0 0 * * 0,7",
        "0 0 * * 1/2",
        "0 0 * * */2",
        "0 0 * * 0-6",
        "0 0 * * 1-7/2",
        "0 0 * * 7/2",
        "0 3 * * tue,Thu",
        "0 0 ? * mon",
        "0 0 * * */1",
        /* both day fields restricted: either matches */
        "0 0 13 * 5",
        "0 0 1,15 * 3",
        "0 6 1-7 * 1",
        "0 0 1 jan-mar sat",
        "7 7 7 7 7",
        "0 0 29 2 1",
        "0 0 30 2 mon",
        "0 12 */2 * 1",
        "0 0 1-31/7 * 0-6/3",
        "0 0 1-31 * 1",
        "0 0 15 * 0-6",
        /* a star in a list leaves the field unrestricted (robfig): day 1 only */
        "0 0 1 * *,5",
        /* shorthands, in any case */
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@Daily",
        /* spacing */
        "  0\t12  *  *  *  \n",
};

/* One expression: the next five elapses of its conversion, per systemd-analyze, equal the
 * next five times the independent reading gives. */
static void check_against_systemd(const char *expr)
{
        _cleanup_(cron_freep) CronExpr *c = NULL;
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ char *e = NULL, *output = NULL;
        time_t want[5], got[5];
        int nw = -1, ng = -1, status = 0;
        Ref ref;

        if (cron_parse(expr, &c, &e, NULL) < 0)
                fprintf(stderr, "  cron_parse(\"%s\"): %s\n", expr, strna(e));
        ASSERT_NOT_NULL(c);
        ASSERT_OK(cron_to_on_calendar(c, &lines));
        ASSERT_TRUE(strv_length(lines) >= 1 && strv_length(lines) <= 2);
        ASSERT_TRUE(ref_parse(expr, &ref));

        /* systemd-analyze 252 counts from "now": compute the reference from the same minute,
         * asking again if a minute boundary passed during the call. */
        for (int attempt = 0; attempt < 5 && nw < 0; attempt++) {
                time_t before = time(NULL), after;

                free(output);
                output = run_analyze(lines, &status);
                after = time(NULL);
                if (before / 60 == after / 60)
                        nw = ref_next(&ref, before, want, 5);
        }
        ASSERT_TRUE(nw >= 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "  systemd-analyze failed for \"%s\":\n%s\n", expr, output);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ng = analyze_times(output, got, 5);

        if (nw != 5 || !times_equal(want, nw, got, ng)) {
                _cleanup_free_ char *joined = strv_join(lines, "' '");
                char what[512];

                snprintf(what, sizeof(what), "\"%s\" -> '%s'", expr, strna(joined));
                print_diff(what, want, nw, "cron", got, ng, "systemd");
        }
        ASSERT_EQ(nw, 5);
        ASSERT_TRUE(times_equal(want, nw, got, ng));
}

TEST(conversion_matches_systemd)
{
        unsigned checked = 0;

        for (size_t i = 0; i < ELEMENTSOF(expressions); i++) {
                check_against_systemd(expressions[i]);
                checked++;
        }
        fprintf(stderr, "  %u expressions agree with systemd-analyze\n", checked);
        ASSERT_TRUE(checked >= 60);
}

/* Expressions nobody wrote down: random fields (values, ranges, steps, lists, names), from a
 * fixed seed so a failure reproduces; CRON_TEST_SEED explores further. */
static unsigned long rand_state = 0x2545F491UL;

static unsigned rand_below(unsigned n)
{
        rand_state = rand_state * 6364136223846793005UL + 1442695040888963407UL;
        return (unsigned) ((rand_state >> 33) % n);
}

static void random_field(char *buf, size_t size, int field)
{
        static const char *const mon[] = { "jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec" };
        static const char *const dow[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
        int lo = ref_fields[field].lo, hi = ref_fields[field].star_hi, span = hi - lo + 1;
        unsigned items = 1 + rand_below(3);
        size_t n = 0;

        if (rand_below(3) == 0) {
                snprintf(buf, size, rand_below(2) ? "*" : "*/%u", 1 + rand_below((unsigned) span));
                return;
        }
        for (unsigned k = 0; k < items && n < size; k++) {
                int a = lo + (int) rand_below((unsigned) span);
                int b = a + (int) rand_below((unsigned) (hi - a + 1));
                char va[8], vb[8];

                if (field == 3 && rand_below(3) == 0) {
                        snprintf(va, sizeof(va), "%s", mon[a - 1]);
                        snprintf(vb, sizeof(vb), "%s", mon[b - 1]);
                } else if (field == 4 && rand_below(3) == 0) {
                        snprintf(va, sizeof(va), "%s", dow[a]);
                        snprintf(vb, sizeof(vb), "%s", dow[b]);
                } else {
                        snprintf(va, sizeof(va), "%d", a);
                        snprintf(vb, sizeof(vb), "%d", b);
                }
                switch (rand_below(4)) {
                case 0:
                        n += (size_t) snprintf(buf + n, size - n, "%s%s", k ? "," : "", va);
                        break;
                case 1:
                        n += (size_t) snprintf(buf + n, size - n, "%s%s-%s", k ? "," : "", va, vb);
                        break;
                case 2:
                        n += (size_t) snprintf(buf + n, size - n, "%s%s-%s/%u", k ? "," : "", va,
                                               vb, 1 + rand_below(10));
                        break;
                default:
                        n += (size_t) snprintf(buf + n, size - n, "%s%s/%u", k ? "," : "", va,
                                               1 + rand_below(12));
                        break;
                }
        }
}

TEST(random_expressions_match_systemd)
{
        unsigned n = 40;

        if (getenv("CRON_TEST_SEED"))
                rand_state ^= strtoul(getenv("CRON_TEST_SEED"), NULL, 0);
        for (unsigned i = 0; i < n; i++) {
                char f[5][64], expr[340];

                for (int k = 0; k < 5; k++)
                        random_field(f[k], sizeof(f[k]), k);
                /* Keep both day fields restricted now and then (cron's OR rule). */
                snprintf(expr, sizeof(expr), "%s %s %s %s %s", f[0], f[1], f[2], f[3], f[4]);
                check_against_systemd(expr);
        }
        fprintf(stderr, "  %u random expressions agree with systemd-analyze\n", n);
}

TEST(next_matches_reference)
{
        /* Start points around the awkward places: a month end, a year end, a leap day, a
         * non-leap century, before the epoch, and mid-minute. */
        static const time_t bases[] = {
                1764547200,  /* 2025-12-01 00:00:00 */
                1767225599,  /* 2025-12-31 23:59:59 */
                1709164800,  /* 2024-02-29 00:00:00 */
                4107542399,  /* 2100-02-28 23:59:59 */
                -86400 - 30, /* 1969-12-30 23:59:30 */
                1700000030,  /* 2023-11-14 22:13:50 */
        };

        for (size_t i = 0; i < ELEMENTSOF(expressions); i++)
                for (size_t b = 0; b < ELEMENTSOF(bases); b++) {
                        _cleanup_(cron_freep) CronExpr *c = NULL;
                        time_t want[5], got[5], t = bases[b];
                        int nw;
                        Ref ref;

                        ASSERT_OK(cron_parse(expressions[i], &c, NULL, NULL));
                        ASSERT_TRUE(ref_parse(expressions[i], &ref));
                        nw = ref_next(&ref, bases[b], want, 5);
                        for (int k = 0; k < 5; k++) {
                                ASSERT_OK(cron_next(c, t, &t));
                                got[k] = t;
                        }
                        if (!times_equal(want, nw, got, 5)) {
                                char what[256], from[48];

                                format_time(bases[b], from, sizeof(from));
                                snprintf(what, sizeof(what), "\"%s\" after %s", expressions[i],
                                         from);
                                print_diff(what, want, nw, "reference", got, 5, "cron_next()");
                        }
                        ASSERT_TRUE(times_equal(want, nw, got, 5));
                }
}

TEST(next_is_strictly_after)
{
        _cleanup_(cron_freep) CronExpr *c = NULL;
        time_t t;

        ASSERT_OK(cron_parse("0 12 * * *", &c, NULL, NULL));
        ASSERT_OK(cron_next(c, 1764590400, &t)); /* 2025-12-01 12:00:00 exactly */
        ASSERT_EQ(t, 1764590400 + 86400);
        ASSERT_OK(cron_next(c, 1764590399, &t));
        ASSERT_EQ(t, 1764590400);
}

/* The forms emitted: compact, and what an administrator reading the timer would expect. */
TEST(on_calendar_forms)
{
        static const struct {
                const char *expr, *lines;
        } forms[] = {
                { "* * * * *", "*-*-* *:*:00 UTC" },
                { "*/15 9-17 * * 1-5", "Mon..Fri *-*-* 09..17:00/15:00 UTC" },
                { "0 0-20/2 * * *", "*-*-* 00..20/2:00:00 UTC" },
                { "1-59/2 * * * *", "*-*-* *:01/2:00 UTC" },
                { "5,6,7,40-44 * * * *", "*-*-* *:05..07,40..44:00 UTC" },
                { "0 0,12 1 */2 *", "*-01/2-01 00,12:00:00 UTC" },
                { "0 0 * * 5-7", "Fri..Sun *-*-* 00:00:00 UTC" },
                { "0 0 * * 6,0", "Sat,Sun *-*-* 00:00:00 UTC" },
                { "0 0 * * 0-6", "*-*-* 00:00:00 UTC" },
                { "0 0 13 * 5", "*-*-13 00:00:00 UTC|Fri *-*-* 00:00:00 UTC" },
                { "0 0 1 jan-mar sat", "*-01..03-01 00:00:00 UTC|Sat *-01..03-* 00:00:00 UTC" },
                { "0 0 30 2 mon", "Mon *-02-* 00:00:00 UTC" },
                { "0 0 15 * 0-6", "*-*-* 00:00:00 UTC" },
                { "0 0 1 * *,5", "*-*-01 00:00:00 UTC" },
                { "@weekly", "Sun *-*-* 00:00:00 UTC" },
                { "@yearly", "*-01-01 00:00:00 UTC" },
        };

        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_(cron_freep) CronExpr *c = NULL;
                _cleanup_strv_free_ char **l = NULL;
                _cleanup_free_ char *joined = NULL;

                ASSERT_OK(cron_parse(forms[i].expr, &c, NULL, NULL));
                ASSERT_OK(cron_to_on_calendar(c, &l));
                joined = strv_join(l, "|");
                if (!streq_ptr(joined, forms[i].lines))
                        fprintf(stderr, "  \"%s\"\n", forms[i].expr);
                ASSERT_STREQ(joined, forms[i].lines);
        }
}

TEST(errors)
{
        static const struct {
                const char *expr;
                size_t offset;
                const char *message;
        } bad[] = {
                { "", 0, "expected 5 fields" },
                { "* * * *", 7,
                  "expected 5 fields (minute hour day-of-month month day-of-week), got 4" },
                { "* * * * * *", 10, "too many fields" },
                { "60 * * * *", 0, "minute: 60 is out of range 0-59" },
                { "99999999999 * * * *", 0, "minute: 99999999999 is out of range" },
                { "* 24 * * *", 2, "hour: 24 is out of range 0-23" },
                { "* * 0 * *", 4, "day of month: 0 is out of range 1-31" },
                { "0 0 1-40 * *", 6, "day of month: 40 is out of range" },
                { "* * * 13 *", 6, "month: 13 is out of range 1-12" },
                { "* * * * 8", 8, "day of week: 8 is out of range 0-7" },
                { "5-1 * * * *", 0, "minute: range 5-1 goes backwards" },
                { "0 0 * * MON-SUN", 8, "range MON-SUN goes backwards" },
                { "*/0 * * * *", 2, "minute: step must be at least 1" },
                { "*/ * * * *", 2, "expected a step after '/'" },
                { "1- * * * *", 2, "expected the end of the range" },
                { "* * * FOO *", 6, "month: expected a number, a name or '*'" },
                { "0 0 * JANUARY *", 6, "month: expected a number, a name" },
                { "MON * * * *", 0, "minute: expected a number or '*'" },
                { "1,,2 * * * *", 2, "expected a number" },
                { "1, * * * *", 1, "the list ends with ','" },
                { "1x * * * *", 1, "minute: unexpected character 'x'" },
                { "*5 * * * *", 1, "unexpected character '5'" },
                { "* ? * * *", 2, "hour: '?' is only allowed in the day fields" },
                { "@reboot", 0, "unsupported shorthand @reboot" },
                { "@every 5m", 0, "unsupported shorthand @every" },
                { "  @hourly 5", 10, "unexpected text after @hourly" },
                { "TZ=UTC 0 0 * * *", 0, "time zone" },
                { "CRON_TZ=Europe/Berlin 0 0 * * *", 0, "time zone" },
                { "0 0 30 2 *", 4, "never fires" },
                { "0 0 31 4,6,9,11 *", 4, "never fires" },
                { "0 0 30,31 feb ?", 4, "never fires" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(cron_freep) CronExpr *c = NULL;
                _cleanup_free_ char *e = NULL;
                size_t off = 999;
                int r;

                r = cron_parse(bad[i].expr, &c, &e, &off);
                if (r != -EINVAL || !e || !strstr(e, bad[i].message) || off != bad[i].offset)
                        fprintf(stderr, "  \"%s\": got %d \"%s\" at %zu, want \"%s\" at %zu\n",
                                bad[i].expr, r, strna(e), off, bad[i].message, bad[i].offset);
                ASSERT_EQ(r, -EINVAL);
                ASSERT_NULL(c);
                ASSERT_TRUE(e && strstr(e, bad[i].message));
                ASSERT_EQ(off, bad[i].offset);
        }
}

TEST_MAIN()
