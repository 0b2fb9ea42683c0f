/* SPDX-License-Identifier: MIT */
#pragma once

/* A very small test harness: TEST(name) { ... } registers a case, assertions abort the case
 * with file:line and the failed expression, main() runs them all and prints "N passed, N failed".
 * Set TEST_FILTER=substring to run only matching cases. */

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TestCase {
        const char *name;
        void (*func)(void);
} TestCase;

#define TESTS_MAX 512
static TestCase tests_registry[TESTS_MAX];
static unsigned tests_n;
static jmp_buf tests_jmp;
static const char *tests_current;

static inline void tests_register(const char *name, void (*func)(void))
{
        if (tests_n < TESTS_MAX)
                tests_registry[tests_n++] = (TestCase){ name, func };
}

#define TEST(name)                                                                                \
        static void test_##name(void);                                                            \
        __attribute__((constructor)) static void tests_register_##name(void)                      \
        {                                                                                         \
                tests_register(#name, test_##name);                                               \
        }                                                                                         \
        static void test_##name(void)

static inline void tests_fail(const char *file, int line, const char *what)
{
        fprintf(stderr, "%s:%i: %s: assertion failed: %s\n", file, line, tests_current, what);
        longjmp(tests_jmp, 1);
}

#define ASSERT_TRUE(expr)                                                                         \
        do {                                                                                      \
                if (!(expr))                                                                      \
                        tests_fail(__FILE__, __LINE__, #expr);                                    \
        } while (0)

#define ASSERT_OK(expr)                                                                           \
        do {                                                                                      \
                long long _v_ = (long long) (expr);                                               \
                if (_v_ < 0) {                                                                    \
                        fprintf(stderr, "  %s = %lld (%s)\n", #expr, _v_, strerror((int) -_v_));  \
                        tests_fail(__FILE__, __LINE__, #expr " >= 0");                            \
                }                                                                                 \
        } while (0)

#define ASSERT_EQ(a, b)                                                                           \
        do {                                                                                      \
                long long _a_ = (long long) (a), _b_ = (long long) (b);                           \
                if (_a_ != _b_) {                                                                 \
                        fprintf(stderr, "  %s = %lld, %s = %lld\n", #a, _a_, #b, _b_);            \
                        tests_fail(__FILE__, __LINE__, #a " == " #b);                             \
                }                                                                                 \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                        \
        do {                                                                                      \
                const char *_a_ = (a), *_b_ = (b);                                                \
                if (!_a_ || !_b_ || strcmp(_a_, _b_) != 0) {                                      \
                        fprintf(stderr, "  %s = \"%s\"\n  %s = \"%s\"\n", #a, _a_ ? _a_ : "(null)", \
                                #b, _b_ ? _b_ : "(null)");                                        \
                        tests_fail(__FILE__, __LINE__, #a " == " #b);                             \
                }                                                                                 \
        } while (0)

#define ASSERT_NULL(p) ASSERT_TRUE((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT_TRUE((p) != NULL)

static inline int tests_run_all(void)
{
        const char *filter = getenv("TEST_FILTER");
        volatile unsigned passed = 0, failed = 0;

        for (volatile unsigned i = 0; i < tests_n; i++) {
                if (filter && !strstr(tests_registry[i].name, filter))
                        continue;
                tests_current = tests_registry[i].name;
                if (setjmp(tests_jmp) == 0) {
                        tests_registry[i].func();
                        printf("ok - %s\n", tests_current);
                        passed++;
                } else {
                        printf("FAIL - %s\n", tests_current);
                        failed++;
                }
        }
        printf("%u passed, %u failed\n", (unsigned) passed, (unsigned) failed);
        return failed > 0 || passed == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define TEST_MAIN()                                                                               \
        int main(void)                                                                            \
        {                                                                                         \
                return tests_run_all();                                                           \
        }
