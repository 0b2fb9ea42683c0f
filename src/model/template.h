/* SPDX-License-Identifier: MIT */
#pragma once

/* Templates: literal text with {{ .path.to.value }} references, expanded against a JSON
 * context. The roots are .pipeline (input), .trigger (name, namespace, firedAt, body, output) and
 * .steps (<name>.output, <name>.state). Templates are expanded in inputs:, env:, targets[].input,
 * output: and if:, never in run:. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "shared/macro.h"

/* Which roots make sense where a template is used. */
typedef enum TemplateRoots {
        TEMPLATE_PIPELINE = 1 << 0, /* .pipeline.input... */
        TEMPLATE_TRIGGER = 1 << 1,  /* .trigger.name, .namespace, .firedAt, .body..., .output */
        TEMPLATE_STEPS = 1 << 2,    /* .steps.<name>.output, .steps.<name>.state */
        TEMPLATE_ALL = TEMPLATE_PIPELINE | TEMPLATE_TRIGGER | TEMPLATE_STEPS,
} TemplateRoots;

/* Called for every .steps.<name> reference while validating: returns 0 if that step may be read
 * there, -ENOENT if there is no such step, -ENOLINK if it is not among the dependencies of the
 * step that reads it. */
typedef int (*TemplateStepCheck)(const char *step, void *userdata);

/* Checks the syntax and the references of every {{ }}. On error returns -EINVAL with a message
 * and the 0-based byte offset of the problem in tmpl. check_step may be NULL (any step name is
 * accepted then). */
int template_validate(const char *tmpl, TemplateRoots roots, TemplateStepCheck check_step,
                      void *userdata, char **ret_error, size_t *ret_offset);

/* True if s contains a "{{". */
bool template_has_expression(const char *s);

/* Expands tmpl against ctx (an object with "pipeline", "steps", "trigger"). A missing value is
 * the empty string, so is null; a non-string value is its compact JSON. Text that is not a valid
 * reference stays as written. */
int template_expand(const char *tmpl, json_object *ctx, char **ret);

/* How if: reads an expanded value: "", "false", "0", "no", "off", "null" (any case, blanks
 * around ignored) are false, anything else is true. */
bool template_truthy(const char *s);
