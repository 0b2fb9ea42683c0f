/* SPDX-License-Identifier: MIT */
#include "shared/time-util.h"
#include "tests.h"

TEST(parse_duration_forms)
{
        uint64_t u;
        ASSERT_OK(parse_duration("90s", &u));
        ASSERT_EQ(u, 90 * USEC_PER_SEC);
        ASSERT_OK(parse_duration("2m", &u));
        ASSERT_EQ(u, 120 * USEC_PER_SEC);
        ASSERT_OK(parse_duration("1m30s", &u));
        ASSERT_EQ(u, 90 * USEC_PER_SEC);
        ASSERT_OK(parse_duration("120", &u));
        ASSERT_EQ(u, 120 * USEC_PER_SEC);
        ASSERT_OK(parse_duration("1h", &u));
        ASSERT_EQ(u, 3600 * USEC_PER_SEC);
        ASSERT_OK(parse_duration("250ms", &u));
        ASSERT_EQ(u, 250 * USEC_PER_MSEC);
}

TEST(parse_duration_rejects)
{
        uint64_t u;
        ASSERT_EQ(parse_duration("", &u), -EINVAL);
        ASSERT_EQ(parse_duration("s", &u), -EINVAL);
        ASSERT_EQ(parse_duration("10x", &u), -EINVAL);
        ASSERT_EQ(parse_duration("-5s", &u), -EINVAL);
        ASSERT_EQ(parse_duration("1m30", &u), -EINVAL);
}

TEST(format_rfc3339)
{
        char buf[32];
        ASSERT_STREQ(format_rfc3339(buf, UINT64_C(1741521600) * USEC_PER_SEC, false),
                     "2025-03-09T12:00:00Z");
        ASSERT_STREQ(format_rfc3339(buf, UINT64_C(1741521600) * USEC_PER_SEC + 5000, true),
                     "2025-03-09T12:00:00.005Z");
}

TEST_MAIN()
