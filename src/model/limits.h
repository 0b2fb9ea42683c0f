/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

#include "shared/macro.h"

/* cpuLimit: 1, 0.5, "1", "500m" -> millicores (> 0). */
int parse_cpu_limit(const char *s, uint64_t *ret_millis);

/* memoryLimit: 256Mi, 1G, 512M, 1Gi, 100Ki, 1024 (bytes) -> bytes (> 0). */
int parse_memory_limit(const char *s, uint64_t *ret_bytes);
