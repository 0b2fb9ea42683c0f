/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "http-server.h"
#include "shared/log.h"
#include "shared/time-util.h"

struct HttpServer {
        sd_event *event;
        struct MHD_Daemon *mhd;
        sd_event_source *io_source;
        sd_event_source *timer_source;
        HttpServerConfig config;
        HttpHandler handler;
        void *userdata;
        unsigned n_connections;
        HttpRequest *requests; /* every request not yet freed */
        bool stopping;
};

struct HttpRequest {
        HttpServer *server;
        struct MHD_Connection *connection;
        const char *method;
        char *path;
        char *body;
        size_t body_size;
        size_t body_allocated;
        bool too_large;
        bool handled;   /* the handler ran */
        bool suspended;
        bool replied;
        struct MHD_Response *pending; /* reply produced while suspended */
        unsigned pending_status;
        char peer[64];
        void *userdata;
        HttpAbortHandler on_abort;
        unsigned status;        /* the status answered, for the access log */
        uint64_t start_usec;    /* CLOCK_MONOTONIC, when the headers arrived */
        char *log_fields[8];    /* extra journal fields of the access log entry */
        size_t n_log_fields;
        struct HttpStream *stream;
        HttpRequest *prev, *next;
};

/* A streamed answer; owned by the MHD response, linked both ways with its request while both
 * exist. */
typedef struct HttpStream {
        HttpRequest *req;
        HttpStreamRead read;
        HttpStreamDone done;
        void *userdata;
        bool parked; /* the connection is suspended until there is more to send */
        bool done_called;
} HttpStream;

static void http_server_kick(HttpServer *s);

static void request_free(HttpRequest *req)
{
        if (!req)
                return;
        if (req->prev)
                req->prev->next = req->next;
        else if (req->server->requests == req)
                req->server->requests = req->next;
        if (req->next)
                req->next->prev = req->prev;
        if (req->pending)
                MHD_destroy_response(req->pending);
        if (req->stream) {
                HttpStream *st = TAKE_PTR(req->stream);
                st->req = NULL;
                if (!st->done_called && st->done) {
                        st->done_called = true;
                        st->done(st->userdata);
                }
        }
        for (size_t i = 0; i < req->n_log_fields; i++)
                free(req->log_fields[i]);
        free(req->path);
        free(req->body);
        free(req);
}

const char *http_request_method(HttpRequest *req)
{
        return req->method;
}

const char *http_request_path(HttpRequest *req)
{
        return req->path;
}

const char *http_request_header(HttpRequest *req, const char *name)
{
        return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

const char *http_request_query(HttpRequest *req, const char *name)
{
        return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_request_body(HttpRequest *req, size_t *ret_size)
{
        if (ret_size)
                *ret_size = req->body_size;
        return req->body ?: "";
}

const char *http_request_peer(HttpRequest *req)
{
        return req->peer;
}

void http_request_set_userdata(HttpRequest *req, void *userdata, HttpAbortHandler on_abort)
{
        req->userdata = userdata;
        req->on_abort = on_abort;
}

void *http_request_get_userdata(HttpRequest *req)
{
        return req->userdata;
}

static int queue(HttpRequest *req, unsigned status, struct MHD_Response *resp)
{
        enum MHD_Result r = MHD_queue_response(req->connection, status, resp);
        MHD_destroy_response(resp);
        req->replied = true;
        req->status = status;
        return r == MHD_YES ? 0 : -EIO;
}

int http_request_reply(HttpRequest *req, unsigned status, const char *content_type,
                       const void *body, size_t size, const char *const *headers)
{
        struct MHD_Response *resp;

        if (req->replied || req->pending)
                return -EALREADY;
        /* Answered: whoever waited on it is done with it. */
        req->on_abort = NULL;

        resp = MHD_create_response_from_buffer(size, (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return -ENOMEM;
        if (content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
                MHD_add_response_header(resp, headers[i], headers[i + 1]);

        if (!req->suspended)
                return queue(req, status, resp);

        /* Suspended: MHD wants the response queued from within the access handler, which it
         * calls again once the connection is resumed. */
        req->pending = resp;
        req->pending_status = status;
        MHD_resume_connection(req->connection);
        req->suspended = false;
        http_server_kick(req->server);
        return 0;
}

int http_request_reply_fd(HttpRequest *req, unsigned status, const char *content_type, int fd,
                          uint64_t size, const char *const *headers)
{
        struct MHD_Response *resp;

        if (req->replied || req->pending || req->suspended) {
                safe_close(fd);
                return -EALREADY;
        }
        req->on_abort = NULL;
        resp = MHD_create_response_from_fd64(size, fd);
        if (!resp) {
                safe_close(fd);
                return -ENOMEM;
        }
        if (content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
                MHD_add_response_header(resp, headers[i], headers[i + 1]);
        return queue(req, status, resp);
}

int http_request_add_log_field(HttpRequest *req, const char *format, ...)
{
        va_list ap;
        char *f;
        int r;

        if (req->n_log_fields >= ELEMENTSOF(req->log_fields))
                return -E2BIG;
        va_start(ap, format);
        r = vasprintf(&f, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        req->log_fields[req->n_log_fields++] = f;
        return 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
        HttpStream *st = cls;
        ssize_t n;

        if (!st->req)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (st->req->server->stopping)
                return MHD_CONTENT_READER_END_OF_STREAM;
        n = st->read(st->req, buf, max, st->userdata);
        if (n < 0)
                return MHD_CONTENT_READER_END_OF_STREAM;
        if (n == 0 && !st->parked) {
                /* Nothing to send yet: park the connection instead of spinning on it. */
                st->parked = true;
                MHD_suspend_connection(st->req->connection);
        }
        return n;
}

static void stream_free(void *cls)
{
        HttpStream *st = cls;

        if (st->req)
                st->req->stream = NULL;
        if (!st->done_called && st->done)
                st->done(st->userdata);
        free(st);
}

int http_request_reply_stream(HttpRequest *req, unsigned status, const char *content_type,
                              HttpStreamRead read, HttpStreamDone done, void *userdata)
{
        struct MHD_Response *resp;
        HttpStream *st;

        if (req->replied || req->pending || req->suspended) {
                if (done)
                        done(userdata);
                return -EALREADY;
        }
        st = new0(HttpStream, 1);
        if (!st) {
                if (done)
                        done(userdata);
                return -ENOMEM;
        }
        *st = (HttpStream){ .req = req, .read = read, .done = done, .userdata = userdata };
        /* From here on, the response's end (stream_free) calls done(), also if queueing fails. */
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, st,
                                                 stream_free);
        if (!resp) {
                stream_free(st);
                return -ENOMEM;
        }
        req->stream = st;
        req->on_abort = NULL;
        if (content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        return queue(req, status, resp);
}

void http_request_stream_wake(HttpRequest *req)
{
        HttpStream *st = req->stream;

        if (!st || !st->parked)
                return;
        st->parked = false;
        MHD_resume_connection(req->connection);
        http_server_kick(req->server);
}

int http_request_reply_json(HttpRequest *req, unsigned status, json_object *body)
{
        const char *text;
        size_t len;
        _cleanup_free_ char *buf = NULL;

        text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE,
                                                 &len);
        buf = malloc(len + 2);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, text, len);
        buf[len] = '\n';
        return http_request_reply(req, status, "application/json", buf, len + 1, NULL);
}

int http_request_reply_error(HttpRequest *req, unsigned status, json_object *extra,
                             const char *format, ...)
{
        _cleanup_free_ char *msg = NULL;
        json_object *o;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0) {
                json_object_put(extra);
                return -ENOMEM;
        }

        o = extra ?: json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "error", json_object_new_string(msg));
        json_object_object_add(o, "status", json_object_new_int((int) status));
        r = http_request_reply_json(req, status, o);
        json_object_put(o);
        return r;
}

static int reply_internal_error(HttpRequest *req, int error)
{
        return http_request_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                                        "internal error: %s", strerror(-error));
}

static void fill_peer(HttpRequest *req)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        strcpy(req->peer, "?");
        if (!sa)
                return;
        if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, req->peer,
                          sizeof(req->peer));
        else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, req->peer,
                          sizeof(req->peer));
}

static int body_append(HttpRequest *req, const char *data, size_t size)
{
        if (req->too_large || req->body_size + size > req->server->config.max_body_bytes) {
                /* Keep reading (and dropping) so the client gets its 413 instead of a reset. */
                req->too_large = true;
                return 0;
        }
        if (req->body_size + size + 1 > req->body_allocated) {
                size_t n = MAX(req->body_allocated * 2, req->body_size + size + 1);
                char *b = realloc(req->body, n);
                if (!b)
                        return -ENOMEM;
                req->body = b;
                req->body_allocated = n;
        }
        memcpy(req->body + req->body_size, data, size);
        req->body_size += size;
        req->body[req->body_size] = 0;
        return 0;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *connection,
                                      const char *url, const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
        HttpServer *s = cls;
        HttpRequest *req = *con_cls;
        int r;

        if (!req) {
                /* First call: headers only. */
                req = new0(HttpRequest, 1);
                if (!req)
                        return MHD_NO;
                req->server = s;
                req->connection = connection;
                req->method = method;
                req->path = strdup(url);
                if (!req->path) {
                        free(req);
                        return MHD_NO;
                }
                fill_peer(req);
                req->start_usec = now_usec(CLOCK_MONOTONIC);
                req->next = s->requests;
                if (s->requests)
                        s->requests->prev = req;
                s->requests = req;
                *con_cls = req;

                /* Refuse an announced oversized body before reading it. */
                const char *cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl && strtoull(cl, NULL, 10) > s->config.max_body_bytes) {
                        r = http_request_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                                     "request body larger than %zu bytes",
                                                     s->config.max_body_bytes);
                        return r < 0 ? MHD_NO : MHD_YES;
                }
                return MHD_YES;
        }

        if (req->pending) {
                /* Resumed after a deferred reply. */
                struct MHD_Response *resp = TAKE_PTR(req->pending);
                return queue(req, req->pending_status, resp) < 0 ? MHD_NO : MHD_YES;
        }

        if (req->replied)
                return MHD_YES;

        if (*upload_data_size > 0) {
                r = body_append(req, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return r < 0 ? MHD_NO : MHD_YES;
        }

        if (req->handled)
                return MHD_YES;
        req->handled = true;

        if (req->too_large) {
                r = http_request_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                             "request body larger than %zu bytes",
                                             s->config.max_body_bytes);
                return r < 0 ? MHD_NO : MHD_YES;
        }

        r = s->handler(req, s->userdata);
        if (r == HTTP_SUSPENDED && !req->replied && !req->pending) {
                req->suspended = true;
                MHD_suspend_connection(connection);
                return MHD_YES;
        }
        if (r < 0 && !req->replied && !req->pending)
                r = reply_internal_error(req, r);
        else if (!req->replied && !req->pending)
                r = reply_internal_error(req, -EPROTO);
        return r < 0 ? MHD_NO : MHD_YES;
}

/* One journal entry per request: what was asked, the answer, how long it took, and the fields the
 * handler added (trigger, runs). Successful reads go at debug level, so polling does not flood
 * the journal; everything that changes something, and every error, at info. */
static void request_log(HttpRequest *req, enum MHD_RequestTerminationCode toe)
{
        const char *fields[ELEMENTSOF(req->log_fields) + 5] = {};
        char f_method[32], f_status[32], f_peer[96], f_ms[48];
        uint64_t ms = (now_usec(CLOCK_MONOTONIC) - req->start_usec) / USEC_PER_MSEC;
        size_t n = 0;
        int level;

        level = req->status >= 400 || req->status == 0 || !streq_ptr(req->method, "GET")
                        ? LOG_INFO
                        : LOG_DEBUG;
        snprintf(f_method, sizeof(f_method), "HTTP_METHOD=%s", strna(req->method));
        snprintf(f_status, sizeof(f_status), "HTTP_STATUS=%u", req->status);
        snprintf(f_peer, sizeof(f_peer), "HTTP_PEER=%s", req->peer);
        snprintf(f_ms, sizeof(f_ms), "HTTP_DURATION_MS=%" PRIu64, ms);
        fields[n++] = f_method;
        fields[n++] = f_status;
        fields[n++] = f_peer;
        fields[n++] = f_ms;
        for (size_t i = 0; i < req->n_log_fields; i++)
                fields[n++] = req->log_fields[i];
        fields[n] = NULL;
        if (req->status == 0)
                log_struct(level, fields, "HTTP %s %s from %s: no answer (%s) after %" PRIu64 " ms",
                           strna(req->method), strna(req->path), req->peer,
                           toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timed out"
                           : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT  ? "client went away"
                                                                         : "connection closed",
                           ms);
        else
                log_struct(level, fields, "HTTP %s %s from %s: %u in %" PRIu64 " ms",
                           strna(req->method), strna(req->path), req->peer, req->status, ms);
}

static void completed_handler(void *cls, struct MHD_Connection *connection, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
        HttpRequest *req = *con_cls;

        if (!req)
                return;
        if (!req->replied && req->on_abort)
                req->on_abort(req, req->userdata);
        request_log(req, toe);
        request_free(req);
        *con_cls = NULL;
}

static void connection_handler(void *cls, struct MHD_Connection *connection, void **socket_context,
                               enum MHD_ConnectionNotificationCode toe)
{
        HttpServer *s = cls;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED)
                s->n_connections++;
        else if (s->n_connections > 0)
                s->n_connections--;
}

unsigned http_server_n_connections(HttpServer *s)
{
        return s->n_connections;
}

_printf_(2, 0) static void mhd_logger(void *arg, const char *fmt, va_list ap)
{
        char buf[LINE_MAX];
        size_t n;

        vsnprintf(buf, sizeof(buf), fmt, ap);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = 0;
        log_debug("HTTP: %s", buf);
}

static int rearm_timer(HttpServer *s)
{
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t when;

        if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
                when = now_usec(CLOCK_MONOTONIC) + ms * USEC_PER_MSEC;
        else
                when = USEC_INFINITY;

        if (when == USEC_INFINITY)
                return sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
        int r = sd_event_source_set_time(s->timer_source, when);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
}

static void run_mhd(HttpServer *s)
{
        if (MHD_run(s->mhd) != MHD_YES)
                log_warning("HTTP: MHD_run() failed, ignoring.");
        if (rearm_timer(s) < 0)
                log_warning("HTTP: failed to re-arm the timer, ignoring.");
}

static int io_handler(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
        run_mhd(userdata);
        return 0;
}

static int timer_handler(sd_event_source *es, uint64_t usec, void *userdata)
{
        run_mhd(userdata);
        return 0;
}

/* After a reply from outside MHD's callbacks, let MHD act on it in the next loop iteration. */
static void http_server_kick(HttpServer *s)
{
        if (!s->timer_source)
                return;
        if (sd_event_source_set_time(s->timer_source, 1) >= 0)
                (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
}

int http_server_new(sd_event *event, int listen_fd, const HttpServerConfig *config,
                    HttpHandler handler, void *userdata, HttpServer **ret)
{
        _cleanup_(http_server_freep) HttpServer *s = NULL;
        const union MHD_DaemonInfo *info;
        int r;

        /* Every connection, a waiting sync fire included, is an fd: the soft limit (1024 by
         * default) must not be what caps connections. No select() here, so raising it is safe. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max &&
            rl.rlim_cur < (rlim_t) config->max_connections + 1024) {
                rl.rlim_cur = MIN(rl.rlim_max, (rlim_t) config->max_connections + 1024);
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        log_warning_errno(errno, "Failed to raise the open file limit, ignoring: %m");
        }

        s = new0(HttpServer, 1);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->config = *config;
        s->handler = handler;
        s->userdata = userdata;

        struct MHD_OptionItem opts[] = {
                { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t) mhd_logger, s },
                { MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL },
                { MHD_OPTION_CONNECTION_LIMIT, config->max_connections, NULL },
                { MHD_OPTION_PER_IP_CONNECTION_LIMIT, config->max_connections_per_ip, NULL },
                { MHD_OPTION_CONNECTION_TIMEOUT, config->connection_timeout_sec, NULL },
                { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) completed_handler, s },
                { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t) connection_handler, s },
                { MHD_OPTION_END, 0, NULL },
        };

        s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                                  0, NULL, NULL, access_handler, s, MHD_OPTION_ARRAY, opts,
                                  MHD_OPTION_END);
        if (!s->mhd)
                return log_error_errno(EIO, "Failed to start the HTTP server.");

        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return log_error_errno(EIO, "Failed to get the HTTP server's epoll fd.");

        r = sd_event_add_io(event, &s->io_source, info->epoll_fd, EPOLLIN, io_handler, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the HTTP server's epoll fd: %m");
        (void) sd_event_source_set_description(s->io_source, "http-io");

        r = sd_event_add_time(event, &s->timer_source, CLOCK_MONOTONIC, USEC_INFINITY, 0,
                              timer_handler, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP timer: %m");
        (void) sd_event_source_set_description(s->timer_source, "http-timer");
        /* sd-event's default accuracy (250 ms) would let a connection that MHD wants to handle
         * at once (a resumed one, the next request on a kept-alive one) wait that long. */
        r = sd_event_source_set_time_accuracy(s->timer_source, 1);
        if (r < 0)
                return log_error_errno(r, "Failed to set the HTTP timer's accuracy: %m");

        r = rearm_timer(s);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the HTTP timer: %m");

        *ret = TAKE_PTR(s);
        return 0;
}

/* MHD refuses to stop with suspended connections: answer waiting requests (503), end parked
 * streams, and let MHD take the connections back before stopping it. */
static void http_server_release_suspended(HttpServer *s)
{
        bool any = false;

        s->stopping = true;
        for (HttpRequest *req = s->requests; req; req = req->next) {
                if (req->suspended) {
                        if (req->on_abort) {
                                HttpAbortHandler f = TAKE_PTR(req->on_abort);
                                f(req, req->userdata);
                        }
                        (void) http_request_reply_error(req, 503, NULL,
                                                        "arkevent is shutting down; the run goes "
                                                        "on");
                        any = true;
                } else if (req->stream && req->stream->parked) {
                        req->stream->parked = false;
                        MHD_resume_connection(req->connection);
                        any = true;
                }
        }
        if (any)
                (void) MHD_run(s->mhd);
}

HttpServer *http_server_free(HttpServer *s)
{
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->io_source);
        sd_event_source_disable_unref(s->timer_source);
        s->io_source = s->timer_source = NULL;
        if (s->mhd) {
                http_server_release_suspended(s);
                MHD_stop_daemon(s->mhd);
        }
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int http_listen(const char *address, uint16_t port, int *ret_fd)
{
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        struct sockaddr_in sa4 = { .sin_family = AF_INET, .sin_port = htons(port) };
        const struct sockaddr *sa;
        socklen_t salen;
        int one = 1;

        if (address && inet_pton(AF_INET, address, &sa4.sin_addr) == 1) {
                sa = (const struct sockaddr *) &sa4;
                salen = sizeof(sa4);
        } else if (!address || inet_pton(AF_INET6, address, &sa6.sin6_addr) == 1) {
                if (!address)
                        sa6.sin6_addr = in6addr_any;
                sa = (const struct sockaddr *) &sa6;
                salen = sizeof(sa6);
        } else
                return -EINVAL;

        fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, sa, salen) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int unhex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static char *segment_decode(const char *s, size_t n)
{
        char *r = malloc(n + 1), *p = r;
        if (!r)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%' && i + 2 < n && unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0) {
                        *p++ = (char) (unhex(s[i + 1]) * 16 + unhex(s[i + 2]));
                        i += 2;
                } else
                        *p++ = s[i];
        }
        *p = 0;
        return r;
}

bool http_path_match(const char *pattern, const char *path, char **captures, size_t n_captures)
{
        size_t k = 0;

        for (size_t i = 0; i < n_captures; i++)
                captures[i] = NULL;

        while (*pattern && *path) {
                if (streq(pattern, "{**}")) {
                        /* The rest, as libmicrohttpd gave it (already unescaped once). */
                        if (k >= n_captures)
                                goto fail;
                        captures[k] = strdup(path);
                        if (!captures[k])
                                goto fail;
                        return true;
                }
                if (startswith(pattern, "{}")) {
                        size_t n = strcspn(path, "/");
                        if (n == 0 || k >= n_captures)
                                goto fail;
                        captures[k] = segment_decode(path, n);
                        if (!captures[k])
                                goto fail;
                        k++;
                        path += n;
                        pattern += 2;
                } else if (*pattern == *path) {
                        pattern++;
                        path++;
                } else
                        goto fail;
        }
        /* A trailing slash on the request is tolerated. */
        if (*pattern == 0 && (*path == 0 || streq(path, "/")))
                return true;
fail:
        for (size_t i = 0; i < n_captures; i++) {
                free(captures[i]);
                captures[i] = NULL;
        }
        return false;
}
