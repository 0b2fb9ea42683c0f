/* SPDX-License-Identifier: MIT */
#pragma once

/* Artifacts: the files activities leave in their run's workspace. After each activity ends the
 * workspace is scanned and new or changed regular files are recorded (path, size, sha256, the
 * activity that wrote them) in the store's artifacts table. Symbolic links are never followed
 * nor recorded, and downloads open files strictly beneath the workspace. */

#include <stdint.h>

#include "store/store.h"

/* Scans workspace, recording what is new or changed since the last scan as written by activity.
 * Returns the number of files recorded, or negative errno. */
int artifacts_scan(Store *s, int64_t run_id, const char *workspace, const char *activity);

/* Checks a relative artifact path as a client gives it: no empty, "." or ".." component, not
 * absolute. Returns 0 or -EINVAL. */
int artifact_path_check(const char *path);

/* Opens path (checked as above) read-only beneath workspace, never following a symbolic link
 * (openat2() with RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk one component
 * at a time where openat2() is missing or filtered, as under SystemCallFilter=).
 * Returns an fd of a regular file; -EINVAL for a bad path, -EXDEV or -ELOOP for an escape,
 * -ENOENT, or another negative errno. */
int artifact_open(const char *workspace, const char *path, int *ret_fd);

/* Hex SHA-256 of an open file, read from its start. */
int sha256_fd(int fd, char ret[static 65]);

/* Registers the engine listener that scans the workspace after each activity ends, and removes
 * the workspace of a workflow with storagePolicy.type "ephemeral" when its run ends. */
typedef struct Engine Engine;
int artifacts_watch(Engine *e);
