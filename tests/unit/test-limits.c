/* SPDX-License-Identifier: MIT */
#include "model/limits.h"
#include "tests.h"

static uint64_t cpu(const char *s)
{
        uint64_t v = 0;
        ASSERT_OK(parse_cpu_limit(s, &v));
        return v;
}

static uint64_t mem(const char *s)
{
        uint64_t v = 0;
        ASSERT_OK(parse_memory_limit(s, &v));
        return v;
}

TEST(cpu_limits)
{
        uint64_t v = 77;

        ASSERT_EQ(cpu("1"), 1000);
        ASSERT_EQ(cpu("0.5"), 500);
        ASSERT_EQ(cpu(".5"), 500);
        ASSERT_EQ(cpu("2.25"), 2250);
        ASSERT_EQ(cpu("1.500"), 1500);
        ASSERT_EQ(cpu("0.001"), 1);
        ASSERT_EQ(cpu("500m"), 500);
        ASSERT_EQ(cpu("1m"), 1);
        ASSERT_EQ(cpu("2000m"), 2000);
        ASSERT_EQ(cpu("1000000"), 1000000000ULL);

        ASSERT_EQ(parse_cpu_limit("0", &v), -ERANGE);
        ASSERT_EQ(parse_cpu_limit("0m", &v), -ERANGE);
        ASSERT_EQ(parse_cpu_limit("0.000", &v), -ERANGE);
        ASSERT_EQ(parse_cpu_limit("1000001", &v), -ERANGE);
        ASSERT_EQ(parse_cpu_limit("99999999999999999999999", &v), -ERANGE);
        /* Finer than a millicore, signs, other notations, garbage. */
        ASSERT_EQ(parse_cpu_limit("0.0005", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("1.5m", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("-1", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("+1", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("1e3", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("0x10", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("inf", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("nan", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("1.", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit(".", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit(" 1", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("1 ", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("1 m", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("1M", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit("abc", &v), -EINVAL);
        ASSERT_EQ(parse_cpu_limit(NULL, &v), -EINVAL);
        /* ret_ is set only on success. */
        ASSERT_EQ(v, 77);
}

TEST(memory_limits)
{
        uint64_t v = 77;

        ASSERT_EQ(mem("4096"), 4096);
        ASSERT_EQ(mem("1"), 1);
        ASSERT_EQ(mem("100Ki"), 100 * 1024);
        ASSERT_EQ(mem("256Mi"), 256ULL << 20);
        ASSERT_EQ(mem("1Gi"), 1ULL << 30);
        ASSERT_EQ(mem("1.5Gi"), 3ULL << 29);
        ASSERT_EQ(mem("2Ti"), 2ULL << 40);
        ASSERT_EQ(mem("1Ei"), 1ULL << 60);
        ASSERT_EQ(mem("1k"), 1000);
        ASSERT_EQ(mem("1K"), 1000);
        ASSERT_EQ(mem("512M"), 512000000ULL);
        ASSERT_EQ(mem("1G"), 1000000000ULL);
        ASSERT_EQ(mem("0.5G"), 500000000ULL);
        ASSERT_EQ(mem("1.000000001G"), 1000000001ULL);
        ASSERT_EQ(mem("1T"), 1000000000000ULL);
        /* Rounded down to whole bytes. */
        ASSERT_EQ(mem("0.1Ki"), 102);

        ASSERT_EQ(parse_memory_limit("0", &v), -ERANGE);
        ASSERT_EQ(parse_memory_limit("0Mi", &v), -ERANGE);
        ASSERT_EQ(parse_memory_limit("0.0001Ki", &v), -ERANGE);
        ASSERT_EQ(parse_memory_limit("2Ei", &v), -ERANGE);
        ASSERT_EQ(parse_memory_limit("2E", &v), -ERANGE);
        ASSERT_EQ(parse_memory_limit("99999999999999999999999", &v), -ERANGE);
        ASSERT_EQ(parse_memory_limit("1.5", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("12Q", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("-1G", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("1 Gi", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("1gi", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("1GiB", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("0x10", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("Mi", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit("", &v), -EINVAL);
        ASSERT_EQ(parse_memory_limit(NULL, &v), -EINVAL);
        ASSERT_EQ(v, 77);
}

TEST_MAIN()
