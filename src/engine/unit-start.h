/* SPDX-License-Identifier: MIT */
#pragma once

/* How an activity attempt becomes a transient service unit: the StartTransientUnit call with
 * every property, and how the unit's end is read back. */

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "engine/run.h"

/* The sandbox every step gets, on top of what its resource asks for. */
typedef enum StepSandbox {
        STEP_SANDBOX_NONE,     /* nothing added */
        STEP_SANDBOX_DEFAULT,  /* PrivateTmp=, NoNewPrivileges=, RestrictSUIDSGID= */
        STEP_SANDBOX_STRICT,   /* also ProtectKernel*=, ProtectControlGroups=, ProtectHome= */
        _STEP_SANDBOX_MAX,
        _STEP_SANDBOX_INVALID = -EINVAL,
} StepSandbox;

StepSandbox step_sandbox_from_string(const char *s) _pure_;

typedef struct UnitSpec {
        const char *unit;
        int64_t run_id;
        const char *ns;
        const char *flow;
        const Flow *flow_def;
        const Step *step;
        unsigned attempt;
        const char *workspace;
        const char *input_path;
        const char *output_path;  /* $ARKEVENT_OUTPUT */
        const char *capture_path; /* standard output copy */
        const char *result_path;  /* written by the wrapper or ExecStopPost= */
        const char *script_path;  /* the command as a /bin/sh file (step_needs_script()), or NULL */
        const char *step_binary;
        uint64_t output_max_bytes;
        json_object *template_ctx; /* for inputs: and env: */
        StepSandbox sandbox;
} UnitSpec;

/* systemd substitutes "${NAME}" in ExecStart= from the unit's environment (a payload would become
 * shell syntax), turns "$$" into "$" and drops backslashes, and systemd 252 mangles "$" when it
 * reads a transient unit back (daemon-reload, daemon-reexec). So a command line with "$" or "\\"
 * goes to /bin/sh as a file instead (spec->script_path, set only then). */
bool step_needs_script(const Step *step);
/* The text of that file: the run: script, or an exec line of the command, each argument quoted. */
int step_script_text(const Step *step, char **ret_text);

/* Builds the StartTransientUnit method call for spec. */
int unit_start_message(sd_bus *bus, const UnitSpec *spec, sd_bus_message **ret);
/* After unit_start_message() failed: why, in words, when the resource asked for something this
 * host cannot do (an unknown runtime, a missing image or apptainer); NULL otherwise. */
const char *unit_start_last_error(void);

/* Interprets $SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS of an ended unit. */
int unit_result_interpret(const char *result, const char *code, const char *status,
                          int *ret_exit_code, char **ret_result, ActivityState *ret_state,
                          char **ret_reason);

/* Creates (truncates) a file the step writes, owned by user (NULL: root). */
int prepare_output_file(const char *path, uid_t uid, gid_t gid);
int write_private_file(const char *path, const char *data, size_t size, uid_t uid, gid_t gid);

/* "build-id" -> "BUILD_ID": a valid environment variable name. */
char *env_name_from(const char *prefix, const char *name);

/* Describes the transient unit spec would start, as JSON: "Unit", then the properties of the
 * StartTransientUnit call in the order they are sent, in systemd's unit file terms where they
 * differ (ExecStart= as its argv, CPUQuota= as a percentage, RuntimeMaxSec=). Environment= and
 * LogExtraFields= are left out: they carry payload values, not the unit's shape. */
int unit_start_describe(sd_bus *bus, const UnitSpec *spec, json_object **ret);
