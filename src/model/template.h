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

/* Called for every .steps.<name> reference while validating; returns false to reject it. */
typedef bool (*TemplateStepCheck)(const char *step, void *userdata);

/* Checks the syntax and the roots of every reference. On error returns -EINVAL with a message and
 * the 0-based offset of the problem in tmpl. allow_steps / allow_trigger say which roots make
 * sense where the template is used; check_step (may be NULL) vets step names. */
int template_validate(const char *tmpl, bool allow_steps, bool allow_trigger,
                      TemplateStepCheck check_step, void *userdata, char **ret_error,
                      size_t *ret_offset);

/* True if s contains a "{{". */
bool template_has_expression(const char *s);

/* Expands tmpl against ctx (an object with "pipeline", "steps", "trigger"). A missing value is
 * the empty string; a non-string value is its compact JSON. */
int template_expand(const char *tmpl, json_object *ctx, char **ret);

/* How if: reads an expanded value: "", "false", "0", "no", "null" (any case) are false. */
bool template_truthy(const char *s);
