/* SPDX-License-Identifier: MIT */
#pragma once

/* NULL-terminated string arrays. */

#include "macro.h"

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l) _pure_;
bool strv_contains(char *const *l, const char *s) _pure_;
/* Appends s, taking ownership (freed on failure). */
int strv_push(char ***l, char *s);
/* Appends a copy of s. */
int strv_extend(char ***l, const char *s);
char **strv_copy(char *const *l);
/* Joins with sep; returns NULL on OOM. */
char *strv_join(char *const *l, const char *sep);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
