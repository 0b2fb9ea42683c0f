/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <math.h>

#include "limits.h"

int parse_cpu_limit(const char *s, uint64_t *ret_millis)
{
        char *end;
        double v;

        if (!s || !*s || isspace((unsigned char) *s) || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || !isfinite(v))
                return -EINVAL;
        if (streq(end, "m")) {
                if (v != floor(v))
                        return -EINVAL;
        } else if (*end == 0)
                v *= 1000.0;
        else
                return -EINVAL;
        if (v < 1.0 || v > 1e9 || v != floor(v + 1e-9))
                return -ERANGE;
        *ret_millis = (uint64_t) llround(v);
        return 0;
}

int parse_memory_limit(const char *s, uint64_t *ret_bytes)
{
        static const struct {
                const char *suffix;
                uint64_t factor;
        } units[] = {
                { "Ki", UINT64_C(1) << 10 }, { "Mi", UINT64_C(1) << 20 },
                { "Gi", UINT64_C(1) << 30 }, { "Ti", UINT64_C(1) << 40 },
                { "K", 1000 },               { "k", 1000 },
                { "M", 1000000 },            { "G", 1000000000 },
                { "T", UINT64_C(1000000000000) }, { "", 1 },
        };
        char *end;
        unsigned long long v;

        if (!s || !isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (v == 0)
                                return -ERANGE;
                        if (v > UINT64_MAX / units[i].factor)
                                return -ERANGE;
                        *ret_bytes = v * units[i].factor;
                        return 0;
                }
        return -EINVAL;
}
