/* SPDX-License-Identifier: MIT */
#pragma once

/* A list of problems found while loading resources, each with file:line:column. */

#include <stdio.h>

#include "shared/macro.h"

typedef enum DiagSeverity {
        DIAG_ERROR,
        DIAG_WARNING,
} DiagSeverity;

typedef struct Diagnostic {
        DiagSeverity severity;
        char *file;
        unsigned line;
        unsigned column;
        char *message;
} Diagnostic;

typedef struct Diagnostics {
        Diagnostic *items;
        size_t n;
        size_t n_errors;
        size_t allocated; /* of items */
} Diagnostics;

/* Adds one problem. Returns 0, or -ENOMEM. */
int diag_add(Diagnostics *d, DiagSeverity severity, const char *file, unsigned line,
             unsigned column, const char *format, ...) _printf_(6, 7);

/* Sorts by file, line, column (stable), so output reads top to bottom. */
void diag_sort(Diagnostics *d);

/* Formats one as "file:line:column: error: message". */
int diag_format(const Diagnostic *d, char **ret);

/* Writes all of them, one per line, to f. */
void diag_print(const Diagnostics *d, FILE *f);

/* For "did you mean 'X'?": the candidate (NULL-terminated list) closest to s, if it is within
 * an edit distance of 2 (case-insensitive), else NULL. */
const char *diag_closest(const char *s, const char *const *candidates);

void diag_done(Diagnostics *d);
