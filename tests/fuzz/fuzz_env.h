/*
 * fuzz_env.h - what the protocol fuzz drivers (fuzz_h1, fuzz_h2) share: a
 * worker as the connection code sees it, and the fuzzer's input cut into
 * reads.
 *
 * The server is made once per process: a config loaded from YAML with the
 * real loader (a return route, static files, the status handler's three
 * kinds, redirect_https, a route with its own headers and body limit, an
 * access log to /dev/null in either format), a web root with small and
 * large files, a dot-file and symlinks in and out of it, and a real shm
 * segment (the metrics handler reads it). Arena blocks go back to malloc
 * when freed, so AddressSanitizer sees a use after an exchange ends.
 *
 * An input is a control byte, up to 15 cut points, then the bytes a client
 * sends:
 *
 *   byte 0        low 4 bits: n, the number of cut points;
 *                 high 4 bits: FUZZ_FLAG_* for the driver
 *   bytes 1..2n   n big-endian 16-bit offsets into the stream (modulo its
 *                 length): where one read ends and the next begins
 *   the rest      the stream
 *
 * So the fuzzer chooses both what is sent and where the reads split it.
 * Each read is fed from a buffer of its own, freed right after the feed:
 * a protocol that keeps a pointer into an earlier read is caught.
 */
#ifndef SAKER_TESTS_FUZZ_ENV_H
#define SAKER_TESTS_FUZZ_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/outq.h"
#include "worker/worker.h"

#define FUZZ_MAX_CUTS 15
/* Driver flags, the control byte's high bits. */
#define FUZZ_FLAG_JSON_LOG 0x10 /* the access log in JSON lines, else combined */
#define FUZZ_FLAG_A 0x20        /* the driver's own choices */
#define FUZZ_FLAG_B 0x40
#define FUZZ_FLAG_C 0x80

struct fuzz_server {
    struct worker worker;
    struct config *config;
    const struct endpoint *endpoint;
    const struct sockaddr *peer;
};

/* The server for an input's flags, made on first use. Aborts when it
 * cannot be made: a driver without its server tests nothing. */
struct fuzz_server *fuzz_server_get(unsigned flags);
/* The servers' web root (made on first use, removed at exit). */
const char *fuzz_web_root(void);

struct fuzz_input {
    unsigned flags;   /* FUZZ_FLAG_* */
    const uint8_t *stream;
    size_t len;
    size_t cuts[FUZZ_MAX_CUTS + 2]; /* 0, the cut points in order, len */
    size_t cut_count;               /* entries in cuts */
    size_t next;                    /* the next read, an index into cuts */
};

void fuzz_input_parse(struct fuzz_input *in, const uint8_t *data, size_t size);

/* What a protocol driver does first: the input parsed into in, the
 * descriptors marked, out initialised; returns the server for the input's
 * flags. And last: out cleared, the descriptors checked. */
struct fuzz_server *fuzz_connection_begin(struct fuzz_input *in, const uint8_t *data,
                                          size_t size, struct outq *out);
void fuzz_connection_end(struct outq *out);
/* The next read as a malloc'ed copy (free it after the feed) and its
 * length; NULL when the stream is used up. Empty reads are skipped. */
char *fuzz_input_next(struct fuzz_input *in, size_t *len);

/* Takes everything queued as a flush would: bytes copied, file ranges
 * read with pread (aborting when one reaches past its file's end: the
 * response would be cut short), then marks it sent. seen (may be NULL)
 * gets the bytes in order, piece by piece. Returns how many there were. */
typedef void fuzz_seen_fn(void *ctx, const char *p, size_t n);
size_t fuzz_drain(struct outq *out, fuzz_seen_fn *seen, void *ctx);

/* Marks the descriptors open before an input; check aborts when one
 * opened while serving it is still open: one that leaked. */
void fuzz_descriptors_mark(void);
void fuzz_descriptors_check(void);

/* Aborts with a message: an invariant the code under test broke. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
