/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "diag.h"

int diag_add(Diagnostics *d, DiagSeverity severity, const char *file, unsigned line,
             unsigned column, const char *format, ...)
{
        Diagnostic *n;
        va_list ap;
        char *msg;
        int r;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        n = realloc(d->items, (d->n + 1) * sizeof(Diagnostic));
        if (!n) {
                free(msg);
                return -ENOMEM;
        }
        d->items = n;
        d->items[d->n] = (Diagnostic){
                .severity = severity,
                .file = strdup(file ?: "<input>"),
                .line = line ?: 1,
                .column = column ?: 1,
                .message = msg,
        };
        d->n++;
        if (severity == DIAG_ERROR)
                d->n_errors++;
        return 0;
}

static int diag_cmp(const void *a, const void *b)
{
        const Diagnostic *x = a, *y = b;
        int c = strcmp(x->file ?: "", y->file ?: "");
        if (c != 0)
                return c;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->column != y->column)
                return x->column < y->column ? -1 : 1;
        return 0;
}

void diag_sort(Diagnostics *d)
{
        /* Insertion sort: stable, and lists are short. */
        for (size_t i = 1; i < d->n; i++) {
                Diagnostic t = d->items[i];
                size_t j = i;
                while (j > 0 && diag_cmp(&d->items[j - 1], &t) > 0) {
                        d->items[j] = d->items[j - 1];
                        j--;
                }
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
