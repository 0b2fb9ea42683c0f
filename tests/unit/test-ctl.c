/* SPDX-License-Identifier: MIT */
/* The pieces of the bus API and arkeventctl that need no bus: names, object paths, run ids,
 * tables and times. */

#include "bus/bus-manager.h"
#include "ctl/ctl.h"
#include "tests.h"

TEST(parse_ref)
{
        _cleanup_free_ char *ns = NULL, *ns2 = NULL;
        const char *name;

        ASSERT_OK(bus_parse_ref("ai-team/pipeline-trigger", &ns, &name));
        ASSERT_STREQ(ns, "ai-team");
        ASSERT_STREQ(name, "pipeline-trigger");
        ASSERT_OK(bus_parse_ref("hello", &ns2, &name));
        ASSERT_STREQ(ns2, "default");
        ASSERT_STREQ(name, "hello");
        ASSERT_EQ(bus_parse_ref("", &ns, &name), -EINVAL);
        ASSERT_EQ(bus_parse_ref("/x", &ns, &name), -EINVAL);
        ASSERT_EQ(bus_parse_ref("x/", &ns, &name), -EINVAL);
        ASSERT_EQ(bus_parse_ref("a/b/c", &ns, &name), -EINVAL);
}

TEST(run_path)
{
        _cleanup_free_ char *p = NULL;
        uint64_t id;

        ASSERT_OK(bus_run_path(42, &p));
        ASSERT_STREQ(p, "/dev/arkonis/ArkEvent1/run/42");
        ASSERT_OK(ctl_parse_run_id(p, &id));
        ASSERT_EQ(id, 42);
        ASSERT_OK(ctl_parse_run_id("7", &id));
        ASSERT_EQ(id, 7);
        ASSERT_EQ(ctl_parse_run_id("0", &id), -EINVAL);
        ASSERT_EQ(ctl_parse_run_id("-1", &id), -EINVAL);
        ASSERT_EQ(ctl_parse_run_id("12x", &id), -EINVAL);
        ASSERT_EQ(ctl_parse_run_id("", &id), -EINVAL);
}

TEST(trigger_path)
{
        _cleanup_free_ char *p = NULL, *id = NULL;
        Trigger t = { .namespace = (char *) "ai-team", .name = (char *) "daily.report" };

        ASSERT_OK(bus_trigger_path(&t, &p));
        ASSERT_STREQ(p, "/dev/arkonis/ArkEvent1/trigger/ai_2dteam_2fdaily_2ereport");
        ASSERT_TRUE(sd_bus_path_decode(p, BUS_TRIGGER_PREFIX, &id) > 0);
        ASSERT_STREQ(id, "ai-team/daily.report");
}

TEST(table)
{
        _cleanup_(table_freep) Table *t = table_new("RUN", "FLOW", "STATE", NULL);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        ASSERT_TRUE(t && f);
        ASSERT_OK(table_add_row(t, "1", "default/diamond", "Succeeded"));
        ASSERT_OK(table_add_row(t, "12", "x", NULL));
        ASSERT_EQ(table_rows(t), 2);
        table_print(t, f);
        fclose(f);
        ASSERT_STREQ(buf, "RUN FLOW            STATE\n"
                          "1   default/diamond Succeeded\n"
                          "12  x               -\n");
        free(buf);
}

TEST(format_time)
{
        char buf[64];

        ASSERT_STREQ(ctl_format_time(buf, 0), "-");
        ASSERT_STREQ(ctl_format_time(buf, UINT64_C(1741521600) * 1000000), "2025-03-09 12:00:00 UTC");
        ASSERT_STREQ(ctl_format_duration(buf, 1234567), "1.234s");
        ASSERT_STREQ(ctl_format_duration(buf, 125 * UINT64_C(1000000)), "2min 5s");
        ASSERT_STREQ(ctl_format_duration(buf, 0), "-");
}

TEST_MAIN()
