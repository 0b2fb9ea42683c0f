/* SPDX-License-Identifier: MIT */
/* arkevent-step: runs inside every activity's transient unit.
 *
 *   arkevent-step run CAPTURE_FILE MAX_BYTES -- COMMAND [ARG...]
 *       Runs COMMAND with its standard output copied both to our own standard output (the
 *       journal) and, up to MAX_BYTES, to CAPTURE_FILE: the step's output when it does not
 *       write $ARKEVENT_OUTPUT. Exits as COMMAND did (re-raising its signal), so systemd sees the
 *       step's own result.
 *
 *   arkevent-step record RESULT_FILE
 *       Runs as ExecStopPost=: writes $SERVICE_RESULT, $EXIT_CODE and $EXIT_STATUS to RESULT_FILE
 *       (atomically). The daemon reads it when the unit ends, or at its next start if it was not
 *       running then, so a unit may be garbage-collected as soon as it ends and no result is lost.
 *
 * Kept free of the daemon's libraries: it is small and starts fast. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, buf, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += k;
                n -= (size_t) k;
        }
        return 0;
}

static int do_record(const char *path)
{
        char tmp[4096], buf[1024];
        int fd, n;

        n = snprintf(buf, sizeof(buf), "SERVICE_RESULT=%s\nEXIT_CODE=%s\nEXIT_STATUS=%s\n",
                     getenv("SERVICE_RESULT") ?: "", getenv("EXIT_CODE") ?: "",
                     getenv("EXIT_STATUS") ?: "");
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
                return 1;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                fprintf(stderr, "arkevent-step: cannot write %s: %m\n", tmp);
                return 1;
        }
        if (write_all(fd, buf, (size_t) n) < 0 || fsync(fd) < 0) {
                close(fd);
                return 1;
        }
        close(fd);
        if (rename(tmp, path) < 0) {
                fprintf(stderr, "arkevent-step: cannot rename %s: %m\n", tmp);
                return 1;
        }
        return 0;
}

static int do_run(const char *capture, unsigned long long max, char **argv)
{
        unsigned long long captured = 0;
        int pipefd[2], cfd, status;
        pid_t pid;
        char buf[65536];

        cfd = open(capture, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (cfd < 0) {
                fprintf(stderr, "arkevent-step: cannot open %s: %m\n", capture);
                return 127;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return 127;

        pid = fork();
        if (pid < 0)
                return 127;
        if (pid == 0) {
                if (dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                fprintf(stderr, "arkevent-step: cannot execute %s: %m\n", argv[0]);
                _exit(errno == ENOENT ? 127 : 126);
        }
        close(pipefd[1]);

        for (;;) {
                ssize_t n = read(pipefd[0], buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                (void) write_all(STDOUT_FILENO, buf, (size_t) n);
                if (captured < max) {
                        size_t k = (size_t) ((unsigned long long) n < max - captured
                                                     ? (unsigned long long) n
                                                     : max - captured);
                        if (write_all(cfd, buf, k) >= 0)
                                captured += k;
                }
        }
        close(pipefd[0]);
        close(cfd);

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return 127;

        if (WIFSIGNALED(status)) {
                /* Die the same way, so the unit's result names the signal. */
                signal(WTERMSIG(status), SIG_DFL);
                raise(WTERMSIG(status));
                return 128 + WTERMSIG(status);
        }
        return WEXITSTATUS(status);
}

int main(int argc, char *argv[])
{
        if (argc == 3 && strcmp(argv[1], "record") == 0)
                return do_record(argv[2]);

        if (argc >= 6 && strcmp(argv[1], "run") == 0 && strcmp(argv[4], "--") == 0) {
                char *end;
                unsigned long long max = strtoull(argv[3], &end, 10);
                if (*end)
                        return 127;
                return do_run(argv[2], max, argv + 5);
        }

        fprintf(stderr,
                "Usage: arkevent-step run CAPTURE_FILE MAX_BYTES -- COMMAND [ARG...]\n"
                "       arkevent-step record RESULT_FILE\n"
                "Runs inside arkevent's activity units; not meant to be called by hand.\n");
        return 2;
}
