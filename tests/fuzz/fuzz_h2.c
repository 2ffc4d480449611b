/*
 * fuzz_h2.c - libFuzzer driver: an HTTP/2 session through h2_feed (nghttp2
 * with HPACK, saker's callbacks, request.c, the handlers, DATA frames of
 * bytes and file ranges), over reads cut where the fuzzer chooses
 * (fuzz_env.h).
 *
 * One input is one connection. Flag A: the driver sends the client
 * preface and an empty SETTINGS frame first, so the input is frames;
 * without it the fuzzer must write the preface itself (and can get it
 * wrong). After each read frames are produced and taken as conn_flush
 * does, and the connection ends when the session is over (h2_finished).
 * Flag B: a drain follows (the shutdown notice, then the last
 * GOAWAY); flag C: a heartbeat a minute later (body data rates, pings).
 *
 * Checked beyond the sanitizers: the output is a sequence of whole frames
 * of types a server sends, starting with SETTINGS, and ends where a frame
 * ends; DATA and HEADERS go on client streams; no descriptor leaks.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/fuzz/fuzz_env.h"
#include "worker/h2.h"

#define ROUNDS 64 /* produce-and-flush turns after a read, as conn_flush's, bounded */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frame boundaries in the server's output, across drains. */
struct frames {
    unsigned char head[9];
    size_t head_used;
    uint64_t payload_left;
    uint64_t count;
};

static void frame_check(const struct frames *f)
{
    const unsigned char *h = f->head;
    unsigned type = h[3];
    uint32_t stream = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | h[7] << 8 | h[8]) &
                      0x7fffffffu;
    if (f->count == 0 && type != 4)
        fuzz_fail("the server's first frame is of type %u, not SETTINGS", type);
    if (type > 9 || type == 2 || type == 5)
        fuzz_fail("frame %llu: a server sends no frame of type %u",
                  (unsigned long long)f->count, type);
    if ((type == 0 || type == 1 || type == 9) && (stream == 0 || stream % 2 == 0))
        fuzz_fail("frame %llu: type %u on stream %u, not a client stream",
                  (unsigned long long)f->count, type, stream);
}

static void on_output(void *ctx, const char *p, size_t n)
{
    struct frames *f = ctx;
    while (n > 0) {
        if (f->payload_left > 0) {
            size_t take = n < f->payload_left ? n : (size_t)f->payload_left;
            f->payload_left -= take;
            p += take, n -= take;
            continue;
        }
        size_t take = 9 - f->head_used < n ? 9 - f->head_used : n;
        memcpy(f->head + f->head_used, p, take);
        f->head_used += take;
        p += take, n -= take;
        if (f->head_used < 9)
            break;
        frame_check(f);
        f->payload_left = (uint64_t)f->head[0] << 16 | f->head[1] << 8 | f->head[2];
        f->head_used = 0;
        f->count++;
    }
}

/* Frames made and taken as conn_flush does; true when the session is over,
 * which ends the connection. */
static bool flush(struct h2 *h2, struct outq *out, struct frames *f)
{
    for (int round = 0; round < ROUNDS; round++) {
        bool more = h2_produce(h2);
        fuzz_drain(out, on_output, f);
        if (!more)
            break;
    }
    uint64_t since;
    (void)h2_idle(h2); /* what conn's deadlines ask after each read */
    (void)h2_reading_head(h2, &since);
    (void)h2_want_write(h2);
    return h2_finished(h2);
}

static bool feed(struct h2 *h2, const char *p, size_t len)
{
    char *copy = malloc(len);
    if (copy == NULL)
        fuzz_fail("out of memory");
    memcpy(copy, p, len);
    bool closed = h2_feed(h2, copy, len) == H2_CLOSE;
    free(copy);
    return closed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in;
    struct outq out;
    struct fuzz_server *server = fuzz_connection_begin(&in, data, size, &out);
    struct h2_params params = {.worker = &server->worker, .out = &out,
                               .endpoint = server->endpoint,
                               .limits = &server->endpoint->limits, .peer = server->peer};
    struct h2 *h2 = h2_new(&params);
    if (h2 == NULL)
        fuzz_fail("h2_new failed");
    struct frames frames = {0};
    static const char preface[] = H2_PREFACE "\0\0\0\4\0\0\0\0\0"; /* and SETTINGS */
    bool closed = (in.flags & FUZZ_FLAG_A) && feed(h2, preface, sizeof preface - 1);
    closed = flush(h2, &out, &frames) || closed;
    char *read;
    size_t len;
    while (!closed && (read = fuzz_input_next(&in, &len)) != NULL) {
        closed = h2_feed(h2, read, len) == H2_CLOSE;
        free(read);
        closed = flush(h2, &out, &frames) || closed;
    }
    if (!closed && (in.flags & FUZZ_FLAG_B)) {
        h2_shutdown_notice(h2);
        flush(h2, &out, &frames);
        h2_goaway(h2);
        closed = flush(h2, &out, &frames);
    }
    if (!closed && (in.flags & FUZZ_FLAG_C)) {
        h2_tick(h2, clock_monotonic_ms() + 60000);
        flush(h2, &out, &frames);
    }
    if (frames.head_used != 0 || frames.payload_left != 0)
        fuzz_fail("the output ends inside a frame");
    h2_free(h2);
    fuzz_connection_end(&out);
    return 0;
}
