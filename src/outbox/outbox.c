/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <inttypes.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "build-config.h"
#include "engine/unit-start.h"
#include "model/diag.h"
#include "model/loader.h"
#include "outbox.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "shared/time-util.h"
#include "shared/token.h"

/* Transfers at once, over all runs; further due deliveries wait for one to end. */
#define OUTBOX_MAX_IN_FLIGHT 32u
/* Heads of lanes looked at per pass. */
#define OUTBOX_PUMP_BATCH 256
/* Flows of recent runs kept parsed, for their webhooks' secrets. */
#define OUTBOX_FLOW_CACHE 32

typedef struct Transfer {
        Outbox *outbox;
        int64_t id;
        int64_t run_id;
        char *webhook;
        char *url;
        char *event;
        char *body;
        unsigned attempts; /* made before this one */
        uint64_t created_usec;
        CURL *easy;
        struct curl_slist *headers;
        char errbuf[CURL_ERROR_SIZE];
} Transfer;

typedef struct SocketWatch {
        curl_socket_t fd;
        sd_event_source *source;
} SocketWatch;

typedef struct CachedFlow {
        int64_t run_id;
        Flow *flow;
} CachedFlow;

struct Outbox {
        sd_event *event;
        Store *store;
        sd_bus *bus;
        OutboxConfig config;
        char *state_dir;
        char prefix[17];
        CURLM *multi;
        sd_event_source *curl_timer; /* curl's own timeout */
        sd_event_source *wake;       /* the next delivery that is due */
        Transfer **transfers;
        size_t n_transfers;
        SocketWatch *watches;
        size_t n_watches;
        CachedFlow flows[OUTBOX_FLOW_CACHE];
        size_t next_flow;
        bool pump_requested;
        bool stopping; /* draining at shutdown: no sd-event sources any more */
};

static void outbox_pump(Outbox *o);
static void outbox_request_pump(Outbox *o);

/* ---- helpers ------------------------------------------------------------------------------ */

const char *outbox_delivery_id(Outbox *o, int64_t id, char buf[static OUTBOX_DELIVERY_ID_MAX])
{
        snprintf(buf, OUTBOX_DELIVERY_ID_MAX, "%s-%" PRIi64, o ? o->prefix : "0", id);
        return buf;
}

static void log_delivery(int level, int64_t run_id, int64_t id, const char *format, ...)
        _printf_(4, 5);
static void log_delivery(int level, int64_t run_id, int64_t id, const char *format, ...)
{
        _cleanup_free_ char *msg = NULL;
        char f1[64], f2[64];
        const char *fields[] = { f1, f2, "ARKEVENT_EVENT=webhook-delivery", NULL };
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        snprintf(f1, sizeof(f1), "ARKEVENT_RUN=%" PRIi64, run_id);
        snprintf(f2, sizeof(f2), "ARKEVENT_DELIVERY=%" PRIi64, id);
        log_struct(level, fields, "%s", msg ?: "webhook delivery");
}

static uint32_t random_u32(void)
{
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
                r = (uint32_t) now_usec(CLOCK_MONOTONIC);
        return r;
}

static int load_prefix(Outbox *o)
{
        _cleanup_free_ char *path = NULL, *text = NULL, *fresh = NULL;
        size_t n = 0;
        int r;

        if (asprintf(&path, "%s/delivery-prefix", o->state_dir) < 0)
                return -ENOMEM;
        r = read_file_capped(path, 256, &text, &n);
        while (r >= 0 && n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
                text[--n] = 0;
        if (r >= 0 && n >= 8 && n < sizeof(o->prefix)) {
                memcpy(o->prefix, text, n + 1);
                return 0;
        }
        /* Unique per install, so two machines' deliveries to one receiver never share ids. */
        r = token_generate(&fresh);
        if (r < 0)
                return r;
        fresh[sizeof(o->prefix) - 1] = 0;
        memcpy(o->prefix, fresh, sizeof(o->prefix));
        fresh[sizeof(o->prefix) - 1] = '\n';
        fresh[sizeof(o->prefix)] = 0;
        r = write_file_atomic(path, fresh, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

/* ---- flows of runs (webhook secrets) ------------------------------------------------------ */

static void flow_cache_put(Outbox *o, int64_t run_id, Flow *flow)
{
        for (size_t i = 0; i < OUTBOX_FLOW_CACHE; i++)
                if (o->flows[i].flow && o->flows[i].run_id == run_id)
                        return;
        CachedFlow *c = &o->flows[o->next_flow];
        o->next_flow = (o->next_flow + 1) % OUTBOX_FLOW_CACHE;
        flow_free(c->flow);
        c->run_id = run_id;
        c->flow = flow_ref(flow);
}

/* The flow a run was created with, as the store recorded it. */
static Flow *flow_cache_get(Outbox *o, int64_t run_id)
{
        _cleanup_(diag_done) Diagnostics diags = {};
        _cleanup_free_ char *yaml = NULL, *name = NULL;
        ResourceDoc **docs = NULL;
        size_t n_docs = 0;
        Flow *flow = NULL;
        sqlite3_stmt *st;

        for (size_t i = 0; i < OUTBOX_FLOW_CACHE; i++)
                if (o->flows[i].flow && o->flows[i].run_id == run_id)
                        return o->flows[i].flow;

        if (store_query(o->store, &st, "SELECT flow_yaml FROM runs WHERE id=?", "i", run_id) < 0)
                return NULL;
        if (sqlite3_step(st) == SQLITE_ROW)
                yaml = store_column_strdup(st, 0);
        sqlite3_reset(st);
        if (!yaml || asprintf(&name, "<run %" PRIi64 ">", run_id) < 0)
                return NULL;
        if (resource_text_parse(name, yaml, strlen(yaml), &docs, &n_docs, &diags) >= 0)
                for (size_t i = 0; i < n_docs; i++)
                        if (docs[i]->flow && !flow)
                                flow = TAKE_PTR(docs[i]->flow);
        for (size_t i = 0; i < n_docs; i++)
                resource_doc_free(docs[i]);
        free(docs);
        if (!flow)
                return NULL;
        flow_cache_put(o, run_id, flow);
        flow_free(flow);
        return flow_cache_get(o, run_id);
}

static const char *webhook_label(const Webhook *w)
{
        return w->name ?: w->url;
}

/* Reads the secret of the run's webhook; 0 with *ret NULL when it has none. */
static int webhook_secret(Outbox *o, const Transfer *t, char **ret, size_t *ret_size)
{
        Flow *flow = flow_cache_get(o, t->run_id);
        const Webhook *w = NULL;
        _cleanup_free_ char *secret = NULL;
        size_t n = 0;
        int r;

        *ret = NULL;
        *ret_size = 0;
        /* Without the run's flow it is unknown whether the webhook wants a signature: never
         * send unsigned what should be signed. */
        if (!flow)
                return -EBADMSG;
        for (size_t i = 0; i < flow->n_webhooks && !w; i++)
                if (streq(webhook_label(&flow->webhooks[i]), t->webhook) &&
                    streq(flow->webhooks[i].url, t->url))
                        w = &flow->webhooks[i];
        if (!w || !w->secret_file)
                return 0;
        r = read_file_capped(w->secret_file, 4096, &secret, &n);
        if (r < 0)
                return r;
        while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
                secret[--n] = 0;
        if (n == 0)
                return -ENODATA;
        *ret = TAKE_PTR(secret);
        *ret_size = n;
        return 0;
}

/* ---- transfers ---------------------------------------------------------------------------- */

static Transfer *transfer_free(Transfer *t)
{
        if (!t)
                return NULL;
        if (t->easy) {
                if (t->outbox && t->outbox->multi)
                        curl_multi_remove_handle(t->outbox->multi, t->easy);
                curl_easy_cleanup(t->easy);
        }
        curl_slist_free_all(t->headers);
        free(t->webhook);
        free(t->url);
        free(t->event);
        free(t->body);
        free(t);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Transfer *, transfer_free);

static void outbox_remove_transfer(Outbox *o, Transfer *t)
{
        for (size_t i = 0; i < o->n_transfers; i++)
                if (o->transfers[i] == t) {
                        o->transfers[i] = o->transfers[--o->n_transfers];
                        break;
                }
}

static bool lane_busy(Outbox *o, int64_t run_id, const char *webhook, const char *url)
{
        for (size_t i = 0; i < o->n_transfers; i++) {
                Transfer *t = o->transfers[i];
                if (t->run_id == run_id && streq(t->webhook, webhook) && streq(t->url, url))
                        return true;
        }
        return false;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        return size * nmemb;
}

/* Records the outcome of an attempt: delivered, retry later, or failed for good. */
static void transfer_record(Outbox *o, Transfer *t, long status, const char *error)
{
        uint64_t now = now_usec(CLOCK_REALTIME);
        unsigned attempts = t->attempts + 1;
        char did[OUTBOX_DELIVERY_ID_MAX];
        int r;

        (void) outbox_delivery_id(o, t->id, did);
        if (!error && status >= 200 && status < 300) {
                r = store_exec(o->store, NULL,
                               "UPDATE deliveries SET state='delivered', attempts=?, "
                               "delivered_usec=?, last_status=?, last_error=NULL WHERE id=?",
                               "iiii", (int64_t) attempts, (int64_t) now, (int64_t) status, t->id);
                if (r < 0)
                        log_error_errno(r, "Failed to record delivery %s: %m", did);
                log_delivery(LOG_INFO, t->run_id, t->id,
                             "Delivered %s of run %" PRIi64 " to webhook %s (%s) as %s: HTTP %ld "
                             "after %u attempt%s.",
                             t->event, t->run_id, t->webhook, t->url, did, status, attempts,
                             attempts == 1 ? "" : "s");
                return;
        }

        _cleanup_free_ char *why = NULL;
        if (!error && asprintf(&why, "HTTP %ld", status) < 0)
                why = NULL;
        const char *last = error ?: why ?: "HTTP error";
        uint64_t deadline = t->created_usec + o->config.max_age_usec;

        if (now >= deadline) {
                r = store_exec(o->store, NULL,
                               "UPDATE deliveries SET state='failed', attempts=?, last_status=?, "
                               "last_error=? WHERE id=?",
                               "iisi", (int64_t) attempts, (int64_t) status, last, t->id);
                if (r < 0)
                        log_error_errno(r, "Failed to record delivery %s: %m", did);
                log_delivery(LOG_WARNING, t->run_id, t->id,
                             "Giving up on %s of run %" PRIi64 " to webhook %s (%s) as %s after "
                             "%u attempts: %s.",
                             t->event, t->run_id, t->webhook, t->url, did, attempts, last);
                return;
        }

        uint64_t delay = outbox_backoff_usec(o->config.backoff_initial_usec,
                                             o->config.backoff_max_usec, attempts, random_u32());
        uint64_t next = MIN(now + delay, deadline);
        r = store_exec(o->store, NULL,
                       "UPDATE deliveries SET attempts=?, next_attempt_usec=?, last_status=?, "
                       "last_error=? WHERE id=?",
                       "iiisi", (int64_t) attempts, (int64_t) next, (int64_t) status, last, t->id);
        if (r < 0)
                log_error_errno(r, "Failed to record delivery %s: %m", did);
        log_delivery(LOG_NOTICE, t->run_id, t->id,
                     "Delivering %s of run %" PRIi64 " to webhook %s (%s) as %s failed (attempt "
                     "%u): %s; retrying in %.1fs.",
                     t->event, t->run_id, t->webhook, t->url, did, attempts, last,
                     (double) (next - now) / USEC_PER_SEC);
}

static void outbox_check_done(Outbox *o)
{
        bool done = false;
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(o->multi, &left))) {
                Transfer *t = NULL;
                long status = 0;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
                if (!t)
                        continue;
                if (msg->data.result == CURLE_OK) {
                        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
                        transfer_record(o, t, status, NULL);
                } else
                        transfer_record(o, t, 0,
                                        t->errbuf[0] ? t->errbuf
                                                     : curl_easy_strerror(msg->data.result));
                outbox_remove_transfer(o, t);
                transfer_free(t);
                done = true;
        }
        /* The next delivery of that lane may go now. */
        if (done)
                outbox_request_pump(o);
}

static int transfer_start(Outbox *o, int64_t id, int64_t run_id, const char *webhook,
                          const char *url, const char *event, unsigned attempts,
                          uint64_t created_usec)
{
        _cleanup_(transfer_freep) Transfer *t = NULL;
        _cleanup_free_ char *secret = NULL, *h = NULL;
        char did[OUTBOX_DELIVERY_ID_MAX];
        size_t secret_size = 0;
        sqlite3_stmt *st;
        Transfer **n;
        int r;

        t = new0(Transfer, 1);
        if (!t)
                return -ENOMEM;
        t->id = id;
        t->run_id = run_id;
        t->attempts = attempts;
        t->created_usec = created_usec;
        t->webhook = strdup(webhook);
        t->url = strdup(url);
        t->event = strdup(event);
        if (!t->webhook || !t->url || !t->event)
                return -ENOMEM;

        r = store_query(o->store, &st, "SELECT payload FROM deliveries WHERE id=?", "i", id);
        if (r < 0)
                return r;
        if (sqlite3_step(st) == SQLITE_ROW)
                t->body = store_column_strdup(st, 0);
        sqlite3_reset(st);
        if (!t->body)
                return -ENOENT;

        r = webhook_secret(o, t, &secret, &secret_size);
        if (r < 0) {
                /* An attempt that failed, retried like any other. */
                _cleanup_free_ char *err = NULL;
                (void) asprintf(&err, "cannot read the webhook's secret: %s", strerror(-r));
                transfer_record(o, t, 0, err ?: "cannot read the webhook's secret");
                /* Its retry time is new: the wake-up must know of it. */
                outbox_request_pump(o);
                return 0;
        }

        (void) outbox_delivery_id(o, id, did);
#define HEADER(...)                                                                               \
        do {                                                                                      \
                struct curl_slist *_l;                                                            \
                free(h);                                                                          \
                if (asprintf(&h, __VA_ARGS__) < 0) {                                              \
                        h = NULL;                                                                 \
                        return -ENOMEM;                                                           \
                }                                                                                 \
                _l = curl_slist_append(t->headers, h);                                            \
                if (!_l)                                                                          \
                        return -ENOMEM;                                                           \
                t->headers = _l;                                                                  \
        } while (0)
        HEADER("Content-Type: application/json");
        HEADER("X-Arkevent-Event: %s", event);
        HEADER("X-Arkevent-Delivery: %s", did);
        if (secret) {
                _cleanup_free_ char *sig = NULL;
                r = outbox_signature(secret, secret_size, t->body, strlen(t->body), &sig);
                if (r < 0)
                        return r;
                HEADER("X-Arkevent-Signature: %s", sig);
        }
        /* No "Expect: 100-continue" round trip: receivers answer the POST as a whole. */
        HEADER("Expect:");
#undef HEADER

        t->easy = curl_easy_init();
        if (!t->easy)
                return -ENOMEM;
        if (curl_easy_setopt(t->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(t->body)) !=
                    CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "arkevent/" PACKAGE_VERSION) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS,
                             (long) MAX(o->config.timeout_usec / USEC_PER_MSEC, 1u)) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, discard_body) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK ||
            curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t) != CURLE_OK)
                return -EINVAL;

        n = realloc(o->transfers, (o->n_transfers + 1) * sizeof(Transfer *));
        if (!n)
                return -ENOMEM;
        o->transfers = n;
        if (curl_multi_add_handle(o->multi, t->easy) != CURLM_OK)
                return -EIO;
        t->outbox = o;
        o->transfers[o->n_transfers++] = t;
        log_delivery(LOG_DEBUG, run_id, id,
                     "Sending %s of run %" PRIi64 " to webhook %s (%s) as %s, attempt %u.", event,
                     run_id, webhook, url, did, attempts + 1);
        TAKE_PTR(t);
        return 0;
}

/* ---- scheduling --------------------------------------------------------------------------- */

typedef struct Head {
        int64_t id, run_id;
        char *webhook, *url, *event;
        unsigned attempts;
        uint64_t next_usec, created_usec;
} Head;

/* Starts every lane's first pending delivery that is due, as far as the in-flight limit allows.
 * Returns when the next one not yet due is, or USEC_INFINITY. */
static uint64_t outbox_start_due(Outbox *o)
{
        uint64_t now = now_usec(CLOCK_REALTIME), next = USEC_INFINITY;
        Head heads[OUTBOX_PUMP_BATCH];
        size_t n = 0;
        sqlite3_stmt *st;

        /* The first pending delivery of each lane (a run's deliveries to one webhook), soonest
         * first. */
        if (store_query(o->store, &st,
                        "SELECT id, run_id, webhook, url, event, attempts, next_attempt_usec, "
                        "created_usec FROM deliveries d WHERE state='pending' AND NOT EXISTS "
                        "(SELECT 1 FROM deliveries e WHERE e.run_id=d.run_id AND "
                        "e.webhook=d.webhook AND e.url=d.url AND e.state='pending' AND e.id<d.id) "
                        "ORDER BY next_attempt_usec, id LIMIT ?",
                        "i", (int64_t) OUTBOX_PUMP_BATCH) < 0)
                return USEC_INFINITY;
        while (n < ELEMENTSOF(heads) && sqlite3_step(st) == SQLITE_ROW) {
                Head *h = &heads[n];
                *h = (Head){
                        .id = sqlite3_column_int64(st, 0),
                        .run_id = sqlite3_column_int64(st, 1),
                        .webhook = store_column_strdup(st, 2),
                        .url = store_column_strdup(st, 3),
                        .event = store_column_strdup(st, 4),
                        .attempts = (unsigned) sqlite3_column_int(st, 5),
                        .next_usec = (uint64_t) sqlite3_column_int64(st, 6),
                        .created_usec = (uint64_t) sqlite3_column_int64(st, 7),
                };
                if (!h->webhook || !h->url || !h->event) {
                        free(h->webhook);
                        free(h->url);
                        free(h->event);
                        continue;
                }
                n++;
        }
        sqlite3_reset(st);

        for (size_t i = 0; i < n; i++) {
                Head *h = &heads[i];

                if (lane_busy(o, h->run_id, h->webhook, h->url))
                        continue;
                if (h->next_usec > now)
                        next = MIN(next, h->next_usec);
                else if (o->n_transfers < OUTBOX_MAX_IN_FLIGHT) {
                        int r = transfer_start(o, h->id, h->run_id, h->webhook, h->url, h->event,
                                               h->attempts, h->created_usec);
                        if (r < 0) {
                                /* A failed attempt: it backs off like one, and is not tried
                                 * again at once. */
                                Transfer f = {
                                        .id = h->id,
                                        .run_id = h->run_id,
                                        .webhook = h->webhook,
                                        .url = h->url,
                                        .event = h->event,
                                        .attempts = h->attempts,
                                        .created_usec = h->created_usec,
                                };
                                _cleanup_free_ char *err = NULL;
                                if (asprintf(&err, "cannot send: %s", strerror(-r)) < 0)
                                        err = NULL;
                                transfer_record(o, &f, 0, err ?: "cannot send");
                                outbox_request_pump(o);
                        }
                }
        }
        for (size_t i = 0; i < n; i++) {
                free(heads[i].webhook);
                free(heads[i].url);
                free(heads[i].event);
        }
        return next;
}

static int on_wake(sd_event_source *s, uint64_t usec, void *userdata)
{
        outbox_pump(userdata);
        return 0;
}

static void outbox_pump(Outbox *o)
{
        uint64_t next;
        int r;

        if (o->stopping)
                return;
        next = outbox_start_due(o);
        if (next == USEC_INFINITY) {
                if (o->wake)
                        (void) sd_event_source_set_enabled(o->wake, SD_EVENT_OFF);
                return;
        }
        if (!o->wake) {
                r = sd_event_add_time(o->event, &o->wake, CLOCK_REALTIME, next, USEC_PER_MSEC,
                                      on_wake, o);
                if (r < 0) {
                        log_error_errno(r, "Failed to schedule webhook retries: %m");
                        return;
                }
                (void) sd_event_source_set_description(o->wake, "outbox-wake");
        } else
                (void) sd_event_source_set_time(o->wake, next);
        (void) sd_event_source_set_enabled(o->wake, SD_EVENT_ONESHOT);
}

static void on_pump_commit(Store *s, int error, void *userdata)
{
        Outbox *o = userdata;

        o->pump_requested = false;
        outbox_pump(o);
}

/* Deliveries are sent only once what they tell of is committed. */
static void outbox_request_pump(Outbox *o)
{
        if (o->pump_requested || o->stopping)
                return;
        o->pump_requested = true;
        if (store_on_commit(o->store, on_pump_commit, o) < 0) {
                o->pump_requested = false;
                log_oom();
        }
}

/* ---- libcurl on sd-event ------------------------------------------------------------------ */

static void outbox_socket_action(Outbox *o, curl_socket_t fd, int action)
{
        int running = 0;
        CURLMcode c = curl_multi_socket_action(o->multi, fd, action, &running);
        if (c != CURLM_OK)
                log_error("libcurl: %s", curl_multi_strerror(c));
        outbox_check_done(o);
}

static int on_curl_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        int action = 0;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        outbox_socket_action(userdata, fd, action);
        return 0;
}

static int on_curl_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        outbox_socket_action(userdata, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static SocketWatch *watch_find(Outbox *o, curl_socket_t fd)
{
        for (size_t i = 0; i < o->n_watches; i++)
                if (o->watches[i].fd == fd)
                        return &o->watches[i];
        return NULL;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        Outbox *o = userp;
        SocketWatch *w = watch_find(o, fd);
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE || o->stopping) {
                if (w) {
                        sd_event_source_disable_unref(w->source);
                        *w = o->watches[--o->n_watches];
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (w) {
                r = sd_event_source_set_io_events(w->source, events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(w->source, SD_EVENT_ON);
        } else {
                SocketWatch *n = realloc(o->watches, (o->n_watches + 1) * sizeof(SocketWatch));
                if (!n)
                        return -1;
                o->watches = n;
                w = &o->watches[o->n_watches];
                *w = (SocketWatch){ .fd = fd };
                r = sd_event_add_io(o->event, &w->source, fd, events, on_curl_io, o);
                if (r >= 0) {
                        o->n_watches++;
                        (void) sd_event_source_set_description(w->source, "outbox-socket");
                }
        }
        if (r < 0) {
                log_error_errno(r, "Failed to watch a webhook connection: %m");
                return -1;
        }
        return 0;
}

static int on_curl_timeout(CURLM *multi, long timeout_ms, void *userp)
{
        Outbox *o = userp;
        int r;

        if (o->stopping)
                return 0;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(o->curl_timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        r = sd_event_source_set_time_relative(o->curl_timer, (uint64_t) timeout_ms * USEC_PER_MSEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->curl_timer, SD_EVENT_ONESHOT);
        return r < 0 ? -1 : 0;
}

/* ---- enqueueing (the engine listener) ----------------------------------------------------- */

static bool already_enqueued(Outbox *o, int64_t run_id, int64_t activity_id, const char *event)
{
        sqlite3_stmt *st;
        bool found;

        if (store_query(o->store, &st,
                        "SELECT 1 FROM deliveries WHERE run_id=? AND event=? AND "
                        "coalesce(activity_id, 0)=? LIMIT 1",
                        "isi", run_id, event, activity_id) < 0)
                return false;
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        return found;
}

static int enqueue(Outbox *o, Run *run, int64_t activity_id, const char *event,
                   const char *payload)
{
        int64_t now = (int64_t) now_usec(CLOCK_REALTIME);
        char aid[32];
        int r;

        snprintf(aid, sizeof(aid), "%" PRIi64, activity_id);
        for (size_t i = 0; i < run->flow->n_webhooks; i++) {
                const Webhook *w = &run->flow->webhooks[i];
                int64_t id = 0;

                r = store_exec(o->store, &id,
                               "INSERT INTO deliveries(run_id, activity_id, webhook, url, event, "
                               "payload, state, attempts, next_attempt_usec, created_usec) "
                               "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                               "isssssii", run->id, activity_id > 0 ? aid : NULL,
                               webhook_label(w), w->url, event, payload, now, now);
                if (r < 0)
                        return log_error_errno(r, "Failed to enqueue %s of run %" PRIi64
                                                  " for webhook %s: %m",
                                               event, run->id, webhook_label(w));
                log_delivery(LOG_DEBUG, run->id, id,
                             "Enqueued %s of run %" PRIi64 " for webhook %s (%s).", event, run->id,
                             webhook_label(w), w->url);
        }
        flow_cache_put(o, run->id, run->flow);
        outbox_request_pump(o);
        return 0;
}

static char *activity_unit_json(Outbox *o, Activity *a)
{
        _cleanup_(json_object_putp) json_object *d = NULL;
        const char *s;

        if (!o->bus || engine_describe_unit(a, &d) < 0)
                return NULL;
        s = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
        return s ? strdup(s) : NULL;
}

static void on_activity_changed(Activity *a, void *userdata)
{
        Outbox *o = userdata;
        Run *run = a->run;
        _cleanup_free_ char *unit = NULL, *payload = NULL;
        int64_t depends_on = -1;
        int r;

        if (!activity_state_is_final(a->state) || !run->flow || run->flow->n_webhooks == 0)
                return;
        if (already_enqueued(o, run->id, a->id, OUTBOX_EVENT_ACTIVITY_COMPLETED))
                return;

        if (a->step->depends_on && a->step->depends_on[0]) {
                Step *d = flow_find_step(run->flow, a->step->depends_on[0]);
                if (d && (size_t) (d - run->flow->steps) < run->n_activities)
                        depends_on = run->activities[d - run->flow->steps].id;
        }
        unit = activity_unit_json(o, a);
        r = outbox_activity_payload(a, unit, depends_on, &payload);
        if (r < 0) {
                log_error_errno(r, "Failed to build %s of run %" PRIi64 " activity %s: %m",
                                OUTBOX_EVENT_ACTIVITY_COMPLETED, run->id, a->step->name);
                return;
        }
        (void) enqueue(o, run, a->id, OUTBOX_EVENT_ACTIVITY_COMPLETED, payload);
}

static void on_run_changed(Run *run, void *userdata)
{
        Outbox *o = userdata;
        _cleanup_free_ char *raw = NULL, *payload = NULL;
        sqlite3_stmt *st;
        int r;

        if (!run_state_is_final(run->state) || !run->flow || run->flow->n_webhooks == 0)
                return;
        if (already_enqueued(o, run->id, 0, OUTBOX_EVENT_WORKFLOW_DONE))
                return;

        /* The YAML as it was submitted (POST /workflows), else the flow's document. */
        if (store_query(o->store, &st, "SELECT raw_yaml FROM runs WHERE id=?", "i", run->id) >= 0) {
                if (sqlite3_step(st) == SQLITE_ROW)
                        raw = store_column_strdup(st, 0);
                sqlite3_reset(st);
        }
        r = outbox_workflow_payload(run, raw && *raw ? raw : NULL, &payload);
        if (r < 0) {
                log_error_errno(r, "Failed to build %s of run %" PRIi64 ": %m",
                                OUTBOX_EVENT_WORKFLOW_DONE, run->id);
                return;
        }
        (void) enqueue(o, run, 0, OUTBOX_EVENT_WORKFLOW_DONE, payload);
}

/* ---- the object --------------------------------------------------------------------------- */

int outbox_new(sd_event *event, Store *store, sd_bus *bus, const OutboxConfig *config,
               Outbox **ret)
{
        _cleanup_(outbox_freep) Outbox *o = NULL;
        int r;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(EIO, "Failed to initialize libcurl.");

        o = new0(Outbox, 1);
        if (!o)
                return -ENOMEM;
        o->event = sd_event_ref(event);
        o->store = store;
        o->bus = sd_bus_ref(bus);
        o->config = *config;
        o->state_dir = strdup(config->state_dir);
        if (!o->state_dir)
                return -ENOMEM;
        o->config.state_dir = o->state_dir;
        if (o->config.timeout_usec == 0)
                o->config.timeout_usec = 10 * USEC_PER_SEC;
        if (o->config.backoff_initial_usec == 0)
                o->config.backoff_initial_usec = USEC_PER_SEC;
        if (o->config.backoff_max_usec < o->config.backoff_initial_usec)
                o->config.backoff_max_usec = o->config.backoff_initial_usec;

        r = load_prefix(o);
        if (r < 0)
                return r;

        o->multi = curl_multi_init();
        if (!o->multi)
                return -ENOMEM;
        if (curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o) != CURLM_OK ||
            curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout) != CURLM_OK ||
            curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o) != CURLM_OK)
                return -EINVAL;

        /* libcurl's timeouts are short and exact (often "now"): 1 ms accuracy, not the default
         * 250 ms that sd-event would coalesce them to. */
        r = sd_event_add_time(event, &o->curl_timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC,
                              on_curl_timer, o);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(o->curl_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(o->curl_timer, "outbox-curl-timer");

        *ret = TAKE_PTR(o);
        return 0;
}

Outbox *outbox_free(Outbox *o)
{
        if (!o)
                return NULL;
        o->stopping = true;
        for (size_t i = 0; i < o->n_transfers; i++)
                transfer_free(o->transfers[i]);
        free(o->transfers);
        for (size_t i = 0; i < o->n_watches; i++)
                sd_event_source_disable_unref(o->watches[i].source);
        free(o->watches);
        if (o->multi)
                curl_multi_cleanup(o->multi);
        for (size_t i = 0; i < OUTBOX_FLOW_CACHE; i++)
                flow_free(o->flows[i].flow);
        sd_event_source_disable_unref(o->curl_timer);
        sd_event_source_disable_unref(o->wake);
        sd_bus_unref(o->bus);
        sd_event_unref(o->event);
        free(o->state_dir);
        free(o);
        curl_global_cleanup();
        return NULL;
}

int outbox_attach(Outbox *o, Engine *e)
{
        EngineListener l = {
                .run_changed = on_run_changed,
                .activity_changed = on_activity_changed,
                .userdata = o,
        };
        return engine_add_listener(e, &l);
}

int outbox_start(Outbox *o)
{
        unsigned n = outbox_n_pending(o);

        if (n > 0)
                log_info("%u webhook deliveries pending.", n);
        outbox_request_pump(o);
        return 0;
}

unsigned outbox_n_pending(Outbox *o)
{
        sqlite3_stmt *st;
        unsigned n = 0;

        if (!o)
                return 0;
        if (store_query(o->store, &st, "SELECT count(*) FROM deliveries WHERE state='pending'",
                        NULL) < 0)
                return o->n_transfers;
        if (sqlite3_step(st) == SQLITE_ROW)
                n = (unsigned) sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return n;
}

unsigned outbox_n_in_flight(Outbox *o)
{
        return o ? (unsigned) o->n_transfers : 0;
}

int outbox_drain(Outbox *o, uint64_t grace_usec)
{
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + grace_usec;
        unsigned aborted;

        /* The loop has ended: from here on libcurl polls its own sockets. */
        o->stopping = true;
        for (size_t i = 0; i < o->n_watches; i++)
                sd_event_source_disable_unref(o->watches[i].source);
        o->n_watches = 0;
        (void) sd_event_source_set_enabled(o->curl_timer, SD_EVENT_OFF);
        if (o->wake)
                (void) sd_event_source_set_enabled(o->wake, SD_EVENT_OFF);

        if (grace_usec > 0)
                (void) outbox_start_due(o);
        if (o->n_transfers > 0)
                log_info("Giving %zu webhook deliveries up to %.1fs to complete.", o->n_transfers,
                         (double) grace_usec / USEC_PER_SEC);

        while (o->n_transfers > 0) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                int running = 0;

                if (now >= deadline)
                        break;
                if (curl_multi_perform(o->multi, &running) != CURLM_OK)
                        break;
                outbox_check_done(o);
                /* What became due meanwhile (the next event of a lane) goes too. */
                (void) outbox_start_due(o);
                if (o->n_transfers == 0)
                        break;
                (void) curl_multi_poll(o->multi, NULL, 0,
                                       (int) MIN((deadline - now) / USEC_PER_MSEC + 1, 100u),
                                       NULL);
        }

        aborted = (unsigned) o->n_transfers;
        for (size_t i = 0; i < o->n_transfers; i++)
                transfer_free(o->transfers[i]);
        o->n_transfers = 0;
        if (aborted > 0)
                log_notice("Stopped %u webhook deliveries in flight; they are sent again at the "
                           "next start.",
                           aborted);
        return store_commit(o->store);
}
