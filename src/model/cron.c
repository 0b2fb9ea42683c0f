/* SPDX-License-Identifier: MIT */
/* Cron expressions as Kubernetes CronJob reads them (robfig/cron's standard parser), in UTC.
 *
 * Syntax: five fields separated by white space,
 *
 *   minute 0-59 | hour 0-23 | day of month 1-31 | month 1-12 or JAN-DEC | day of week 0-7 or
 *   SUN-SAT (0 and 7 are both Sunday)
 *
 * names in any case. Each field is a list of items separated by ',' and each item is "*", a
 * value "N", or a range "N-M" (M >= N), optionally followed by "/step" (step >= 1). "N/step"
 * means N to the end of the field ("5/15" is 5,20,35,50), as robfig/cron has it; for the day of
 * week the end is Saturday, so "7/2" is Sunday alone. "?" is "*" in the two day fields. Instead
 * of the fields: @yearly (@annually), @monthly, @weekly, @daily (@midnight) or @hourly. Anything
 * else (@reboot, @every, a time zone prefix, six fields, out-of-range values, reversed ranges,
 * step 0) is an error with a message and the offset of the offending character.
 *
 * Days: a day field is unrestricted when one of its items is "*" or "?" with no step or a step of
 * 1 (robfig's rule: a larger step over "*" restricts it, and so does "1-31"). When both day fields
 * are restricted a day matches if EITHER does (POSIX cron); otherwise both must, the unrestricted
 * one matching every day. An expression that can never fire ("0 0 30 2 *": February has no
 * 30th) is rejected, so cron_next() always has an answer and no timer is installed that never
 * elapses.
 *
 * OnCalendar=: systemd ANDs the weekday and the date of one expression, so cron's OR becomes two
 * expressions, one per day field, whose union is the cron schedule. */

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <strings.h>

#include "cron.h"
#include "shared/strv.h"

struct CronExpr {
        uint64_t minutes;  /* bit n set: minute n fires */
        uint32_t hours;    /* bits 0..23 */
        uint32_t days;     /* bits 1..31 */
        uint16_t months;   /* bits 1..12 */
        uint8_t weekdays;  /* bits 0..6, 0 = Sunday */
        bool days_restricted, weekdays_restricted;
};

enum {
        FIELD_MINUTE,
        FIELD_HOUR,
        FIELD_DAY,
        FIELD_MONTH,
        FIELD_WEEKDAY,
        _FIELD_MAX,
};

typedef struct CronField {
        const char *name;
        unsigned min, max; /* the values accepted */
        unsigned star_max; /* where "*" and "N/step" end: 7 is only an alias of Sunday */
        const char *const *names; /* names[i] is the value names_base + i */
        unsigned names_base;
        bool question; /* "?" is accepted as "*" */
} CronField;

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const weekday_names[] = { "SUN", "MON", "TUE", "WED",
                                             "THU", "FRI", "SAT", NULL };

static const CronField fields[_FIELD_MAX] = {
        [FIELD_MINUTE] = { "minute", 0, 59, 59, NULL, 0, false },
        [FIELD_HOUR] = { "hour", 0, 23, 23, NULL, 0, false },
        [FIELD_DAY] = { "day of month", 1, 31, 31, NULL, 0, true },
        [FIELD_MONTH] = { "month", 1, 12, 12, month_names, 1, false },
        [FIELD_WEEKDAY] = { "day of week", 0, 7, 6, weekday_names, 0, true },
};

/* Any number above this is out of range in every field; reading stops growing there so that
 * long digit strings cannot overflow. */
#define CRON_NUMBER_CAP 1000U

CronExpr *cron_free(CronExpr *c)
{
        free(c);
        return NULL;
}

_printf_(4, 5) static int parse_error(char **ret_error, size_t *ret_offset, size_t offset,
                                      const char *fmt, ...)
{
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        if (ret_offset)
                *ret_offset = offset;
        return -EINVAL;
}

/* Fields are separated by any white space, as robfig/cron's strings.Fields() splits them, so a
 * trailing newline from a YAML block scalar does no harm. */
static bool is_blank(char c)
{
        return isspace((unsigned char) c);
}

static unsigned read_number(const char **p)
{
        unsigned v = 0;

        while (isdigit((unsigned char) **p)) {
                v = MIN(v * 10 + (unsigned) (**p - '0'), CRON_NUMBER_CAP);
                (*p)++;
        }
        return v;
}

/* Reads a number or a name at *p, advancing past it. Range checks are the caller's. */
static bool read_value(const CronField *f, const char **p, unsigned *ret)
{
        if (isdigit((unsigned char) **p)) {
                *ret = read_number(p);
                return true;
        }
        for (size_t i = 0; f->names && f->names[i]; i++)
                if (strncasecmp(*p, f->names[i], 3) == 0 && !isalpha((unsigned char) (*p)[3])) {
                        *ret = f->names_base + (unsigned) i;
                        *p += 3;
                        return true;
                }
        return false;
}

/* Parses the field [s, end) of expr into a bit set; *ret_unrestricted says whether an item was
 * "*" or "?" without a step (or with step 1). */
static int parse_field(const CronField *f, const char *expr, const char *s, const char *end,
                       uint64_t *ret_bits, bool *ret_unrestricted, char **ret_error,
                       size_t *ret_offset)
{
        uint64_t bits = 0;
        bool unrestricted = false;
        const char *p = s;

#define FAIL(at, ...) parse_error(ret_error, ret_offset, (size_t) ((at) - expr), __VA_ARGS__)

        for (;;) {
                const char *item = p;
                unsigned lo, hi, step = 1;
                bool star = false, single = false;

                if (*p == '*' || *p == '?') {
                        if (*p == '?' && !f->question)
                                return FAIL(p, "%s: '?' is only allowed in the day fields",
                                            f->name);
                        lo = f->min;
                        hi = f->star_max;
                        star = true;
                        p++;
                } else {
                        if (!read_value(f, &p, &lo))
                                return FAIL(p, f->names ? "%s: expected a number, a name or '*'"
                                                        : "%s: expected a number or '*'",
                                            f->name);
                        /* Quoted as written: the value read is capped for long digit runs. */
                        if (lo < f->min || lo > f->max)
                                return FAIL(item, "%s: %.*s is out of range %u-%u", f->name,
                                            (int) MIN(p - item, 32), item, f->min, f->max);
                        hi = lo;
                        single = true;
                        if (*p == '-') {
                                const char *hi_at = ++p;

                                if (!read_value(f, &p, &hi))
                                        return FAIL(p, "%s: expected the end of the range",
                                                    f->name);
                                if (hi < f->min || hi > f->max)
                                        return FAIL(hi_at, "%s: %.*s is out of range %u-%u",
                                                    f->name, (int) MIN(p - hi_at, 32), hi_at,
                                                    f->min, f->max);
                                if (hi < lo)
                                        return FAIL(item, "%s: range %.*s goes backwards",
                                                    f->name, (int) MIN(p - item, 32), item);
                                single = false;
                        }
                }

                if (*p == '/') {
                        const char *step_at = ++p;

                        if (!isdigit((unsigned char) *p))
                                return FAIL(p, "%s: expected a step after '/'", f->name);
                        step = read_number(&p);
                        if (step == 0)
                                return FAIL(step_at, "%s: step must be at least 1", f->name);
                        if (single) /* "N/step" runs to the end of the field */
                                hi = MAX(lo, f->star_max);
                }

                if (*p != ',' && p != end)
                        return FAIL(p, isprint((unsigned char) *p)
                                               ? "%s: unexpected character '%c'"
                                               : "%s: unexpected character \\x%02x",
                                    f->name, (unsigned char) *p);

                for (unsigned v = lo; v <= hi; v += step)
                        bits |= UINT64_C(1) << (f->star_max < f->max && v > f->star_max ? 0 : v);
                /* robfig: "*" and "?" leave the field unrestricted unless a step thins them. */
                if (star && step == 1)
                        unrestricted = true;

                if (p == end)
                        break;
                if (++p == end)
                        return FAIL(p - 1, "%s: the list ends with ','", f->name);
        }
#undef FAIL

        *ret_bits = bits;
        *ret_unrestricted = unrestricted;
        return 0;
}

static unsigned days_in_month(unsigned month, bool leap)
{
        static const unsigned d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        return month == 2 && leap ? 29 : d[month - 1];
}

/* Whether some chosen month has some chosen day of the month (in a leap year, the best case). */
static bool days_exist(const CronExpr *c)
{
        for (unsigned m = 1; m <= 12; m++)
                if (c->months >> m & 1 &&
                    (c->days & ((UINT64_C(2) << days_in_month(m, true)) - 2)) != 0)
                        return true;
        return false;
}

int cron_parse(const char *expr, CronExpr **ret, char **ret_error, size_t *ret_offset)
{
        static const struct {
                const char *name, *fields;
        } shorthands[] = {
                { "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
                { "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
                { "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
                { "@hourly", "0 * * * *" },
        };
        _cleanup_(cron_freep) CronExpr *c = NULL;
        const char *p = expr, *start[_FIELD_MAX], *end[_FIELD_MAX];
        uint64_t bits[_FIELD_MAX];
        bool unrestricted[_FIELD_MAX];
        unsigned n = 0;
        int r;

        if (ret_error)
                *ret_error = NULL;

        while (is_blank(*p))
                p++;
        if (*p == '@') {
                size_t l = 1;

                while (p[l] && !is_blank(p[l]))
                        l++;
                for (size_t i = 0; i < ELEMENTSOF(shorthands); i++) {
                        const char *rest = p + l;

                        if (strlen(shorthands[i].name) != l ||
                            strncasecmp(p, shorthands[i].name, l) != 0)
                                continue;
                        while (is_blank(*rest))
                                rest++;
                        if (*rest)
                                return parse_error(ret_error, ret_offset, (size_t) (rest - expr),
                                                   "unexpected text after %s",
                                                   shorthands[i].name);
                        return cron_parse(shorthands[i].fields, ret, NULL, NULL);
                }
                return parse_error(ret_error, ret_offset, (size_t) (p - expr),
                                   "unsupported shorthand %.*s (expected @yearly, @annually, "
                                   "@monthly, @weekly, @daily, @midnight or @hourly)",
                                   (int) MIN(l, 32U), p);
        }
        /* robfig/cron reads such prefixes, Kubernetes refuses them: schedules here are UTC. */
        if (startswith(p, "TZ=") || startswith(p, "CRON_TZ="))
                return parse_error(ret_error, ret_offset, (size_t) (p - expr),
                                   "time zone prefixes are not supported, schedules are in UTC");

        while (*p) {
                if (n == _FIELD_MAX)
                        return parse_error(ret_error, ret_offset, (size_t) (p - expr),
                                           "too many fields: expected 5 (minute hour "
                                           "day-of-month month day-of-week)");
                start[n] = p;
                while (*p && !is_blank(*p))
                        p++;
                end[n++] = p;
                while (is_blank(*p))
                        p++;
        }
        if (n < _FIELD_MAX)
                return parse_error(ret_error, ret_offset, (size_t) (p - expr),
                                   "expected 5 fields (minute hour day-of-month month "
                                   "day-of-week), got %u",
                                   n);

        for (unsigned i = 0; i < _FIELD_MAX; i++) {
                r = parse_field(&fields[i], expr, start[i], end[i], &bits[i], &unrestricted[i],
                                ret_error, ret_offset);
                if (r < 0)
                        return r;
        }

        c = new0(CronExpr, 1);
        if (!c)
                return -ENOMEM;
        *c = (CronExpr){
                .minutes = bits[FIELD_MINUTE],
                .hours = (uint32_t) bits[FIELD_HOUR],
                .days = (uint32_t) bits[FIELD_DAY],
                .months = (uint16_t) bits[FIELD_MONTH],
                .weekdays = (uint8_t) bits[FIELD_WEEKDAY],
                .days_restricted = !unrestricted[FIELD_DAY],
                .weekdays_restricted = !unrestricted[FIELD_WEEKDAY],
        };

        /* Only the day of month alone can rule out every day: with the OR rule the weekdays
         * still fire, and with an unrestricted day of month every month has days. */
        if (c->days_restricted && !c->weekdays_restricted && !days_exist(c))
                return parse_error(ret_error, ret_offset, (size_t) (start[FIELD_DAY] - expr),
                                   "this expression never fires: none of its months has any of "
                                   "its days of the month");

        *ret = TAKE_PTR(c);
        return 0;
}

/* Whether bits covers lo..hi entirely. */
static bool bits_full(uint64_t bits, unsigned lo, unsigned hi)
{
        uint64_t mask = ((UINT64_C(2) << hi) - 1) & ~((UINT64_C(1) << lo) - 1);

        return (bits & mask) == mask;
}

static void format_value(char *buf, size_t size, unsigned v, const char *const *names)
{
        if (names)
                snprintf(buf, size, "%s", names[v]);
        else
                snprintf(buf, size, "%02u", v);
}

/* Writes the ascending values v[0..n) as single values and "a..b" runs, each value as its name
 * when names is given, else as two digits. Returns the length written. */
static size_t render_runs(char *buf, size_t size, const unsigned *v, unsigned n,
                          const char *const *names)
{
        size_t l = 0;

        buf[0] = 0;
        for (unsigned i = 0; i < n; i++) {
                unsigned e = i;
                char first[8], last[8];

                while (e + 1 < n && v[e + 1] == v[e] + 1)
                        e++;
                /* Two adjacent values read better as a list than as a range. */
                if (e == i + 1)
                        e = i;
                format_value(first, sizeof(first), v[i], names);
                format_value(last, sizeof(last), v[e], names);
                l += (size_t) snprintf(buf + l, size - l, e > i ? "%s%s..%s" : "%s%s",
                                       l > 0 ? "," : "", first, last);
                assert(l < size);
                i = e;
        }
        return l;
}

/* Renders a numeric set for OnCalendar=: "*" when full, "a/s" or "a..b/s" when it is one
 * arithmetic progression and that is shorter, else single values and "a..b" runs. */
static char *render_numbers(uint64_t bits, unsigned lo, unsigned hi)
{
        unsigned v[64], n = 0, step = 0;
        char list[256], prog[32];
        size_t l;

        if (bits_full(bits, lo, hi))
                return strdup("*");

        for (unsigned i = lo; i <= hi; i++)
                if (bits >> i & 1)
                        v[n++] = i;
        assert(n > 0);

        l = render_runs(list, sizeof(list), v, n, NULL);

        if (n >= 3) {
                step = v[1] - v[0];
                for (unsigned i = 2; i < n && step > 1; i++)
                        if (v[i] - v[i - 1] != step)
                                step = 0;
        }
        if (step > 1) {
                /* "a/s" repeats to the end of the field in systemd as in cron. */
                if (v[n - 1] + step > hi)
                        snprintf(prog, sizeof(prog), "%02u/%u", v[0], step);
                else
                        snprintf(prog, sizeof(prog), "%02u..%02u/%u", v[0], v[n - 1], step);
                if (strlen(prog) < l)
                        return strdup(prog);
        }
        return strdup(list);
}

/* Renders weekdays in systemd's order, Monday first, so that "5-7" becomes "Fri..Sun". */
static char *render_weekdays(uint8_t bits)
{
        static const char *const names[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
        unsigned v[7], n = 0;
        char buf[64];

        for (unsigned i = 0; i < 7; i++)
                if (bits >> ((i + 1) % 7) & 1)
                        v[n++] = i;
        render_runs(buf, sizeof(buf), v, n, names);
        return strdup(buf);
}

static int push_line(char ***l, const char *weekdays, const char *months, const char *days,
                     const char *hours, const char *minutes)
{
        char *line;

        if (asprintf(&line, "%s%s*-%s-%s %s:%s:00 UTC", strempty(weekdays), weekdays ? " " : "",
                     months, days, hours, minutes) < 0)
                return -ENOMEM;
        return strv_push(l, line);
}

int cron_to_on_calendar(const CronExpr *c, char ***ret)
{
        _cleanup_free_ char *minutes = render_numbers(c->minutes, 0, 59),
                            *hours = render_numbers(c->hours, 0, 23),
                            *days = render_numbers(c->days, 1, 31),
                            *months = render_numbers(c->months, 1, 12),
                            *weekdays = render_weekdays(c->weekdays);
        _cleanup_strv_free_ char **l = NULL;
        bool all_days = !c->days_restricted || bits_full(c->days, 1, 31);
        bool all_weekdays = !c->weekdays_restricted || bits_full(c->weekdays, 0, 6);
        int r;

        if (!minutes || !hours || !days || !months || !weekdays)
                return -ENOMEM;

        if (c->days_restricted && c->weekdays_restricted) {
                /* Either day field: every day if one of them is, else the union of two
                 * expressions. The day-of-month one is left out when none of its days exist in
                 * its months ("0 0 30 2 mon"), so that no expression never elapses. */
                if (all_days || all_weekdays)
                        r = push_line(&l, NULL, months, "*", hours, minutes);
                else {
                        r = days_exist(c) ? push_line(&l, NULL, months, days, hours, minutes) : 0;
                        if (r >= 0)
                                r = push_line(&l, weekdays, months, "*", hours, minutes);
                }
        } else
                r = push_line(&l, all_weekdays ? NULL : weekdays, months, all_days ? "*" : days,
                              hours, minutes);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(l);
        return 0;
}

static bool day_matches(const CronExpr *c, const struct tm *tm)
{
        bool day = c->days >> tm->tm_mday & 1, weekday = c->weekdays >> tm->tm_wday & 1;

        if (c->days_restricted && c->weekdays_restricted)
                return day || weekday;
        return day && weekday;
}

/* The lowest set bit of bits at or above from, or -1. */
static int next_bit(uint64_t bits, int from, int max)
{
        for (int i = from; i <= max; i++)
                if (bits >> i & 1)
                        return i;
        return -1;
}

int cron_next(const CronExpr *c, time_t after, time_t *ret)
{
        /* Jumping a whole month or day at a time, and straight to the next chosen hour and
         * minute, the answer is found within a few thousand steps: the rarest schedule that
         * parses, February 29th, recurs at most 8 years apart (2096, 2104). */
        const unsigned max_steps = 20000;
        time_t t;

        /* The first whole minute after `after`, rounding toward the past for negative times. */
        if (after > INT64_MAX - 120 || after < INT64_MIN + 120)
                return -ERANGE;
        t = (after >= 0 ? after / 60 : (after - 59) / 60) * 60 + 60;

        for (unsigned i = 0; i < max_steps; i++) {
                struct tm tm;
                int h, m;

                if (!gmtime_r(&t, &tm))
                        return -ERANGE;
                tm.tm_sec = 0;

                if (!(c->months >> (tm.tm_mon + 1) & 1)) {
                        tm.tm_mon++;
                        tm.tm_mday = 1;
                        tm.tm_hour = tm.tm_min = 0;
                } else if (!day_matches(c, &tm)) {
                        tm.tm_mday++;
                        tm.tm_hour = tm.tm_min = 0;
                } else if ((h = next_bit(c->hours, tm.tm_hour, 23)) < 0) {
                        tm.tm_mday++;
                        tm.tm_hour = tm.tm_min = 0;
                } else if (h != tm.tm_hour) {
                        tm.tm_hour = h;
                        tm.tm_min = 0;
                } else if ((m = next_bit(c->minutes, tm.tm_min, 59)) < 0) {
                        tm.tm_hour++;
                        tm.tm_min = 0;
                } else {
                        tm.tm_min = m;
                        *ret = timegm(&tm);
                        return 0;
                }
                /* timegm() normalizes the overflowed field (day 32, month 12, hour 24). */
                t = timegm(&tm);
                if (t == (time_t) -1)
                        return -ERANGE;
        }
        return -ERANGE;
}
