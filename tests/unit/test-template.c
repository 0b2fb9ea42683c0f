/* SPDX-License-Identifier: MIT */
#include "model/template.h"
#include "shared/json-util.h"
#include "tests.h"

/* Validates tmpl, expecting an error at offset whose message holds want (NULL: no error). */
static void check(const char *tmpl, TemplateRoots roots, TemplateStepCheck check_step,
                  size_t offset, const char *want)
{
        _cleanup_free_ char *e = NULL;
        size_t off = SIZE_MAX;
        int r;

        r = template_validate(tmpl, roots, check_step, NULL, &e, &off);
        if (!want) {
                if (r < 0)
                        fprintf(stderr, "  %s: %s\n", tmpl, e);
                ASSERT_OK(r);
                return;
        }
        if (r != -EINVAL || off != offset || !e || !strstr(e, want))
                fprintf(stderr, "  %s: r=%i at %zu: %s\n", tmpl, r, off, e ? e : "(null)");
        ASSERT_EQ(r, -EINVAL);
        ASSERT_EQ(off, offset);
        ASSERT_NOT_NULL(strstr(e, want));
}

/* Steps "a" and "b" exist; only "a" may be read. */
static int only_a(const char *step, void *userdata)
{
        if (streq(step, "a"))
                return 0;
        return streq(step, "b") ? -ENOLINK : -ENOENT;
}

TEST(validate_accepts)
{
        check("", TEMPLATE_ALL, NULL, 0, NULL);
        check("no templates, {single} braces, and a lone }}", TEMPLATE_ALL, NULL, 0, NULL);
        check("{{ .pipeline.input.x }}", TEMPLATE_ALL, NULL, 0, NULL);
        check("{{.pipeline.input}}", TEMPLATE_PIPELINE, NULL, 0, NULL);
        check("a {{ .trigger.body.topic.deep }} b {{ .trigger.firedAt }}", TEMPLATE_TRIGGER,
              NULL, 0, NULL);
        check("{{ .trigger }}{{ .trigger.name }}{{ .trigger.namespace }}{{ .trigger.output }}",
              TEMPLATE_TRIGGER, NULL, 0, NULL);
        check("{{ .steps.any-name_1.output }} {{ .steps.x.state }}", TEMPLATE_STEPS, NULL, 0,
              NULL);
        check("{{ .steps.a.output }}", TEMPLATE_ALL, only_a, 0, NULL);
}

TEST(validate_rejects)
{
        check("x {{ .pipeline.input.x", TEMPLATE_ALL, NULL, 2, "unclosed '{{'");
        check("{{ .a {{ .b }}", TEMPLATE_ALL, NULL, 6, "'{{' inside a template expression");
        check("ab{{ }}", TEMPLATE_ALL, NULL, 2, "empty template expression");
        check("{{}}", TEMPLATE_ALL, NULL, 0, "empty template expression");
        check("{{ pipeline.input }}", TEMPLATE_ALL, NULL, 3, "malformed template expression");
        check("{{ .pipeline..x }}", TEMPLATE_ALL, NULL, 13, "malformed template expression");
        check("{{ .pipeline.input.x | upper }}", TEMPLATE_ALL, NULL, 21, "malformed");
        check("{{ .a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q }}", TEMPLATE_ALL, NULL, 35, "malformed");
        check("{{ .pipline.input.x }}", TEMPLATE_ALL, NULL, 3,
              "unknown reference '.pipline' (did you mean '.pipeline'?)");
        check("{{ .env.HOME }}", TEMPLATE_ALL, NULL, 3,
              "unknown reference '.env' (expected .pipeline, .trigger or .steps)");
        check("{{ .pipeline.output }}", TEMPLATE_ALL, NULL, 3, ".pipeline only has .input");
        check("{{ .pipeline }}", TEMPLATE_ALL, NULL, 3, ".pipeline only has .input");
        check("{{ .trigger.bdy.x }}", TEMPLATE_ALL, NULL, 11, "did you mean 'body'?");
        check("{{ .steps.a }}", TEMPLATE_ALL, NULL, 3, "expected '.steps.<name>.output'");
        check("{{ .steps.a.output.x }}", TEMPLATE_ALL, NULL, 3, "expected '.steps.<name>.output'");
        check("{{ .steps.a.logs }}", TEMPLATE_ALL, NULL, 3, "expected '.steps.<name>.output'");
        check("ok {{ .steps.c.output }}", TEMPLATE_ALL, only_a, 13, "unknown step 'c'");
        check("{{ .steps.b.output }}", TEMPLATE_ALL, only_a, 10,
              "step 'b' is not among the dependencies of this step");
        check("{{ .steps.a.output }}", TEMPLATE_TRIGGER, NULL, 3,
              "'.steps' is not available here (.trigger is)");
        check("{{ .pipeline.input.x }}", TEMPLATE_TRIGGER, NULL, 3,
              "'.pipeline' is not available here (.trigger is)");
        check("{{ .trigger.name }}", TEMPLATE_PIPELINE | TEMPLATE_STEPS, NULL, 3,
              "'.trigger' is not available here (.pipeline and .steps are");
        /* The first problem is the one reported. */
        check("{{ .pipeline.input.x }} {{ .nope }} {{", TEMPLATE_ALL, NULL, 27, "'.nope'");
}

TEST(has_expression)
{
        ASSERT_TRUE(template_has_expression("a {{ b"));
        ASSERT_TRUE(!template_has_expression("a { { b }}"));
        ASSERT_TRUE(!template_has_expression(NULL));
}

TEST(expand)
{
        _cleanup_(json_object_putp) json_object *ctx = json_tokener_parse(
                "{\"pipeline\":{\"input\":{\"x\":\"a b\",\"n\":3,\"f\":1.5,\"t\":true,\"z\":null,"
                "\"o\":{\"k\":[1,\"/x\"]}}},"
                "\"steps\":{\"s1\":{\"output\":\"out1\",\"state\":\"Succeeded\"}},"
                "\"trigger\":{\"name\":\"hook\",\"body\":{\"topic\":\"$(reboot)\"}}}");
        static const struct {
                const char *tmpl, *want;
        } cases[] = {
                { "", "" },
                { "plain text", "plain text" },
                { "x={{ .pipeline.input.x }};n={{.pipeline.input.n}}", "x=a b;n=3" },
                { "{{ .pipeline.input.f }} {{ .pipeline.input.t }}", "1.5 true" },
                /* Objects and arrays as compact JSON; null and missing values are empty. */
                { "{{ .pipeline.input.o }}", "{\"k\":[1,\"/x\"]}" },
                { "[{{ .pipeline.input.z }}][{{ .trigger.body.missing }}][{{ .nope.x }}]",
                  "[][][]" },
                { "{{ .pipeline.input.x.deeper }}", "" },
                { "{{ .steps.s1.output }}/{{ .steps.s1.state }}", "out1/Succeeded" },
                { "{{ .trigger.name }}", "hook" },
                /* Values are data: nothing in them is read as a template or shell. */
                { "echo {{ .trigger.body.topic }}", "echo $(reboot)" },
                /* What is not a reference stays as written. */
                { "{{ not a path }} {{ .trigger.name", "{{ not a path }} {{ .trigger.name" },
                { "a }} b {{ .trigger.name }} {", "a }} b hook {" },
        };

        ASSERT_NOT_NULL(ctx);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *r = NULL;
                ASSERT_OK(template_expand(cases[i].tmpl, ctx, &r));
                ASSERT_STREQ(r, cases[i].want);
        }
        {
                _cleanup_free_ char *r = NULL;
                ASSERT_OK(template_expand("{{ .pipeline.input.x }}", NULL, &r));
                ASSERT_STREQ(r, "");
        }
        {
                _cleanup_free_ char *r = NULL;
                ASSERT_OK(template_expand(NULL, ctx, &r));
                ASSERT_STREQ(r, "");
        }
}

TEST(truthy)
{
        static const char *const falsy[] = { "", "  ", "false", " FALSE\n", "0", "no", "No",
                                             "off", "null" };
        static const char *const truthy[] = { "true", "1", "yes", "x", "00", "0.0", "[]",
                                              "false-ish" };

        ASSERT_TRUE(!template_truthy(NULL));
        for (size_t i = 0; i < ELEMENTSOF(falsy); i++)
                ASSERT_TRUE(!template_truthy(falsy[i]));
        for (size_t i = 0; i < ELEMENTSOF(truthy); i++)
                ASSERT_TRUE(template_truthy(truthy[i]));
}

TEST_MAIN()
