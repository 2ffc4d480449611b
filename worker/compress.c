/*
 * compress.c - the compression filter; see compress.h.
 */
#include "worker/compress.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "conf/config.h"
#include "shm/shm.h"
#include "worker/compress_codec.h"
#include "worker/compress_negotiate.h"
#include "worker/exchange_filter.h"
#include "worker/request.h"
#include "worker/worker.h"

#define COMPRESS_OUT_SIZE (16 * 1024)
#define COMPRESS_IN_PIECES 4

struct compress_filter {
    struct exchange_filter base; /* first: the chain's pointer is ours */
    struct exchange *ex;
    const struct config_compression *config;
    int coding;                  /* enum config_coding, or -1: not accepted */
    struct compress_codec codec;
    struct exchange_buf *in;     /* the handler's pieces, consumed from in[in_at] */
    size_t in_count, in_capacity, in_at;
    enum exchange_send_state in_state;
    uint8_t *out;
    size_t out_len;
    bool waiting; /* out was passed on with MORE; its proceed has not come */
};

static const enum shm_counter counter_in[CODING_COUNT] = {
    SHM_COMPRESS_IN_BR, SHM_COMPRESS_IN_GZIP, SHM_COMPRESS_IN_DEFLATE};
static const enum shm_counter counter_out[CODING_COUNT] = {
    SHM_COMPRESS_OUT_BR, SHM_COMPRESS_OUT_GZIP, SHM_COMPRESS_OUT_DEFLATE};
static const enum shm_counter counter_responses[CODING_COUNT] = {
    SHM_COMPRESS_RESPONSES_BR, SHM_COMPRESS_RESPONSES_GZIP, SHM_COMPRESS_RESPONSES_DEFLATE};

/* The worker's gauge follows the codec's allocations. */
static void publish_memory(struct exchange *ex)
{
    if (ex->worker != NULL && ex->worker->slot != NULL)
        atomic_store_explicit(&ex->worker->slot->compression_memory, compress_memory_in_use(),
                              memory_order_relaxed);
}

static void count(struct exchange *ex, const enum shm_counter *by_coding, int coding, size_t n)
{
    if (n > 0 && ex->worker != NULL)
        shm_slot_count(ex->worker->slot, by_coding[coding], n);
}

/* ---- the head ---------------------------------------------------------- */

static bool value_has_token(const char *v, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    for (size_t i = 0; i + tlen <= len; i++)
        if (strncasecmp(v + i, token, tlen) == 0)
            return true;
    return false;
}

int compress_add_vary(struct exchange *ex)
{
    struct header_field *vary = exchange_response_header(ex, "Vary");
    if (vary == NULL)
        return exchange_add_header(ex, "Vary", "Accept-Encoding");
    if (value_has_token(vary->value, vary->value_len, "accept-encoding") ||
        (vary->value_len == 1 && vary->value[0] == '*'))
        return SK_OK;
    size_t len = vary->value_len + sizeof ", Accept-Encoding" - 1;
    char *v = arena_alloc(ex->arena, len + 1);
    if (v == NULL)
        return SK_ERROR;
    memcpy(v, vary->value, vary->value_len);
    memcpy(v + vary->value_len, ", Accept-Encoding", sizeof ", Accept-Encoding");
    vary->value = v;
    vary->value_len = len;
    return SK_OK;
}

/* A response whose representation would change with Accept-Encoding. */
static bool compress_varies(struct exchange *ex, const struct config_compression *c)
{
    struct header_field *type = exchange_response_header(ex, "Content-Type");
    struct header_field *cc = exchange_response_header(ex, "Cache-Control");
    return request_status_has_body(ex->status) && ex->status != 206 && type != NULL &&
           compress_type_listed(type->value, type->value_len, c->mime_types,
                                c->mime_type_count) &&
           exchange_response_header(ex, "Content-Encoding") == NULL &&
           exchange_response_header(ex, "Content-Range") == NULL &&
           (cc == NULL || !value_has_token(cc->value, cc->value_len, "no-transform"));
}

/* W/"tag": the compressed bytes are not the identity's (RFC 9110
 * section 8.8.1), yet If-None-Match, which compares weakly, still
 * revalidates against the file's own tag. */
static int weaken_etag(struct exchange *ex)
{
    struct header_field *etag = exchange_response_header(ex, "ETag");
    if (etag == NULL || etag->value_len == 0 || etag->value[0] != '"')
        return SK_OK;
    char *v = arena_alloc(ex->arena, etag->value_len + 3);
    if (v == NULL)
        return SK_ERROR;
    memcpy(v, "W/", 2);
    memcpy(v + 2, etag->value, etag->value_len);
    v[etag->value_len + 2] = '\0';
    etag->value = v;
    etag->value_len += 2;
    return SK_OK;
}

static int compress_begin(struct exchange *ex, struct compress_filter *cf)
{
    const struct config_compression *c = cf->config;
    int64_t length = exchange_body_length(ex);
    if (length >= 0 && (uint64_t)length < c->min_length)
        return SK_DECLINED;
    cf->out = arena_alloc(ex->arena, COMPRESS_OUT_SIZE);
    cf->in = arena_alloc(ex->arena, COMPRESS_IN_PIECES * sizeof *cf->in);
    cf->in_capacity = COMPRESS_IN_PIECES;
    if (cf->out == NULL || cf->in == NULL ||
        compress_codec_init(&cf->codec, (enum config_coding)cf->coding, c->level[cf->coding],
                            length) != SK_OK)
        return SK_DECLINED; /* out of memory: identity is still a good answer */
    exchange_remove_response_header(ex, "Content-Length");
    exchange_remove_response_header(ex, "Accept-Ranges");
    if (weaken_etag(ex) != SK_OK ||
        exchange_add_header(ex, "Content-Encoding", config_coding_name((enum config_coding)cf->coding)) != SK_OK) {
        compress_codec_end(&cf->codec);
        return SK_ERROR;
    }
    count(ex, counter_responses, cf->coding, 1);
    publish_memory(ex);
    return SK_OK;
}

static int compress_start(struct exchange *ex, struct exchange_filter *f)
{
    struct compress_filter *cf = (struct compress_filter *)f;
    if (!compress_varies(ex, cf->config))
        return SK_DECLINED;
    if (compress_add_vary(ex) != SK_OK)
        return SK_ERROR;
    if (cf->coding < 0 || ex->method == METHOD_HEAD)
        return SK_DECLINED;
    return compress_begin(ex, cf);
}

/* ---- the body ---------------------------------------------------------- */

static int emit(struct exchange *ex, struct compress_filter *cf, enum exchange_send_state state)
{
    struct exchange_buf buf = {(const char *)cf->out, cf->out_len};
    count(ex, counter_out, cf->coding, cf->out_len);
    if (state == EXCHANGE_FINAL)
        compress_codec_end(&cf->codec); /* the last bytes stay in the arena */
    else
        cf->waiting = true;
    return exchange_filter_send(ex, &cf->base, &buf, 1, state);
}

static int fail(struct exchange *ex, struct compress_filter *cf)
{
    compress_codec_end(&cf->codec);
    exchange_filter_send(ex, &cf->base, NULL, 0, EXCHANGE_ERROR);
    return SK_ERROR;
}

/* Runs the codec over what is held: passes output on when the buffer is
 * full, when the input ran out, and at the end. The handler may send
 * again from its proceed at once, so more input is never asked for from
 * here (inside its send): what the codec made, even nothing, goes to
 * the protocol, whose proceed comes back from its flush, bounded per
 * wakeup like any producer's. */
static int pump_run(struct exchange *ex, struct compress_filter *cf)
{
    for (;;) {
        bool has_piece = cf->in_at < cf->in_count, done;
        bool finish = !has_piece && cf->in_state == EXCHANGE_FINAL;
        struct compress_io io = {
            .in = has_piece ? (const uint8_t *)cf->in[cf->in_at].base : NULL,
            .in_len = has_piece ? cf->in[cf->in_at].len : 0,
            .out = cf->out + cf->out_len,
            .out_left = COMPRESS_OUT_SIZE - cf->out_len,
        };
        size_t in_len = io.in_len;
        if (compress_codec_run(&cf->codec, &io, finish, &done) != SK_OK)
            return fail(ex, cf);
        count(ex, counter_in, cf->coding, in_len - io.in_len);
        if (has_piece) {
            cf->in[cf->in_at].base = (const char *)io.in;
            if ((cf->in[cf->in_at].len = io.in_len) == 0)
                cf->in_at++;
        }
        cf->out_len = COMPRESS_OUT_SIZE - io.out_left;
        if (done)
            return emit(ex, cf, EXCHANGE_FINAL);
        if (cf->out_len == COMPRESS_OUT_SIZE)
            return emit(ex, cf, EXCHANGE_MORE);
        if (cf->in_at == cf->in_count && cf->in_state == EXCHANGE_MORE)
            return emit(ex, cf, EXCHANGE_MORE); /* what there is, maybe nothing */
    }
}

static int pump(struct exchange *ex, struct compress_filter *cf)
{
    int rc = pump_run(ex, cf);
    publish_memory(ex);
    return rc;
}

static int hold_pieces(struct exchange *ex, struct compress_filter *cf,
                       const struct exchange_buf *bufs, size_t n)
{
    if (n > cf->in_capacity) {
        struct exchange_buf *grown = arena_alloc(ex->arena, n * sizeof *grown);
        if (grown == NULL)
            return SK_ERROR;
        cf->in = grown;
        cf->in_capacity = n;
    }
    if (n > 0)
        memcpy(cf->in, bufs, n * sizeof *bufs);
    cf->in_count = n;
    cf->in_at = 0;
    return SK_OK;
}

static int compress_send(struct exchange *ex, struct exchange_filter *f,
                         const struct exchange_buf *bufs, size_t n,
                         enum exchange_send_state state)
{
    struct compress_filter *cf = (struct compress_filter *)f;
    if (state == EXCHANGE_ERROR) {
        compress_codec_end(&cf->codec);
        publish_memory(ex);
        return exchange_filter_send(ex, f, NULL, 0, EXCHANGE_ERROR);
    }
    if (hold_pieces(ex, cf, bufs, n) != SK_OK)
        return fail(ex, cf);
    cf->in_state = state;
    return cf->waiting ? SK_OK : pump(ex, cf);
}

/* The protocol took the last output: go on with what is held, or ask
 * the handler for more. */
static void compress_proceed(struct exchange *ex, struct exchange_filter *f)
{
    struct compress_filter *cf = (struct compress_filter *)f;
    cf->waiting = false;
    cf->out_len = 0;
    if (cf->in_at < cf->in_count || cf->in_state == EXCHANGE_FINAL)
        pump(ex, cf); /* SK_ERROR: the protocol gave up; stop follows */
    else
        exchange_filter_proceed(ex, f);
}

static void compress_stop(struct exchange *ex, struct exchange_filter *f)
{
    struct compress_filter *cf = (struct compress_filter *)f;
    compress_codec_end(&cf->codec);
    publish_memory(ex);
}

static const struct exchange_filter_ops compress_ops = {
    .start = compress_start,
    .send = compress_send,
    .proceed = compress_proceed,
    .stop = compress_stop,
};

const char *compress_accept_encoding(struct exchange *ex, size_t *len)
{
    const char *first = NULL;
    size_t total = 0, lines = 0;
    *len = 0;
    for (size_t i = 0; i < ex->header_count; i++) {
        const struct header_field *h = &ex->headers[i];
        if (h->name_len == 15 && strncasecmp(h->name, "accept-encoding", 15) == 0) {
            first = first != NULL ? first : h->value;
            *len = h->value_len;
            total += h->value_len + 1;
            lines++;
        }
    }
    if (lines < 2)
        return first;
    char *joined = arena_alloc(ex->arena, total), *p = joined;
    if (joined == NULL)
        return first; /* out of memory: the first line is still an answer */
    for (size_t i = 0; i < ex->header_count; i++) {
        const struct header_field *h = &ex->headers[i];
        if (h->name_len == 15 && strncasecmp(h->name, "accept-encoding", 15) == 0) {
            if (p != joined)
                *p++ = ',';
            memcpy(p, h->value, h->value_len);
            p += h->value_len;
        }
    }
    *len = (size_t)(p - joined);
    return joined;
}

void compress_attach(struct exchange *ex, const struct config_compression *config)
{
    if (config == NULL || !config->enable ||
        (!config->enable_for_https && ex->endpoint != NULL &&
         ex->endpoint->url.scheme == URL_SCHEME_HTTPS))
        return;
    struct compress_filter *cf = arena_alloc(ex->arena, sizeof *cf);
    if (cf == NULL)
        return;
    size_t len;
    const char *accept = compress_accept_encoding(ex, &len);
    *cf = (struct compress_filter){
        .ex = ex,
        .config = config,
        .coding = compress_negotiate(accept, len, config->providers, config->provider_count),
        .base = {.ops = &compress_ops},
    };
    exchange_add_filter(ex, &cf->base);
}
