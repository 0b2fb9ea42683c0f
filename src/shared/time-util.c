/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>

#include "time-util.h"

uint64_t now_usec(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

int parse_duration(const char *s, uint64_t *ret_usec)
{
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "ms", USEC_PER_MSEC }, { "us", 1 },
                { "h", 3600 * USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC },
        };
        uint64_t total = 0;
        bool any = false;

        if (!s || !*s)
                return -EINVAL;

        while (*s) {
                char *end;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                errno = 0;
                unsigned long long v = strtoull(s, &end, 10);
                if (errno != 0 || v > UINT32_MAX)
                        return -ERANGE;
                s = end;
                uint64_t mul = 0;
                if (*s == 0 && !any)
                        mul = USEC_PER_SEC; /* bare number: seconds */
                for (size_t i = 0; mul == 0 && i < ELEMENTSOF(units); i++) {
                        const char *n = startswith(s, units[i].suffix);
                        if (n) {
                                mul = units[i].usec;
                                s = n;
                        }
                }
                if (mul == 0)
                        return -EINVAL;
                total += v * mul;
                any = true;
        }
        *ret_usec = total;
        return 0;
}

char *format_rfc3339(char buf[static 32], uint64_t usec, bool with_ms)
{
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        if (with_ms) {
                size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
                snprintf(buf + n, 32 - n, ".%03" PRIu64 "Z", (usec / USEC_PER_MSEC) % 1000);
        } else
                strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}
