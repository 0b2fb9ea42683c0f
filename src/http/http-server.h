/* SPDX-License-Identifier: MIT */
#pragma once

/* An HTTP/1.1 server on libmicrohttpd, driven by the sd-event loop: MHD runs in epoll mode with no
 * thread of its own; its epoll fd is an sd-event I/O source and a timer is re-armed from
 * MHD_get_timeout() after every turn. Requests are handed to one handler once their body is
 * complete; a handler may answer at once, or suspend the request and answer it later (a sync
 * fire waiting for its run), which costs no thread. */

#include <json-c/json.h>
#include <microhttpd.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

typedef struct HttpServer HttpServer;
typedef struct HttpRequest HttpRequest;

typedef struct HttpServerConfig {
        size_t max_body_bytes;
        unsigned max_connections;
        unsigned max_connections_per_ip;
        unsigned connection_timeout_sec;
} HttpServerConfig;

/* What a handler returns: 0 once it has replied, HTTP_SUSPENDED when it keeps the request to
 * answer later with http_request_reply*(), negative errno for an internal error (answered 500). */
#define HTTP_SUSPENDED 1

typedef int (*HttpHandler)(HttpRequest *req, void *userdata);
/* Called when a suspended request goes away without an answer (server shut down). */
typedef void (*HttpAbortHandler)(HttpRequest *req, void *userdata);

int http_server_new(sd_event *event, int listen_fd, const HttpServerConfig *config,
                    HttpHandler handler, void *userdata, HttpServer **ret);
HttpServer *http_server_free(HttpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_free);
unsigned http_server_n_connections(HttpServer *s);

/* Binds a listening TCP socket (used when not socket-activated). */
int http_listen(const char *address, uint16_t port, int *ret_fd);

/* Request accessors. */
const char *http_request_method(HttpRequest *req);
const char *http_request_path(HttpRequest *req);
const char *http_request_header(HttpRequest *req, const char *name);
const char *http_request_query(HttpRequest *req, const char *name);
const char *http_request_body(HttpRequest *req, size_t *ret_size);
/* Peer address as text, for logs. */
const char *http_request_peer(HttpRequest *req);
void http_request_set_userdata(HttpRequest *req, void *userdata, HttpAbortHandler on_abort);
void *http_request_get_userdata(HttpRequest *req);

/* Answer a request, now (inside the handler) or later (after HTTP_SUSPENDED). The body is
 * copied. Returns 0 or negative errno. */
int http_request_reply(HttpRequest *req, unsigned status, const char *content_type,
                       const void *body, size_t size, const char *const *headers);
/* Answers with size bytes of the file fd (taken, closed once sent), now (inside the handler). */
int http_request_reply_fd(HttpRequest *req, unsigned status, const char *content_type, int fd,
                          uint64_t size, const char *const *headers);
/* Answers with the JSON text of body (a trailing newline is added). */
int http_request_reply_json(HttpRequest *req, unsigned status, json_object *body);
/* Answers {"error": message, "status": status}, plus extra fields if given (taken). */
int http_request_reply_error(HttpRequest *req, unsigned status, json_object *extra,
                             const char *format, ...) _printf_(4, 5);

/* Adds a "FIELD=value" journal field (e.g. ARKEVENT_TRIGGER=ns/name, ARKEVENT_RUN=12) to the
 * request's access log entry, written when the request ends. */
int http_request_add_log_field(HttpRequest *req, const char *format, ...) _printf_(2, 3);

/* A streamed answer (chunked): read() fills buf with up to max bytes and returns how many, 0 when
 * it has nothing yet (the connection is parked until http_request_stream_wake()), or -1 at the
 * end of the stream. done() is called once the connection is gone. */
typedef ssize_t (*HttpStreamRead)(HttpRequest *req, char *buf, size_t max, void *userdata);
typedef void (*HttpStreamDone)(void *userdata);
/* userdata is taken: done() is called exactly once, also when this fails. */
int http_request_reply_stream(HttpRequest *req, unsigned status, const char *content_type,
                              HttpStreamRead read, HttpStreamDone done, void *userdata);
/* New data (or the end) is there for a streamed answer: let it go out. */
void http_request_stream_wake(HttpRequest *req);

/* Matches path against a pattern such as "/triggers/{}/{}/fire": each "{}" matches one
 * non-empty segment, copied (URL-decoded) into captures[i]; a final "{**}" matches the non-empty
 * rest of the path, slashes included. Returns true on a match. */
bool http_path_match(const char *pattern, const char *path, char **captures, size_t n_captures);
