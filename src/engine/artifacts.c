/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "artifacts.h"
#include "engine/engine.h"
#include "shared/fileio.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define SCAN_DEPTH_MAX 32
#define SCAN_FILES_MAX 10000

static void evp_md_ctx_freep(EVP_MD_CTX **c)
{
        if (*c)
                EVP_MD_CTX_free(*c);
}

int sha256_fd(int fd, char ret[static 65])
{
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
        unsigned len = 0;
        ssize_t n;

        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return -EIO;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        while ((n = read(fd, buf, sizeof(buf))) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (EVP_DigestUpdate(ctx, buf, (size_t) n) != 1)
                        return -EIO;
        }
        if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32)
                return -EIO;
        for (unsigned i = 0; i < len; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

typedef struct Scan {
        Store *store;
        int64_t run_id;
        const char *activity;
        unsigned n_files, n_recorded;
} Scan;

static int scan_file(Scan *sc, int dirfd, const char *name, const char *rel,
                     const struct stat *st)
{
        _cleanup_close_ int fd = -EBADF;
        int64_t mtime = (int64_t) st->st_mtim.tv_sec * 1000000 + st->st_mtim.tv_nsec / 1000;
        sqlite3_stmt *q;
        char hex[65];
        int r;

        r = store_query(sc->store, &q,
                        "SELECT size, mtime_usec FROM artifacts WHERE run_id=? AND path=?", "is",
                        sc->run_id, rel);
        if (r < 0)
                return r;
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) == (int64_t) st->st_size &&
            sqlite3_column_int64(q, 1) == mtime) {
                sqlite3_reset(q);
                return 0;
        }
        sqlite3_reset(q);

        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        r = sha256_fd(fd, hex);
        if (r < 0)
                return r;
        r = store_exec(sc->store, NULL,
                       "INSERT OR REPLACE INTO artifacts(run_id, path, size, sha256, activity, "
                       "mtime_usec) VALUES (?, ?, ?, ?, ?, ?)",
                       "isissi", sc->run_id, rel, (int64_t) st->st_size, hex, sc->activity,
                       mtime);
        if (r < 0)
                return r;
        sc->n_recorded++;
        return 0;
}

static int scan_dir(Scan *sc, int dirfd, const char *prefix, unsigned depth)
{
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (depth > SCAN_DEPTH_MAX)
                return 0;
        d = fdopendir(dirfd);
        if (!d) {
                safe_close(dirfd);
                return -errno;
        }
        while ((de = readdir(d)) && r >= 0) {
                _cleanup_free_ char *rel = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (asprintf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                r = scan_dir(sc, sub, rel, depth + 1);
                } else if (S_ISREG(st.st_mode)) {
                        /* Symbolic links, devices and sockets are not artifacts. */
                        if (++sc->n_files > SCAN_FILES_MAX)
                                break;
                        r = scan_file(sc, dirfd, de->d_name, rel, &st);
                }
        }
        closedir(d);
        return r;
}

int artifacts_scan(Store *s, int64_t run_id, const char *workspace, const char *activity)
{
        Scan sc = { .store = s, .run_id = run_id, .activity = activity };
        int fd, r;

        fd = open(workspace, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        r = scan_dir(&sc, fd, "", 0);
        if (r < 0)
                return r;
        return (int) sc.n_recorded;
}

int artifact_path_check(const char *path)
{
        if (!path || !*path || path[0] == '/' || strlen(path) > 4096)
                return -EINVAL;
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return -EINVAL;
                p += n;
                if (*p == '/')
                        p++;
                else
                        break;
        }
        if (endswith(path, "/"))
                return -EINVAL;
        return 0;
}

/* Where openat2() is missing: one component at a time, never following a symbolic link. */
static int open_nofollow_walk(int dirfd, const char *path)
{
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int cur = -EBADF;
        char *save = NULL, *c, *next;

        if (!copy)
                return -ENOMEM;
        cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        c = strtok_r(copy, "/", &save);
        while (c) {
                int fd;
                next = strtok_r(NULL, "/", &save);
                fd = openat(cur, c,
                            O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                                    (next ? O_DIRECTORY : O_NONBLOCK));
                if (fd < 0)
                        return -errno;
                safe_close(cur);
                cur = fd;
                c = next;
        }
        return TAKE_FD(cur);
}

int artifact_open(const char *workspace, const char *path, int *ret_fd)
{
        _cleanup_close_ int root = -EBADF, fd = -EBADF;
        struct open_how how = {
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
        };
        struct stat st;

        if (artifact_path_check(path) < 0)
                return -EINVAL;
        root = open(workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return -errno;
        fd = (int) syscall(SYS_openat2, root, path, &how, sizeof(how));
        if (fd < 0 && (errno == ENOSYS || errno == EPERM))
                fd = open_nofollow_walk(root, path);
        else if (fd < 0)
                fd = -errno;
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void on_activity_changed(Activity *a, void *userdata)
{
        Run *run = a->run;
        int r;

        /* An activity that never had a unit wrote nothing. */
        if (!activity_state_is_final(a->state) || a->attempt == 0 || !run->workspace)
                return;
        r = artifacts_scan(engine_store(run->engine), run->id, run->workspace, a->step->name);
        if (r < 0)
                log_warning_errno(r, "Failed to record the artifacts of run %" PRIi64
                                     " activity %s, ignoring: %m",
                                  run->id, a->step->name);
        else if (r > 0)
                log_debug("Run %" PRIi64 " activity %s left %i new or changed files.", run->id,
                          a->step->name, r);
}

static void on_run_changed(Run *run, void *userdata)
{
        int r;

        if (!run_state_is_final(run->state) || !run->workspace ||
            !streq_ptr(run->flow ? run->flow->storage_policy : NULL, "ephemeral"))
                return;
        r = rm_rf(run->workspace);
        if (r < 0)
                log_warning_errno(r, "Failed to remove the ephemeral workspace %s, ignoring: %m",
                                  run->workspace);
        else
                log_debug("Removed the ephemeral workspace of run %" PRIi64 ".", run->id);
}

int artifacts_watch(Engine *e)
{
        EngineListener l = {
                .run_changed = on_run_changed,
                .activity_changed = on_activity_changed,
        };
        return engine_add_listener(e, &l);
}
