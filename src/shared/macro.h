/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand an owned pointer out of a cleanup variable: the variable is left NULL. */
#define TAKE_PTR(p)                                                                               \
        ({                                                                                        \
                __typeof__(p) _p_ = (p);                                                          \
                (p) = NULL;                                                                       \
                _p_;                                                                              \
        })

#define TAKE_FD(fd)                                                                               \
        ({                                                                                        \
                int _fd_ = (fd);                                                                  \
                (fd) = -EBADF;                                                                    \
                _fd_;                                                                             \
        })

/* Defines a cleanup helper "func##p" for a pointer type, calling func when it is non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                   \
        static inline void func##p(type *p)                                                       \
        {                                                                                         \
                if (*p)                                                                           \
                        func(*p);                                                                 \
        }

static inline void freep(void *p)
{
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline int safe_close(int fd)
{
        if (fd >= 0)
                close(fd);
        return -EBADF;
}

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static inline const char *strempty(const char *s)
{
        return s ?: "";
}

static inline const char *strna(const char *s)
{
        return s ?: "n/a";
}

static inline const char *startswith(const char *s, const char *prefix)
{
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

static inline bool endswith(const char *s, const char *suffix)
{
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

/* Free the old value of *p and store a copy of s (or NULL). */
static inline int free_and_strdup(char **p, const char *s)
{
        char *t = NULL;
        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 0;
}

#define zero(x) memset(&(x), 0, sizeof(x))
#define new0(t, n) ((t *) calloc((n) ?: 1, sizeof(t)))
#define newa(t, n) ((t *) alloca(sizeof(t) * (n)))

#define RET_NERRNO(expr)                                                                          \
        ({                                                                                        \
                int _r_ = (expr);                                                                 \
                _r_ < 0 ? -errno : _r_;                                                           \
        })

/* Frees a and moves b into it (b is left NULL). */
#define free_and_replace(a, b)                                                                    \
        ({                                                                                        \
                free(a);                                                                          \
                (a) = (b);                                                                        \
                (b) = NULL;                                                                       \
                0;                                                                                \
        })
