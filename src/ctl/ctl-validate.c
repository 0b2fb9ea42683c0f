/* SPDX-License-Identifier: MIT */
#include "ctl.h"

int verb_validate(int argc, char *argv[])
{
        return CTL_EXIT_FAILURE;
}
