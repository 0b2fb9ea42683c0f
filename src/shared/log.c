/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool use_journal = false;
static bool force_console = false;
static const char *ident = "arkevent";

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level)
{
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

int log_parse_level(const char *s)
{
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (streq(s, level_names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (streq(s, "warn"))
                return LOG_WARNING;
        return -EINVAL;
}

void log_set_ident(const char *i)
{
        ident = i;
}

void log_set_target_console(bool console)
{
        force_console = console;
        if (console)
                use_journal = false;
}

void log_open(void)
{
        /* Under systemd, stderr goes to the journal anyway: talk to it natively instead, so
         * that our structured fields (ARKEVENT_RUN=, CODE_FILE=, ...) survive. */
        const char *e = getenv("JOURNAL_STREAM");
        use_journal = !force_console && e && *e;
        const char *lvl = getenv("ARKEVENT_LOG_LEVEL");
        if (lvl) {
                int l = log_parse_level(lvl);
                if (l >= 0)
                        max_level = l;
        }
}

_printf_(7, 0) static int log_dispatch(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, const char *format, va_list ap)
{
        char buf[LINE_MAX * 2];

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;

        /* Keep %m working with the error we were given. */
        errno = error;
        vsnprintf(buf, sizeof(buf), format, ap);

        if (use_journal) {
                struct iovec iov[32];
                char prio[32], cfile[256], cline[32], cfunc[256], errnostr[32];
                size_t n = 0;
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "MESSAGE=%s", buf) < 0)
                        return -error;
                snprintf(prio, sizeof(prio), "PRIORITY=%i", level);
                snprintf(cfile, sizeof(cfile), "CODE_FILE=%s", file);
                snprintf(cline, sizeof(cline), "CODE_LINE=%i", line);
                snprintf(cfunc, sizeof(cfunc), "CODE_FUNC=%s", func);
                iov[n++] = (struct iovec){ msg, strlen(msg) };
                iov[n++] = (struct iovec){ prio, strlen(prio) };
                iov[n++] = (struct iovec){ cfile, strlen(cfile) };
                iov[n++] = (struct iovec){ cline, strlen(cline) };
                iov[n++] = (struct iovec){ cfunc, strlen(cfunc) };
                if (error > 0) {
                        snprintf(errnostr, sizeof(errnostr), "ERRNO=%i", error);
                        iov[n++] = (struct iovec){ errnostr, strlen(errnostr) };
                }
                for (size_t i = 0; fields && fields[i] && n < ELEMENTSOF(iov); i++)
                        iov[n++] = (struct iovec){ (char *) fields[i], strlen(fields[i]) };
                if (sd_journal_sendv(iov, (int) n) >= 0)
                        return -error;
        }

        fprintf(stderr, "%s\n", buf);
        return -error;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, file, line, func, NULL, format, ap);
        va_end(ap);
        return r;
}

int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, file, line, func, fields, format, ap);
        va_end(ap);
        return r;
}
