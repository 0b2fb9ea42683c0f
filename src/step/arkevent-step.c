/* SPDX-License-Identifier: MIT */
/* arkevent-step: runs inside every activity's transient unit.
 *
 *   arkevent-step run CAPTURE_FILE MAX_BYTES [RESULT_FILE] -- COMMAND [ARG...]
 *       Runs COMMAND with its standard output copied both to our own standard output (the
 *       journal) and, up to MAX_BYTES, to CAPTURE_FILE: the step's output when it does not
 *       write $ARKEVENT_OUTPUT. When COMMAND ends, writes its result to RESULT_FILE (in the
 *       form "record" uses), then exits as COMMAND did (re-raising its signal), so systemd sees
 *       the step's own result. Stop signals (TERM, INT, HUP, PIPE) reach COMMAND from systemd;
 *       the wrapper itself outlives them long enough to write down how COMMAND ended. When the
 *       wrapper cannot write the result (killed by SIGKILL, a timeout or OOM verdict), the unit
 *       fails and systemd keeps it loaded (CollectMode=inactive) with its result until the
 *       daemon has recorded it.
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
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/fileio.h"

extern char **environ;


static int write_result(const char *path, const char *result, const char *code,
                        const char *status)
{
        char tmp[4096], buf[1024];
        int fd, n;

        n = snprintf(buf, sizeof(buf), "SERVICE_RESULT=%s\nEXIT_CODE=%s\nEXIT_STATUS=%s\n",
                     result, code, status);
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
                return 1;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                fprintf(stderr, "arkevent-step: cannot write %s: %m\n", tmp);
                return 1;
        }
        /* No fsync(): the file stands in for a dead daemon, not a dead machine. After a crash
         * of the machine the unit is gone as well, and a missing or empty result reads as an
         * attempt that ended without one. */
        if (loop_write(fd, buf, (size_t) n) < 0) {
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

static int do_record(const char *path)
{
        return write_result(path, getenv("SERVICE_RESULT") ?: "", getenv("EXIT_CODE") ?: "",
                            getenv("EXIT_STATUS") ?: "");
}

/* The stop signals systemd sends the whole unit: noted, not obeyed, so the wrapper lives to see
 * COMMAND end. A handled (not ignored) signal is back to its default in COMMAND after exec. */
static volatile sig_atomic_t stop_signal_seen;

static void on_stop_signal(int sig)
{
        stop_signal_seen = sig;
}

static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE };

static int do_run(const char *capture, unsigned long long max, const char *result_path,
                  char **argv)
{
        unsigned long long captured = 0;
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        int pipefd[2], cfd, status, r;
        sigset_t stops, saved;
        pid_t pid;
        char buf[65536];

        cfd = open(capture, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (cfd < 0) {
                fprintf(stderr, "arkevent-step: cannot open %s: %m\n", capture);
                return 127;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return 127;
        if (result_path)
                for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
                        struct sigaction sa = { .sa_handler = on_stop_signal };
                        sigemptyset(&sa.sa_mask);
                        (void) sigaction(stop_signals[i], &sa, NULL);
                }

        /* A stop that comes before COMMAND exists (a cancel right after the start) went to the
         * wrapper alone: held back over the fork, then passed on, or COMMAND would run on with
         * nobody to stop it. */
        sigemptyset(&stops);
        for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
                sigaddset(&stops, stop_signals[i]);
        (void) sigprocmask(SIG_BLOCK, &stops, &saved);
        /* posix_spawn (a vfork underneath): the child starts with the stop signals at their
         * defaults and the mask as it was, so a stop sent from now on ends it at once. */
        if (posix_spawnattr_init(&attr) != 0 || posix_spawn_file_actions_init(&actions) != 0 ||
            posix_spawnattr_setsigdefault(&attr, &stops) != 0 ||
            posix_spawnattr_setsigmask(&attr, &saved) != 0 ||
            posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) != 0 ||
            posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO) != 0)
                return 127;
        r = posix_spawnp(&pid, argv[0], &actions, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        close(pipefd[1]);
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        if (r != 0) {
                fprintf(stderr, "arkevent-step: cannot execute %s: %s\n", argv[0], strerror(r));
                close(pipefd[0]);
                close(cfd);
                r = r == ENOENT ? 127 : 126;
                if (result_path) {
                        char num[16];
                        snprintf(num, sizeof(num), "%d", r);
                        (void) write_result(result_path, "exit-code", "exited", num);
                }
                return r;
        }
        if (stop_signal_seen)
                (void) kill(pid, stop_signal_seen);

        for (;;) {
                ssize_t n = read(pipefd[0], buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                (void) loop_write(STDOUT_FILENO, buf, (size_t) n);
                if (captured < max) {
                        size_t k = (size_t) ((unsigned long long) n < max - captured
                                                     ? (unsigned long long) n
                                                     : max - captured);
                        if (loop_write(cfd, buf, k) >= 0)
                                captured += k;
                }
        }
        close(pipefd[0]);
        close(cfd);

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return 127;

        if (result_path) {
                char num[16];
                const char *sig = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;

                if (WIFSIGNALED(status))
                        snprintf(num, sizeof(num), "%d", WTERMSIG(status));
                else
                        snprintf(num, sizeof(num), "%d", WEXITSTATUS(status));
                /* As systemd would put it in $SERVICE_RESULT, $EXIT_CODE and $EXIT_STATUS. */
                (void) write_result(result_path,
                                    !WIFSIGNALED(status) ? (WEXITSTATUS(status) == 0 ? "success"
                                                                                     : "exit-code")
                                    : WCOREDUMP(status)  ? "core-dump"
                                                         : "signal",
                                    !WIFSIGNALED(status) ? "exited"
                                    : WCOREDUMP(status)  ? "dumped"
                                                         : "killed",
                                    sig ?: num);
        }

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

        if (argc >= 6 && strcmp(argv[1], "run") == 0 &&
            (strcmp(argv[4], "--") == 0 || (argc >= 7 && strcmp(argv[5], "--") == 0))) {
                bool with_result = strcmp(argv[4], "--") != 0;
                char *end;
                unsigned long long max = strtoull(argv[3], &end, 10);
                if (*end)
                        return 127;
                return do_run(argv[2], max, with_result ? argv[4] : NULL,
                              argv + (with_result ? 6 : 5));
        }

        fprintf(stderr,
                "Usage: arkevent-step run CAPTURE_FILE MAX_BYTES [RESULT_FILE] -- COMMAND [ARG...]\n"
                "       arkevent-step record RESULT_FILE\n"
                "Runs inside arkevent's activity units; not meant to be called by hand.\n");
        return 2;
}
