/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fileio.h"

int read_file_capped(const char *path, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        for (;;) {
                ssize_t n;
                if (size + 4096 + 1 > allocated) {
                        size_t a = MAX(allocated * 2, size + 4096 + 1);
                        char *b = realloc(buf, a);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        allocated = a;
                }
                n = read(fd, buf + size, MIN(allocated - size - 1, max - size));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size >= max)
                        break;
        }
        if (!buf) {
                buf = strdup("");
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int loop_write(int fd, const void *data, size_t n)
{
        const char *p = data;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int write_file_atomic(const char *path, const char *text, mode_t mode)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf(&tmp, "%s.tmp.%i", path, (int) getpid()) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, text, strlen(text));
        if (r >= 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0))
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *parent = NULL;
        char *slash;
        int r;

        /* The common case first: only the last component is missing (or none is). */
        if (mkdir(path, mode) >= 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        parent = strdup(path);
        if (!parent)
                return -ENOMEM;
        slash = strrchr(parent, '/');
        while (slash && slash > parent && slash[1] == 0) { /* trailing slashes */
                *slash = 0;
                slash = strrchr(parent, '/');
        }
        if (!slash || slash == parent)
                return -ENOENT;
        *slash = 0;
        r = mkdir_p(parent, mode);
        if (r < 0)
                return r;
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int rm_rf_at(int dir_fd, const char *name)
{
        struct stat st;
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
                int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *d;
                struct dirent *de;
                if (fd < 0)
                        return -errno;
                d = fdopendir(fd);
                if (!d) {
                        close(fd);
                        return -errno;
                }
                while ((de = readdir(d)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                                (void) rm_rf_at(dirfd(d), de->d_name);
                closedir(d);
                return unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
        }
        return unlinkat(dir_fd, name, 0) < 0 ? -errno : 0;
}

int rm_rf(const char *path)
{
        return rm_rf_at(AT_FDCWD, path);
}
