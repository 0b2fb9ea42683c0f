/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <sys/stat.h>

#include "shared/fileio.h"
#include "shared/log.h"
#include "shared/token.h"
#include "trigger-tokens.h"

static bool name_ok(const char *s)
{
        return s && *s && *s != '.' && !strchr(s, '/');
}

static int token_path(const char *state_dir, const char *ns, const char *name, char **ret)
{
        if (!name_ok(ns) || !name_ok(name))
                return -EINVAL;
        return asprintf(ret, "%s/tokens/%s/%s", state_dir, ns, name) < 0 ? -ENOMEM : 0;
}

/* Tokens read before, by path: a fire costs a stat() of the file, not reading it. A token is
 * replaced by a rename (a new inode), so the inode and mtime tell when to read it again. */
#define TOKEN_CACHE_SIZE 64
static struct {
        char *path, *token;
        ino_t ino;
        struct timespec mtime;
} token_cache[TOKEN_CACHE_SIZE];
static unsigned token_cache_next;

static bool same_file(const struct stat *st, ino_t ino, const struct timespec *mtime)
{
        return st->st_ino == ino && st->st_mtim.tv_sec == mtime->tv_sec &&
               st->st_mtim.tv_nsec == mtime->tv_nsec;
}

int trigger_token_get(const char *state_dir, const char *ns, const char *name, char **ret)
{
        _cleanup_free_ char *path = NULL, *t = NULL;
        struct stat st;
        unsigned slot;
        size_t n;
        int r;

        r = token_path(state_dir, ns, name, &path);
        if (r < 0)
                return r;
        if (stat(path, &st) < 0)
                return -errno;
        for (unsigned i = 0; i < TOKEN_CACHE_SIZE; i++)
                if (streq_ptr(token_cache[i].path, path) &&
                    same_file(&st, token_cache[i].ino, &token_cache[i].mtime)) {
                        *ret = strdup(token_cache[i].token);
                        return *ret ? 0 : -ENOMEM;
                }
        r = read_file_capped(path, 4096, &t, &n);
        if (r < 0)
                return r;
        while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' '))
                t[--n] = 0;

        slot = token_cache_next++ % TOKEN_CACHE_SIZE;
        for (unsigned i = 0; i < TOKEN_CACHE_SIZE; i++)
                if (streq_ptr(token_cache[i].path, path))
                        slot = i;
        free(token_cache[slot].path);
        free(token_cache[slot].token);
        token_cache[slot].path = strdup(path);
        token_cache[slot].token = strdup(t);
        if (!token_cache[slot].path || !token_cache[slot].token) {
                free(TAKE_PTR(token_cache[slot].path));
                free(TAKE_PTR(token_cache[slot].token));
        }
        token_cache[slot].ino = st.st_ino;
        token_cache[slot].mtime = st.st_mtim;
        *ret = TAKE_PTR(t);
        return 0;
}

void trigger_tokens_cache_clear(void)
{
        for (unsigned i = 0; i < TOKEN_CACHE_SIZE; i++) {
                free(TAKE_PTR(token_cache[i].path));
                free(TAKE_PTR(token_cache[i].token));
        }
}

int trigger_token_rotate(const char *state_dir, const char *ns, const char *name, char **ret)
{
        _cleanup_free_ char *path = NULL, *dir = NULL, *t = NULL;
        int r;

        r = token_path(state_dir, ns, name, &path);
        if (r < 0)
                return r;
        if (asprintf(&dir, "%s/tokens/%s", state_dir, ns) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        r = token_generate(&t);
        if (r < 0)
                return r;
        r = write_file_atomic(path, t, 0600);
        if (r < 0)
                return r;
        if (ret)
                *ret = TAKE_PTR(t);
        return 0;
}

int trigger_tokens_sync(const char *state_dir, const Registry *reg, bool remove_stale)
{
        _cleanup_free_ char *root = NULL;
        DIR *d;
        struct dirent *de;
        int r;

        for (size_t i = 0; i < reg->n_triggers; i++) {
                const Trigger *t = reg->triggers[i];
                _cleanup_free_ char *existing = NULL;

                if (t->type != TRIGGER_WEBHOOK)
                        continue;
                r = trigger_token_get(state_dir, t->namespace, t->name, &existing);
                if (r >= 0 && *existing)
                        continue;
                r = trigger_token_rotate(state_dir, t->namespace, t->name, NULL);
                if (r < 0)
                        log_warning_errno(r, "Failed to create the token of trigger %s/%s: %m",
                                          t->namespace, t->name);
                else
                        log_info("Created the webhook token of trigger %s/%s.", t->namespace,
                                 t->name);
        }

        /* Tokens of triggers that are gone (or no longer webhooks) go too. */
        if (!remove_stale)
                return 0;
        if (asprintf(&root, "%s/tokens", state_dir) < 0)
                return -ENOMEM;
        d = opendir(root);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *nsdir = NULL;
                DIR *nd;
                struct dirent *te;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&nsdir, "%s/%s", root, de->d_name) < 0)
                        break;
                nd = opendir(nsdir);
                if (!nd)
                        continue;
                while ((te = readdir(nd))) {
                        Trigger *t;
                        if (te->d_name[0] == '.' || strstr(te->d_name, ".tmp."))
                                continue;
                        t = registry_find_trigger(reg, de->d_name, te->d_name);
                        if (!t || t->type != TRIGGER_WEBHOOK) {
                                _cleanup_free_ char *p = NULL;
                                if (asprintf(&p, "%s/%s", nsdir, te->d_name) >= 0 &&
                                    unlink(p) >= 0)
                                        log_info("Removed the webhook token of trigger %s/%s.",
                                                 de->d_name, te->d_name);
                        }
                }
                closedir(nd);
                (void) rmdir(nsdir);
        }
        closedir(d);
        return 0;
}
