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
    /* The request body (h2_body.c). */
    struct bytebuf held;      /* DATA that came while the reader was paused, or not there */
    uint64_t body_rate_base;  /* bytes in when the rate was last restarted */
    bool early;               /* its handler reads it: dispatched at the head */
    bool delivery_owed;       /* held bytes or the end go to the reader at the flush */
    bool dispatch_pending;    /* answer at END_STREAM */
    bool request_complete;    /* END_STREAM received */
    bool dead;                /* closed: on the dead list until the end of the turn */
};

struct h2 {
    nghttp2_session *session;
    struct worker *worker;
    struct outq *out;
    struct conn *conn;         /* NULL in unit tests */
    const struct endpoint *endpoint;
    const struct config_limits *limits;
    const struct sockaddr *peer;
    const char *client_subject;
    struct h2_stream *streams; /* every open stream with state of ours */
    struct h2_stream *dead;    /* closed ones, freed at the end of the turn */
    struct turn_job reap;      /* that end of the turn */
    unsigned proceeds_owed;    /* streams whose proceed waits for room */
    unsigned deliveries_owed;  /* streams whose reader waits for held bytes */
    uint64_t started_ms;       /* the preface is due request_headers_timeout from here */
    uint64_t head_since_ms;    /* a header block is arriving since; 0: none */
    uint64_t last_frame_ms;    /* for the keep-alive ping */
    uint64_t ping_sent_ms;     /* a keep-alive ping waits for any frame; 0: none */
    uint64_t empty_frames;
    uint64_t notice_ms;        /* when the shutdown notice was queued */
    bool preface_done;         /* the client's SETTINGS arrived */
    bool notice_sent;
    bool goaway_sent;
    bool failed;               /* nghttp2 failed: nothing more can be sent */
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

/* h2_mem.c: nghttp2's allocator (its large blocks mapped on their own). */
nghttp2_mem *h2_memory(void);

/* h2.c */
void h2_count(const struct h2 *h2, enum shm_counter counter);
/* The connection flushes what was made outside its own callbacks. */
void h2_wake(struct h2 *h2);
/* The exchange is given up, or the stream or its connection is gone. */
bool h2_stream_gone(const struct h2_stream *st);

#endif
