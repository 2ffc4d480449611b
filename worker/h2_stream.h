/*
 * h2_stream.h - what h2.c (the session, the request side) and
 * h2_response.c (responses, DATA frames) share; not for other parts.
 *
 * A stream's memory (its struct, its arena, its exchange) outlives its
 * close: nghttp2 closes streams inside its own calls, and a handler may
 * hold the exchange. A closed stream moves to the session's dead list,
 * and at the end of the loop turn (turn.h) its producer, when it still
 * had one at work, is told (exchange_stop) before it is freed.
 */
#ifndef SAKER_WORKER_H2_STREAM_H
#define SAKER_WORKER_H2_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "common/arena.h"
#include "common/bytebuf.h"
#include "shm/shm_layout.h"
#include "worker/exchange.h"
#include "worker/turn.h"

struct worker;
struct outq;
struct endpoint;
struct config_limits;
struct sockaddr;
struct router_entry;
struct conn;

/* Streams of one connection whose file responses are not all framed yet:
 * the descriptors a connection holds (each of them one at most; streams
 * past it wait to be dispatched until one is framed or reset). */
#define H2_FILE_STREAMS_MAX 32

/* Stream ids whose end h2 remembers (h2_guard.c): the first 8 in the
 * connection's state (32 bytes: most idle connections made a request or
 * a few), then the last 64, in a block of 256 bytes made when a ninth
 * comes. */
#define H2_RECENT_FIRST 8
#define H2_RECENT_STREAMS 64
/* RST_STREAM received: a burst, then so many a second (nghttp2's figures;
 * its own limit is set twice as loose). */
#define H2_RESET_BURST 1000
#define H2_RESET_RATE 33
/* Header blocks refused for their size or count on one connection before
 * it ends with ENHANCE_YOUR_CALM. */
#define H2_OVERSIZE_BLOCKS_MAX 4

struct h2_stream {
    struct h2_stream *prev, *next; /* the session's streams, or its dead ones */
    struct h2 *h2;
    int32_t id;
    struct arena arena;
    struct exchange ex;
    const struct router_entry *entry;
    uint64_t body_limit;
    uint64_t started_ms;      /* HEADERS began */
    uint64_t started_us;      /* ... in the read stamped with this */
    uint64_t body_started_ms; /* the request body is arriving since; 0: not */
    uint64_t header_bytes;    /* names + values of regular fields */
    uint64_t decoded_bytes;   /* names + values of every field decoded (h2_guard.c) */
    uint64_t decoded_fields;
    const char *authority;    /* :authority, or NULL */
    size_t authority_len;
    int reject_status;        /* decided while the head arrived; 0: none */
    enum shm_counter reject_counter;
    /* A whole response body, handed to nghttp2 frame by frame. */
    const char *body;         /* bytes; for a file, its contents or NULL */
    int body_fd;              /* a file; -1: none */
    off_t body_offset;
    size_t body_left;
    void (*body_release)(void *arg); /* the file's, until the last frame carries it */
    void *body_release_arg;
    bool body_stable;         /* body outlives the stream: reference it */
    /* A streamed response body: the pieces of the send being framed (the
     * array copied, the bytes referenced until proceed). */
    struct exchange_buf *pieces;
    size_t piece_count, piece_capacity, piece_index, piece_offset;
    size_t piece_left;        /* bytes of them not yet in a frame */
    int64_t length_left;      /* of a declared content-length; -1: none */
    bool streaming;
    bool deferred;            /* nghttp2 waits for data (NGHTTP2_ERR_DEFERRED) */
    bool final;               /* the last piece is in: the body ends after it */
    bool proceed_owed;        /* its pieces are framed: proceed once there is room */
    bool response_ended;      /* END_STREAM (or trailers) submitted, or a reset */
    uint64_t data_sent;       /* DATA payload framed */
    uint64_t stall_ms;        /* its DATA waited for the peer's window since; 0: not */
    uint64_t stall_sent;      /* data_sent then */
    /* The request body (h2_body.c). */
    struct bytebuf held;      /* DATA that came while the reader was paused, or not there */
    uint64_t body_rate_base;  /* bytes in when the rate was last restarted */
    bool early;               /* its handler reads it: dispatched at the head */
    bool delivery_owed;       /* held bytes or the end go to the reader at the flush */
    bool dispatch_pending;    /* answer at END_STREAM */
    bool request_complete;    /* END_STREAM received */
    bool dead;                /* closed: on the dead list until the end of the turn */
    bool gated;               /* its dispatch waits: the connection holds its files */
    /* An extended CONNECT accepted (exchange_upgrade): its DATA frames
     * are a tunnel's bytes both ways, held to keep_alive_timeout without
     * any, under an upgraded permit of its own. */
    bool tunnel;
    uint8_t permits;          /* CONN_PERMIT_* of max_concurrent_upgraded_connections */
    uint64_t tunnel_active_ms; /* its last DATA, either way */
};

/* Blocks of a session mapped on their own (h2_mem.c): its frame buffer,
 * its stream map, the odd large field or frame. Past these, malloc. */
#define H2_MAPPINGS_MAX 4

struct h2_mapping {
    void *base;        /* what nghttp2 was given; NULL: a free slot */
    size_t len_frames; /* the mapping's length (whole pages), | 1: the frame buffer */
};

struct h2_mem {
    nghttp2_mem mem;      /* what the session is made with (its user data: this) */
    struct h2_mapping maps[H2_MAPPINGS_MAX];
    bool creating;        /* the session is being made: a large block is its frame buffer */
};

struct h2 {
    nghttp2_session *session;
    struct h2_mem mem;         /* nghttp2's allocator for this session */
    bool trimmed;              /* idle pages given back since the last input */
    struct worker *worker;
    struct outq *out;
    struct conn *conn;         /* NULL in unit tests */
    const struct endpoint *endpoint;
    const struct config_limits *limits;
    const struct sockaddr *peer;
    const char *client_subject;
    struct h2_stream *streams; /* every open stream with state of ours */
    struct h2_stream *dead;    /* closed ones, freed at the end of the turn */
    struct h2_stream *heading; /* the stream whose header block is arriving, or NULL */
    struct turn_job reap;      /* that end of the turn */
    unsigned proceeds_owed;    /* streams whose proceed waits for room */
    unsigned deliveries_owed;  /* streams whose reader waits for held bytes */
    unsigned file_streams;     /* streams whose file response is not all framed */
    unsigned gated;            /* streams whose dispatch waits for one of them */
    uint64_t started_ms;       /* the preface is due request_headers_timeout from here */
    uint64_t head_since_ms;    /* a header block is arriving since; 0: none */
    uint64_t last_frame_ms;    /* for the keep-alive ping */
    uint64_t active_ms;        /* the last progress: a request, DATA either way */
    uint64_t ping_sent_ms;     /* a keep-alive ping waits for any frame; 0: none */
    uint64_t empty_frames;
    uint64_t notice_ms;        /* when the shutdown notice was queued */
    bool preface_done;         /* the client's SETTINGS arrived */
    bool notice_sent;
    bool goaway_sent;
    bool failed;               /* nghttp2 failed: nothing more can be sent */
    /* What a misbehaving peer is refused (h2_guard.c). */
    bool calm;                 /* ending with ENHANCE_YOUR_CALM */
    uint8_t recent_next;
    uint8_t recent_close_hint; /* the entry after the last stream that ended */
    uint32_t recent[H2_RECENT_FIRST]; /* stream ids seen lately, each with a mark */
    uint32_t *recent_more;     /* H2_RECENT_STREAMS of them, once grown; NULL before */
    int32_t max_stream_id;     /* the highest stream a HEADERS opened */
    unsigned oversize_blocks;  /* header blocks refused with 431 */
    uint64_t reset_tokens;     /* RST_STREAM bucket, in thousandths */
    uint64_t reset_refill_ms;
    uint32_t preface_left;     /* client preface bytes still to come */
    uint32_t frame_left;       /* payload bytes of the current frame still to come */
    uint8_t frame_head[9];     /* the next frame's header, as it arrives */
    uint8_t frame_head_len;
};

/* h2_response.c */
extern const struct exchange_ops h2_exchange_ops;
int h2_on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *source, void *user_data);
/* Gives producers their proceed while the queue is below the high-water
 * mark. True when one was given (frames may wait to be made). */
bool h2_deliver_proceeds(struct h2 *h2);

/* h2_body.c */
/* DATA for the stream: to its reader, held, or discarded; the window is
 * given back accordingly. */
void h2_body_data(struct h2_stream *st, const uint8_t *data, size_t len);
/* END_STREAM: the reader's end, after what is held. */
void h2_body_end(struct h2_stream *st);
/* At the flush: held bytes and ends owed to readers. */
void h2_body_deliver_owed(struct h2 *h2);
int h2_read_body(struct exchange *ex);
void h2_pause_body(struct exchange *ex, bool paused);

/* h2_guard.c */
void h2_guard_init(struct h2 *h2);
/* nghttp2_session_mem_recv, with DATA and HEADERS on streams nghttp2 does
 * not hold judged first. */
ssize_t h2_guard_recv(struct h2 *h2, const uint8_t *data, size_t len);
/* The stream closed (after h2_guard_reset_sent, if saker reset it). */
void h2_guard_stream_closed(struct h2 *h2, int32_t id);
/* saker sent a RST_STREAM; one not for its own failure (INTERNAL_ERROR)
 * draws on the reset bucket. */
void h2_guard_reset_sent(struct h2 *h2, int32_t id, uint32_t error_code);
/* A RST_STREAM arrived for id (before nghttp2 closes the stream): past
 * the bucket, ENHANCE_YOUR_CALM. */
void h2_guard_reset_received(struct h2 *h2, int32_t id);
/* A decoded field of bytes: true once the block is far past the limits
 * (twice either), where the connection ends without decoding the rest. */
bool h2_guard_header_over(struct h2_stream *st, size_t bytes);
/* A header block was refused for its size or count. */
void h2_guard_oversize(struct h2 *h2);
/* Ends the connection with GOAWAY(ENHANCE_YOUR_CALM). */
void h2_calm_down(struct h2 *h2, const char *why);

/* h2_mem.c: a session's allocator (its page-sized blocks mapped on
 * their own). */
void h2_mem_init(struct h2_mem *m);
/* Gives the kernel back the pages nghttp2 will not read again before it
 * writes them: only while it has nothing to send. */
void h2_mem_trim(struct h2_mem *m);

/* h2.c */
/* A stream's file response was all framed, or the stream gave it up. */
void h2_file_framed(struct h2 *h2);
void h2_count(const struct h2 *h2, enum shm_counter counter);
/* The connection flushes what was made outside its own callbacks. */
void h2_wake(struct h2 *h2);
/* The exchange is given up, or the stream or its connection is gone. */
bool h2_stream_gone(const struct h2_stream *st);

#endif
