/* SPDX-License-Identifier: MIT */
#include "model/loader.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/strv.h"
#include "tests.h"

typedef struct Expect {
        const char *file; /* NULL: the first file given */
        unsigned line, column;
        const char *message; /* a substring of the message */
} Expect;

typedef struct Loaded {
        Diagnostics diags;
        ResourceDoc **docs;
        size_t n_docs;
        Registry *reg;
} Loaded;

static void loaded_done(Loaded *l)
{
        diag_done(&l->diags);
        resource_docs_free(l->docs, l->n_docs);
        registry_free(l->reg);
}

/* Parses files (NULL terminated) and builds their registry, as arkeventctl validate does. */
static void load_files(Loaded *l, const char *const *files, const Registry *previous)
{
        for (size_t i = 0; files[i]; i++) {
                ResourceDoc **docs = NULL;
                size_t n = 0;

                ASSERT_OK(resource_file_parse(files[i], &docs, &n, &l->diags));
                l->docs = realloc(l->docs, (l->n_docs + n + 1) * sizeof(ResourceDoc *));
                ASSERT_NOT_NULL(l->docs);
                for (size_t k = 0; k < n; k++)
                        l->docs[l->n_docs++] = docs[k];
                free(docs);
        }
        ASSERT_OK(registry_build(l->docs, l->n_docs, previous, &l->reg, &l->diags));
        diag_sort(&l->diags);
}

static void load_text(Loaded *l, const char *name, const char *text, const Registry *previous)
{
        ASSERT_OK(resource_text_parse(name, text, strlen(text), &l->docs, &l->n_docs, &l->diags));
        ASSERT_OK(registry_build(l->docs, l->n_docs, previous, &l->reg, &l->diags));
        diag_sort(&l->diags);
}

/* Exactly these problems, in this order: none missed, none extra. */
static void check_diags_exact(const Diagnostics *diags, const char *file, const Expect *want,
                              size_t n_want)
{
        bool ok = diags->n == n_want;

        for (size_t i = 0; ok && i < n_want; i++) {
                const Diagnostic *d = &diags->items[i];
                ok = streq(d->file, want[i].file ?: file) && d->line == want[i].line &&
                     d->column == want[i].column && strstr(d->message, want[i].message);
        }
        if (!ok) {
                fprintf(stderr, "  got:\n");
                diag_print(diags, stderr);
                fprintf(stderr, "  want:\n");
                for (size_t i = 0; i < n_want; i++)
                        fprintf(stderr, "    %s:%u:%u: ...%s...\n", want[i].file ?: file,
                                want[i].line, want[i].column, want[i].message);
        }
        ASSERT_TRUE(ok);
}

static void check_file(const char *path, const Expect *want, size_t n_want)
{
        _cleanup_(loaded_done) Loaded l = {};
        const char *files[] = { path, NULL };

        load_files(&l, files, NULL);
        check_diags_exact(&l.diags, path, want, n_want);
}

static size_t n_valid(const Loaded *l)
{
        size_t n = 0;
        for (size_t i = 0; i < l->n_docs; i++)
                if (l->docs[i]->flow || l->docs[i]->trigger)
                        n++;
        return n;
}

/* ---- one file per kind of problem -------------------------------------------------------- */

TEST(mixed_problems)
{
        static const Expect want[] = {
                { NULL, 6, 3, "unknown field 'stepz' in spec (did you mean 'steps'?)" },
                { NULL, 9, 17, "templates are not expanded in run:, pass values through inputs: "
                               "or env:" },
                { NULL, 10, 17, "invalid cpuLimit 'abc'" },
                { NULL, 11, 20, "invalid memoryLimit '12Q'" },
                { NULL, 13, 22, "dependsOn: unknown step 'c'" },
                { NULL, 16, 23, "unknown step 'nope'" },
                { NULL, 17, 13, "duplicate step name 'a' (first at line 8)" },
                { NULL, 23, 23, "timeoutSeconds: -1 is out of range" },
                { NULL, 25, 7, "unknown kind 'ArkEvnt' (did you mean 'ArkEvent'?)" },
                { NULL, 32, 33, "invalid cron expression: hour" },
                /* reported although the trigger is broken for other reasons too */
                { NULL, 33, 24, "trigger default/cr targets flow 'nothere', which does not exist" },
                { NULL, 33, 45, "unclosed '{{'" },
                { NULL, 34, 22, "concurrencyPolicy: unknown value 'Sometimes'" },
                { NULL, 43, 14, "templates are not expanded in run:" },
                { NULL, 45, 7, "run: and command: are exclusive" },
        };
        check_file("data/bad-mixed.yaml", want, ELEMENTSOF(want));
}

TEST(fields_types_and_required)
{
        static const Expect want[] = {
                { NULL, 1, 13, "unsupported apiVersion 'arkonis.dev/v2' (expected "
                               "arkonis.dev/v1alpha1)" },
                { NULL, 3, 1, "unknown field 'name' in an ArkFlow (did you mean "
                              "'metadata.name'?)" },
                { NULL, 6, 3, "unknown field 'namspace' in metadata (did you mean 'namespace'?)" },
                { NULL, 7, 30, "metadata.labels.nested: expected a string, got a mapping" },
                { NULL, 9, 19, "timeoutSeconds: expected an integer, got 'soon'" },
                { NULL, 10, 16, "concurrency: -1 is out of range (0..100000)" },
                { NULL, 11, 3, "unknown field 'activities' in spec (did you mean 'steps'?)" },
                { NULL, 12, 20, "options.event: expected a string, got a sequence" },
                { NULL, 13, 25, "storagePolicy.type: unknown value 'permanent' (expected one of: "
                                "default, ephemeral)" },
                { NULL, 14, 14, "mountPath: 'relative/dir' must be an absolute path" },
                { NULL, 16, 25, "webhooks[].url: 'ftp://example.com' must start with http://" },
                { NULL, 17, 7, "webhooks[].url is required" },
                { NULL, 21, 7, "unknown field 'dependson' in a step (did you mean 'dependsOn'?)" },
                { NULL, 22, 24, "retries.limit: expected an integer, got 'many'" },
                { NULL, 22, 30, "unknown field 'backoff' in retries" },
                { NULL, 23, 23, "timeoutSeconds: 0 is out of range" },
                { NULL, 24, 22, "env: invalid variable name 'BAD-NAME'" },
                { NULL, 24, 52, "ARKEVENT_* variables are set by arkevent itself" },
                { NULL, 25, 15, "inputs: expected a mapping, got a sequence" },
                { NULL, 26, 13, "step name: invalid name 'two words'" },
                { NULL, 27, 16, "command.entrypoint is required" },
                { NULL, 28, 7, "a step's name is required" },
                { NULL, 29, 29, "volume 'relative:/b': expected \"/host/path:/container/path\"" },
                { NULL, 29, 44, "volume '/a:/b:rx': the option after the second ':' must be ro "
                                "or rw" },
                { NULL, 31, 16, "command: expected a mapping (entrypoint, arguments), got ''" },
                { NULL, 32, 13, "user: invalid user name 'bad user'" },
                { NULL, 34, 1, "spec (with steps) is required" },
                { NULL, 38, 11, "metadata.name is required" },
                { NULL, 43, 1, "kind is required (ArkFlow or ArkEvent)" },
                { NULL, 46, 1, "cannot tell what this document is" },
                { NULL, 48, 1, "document: expected a mapping, got a sequence" },
                { NULL, 55, 29, "inputs: 'a-b' and 'A_b' would both be passed as INPUT_A_B" },
                { NULL, 56, 19, "env: 'A' is given twice" },
                { NULL, 57, 12, "run: must not be empty" },
        };
        check_file("data/bad-fields.yaml", want, ELEMENTSOF(want));
}

TEST(trigger_problems)
{
        static const Expect want[] = {
                { NULL, 5, 11, "spec.source.type: unknown value 'webhok' (did you mean "
                               "'webhook'?)" },
                { NULL, 6, 12, "spec.targets: at least one target is needed" },
                { NULL, 13, 5, "source.cron does not apply to a webhook trigger" },
                { NULL, 14, 31, "hmacSecretFile: 'relative/secret' must be an absolute path" },
                { NULL, 17, 7, "unknown field 'inputs' in a target (did you mean 'input'?)" },
                { NULL, 18, 14, "suspended: expected a boolean (true or false), got 'maybe'" },
                { NULL, 19, 22, "concurrencyPolicy: unknown value 'forbid' (did you mean "
                                "'Forbid'?)" },
                { NULL, 24, 11, "a cron trigger needs source.cron (5 fields, UTC) or "
                                "source.calendar" },
                { NULL, 33, 15, "source.cron and source.calendar are exclusive" },
                { NULL, 41, 53, "source.calendar: unexpected character ';'" },
                { NULL, 50, 28, "source.flow and source.pipelineOutput.name are two spellings" },
                { NULL, 50, 40, "onPhase: unknown value 'Sometimes' (expected one of: Succeeded, "
                                "Failed, Any)" },
                { NULL, 56, 3, "spec.targets (at least one pipeline) is required" },
                { NULL, 56, 11, "source.topic (for a topic trigger) is required" },
                { NULL, 57, 3, "unknown field 'target' in spec (did you mean 'targets'?)" },
                { NULL, 62, 49, "invalid cron expression: too many fields" },
        };
        check_file("data/bad-trigger.yaml", want, ELEMENTSOF(want));
}

TEST(template_problems)
{
        static const Expect want[] = {
                { NULL, 4, 22, "unknown step 'ghost'" },
                { NULL, 8, 17, "empty template expression '{{ }}'" },
                { NULL, 9, 22, "unclosed '{{' (missing '}}')" },
                { NULL, 10, 19, "unknown reference '.pipline' (did you mean '.pipeline'?)" },
                { NULL, 11, 28, "unknown reference '.trigger.bodyy'" },
                { NULL, 12, 23, ".pipeline only has .input" },
                { NULL, 13, 20, "expected '.steps.<name>.output' or '.steps.<name>.state'" },
                { NULL, 14, 19, "malformed template expression" },
                { NULL, 21, 48, "step 'd' is not among the dependencies of this step" },
                { NULL, 24, 26, "step 'c' is not among the dependencies of this step" },
                /* Inside a literal block, a folded block and a quoted string with escapes. */
                { NULL, 27, 17, "templates are not expanded in run:" },
                { NULL, 31, 14, "templates are not expanded in run:" },
                { NULL, 33, 22, "templates are not expanded in run:" },
                { NULL, 43, 50, "'.steps' is not available here (.trigger is)" },
                { NULL, 44, 19, "'.pipeline' is not available here (.trigger is)" },
        };
        check_file("data/bad-templates.yaml", want, ELEMENTSOF(want));
}

TEST(limit_problems)
{
        static const Expect want[] = {
                { NULL, 5, 40, "cpuLimit '0' is out of range" },
                { NULL, 5, 56, "memoryLimit '0' is out of range" },
                { NULL, 6, 40, "invalid cpuLimit '-1'" },
                { NULL, 6, 57, "invalid memoryLimit '-1Gi'" },
                { NULL, 7, 40, "invalid cpuLimit '1.5m'" },
                { NULL, 7, 61, "invalid memoryLimit '1.5'" },
                { NULL, 8, 40, "invalid cpuLimit '0.0001'" },
                { NULL, 8, 61, "invalid memoryLimit '12Q'" },
                { NULL, 9, 40, "cpuLimit: expected a string, got a sequence" },
                { NULL, 9, 58, "memoryLimit '2Ei' is out of range" },
                { NULL, 10, 77, "retries: 101 is out of range (0..100)" },
                { NULL, 11, 40, "invalid cpuLimit '1e3'" },
                { NULL, 11, 58, "invalid memoryLimit '0x10'" },
        };
        check_file("data/bad-limits.yaml", want, ELEMENTSOF(want));
}

TEST(dependency_cycles)
{
        static const Expect want[] = {
                { NULL, 9, 19, "dependency cycle: a -> c -> b -> a" },
                { NULL, 15, 18, "dependency cycle: self -> self" },
                { NULL, 18, 28, "dependsOn: 'a' is listed twice" },
                { NULL, 18, 31, "dependsOn: unknown step 'slef' (did you mean 'self'?)" },
        };
        check_file("data/bad-cycle.yaml", want, ELEMENTSOF(want));
}

TEST(flow_output_cycles_are_dropped)
{
        static const Expect want[] = {
                { NULL, 11, 42, "flow-output cycle: x -> y -> x; trigger default/t1" },
                { NULL, 15, 63, "flow-output cycle: y -> x -> y; trigger default/t2" },
                { NULL, 24, 37, "flow-output cycle: z -> z; trigger default/t3" },
        };
        _cleanup_(loaded_done) Loaded l = {};
        const char *files[] = { "data/bad-flow-output-cycle.yaml", NULL };

        load_files(&l, files, NULL);
        check_diags_exact(&l.diags, files[0], want, ELEMENTSOF(want));
        ASSERT_EQ(l.reg->n_flows, 3);
        ASSERT_EQ(l.reg->n_triggers, 1);
        ASSERT_STREQ(l.reg->triggers[0]->name, "t4");
}

TEST(syntax_error_keeps_what_came_before)
{
        static const Expect want[] = {
                { NULL, 7, 4, "YAML syntax error: did not find expected ',' or '}' (while "
                              "parsing a flow mapping at line 6, column 11)" },
        };
        _cleanup_(loaded_done) Loaded l = {};
        const char *files[] = { "data/bad-syntax.yaml", NULL };

        load_files(&l, files, NULL);
        check_diags_exact(&l.diags, files[0], want, ELEMENTSOF(want));
        /* The document before, and the placeholder for what cannot be read. */
        ASSERT_EQ(l.n_docs, 2);
        ASSERT_EQ(n_valid(&l), 1);
        ASSERT_TRUE(l.docs[1]->unreadable);
        ASSERT_EQ(l.docs[1]->loc.line, 7);
        ASSERT_NOT_NULL(registry_find_flow(l.reg, "default", "before"));
}

TEST(aliases_are_bounded)
{
        static const Expect want[] = {
                { NULL, 4, 10, "input: nested more than 64 levels deep (or an alias contains "
                               "itself)" },
                { NULL, 11, 5, "input: more than 100000 values" },
                { NULL, 30, 24, "input: key 'a' is given twice" },
                { NULL, 36, 10, "YAML syntax error: found undefined alias" },
        };
        _cleanup_(loaded_done) Loaded l = {};
        const char *files[] = { "data/bad-aliases.yaml", NULL };
        json_object *copy;
        Flow *f;

        load_files(&l, files, NULL);
        check_diags_exact(&l.diags, files[0], want, ELEMENTSOF(want));
        /* An alias that is only reused loads. */
        f = registry_find_flow(l.reg, "default", "shared");
        ASSERT_NOT_NULL(f);
        ASSERT_TRUE(json_object_object_get_ex(f->input_defaults, "copy", &copy));
        ASSERT_STREQ(json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN),
                     "{\"n\":1,\"list\":[\"a\",\"b\"]}");
        ASSERT_EQ(f->n_steps, 2);
        ASSERT_EQ(l.reg->n_flows, 1);
        ASSERT_EQ(l.n_docs, 5);
        ASSERT_EQ(n_valid(&l), 1);
}

TEST(encoding_error_position)
{
        static const Expect want[] = {
                { NULL, 4, 32, "not valid YAML text: invalid leading UTF-8 octet" },
        };
        check_file("data/bad-encoding.yaml", want, ELEMENTSOF(want));
}

TEST(duplicates_across_files)
{
        static const Expect want[] = {
                { "data/dup-a.yaml", 11, 42, "trigger team/hook targets flow 'missing', which "
                                             "does not exist in namespace team" },
                { "data/dup-b.yaml", 1, 7, "duplicate flow 'same' in namespace team (first "
                                           "defined at data/dup-a.yaml:2:18)" },
                { "data/dup-b.yaml", 8, 18, "duplicate trigger 'hook' in namespace team (first "
                                            "defined at data/dup-a.yaml:8:18)" },
        };
        _cleanup_(loaded_done) Loaded l = {};
        const char *files[] = { "data/dup-a.yaml", "data/dup-b.yaml", NULL };
        Flow *f;

        load_files(&l, files, NULL);
        check_diags_exact(&l.diags, NULL, want, ELEMENTSOF(want));
        ASSERT_EQ(l.reg->n_flows, 2);
        ASSERT_EQ(l.reg->n_triggers, 2);
        /* The first definition wins. */
        f = registry_find_flow(l.reg, "team", "same");
        ASSERT_EQ(f->kind, RESOURCE_FLOW);
        ASSERT_EQ(registry_find_trigger(l.reg, "team", "hook")->type, TRIGGER_WEBHOOK);
        /* A trigger and a flow may share a name. */
        ASSERT_EQ(registry_find_trigger(l.reg, "team", "same")->type, TRIGGER_TOPIC);
        ASSERT_STREQ(registry_find_trigger(l.reg, "team", "same")->topic, "news");
}

TEST(missing_target_flow_keeps_trigger)
{
        static const char text[] = "kind: ArkEvent\nmetadata: {name: t}\n"
                                   "spec:\n  source: {type: webhook}\n  targets:\n"
                                   "    - pipeline: ghost\n";
        static const Expect want[] = {
                { NULL, 6, 17, "trigger default/t targets flow 'ghost', which does not exist" },
        };
        _cleanup_(loaded_done) Loaded l = {};

        load_text(&l, "t.yaml", text, NULL);
        check_diags_exact(&l.diags, "t.yaml", want, ELEMENTSOF(want));
        /* Kept, so its status can say PipelineNotFound. */
        ASSERT_EQ(l.reg->n_triggers, 1);
        ASSERT_STREQ(l.reg->triggers[0]->targets[0].pipeline, "ghost");
}

/* ---- documents that load ----------------------------------------------------------------- */

TEST(examples_are_clean)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_(registry_freep) Registry *reg = NULL;
        json_object *v;
        Trigger *t;
        Flow *f;

        ASSERT_OK(registry_load_dir("../../conf/examples", NULL, &reg, &diags));
        diag_print(&diags, stderr);
        ASSERT_EQ(diags.n, 0);
        ASSERT_EQ(reg->n_flows, 7);
        ASSERT_EQ(reg->n_triggers, 4);

        /* The three triggers of the ArkEvent documentation, as written there. */
        t = registry_find_trigger(reg, "ai-team", "pipeline-trigger");
        ASSERT_NOT_NULL(t);
        ASSERT_EQ(t->type, TRIGGER_WEBHOOK);
        ASSERT_EQ(t->n_targets, 1);
        ASSERT_STREQ(t->targets[0].pipeline, "my-flow");
        ASSERT_NULL(t->targets[0].input);
        ASSERT_EQ(t->concurrency_policy, CONCURRENCY_ALLOW);
        ASSERT_TRUE(!t->suspended);

        t = registry_find_trigger(reg, "ai-team", "daily-report");
        ASSERT_NOT_NULL(t);
        ASSERT_EQ(t->type, TRIGGER_CRON);
        ASSERT_STREQ(t->cron, "0 8 * * *");
        ASSERT_EQ(strv_length(t->on_calendar), 1);
        ASSERT_STREQ(t->on_calendar[0], "*-*-* 08:00:00 UTC");
        ASSERT_STREQ(t->targets[0].pipeline, "report-flow");

        t = registry_find_trigger(reg, "ai-team", "post-research-trigger");
        ASSERT_NOT_NULL(t);
        ASSERT_EQ(t->type, TRIGGER_FLOW_OUTPUT);
        ASSERT_STREQ(t->flow, "research-flow");
        ASSERT_EQ(t->on_phase, ON_PHASE_SUCCEEDED);
        ASSERT_EQ(t->n_targets, 2);
        ASSERT_STREQ(t->targets[0].pipeline, "summarize-flow");
        ASSERT_STREQ(t->targets[1].pipeline, "publish-flow");
        ASSERT_STREQ(t->source_loc.file, "../../conf/examples/ai-team-triggers.yaml");

        for (size_t i = 0; i < reg->n_triggers; i++)
                for (size_t k = 0; k < reg->triggers[i]->n_targets; k++)
                        ASSERT_NOT_NULL(registry_find_flow(reg, reg->triggers[i]->namespace,
                                                           reg->triggers[i]->targets[k].pipeline));

        f = registry_find_flow(reg, "ai-team", "my-flow");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(f->kind, RESOURCE_FLOW);
        ASSERT_TRUE(json_object_object_get_ex(f->input_defaults, "topic", &v));
        ASSERT_STREQ(f->steps[0].inputs[0].key, "topic");
        ASSERT_STREQ(f->steps[0].inputs[0].value, "{{ .pipeline.input.topic }}");
        ASSERT_STREQ(f->output, "{{ .steps.answer.output }}");

        f = registry_find_flow(reg, "default", "diamond");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(f->n_steps, 4);
        ASSERT_EQ(f->steps[1].cpu_millis, 500);
        ASSERT_EQ(f->steps[1].memory_bytes, 128 * 1024 * 1024);
        ASSERT_EQ(f->steps[2].timeout_usec, 60 * 1000000ULL);
        ASSERT_EQ(f->steps[2].retries_limit, 2);
        ASSERT_EQ(f->steps[2].retries_backoff_usec, 5 * 1000000ULL);
        ASSERT_STREQ(f->steps[3].depends_on[0], "left");
        ASSERT_STREQ(f->steps[3].depends_on[1], "right");
        ASSERT_STREQ(f->steps[3].env[0].key, "L");
        ASSERT_NOT_NULL(f->raw_yaml);
        /* raw_yaml is this document alone. */
        ASSERT_TRUE(strstr(f->raw_yaml, "name: diamond") != NULL);
        ASSERT_TRUE(strstr(f->raw_yaml, "diamond-hook") == NULL);
        ASSERT_TRUE(!startswith(f->raw_yaml, "---"));

        f = registry_find_flow(reg, "default", "inference-demo");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(f->kind, RESOURCE_WORKFLOW);
        ASSERT_STREQ(f->runtime, "local");
        ASSERT_EQ(f->steps[0].cpu_millis, 1000);
        ASSERT_EQ(f->steps[1].cpu_millis, 500);
        ASSERT_EQ(f->steps[1].memory_bytes, 256 * 1024 * 1024);
        ASSERT_NULL(f->steps[1].run);
        ASSERT_STREQ(f->steps[1].command[0], "/bin/sh");
        ASSERT_STREQ(f->steps[1].command[1], "-c");
        ASSERT_EQ(strv_length(f->steps[1].command), 3);
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
        ASSERT_STREQ(f->image, "/scratch/.../.../p-inference-nemo/sifs/p-inference-nemo.sif");
        ASSERT_STREQ(f->storage_policy, "default");
        ASSERT_EQ(f->n_webhooks, 1);
        ASSERT_STREQ(f->webhooks[0].name, "inference-examples");
        ASSERT_STREQ(f->webhooks[0].url, "https://myhost.com/mypath/mywebhook");
        ASSERT_EQ(f->n_volumes, 2);
        ASSERT_STREQ(f->volumes[0].host, "/data-akoflow/sifs/");
        ASSERT_STREQ(f->volumes[0].target, "/scratch/.../.../p-inference-nemo/sifs");
        ASSERT_TRUE(!f->volumes[0].read_only);
        ASSERT_STREQ(f->mount_path, "/scratch/.../.../p-inference-nemo/akf-wine-sdumont");
        ASSERT_EQ(f->n_steps, 1);
        ASSERT_STREQ(f->steps[0].name, "inference-examples");
        ASSERT_EQ(f->steps[0].cpu_millis, 1000);
        ASSERT_STREQ(f->steps[0].run, "echo \"Running inference-examples\"\n"
                                      "conda run -n tutorial mlflow run . --env-manager=local\n");
        /* RawWorkflow: the document exactly as sent. */
        ASSERT_STREQ(f->raw_yaml, text);
        resource_docs_free(docs, n);
}

TEST(raw_yaml_is_each_document)
{
        /* Non-ASCII text before a document: libyaml counts characters, raw_yaml needs bytes. */
        static const char text[] = "# caf\xc3\xa9 \xe2\x82\xac\n"
                                   "kind: ArkFlow\nmetadata: {name: one}\n"
                                   "spec: {steps: [{name: s, run: 'echo \xc3\xa9t\xc3\xa9'}]}\n"
                                   "--- {kind: ArkFlow, metadata: {name: two}, spec: {steps: "
                                   "[{name: s, run: x}]}}\n"
                                   "---   # a comment\n"
                                   "name: three\nspec:\n"
                                   "  activities: [{name: a, run: '\xe2\x82\xac'}]\n";
        _cleanup_(loaded_done) Loaded l = {};
        Flow *f;

        load_text(&l, "raw.yaml", text, NULL);
        diag_print(&l.diags, stderr);
        ASSERT_EQ(l.diags.n, 0);
        ASSERT_EQ(l.n_docs, 3);
        ASSERT_STREQ(l.docs[0]->flow->raw_yaml,
                     "kind: ArkFlow\nmetadata: {name: one}\n"
                     "spec: {steps: [{name: s, run: 'echo \xc3\xa9t\xc3\xa9'}]}\n");
        ASSERT_STREQ(l.docs[1]->flow->raw_yaml, "{kind: ArkFlow, metadata: {name: two}, spec: "
                                                "{steps: [{name: s, run: x}]}}\n");
        ASSERT_STREQ(l.docs[2]->flow->raw_yaml,
                     "name: three\nspec:\n  activities: [{name: a, run: '\xe2\x82\xac'}]\n");

        /* Each raw text parses again on its own, to the same flow (a run keeps only that). */
        for (size_t i = 0; i < l.n_docs; i++) {
                _cleanup_(loaded_done) Loaded again = {};
                load_text(&again, "<run>", l.docs[i]->flow->raw_yaml, NULL);
                ASSERT_EQ(again.diags.n, 0);
                f = again.docs[0]->flow;
                ASSERT_STREQ(f->name, l.docs[i]->flow->name);
                ASSERT_STREQ(f->steps[0].run, l.docs[i]->flow->steps[0].run);
        }
}

TEST(byte_order_mark)
{
        static const char text[] = "\xef\xbb\xbfname: w\nspec:\n"
                                   "  activities: [{name: a, run: \"x {{ y }}\"}]\n"
                                   "---\n"
                                   "name: v\nspec: {activities: [{name: a, run: x}]}\n";
        static const Expect want[] = {
                { NULL, 3, 34, "templates are not expanded in run:" },
        };
        _cleanup_(loaded_done) Loaded l = {};

        load_text(&l, "bom.yaml", text, NULL);
        check_diags_exact(&l.diags, "bom.yaml", want, ELEMENTSOF(want));
        ASSERT_STREQ(registry_find_flow(l.reg, "default", "v")->raw_yaml,
                     "name: v\nspec: {activities: [{name: a, run: x}]}\n");
}

TEST(flow_fields)
{
        static const char text[] =
                "apiVersion: arkonis.dev/v1alpha1\n"
                "kind: ArkFlow\n"
                "metadata:\n"
                "  name: full\n"
                "  namespace: ns1\n"
                "  labels: {team: ai}\n"
                "  annotations: {note: \"x\"}\n"
                "spec:\n"
                "  input: {n: 3, s: text, f: 1.5, b: true, q: \"3\", z: ~, l: [1, two]}\n"
                "  timeoutSeconds: 600\n"
                "  concurrency: 0\n"
                "  options: {event: orders-topic}\n"
                "  webhooks:\n"
                "    - {name: done, url: \"https://example.com/h\", secretFile: /etc/secret}\n"
                "  volumes: [\"/srv/data:/data:ro\"]\n"
                "  steps:\n"
                "    - name: fetch\n"
                "      command: [/usr/bin/curl, -s, \"https://example.com\"]\n"
                "      retries: 3\n"
                "      image: /images/base.sif\n"
                "      user: nobody\n"
                "    - name: use\n"
                "      dependsOn: fetch\n"
                "      if: \"{{ .steps.fetch.output }}\"\n"
                "      inputs: {page: \"{{ .steps.fetch.output }}\", n: \"{{ .pipeline.input.n "
                "}}\"}\n"
                "      env: {MODE: fast, EMPTY: }\n"
                "      run: echo \"$INPUT_PAGE\"\n"
                "      timeoutSeconds: 30\n"
                "      retries: {limit: 2, backoffSeconds: 10}\n"
                "      cpuLimit: 2.5\n"
                "      memoryLimit: 1G\n";
        _cleanup_(loaded_done) Loaded l = {};
        Flow *f;
        Step *s;

        load_text(&l, "full.yaml", text, NULL);
        diag_print(&l.diags, stderr);
        ASSERT_EQ(l.diags.n, 0);
        f = registry_find_flow(l.reg, "ns1", "full");
        ASSERT_NOT_NULL(f);
        ASSERT_STREQ(json_object_to_json_string_ext(f->input_defaults, JSON_C_TO_STRING_PLAIN),
                     "{\"n\":3,\"s\":\"text\",\"f\":1.5,\"b\":true,\"q\":\"3\",\"z\":null,"
                     "\"l\":[1,\"two\"]}");
        ASSERT_EQ(f->timeout_usec, 600 * 1000000ULL);
        ASSERT_EQ(f->concurrency, 0);
        ASSERT_STREQ(f->event_topic, "orders-topic");
        ASSERT_STREQ(f->webhooks[0].secret_file, "/etc/secret");
        ASSERT_TRUE(f->volumes[0].read_only);
        ASSERT_STREQ(f->volumes[0].target, "/data");

        s = flow_find_step(f, "fetch");
        ASSERT_NOT_NULL(s);
        ASSERT_EQ(strv_length(s->command), 3);
        ASSERT_STREQ(s->command[2], "https://example.com");
        ASSERT_EQ(s->retries_limit, 3);
        ASSERT_EQ(s->retries_backoff_usec, 1000000);
        ASSERT_STREQ(s->image, "/images/base.sif");
        ASSERT_STREQ(s->user, "nobody");
        ASSERT_EQ(s->loc.line, 17);

        s = flow_find_step(f, "use");
        ASSERT_STREQ(s->depends_on[0], "fetch");
        ASSERT_STREQ(s->if_expr, "{{ .steps.fetch.output }}");
        ASSERT_EQ(s->n_inputs, 2);
        ASSERT_STREQ(s->inputs[1].value, "{{ .pipeline.input.n }}");
        ASSERT_EQ(s->n_env, 2);
        ASSERT_STREQ(s->env[1].value, "");
        ASSERT_EQ(s->timeout_usec, 30 * 1000000ULL);
        ASSERT_EQ(s->retries_limit, 2);
        ASSERT_EQ(s->retries_backoff_usec, 10 * 1000000ULL);
        ASSERT_EQ(s->cpu_millis, 2500);
        ASSERT_EQ(s->memory_bytes, 1000000000ULL);
}

TEST(trigger_fields)
{
        static const char text[] =
                "kind: ArkEvent\n"
                "metadata: {name: chain, namespace: n}\n"
                "spec:\n"
                "  source:\n"
                "    type: pipeline-output\n"
                "    pipelineOutput: {name: up, onPhase: Failed}\n"
                "  targets:\n"
                "    - pipeline: down\n"
                "      input: {why: \"{{ .trigger.output }}\", n: 2,\n"
                "              list: [\"{{ .trigger.name }}\"]}\n"
                "  concurrencyPolicy: Replace\n"
                "  suspended: true\n"
                "status:\n"
                "  anything: [goes, here]\n"
                "---\n"
                "kind: ArkEvent\n"
                "metadata: {name: cal, namespace: n}\n"
                "spec:\n"
                "  source: {type: cron, calendar: [\"Mon..Fri *-*-* 09:00:00 Europe/Berlin\", "
                "hourly]}\n"
                "  targets: [{pipeline: down}]\n"
                "---\n"
                "kind: ArkEvent\n"
                "metadata: {name: news, namespace: n}\n"
                "spec:\n"
                "  source: {type: topic, topic: orders.v1}\n"
                "  targets: [{pipeline: down}]\n"
                "---\n"
                "kind: ArkEvent\n"
                "metadata: {name: signed, namespace: n}\n"
                "spec:\n"
                "  source: {type: webhook, webhook: {hmacSecretFile: /etc/arkevent/hmac}}\n"
                "  targets: [{pipeline: down}]\n"
                "  concurrencyPolicy: Forbid\n"
                "---\n"
                "kind: ArkFlow\n"
                "metadata: {name: up, namespace: n}\n"
                "spec: {steps: [{name: s, run: \"true\"}]}\n"
                "---\n"
                "kind: ArkFlow\n"
                "metadata: {name: down, namespace: n}\n"
                "spec: {steps: [{name: s, run: \"true\"}]}\n";
        _cleanup_(loaded_done) Loaded l = {};
        Trigger *t;

        load_text(&l, "triggers.yaml", text, NULL);
        diag_print(&l.diags, stderr);
        ASSERT_EQ(l.diags.n, 0);

        t = registry_find_trigger(l.reg, "n", "chain");
        ASSERT_EQ(t->type, TRIGGER_FLOW_OUTPUT);
        ASSERT_STREQ(t->flow, "up");
        ASSERT_EQ(t->on_phase, ON_PHASE_FAILED);
        ASSERT_EQ(t->source_loc.line, 6);
        ASSERT_EQ(t->source_loc.column, 28);
        ASSERT_STREQ(json_object_to_json_string_ext(t->targets[0].input, JSON_C_TO_STRING_PLAIN),
                     "{\"why\":\"{{ .trigger.output }}\",\"n\":2,\"list\":[\"{{ .trigger.name "
                     "}}\"]}");
        ASSERT_EQ(t->concurrency_policy, CONCURRENCY_REPLACE);
        ASSERT_TRUE(t->suspended);

        t = registry_find_trigger(l.reg, "n", "cal");
        ASSERT_EQ(t->type, TRIGGER_CRON);
        ASSERT_NULL(t->cron);
        ASSERT_EQ(strv_length(t->on_calendar), 2);
        ASSERT_STREQ(t->on_calendar[0], "Mon..Fri *-*-* 09:00:00 Europe/Berlin");
        ASSERT_STREQ(t->on_calendar[1], "hourly");

        t = registry_find_trigger(l.reg, "n", "news");
        ASSERT_EQ(t->type, TRIGGER_TOPIC);
        ASSERT_STREQ(t->topic, "orders.v1");

        t = registry_find_trigger(l.reg, "n", "signed");
        ASSERT_EQ(t->type, TRIGGER_WEBHOOK);
        ASSERT_STREQ(t->hmac_secret_file, "/etc/arkevent/hmac");
        ASSERT_EQ(t->concurrency_policy, CONCURRENCY_FORBID);
}

/* ---- reloads: all or nothing per document ------------------------------------------------ */

TEST(broken_document_keeps_previous_version)
{
        static const char good[] = "kind: ArkFlow\nmetadata: {name: f}\n"
                                   "spec: {steps: [{name: s, run: 'echo one'}]}\n"
                                   "---\n"
                                   "kind: ArkFlow\nmetadata: {name: g}\n"
                                   "spec: {steps: [{name: s, run: 'echo g'}]}\n"
                                   "---\n"
                                   "kind: ArkEvent\nmetadata: {name: t}\n"
                                   "spec: {source: {type: webhook}, targets: [{pipeline: f}]}\n";
        static const char broken[] = "kind: ArkFlow\nmetadata: {name: f}\n"
                                     "spec: {steps: [{name: s, run: 'echo two', bogus: 1}]}\n"
                                     "---\n"
                                     "kind: ArkFlow\nmetadata: {name: g}\n"
                                     "spec: {steps: [{name: s, run: 'echo g2'}]}\n"
                                     "---\n"
                                     "kind: ArkEvent\nmetadata: {name: t}\n"
                                     "spec: {source: {type: webhok}, targets: [{pipeline: f}]}\n"
                                     "---\n"
                                     "kind: ArkFlow\nmetadata: {name: new}\n"
                                     "spec: {steps: [{name: s}]}\n";
        static const Expect want[] = {
                { NULL, 2, 18, "keeping the previous version of flow default/f in effect" },
                { NULL, 3, 43, "unknown field 'bogus' in a step" },
                { NULL, 10, 18, "keeping the previous version of trigger default/t in effect" },
                { NULL, 11, 23, "spec.source.type: unknown value 'webhok'" },
                { NULL, 15, 16, "step 's' needs run: or command:" },
        };
        _cleanup_(loaded_done) Loaded l1 = {}, l2 = {};

        load_text(&l1, "a.yaml", good, NULL);
        ASSERT_EQ(l1.diags.n, 0);

        load_text(&l2, "a.yaml", broken, l1.reg);
        check_diags_exact(&l2.diags, "a.yaml", want, ELEMENTSOF(want));
        ASSERT_EQ(l2.diags.n_errors, 3);
        ASSERT_NULL(l2.docs[0]->flow);
        ASSERT_STREQ(l2.docs[0]->name, "f");
        ASSERT_EQ(l2.docs[0]->n_errors, 1);
        /* f and t: the previous versions, shared with the old registry; g: the new one; the new
         * broken flow has nothing to fall back on. */
        ASSERT_EQ(l2.reg->n_flows, 2);
        ASSERT_TRUE(registry_find_flow(l2.reg, "default", "f") ==
                    registry_find_flow(l1.reg, "default", "f"));
        ASSERT_STREQ(registry_find_flow(l2.reg, "default", "g")->steps[0].run, "echo g2");
        ASSERT_NULL(registry_find_flow(l2.reg, "default", "new"));
        ASSERT_EQ(l2.reg->n_triggers, 1);
        ASSERT_EQ(registry_find_trigger(l2.reg, "default", "t")->type, TRIGGER_WEBHOOK);

        /* The old registry may go first: the new one holds its own references. */
        l1.reg = registry_free(l1.reg);
        ASSERT_STREQ(registry_find_flow(l2.reg, "default", "f")->steps[0].run, "echo one");
}

TEST(unreadable_identity_drops_previous_version)
{
        static const char good[] = "kind: ArkFlow\nmetadata: {name: f, namespace: x}\n"
                                   "spec: {steps: [{name: s, run: 'echo one'}]}\n";
        static const char broken[] = "kind: ArkFlow\nmetadata: {name: f, namespace: [x]}\n"
                                     "spec: {steps: [{name: s, run: 'echo two'}]}\n"
                                     "---\n"
                                     "kind: ArkFlow\nmetadata: {name: g}\n"
                                     "spec: {steps: [{name: s, run: 'echo g'}]}\n";
        _cleanup_(loaded_done) Loaded l1 = {}, l2 = {};

        load_text(&l1, "a.yaml", good, NULL);
        ASSERT_EQ(l1.diags.n, 0);
        load_text(&l2, "a.yaml", broken, l1.reg);
        ASSERT_EQ(l2.diags.n, 1);
        ASSERT_TRUE(strstr(l2.diags.items[0].message, "metadata.namespace: expected a string"));
        /* Not the default namespace either: the document has no identity. */
        ASSERT_NULL(l2.docs[0]->namespace);
        ASSERT_EQ(l2.reg->n_flows, 1);
        ASSERT_NOT_NULL(registry_find_flow(l2.reg, "default", "g"));
}

TEST(unreadable_rest_keeps_previous_versions)
{
        static const char good[] = "kind: ArkFlow\nmetadata: {name: one}\n"
                                   "spec: {steps: [{name: s, run: 'echo one'}]}\n"
                                   "---\n"
                                   "kind: ArkFlow\nmetadata: {name: two}\n"
                                   "spec: {steps: [{name: s, run: 'echo two'}]}\n"
                                   "---\n"
                                   "kind: ArkEvent\nmetadata: {name: hook}\n"
                                   "spec: {source: {type: webhook}, targets: [{pipeline: one}]}\n";
        /* The first document is edited, the second has a typo that hides the rest. */
        static const char typo[] = "kind: ArkFlow\nmetadata: {name: one}\n"
                                   "spec: {steps: [{name: s, run: 'echo ONE'}]}\n"
                                   "---\n"
                                   "kind: ArkFlow\nmetadata: {name: two}\n"
                                   "spec: {steps: [{name: s, run: 'echo two'}]\n"
                                   "---\n"
                                   "kind: ArkEvent\nmetadata: {name: hook}\n"
                                   "spec: {source: {type: webhook}, targets: [{pipeline: one}]}\n";
        static const Expect want[] = {
                { NULL, 8, 1, "YAML syntax error" },
                { NULL, 8, 1, "keeping the previous version of flow default/two in effect until "
                              "the file can be read again" },
                { NULL, 8, 1, "keeping the previous version of trigger default/hook in effect" },
        };
        _cleanup_(loaded_done) Loaded l1 = {}, l2 = {}, l3 = {}, l4 = {};
        const char *files[] = { "a.yaml", NULL };

        load_text(&l1, "a.yaml", good, NULL);
        ASSERT_EQ(l1.diags.n, 0);
        load_text(&l2, "a.yaml", typo, l1.reg);
        check_diags_exact(&l2.diags, "a.yaml", want, ELEMENTSOF(want));
        ASSERT_EQ(l2.reg->n_flows, 2);
        ASSERT_EQ(l2.reg->n_triggers, 1);
        ASSERT_STREQ(registry_find_flow(l2.reg, "default", "one")->steps[0].run, "echo ONE");
        ASSERT_TRUE(registry_find_flow(l2.reg, "default", "two") ==
                    registry_find_flow(l1.reg, "default", "two"));

        /* Without a previous registry there is nothing to keep. */
        load_text(&l3, "a.yaml", typo, NULL);
        ASSERT_EQ(l3.diags.n, 1);
        ASSERT_EQ(l3.reg->n_flows, 1);
        ASSERT_EQ(l3.reg->n_triggers, 0);

        /* A file that cannot be read at all (here: gone between listing and reading) keeps all
         * it defined; other files' resources are not its to keep. */
        load_files(&l4, files, l1.reg);
        ASSERT_EQ(l4.diags.n_errors, 1);
        ASSERT_EQ(l4.diags.n, 4);
        ASSERT_EQ(l4.reg->n_flows, 2);
        ASSERT_EQ(l4.reg->n_triggers, 1);
}

TEST(directory_parse)
{
        ResourceDoc **docs = NULL;
        size_t n = 0;
        _cleanup_(diag_done) Diagnostics diags = {};

        ASSERT_OK(resource_dir_parse("../../conf/examples", &docs, &n, &diags));
        ASSERT_EQ(n, 11);
        ASSERT_EQ(diags.n, 0);
        /* Sorted by file name. */
        ASSERT_TRUE(endswith(docs[0]->loc.file, "/ai-team-flows.yaml"));
        ASSERT_TRUE(endswith(docs[n - 1]->loc.file, "/diamond.yaml"));
        ASSERT_OK(resource_dir_parse("/nonexistent", &docs, &n, &diags));
        ASSERT_EQ(n, 11);
        ASSERT_EQ(diags.n, 0);
        resource_docs_free(docs, n);
}

TEST(empty_and_missing_inputs)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        ResourceDoc **docs = NULL;
        size_t n = 1;

        ASSERT_OK(resource_text_parse("e.yaml", "", 0, &docs, &n, &diags));
        ASSERT_EQ(n, 0);
        ASSERT_OK(resource_text_parse("e.yaml", "# only a comment\n---\n---\n", 25, &docs, &n,
                                      &diags));
        ASSERT_EQ(n, 0);
        ASSERT_EQ(diags.n, 0);
        ASSERT_OK(resource_file_parse("data/does-not-exist.yaml", &docs, &n, &diags));
        ASSERT_EQ(n, 1);
        ASSERT_TRUE(docs[0]->unreadable);
        ASSERT_NULL(docs[0]->name);
        ASSERT_EQ(diags.n, 1);
        ASSERT_TRUE(strstr(diags.items[0].message, "cannot read the file"));
        resource_docs_free(docs, n);
}

TEST_MAIN()
