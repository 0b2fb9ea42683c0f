/* SPDX-License-Identifier: MIT */
#include <dirent.h>

#include "model/limits.h"
#include "model/loader.h"
#include "model/template.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "tests.h"

typedef struct Expect {
        unsigned line, column;
        const char *message;
} Expect;

static void check_diags(const char *path, const Expect *want, size_t n_want)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_(registry_freep) Registry *reg = NULL;
        ResourceDoc **docs = NULL;
        size_t n = 0;

        ASSERT_OK(resource_file_parse(path, &docs, &n, &diags));
        ASSERT_OK(registry_build(docs, n, NULL, &reg, &diags));
        for (size_t i = 0; i < n; i++)
                resource_doc_free(docs[i]);
        free(docs);
        diag_sort(&diags);

        bool ok = diags.n == n_want;
        for (size_t i = 0; ok && i < n_want; i++)
                ok = diags.items[i].line == want[i].line &&
                     diags.items[i].column == want[i].column &&
                     strstr(diags.items[i].message, want[i].message);
        if (!ok) {
                fprintf(stderr, "  got:\n");
                diag_print(&diags, stderr);
                fprintf(stderr, "  want:\n");
                for (size_t i = 0; i < n_want; i++)
                        fprintf(stderr, "    %u:%u: %s\n", want[i].line, want[i].column,
                                want[i].message);
        }
        ASSERT_TRUE(ok);
}

TEST(every_problem_with_its_position)
{
        static const Expect want[] = {
                { 6, 3, "unknown field 'stepz' in spec (did you mean 'steps'?)" },
                { 9, 17, "templates are not expanded in run:" },
                { 10, 17, "invalid cpuLimit 'abc'" },
                { 11, 20, "invalid memoryLimit '12Q'" },
                { 13, 22, "unknown step 'c'" },
                { 16, 15, "step 'nope' is not a dependency" },
                { 17, 13, "duplicate step name 'a'" },
                { 23, 23, "timeoutSeconds: -1 is out of range" },
                { 25, 7, "unknown kind 'ArkEvnt' (did you mean 'ArkEvent'?)" },
                { 32, 33, "hour: 25 is out of range" },
                { 33, 45, "unclosed '{{'" },
                { 34, 22, "concurrencyPolicy must be Allow, Forbid or Replace" },
                { 43, 14, "templates are not expanded in run:" },
                { 45, 7, "run: and command: are exclusive" },
        };
        check_diags("data/bad-mixed.yaml", want, ELEMENTSOF(want));
}

TEST(dependency_cycle)
{
        static const Expect want[] = { { 9, 19, "dependency cycle: a -> c -> b -> a" } };
        check_diags("data/bad-cycle.yaml", want, ELEMENTSOF(want));
}

TEST(flow_output_cycle)
{
        static const Expect want[] = {
                { 11, 42, "flow-output cycle: flow x fires y" },
                { 15, 63, "flow-output cycle: flow y fires x" },
        };
        check_diags("data/bad-flow-output-cycle.yaml", want, ELEMENTSOF(want));
}

TEST(yaml_syntax_error)
{
        static const Expect want[] = { { 3, 4, "YAML syntax error" } };
        check_diags("data/bad-syntax.yaml", want, ELEMENTSOF(want));
}

TEST(examples_are_clean)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_(registry_freep) Registry *reg = NULL;
        Trigger *t;
        Flow *f;

        ASSERT_OK(registry_load_dir("../../conf/examples", NULL, &reg, &diags));
        diag_print(&diags, stderr);
        ASSERT_EQ(diags.n, 0);
        ASSERT_TRUE(reg->n_flows >= 6);

        t = registry_find_trigger(reg, "ai-team", "daily-report");
        ASSERT_NOT_NULL(t);
        ASSERT_EQ(t->type, TRIGGER_CRON);
        ASSERT_STREQ(t->on_calendar[0], "*-*-* 08:00:00 UTC");
        t = registry_find_trigger(reg, "ai-team", "post-research-trigger");
        ASSERT_NOT_NULL(t);
        ASSERT_EQ(t->type, TRIGGER_FLOW_OUTPUT);
        ASSERT_STREQ(t->flow, "research-flow");
        ASSERT_EQ(t->n_targets, 2);
        ASSERT_STREQ(t->targets[1].pipeline, "publish-flow");

        f = registry_find_flow(reg, "default", "diamond");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(f->n_steps, 4);
        ASSERT_EQ(f->steps[1].cpu_millis, 500);
        ASSERT_EQ(f->steps[1].memory_bytes, 128 * 1024 * 1024);
        ASSERT_EQ(f->steps[2].timeout_usec, 60 * 1000000ULL);
        ASSERT_STREQ(f->steps[3].depends_on[1], "right");
        ASSERT_NOT_NULL(f->raw_yaml);
        ASSERT_TRUE(strstr(f->raw_yaml, "name: diamond") != NULL);
        ASSERT_TRUE(strstr(f->raw_yaml, "diamond-hook") == NULL);
}

TEST(seed_workflow_as_written)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_free_ char *text = NULL;
        ResourceDoc **docs = NULL;
        size_t n = 0, len;
        Flow *f;

        ASSERT_OK(read_file_capped("data/seed-workflow.yaml", 1 << 20, &text, &len));
        ASSERT_OK(resource_text_parse("<workflow>", text, len, &docs, &n, &diags));
        diag_print(&diags, stderr);
        ASSERT_EQ(diags.n, 0);
        ASSERT_EQ(n, 1);
        f = docs[0]->flow;
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(f->kind, RESOURCE_WORKFLOW);
        ASSERT_STREQ(f->name, "p-inference-nemo");
        ASSERT_STREQ(f->namespace, "default");
        ASSERT_STREQ(f->runtime, "sdumont");
        ASSERT_STREQ(f->storage_policy, "default");
        ASSERT_EQ(f->n_webhooks, 1);
        ASSERT_STREQ(f->webhooks[0].url, "https://myhost.com/mypath/mywebhook");
        ASSERT_EQ(f->n_volumes, 2);
        ASSERT_STREQ(f->volumes[0].host, "/data-akoflow/sifs/");
        ASSERT_EQ(f->steps[0].cpu_millis, 1000);
        ASSERT_TRUE(strstr(f->steps[0].run, "conda run") != NULL);
        ASSERT_STREQ(f->raw_yaml, text);
        resource_doc_free(docs[0]);
        free(docs);
}

TEST(broken_document_keeps_previous_version)
{
        static const char good[] = "kind: ArkFlow\nmetadata: {name: f}\n"
                                   "spec: {steps: [{name: s, run: 'echo one'}]}\n";
        static const char broken[] = "kind: ArkFlow\nmetadata: {name: f}\n"
                                     "spec: {steps: [{name: s, run: 'echo two', bogus: 1}]}\n";
        _cleanup_(diag_done) Diagnostics d1 = {}, d2 = {};
        _cleanup_(registry_freep) Registry *r1 = NULL, *r2 = NULL;
        ResourceDoc **docs = NULL;
        size_t n = 0;

        ASSERT_OK(resource_text_parse("a.yaml", good, strlen(good), &docs, &n, &d1));
        ASSERT_OK(registry_build(docs, n, NULL, &r1, &d1));
        resource_doc_free(docs[0]);
        free(docs);
        ASSERT_EQ(d1.n, 0);

        ASSERT_OK(resource_text_parse("a.yaml", broken, strlen(broken), &docs, &n, &d2));
        ASSERT_EQ(n, 1);
        ASSERT_NULL(docs[0]->flow);
        ASSERT_STREQ(docs[0]->name, "f");
        ASSERT_OK(registry_build(docs, n, r1, &r2, &d2));
        resource_doc_free(docs[0]);
        free(docs);
        ASSERT_EQ(r2->n_flows, 1);
        ASSERT_STREQ(r2->flows[0]->steps[0].run, "echo one");
        ASSERT_EQ(d2.n_errors, 1);
        ASSERT_EQ(d2.n, 2); /* the error and the "keeping the previous version" warning */
}

TEST(missing_target_flow)
{
        static const char text[] = "kind: ArkEvent\nmetadata: {name: t}\n"
                                   "spec:\n  source: {type: webhook}\n  targets:\n"
                                   "    - pipeline: ghost\n";
        _cleanup_(diag_done) Diagnostics d = {};
        _cleanup_(registry_freep) Registry *r = NULL;
        ResourceDoc **docs = NULL;
        size_t n = 0;

        ASSERT_OK(resource_text_parse("t.yaml", text, strlen(text), &docs, &n, &d));
        ASSERT_OK(registry_build(docs, n, NULL, &r, &d));
        resource_doc_free(docs[0]);
        free(docs);
        ASSERT_EQ(d.n, 1);
        ASSERT_EQ(d.items[0].line, 6);
        ASSERT_EQ(d.items[0].column, 17);
        ASSERT_EQ(r->n_triggers, 1); /* kept, so its status can say PipelineNotFound */
}

TEST(limits)
{
        uint64_t v;
        ASSERT_OK(parse_cpu_limit("1", &v));
        ASSERT_EQ(v, 1000);
        ASSERT_OK(parse_cpu_limit("0.5", &v));
        ASSERT_EQ(v, 500);
        ASSERT_OK(parse_cpu_limit("500m", &v));
        ASSERT_EQ(v, 500);
        ASSERT_OK(parse_cpu_limit("2.25", &v));
        ASSERT_EQ(v, 2250);
        ASSERT_TRUE(parse_cpu_limit("0", &v) < 0);
        ASSERT_TRUE(parse_cpu_limit("-1", &v) < 0);
        ASSERT_TRUE(parse_cpu_limit("1.5m", &v) < 0);
        ASSERT_TRUE(parse_cpu_limit("abc", &v) < 0);
        ASSERT_OK(parse_memory_limit("256Mi", &v));
        ASSERT_EQ(v, 256ULL << 20);
        ASSERT_OK(parse_memory_limit("1G", &v));
        ASSERT_EQ(v, 1000000000ULL);
        ASSERT_OK(parse_memory_limit("512M", &v));
        ASSERT_EQ(v, 512000000ULL);
        ASSERT_OK(parse_memory_limit("1Gi", &v));
        ASSERT_EQ(v, 1ULL << 30);
        ASSERT_OK(parse_memory_limit("4096", &v));
        ASSERT_EQ(v, 4096);
        ASSERT_TRUE(parse_memory_limit("0Mi", &v) < 0);
        ASSERT_TRUE(parse_memory_limit("12Q", &v) < 0);
        ASSERT_TRUE(parse_memory_limit("-1G", &v) < 0);
}

TEST(templates)
{
        _cleanup_(json_object_putp) json_object *ctx = json_tokener_parse(
                "{\"pipeline\":{\"input\":{\"x\":\"a b\",\"n\":3,\"o\":{\"k\":true}}},"
                "\"steps\":{\"s1\":{\"output\":\"out1\"}},\"trigger\":{\"body\":{}}}");
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL, *e = NULL;
        size_t off;

        ASSERT_OK(template_expand("x={{ .pipeline.input.x }};n={{.pipeline.input.n}}", ctx, &r1));
        ASSERT_STREQ(r1, "x=a b;n=3");
        ASSERT_OK(template_expand("{{ .pipeline.input.o }}|{{ .trigger.body.missing }}|"
                                  "{{ .steps.s1.output }}",
                                  ctx, &r2));
        ASSERT_STREQ(r2, "{\"k\":true}||out1");
        ASSERT_OK(template_expand("$(rm -rf /) `x` {{ .pipeline.input.x }}", ctx, &r3));
        ASSERT_STREQ(r3, "$(rm -rf /) `x` a b");

        ASSERT_EQ(template_validate("a {{ .pipeline.input.x", true, true, NULL, NULL, &e, &off),
                  -EINVAL);
        ASSERT_EQ(off, 2);
        free(TAKE_PTR(e));
        ASSERT_EQ(template_validate("{{ }}", true, true, NULL, NULL, &e, &off), -EINVAL);
        ASSERT_TRUE(strstr(e, "empty"));
        free(TAKE_PTR(e));
        ASSERT_EQ(template_validate("{{ .nope }}", true, true, NULL, NULL, &e, &off), -EINVAL);
        free(TAKE_PTR(e));
        ASSERT_EQ(template_validate("{{ .steps.a.output }}", false, true, NULL, NULL, &e, &off),
                  -EINVAL);
        free(TAKE_PTR(e));
        ASSERT_OK(template_validate("{{ .trigger.body.topic }} x", false, true, NULL, NULL, &e,
                                    &off));
        ASSERT_TRUE(!template_truthy(""));
        ASSERT_TRUE(!template_truthy(" false "));
        ASSERT_TRUE(!template_truthy("0"));
        ASSERT_TRUE(template_truthy("yes"));
}

TEST_MAIN()
