/*
 * saker/module.h - the whole API of a saker module: C code, in a shared
 * object named by the config, that answers HTTP requests on saker's
 * worker loops.
 *
 *   modules:
 *     - path: /usr/lib/saker/modules/hello.so
 *       config: { greeting: "hi" }          # the module's own options
 *   routes:
 *     - path: /hello
 *       module: { handler: hello, text: "Hello\n" }   # a handler's options
 *
 * A module exports one symbol, `saker_module` (SAKER_MODULE_EXPORT), a
 * struct saker_module whose first field is the ABI version it was built
 * for. saker refuses a module built for another ABI, with the file's
 * name in the message. Everything else is opaque handles and functions:
 * nothing in this header is a struct of saker's own, so saker's insides
 * can change without rebuilding modules; SAKER_MODULE_ABI changes only
 * when something here does.
 *
 * Threads: none. Each worker process runs one event loop; every callback
 * of a module runs on its worker's loop, one at a time, and must never
 * block: wait for a database or a socket with saker_watch, for time with
 * saker_timer. A callback that blocks stalls every connection of its
 * worker, and one that blocks for worker_watchdog_timeout (10 s) gets
 * the worker killed and respawned. A module that crashes takes down its
 * worker only; the master respawns it and counts the death.
 *
 * Lifecycle (docs/modules.md):
 *   load(config)            in the master, once per config load (a start,
 *                           a reload, `saker -t`): check the options; open
 *                           nothing, since what it opened would leak into
 *                           every worker of every generation.
 *   handler check(options)  in the master too, once per route.
 *   worker_init(config, w)  in each worker, after privileges are dropped.
 *   handler init(options)   in each worker, once per route that uses it.
 *   handle(ex)              for each request.
 *   handler fini, worker_fini   when the worker exits.
 * A reload loads the new config's modules afresh (a rebuilt .so at the
 * same path included) for its new workers; the old ones keep theirs
 * until they have drained.
 *
 * Return codes: SAKER_OK, SAKER_ERROR, SAKER_DECLINED. A callback that
 * fails says why with saker_err_set.
 */
#ifndef SAKER_MODULE_H
#define SAKER_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever anything in this header changes incompatibly. */
#define SAKER_MODULE_ABI 1

enum { SAKER_OK = 0, SAKER_ERROR = -1, SAKER_DECLINED = -3 };

typedef struct saker_exchange saker_exchange; /* one request and its response */
typedef struct saker_worker saker_worker;     /* this module in this worker */
typedef struct saker_timer saker_timer;
typedef struct saker_watch saker_watch;
typedef struct saker_counter saker_counter;
typedef struct saker_err saker_err;

/* Writes the message a failed callback reports; returns SAKER_ERROR. */
int saker_err_set(saker_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- options ------------------------------------------------------------
 * A table of options, ended by a row whose name is NULL, parsed into a
 * zeroed struct of the module's (config_size bytes) at the offset of
 * each. A key the table does not name, a value of the wrong type, or a
 * required one missing is refused as "FILE:LINE:COLUMN: ..." by
 * `saker -t`, a start and a reload, like saker's own options. */
enum saker_option_type {
    SAKER_OPTION_STRING,   /* char *, owned by saker (freed with the config) */
    SAKER_OPTION_BOOL,     /* bool: true/false, yes/no, on/off */
    SAKER_OPTION_UINT,     /* uint64_t */
    SAKER_OPTION_SIZE,     /* uint64_t bytes: 512, 64KiB, 30MB */
    SAKER_OPTION_DURATION, /* uint64_t milliseconds: 250ms, 5s, 2m */
};

struct saker_option {
    const char *name;
    enum saker_option_type type;
    size_t offset;   /* of the field in the module's struct */
    const char *def; /* the default, as written in the config; NULL: zero */
    bool required;
};

/* ---- the module ---------------------------------------------------------- */

struct saker_handler {
    const char *name; /* `module: { handler: NAME }`: a-z, 0-9, '_' */
    const struct saker_option *options; /* the route's keys besides handler */
    size_t config_size;
    /* handle() runs as soon as the request head is in and reads the body
     * with saker_exchange_read_body; otherwise it runs once the body has
     * arrived (and was discarded). */
    bool reads_body;
    /* May be NULL. In the master, at each config load, once per route:
     * refuse options that cannot work (saker_err_set), so that `saker -t`
     * and a reload say so with the route's place. Opens nothing. */
    int (*check)(const void *options, saker_err *err);
    /* May be NULL. In each worker, once per route: options is the
     * route's struct, module_state what worker_init made. */
    int (*init)(saker_worker *w, const void *options, void *module_state, void **state,
                saker_err *err);
    /* Serves one request: answers before returning, or sets a generator
     * (saker_exchange_defer) and answers later. */
    void (*handle)(saker_exchange *ex, void *state);
    void (*fini)(void *state); /* may be NULL */
};

struct saker_module {
    uint32_t abi; /* SAKER_MODULE_ABI: first, so that any build can read it */
    const char *name; /* a-z, 0-9, '_': in messages and counter names */
    const struct saker_option *options; /* the `config:` map; may be NULL */
    size_t config_size;
    /* Named monotonic counters in shared memory, shown by `sakerctl
     * status` and `sakerctl metrics`; NULL-ended, may be NULL. */
    const char *const *counters;
    /* May be NULL. In the master, before any fork (see the lifecycle). */
    int (*load)(const void *config, saker_err *err);
    /* May be NULL. In each worker, after privileges are dropped. */
    int (*worker_init)(saker_worker *w, const void *config, void **state, saker_err *err);
    void (*worker_fini)(void *state); /* may be NULL */
    const struct saker_handler *handlers; /* ended by a row whose name is NULL */
};

#define SAKER_MODULE_EXPORT __attribute__((visibility("default"))) const struct saker_module

/* ---- the request --------------------------------------------------------
 * Strings live until the exchange ends; those with a length are not
 * NUL-terminated unless said. */
const char *saker_exchange_method(const saker_exchange *ex); /* "GET", NUL-terminated */
/* The raw request-target, NUL-terminated. */
const char *saker_exchange_target(const saker_exchange *ex, size_t *len);
/* The path, normalised (percent-decoded, dot segments resolved) once
 * for routing. */
const char *saker_exchange_path(const saker_exchange *ex, size_t *len);
/* After '?', or NULL. */
const char *saker_exchange_query(const saker_exchange *ex, size_t *len);
/* Host or :authority without the port, lower-case; "" when none. */
const char *saker_exchange_host(const saker_exchange *ex, size_t *len);
/* 10, 11 or 20. */
int saker_exchange_http_version(const saker_exchange *ex);
/* A request header by name (any case; the first of several), or NULL. */
const char *saker_exchange_header(const saker_exchange *ex, const char *name, size_t *len);
size_t saker_exchange_header_count(const saker_exchange *ex);
/* The i-th request header in arrival order; SAKER_ERROR past the end. */
int saker_exchange_header_at(const saker_exchange *ex, size_t i, const char **name,
                             size_t *name_len, const char **value, size_t *value_len);
/* The client's address (AF_INET, AF_INET6; AF_UNIX without a path), or
 * NULL when unknown. */
const struct sockaddr *saker_exchange_peer(const saker_exchange *ex);
/* HTTPS with client certificates: the verified subject, RFC 2253
 * ("CN=alice,O=Example"), NUL-terminated; NULL when there is none. */
const char *saker_exchange_client_subject(const saker_exchange *ex);
/* Memory that lives until the exchange ends (its arena); NULL when out
 * of memory. */
void *saker_exchange_alloc(saker_exchange *ex, size_t size);

/* ---- the response -------------------------------------------------------
 * Date, Server, Connection and Transfer-Encoding are saker's; a handler
 * adds Content-Length only to declare a streamed body's length. */
int saker_exchange_add_header(saker_exchange *ex, const char *name, const char *value);
/* The whole response at once, body copied (may be NULL, 0): the final
 * call. */
void saker_exchange_respond(saker_exchange *ex, int status, const void *body, size_t len);
/* The whole response with a file's bytes [offset, offset + len) as its
 * body; saker closes fd once it has been sent (or not sent after all). */
void saker_exchange_respond_file(saker_exchange *ex, int status, int fd, off_t offset,
                                 size_t len);
/* status with a short text/plain body ("404 Not Found\n"). */
void saker_exchange_respond_error(saker_exchange *ex, int status);

/* ---- answering later, streaming ----------------------------------------
 * A handler that answers after it returns (a timer, a database reply)
 * or streams its body sets a generator in handle() first. proceed: the
 * connection has room again after a send that said MORE; send the next
 * piece, now or later. stop: the exchange is abandoned (the client left,
 * a deadline, the worker stops) before the final call was accepted;
 * called once, at the end of a loop turn, after which ex must not be
 * touched (stop the exchange's timers and watches here). */
struct saker_generator {
    void (*proceed)(saker_exchange *ex, void *arg);
    void (*stop)(saker_exchange *ex, void *arg);
};
void saker_exchange_defer(saker_exchange *ex, const struct saker_generator *gen, void *arg);

/* Sends status and headers now; the body follows with sends. Needs a
 * generator. SAKER_OK or SAKER_ERROR. */
int saker_exchange_start(saker_exchange *ex, int status);

struct saker_buf {
    const void *base;
    size_t len;
};
enum saker_send {
    SAKER_SEND_MORE,  /* more follows, after proceed */
    SAKER_SEND_FINAL, /* the body ends here */
    SAKER_SEND_ERROR, /* abort: the client sees an incomplete response */
};
/* Sends n pieces of the body. They must stay valid until proceed (those
 * of a FINAL send until the exchange ends: saker_exchange_alloc). One
 * MORE send outstanding at a time is the backpressure: a client that
 * reads slowly holds the producer, not memory. SAKER_OK, or SAKER_ERROR
 * when the exchange is abandoned (stop follows). */
int saker_exchange_send(saker_exchange *ex, const struct saker_buf *bufs, size_t n,
                        enum saker_send state);
/* A trailer field sent after a streamed body (HTTP/1.1 chunked, HTTP/2). */
int saker_exchange_add_trailer(saker_exchange *ex, const char *name, const char *value);

/* ---- the request body ---------------------------------------------------
 * For a handler whose reads_body is true. Pieces come from the loop,
 * never inside this call; each is valid during its callback only. end
 * comes once, after the last piece (its trailers: saker_exchange_trailer);
 * error instead when the body cannot be read to its end: 413 (over the
 * route's max_request_body_size), 408 (too slow), 400 (bad framing) or 0
 * (the client left); saker then answers with that status if nothing was
 * answered yet. On an upgraded exchange the pieces are the client's
 * bytes through the tunnel, and end is its half-close. */
struct saker_body_reader {
    void (*data)(saker_exchange *ex, const void *data, size_t len, void *arg);
    void (*end)(saker_exchange *ex, void *arg);
    void (*error)(saker_exchange *ex, int status, void *arg);
};
/* SAKER_OK; SAKER_DECLINED when the body was discarded (reads_body is
 * false); SAKER_ERROR when abandoned or already reading. Asking is what
 * sends "100 Continue" to a client that expects it. */
int saker_exchange_read_body(saker_exchange *ex, const struct saker_body_reader *r,
                             void *arg);
/* Backpressure: no pieces until resumed (HTTP/1.1 stops reading the
 * socket, HTTP/2 stops returning window). */
void saker_exchange_pause_body(saker_exchange *ex);
void saker_exchange_resume_body(saker_exchange *ex);
/* A trailer field of the request body, once it ended, or NULL. */
const char *saker_exchange_trailer(const saker_exchange *ex, const char *name, size_t *len);

/* ---- upgrades ------------------------------------------------------------
 * Accepts the client's `Upgrade: protocol` with 101 Switching Protocols
 * (and the headers added so far). Needs a generator. Then the client's
 * bytes come through the body reader and the handler's go with sends
 * (FINAL closes the connection after what was queued). SAKER_DECLINED
 * when the request did not ask, came over HTTP/2, or
 * max_concurrent_upgraded_connections is reached: answer instead. */
int saker_exchange_upgrade(saker_exchange *ex, const char *protocol);

/* ---- the worker ---------------------------------------------------------- */

/* 0 .. workers-1 within its generation. */
unsigned saker_worker_index(const saker_worker *w);
/* The generation (1 at start, +1 per reload). */
uint64_t saker_worker_generation(const saker_worker *w);

/* A counter the module declared (saker_module.counters), or NULL when
 * it declared none of that name (adding to NULL does nothing). */
saker_counter *saker_worker_counter(saker_worker *w, const char *name);
void saker_counter_add(saker_counter *c, uint64_t n);

/* Timers: fire once, delay_ms after start, on the worker's loop (within
 * a millisecond or two). With ex, the timer lives in the exchange's
 * memory and must be stopped before the exchange ends (in the
 * generator's stop, and before the final call); without, it lives until
 * saker_timer_free. NULL when out of memory. */
saker_timer *saker_timer_new(saker_worker *w, saker_exchange *ex,
                             void (*fire)(saker_timer *t, void *arg), void *arg);
int saker_timer_start(saker_timer *t, uint64_t delay_ms);
void saker_timer_stop(saker_timer *t);
void saker_timer_free(saker_timer *t); /* stops it; frees one made without ex */

/* Watching a descriptor the module owns (a database connection, a pipe):
 * ready() runs on the loop each time fd is ready for what events asks
 * (level-triggered, like poll). The module keeps fd non-blocking. */
#define SAKER_READ 0x1u
#define SAKER_WRITE 0x2u
saker_watch *saker_watch_new(saker_worker *w, int fd, unsigned events,
                             void (*ready)(saker_watch *watch, int fd, unsigned events,
                                           void *arg),
                             void *arg);
/* Changes what to wait for (0: nothing, for now). SAKER_OK or SAKER_ERROR. */
int saker_watch_set(saker_watch *watch, unsigned events);
void saker_watch_free(saker_watch *watch); /* stops it; fd stays open */

/* Logs one line to saker's error log, prefixed with the module's name.
 * level: "error", "warn", "info", "debug". */
void saker_log(saker_worker *w, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- RFC 6455 frames, for a WebSocket endpoint on an upgraded exchange -- */

enum saker_ws_opcode {
    SAKER_WS_CONTINUATION = 0x0,
    SAKER_WS_TEXT = 0x1,
    SAKER_WS_BINARY = 0x2,
    SAKER_WS_CLOSE = 0x8,
    SAKER_WS_PING = 0x9,
    SAKER_WS_PONG = 0xA,
};
struct saker_ws_frame {
    bool fin;
    unsigned opcode;      /* enum saker_ws_opcode */
    const uint8_t *payload; /* unmasked in place, inside the parsed bytes */
    uint64_t len;
};
/* Parses one client frame at the start of data[0..size): SAKER_OK with
 * *used set (the payload unmasked in place); SAKER_DECLINED when more
 * bytes are needed; SAKER_ERROR for a frame a server must refuse (not
 * masked, reserved bits or opcodes, a control frame over 125 bytes or
 * fragmented, a payload over max_payload). */
int saker_ws_parse(uint8_t *data, size_t size, uint64_t max_payload,
                   struct saker_ws_frame *frame, size_t *used);
/* Writes the head of an unmasked server frame into head (at most 10
 * bytes); returns its length. The payload follows it as is. */
size_t saker_ws_frame_head(uint8_t head[10], unsigned opcode, bool fin, uint64_t len);
/* The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (28 characters
 * and a NUL into out). SAKER_OK, or SAKER_ERROR for a key that is not
 * 24 characters of base64. */
int saker_ws_accept(const char *key, size_t key_len, char out[29]);

#ifdef __cplusplus
}
#endif

#endif
