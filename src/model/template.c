/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdarg.h>
#include <strings.h>

#include "diag.h"
#include "template.h"

#define SEGMENTS_MAX 16

/* One {{ }} reference, parsed: the path segments point into the template. */
typedef struct TemplateRef {
        const char *seg[SEGMENTS_MAX];
        size_t seg_len[SEGMENTS_MAX];
        size_t n;
} TemplateRef;

bool template_has_expression(const char *s)
{
        return s && strstr(s, "{{");
}

static bool segment_char(char c)
{
        return isalnum((unsigned char) c) || c == '_' || c == '-';
}

static bool seg_is(const TemplateRef *ref, size_t i, const char *s)
{
        return i < ref->n && strlen(s) == ref->seg_len[i] &&
               strncmp(ref->seg[i], s, ref->seg_len[i]) == 0;
}

/* Parses the path between p and end (the inside of one {{ }}). Returns 0, or -EINVAL with
 * *ret_bad at the problem (at p for an empty expression). */
static int ref_parse(const char *p, const char *end, TemplateRef *ret, const char **ret_bad)
{
        TemplateRef ref = {};

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
                if (*p != '.' || ref.n >= SEGMENTS_MAX) {
                        /* Point at what follows the path, not at the blank before it. */
                        while (p < end && isspace((unsigned char) *p))
                                p++;
                        *ret_bad = p;
                        return -EINVAL;
                }
                s = ++p;
                while (p < end && segment_char(*p))
                        p++;
                if (p == s) {
                        *ret_bad = p < end ? p : s - 1;
                        return -EINVAL;
                }
                ref.seg[ref.n] = s;
                ref.seg_len[ref.n++] = (size_t) (p - s);
        }
        *ret = ref;
        return 0;
}

/* Finds the next complete {{ }} at or after p: *ret_open at "{{", returns the "}}" or NULL. */
static const char *next_expression(const char *p, const char **ret_open)
{
        const char *open = strstr(p, "{{");
        if (!open)
                return NULL;
        *ret_open = open;
        return strstr(open + 2, "}}");
}

typedef struct Fail {
        char **ret_error;
        size_t *ret_offset;
        const char *tmpl;
} Fail;

_printf_(3, 4) static int fail(const Fail *f, const char *at, const char *format, ...)
{
        va_list ap;

        if (f->ret_offset)
                *f->ret_offset = (size_t) (at - f->tmpl);
        if (f->ret_error) {
                va_start(ap, format);
                if (vasprintf(f->ret_error, format, ap) < 0)
                        *f->ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

/* "X is" / "X and Y are": what may be used where a root may not. */
static const char *roots_allowed(TemplateRoots roots)
{
        static const char *const text[] = {
                [0] = "nothing is",
                [TEMPLATE_PIPELINE] = ".pipeline is",
                [TEMPLATE_TRIGGER] = ".trigger is",
                [TEMPLATE_STEPS] = ".steps is",
                [TEMPLATE_PIPELINE | TEMPLATE_TRIGGER] = ".pipeline and .trigger are",
                [TEMPLATE_PIPELINE | TEMPLATE_STEPS] = ".pipeline and .steps are",
                [TEMPLATE_TRIGGER | TEMPLATE_STEPS] = ".trigger and .steps are",
                [TEMPLATE_ALL] = ".pipeline, .trigger and .steps are",
        };
        return text[roots & TEMPLATE_ALL];
}

static int ref_check(const Fail *f, const TemplateRef *ref, TemplateRoots roots,
                     TemplateStepCheck check_step, void *userdata)
{
        static const char *const root_names[] = { "pipeline", "trigger", "steps", NULL };
        static const char *const trigger_fields[] = { "name",   "namespace", "firedAt",
                                                      "body",   "output",    NULL };
        const char *at = ref->seg[0] - 1;
        int len0 = (int) ref->seg_len[0];

        if (seg_is(ref, 0, "pipeline")) {
                if (!(roots & TEMPLATE_PIPELINE))
                        return fail(f, at, "'.pipeline' is not available here (%s)",
                                    roots_allowed(roots));
                if (!seg_is(ref, 1, "input"))
                        return fail(f, at, "unknown reference: .pipeline only has .input "
                                           "(as in '.pipeline.input.name')");
                return 0;
        }

        if (seg_is(ref, 0, "trigger")) {
                _cleanup_free_ char *field = NULL;
                const char *c;

                if (!(roots & TEMPLATE_TRIGGER))
                        return fail(f, at, "'.trigger' is not available here (%s)",
                                    roots_allowed(roots));
                if (ref->n < 2)
                        return 0;
                for (size_t i = 0; trigger_fields[i]; i++)
                        if (seg_is(ref, 1, trigger_fields[i]))
                                return 0;
                field = strndup(ref->seg[1], ref->seg_len[1]);
                if (!field)
                        return -ENOMEM;
                c = diag_closest(field, trigger_fields);
                return fail(f, ref->seg[1] - 1,
                            "unknown reference '.trigger.%s' (expected name, namespace, firedAt, "
                            "body or output%s%s%s)",
                            field, c ? "; did you mean '" : "", strempty(c), c ? "'?" : "");
        }

        if (seg_is(ref, 0, "steps")) {
                _cleanup_free_ char *step = NULL;
                int r;

                if (!(roots & TEMPLATE_STEPS))
                        return fail(f, at, "'.steps' is not available here (%s)",
                                    roots_allowed(roots));
                if (ref->n != 3 || !(seg_is(ref, 2, "output") || seg_is(ref, 2, "state")))
                        return fail(f, at, "expected '.steps.<name>.output' or "
                                           "'.steps.<name>.state'");
                if (!check_step)
                        return 0;
                step = strndup(ref->seg[1], ref->seg_len[1]);
                if (!step)
                        return -ENOMEM;
                r = check_step(step, userdata);
                if (r == -ENOENT)
                        return fail(f, ref->seg[1], "unknown step '%s'", step);
                if (r < 0)
                        return fail(f, ref->seg[1],
                                    "step '%s' is not among the dependencies of this step, so "
                                    "its output is not there yet (add it to dependsOn)",
                                    step);
                return 0;
        }

        {
                _cleanup_free_ char *root = strndup(ref->seg[0], ref->seg_len[0]);
                const char *c = root ? diag_closest(root, root_names) : NULL;
                if (c)
                        return fail(f, at, "unknown reference '.%.*s' (did you mean '.%s'?)",
                                    len0, ref->seg[0], c);
                return fail(f, at, "unknown reference '.%.*s' (expected .pipeline, .trigger or "
                                   ".steps)",
                            len0, ref->seg[0]);
        }
}

int template_validate(const char *tmpl, TemplateRoots roots, TemplateStepCheck check_step,
                      void *userdata, char **ret_error, size_t *ret_offset)
{
        const Fail f = { ret_error, ret_offset, tmpl };
        const char *p = tmpl;

        if (!tmpl)
                return 0;
        for (;;) {
                const char *open = NULL, *close, *nested, *bad = NULL, *q;
                TemplateRef ref;
                int r;

                close = next_expression(p, &open);
                if (!open)
                        return 0;
                if (!close)
                        return fail(&f, open, "unclosed '{{' (missing '}}')");
                nested = strstr(open + 2, "{{");
                if (nested && nested < close)
                        return fail(&f, nested, "'{{' inside a template expression");
                for (q = open + 2; q < close && isspace((unsigned char) *q); q++)
                        ;
                if (q == close)
                        return fail(&f, open, "empty template expression '{{ }}'");
                if (ref_parse(open + 2, close, &ref, &bad) < 0)
                        return fail(&f, bad,
                                    "malformed template expression: expected a path like "
                                    "'.pipeline.input.name'");
                r = ref_check(&f, &ref, roots, check_step, userdata);
                if (r < 0)
                        return r;
                p = close + 2;
        }
}

/* Appends to a growing buffer. */
static int append(char **buf, size_t *len, size_t *allocated, const char *s, size_t n)
{
        if (*len + n + 1 > *allocated) {
                size_t a = MAX(*allocated * 2, *len + n + 64);
                char *b = realloc(*buf, a);
                if (!b)
                        return -ENOMEM;
                *buf = b;
                *allocated = a;
        }
        memcpy(*buf + *len, s, n);
        *len += n;
        (*buf)[*len] = 0;
        return 0;
}

static json_object *ref_lookup(json_object *ctx, const TemplateRef *ref)
{
        json_object *v = ctx;

        for (size_t i = 0; i < ref->n && v; i++) {
                char key[256];
                if (ref->seg_len[i] >= sizeof(key) || !json_object_is_type(v, json_type_object))
                        return NULL;
                memcpy(key, ref->seg[i], ref->seg_len[i]);
                key[ref->seg_len[i]] = 0;
                if (!json_object_object_get_ex(v, key, &v))
                        return NULL;
        }
        return v;
}

int template_expand(const char *tmpl, json_object *ctx, char **ret)
{
        _cleanup_free_ char *out = NULL;
        size_t len = 0, allocated = 0;
        const char *p = strempty(tmpl);
        int r;

        r = append(&out, &len, &allocated, "", 0);
        if (r < 0)
                return r;
        for (;;) {
                const char *open = NULL, *close, *bad;
                TemplateRef ref;
                json_object *v;

                close = next_expression(p, &open);
                if (!close) {
                        r = append(&out, &len, &allocated, p, strlen(p));
                        if (r < 0)
                                return r;
                        break;
                }
                if (ref_parse(open + 2, close, &ref, &bad) < 0) {
                        /* Not a reference: keep it as it is written. */
                        r = append(&out, &len, &allocated, p, (size_t) (close + 2 - p));
                        if (r < 0)
                                return r;
                        p = close + 2;
                        continue;
                }
                r = append(&out, &len, &allocated, p, (size_t) (open - p));
                if (r < 0)
                        return r;
                v = ref_lookup(ctx, &ref);
                if (json_object_is_type(v, json_type_string))
                        r = append(&out, &len, &allocated, json_object_get_string(v),
                                   (size_t) json_object_get_string_len(v));
                else if (v) {
                        const char *j = json_object_to_json_string_ext(
                                v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                        r = j ? append(&out, &len, &allocated, j, strlen(j)) : -ENOMEM;
                }
                if (r < 0)
                        return r;
                p = close + 2;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

bool template_truthy(const char *s)
{
        static const char *const falsy[] = { "false", "0", "no", "off", "null" };
        size_t n;

        if (!s)
                return false;
        while (isspace((unsigned char) *s))
                s++;
        n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                n--;
        if (n == 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(falsy); i++)
                if (strlen(falsy[i]) == n && strncasecmp(s, falsy[i], n) == 0)
                        return false;
        return true;
}
