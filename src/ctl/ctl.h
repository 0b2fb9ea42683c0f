/* SPDX-License-Identifier: MIT */
#pragma once

/* arkeventctl verbs. Each returns an exit status: 0 success, 1 failure of what was asked (for
 * validate: problems were found), 2 bad usage, 3 daemon not reachable. */

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILURE 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_UNREACHABLE 3

int verb_validate(int argc, char *argv[]);
int verb_reload(int argc, char *argv[]);
int verb_api_token(int argc, char *argv[]);
int verb_token(int argc, char *argv[]);
int verb_start(int argc, char *argv[]);
int verb_show(int argc, char *argv[]);
int verb_cancel(int argc, char *argv[]);
