/* SPDX-License-Identifier: MIT */
/* Cron expressions, as Kubernetes CronJob (robfig/cron) reads them, in UTC:
 *
 *   minute (0-59) hour (0-23) day-of-month (1-31) month (1-12, JAN-DEC) day-of-week (0-7, SUN-SAT;
 *   0 and 7 are Sunday), names in any case; lists "1,5", ranges "1-5", steps "* /15" "1-30/7",
 *   and "N/step" meaning N-max/step; "?" is "*" in the day fields; @hourly @daily @midnight
 *   @weekly @monthly @yearly @annually.
 *
 * Day matching: a day field is unrestricted when it is "*" or "?" (a step over "*" other than 1
 * restricts it). When both day fields are restricted a day matches if EITHER does (POSIX); else
 * both must. systemd's OnCalendar= ANDs its weekday and date parts, so the OR case becomes two
 * expressions whose union is the cron schedule. */

#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <time.h>

#include "cron.h"
#include "shared/strv.h"

struct CronExpr {
        uint64_t minutes; /* bit n: minute n */
        uint32_t hours;
        uint32_t doms;   /* bits 1..31 */
        uint16_t months; /* bits 1..12 */
        uint8_t dows;    /* bits 0..6, 0 = Sunday */
        bool dom_star;
        bool dow_star;
};

typedef struct Field {
        const char *name;
        unsigned min, max;
        const char *const *names; /* names[i] is value min + i */
        bool question;            /* "?" means "*" */
} Field;

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const Field fields[5] = {
        { "minute", 0, 59, NULL, false },      { "hour", 0, 23, NULL, false },
        { "day of month", 1, 31, NULL, true }, { "month", 1, 12, month_names, false },
        { "day of week", 0, 7, dow_names, true },
};

CronExpr *cron_free(CronExpr *c)
{
        free(c);
        return NULL;
}

_printf_(4, 5) static int fail(char **ret_error, size_t *ret_offset, size_t offset,
                               const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        if (ret_error && vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        if (ret_offset)
                *ret_offset = offset;
        return -EINVAL;
}

/* Reads a number or a name at *p. */
static int read_value(const Field *f, const char **p, unsigned *ret)
{
        if (isdigit((unsigned char) **p)) {
                unsigned long v = 0;
                while (isdigit((unsigned char) **p)) {
                        v = v * 10 + (unsigned long) (**p - '0');
                        if (v > 1000)
                                return -ERANGE;
                        (*p)++;
                }
                *ret = (unsigned) v;
                return 0;
        }
        for (size_t i = 0; f->names && f->names[i]; i++)
                if (strncasecmp(*p, f->names[i], 3) == 0 && !isalpha((unsigned char) (*p)[3])) {
                        *ret = f->min + (unsigned) i;
                        *p += 3;
                        return 0;
                }
        return -EINVAL;
}

static int parse_field(const Field *f, const char *s, size_t len, size_t base, uint64_t *ret_bits,
                       bool *ret_star, char **ret_error, size_t *ret_offset)
{
        _cleanup_free_ char *copy = strndup(s, len);
        uint64_t bits = 0;
        bool star = false;
        const char *p;

        if (!copy)
                return -ENOMEM;
        p = copy;
        for (;;) {
                const char *item = p;
                unsigned lo, hi, step = 1;
                bool item_star = false, single = false;

                if (*p == '*' || (*p == '?' && f->question)) {
                        lo = f->min;
                        hi = f->max == 7 ? 6 : f->max;
                        item_star = true;
                        p++;
                } else {
                        if (read_value(f, &p, &lo) < 0)
                                return fail(ret_error, ret_offset, base + (size_t) (p - copy),
                                            "%s: expected a number, '*' or a list", f->name);
                        hi = lo;
                        single = true;
                        if (*p == '-') {
                                const char *q = ++p;
                                if (read_value(f, &p, &hi) < 0)
                                        return fail(ret_error, ret_offset,
                                                    base + (size_t) (q - copy),
                                                    "%s: expected the end of the range", f->name);
                                single = false;
                        }
                        if (lo < f->min || lo > f->max)
                                return fail(ret_error, ret_offset, base + (size_t) (item - copy),
                                            "%s: %u is out of range %u..%u", f->name, lo, f->min,
                                            f->max);
                        if (hi < f->min || hi > f->max)
                                return fail(ret_error, ret_offset, base + (size_t) (item - copy),
                                            "%s: %u is out of range (max %u)", f->name, hi,
                                            f->max);
                        if (hi < lo)
                                return fail(ret_error, ret_offset, base + (size_t) (item - copy),
                                            "%s: range %u-%u goes backwards", f->name, lo, hi);
                }
                if (*p == '/') {
                        const char *q = ++p;
                        unsigned long v = 0;
                        if (!isdigit((unsigned char) *p))
                                return fail(ret_error, ret_offset, base + (size_t) (q - copy),
                                            "%s: expected a step after '/'", f->name);
                        while (isdigit((unsigned char) *p) && v <= 1000)
                                v = v * 10 + (unsigned long) (*p++ - '0');
                        if (v == 0 || v > f->max)
                                return fail(ret_error, ret_offset, base + (size_t) (q - copy),
                                            "%s: step must be 1..%u", f->name, f->max);
                        step = (unsigned) v;
                        if (single) /* "N/step": from N to the end */
                                hi = f->max == 7 ? 6 : f->max;
                        if (step > 1)
                                item_star = false;
                }
                if (*p != ',' && *p != 0)
                        return fail(ret_error, ret_offset, base + (size_t) (p - copy),
                                    "%s: unexpected character", f->name);
                for (unsigned v = lo; v <= hi; v += step)
                        bits |= UINT64_C(1) << (f->max == 7 && v == 7 ? 0 : v);
                star = star || item_star;
                if (*p == 0)
                        break;
                p++;
                if (*p == 0)
                        return fail(ret_error, ret_offset, base + (size_t) (p - copy),
                                    "%s: list ends with ','", f->name);
        }
        *ret_bits = bits;
        *ret_star = star;
        return 0;
}

static unsigned days_in_month(unsigned month, bool leap)
{
        static const unsigned d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        return month == 2 && leap ? 29 : d[month - 1];
}

int cron_parse(const char *expr, CronExpr **ret, char **ret_error, size_t *ret_offset)
{
        static const struct {
                const char *name, *expansion;
        } shorthands[] = {
                { "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
                { "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
                { "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
                { "@hourly", "0 * * * *" },
        };
        _cleanup_(cron_freep) CronExpr *c = NULL;
        const char *p = expr, *start[5];
        size_t len[5];
        uint64_t bits[5];
        bool star[5];
        int n = 0, r;

        if (ret_error)
                *ret_error = NULL;
        while (isspace((unsigned char) *p))
                p++;
        if (*p == '@') {
                size_t l = strcspn(p, " \t");
                for (size_t i = 0; i < ELEMENTSOF(shorthands); i++)
                        if (strlen(shorthands[i].name) == l &&
                            strncasecmp(p, shorthands[i].name, l) == 0) {
                                const char *rest = p + l;
                                while (isspace((unsigned char) *rest))
                                        rest++;
                                if (*rest)
                                        return fail(ret_error, ret_offset, (size_t) (rest - expr),
                                                    "unexpected text after %s", shorthands[i].name);
                                r = cron_parse(shorthands[i].expansion, ret, NULL, NULL);
                                return r;
                        }
                return fail(ret_error, ret_offset, (size_t) (p - expr),
                            "unknown shorthand (expected @hourly, @daily, @weekly, @monthly or "
                            "@yearly)");
        }

        while (*p) {
                if (n == 5)
                        return fail(ret_error, ret_offset, (size_t) (p - expr),
                                    "too many fields: a cron expression has 5 (minute hour "
                                    "day-of-month month day-of-week)");
                start[n] = p;
                len[n] = strcspn(p, " \t");
                p += len[n];
                n++;
                while (isspace((unsigned char) *p))
                        p++;
        }
        if (n < 5)
                return fail(ret_error, ret_offset, strlen(expr),
                            "expected 5 fields (minute hour day-of-month month day-of-week)");

        for (int i = 0; i < 5; i++) {
                r = parse_field(&fields[i], start[i], len[i], (size_t) (start[i] - expr), &bits[i],
                                &star[i], ret_error, ret_offset);
                if (r < 0)
                        return r;
        }

        c = new0(CronExpr, 1);
        if (!c)
                return -ENOMEM;
        c->minutes = bits[0];
        c->hours = (uint32_t) bits[1];
        c->doms = (uint32_t) bits[2];
        c->months = (uint16_t) bits[3];
        c->dows = (uint8_t) bits[4];
        c->dom_star = star[2];
        c->dow_star = star[3 + 1];

        /* A day-of-month that no chosen month has never fires (unless weekdays OR in). */
        if (!c->dom_star && c->dow_star) {
                bool any = false;
                for (unsigned m = 1; m <= 12 && !any; m++)
                        for (unsigned d = 1; (c->months >> m & 1) && d <= days_in_month(m, true);
                             d++)
                                if (c->doms >> d & 1) {
                                        any = true;
                                        break;
                                }
                if (!any)
                        return fail(ret_error, ret_offset, (size_t) (start[2] - expr),
                                    "this expression never fires: no chosen month has that "
                                    "day");
        }

        *ret = TAKE_PTR(c);
        return 0;
}

/* Renders the set bits lo..hi compactly: "*" for all, else "a..b" runs and single values. */
static char *render(uint64_t bits, unsigned lo, unsigned hi, const char *const *names, bool pad)
{
        char buf[512] = "";
        size_t n = 0;
        bool all = true;

        for (unsigned v = lo; v <= hi; v++)
                if (!(bits >> v & 1))
                        all = false;
        if (all)
                return strdup("*");

        for (unsigned v = lo; v <= hi; v++) {
                unsigned e = v;
                char a[16], b[16];
                if (!(bits >> v & 1))
                        continue;
                while (e + 1 <= hi && (bits >> (e + 1) & 1))
                        e++;
                if (names) {
                        snprintf(a, sizeof(a), "%s", names[v]);
                        snprintf(b, sizeof(b), "%s", names[e]);
                } else {
                        snprintf(a, sizeof(a), pad ? "%02u" : "%u", v);
                        snprintf(b, sizeof(b), pad ? "%02u" : "%u", e);
                }
                if (e == v)
                        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "", a);
                else if (e == v + 1)
                        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%s,%s", n ? "," : "",
                                               a, b);
                else
                        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%s..%s",
                                               n ? "," : "", a, b);
                v = e;
        }
        return strdup(buf);
}

int cron_to_on_calendar(const CronExpr *c, char ***ret)
{
        static const char *const dnames[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        _cleanup_free_ char *min = render(c->minutes, 0, 59, NULL, true);
        _cleanup_free_ char *hour = render(c->hours, 0, 23, NULL, true);
        _cleanup_free_ char *dom = render(c->doms, 1, 31, NULL, true);
        _cleanup_free_ char *mon = render(c->months, 1, 12, NULL, true);
        _cleanup_free_ char *dow = render(c->dows, 0, 6, dnames, false);
        _cleanup_strv_free_ char **l = NULL;
        char *line;
        int r;

        if (!min || !hour || !dom || !mon || !dow)
                return -ENOMEM;

        if (!c->dom_star && !c->dow_star) {
                /* Either day field: the union of two schedules. */
                if (asprintf(&line, "*-%s-%s %s:%s:00 UTC", mon, dom, hour, min) < 0)
                        return -ENOMEM;
                r = strv_push(&l, line);
                if (r >= 0 && asprintf(&line, "%s *-%s-* %s:%s:00 UTC", dow, mon, hour, min) < 0)
                        return -ENOMEM;
                if (r >= 0)
                        r = strv_push(&l, line);
        } else {
                bool with_dow = !c->dow_star && strcmp(dow, "*") != 0;
                if (asprintf(&line, "%s%s*-%s-%s %s:%s:00 UTC", with_dow ? dow : "",
                             with_dow ? " " : "", mon, c->dom_star ? "*" : dom, hour, min) < 0)
                        return -ENOMEM;
                r = strv_push(&l, line);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static bool day_matches(const CronExpr *c, const struct tm *tm)
{
        bool dom = c->doms >> tm->tm_mday & 1, dow = c->dows >> tm->tm_wday & 1;
        if (c->dom_star || c->dow_star)
                return dom && dow;
        return dom || dow;
}

int cron_next(const CronExpr *c, time_t after, time_t *ret)
{
        time_t t = after - (after % 60) + 60;

        /* Bounded: about 5 years of day steps plus the hours and minutes within. */
        for (unsigned i = 0; i < 200000; i++) {
                struct tm tm;
                gmtime_r(&t, &tm);
                if (!(c->months >> (tm.tm_mon + 1) & 1)) {
                        tm.tm_mon++;
                        tm.tm_mday = 1;
                        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                        t = timegm(&tm);
                        continue;
                }
                if (!day_matches(c, &tm)) {
                        tm.tm_mday++;
                        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                        t = timegm(&tm);
                        continue;
                }
                if (!(c->hours >> tm.tm_hour & 1)) {
                        tm.tm_hour++;
                        tm.tm_min = tm.tm_sec = 0;
                        t = timegm(&tm);
                        continue;
                }
                if (!(c->minutes >> tm.tm_min & 1)) {
                        t += 60;
                        continue;
                }
                *ret = t;
                return 0;
        }
        return -ERANGE;
}
