/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <inttypes.h>

#include "run-retention.h"
#include "shared/fileio.h"
#include "shared/log.h"
#include "shared/time-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

#define IDEMPOTENCY_KEEP_USEC (24 * 3600 * USEC_PER_SEC)

static int run_dir_remove(const char *state_dir, int64_t id)
{
        _cleanup_free_ char *dir = NULL;

        if (asprintf(&dir, "%s/runs/%" PRIi64, state_dir, id) < 0)
                return -ENOMEM;
        return rm_rf(dir);
}

int runs_prune(Store *s, const char *state_dir, const RetentionPolicy *p, unsigned batch)
{
        _cleanup_free_ int64_t *ids = NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int64_t cutoff = p->max_age_usec > 0 && p->max_age_usec < now
                                 ? (int64_t) (now - p->max_age_usec)
                                 : 0;
        size_t n = 0;
        sqlite3_stmt *st;
        int r;

        (void) store_exec(s, NULL, "DELETE FROM idempotency WHERE created_usec < ?", "i",
                          (int64_t) (now - IDEMPOTENCY_KEEP_USEC));

        if (batch == 0 || (cutoff == 0 && p->max_runs == 0))
                return 0;
        ids = new0(int64_t, batch);
        if (!ids)
                return -ENOMEM;

        /* Ended runs finished before the cutoff, or older than the max_runs-th newest ended
         * run (NULL when there are fewer, so the count rule keeps them all). */
        r = store_query(s, &st,
                        "SELECT id FROM runs WHERE state NOT IN ('Pending', 'Running') AND ("
                        "(?1 > 0 AND COALESCE(finished_usec, created_usec) < ?1) OR "
                        "(?2 > 0 AND id < (SELECT id FROM runs WHERE state NOT IN "
                        "('Pending', 'Running') ORDER BY id DESC LIMIT 1 OFFSET ?2 - 1))) "
                        "ORDER BY id LIMIT ?3",
                        "iii", cutoff, (int64_t) p->max_runs, (int64_t) batch);
        if (r < 0)
                return r;
        while (n < batch && sqlite3_step(st) == SQLITE_ROW)
                ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (n == 0)
                return 0;

        for (size_t i = 0; i < n; i++) {
                r = store_exec(s, NULL, "DELETE FROM runs WHERE id=?", "i", ids[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to remove run %" PRIi64 ": %m",
                                               ids[i]);
        }
        /* The rows go first: a crash before the directories are gone leaves only orphans,
         * which runs_prune_orphans() removes, never a run without its files. */
        r = store_commit(s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = run_dir_remove(state_dir, ids[i]);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove the directory of run %" PRIi64
                                             ", ignoring: %m",
                                          ids[i]);
        }
        log_info("Retention: removed %zu ended runs (runs %" PRIi64 " to %" PRIi64 ").", n, ids[0],
                 ids[n - 1]);
        return (int) n;
}

int runs_prune_orphans(Store *s, const char *state_dir)
{
        _cleanup_free_ char *root = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        sqlite3_stmt *st;
        int n = 0, r;

        if (asprintf(&root, "%s/runs", state_dir) < 0)
                return -ENOMEM;
        d = opendir(root);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                char *end;
                long long id;
                bool found;

                if (de->d_name[0] == '.')
                        continue;
                errno = 0;
                id = strtoll(de->d_name, &end, 10);
                if (errno != 0 || *end || id <= 0)
                        continue;
                r = store_query(s, &st, "SELECT 1 FROM runs WHERE id=?", "i", (int64_t) id);
                if (r < 0)
                        return r;
                found = sqlite3_step(st) == SQLITE_ROW;
                sqlite3_reset(st);
                if (found)
                        continue;
                if (run_dir_remove(state_dir, id) >= 0)
                        n++;
        }
        if (n > 0)
                log_info("Retention: removed %i run directories without a run.", n);
        return n;
}
