/* SPDX-License-Identifier: MIT */
#include "outbox/outbox.h"
#include "shared/json-util.h"
#include "shared/time-util.h"
#include "tests.h"

TEST(signature_rfc4231)
{
        _cleanup_free_ char *sig = NULL;
        const char *data = "what do ya want for nothing?";

        /* RFC 4231, test case 2. */
        ASSERT_OK(outbox_signature("Jefe", 4, data, strlen(data), &sig));
        ASSERT_STREQ(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(base64)
{
        const char *in[] = { "", "f", "fo", "foo", "foobar" };
        const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYmFy" };

        for (size_t i = 0; i < ELEMENTSOF(in); i++) {
                _cleanup_free_ char *s = NULL;
                ASSERT_OK(base64_encode(in[i], strlen(in[i]), &s));
                ASSERT_STREQ(s, out[i]);
        }
}

TEST(backoff_grows_caps_and_jitters)
{
        uint64_t s = USEC_PER_SEC;

        /* Half fixed, half jittered. */
        ASSERT_EQ(outbox_backoff_usec(s, 300 * s, 1, 0), s / 2);
        ASSERT_EQ(outbox_backoff_usec(s, 300 * s, 1, UINT32_MAX), s);
        ASSERT_EQ(outbox_backoff_usec(s, 300 * s, 2, 0), s);
        ASSERT_EQ(outbox_backoff_usec(s, 300 * s, 4, UINT32_MAX), 8 * s);
        /* Capped, however many attempts. */
        ASSERT_EQ(outbox_backoff_usec(s, 300 * s, 30, UINT32_MAX), 300 * s);
        ASSERT_EQ(outbox_backoff_usec(s, 300 * s, 100000, 0), 150 * s);
        for (uint32_t r = 0; r < 1000; r++) {
                uint64_t d = outbox_backoff_usec(s, 300 * s, 3, r * 4294967u);
                ASSERT_TRUE(d >= 2 * s && d <= 4 * s);
        }
}

TEST(status_codes)
{
        ASSERT_EQ(outbox_activity_status(ACTIVITY_SUCCEEDED), 1);
        ASSERT_EQ(outbox_activity_status(ACTIVITY_FAILED), 2);
        ASSERT_EQ(outbox_activity_status(ACTIVITY_CANCELLED), 3);
        ASSERT_EQ(outbox_activity_status(ACTIVITY_TIMED_OUT), 4);
        ASSERT_EQ(outbox_activity_status(ACTIVITY_SKIPPED), 5);
        ASSERT_EQ(outbox_activity_status(ACTIVITY_RUNNING), 0);
        ASSERT_EQ(outbox_run_status(RUN_SUCCEEDED), 1);
        ASSERT_EQ(outbox_run_status(RUN_FAILED), 2);
        ASSERT_EQ(outbox_run_status(RUN_CANCELLED), 3);
        ASSERT_EQ(outbox_run_status(RUN_TIMED_OUT), 4);
        ASSERT_EQ(outbox_run_status(RUN_RUNNING), 0);
}

static void assert_keys(json_object *o, const char *const *keys)
{
        size_t i = 0;
        json_object_object_foreach(o, k, v) {
                (void) v;
                ASSERT_TRUE(keys[i]);
                ASSERT_STREQ(k, keys[i]);
                i++;
        }
        ASSERT_TRUE(!keys[i]);
}

TEST(activity_payload)
{
        static const char *const top[] = { "type", "data", NULL };
        static const char *const keys[] = { "Id", "WorkflowId", "Namespace", "Name", "Image",
                                            "ResourceK8sBase64", "Status", "ProcId",
                                            "DependOnActivity", "CreatedAt", "StartedAt",
                                            "FinishedAt", NULL };
        Flow flow = { .image = (char *) "/scratch/x.sif" };
        Step step = { .name = (char *) "inference-examples" };
        Run run = { .id = 456, .ns = (char *) "default", .flow = &flow };
        Activity a = {
                .run = &run,
                .step = &step,
                .id = 123,
                .state = ACTIVITY_SUCCEEDED,
                .unit = (char *) "arkevent-456-0-1.service",
                .created_usec = UINT64_C(1741521600) * USEC_PER_SEC,
                .started_usec = UINT64_C(1741521900) * USEC_PER_SEC,
                .finished_usec = UINT64_C(1741522200) * USEC_PER_SEC + 999,
        };
        _cleanup_free_ char *text = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *d, *v;

        ASSERT_OK(outbox_activity_payload(&a, "{\"Unit\":\"u\"}", -1, &text));
        o = json_tokener_parse(text);
        ASSERT_TRUE(o);
        assert_keys(o, top);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(o, "type")), "ACTIVITY_COMPLETED");
        d = json_object_object_get(o, "data");
        assert_keys(d, keys);
        ASSERT_EQ(json_object_get_int64(json_object_object_get(d, "Id")), 123);
        ASSERT_TRUE(json_object_is_type(json_object_object_get(d, "WorkflowId"), json_type_int));
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "Image")), "/scratch/x.sif");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "ResourceK8sBase64")),
                     "eyJVbml0IjoidSJ9");
        ASSERT_EQ(json_object_get_int(json_object_object_get(d, "Status")), 1);
        ASSERT_TRUE(json_object_object_get_ex(d, "DependOnActivity", &v) && v == NULL);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "CreatedAt")),
                     "2025-03-09T12:00:00Z");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "FinishedAt")),
                     "2025-03-09T12:10:00Z");
        /* Paths are not escaped. */
        ASSERT_TRUE(strstr(text, "\"Image\": \"/scratch/x.sif\""));

        /* Never started: no unit, no start time; a dependency. */
        free(TAKE_PTR(text));
        json_object_put(TAKE_PTR(o));
        a.unit = NULL;
        a.started_usec = 0;
        a.state = ACTIVITY_SKIPPED;
        ASSERT_OK(outbox_activity_payload(&a, NULL, 122, &text));
        o = json_tokener_parse(text);
        d = json_object_object_get(o, "data");
        assert_keys(d, keys);
        ASSERT_TRUE(json_object_object_get_ex(d, "ProcId", &v) && v == NULL);
        ASSERT_TRUE(json_object_object_get_ex(d, "StartedAt", &v) && v == NULL);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "ResourceK8sBase64")), "");
        ASSERT_EQ(json_object_get_int64(json_object_object_get(d, "DependOnActivity")), 122);
        ASSERT_EQ(json_object_get_int(json_object_object_get(d, "Status")), 5);
}

TEST(workflow_payload)
{
        static const char *const keys[] = { "ID", "Namespace", "Runtime", "Name", "RawWorkflow",
                                            "Status", NULL };
        Flow flow = { .runtime = (char *) "sdumont", .raw_yaml = (char *) "name: x\n" };
        Run run = { .id = 456, .ns = (char *) "default", .flow_name = (char *) "p-inference-nemo",
                    .flow = &flow, .state = RUN_FAILED };
        _cleanup_free_ char *text = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *d;

        ASSERT_OK(outbox_workflow_payload(&run, "name: p-inference-nemo\n", &text));
        o = json_tokener_parse(text);
        ASSERT_TRUE(o);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(o, "type")), "WORKFLOW_DONE");
        d = json_object_object_get(o, "data");
        assert_keys(d, keys);
        ASSERT_EQ(json_object_get_int64(json_object_object_get(d, "ID")), 456);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "Runtime")), "sdumont");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "RawWorkflow")),
                     "bmFtZTogcC1pbmZlcmVuY2UtbmVtbwo=");
        ASSERT_EQ(json_object_get_int(json_object_object_get(d, "Status")), 2);

        /* Without a submitted YAML: the flow's document; without a runtime: local. */
        free(TAKE_PTR(text));
        json_object_put(TAKE_PTR(o));
        flow.runtime = NULL;
        ASSERT_OK(outbox_workflow_payload(&run, NULL, &text));
        o = json_tokener_parse(text);
        d = json_object_object_get(o, "data");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "Runtime")), "local");
        ASSERT_STREQ(json_object_get_string(json_object_object_get(d, "RawWorkflow")), "bmFtZTogeAo=");
}
TEST_MAIN()
