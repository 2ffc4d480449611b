/*
 * h2_guard.c - what h2 refuses a misbehaving peer beyond nghttp2's own
 * checks; see h2_stream.h.
 *
 * Frames on closed streams (RFC 9113 sections 5.1 and 5.1.1). nghttp2
 * keeps no closed streams here (no_closed_streams: they cost memory on
 * every connection), so it cannot tell a closed stream from one it never
 * saw and ignores frames on both (DATA without any callback). h2 follows
 * the frame boundaries of what it reads, keeps a small ring of the stream
 * ids it saw lately, each marked with how it ended, and judges a HEADERS
 * or DATA frame for a stream nghttp2 does not hold before nghttp2 reads
 * it:
 *
 *   - ended by the peer (its END_STREAM, and the stream closed): DATA
 *     or HEADERS is the connection error STREAM_CLOSED (RFC 9113 section
 *     5.1 allows it, RFC 7540 asked for it, and h2spec checks it: a peer
 *     that ended its side has nothing more to send there);
 *   - reset by the peer (its RST_STREAM): DATA or HEADERS is a stream
 *     error STREAM_CLOSED (section 5.1);
 *   - reset by saker, or refused by nghttp2 before it opened: the peer
 *     may not have seen the RST_STREAM yet, so the frame is ignored
 *     (section 5.1: "MUST ignore frames that it receives on closed
 *     streams after it has sent a RST_STREAM frame");
 *   - not in the ring: DATA is STREAM_CLOSED (as h2o answers), a HEADERS
 *     below the highest stream id used is the connection error
 *     PROTOCOL_ERROR (section 5.1.1: stream ids only grow).
 *
 * Floods end the connection with ENHANCE_YOUR_CALM: streams reset faster
 * than a token bucket allows, whether the peer reset them (rapid reset,
 * CVE-2023-44487: nghttp2's own bucket, set twice as loose, would say
 * INTERNAL_ERROR) or made saker reset them (MadeYouReset, CVE-2025-8671: a
 * frame that is a stream error, a body sent after an early answer; each
 * closes its stream, so the concurrency limit no longer bounds the work
 * a connection asks for; only saker's own failures, INTERNAL_ERROR, are
 * not charged), header
 * blocks over the limits (answered 431) again and again, and a single
 * block twice over them, at once: HPACK amplification (a large field
 * inserted once and referenced thousands of times per block) costs the
 * decoding of every reference, so the block is not decoded to its end
 * (nginx ends the connection at its first block over the limit).
 */
#include <string.h>

#include "worker/h2.h"

#include <nghttp2/nghttp2.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/slab.h"
#include "conf/config.h"
#include "worker/h2_stream.h"

#define H2_ID_MASK 0x3fffffffu
#define H2_MARK_SHIFT 30
/* Two bits an entry; an entry is never 0 (its id is odd), so a mark may
 * be. MARK_NONE is no entry's: the answer for an id not in the ring. */
enum h2_closed_mark { MARK_PEER_RESET, MARK_OPENED, MARK_PEER_ENDED, MARK_RESET, MARK_NONE };

static uint32_t *ring_entries(const struct h2 *h2)
{
    return h2->recent_more != NULL ? h2->recent_more : (uint32_t *)h2->recent;
}

static int ring_capacity(const struct h2 *h2)
{
    return h2->recent_more != NULL ? H2_RECENT_STREAMS : H2_RECENT_FIRST;
}

/* Where id sits in the ring, or -1. Newest first: the stream a frame
 * names is almost always one of the last opened. */
static int ring_find(const struct h2 *h2, int32_t id)
{
    const uint32_t *entries = ring_entries(h2);
    int capacity = ring_capacity(h2);
    int i = h2->recent_next;
    for (int n = 0; n < capacity; n++) {
        i = i == 0 ? capacity - 1 : i - 1;
        if (entries[i] == 0)
            return -1; /* never written: nothing older either */
        if ((entries[i] & H2_ID_MASK) == (uint32_t)id)
            return i;
    }
    return -1;
}

static enum h2_closed_mark ring_mark_at(const struct h2 *h2, int i)
{
    return i < 0 ? MARK_NONE : (enum h2_closed_mark)(ring_entries(h2)[i] >> H2_MARK_SHIFT);
}

static enum h2_closed_mark ring_mark(const struct h2 *h2, int32_t id)
{
    return ring_mark_at(h2, ring_find(h2, id));
}

/* The first ring is full: its entries move, oldest first, to the start
 * of the larger one. Without memory for it, the oldest is forgotten. */
static void ring_grow(struct h2 *h2)
{
    uint32_t *more = slab_calloc(H2_RECENT_STREAMS, sizeof *more);
    if (more == NULL)
        return;
    for (int k = 0; k < H2_RECENT_FIRST; k++)
        more[k] = h2->recent[(h2->recent_next + k) % H2_RECENT_FIRST];
    h2->recent_close_hint =
        (uint8_t)((h2->recent_close_hint + H2_RECENT_FIRST - h2->recent_next) % H2_RECENT_FIRST);
    h2->recent_next = H2_RECENT_FIRST;
    h2->recent_more = more;
}

/* Records id with mark at i (its entry), or in place of the oldest. */
static void ring_put_at(struct h2 *h2, int i, int32_t id, enum h2_closed_mark mark)
{
    if (i < 0) {
        if (h2->recent_more == NULL && h2->recent[h2->recent_next] != 0)
            ring_grow(h2);
        i = h2->recent_next;
        h2->recent_next = (uint8_t)((h2->recent_next + 1) % ring_capacity(h2));
    }
    ring_entries(h2)[i] = ((uint32_t)mark << H2_MARK_SHIFT) | ((uint32_t)id & H2_ID_MASK);
}

/* Where id sits, looking first where the last close left off: streams
 * mostly end in the order they began, so the next to end is usually the
 * entry after the last one that did (a search from the newest would pass
 * every stream opened since). */
static int ring_find_closing(struct h2 *h2, int32_t id)
{
    int i = h2->recent_close_hint;
    uint32_t entry = ring_entries(h2)[i];
    if (entry != 0 && (entry & H2_ID_MASK) == (uint32_t)id)
        return i;
    return ring_find(h2, id);
}

void h2_guard_stream_closed(struct h2 *h2, int32_t id)
{
    int i = ring_find_closing(h2, id);
    if (i >= 0)
        h2->recent_close_hint = (uint8_t)((i + 1) % ring_capacity(h2));
    enum h2_closed_mark mark = ring_mark_at(h2, i);
    if (mark != MARK_RESET && mark != MARK_PEER_RESET)
        ring_put_at(h2, i, id, MARK_PEER_ENDED);
}

/* One stream reset, drawn from the bucket; past it, ENHANCE_YOUR_CALM. */
static void reset_charge(struct h2 *h2, const char *why)
{
    uint64_t now = clock_monotonic_ms();
    uint64_t tokens = h2->reset_tokens + (now - h2->reset_refill_ms) * H2_RESET_RATE;
    uint64_t cap = (uint64_t)H2_RESET_BURST * 1000;
    h2->reset_tokens = tokens > cap ? cap : tokens;
    h2->reset_refill_ms = now;
    if (h2->reset_tokens < 1000) {
        h2_calm_down(h2, why);
        return;
    }
    h2->reset_tokens -= 1000;
}

void h2_guard_reset_sent(struct h2 *h2, int32_t id, uint32_t error_code)
{
    int i = ring_find_closing(h2, id);
    if (ring_mark_at(h2, i) != MARK_PEER_RESET) /* not our STREAM_CLOSED answer */
        ring_put_at(h2, i, id, MARK_RESET);
    if (error_code != NGHTTP2_INTERNAL_ERROR)
        reset_charge(h2, "streams reset on the peer's provocation, too fast");
}

/* Ends the connection with GOAWAY(ENHANCE_YOUR_CALM), once. */
void h2_calm_down(struct h2 *h2, const char *why)
{
    if (h2->calm)
        return;
    h2->calm = true;
    log_msg(LOG_DEBUG, "HTTP/2: %s: ending the connection", why);
    nghttp2_session_terminate_session(h2->session, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* Whether a frame needs judging here: a HEADERS or DATA frame on a
 * client stream id already used, which nghttp2 may no longer hold.
 * nghttp2 judges the rest, and streams past a GOAWAY. */
static bool guard_wanted(const struct h2 *h2, uint8_t type, int32_t id)
{
    return (type == NGHTTP2_HEADERS || type == NGHTTP2_DATA) && id > 0 && (id & 1) &&
           !h2->goaway_sent && !h2->calm;
}

/* A HEADERS or DATA frame's header, before nghttp2 reads it (with every
 * frame before it processed when the id was used before). */
static void guard_frame(struct h2 *h2, uint8_t type, int32_t id)
{
    nghttp2_session *session = h2->session;
    if (!guard_wanted(h2, type, id))
        return;
    if (id > h2->max_stream_id) {
        if (type == NGHTTP2_HEADERS) { /* a new stream (DATA here: nghttp2's error) */
            h2->max_stream_id = id;
            ring_put_at(h2, -1, id, MARK_OPENED); /* above every id recorded */
        }
        return;
    }
    if (nghttp2_session_find_stream(session, id) != NULL)
        return; /* a stream nghttp2 holds: its state machine answers */
    enum h2_closed_mark mark = ring_mark(h2, id);
    if (mark == MARK_RESET || mark == MARK_OPENED)
        return; /* ignored: our RST_STREAM may not have reached the peer */
    if (mark == MARK_PEER_ENDED) {
        log_msg(LOG_DEBUG, "HTTP/2: a frame on stream %d after its END_STREAM", (int)id);
        nghttp2_session_terminate_session(session, NGHTTP2_STREAM_CLOSED);
        return;
    }
    if (mark == MARK_PEER_RESET || type == NGHTTP2_DATA) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_STREAM_CLOSED);
        return;
    }
    log_msg(LOG_DEBUG, "HTTP/2: HEADERS on stream %d after stream %d", (int)id,
            (int)h2->max_stream_id);
    nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR); /* counted as sent */
}

static ssize_t guard_pass(struct h2 *h2, const uint8_t *data, size_t len)
{
    return len == 0 ? 0 : nghttp2_session_mem_recv(h2->session, data, len);
}

/* A frame's header is complete, its last byte at data[last]: a frame
 * on a stream id used before is judged once nghttp2 has read every byte
 * before that one (only then does nghttp2 know whether it holds the
 * stream). -1: nghttp2's error, in *error. */
static int guard_head(struct h2 *h2, const uint8_t *h, const uint8_t *data, size_t *fed,
                      size_t last, ssize_t *error)
{
    h2->frame_left = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    int32_t id = (int32_t)(((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 |
                            h[8]) & 0x7fffffffu);
    if (guard_wanted(h2, h[3], id) && id <= h2->max_stream_id) {
        ssize_t n = guard_pass(h2, data + *fed, last - *fed);
        if (n < 0) {
            *error = n;
            return -1;
        }
        *fed = last;
    }
    guard_frame(h2, h[3], id);
    return 0;
}

/* nghttp2 reads DATA on a stream it no longer holds without a callback
 * (it ignores it), so h2 follows the frame boundaries itself: a frame's
 * payload is skipped, its header read in place when it is whole in data
 * (the common case), else gathered a byte at a time. Frames go to
 * nghttp2 in one call with their neighbours unless one must be judged
 * (guard_head). */
ssize_t h2_guard_recv(struct h2 *h2, const uint8_t *data, size_t len)
{
    size_t fed = 0, i = 0;
    ssize_t error = 0;
    while (i < len) {
        size_t skip = h2->preface_left > 0 ? h2->preface_left : h2->frame_left;
        if (skip > 0) {
            size_t n = skip < len - i ? skip : len - i;
            if (h2->preface_left > 0)
                h2->preface_left -= (uint32_t)n;
            else
                h2->frame_left -= (uint32_t)n;
            i += n;
            continue;
        }
        if (h2->frame_head_len == 0 && len - i >= 9) {
            if (guard_head(h2, data + i, data, &fed, i + 8, &error) < 0)
                return error;
            i += 9;
            continue;
        }
        h2->frame_head[h2->frame_head_len++] = data[i];
        if (h2->frame_head_len == 9) {
            h2->frame_head_len = 0;
            if (guard_head(h2, h2->frame_head, data, &fed, i, &error) < 0)
                return error;
        }
        i++;
    }
    ssize_t n = guard_pass(h2, data + fed, len - fed);
    return n < 0 ? n : (ssize_t)len;
}

void h2_guard_reset_received(struct h2 *h2, int32_t id)
{
    int i = ring_find_closing(h2, id);
    if (ring_mark_at(h2, i) == MARK_OPENED)
        ring_put_at(h2, i, id, MARK_PEER_RESET);
    reset_charge(h2, "RST_STREAM flood");
}

bool h2_guard_header_over(struct h2_stream *st, size_t bytes)
{
    const struct config_limits *l = st->h2->limits;
    st->decoded_bytes += bytes;
    st->decoded_fields++;
    return st->decoded_bytes > 2 * l->max_request_headers_total_size ||
           st->decoded_fields > 2 * l->max_request_header_count;
}

void h2_guard_oversize(struct h2 *h2)
{
    if (++h2->oversize_blocks >= H2_OVERSIZE_BLOCKS_MAX)
        h2_calm_down(h2, "header blocks over the limits, again and again");
}

void h2_guard_init(struct h2 *h2)
{
    h2->preface_left = H2_PREFACE_LEN;
    h2->reset_tokens = (uint64_t)H2_RESET_BURST * 1000;
    h2->reset_refill_ms = clock_monotonic_ms();
}
