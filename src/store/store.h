/* SPDX-License-Identifier: MIT */
#pragma once

/* The durable store: one SQLite database (WAL) under the state directory, the one place run
 * state lives. Writes made during one turn of the event loop share one transaction, committed
 * when the turn ends (group commit): durability stays cheap under load, and whoever must not
 * answer before the data is safe (an HTTP 202) registers a callback that runs after the commit. */

#include <json-c/json.h>
#include <sqlite3.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

#define STORE_SCHEMA_VERSION 4

typedef struct Store Store;

typedef void (*StoreCommitCallback)(Store *s, int error, void *userdata);

int store_open(sd_event *event, const char *path, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

sqlite3 *store_db(Store *s);

/* Makes sure a transaction is open; it is committed at the end of this event loop turn. */
int store_begin(Store *s);
/* Commits now (used at shutdown and by tests). */
int store_commit(Store *s);
/* Runs cb once everything written so far is committed and synced to disk (at once if nothing
 * is pending): for answers that promise the data is safe (an HTTP 202, a D-Bus reply). */
int store_on_commit(Store *s, StoreCommitCallback cb, void *userdata);
/* The same, for the daemon's own ordering (a unit started only after its attempt is recorded):
 * safe from a crash of the daemon, not synced for a power loss, which would take the unit too. */
int store_after_commit(Store *s, StoreCommitCallback cb, void *userdata);
/* Runs cb at the end of this turn inside the open transaction, just before it is committed:
 * what cb writes shares that commit. */
int store_before_commit(Store *s, StoreCommitCallback cb, void *userdata);
uint64_t store_n_commits(Store *s);

/* Prepared statements are cached by their SQL text. The returned statement is reset and its
 * bindings cleared; do not finalize it. */
int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret);

/* Executes one statement with bindings given as a format: i = int64, s = string (NULL allowed),
 * d = double; ignores result rows. Returns 0 or negative errno, and the last insert rowid. */
int store_exec(Store *s, int64_t *ret_rowid, const char *sql, const char *fmt, ...);

/* Binds like store_exec() and returns the prepared statement for stepping through rows. */
int store_query(Store *s, sqlite3_stmt **ret, const char *sql, const char *fmt, ...);

/* Column helpers that tolerate NULL. */
char *store_column_strdup(sqlite3_stmt *st, int col);
