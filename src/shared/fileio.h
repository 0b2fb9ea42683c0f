/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/types.h>

#include "macro.h"

/* Writes all n bytes of data to fd, retrying on EINTR and short writes. */
int loop_write(int fd, const void *data, size_t n);

/* Reads at most max bytes of path into a NUL-terminated buffer. */
int read_file_capped(const char *path, size_t max, char **ret, size_t *ret_size);

/* Writes text to path through a temporary file and rename(), fsync'ed. */
int write_file_atomic(const char *path, const char *text, mode_t mode);

/* Creates path and its missing parents. Existing directories are fine. */
int mkdir_p(const char *path, mode_t mode);

/* Removes a directory tree (does not follow symlinks). */
int rm_rf(const char *path);
