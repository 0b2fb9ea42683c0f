/* SPDX-License-Identifier: MIT */
#pragma once

/* Runtimes: the names workflows give in spec.runtime (or per activity), each mapped to how a step
 * runs. Four names are always known and stand for themselves (local, systemd, apptainer,
 * singularity); the configuration (runtimes: in arkevent.yaml) adds names such as a site's
 * "sdumont" and maps them onto one of those types. */

#include "daemon/config.h"
#include "shared/macro.h"

typedef enum RuntimeType {
        RUNTIME_LOCAL,       /* the host; an existing image still becomes the root, as before */
        RUNTIME_SYSTEMD,     /* the image as RootDirectory= (a directory) or RootImage= (a file) */
        RUNTIME_APPTAINER,   /* apptainer exec IMAGE COMMAND */
        RUNTIME_SINGULARITY, /* singularity exec IMAGE COMMAND */
        _RUNTIME_TYPE_MAX,
        _RUNTIME_TYPE_INVALID = -EINVAL,
} RuntimeType;

typedef struct Runtime {
        const char *name;
        RuntimeType type;
        const char *binary; /* apptainer/singularity program (absolute path) */
} Runtime;

const char *runtime_type_to_string(RuntimeType t) _pure_;
RuntimeType runtime_type_from_string(const char *s) _pure_;

/* Makes the configuration's runtimes the ones in effect. c must outlive its use (the daemon's
 * configuration, which a reload replaces in place). NULL: built-in names only. */
void runtimes_use_config(const Config *c);

/* Resolves a runtime name; NULL or "" is local. -ENOENT for a name nobody mapped. */
int runtime_lookup(const char *name, Runtime *ret);

/* "local, systemd, apptainer, singularity, sdumont": for error messages. */
char *runtimes_known_names(void);

/* For apptainer/singularity: the program path to run, found on PATH when not configured.
 * -ENOENT (with *ret_tried set to what was looked for) when it does not exist. */
int runtime_find_binary(const Runtime *rt, char **ret, const char **ret_tried);

/* Finds "key:" as a mapping key (after indentation and an optional "- ") on a line in
 * [from, until) (1-based; until 0: to the end). Returns true with its line and column. */
bool text_find_key(const char *text, unsigned from, unsigned until, const char *key,
                   unsigned *ret_line, unsigned *ret_column);

/* Reports every flow or workflow of r that names a runtime nobody mapped as an error at
 * file:line:column, naming the known ones, and takes it out of r: a load error, like any other
 * invalid resource. Returns how many were taken out. */
typedef struct Registry Registry;
typedef struct Diagnostics Diagnostics;
int runtimes_check_registry(Registry *r, Diagnostics *diags);
