/*
 * handler_proxy.c - `proxy:`, the reverse proxy's handler: the exchange's
 * side of a proxied request (see proxy.h for the parts).
 *
 * A request goes to a server the upstream's balance picks. Its head goes
 * up once the first piece of its body (or its end) is known, so that the
 * body's framing is right whatever the client spoke: the client's
 * Content-Length, else chunked, else none. The response head comes down
 * as soon as it is read, then its body a read at a time.
 *
 * Failures before anything reached the client are answered: 502 (refused,
 * reset, garbage, every server ejected) or 504 (a timeout), after
 * retrying another server (`retries` times) when the connection failed
 * or timed out before it was made, whatever the method (nothing was
 * sent: nginx's proxy_next_upstream error timeout, HAProxy's
 * conn-failure), or when it was reset before any byte of a response for
 * an idempotent request whose body has not started to go up (nginx
 * retries non_idempotent off; HAProxy's empty-response). A read timeout
 * is not retried (the server may still be acting on the request;
 * HAProxy's default), nor is garbage (nginx's and HAProxy's defaults). A
 * pooled connection the upstream closed just as it was reused is tried
 * again at no cost to the retries. A failure once the response has
 * started aborts it (exchange_send ERROR): the client never takes a
 * truncated body for a whole one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "conf/route_proxy.h"
#include "shm/shm_layout.h"
#include "worker/conn.h"
#include "worker/handler.h"
#include "worker/outq.h"
#include "worker/proxy.h"
#include "worker/proxy_header.h"
#include "worker/worker.h"

static struct timers *px_timers(const struct proxy *px) { return &px->ex->worker->timers; }

/* A tunnel has no timeout of ours: its idleness is held to the client
 * connection's deadline (keep_alive_timeout), as any tunnel's. */
static void px_arm(struct proxy *px, uint64_t ms)
{
    if (!px->tunnel)
        timer_start(px_timers(px), &px->timer, ms);
}

/* Lets go of the upstream connection: back to its pool when the
 * response and the request both ended there, else closed. */
static void px_let_go(struct proxy *px)
{
    struct upconn *uc = px->uc;
    px->uc = NULL;
    if (px->peer_busy) {
        upstream_peer_active(px->peer, -1);
        px->peer_busy = false;
    }
    if (uc == NULL)
        return;
    if (uc->message_done && uc->keep && px->body_done && px->head_sent)
        upconn_release(uc);
    else
        upconn_close(uc);
}

/* Nothing more for this exchange from here. */
static void px_end(struct proxy *px)
{
    px->done = true;
    timer_stop(px_timers(px), &px->timer);
    px_let_go(px);
    bytebuf_free(&px->buffered);
}

static void px_answer(struct proxy *px, int status)
{
    px_end(px);
    exchange_respond_error(px->ex, status);
}

static void px_attempt(struct proxy *px);

/* ---- the request going up ------------------------------------------------- */

static int64_t px_declared_length(const struct proxy *px)
{
    size_t len;
    const char *v = exchange_header(px->ex, "content-length", &len);
    if (v == NULL || len == 0 || len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* A body that ended before any byte: a declared 0 stays, a method that
 * carries a body says 0, the others say nothing. */
static int64_t px_empty_length(const struct proxy *px)
{
    enum exchange_method m = px->ex->method;
    if (px_declared_length(px) == 0 || m == METHOD_POST || m == METHOD_PUT || m == METHOD_PATCH)
        return 0;
    return -2;
}

static bool px_send_head(struct proxy *px, int64_t length)
{
    if (proxy_request_head(px, upconn_out(px->uc), length) != SK_OK) {
        log_msg(LOG_ERROR, "proxy: out of memory for a request head");
        px_answer(px, 502);
        return false;
    }
    px->chunked = length == -1;
    px->head_sent = true;
    upconn_wake(px->uc);
    return true;
}

static bool px_sending(const struct proxy *px)
{
    return !px->done && px->uc != NULL && px->uc->conn != NULL;
}

static void px_body_data(struct exchange *ex, const char *data, size_t len, void *arg)
{
    struct proxy *px = arg;
    if (!px_sending(px))
        return; /* answered already, or given up: the rest is not wanted */
    if (!px->head_sent) {
        int64_t declared = px_declared_length(px);
        if (!px_send_head(px, declared >= 0 ? declared : -1))
            return;
    }
    px->body_sent = true;
    struct outq *out = upconn_out(px->uc);
    char size[24];
    int n = px->chunked ? snprintf(size, sizeof size, "%zx\r\n", len) : 0;
    if ((n > 0 && outq_add_copy(out, size, (size_t)n) != 0) || outq_add_copy(out, data, len) != 0 ||
        (px->chunked && outq_add_copy(out, "\r\n", 2) != 0)) {
        proxy_failed(px, PROXY_FAIL_RESET);
        return;
    }
    if (out->pending_bytes >= OUTQ_HIGH_WATER && !ex->body_paused) {
        px->paused_body = true;
        exchange_pause_body(ex); /* until the upstream takes some */
    }
    upconn_wake(px->uc);
}

static int px_queue_last_chunk(struct outq *out, const struct header_field *trailers,
                               size_t count)
{
    if (outq_add_copy(out, "0\r\n", 3) != 0)
        return SK_ERROR;
    for (size_t i = 0; i < count; i++)
        if (outq_add_copy(out, trailers[i].name, trailers[i].name_len) != 0 ||
            outq_add_copy(out, ": ", 2) != 0 ||
            outq_add_copy(out, trailers[i].value, trailers[i].value_len) != 0 ||
            outq_add_copy(out, "\r\n", 2) != 0)
            return SK_ERROR;
    return outq_add_copy(out, "\r\n", 2) == 0 ? SK_OK : SK_ERROR;
}

static void px_body_end(struct exchange *ex, const struct header_field *trailers, size_t count,
                        void *arg)
{
    struct proxy *px = arg;
    (void)ex;
    px->body_done = true;
    if (!px_sending(px))
        return; /* a retry under way sends the head once connected */
    if (px->tunnel) {
        upconn_shutdown(px->uc);
        return;
    }
    if (!px->head_sent) {
        if (!px_send_head(px, px_empty_length(px)))
            return;
    } else if (px->chunked && px_queue_last_chunk(upconn_out(px->uc), trailers, count) != SK_OK) {
        proxy_failed(px, PROXY_FAIL_RESET);
        return;
    }
    px_arm(px, px->up->cfg->read_timeout_ms);
    upconn_wake(px->uc);
}

/* The protocol answers (413, 408, 400) or aborts; the upstream
 * connection, with half a request on it, cannot serve again. */
static void px_body_error(struct exchange *ex, int status, void *arg)
{
    struct proxy *px = arg;
    (void)ex, (void)status;
    if (!px->done)
        px_end(px);
}

static const struct exchange_body_reader px_reader = {px_body_data, px_body_end, px_body_error};

/* ---- buffer_request_body: the whole body before the upstream ------------- */

static void px_buffer_data(struct exchange *ex, const char *data, size_t len, void *arg)
{
    struct proxy *px = arg;
    (void)ex;
    if (px->done)
        return;
    if (px->buffered.len + len > px->cfg->buffer_request_body) {
        px_answer(px, 413); /* no upstream was contacted */
        return;
    }
    if (bytebuf_append(&px->buffered, data, len) != SK_OK)
        px_answer(px, 500);
}

/* The body is in: now the upstream (its trailer fields stay here: the
 * body goes up with a Content-Length). */
static void px_buffer_end(struct exchange *ex, const struct header_field *trailers,
                          size_t count, void *arg)
{
    struct proxy *px = arg;
    (void)ex, (void)trailers, (void)count;
    px->body_done = true;
    if (!px->done)
        px_attempt(px);
}

static const struct exchange_body_reader px_buffer_reader = {px_buffer_data, px_buffer_end,
                                                             px_body_error};

/* Starts reading the body whole; a declared length over the bound is
 * refused before a byte of it is read. */
static void px_buffer_body(struct proxy *px)
{
    int64_t declared = px_declared_length(px);
    if (declared > 0 && (uint64_t)declared > px->cfg->buffer_request_body) {
        px_answer(px, 413);
        return;
    }
    px->buffering = px->reading_body = true;
    int rc = exchange_read_body(px->ex, &px_buffer_reader, px); /* its pieces come from the loop */
    if (rc == SK_DECLINED) {
        px->body_done = true;
        px_attempt(px);
    } else if (rc != SK_OK) {
        px_answer(px, 500);
    }
}

/* A request whose body was read whole goes up in one piece, with its
 * length (a retry sends it again). */
static void px_send_buffered(struct proxy *px)
{
    size_t len = px->buffered.len;
    if (!px_send_head(px, len > 0 ? (int64_t)len : px_empty_length(px)))
        return;
    if (len > 0 && outq_add_copy(upconn_out(px->uc), px->buffered.data, len) != 0) {
        proxy_failed(px, PROXY_FAIL_RESET);
        return;
    }
    px_arm(px, px->up->cfg->read_timeout_ms);
}

/* A PROXY protocol header first on a new connection: the client's address
 * and the one it reached. The connection then carries this client only. */
static int px_send_proxy_header(struct proxy *px)
{
    struct exchange *ex = px->ex;
    struct sockaddr_storage local = {0}, none = {0};
    socklen_t len = sizeof local;
    char header[128];
    if (px->up->cfg->proxy_protocol == 0 || px->uc->reused)
        return SK_OK;
    px->uc->one_client = true;
    if (ex->conn_fd < 0 || getsockname(ex->conn_fd, (struct sockaddr *)&local, &len) != 0)
        local.ss_family = AF_UNSPEC;
    size_t n = proxy_header_write(px->up->cfg->proxy_protocol,
                                  ex->peer != NULL ? ex->peer : (struct sockaddr *)&none,
                                  (struct sockaddr *)&local, header);
    return outq_add_copy(upconn_out(px->uc), header, n) == 0 ? SK_OK : SK_ERROR;
}

void proxy_connected(struct proxy *px)
{
    struct exchange *ex = px->ex;
    px->connecting = false;
    if (px_send_proxy_header(px) != SK_OK) {
        px_answer(px, 502);
        return;
    }
    px_arm(px, px->up->cfg->send_timeout_ms);
    if (px->upgrade) { /* no body: the tunnel's bytes are read after the 101 */
        if (px_send_head(px, -2))
            px_arm(px, px->up->cfg->read_timeout_ms);
        return;
    }
    if (!px->reading_body) {
        px->reading_body = true;
        int rc = exchange_read_body(ex, &px_reader, px); /* its pieces come from the loop */
        if (rc == SK_DECLINED) {
            px->body_done = true;
            px_send_head(px, -2);
        } else if (rc != SK_OK) {
            px_answer(px, 500);
        }
        return;
    }
    if (px->buffering) {
        px_send_buffered(px);
        return;
    }
    if (px->body_done) {
        px_send_head(px, px_empty_length(px)); /* a retry of a request without a body */
        return;
    }
    if (px->paused_body) {
        px->paused_body = false;
        exchange_resume_body(ex);
    }
}

void proxy_upstream_writable(struct proxy *px)
{
    if (px->done || px->body_done)
        return;
    px_arm(px, px->up->cfg->send_timeout_ms); /* the upstream took bytes: it lives */
    if (px->paused_body && px_sending(px)) {
        px->paused_body = false;
        exchange_resume_body(px->ex);
    }
}

/* ---- failures and retries ------------------------------------------------- */

static bool px_idempotent(enum exchange_method m)
{
    return m == METHOD_GET || m == METHOD_HEAD || m == METHOD_OPTIONS || m == METHOD_TRACE ||
           m == METHOD_PUT || m == METHOD_DELETE;
}

static bool px_may_retry(const struct proxy *px, enum proxy_failure why, bool stale)
{
    if (px->got_bytes || px->body_sent)
        return false; /* the upstream may have acted, or the body is gone */
    if (stale)
        return true;
    if (px->attempts > px->up->cfg->retries)
        return false;
    /* No connection, so nothing of the request reached the server: any
     * method goes to the next one (nginx's error and timeout while
     * connecting, HAProxy's conn-failure). */
    if (why == PROXY_FAIL_CONNECT || (why == PROXY_FAIL_TIMEOUT && px->connecting))
        return true;
    /* The request went up and nothing came back: sent again only when
     * repeating it is harmless (RFC 9110 section 9.2.2). An extended
     * CONNECT goes up as a GET: as idempotent as one. */
    bool idempotent = px_idempotent(px->ex->method) || px->ex->connect_protocol != NULL;
    return why == PROXY_FAIL_RESET && idempotent;
}

void proxy_failed(struct proxy *px, enum proxy_failure why)
{
    if (px->done) {
        px_let_go(px);
        return;
    }
    uint64_t now = clock_monotonic_ms();
    /* A reused connection closed before it answered anything: the
     * upstream's keep-alive timeout raced our reuse. Not the server's
     * fault, and not a retry spent. */
    bool stale = why == PROXY_FAIL_RESET && px->reused && !px->got_bytes;
    struct upstream_peer *peer = px->peer;
    timer_stop(px_timers(px), &px->timer);
    if (px->uc != NULL)
        px->uc->keep = false;
    px_let_go(px);
    static const int counted[] = {
        [PROXY_FAIL_CONNECT] = SHM_UP_CONNECT_ERRORS, [PROXY_FAIL_TIMEOUT] = SHM_UP_TIMEOUTS,
        [PROXY_FAIL_RESET] = SHM_UP_RESETS, [PROXY_FAIL_INVALID] = SHM_UP_INVALID};
    if (why == PROXY_FAIL_LOCAL) { /* the server is blameless, and another fails alike */
        px_answer(px, 500);
        return;
    }
    if (!stale)
        upstream_peer_count(peer, counted[why]);
    if (!stale && upstream_peer_failed(peer, now))
        log_msg(LOG_WARN, "upstream '%s': server %s ejected for %llu ms", px->up->cfg->name,
                peer->cfg->url_text, (unsigned long long)px->up->cfg->fail_timeout_ms);
    if (px->started) {
        px_end(px);
        exchange_send(px->ex, NULL, 0, EXCHANGE_ERROR); /* never a truncated body as whole */
        return;
    }
    if (px_may_retry(px, why, stale)) {
        if (stale)
            px->attempts--;
        if (px->reading_body && !px->body_done && !px->ex->body_paused) {
            px->paused_body = true;
            exchange_pause_body(px->ex); /* until the next connection is up */
        }
        px_attempt(px);
        return;
    }
    px_answer(px, why == PROXY_FAIL_TIMEOUT ? 504 : 502);
}

static void px_timer_fire(struct timer *t)
{
    struct proxy *px = (struct proxy *)(void *)((char *)t - offsetof(struct proxy, timer));
    proxy_failed(px, PROXY_FAIL_TIMEOUT);
}

static void px_attempt(struct proxy *px)
{
    struct worker *w = px->ex->worker;
    struct upstream_peer *p = upstream_pick(px->up, px->ex->peer, px->peer, clock_monotonic_ms());
    if (p == NULL) {
        px_answer(px, 502); /* every server is ejected: at once, not after a timeout */
        return;
    }
    px->peer = p;
    px->peer_busy = true;
    upstream_peer_active(p, 1);
    upstream_peer_count(p, SHM_UP_REQUESTS);
    px->attempt_ms = clock_now_monotonic_ms();
    px->attempts++;
    px->head_sent = false;
    px->field_count = 0;
    px->uc = upconn_get(w, p, px);
    if (px->uc == NULL) {
        int error = errno;
        bool local = upconn_failure_is_local(error);
        if (local)
            log_limited(LOG_ERROR, error, "upstream '%s': no connection to %s", px->up->cfg->name,
                        p->cfg->url_text);
        proxy_failed(px, local ? PROXY_FAIL_LOCAL : PROXY_FAIL_CONNECT);
        return;
    }
    px->reused = px->uc->reused;
    if (px->uc->conn != NULL) {
        proxy_connected(px);
        return;
    }
    px->connecting = true;
    px_arm(px, px->up->cfg->connect_timeout_ms);
}

/* ---- the response coming down ---------------------------------------------- */

void proxy_progress(struct proxy *px)
{
    px->got_bytes = true;
    if (!px->done)
        px_arm(px, px->up->cfg->read_timeout_ms);
}

static bool px_response_drops(const struct proxy *px, const struct header_field *f)
{
    static const char *const ours[] = {"date", "server"}; /* the protocol sets its own */
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (f->name_len == strlen(ours[i]) && strncasecmp(f->name, ours[i], f->name_len) == 0)
            return true;
    return proxy_hop_by_hop(f->name, f->name_len, px->fields, px->field_count);
}

/* The upstream's response fields, less what is not passed on. */
static int proxy_response_head_fields(struct proxy *px, int status)
{
    struct exchange *ex = px->ex;
    upstream_peer_ok(px->peer);
    upstream_peer_count(px->peer, SHM_UP_RESPONSES_1XX + (status / 100 - 1));
    upstream_peer_latency(px->peer, clock_now_monotonic_ms() - px->attempt_ms);
    for (size_t i = 0; i < px->field_count; i++) {
        if (px_response_drops(px, &px->fields[i]))
            continue;
        if (exchange_push_field(ex->arena, &ex->response_headers, &ex->response_header_count,
                                &ex->response_header_capacity, &px->fields[i]) != SK_OK)
            return SK_ERROR;
    }
    if (px->cfg->via && exchange_add_header(ex, "Via", "1.1 saker") != SK_OK)
        return SK_ERROR;
    return SK_OK;
}

int proxy_response_head(struct proxy *px, int status)
{
    struct exchange *ex = px->ex;
    if (px->done)
        return SK_ERROR;
    if (ex->connect_protocol != NULL && status >= 200 && status <= 299) {
        /* Over HTTP/2 a 2xx is what opens the tunnel: an upstream that
         * answered the handshake with one did not switch. */
        px_answer(px, 502);
        return SK_ERROR;
    }
    ex->status = status;
    if (proxy_response_head_fields(px, status) != SK_OK || exchange_start(ex) != SK_OK)
        return SK_ERROR;
    px->started = true;
    return SK_OK;
}

/* Fields that frame, route or describe the body whole never come as
 * trailers (RFC 9110 section 6.5.1), nor ones saker sets itself. */
static bool px_trailer_drops(const struct proxy *px, const struct header_field *f)
{
    static const char *const never[] = {"content-length", "content-encoding", "content-type",
                                        "content-range", "host", "authorization",
                                        "set-cookie", "cache-control", "expires", "location"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (f->name_len == strlen(never[i]) && strncasecmp(f->name, never[i], f->name_len) == 0)
            return true;
    return px_response_drops(px, f);
}

int proxy_response_trailer(struct proxy *px, const struct header_field *f)
{
    struct exchange *ex = px->ex;
    if (px->done || px_trailer_drops(px, f))
        return SK_OK;
    return exchange_push_field(ex->arena, &ex->trailers, &ex->trailer_count,
                               &ex->trailer_capacity, f);
}

int proxy_response_upgrade(struct proxy *px)
{
    struct exchange *ex = px->ex;
    size_t len = 0;
    const char *proto = NULL;
    for (size_t i = 0; i < px->field_count; i++)
        if (px->fields[i].name_len == 7 && strncasecmp(px->fields[i].name, "upgrade", 7) == 0) {
            proto = px->fields[i].value;
            len = px->fields[i].value_len;
        }
    char *name = proto != NULL ? arena_strndup(ex->arena, proto, len) : NULL;
    if (px->done || name == NULL || proxy_ws_accepted(px) != SK_OK ||
        proxy_response_head_fields(px, 101) != SK_OK)
        return SK_ERROR;
    int rc = exchange_upgrade(ex, name);
    if (rc != SK_OK) { /* max_concurrent_upgraded_connections, most likely */
        px_answer(px, rc == SK_DECLINED ? 503 : 502);
        return SK_ERROR;
    }
    px->started = px->tunnel = true;
    timer_stop(px_timers(px), &px->timer); /* a tunnel's idleness is the client's deadline */
    if (exchange_read_body(ex, &px_reader, px) != SK_OK) {
        px_end(px);
        exchange_send(ex, NULL, 0, EXCHANGE_ERROR);
        return SK_ERROR;
    }
    px->reading_body = true;
    px->head_sent = true;
    return SK_OK;
}

static void px_complete(struct proxy *px)
{
    px_end(px); /* the connection goes back to its pool first */
    exchange_send(px->ex, NULL, 0, EXCHANGE_FINAL);
}

void proxy_paused(struct proxy *px)
{
    timer_stop(px_timers(px), &px->timer); /* the client's pace now, not the upstream's */
}

/* What was read goes down in one send, unless one is out already (its
 * proceed comes back here); a fresh block fills meanwhile. */
void proxy_response_flush(struct proxy *px)
{
    struct upconn *uc = px->uc;
    if (px->done || uc == NULL || !px->started || px->waiting)
        return;
    if (upconn_body_pending(uc) == 0) {
        if (uc->message_done)
            px_complete(px);
        return;
    }
    struct exchange_buf piece;
    void (*release)(void *);
    void *arg;
    upconn_lend(uc, &piece, &release, &arg);
    px->waiting = true;
    exchange_send_lent(px->ex, &piece, release, arg); /* on failure, stop follows */
}

static void px_proceed(struct exchange *ex, void *arg)
{
    struct proxy *px = arg;
    (void)ex;
    px->waiting = false;
    if (px->done || px->uc == NULL)
        return;
    proxy_response_flush(px);
    struct upconn *uc = px->uc;
    if (px->done || uc == NULL || uc->message_done || uc->conn->input_paused == false)
        return;
    px_arm(px, px->up->cfg->read_timeout_ms); /* the upstream's pace again */
    upconn_resume(uc);
}

static void px_stop(struct exchange *ex, void *arg)
{
    struct proxy *px = arg;
    (void)ex;
    if (!px->done)
        px_end(px);
}

static const struct exchange_generator px_generator = {px_proceed, px_stop};

/* An HTTP/1.1 request that asks to switch protocols (WebSocket), with no
 * body, or an HTTP/2 extended CONNECT for websocket (RFC 8441), on a
 * route that passes upgrades on. */
static bool px_wants_upgrade(const struct exchange *ex, const struct route_proxy *cfg)
{
    size_t len;
    if (ex->connect_protocol != NULL)
        return cfg->websocket && strcasecmp(ex->connect_protocol, "websocket") == 0;
    return cfg->websocket && ex->version_major == 1 && ex->version_minor >= 1 &&
           ex->method == METHOD_GET && exchange_header(ex, "upgrade", &len) != NULL &&
           proxy_connection_names(ex->headers, ex->header_count, "upgrade", 7) &&
           exchange_header(ex, "content-length", &len) == NULL &&
           exchange_header(ex, "transfer-encoding", &len) == NULL;
}

static void proxy_handle(struct exchange *ex, const struct route *route, void *state)
{
    const struct route_proxy *cfg = route->handler_config;
    struct worker *w = ex->worker;
    (void)state;
    struct proxy *px = cfg->upstream_index < w->upstreams.count
                           ? arena_alloc(ex->arena, sizeof *px) : NULL;
    if (px == NULL) {
        exchange_respond_error(ex, 500);
        return;
    }
    memset(px, 0, sizeof *px);
    px->ex = ex;
    px->route = route;
    px->cfg = cfg;
    px->up = &w->upstreams.list[cfg->upstream_index];
    px->upgrade = px_wants_upgrade(ex, cfg);
    if (ex->connect_protocol != NULL && (!px->upgrade || proxy_ws_key(px) != SK_OK)) {
        exchange_respond_error(ex, 501); /* a tunnel this route does not pass on */
        return;
    }
    timer_init(&px->timer, px_timer_fire);
    if (cfg->header_vars) { /* only then: a clock read per request */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        px->taken_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    }
    exchange_set_generator(ex, &px_generator, px);
    if (cfg->buffer_request_body > 0 && !px->upgrade)
        px_buffer_body(px);
    else
        px_attempt(px);
}

const struct handler_ops handler_proxy_ops = {
    .schema = &route_proxy_schema,
    .handle = proxy_handle,
    .reads_body = true,
};
