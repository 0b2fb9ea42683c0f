/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <strings.h>

#include "template.h"

bool template_has_expression(const char *s)
{
        return s && strstr(s, "{{");
}

static bool segment_char(char c)
{
        return isalnum((unsigned char) c) || c == '_' || c == '-';
}

/* Parses the path inside one {{ }} (between open and close, exclusive) into segments. Returns
 * the number of segments, or -EINVAL with *ret_bad pointing at the problem. */
static int parse_path(const char *p, const char *end, char segs[][128], size_t max,
                      const char **ret_bad)
{
        size_t n = 0;

        while (p < end && isspace((unsigned char) *p))
                p++;
        while (end > p && isspace((unsigned char) end[-1]))
                end--;
        if (p == end) {
                *ret_bad = p;
                return -EINVAL;
        }
        while (p < end) {
                const char *s;
                if (*p != '.') {
                        *ret_bad = p;
                        return -EINVAL;
                }
                s = ++p;
                while (p < end && segment_char(*p))
                        p++;
                if (p == s || (size_t) (p - s) >= 128 || n >= max) {
                        *ret_bad = p < end ? p : s;
                        return -EINVAL;
                }
                memcpy(segs[n], s, (size_t) (p - s));
                segs[n][p - s] = 0;
                n++;
        }
        return (int) n;
}

#define MAX_SEGMENTS 16

int template_validate(const char *tmpl, bool allow_steps, bool allow_trigger,
                      TemplateStepCheck check_step, void *userdata, char **ret_error,
                      size_t *ret_offset)
{
        const char *p = tmpl;

#define FAIL(at, ...)                                                                             \
        do {                                                                                      \
                if (ret_offset)                                                                   \
                        *ret_offset = (size_t) ((at) - tmpl);                                     \
                if (ret_error && asprintf(ret_error, __VA_ARGS__) < 0)                            \
                        *ret_error = NULL;                                                        \
                return -EINVAL;                                                                   \
        } while (0)

        for (;;) {
                const char *open = strstr(p, "{{"), *close, *bad = NULL;
                char segs[MAX_SEGMENTS][128];
                int n;

                if (!open) {
                        const char *stray = strstr(p, "}}");
                        if (stray)
                                FAIL(stray, "unmatched '}}' in template");
                        return 0;
                }
                close = strstr(open + 2, "}}");
                if (!close)
                        FAIL(open, "unclosed '{{' in template (missing '}}')");
                {
                        const char *nested = strstr(open + 2, "{{");
                        if (nested && nested < close)
                                FAIL(nested, "'{{' inside a template expression");
                }
                n = parse_path(open + 2, close, segs, MAX_SEGMENTS, &bad);
                if (n < 0) {
                        const char *q = open + 2;
                        while (q < close && isspace((unsigned char) *q))
                                q++;
                        if (q == close)
                                FAIL(open, "empty template expression '{{ }}'");
                        FAIL(bad, "malformed template expression: expected '.name' path like "
                                  "'.pipeline.input.key'");
                }
                if (streq(segs[0], "pipeline")) {
                        if (n < 2 || !streq(segs[1], "input"))
                                FAIL(open + 2, "unknown reference: .pipeline has only .input");
                } else if (streq(segs[0], "trigger")) {
                        if (!allow_trigger)
                                FAIL(open + 2, ".trigger is not available here");
                        if (n >= 2 && !streq(segs[1], "name") && !streq(segs[1], "namespace") &&
                            !streq(segs[1], "firedAt") && !streq(segs[1], "body") &&
                            !streq(segs[1], "output"))
                                FAIL(open + 2,
                                     "unknown reference .trigger.%s (expected name, namespace, "
                                     "firedAt, body or output)",
                                     segs[1]);
                } else if (streq(segs[0], "steps")) {
                        if (!allow_steps)
                                FAIL(open + 2, ".steps is not available here");
                        if (n < 3 || (!streq(segs[2], "output") && !streq(segs[2], "state")))
                                FAIL(open + 2, "expected .steps.<name>.output");
                        if (check_step && !check_step(segs[1], userdata))
                                FAIL(open + 2,
                                     "step '%s' is not a dependency of this step (add it to "
                                     "dependsOn) or does not exist",
                                     segs[1]);
                } else
                        FAIL(open + 2,
                             "unknown reference '.%s' (expected .pipeline, .trigger or .steps)",
                             segs[0]);
                p = close + 2;
        }
#undef FAIL
}

int template_expand(const char *tmpl, json_object *ctx, char **ret)
{
        _cleanup_free_ char *out = NULL;
        size_t len = 0, allocated = 0;
        const char *p = tmpl;

#define APPEND(s, n)                                                                              \
        do {                                                                                      \
                size_t _n = (n);                                                                  \
                if (len + _n + 1 > allocated) {                                                   \
                        size_t a = MAX(allocated * 2, len + _n + 64);                             \
                        char *b = realloc(out, a);                                                \
                        if (!b)                                                                   \
                                return -ENOMEM;                                                   \
                        out = b;                                                                  \
                        allocated = a;                                                            \
                }                                                                                 \
                memcpy(out + len, (s), _n);                                                       \
                len += _n;                                                                        \
                out[len] = 0;                                                                     \
        } while (0)

        if (!tmpl)
                tmpl = p = "";
        APPEND("", 0);
        for (;;) {
                const char *open = strstr(p, "{{"), *close, *bad;
                char segs[MAX_SEGMENTS][128];
                json_object *v = ctx;
                int n;

                if (!open || !(close = strstr(open + 2, "}}"))) {
                        APPEND(p, strlen(p));
                        break;
                }
                APPEND(p, (size_t) (open - p));
                n = parse_path(open + 2, close, segs, MAX_SEGMENTS, &bad);
                for (int i = 0; i < n && v; i++)
                        if (!json_object_object_get_ex(v, segs[i], &v))
                                v = NULL;
                if (n > 0 && v) {
                        if (json_object_is_type(v, json_type_string))
                                APPEND(json_object_get_string(v),
                                       (size_t) json_object_get_string_len(v));
                        else if (!json_object_is_type(v, json_type_null)) {
                                const char *j = json_object_to_json_string_ext(
                                        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                                APPEND(j, strlen(j));
                        }
                }
                p = close + 2;
        }
#undef APPEND
        *ret = TAKE_PTR(out);
        return 0;
}

bool template_truthy(const char *s)
{
        if (!s)
                return false;
        while (isspace((unsigned char) *s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                n--;
        if (n == 0)
                return false;
        static const char *const falsy[] = { "false", "0", "no", "null", "off" };
        for (size_t i = 0; i < ELEMENTSOF(falsy); i++)
                if (strlen(falsy[i]) == n && strncasecmp(s, falsy[i], n) == 0)
                        return false;
        return true;
}
