/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "shared/log.h"
#include "store.h"

typedef struct CachedStmt {
        char *sql;
        sqlite3_stmt *stmt;
} CachedStmt;

typedef struct PendingCallback {
        StoreCommitCallback cb;
        void *userdata;
} PendingCallback;

struct Store {
        sqlite3 *db;
        sd_event *event;
        sd_event_source *commit_source;
        bool in_transaction;
        CachedStmt *stmts;
        size_t n_stmts;
        PendingCallback *callbacks;
        size_t n_callbacks, n_callbacks_allocated;
        PendingCallback *before; /* run inside the open transaction, just before COMMIT */
        size_t n_before, n_before_allocated;
        bool durable; /* this transaction must survive a power loss once committed */
        char *wal_path;
        int wal_fd; /* our own descriptor of the write-ahead log, to sync it */
        uint64_t n_commits;
};

/* Migrations, in order; migration i takes the schema from version i to i + 1. */
static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE runs ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT,"
        "  namespace TEXT NOT NULL,"
        "  flow TEXT NOT NULL,"
        "  kind TEXT NOT NULL DEFAULT 'ArkFlow',"
        "  state TEXT NOT NULL,"
        "  input TEXT,"
        "  output TEXT,"
        "  error TEXT,"
        "  trigger TEXT,"
        "  flow_yaml TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  started_usec INTEGER,"
        "  finished_usec INTEGER"
        ");"
        "CREATE INDEX runs_flow ON runs(namespace, flow, id);"
        "CREATE INDEX runs_state ON runs(state, id);"
        "CREATE TABLE activities ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
        "  step_index INTEGER NOT NULL,"
        "  name TEXT NOT NULL,"
        "  state TEXT NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  exit_code INTEGER,"
        "  result TEXT,"
        "  unit TEXT,"
        "  invocation_id TEXT,"
        "  output TEXT,"
        "  reason TEXT,"
        "  created_usec INTEGER NOT NULL,"
        "  started_usec INTEGER,"
        "  finished_usec INTEGER,"
        "  next_attempt_usec INTEGER,"
        "  UNIQUE(run_id, step_index)"
        ");"
        "CREATE TABLE attempts ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  activity_id INTEGER NOT NULL REFERENCES activities(id) ON DELETE CASCADE,"
        "  number INTEGER NOT NULL,"
        "  unit TEXT NOT NULL,"
        "  invocation_id TEXT,"
        "  state TEXT NOT NULL,"
        "  exit_code INTEGER,"
        "  result TEXT,"
        "  started_usec INTEGER,"
        "  finished_usec INTEGER,"
        "  UNIQUE(activity_id, number)"
        ");"
        "CREATE TABLE events ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
        "  usec INTEGER NOT NULL,"
        "  type TEXT NOT NULL,"
        "  data TEXT"
        ");"
        "CREATE INDEX events_run ON events(run_id, id);",
        /* 1 -> 2: triggers */
        "CREATE TABLE trigger_state ("
        "  namespace TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  fired_count INTEGER NOT NULL DEFAULT 0,"
        "  last_fired_usec INTEGER,"
        "  PRIMARY KEY(namespace, name)"
        ");"
        "CREATE TABLE idempotency ("
        "  namespace TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  key TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  response TEXT NOT NULL,"
        "  PRIMARY KEY(namespace, name, key)"
        ");"
        "CREATE INDEX runs_trigger ON runs(trigger, state);",
        /* 2 -> 3: outbound webhooks (the outbox), flow-output chains, cron catch-up, artifacts */
        "CREATE TABLE deliveries ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
        "  activity_id INTEGER,"
        "  webhook TEXT NOT NULL,"
        "  url TEXT NOT NULL,"
        "  event TEXT NOT NULL,"
        "  payload TEXT NOT NULL,"
        "  state TEXT NOT NULL DEFAULT 'pending',"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt_usec INTEGER NOT NULL DEFAULT 0,"
        "  created_usec INTEGER NOT NULL,"
        "  delivered_usec INTEGER,"
        "  last_status INTEGER,"
        "  last_error TEXT"
        ");"
        "CREATE INDEX deliveries_pending ON deliveries(state, next_attempt_usec);"
        "CREATE INDEX deliveries_run ON deliveries(run_id, id);"
        "CREATE TABLE flow_output_fires ("
        "  upstream_run_id INTEGER NOT NULL,"
        "  namespace TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  fired_usec INTEGER NOT NULL,"
        "  PRIMARY KEY(upstream_run_id, namespace, name)"
        ");"
        "ALTER TABLE trigger_state ADD COLUMN last_slot_usec INTEGER;"
        "ALTER TABLE runs ADD COLUMN raw_yaml TEXT;"
        "CREATE TABLE artifacts ("
        "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
        "  path TEXT NOT NULL,"
        "  size INTEGER NOT NULL,"
        "  sha256 TEXT NOT NULL,"
        "  activity TEXT,"
        "  mtime_usec INTEGER,"
        "  PRIMARY KEY(run_id, path)"
        ");",
        /* 3 -> 4: what a trigger's templates see (.trigger), for the steps left after a restart */
        "ALTER TABLE runs ADD COLUMN trigger_ctx TEXT;",
        /* 4 -> 5: how a run that is ending will end (a failed activity, a cancel, its timeout)
         * while activities still run, so a restart ends it the same way */
        "ALTER TABLE runs ADD COLUMN ending TEXT;",
};

static int sqlite_to_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
                return -EROFS;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

static int exec_sql(Store *s, const char *sql)
{
        char *err = NULL;
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
                log_error("SQLite: %s (in: %.60s)", strna(err), sql);
                sqlite3_free(err);
                return sqlite_to_errno(rc);
        }
        return 0;
}

static int store_migrate(Store *s)
{
        sqlite3_stmt *st;
        int version, r;

        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        sqlite3_finalize(st);

        if (version > (int) ELEMENTSOF(migrations))
                return log_error_errno(EPROTO,
                                       "Database schema version %i is newer than this arkevent "
                                       "knows (%zu), refusing to touch it.",
                                       version, ELEMENTSOF(migrations));

        for (int v = version; v < (int) ELEMENTSOF(migrations); v++) {
                char pragma[64];

                r = exec_sql(s, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                r = exec_sql(s, migrations[v]);
                snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %i", v + 1);
                if (r >= 0)
                        r = exec_sql(s, pragma);
                if (r < 0) {
                        (void) exec_sql(s, "ROLLBACK");
                        return log_error_errno(r, "Failed to migrate the database to schema "
                                                  "version %i: %m", v + 1);
                }
                r = exec_sql(s, "COMMIT");
                if (r < 0)
                        return r;
                log_info("Database schema migrated to version %i.", v + 1);
        }
        return 0;
}

static void run_callbacks(Store *s, int error)
{
        /* Callbacks may register new ones (and write again): work on a detached list. */
        PendingCallback *cbs = TAKE_PTR(s->callbacks);
        size_t n = s->n_callbacks;

        s->n_callbacks = s->n_callbacks_allocated = 0;
        for (size_t i = 0; i < n; i++)
                cbs[i].cb(s, error, cbs[i].userdata);
        free(cbs);
}

static int callbacks_push(PendingCallback **list, size_t *n, size_t *allocated,
                          StoreCommitCallback cb, void *userdata)
{
        if (*n >= *allocated) {
                size_t k = MAX(16u, *allocated * 2);
                PendingCallback *p = realloc(*list, k * sizeof(PendingCallback));
                if (!p)
                        return -ENOMEM;
                *list = p;
                *allocated = k;
        }
        (*list)[(*n)++] = (PendingCallback){ cb, userdata };
        return 0;
}

/* synchronous=NORMAL: a commit is safe from a crash of the daemon at once, and from a power
 * loss after the log is synced; SQLite syncs it at each checkpoint, and we sync it after each
 * commit that somebody outside was promised (an HTTP 202, a D-Bus reply). The log is written in
 * order, so whatever a power loss takes, what is left is a consistent earlier state. */
static int store_sync_wal(Store *s)
{
        if (s->wal_fd < 0 && s->wal_path)
                s->wal_fd = open(s->wal_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (s->wal_fd < 0)
                return log_error_errno(-errno, "Failed to open %s: %m", s->wal_path);
        if (fdatasync(s->wal_fd) < 0)
                return log_error_errno(-errno, "Failed to sync %s: %m", s->wal_path);
        return 0;
}

static void run_before_commit(Store *s)
{
        /* They may write, and register more of themselves: until none is left. */
        while (s->n_before > 0) {
                PendingCallback *cbs = TAKE_PTR(s->before);
                size_t n = s->n_before;

                s->n_before = s->n_before_allocated = 0;
                for (size_t i = 0; i < n; i++)
                        cbs[i].cb(s, 0, cbs[i].userdata);
                free(cbs);
        }
}

int store_commit(Store *s)
{
        int r = 0;

        run_before_commit(s);
        if (s->in_transaction) {
                r = exec_sql(s, "COMMIT");
                if (r < 0) {
                        log_error_errno(r, "Failed to commit to the database: %m");
                        (void) exec_sql(s, "ROLLBACK");
                } else if (s->durable)
                        r = store_sync_wal(s);
                s->in_transaction = false;
                s->durable = false;
                s->n_commits++;
        }
        if (s->commit_source)
                (void) sd_event_source_set_enabled(s->commit_source, SD_EVENT_OFF);
        run_callbacks(s, r);
        return r;
}

static int on_commit_turn(sd_event_source *es, void *userdata)
{
        (void) store_commit(userdata);
        return 0;
}

int store_begin(Store *s)
{
        int r;

        if (s->in_transaction)
                return 0;
        r = exec_sql(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        s->in_transaction = true;
        if (s->commit_source)
                (void) sd_event_source_set_enabled(s->commit_source, SD_EVENT_ONESHOT);
        return 0;
}

int store_after_commit(Store *s, StoreCommitCallback cb, void *userdata)
{
        if (!s->in_transaction) {
                cb(s, 0, userdata);
                return 0;
        }
        return callbacks_push(&s->callbacks, &s->n_callbacks, &s->n_callbacks_allocated, cb,
                              userdata);
}

int store_on_commit(Store *s, StoreCommitCallback cb, void *userdata)
{
        if (s->in_transaction)
                s->durable = true;
        return store_after_commit(s, cb, userdata);
}

int store_before_commit(Store *s, StoreCommitCallback cb, void *userdata)
{
        int r = callbacks_push(&s->before, &s->n_before, &s->n_before_allocated, cb, userdata);
        if (r >= 0 && s->commit_source)
                (void) sd_event_source_set_enabled(s->commit_source, SD_EVENT_ONESHOT);
        return r;
}

uint64_t store_n_commits(Store *s)
{
        return s->n_commits;
}

sqlite3 *store_db(Store *s)
{
        return s->db;
}

int store_open(sd_event *event, const char *path, Store **ret)
{
        _cleanup_(store_freep) Store *s = NULL;
        int rc, r;

        s = new0(Store, 1);
        if (!s)
                return -ENOMEM;
        s->wal_fd = -1;
        if (asprintf(&s->wal_path, "%s-wal", path) < 0)
                return -ENOMEM;

        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK)
                return log_error_errno(sqlite_to_errno(rc), "Failed to open database %s: %s",
                                       path, s->db ? sqlite3_errmsg(s->db) : "?");
        sqlite3_busy_timeout(s->db, 5000);

        /* WAL: readers (arkeventctl, sqlite3 CLI) never block the daemon. synchronous=NORMAL,
         * and the log synced after each commit that was promised to somebody (store_sync_wal()):
         * an accepted run survives a power loss, and group commit keeps that cheap. */
        r = exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                        "PRAGMA foreign_keys=ON;");
        if (r < 0)
                return r;

        r = store_migrate(s);
        if (r < 0)
                return r;

        if (event) {
                s->event = sd_event_ref(event);
                /* A defer source: it runs in the next loop iteration, so everything written
                 * while handling the current event (one MHD_run() may accept many requests)
                 * shares one commit. (A post source would not do: sd-event marks those pending
                 * before a dispatch, so one enabled during it could wait for the next event.) */
                r = sd_event_add_defer(event, &s->commit_source, on_commit_turn, s);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(s->commit_source, SD_EVENT_OFF);
                (void) sd_event_source_set_description(s->commit_source, "store-commit");
        }

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s)
{
        if (!s)
                return NULL;
        /* Their owners may be gone already; what they would have written is redone from the
         * store at the next start. */
        s->n_before = 0;
        if (s->db)
                (void) store_commit(s);
        else
                run_callbacks(s, -ECANCELED);
        for (size_t i = 0; i < s->n_stmts; i++) {
                sqlite3_finalize(s->stmts[i].stmt);
                free(s->stmts[i].sql);
        }
        free(s->stmts);
        free(s->callbacks);
        free(s->before);
        safe_close(s->wal_fd);
        free(s->wal_path);
        sd_event_source_disable_unref(s->commit_source);
        sd_event_unref(s->event);
        sqlite3_close(s->db);
        free(s);
        return NULL;
}

int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret)
{
        sqlite3_stmt *st;
        CachedStmt *n;

        for (size_t i = 0; i < s->n_stmts; i++)
                if (s->stmts[i].sql == sql || streq(s->stmts[i].sql, sql)) {
                        sqlite3_reset(s->stmts[i].stmt);
                        sqlite3_clear_bindings(s->stmts[i].stmt);
                        *ret = s->stmts[i].stmt;
                        return 0;
                }

        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
                return log_error_errno(EINVAL, "SQLite: %s (in: %s)", sqlite3_errmsg(s->db),
                                       sql);
        n = realloc(s->stmts, (s->n_stmts + 1) * sizeof(CachedStmt));
        if (!n) {
                sqlite3_finalize(st);
                return -ENOMEM;
        }
        s->stmts = n;
        s->stmts[s->n_stmts].sql = strdup(sql);
        if (!s->stmts[s->n_stmts].sql) {
                sqlite3_finalize(st);
                return -ENOMEM;
        }
        s->stmts[s->n_stmts++].stmt = st;
        *ret = st;
        return 0;
}

static int bind_va(sqlite3_stmt *st, const char *fmt, va_list ap)
{
        for (int i = 0; fmt && fmt[i]; i++) {
                int rc;
                switch (fmt[i]) {
                case 'i':
                        rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
                        break;
                case 's': {
                        const char *v = va_arg(ap, const char *);
                        rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT)
                               : sqlite3_bind_null(st, i + 1);
                        break;
                }
                case 'd':
                        rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
                        break;
                default:
                        return -EINVAL;
                }
                if (rc != SQLITE_OK)
                        return sqlite_to_errno(rc);
        }
        return 0;
}

int store_query(Store *s, sqlite3_stmt **ret, const char *sql, const char *fmt, ...)
{
        sqlite3_stmt *st;
        va_list ap;
        int r;

        r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        r = bind_va(st, fmt, ap);
        va_end(ap);
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}

int store_exec(Store *s, int64_t *ret_rowid, const char *sql, const char *fmt, ...)
{
        sqlite3_stmt *st;
        va_list ap;
        int rc, r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        r = bind_va(st, fmt, ap);
        va_end(ap);
        if (r < 0)
                return r;
        do
                rc = sqlite3_step(st);
        while (rc == SQLITE_ROW);
        if (rc != SQLITE_DONE) {
                r = sqlite_to_errno(rc);
                log_error("SQLite: %s (in: %.80s)", sqlite3_errmsg(s->db), sql);
                sqlite3_reset(st);
                return r;
        }
        sqlite3_reset(st);
        if (ret_rowid)
                *ret_rowid = sqlite3_last_insert_rowid(s->db);
        return 0;
}

char *store_column_strdup(sqlite3_stmt *st, int col)
{
        const unsigned char *t = sqlite3_column_text(st, col);
        return t ? strdup((const char *) t) : NULL;
}
