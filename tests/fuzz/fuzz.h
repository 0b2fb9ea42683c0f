/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(expr)                                                                         \
        do {                                                                                      \
                if (!(expr)) {                                                                    \
                        fprintf(stderr, "%s:%i: fuzz assertion failed: %s\n", __FILE__,           \
                                __LINE__, #expr);                                                 \
                        abort();                                                                  \
                }                                                                                 \
        } while (0)
