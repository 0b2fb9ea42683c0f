/* SPDX-License-Identifier: MIT */
#pragma once

/* Per-trigger bearer tokens: 32 random bytes, hex, in STATE/tokens/NAMESPACE/NAME (mode 0600),
 * created when a webhook trigger first loads, kept across restarts and reloads, removed when the
 * trigger goes away. */

#include "model/model.h"

/* Makes every webhook trigger of reg have a token and, when remove_stale, removes tokens of
 * triggers that are no longer there. (A load with broken documents passes false: a trigger that
 * is only broken for now must keep its token.) */
int trigger_tokens_sync(const char *state_dir, const Registry *reg, bool remove_stale);

/* Reads (rotate: replaces) the token of ns/name. -ENOENT if there is none. */
int trigger_token_get(const char *state_dir, const char *ns, const char *name, char **ret);
int trigger_token_rotate(const char *state_dir, const char *ns, const char *name, char **ret);
/* Forgets the tokens read so far (trigger_token_get() keeps them, checked by a stat()). */
void trigger_tokens_cache_clear(void);
