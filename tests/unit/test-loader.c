/* SPDX-License-Identifier: MIT */
#include "tests.h"

TEST_MAIN()
