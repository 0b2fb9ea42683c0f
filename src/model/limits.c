/* SPDX-License-Identifier: MIT */
#include <ctype.h>

#include "limits.h"

/* A non-negative decimal "digits[.digits]" as an integer part and a fraction in units of
 * 10^-scale (the fraction is cut to scale digits; *ret_exact says whether anything was cut). */
static int parse_decimal(const char **p, unsigned scale, uint64_t *ret_int, uint64_t *ret_frac,
                         bool *ret_exact)
{
        const char *s = *p;
        uint64_t i = 0, f = 0;
        bool exact = true, digits = false;
        unsigned n = 0;

        for (; isdigit((unsigned char) *s); s++) {
                if (i > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                i = i * 10 + (uint64_t) (*s - '0');
                digits = true;
        }
        if (*s == '.') {
                s++;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL; /* "1." */
                for (; isdigit((unsigned char) *s); s++, n++) {
                        if (n < scale)
                                f = f * 10 + (uint64_t) (*s - '0');
                        else if (*s != '0')
                                exact = false;
                }
                digits = true;
        }
        if (!digits)
                return -EINVAL;
        for (; n < scale; n++)
                f *= 10;
        *p = s;
        *ret_int = i;
        *ret_frac = f;
        *ret_exact = exact;
        return 0;
}

int parse_cpu_limit(const char *s, uint64_t *ret_millis)
{
        uint64_t i, f, v;
        bool exact;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_decimal(&s, 3, &i, &f, &exact);
        if (r < 0)
                return r;
        if (streq(s, "m")) {
                /* Millicores are whole. */
                if (f != 0 || !exact)
                        return -EINVAL;
                v = i;
        } else if (*s == 0) {
                if (!exact)
                        return -EINVAL;
                if (i > CPU_LIMIT_MILLIS_MAX / 1000)
                        return -ERANGE;
                v = i * 1000 + f;
        } else
                return -EINVAL;
        if (v == 0 || v > CPU_LIMIT_MILLIS_MAX)
                return -ERANGE;
        *ret_millis = v;
        return 0;
}

int parse_memory_limit(const char *s, uint64_t *ret_bytes)
{
        static const struct {
                const char *suffix;
                uint64_t factor;
        } units[] = {
                { "", 1 },
                { "Ki", UINT64_C(1) << 10 },
                { "Mi", UINT64_C(1) << 20 },
                { "Gi", UINT64_C(1) << 30 },
                { "Ti", UINT64_C(1) << 40 },
                { "Pi", UINT64_C(1) << 50 },
                { "Ei", UINT64_C(1) << 60 },
                { "k", UINT64_C(1000) },
                { "K", UINT64_C(1000) },
                { "M", UINT64_C(1000000) },
                { "G", UINT64_C(1000000000) },
                { "T", UINT64_C(1000000000000) },
                { "P", UINT64_C(1000000000000000) },
                { "E", UINT64_C(1000000000000000000) },
        };
        /* Nine fraction digits are exact for every decimal factor up to G, and finer than a
         * byte for the rest. */
        const unsigned scale = 9;
        const uint64_t one = UINT64_C(1000000000);
        uint64_t i, f;
        bool exact;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_decimal(&s, scale, &i, &f, &exact);
        if (r < 0)
                return r;
        for (size_t k = 0; k < ELEMENTSOF(units); k++) {
                uint64_t factor = units[k].factor, v;

                if (!streq(s, units[k].suffix))
                        continue;
                if (factor == 1 && (f != 0 || !exact))
                        return -EINVAL; /* a fraction of a byte */
                if (i > MEMORY_LIMIT_BYTES_MAX / factor)
                        return -ERANGE;
                v = i * factor;
                /* f / one * factor, without overflow: factor is at most 2^60 or 10^18. */
                v += (uint64_t) ((unsigned __int128) f * factor / one);
                if (v == 0 || v > MEMORY_LIMIT_BYTES_MAX)
                        return -ERANGE;
                *ret_bytes = v;
                return 0;
        }
        return -EINVAL;
}
