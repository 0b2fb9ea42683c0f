/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>

#include "diag.h"

int diag_add(Diagnostics *d, DiagSeverity severity, const char *file, unsigned line,
             unsigned column, const char *format, ...)
{
        _cleanup_free_ char *msg = NULL, *f = NULL;
        Diagnostic *n;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        f = strdup(file ?: "<input>");
        if (!f)
                return -ENOMEM;

        if (d->n >= d->allocated) {
                size_t a = MAX(d->allocated * 2, 16u);
                n = realloc(d->items, a * sizeof(Diagnostic));
                if (!n)
                        return -ENOMEM;
                d->items = n;
                d->allocated = a;
        }
        d->items[d->n++] = (Diagnostic){
                .severity = severity,
                .file = TAKE_PTR(f),
                .line = line ?: 1,
                .column = column ?: 1,
                .message = TAKE_PTR(msg),
        };
        if (severity == DIAG_ERROR)
                d->n_errors++;
        return 0;
}

static int diag_cmp(const Diagnostic *x, const Diagnostic *y)
{
        int c = strcmp(x->file, y->file);
        if (c != 0)
                return c;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->column != y->column)
                return x->column < y->column ? -1 : 1;
        return 0;
}

/* Merge sort: stable (problems found at one place keep the order they were found in), and
 * n log n, since a malformed file can yield many thousands of problems. */
static void merge_sort(Diagnostic *a, Diagnostic *tmp, size_t n)
{
        size_t h = n / 2, i = 0, j = h, k = 0;

        if (n < 2)
                return;
        merge_sort(a, tmp, h);
        merge_sort(a + h, tmp, n - h);
        while (i < h && j < n)
                tmp[k++] = diag_cmp(&a[j], &a[i]) < 0 ? a[j++] : a[i++];
        while (i < h)
                tmp[k++] = a[i++];
        while (j < n)
                tmp[k++] = a[j++];
        memcpy(a, tmp, n * sizeof(Diagnostic));
}

void diag_sort(Diagnostics *d)
{
        _cleanup_free_ Diagnostic *tmp = NULL;

        if (d->n < 2)
                return;
        tmp = new0(Diagnostic, d->n);
        if (tmp) {
                merge_sort(d->items, tmp, d->n);
                return;
        }
        /* Out of memory: insertion sort, also stable, needs nothing. */
        for (size_t i = 1; i < d->n; i++) {
                Diagnostic t = d->items[i];
                size_t j = i;
                for (; j > 0 && diag_cmp(&d->items[j - 1], &t) > 0; j--)
                        d->items[j] = d->items[j - 1];
                d->items[j] = t;
        }
}

int diag_format(const Diagnostic *d, char **ret)
{
        return asprintf(ret, "%s:%u:%u: %s: %s", d->file, d->line, d->column,
                        d->severity == DIAG_ERROR ? "error" : "warning", d->message) < 0
                       ? -ENOMEM
                       : 0;
}

void diag_print(const Diagnostics *d, FILE *f)
{
        for (size_t i = 0; i < d->n; i++) {
                _cleanup_free_ char *s = NULL;
                if (diag_format(&d->items[i], &s) >= 0)
                        fprintf(f, "%s\n", s);
        }
}

void diag_done(Diagnostics *d)
{
        for (size_t i = 0; i < d->n; i++) {
                free(d->items[i].file);
                free(d->items[i].message);
        }
        free(d->items);
        *d = (Diagnostics){};
}

#define CLOSEST_MAX_LEN 64
#define CLOSEST_MAX_DISTANCE 2

static unsigned edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        unsigned prev[CLOSEST_MAX_LEN + 1], cur[CLOSEST_MAX_LEN + 1];

        if (la > CLOSEST_MAX_LEN || lb > CLOSEST_MAX_LEN)
                return UINT32_MAX;
        for (size_t j = 0; j <= lb; j++)
                prev[j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = (unsigned) i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned subst = prev[j - 1] + (tolower((unsigned char) a[i - 1]) !=
                                                        tolower((unsigned char) b[j - 1]));
                        cur[j] = MIN(MIN(prev[j] + 1, cur[j - 1] + 1), subst);
                }
                memcpy(prev, cur, sizeof(unsigned) * (lb + 1));
        }
        return prev[lb];
}

const char *diag_closest(const char *s, const char *const *candidates)
{
        const char *best = NULL;
        unsigned best_d = CLOSEST_MAX_DISTANCE + 1;

        if (!s || !*s)
                return NULL;
        for (size_t i = 0; candidates[i]; i++) {
                unsigned d = edit_distance(s, candidates[i]);
                /* A one-letter name is "close" to every short one: demand real overlap. */
                if (d < best_d && d < MAX(strlen(s), strlen(candidates[i]))) {
                        best_d = d;
                        best = candidates[i];
                }
        }
        return best;
}
