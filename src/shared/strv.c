/* SPDX-License-Identifier: MIT */
#include "strv.h"

char **strv_free(char **l)
{
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l)
{
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(char *const *l, const char *s)
{
        STRV_FOREACH(i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

int strv_push(char ***l, char *s)
{
        size_t n = strv_length(*l);
        char **c = realloc(*l, sizeof(char *) * (n + 2));
        if (!c) {
                free(s);
                return -ENOMEM;
        }
        c[n] = s;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *s)
{
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        return strv_push(l, c);
}

char **strv_copy(char *const *l)
{
        _cleanup_strv_free_ char **c = new0(char *, strv_length(l) + 1);
        if (!c)
                return NULL;
        size_t n = 0;
        STRV_FOREACH(i, l) {
                c[n] = strdup(*i);
                if (!c[n])
                        return NULL;
                n++;
        }
        return TAKE_PTR(c);
}

char *strv_join(char *const *l, const char *sep)
{
        size_t len = 1, ls = strlen(sep);
        STRV_FOREACH(i, l)
                len += strlen(*i) + ls;
        char *r = malloc(len), *p = r;
        if (!r)
                return NULL;
        *p = 0;
        STRV_FOREACH(i, l) {
                if (i != l) {
                        memcpy(p, sep, ls);
                        p += ls;
                }
                size_t k = strlen(*i);
                memcpy(p, *i, k);
                p += k;
        }
        *p = 0;
        return r;
}
