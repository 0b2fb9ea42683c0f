/* SPDX-License-Identifier: MIT */
#pragma once

#include "macro.h"

/* 32 random bytes as 64 hex characters. */
int token_generate(char **ret);

/* Reads the token in path, or creates it (mode 0600) if missing. */
int token_load_or_create(const char *path, char **ret);

/* Compares in constant time (over SHA-256 digests, so lengths do not leak either). */
bool token_equal(const char *a, const char *b);
