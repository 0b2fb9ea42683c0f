/* SPDX-License-Identifier: MIT */
#pragma once

/* Resource limits as Kubernetes writes them, which is how ArkFlow and AkoFlow files write them
 * too. Both return -EINVAL for something that is not a limit, -ERANGE for zero or too much. */

#include <stdint.h>

#include "shared/macro.h"

/* The largest accepted: a million cores, an exbibyte. */
#define CPU_LIMIT_MILLIS_MAX (UINT64_C(1000000) * 1000)
#define MEMORY_LIMIT_BYTES_MAX (UINT64_C(1) << 60)

/* cpuLimit: cores ("1", "0.5", "2.25") or millicores ("500m") -> millicores. Finer than a
 * millicore is refused rather than rounded. */
int parse_cpu_limit(const char *s, uint64_t *ret_millis);

/* memoryLimit: bytes ("1048576"), or a number (fractions allowed) with a binary suffix (Ki, Mi,
 * Gi, Ti, Pi, Ei) or a decimal one (k or K, M, G, T, P, E) -> bytes, rounded down. */
int parse_memory_limit(const char *s, uint64_t *ret_bytes);
