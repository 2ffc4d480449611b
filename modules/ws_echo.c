/*
 * ws_echo.c - a WebSocket echo server (RFC 6455) on saker's tunnel:
 * the handshake answered with saker_exchange_upgrade, then every frame
 * the client sends comes back (text and binary as they came, fragments
 * included; a ping gets its pong; a close is answered with the same
 * close, and the connection ends).
 *
 *   - path: /ws
 *     module: { handler: ws_echo, max_frame: 1MiB }
 *
 * Output is one send at a time: while one waits for its proceed, what
 * the next frames produce gathers in `pending` and the client's bytes
 * are paused, so a client that does not read holds at most one frame's
 * worth here.
 */
#include <stdlib.h>
#include <string.h>

#include <saker/module.h>

struct ws_options {
    uint64_t max_frame;
};

static const struct saker_option ws_options[] = {
    {"max_frame", SAKER_OPTION_SIZE, offsetof(struct ws_options, max_frame), "1MiB", false},
    {NULL, 0, 0, NULL, false},
};

struct bytes {
    uint8_t *data;
    size_t len, size;
};

struct ws {
    saker_exchange *ex;
    uint64_t max_frame;
    struct bytes in;      /* bytes of a frame not complete yet */
    struct bytes sending; /* the send in flight: valid until proceed */
    struct bytes pending; /* frames made meanwhile */
    bool waiting, closing, done;
};

static int bytes_add(struct bytes *b, const void *data, size_t len)
{
    if (b->size - b->len < len) {
        size_t size = b->size ? b->size : 4096;
        while (size - b->len < len)
            size *= 2;
        uint8_t *grown = realloc(b->data, size);
        if (grown == NULL)
            return SAKER_ERROR;
        b->data = grown, b->size = size;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return SAKER_OK;
}

static void ws_free(struct ws *s)
{
    free(s->in.data), free(s->sending.data), free(s->pending.data);
    memset(&s->in, 0, sizeof s->in);
    memset(&s->sending, 0, sizeof s->sending);
    memset(&s->pending, 0, sizeof s->pending);
}

/* The last send: its bytes must live until the exchange ends. */
static void ws_finish(struct ws *s, enum saker_send how)
{
    struct saker_buf piece = {NULL, 0};
    if (how == SAKER_SEND_FINAL && s->pending.len > 0) {
        void *copy = saker_exchange_alloc(s->ex, s->pending.len);
        if (copy != NULL)
            memcpy(copy, s->pending.data, s->pending.len);
        piece = (struct saker_buf){copy, copy != NULL ? s->pending.len : 0};
    }
    s->done = true;
    ws_free(s);
    saker_exchange_send(s->ex, &piece, piece.len ? 1 : 0, how);
}

static void ws_flush(struct ws *s)
{
    if (s->waiting || s->done)
        return;
    if (s->closing) {
        ws_finish(s, SAKER_SEND_FINAL);
        return;
    }
    if (s->pending.len == 0) {
        saker_exchange_resume_body(s->ex);
        return;
    }
    struct bytes swap = s->sending;
    s->sending = s->pending;
    s->pending = swap;
    s->pending.len = 0;
    s->waiting = true;
    struct saker_buf piece = {s->sending.data, s->sending.len};
    saker_exchange_pause_body(s->ex); /* until the client has taken it */
    saker_exchange_send(s->ex, &piece, 1, SAKER_SEND_MORE);
}

static int ws_reply(struct ws *s, const struct saker_ws_frame *f)
{
    unsigned op = f->opcode == SAKER_WS_PING ? SAKER_WS_PONG : f->opcode;
    uint8_t head[10];
    size_t n = saker_ws_frame_head(head, op, f->fin, f->len);
    if (bytes_add(&s->pending, head, n) != SAKER_OK ||
        bytes_add(&s->pending, f->payload, (size_t)f->len) != SAKER_OK)
        return SAKER_ERROR;
    if (f->opcode == SAKER_WS_CLOSE)
        s->closing = true; /* section 5.5.1: echo the close, then end */
    return SAKER_OK;
}

/* Every complete frame in s->in, answered into pending. */
static int ws_frames(struct ws *s)
{
    size_t at = 0;
    while (!s->closing && at < s->in.len) {
        struct saker_ws_frame f;
        size_t used;
        int rc = saker_ws_parse(s->in.data + at, s->in.len - at, s->max_frame, &f, &used);
        if (rc == SAKER_DECLINED)
            break;
        if (rc != SAKER_OK || ws_reply(s, &f) != SAKER_OK)
            return SAKER_ERROR;
        at += used;
    }
    memmove(s->in.data, s->in.data + at, s->in.len - at);
    s->in.len -= at;
    return SAKER_OK;
}

static void ws_data(saker_exchange *ex, const void *data, size_t len, void *arg)
{
    struct ws *s = arg;
    (void)ex;
    if (s->done || s->closing)
        return; /* nothing is read after a close */
    if (bytes_add(&s->in, data, len) != SAKER_OK || ws_frames(s) != SAKER_OK) {
        ws_finish(s, SAKER_SEND_ERROR); /* a frame a server must refuse: drop it */
        return;
    }
    ws_flush(s);
}

static void ws_end(saker_exchange *ex, void *arg)
{
    struct ws *s = arg;
    (void)ex;
    s->closing = true; /* the client half-closed without a close frame */
    ws_flush(s);
}

static void ws_error(saker_exchange *ex, int status, void *arg)
{
    (void)ex, (void)status, (void)arg; /* saker aborts the tunnel; stop follows */
}

static void ws_proceed(saker_exchange *ex, void *arg)
{
    struct ws *s = arg;
    (void)ex;
    s->waiting = false;
    ws_flush(s);
}

static void ws_stop(saker_exchange *ex, void *arg)
{
    (void)ex;
    ws_free(arg);
}

static const struct saker_body_reader ws_reader = {ws_data, ws_end, ws_error};
static const struct saker_generator ws_generator = {ws_proceed, ws_stop};

static int ws_init(saker_worker *w, const void *options, void *module_state, void **state,
                   saker_err *err)
{
    (void)w, (void)module_state, (void)err;
    *state = (void *)options;
    return SAKER_OK;
}

/* Section 4.2.1: a GET with Upgrade: websocket, version 13 and a key. */
static const char *ws_key(saker_exchange *ex, size_t *len)
{
    size_t n;
    const char *version = saker_exchange_header(ex, "Sec-WebSocket-Version", &n);
    if (strcmp(saker_exchange_method(ex), "GET") != 0 || version == NULL || n != 2 ||
        memcmp(version, "13", 2) != 0)
        return NULL;
    return saker_exchange_header(ex, "Sec-WebSocket-Key", len);
}

static void ws_handle(saker_exchange *ex, void *state)
{
    const struct ws_options *o = state;
    size_t key_len = 0;
    const char *key = ws_key(ex, &key_len);
    char accept[29];
    if (key == NULL || saker_ws_accept(key, key_len, accept) != SAKER_OK) {
        saker_exchange_add_header(ex, "Sec-WebSocket-Version", "13");
        saker_exchange_respond(ex, 426, "a WebSocket endpoint\n", 21);
        return;
    }
    struct ws *s = saker_exchange_alloc(ex, sizeof *s);
    if (s == NULL) {
        saker_exchange_respond_error(ex, 500);
        return;
    }
    memset(s, 0, sizeof *s);
    s->ex = ex;
    s->max_frame = o->max_frame;
    saker_exchange_defer(ex, &ws_generator, s);
    saker_exchange_add_header(ex, "Sec-WebSocket-Accept", accept);
    int rc = saker_exchange_upgrade(ex, "websocket");
    if (rc != SAKER_OK) { /* HTTP/2, or max_concurrent_upgraded_connections */
        saker_exchange_respond_error(ex, rc == SAKER_DECLINED ? 503 : 500);
        return;
    }
    if (saker_exchange_read_body(ex, &ws_reader, s) != SAKER_OK)
        ws_finish(s, SAKER_SEND_ERROR);
}

static const struct saker_handler ws_handlers[] = {
    {.name = "ws_echo", .options = ws_options, .config_size = sizeof(struct ws_options),
     .init = ws_init, .handle = ws_handle},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "ws_echo",
    .handlers = ws_handlers,
};
