/*
 * proxy_conn.c - connections to upstream servers; see proxy.h.
 *
 * A connection is made with a non-blocking connect whose writability is
 * watched by its own event (connect errors are then told apart from
 * resets, for the 502's reason and for retries); once connected it is an
 * outbound struct conn (conn_start) speaking the client side of
 * HTTP/1.1, llhttp in response mode. Idle connections wait in their
 * server's pool with reading on, so an upstream that closes one (its own
 * keep-alive timeout) is seen at once and the connection leaves the pool
 * before a request could be sent on it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/spare.h"
#include "worker/conn.h"
#include "worker/conn_tls.h"
#include "worker/tls.h"
#include "worker/proxy.h"
#include "worker/worker.h"

static const struct conn_protocol upconn_protocol;
static const llhttp_settings_t upconn_settings;

static struct upconn *upconn_of(llhttp_t *parser) { return parser->data; }

/* ---- body buffers ------------------------------------------------------------ */

/* A response body is read into blocks of PROXY_READ_AHEAD bytes, which
 * the client's output queue references until sent (exchange_send_lent):
 * the bytes leave from where the upstream's read put them. Blocks come
 * back to a per-process list (as outq's buffers do): a large body would
 * otherwise fault in fresh ones every time. Idle connections hold none. */
#define SPARE_BLOCKS 16
static struct spare_list spare_blocks = {.keep = SPARE_BLOCKS};

static void buffer_take(struct upconn *uc)
{
    struct bytebuf *b = &uc->body;
    if (b->data != NULL)
        return;
    b->data = spare_take(&spare_blocks, PROXY_READ_AHEAD);
    b->size = b->data != NULL ? PROXY_READ_AHEAD : 0;
    b->len = uc->body_start = 0;
}

static void buffer_give(struct upconn *uc)
{
    spare_give(&spare_blocks, uc->body.data, uc->body.size == PROXY_READ_AHEAD);
    uc->body = (struct bytebuf){0};
    uc->body_start = 0;
}

static void block_release(void *data) { spare_give(&spare_blocks, data, true); }

void upconn_lend(struct upconn *uc, struct exchange_buf *piece, void (**release)(void *),
                 void **arg)
{
    piece->base = uc->body.data + uc->body_start;
    piece->len = uc->body.len - uc->body_start;
    *release = uc->body.size == PROXY_READ_AHEAD ? block_release : free; /* free: it grew */
    *arg = uc->body.data;
    uc->body = (struct bytebuf){0};
    uc->body_start = 0;
}

size_t upconn_body_pending(const struct upconn *uc) { return uc->body.len - uc->body_start; }

/* Body bytes into uc->body: in place when they were read there, else
 * copied. The first piece of a block starts where it lies (after the
 * response head that came in the same read); later ones after a gap (a
 * chunked body's framing) move down to join the others. */
static int upconn_keep_bytes(struct upconn *uc, const char *at, size_t len)
{
    struct bytebuf *b = &uc->body;
    if (b->data != NULL && at >= b->data + b->len && at < b->data + b->size) {
        if (uc->body_start == b->len)
            uc->body_start = b->len = (size_t)(at - b->data); /* nothing kept yet */
        else if (at != b->data + b->len)
            memmove(b->data + b->len, at, len);
        b->len += len;
        return SK_OK;
    }
    buffer_take(uc);
    return bytebuf_append(b, at, len);
}

void upconn_free_spares(void)
{
    while (spare_blocks.count > 0)
        free(spare_blocks.items[--spare_blocks.count]);
}

/* ---- the pool ------------------------------------------------------------ */

static void pool_remove(struct upconn *uc)
{
    struct upstream_peer *p = uc->peer;
    if (!uc->pooled)
        return;
    if (uc->prev != NULL)
        uc->prev->next = uc->next;
    else
        p->idle = uc->next;
    if (uc->next != NULL)
        uc->next->prev = uc->prev;
    uc->next = uc->prev = NULL;
    uc->pooled = false;
    p->up->idle_count--;
    upstream_peer_idle(p, -1);
}

static void pool_add(struct upconn *uc)
{
    struct upstream_peer *p = uc->peer;
    uc->prev = NULL;
    uc->next = p->idle;
    if (p->idle != NULL)
        p->idle->prev = uc;
    p->idle = uc;
    uc->pooled = true;
    uc->idle_since_ms = clock_monotonic_ms();
    uc->conn->deadline_ms = uc->idle_since_ms + p->up->cfg->idle_timeout_ms;
    p->up->idle_count++;
    upstream_peer_idle(p, 1);
}

static void upconn_reset_parser(struct upconn *uc)
{
    llhttp_init(&uc->parser, HTTP_RESPONSE, &upconn_settings);
    uc->parser.data = uc;
    uc->field.len = 0;
    uc->in_value = false;
    uc->head_bytes = 0;
    uc->got_bytes = uc->message_done = false;
    uc->keep = true;
}

/* ---- connecting ---------------------------------------------------------- */

static void upconn_free(struct upconn *uc)
{
    bytebuf_free(&uc->field);
    buffer_give(uc);
    free(uc);
}

static void upconn_established(struct upconn *uc, struct worker *w)
{
    event_del(&uc->connect_event);
    uc->conn = conn_start(w, uc->fd, &upconn_protocol, uc);
    if (uc->conn == NULL) { /* fd closed */
        struct proxy *px = uc->px;
        upconn_free(uc);
        px->uc = NULL;
        proxy_failed(px, PROXY_FAIL_CONNECT);
        return;
    }
    uc->conn->deadline_ms = 0; /* the proxy's timers hold a busy connection */
    const struct upstream *up = uc->peer->up;
    if (up->tls != NULL && uc->peer->cfg->url.scheme == URL_SCHEME_HTTPS) {
        const char *name = up->cfg->tls_server_name ? up->cfg->tls_server_name
                                                    : uc->peer->cfg->url.host;
        SSL *ssl = tls_client_new(up->tls, uc->fd, name);
        if (ssl == NULL || conn_tls_connect(uc->conn, ssl) != SK_OK) {
            conn_close(uc->conn); /* its release tells the proxy */
            return;
        }
    }
    proxy_connected(uc->px); /* the request queues behind the handshake */
}

static void on_connected(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *uc = arg;
    int error = 0;
    socklen_t len = sizeof error;
    (void)what;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
        error = errno;
    if (error == 0) {
        upconn_established(uc, uc->px->ex->worker);
        return;
    }
    log_msg(LOG_DEBUG, "upstream %s: connect() failed: %s", uc->peer->cfg->url_text,
            strerror(error));
    struct proxy *px = uc->px;
    event_del(&uc->connect_event);
    close(uc->fd);
    upconn_free(uc);
    px->uc = NULL;
    proxy_failed(px, PROXY_FAIL_CONNECT);
}

static int upconn_socket(const struct upstream_server_config *s)
{
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1; /* errno: the proxy logs it, limited (a shortage repeats) */
    int one = 1;
    if (s->addr.ss_family != AF_UNIX &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        log_errno(LOG_WARN, errno, "setsockopt(TCP_NODELAY)");
    return fd;
}

/* A new connection; NULL when it failed at once, with errno saying why
 * (upconn_failure_is_local tells whose fault it was). */
static struct upconn *upconn_connect(struct worker *w, struct upstream_peer *p,
                                     struct proxy *px)
{
    const struct upstream_server_config *s = p->cfg;
    struct upconn *uc = calloc(1, sizeof *uc);
    int fd = uc != NULL ? upconn_socket(s) : -1;
    if (fd < 0) {
        int saved = uc != NULL ? errno : ENOMEM;
        free(uc);
        errno = saved;
        return NULL;
    }
    uc->fd = fd;
    uc->peer = p;
    uc->px = px;
    upconn_reset_parser(uc);
    event_assign(&uc->connect_event, w->base, fd, EV_WRITE, on_connected, uc);
    if (connect(fd, (const struct sockaddr *)&s->addr, s->addr_len) == 0) {
        /* At once (a Unix socket): still told from the loop, so the
         * proxy hears of a connection the same way every time. */
        event_add(&uc->connect_event, NULL);
        event_active(&uc->connect_event, EV_WRITE, 1);
        return uc;
    }
    if (errno != EINPROGRESS) { /* a Unix socket's EAGAIN: its backlog is full */
        int saved = errno;
        log_errno(LOG_DEBUG, errno, "upstream %s: connect()", s->url_text);
        close(fd);
        upconn_free(uc);
        errno = saved;
        return NULL;
    }
    event_add(&uc->connect_event, NULL);
    return uc;
}

bool upconn_failure_is_local(int error)
{
    /* Out of descriptors, buffers, memory or local ports: the server was
     * never reached, and another would fail the same way (nginx answers
     * these 500 without counting them against the server). */
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM ||
           error == EADDRNOTAVAIL;
}

struct upconn *upconn_get(struct worker *w, struct upstream_peer *p, struct proxy *px)
{
    struct upconn *uc = p->idle;
    if (uc == NULL)
        return upconn_connect(w, p, px);
    pool_remove(uc);
    uc->px = px;
    uc->reused = true;
    uc->conn->deadline_ms = 0;
    upconn_reset_parser(uc);
    return uc;
}

void upconn_release(struct upconn *uc)
{
    uc->px = NULL;
    buffer_give(uc); /* an idle connection holds no buffer */
    struct upstream *up = uc->peer->up;
    if (!uc->keep || uc->one_client || uc->conn == NULL || up->idle_count >= up->cfg->max_idle ||
        uc->conn->closed || uc->conn->closing || uc->conn->worker->draining) {
        upconn_close(uc);
        return;
    }
    upconn_reset_parser(uc);
    conn_pause_input(uc->conn, false); /* an idle one reads: a close is seen at once */
    pool_add(uc);
}

void upconn_close(struct upconn *uc)
{
    uc->px = NULL;
    if (uc->conn != NULL) {
        conn_close(uc->conn); /* freed at its release */
        return;
    }
    event_del(&uc->connect_event); /* still connecting */
    close(uc->fd);
    upconn_free(uc);
}

struct outq *upconn_out(struct upconn *uc)
{
    return &uc->conn->out;
}

void upconn_wake(struct upconn *uc)
{
    conn_wake(uc->conn);
}

void upconn_resume(struct upconn *uc)
{
    conn_pause_input(uc->conn, false);
}

void upconn_shutdown(struct upconn *uc)
{
    uc->shut_owed = true;
    conn_wake(uc->conn);
}

/* ---- the response, through llhttp --------------------------------------- */

/* A response head larger than a request head may be is refused (502):
 * the limits on what saker reads apply whoever sends it. */
static bool head_over_limit(struct upconn *uc, size_t len)
{
    uc->head_bytes += len;
    return uc->px == NULL ||
           uc->head_bytes > uc->px->ex->worker->config->limits.max_request_headers_total_size;
}

static int on_header_field(llhttp_t *parser, const char *at, size_t len)
{
    struct upconn *uc = upconn_of(parser);
    if (head_over_limit(uc, len) || bytebuf_append(&uc->field, at, len) != SK_OK)
        return -1;
    uc->name_len += len;
    return 0;
}

static int on_header_value(llhttp_t *parser, const char *at, size_t len)
{
    struct upconn *uc = upconn_of(parser);
    return head_over_limit(uc, len) || bytebuf_append(&uc->field, at, len) != SK_OK ? -1 : 0;
}

static int on_header_value_complete(llhttp_t *parser)
{
    struct upconn *uc = upconn_of(parser);
    struct proxy *px = uc->px;
    struct arena *arena = px->ex->arena;
    size_t value_len = uc->field.len - uc->name_len;
    struct header_field f = {
        .name = arena_strndup(arena, uc->field.data, uc->name_len),
        .name_len = uc->name_len,
        .value = arena_strndup(arena, uc->field.data + uc->name_len, value_len),
        .value_len = value_len,
    };
    uc->field.len = uc->name_len = 0;
    if (f.name == NULL || f.value == NULL)
        return -1;
    if (px->started) /* after the last chunk: a trailer field */
        return proxy_response_trailer(px, &f) == SK_OK ? 0 : -1;
    return exchange_push_field(arena, &px->fields, &px->field_count, &px->field_capacity, &f) ==
                   SK_OK ? 0 : -1;
}

static int on_headers_complete(llhttp_t *parser)
{
    struct upconn *uc = upconn_of(parser);
    int status = parser->status_code;
    if (status < 100 || status > 599)
        return -1; /* no status HTTP defines: garbage, 502 */
    if (status == 101) /* 2: no body, and llhttp stops at the switch */
        return uc->px->upgrade && proxy_response_upgrade(uc->px) == SK_OK ? 2 : -1;
    if (status >= 100 && status < 200)
        return 0; /* interim (100 Continue, 103): dropped at its end */
    if (proxy_response_head(uc->px, status) != SK_OK)
        return -1;
    return uc->px->ex->method == METHOD_HEAD ? 1 : 0; /* 1: no body follows */
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    return upconn_keep_bytes(upconn_of(parser), at, len) == SK_OK ? 0 : -1;
}

static int on_message_complete(llhttp_t *parser)
{
    struct upconn *uc = upconn_of(parser);
    if (parser->status_code == 101)
        return 0; /* the tunnel follows */
    if (parser->status_code >= 100 && parser->status_code < 200) {
        uc->px->field_count = 0; /* the real response follows */
        uc->head_bytes = 0;
        return 0;
    }
    uc->message_done = true;
    uc->keep = llhttp_should_keep_alive(parser);
    return HPE_PAUSED; /* anything after it is not ours to read */
}

static const llhttp_settings_t upconn_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the connection's protocol ----------------------------------------- */

/* Reading stops once enough waits for the client (its proceed resumes). */
static void upconn_read_ahead(struct upconn *uc)
{
    if (uc->body.len >= PROXY_READ_AHEAD) {
        conn_pause_input(uc->conn, true);
        proxy_paused(uc->px);
    }
}

/* What the upstream sends through a tunnel goes down as it comes. */
static void upconn_tunnel_bytes(struct upconn *uc, const char *data, size_t len)
{
    if (len > 0 && upconn_keep_bytes(uc, data, len) != SK_OK) {
        proxy_failed(uc->px, PROXY_FAIL_RESET);
        return;
    }
    upconn_read_ahead(uc);
    proxy_response_flush(uc->px);
}

static void upconn_feed(struct conn *c, const char *data, size_t len)
{
    struct upconn *uc = c->proto_state;
    struct proxy *px = uc->px;
    if (px == NULL || uc->message_done) { /* bytes nobody asked for: not HTTP we know */
        uc->keep = false;
        conn_close(c);
        return;
    }
    uc->got_bytes = true;
    proxy_progress(px);
    if (uc->tunnel) {
        upconn_tunnel_bytes(uc, data, len);
        return;
    }
    llhttp_errno_t e = llhttp_execute(&uc->parser, data, len);
    if (uc->px != px)
        return; /* the proxy let go of it meanwhile */
    if (e == HPE_PAUSED_UPGRADE) {
        const char *rest = llhttp_get_error_pos(&uc->parser);
        uc->tunnel = true;
        uc->keep = false;
        c->duplex = true; /* both ways at once, each paused by its reader */
        upconn_tunnel_bytes(uc, rest, (size_t)(data + len - rest));
        return;
    }
    if (e == HPE_PAUSED && llhttp_get_error_pos(&uc->parser) != data + len)
        uc->keep = false; /* more than one response: never reuse it */
    if (e != HPE_OK && e != HPE_PAUSED) {
        log_msg(LOG_DEBUG, "upstream %s: bad response: %s (%s)", uc->peer->cfg->url_text,
                llhttp_errno_name(e), llhttp_get_error_reason(&uc->parser));
        uc->keep = false;
        proxy_failed(px, PROXY_FAIL_INVALID);
        return;
    }
    upconn_read_ahead(uc);
    proxy_response_flush(px);
}

/* A response's bytes are read into its body block (see upconn_keep_bytes);
 * an idle connection's, into the worker's buffer. */
static char *upconn_read_into(struct conn *c, size_t *len)
{
    struct upconn *uc = c->proto_state;
    if (uc->px == NULL || uc->message_done)
        return NULL;
    buffer_take(uc);
    if (uc->body.data == NULL || uc->body.len >= uc->body.size)
        return NULL;
    *len = uc->body.size - uc->body.len;
    return uc->body.data + uc->body.len;
}

static enum conn_owed upconn_produce(struct conn *c)
{
    struct upconn *uc = c->proto_state;
    if (uc->shut_owed && outq_empty(&c->out)) {
        uc->shut_owed = false;
        shutdown(c->fd, SHUT_WR); /* the client's half-close, passed on */
    }
    if (uc->px == NULL)
        return CONN_OWES_NOTHING;
    if (c->out.pending_bytes >= OUTQ_HIGH_WATER)
        return uc->px->paused_body ? CONN_OWES_MORE : CONN_OWES_LATER; /* MORE: ask again */
    proxy_upstream_writable(uc->px);
    return CONN_OWES_LATER;
}

static bool upconn_idle(struct conn *c)
{
    return ((struct upconn *)c->proto_state)->px == NULL;
}

static uint64_t upconn_deadline(struct conn *c, uint64_t now_ms)
{
    struct upconn *uc = c->proto_state;
    (void)now_ms;
    return uc->pooled ? uc->idle_since_ms + uc->peer->up->cfg->idle_timeout_ms : 0;
}

static void upconn_tick(struct conn *c, uint64_t now_ms, bool expired)
{
    struct upconn *uc = c->proto_state;
    (void)now_ms;
    if (expired && uc->pooled)
        conn_close(c); /* idle_timeout */
}

static void upconn_drain(struct conn *c)
{
    struct upconn *uc = c->proto_state;
    if (uc->pooled)
        conn_close(c); /* a draining worker keeps nothing for later */
}

/* The upstream closed its side: the end of a body read until close, or
 * of a connection it will not keep (the pool loses it now). */
static bool upconn_eof(struct conn *c)
{
    struct upconn *uc = c->proto_state;
    struct proxy *px = uc->px;
    uc->keep = false;
    if (px != NULL && uc->tunnel && c->peer_reset)
        return false; /* not an end: the close fails the tunnel (a reset, CONNECT_ERROR) */
    if (px != NULL && uc->tunnel) { /* the upstream's end of the tunnel */
        uc->message_done = true;
        proxy_response_flush(px);
        return false;
    }
    if (px == NULL || uc->message_done || !uc->got_bytes)
        return false;
    llhttp_finish(&uc->parser);
    if (uc->px == px && uc->message_done)
        proxy_response_flush(px);
    return false;
}

static void upconn_proto_free(struct conn *c)
{
    struct upconn *uc = c->proto_state;
    struct proxy *px = uc->px;
    pool_remove(uc);
    if (px != NULL) {
        uc->px = NULL;
        px->uc = NULL;
        proxy_failed(px, PROXY_FAIL_RESET);
    }
    upconn_free(uc);
    c->proto_state = NULL;
}

static const struct conn_protocol upconn_protocol = {
    .name = "upstream",
    .feed = upconn_feed,
    .read_into = upconn_read_into,
    .produce = upconn_produce,
    .idle = upconn_idle,
    .deadline = upconn_deadline,
    .tick = upconn_tick,
    .drain = upconn_drain,
    .eof = upconn_eof,
    .free = upconn_proto_free,
};
