/*
 * static_ranges.c - multipart/byteranges; see static_ranges.h.
 *
 * The boundary is "saker-" and 16 hex digits of a per-process counter
 * that starts at a random value (getrandom once per worker): a file
 * cannot be written to collide with a boundary it cannot predict, and no
 * response costs a system call for it.
 */
#include "worker/static_ranges.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/error.h"

#define RANGES_PIECE (32 * 1024)
#define BOUNDARY_LEN 22 /* "saker-" and 16 hex digits */

struct byteranges {
    struct file_ref *ref; /* our hold; NULL once given back */
    struct exchange_file file; /* the whole file: fd, and a small one's contents */
    const char *type;
    uint64_t size;
    struct conditional_ranges ranges;
    size_t at;         /* the part being sent; ranges.count: the closing delimiter */
    uint64_t done;     /* bytes of that part's range already sent */
    bool head_sent;    /* that part's delimiter and fields are out */
    char boundary[BOUNDARY_LEN + 1];
    char *buf;
    size_t buf_size;
};

static void ranges_release(struct byteranges *b)
{
    if (b->ref != NULL)
        file_ref_release(b->ref);
    b->ref = NULL;
}

/* Part i's delimiter and fields into out (NULL: only measured). */
static size_t part_head(const struct byteranges *b, size_t i, char *out, size_t room)
{
    int n = snprintf(out, out != NULL ? room : 0,
                     "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
                     "/%" PRIu64 "\r\n\r\n",
                     b->boundary, b->type, b->ranges.first[i], b->ranges.last[i], b->size);
    return n > 0 ? (size_t)n : 0;
}

static size_t closing(const struct byteranges *b, char *out)
{
    if (out != NULL)
        memcpy(out, "\r\n--", 4), memcpy(out + 4, b->boundary, BOUNDARY_LEN),
            memcpy(out + 4 + BOUNDARY_LEN, "--\r\n", 4);
    return 8 + BOUNDARY_LEN;
}

/* Fills the buffer from where the last piece ended: bytes in *len, true
 * when the body ends with them. SK_OK or SK_ERROR. */
static int ranges_fill(struct byteranges *b, size_t *len, bool *last)
{
    size_t used = 0;
    *last = false;
    while (b->at < b->ranges.count) {
        if (!b->head_sent) {
            size_t head = part_head(b, b->at, NULL, 0);
            if (b->buf_size - used <= head)
                break; /* the next piece starts with it */
            used += part_head(b, b->at, b->buf + used, b->buf_size - used);
            b->head_sent = true;
        }
        uint64_t left = b->ranges.last[b->at] - b->ranges.first[b->at] + 1 - b->done;
        size_t n = left < b->buf_size - used ? (size_t)left : b->buf_size - used;
        if (n == 0)
            break;
        if (exchange_file_read(&b->file, b->buf + used, n, b->ranges.first[b->at] + b->done) !=
            SK_OK)
            return SK_ERROR;
        used += n, b->done += n;
        if (b->done == b->ranges.last[b->at] - b->ranges.first[b->at] + 1)
            b->at++, b->done = 0, b->head_sent = false;
    }
    if (b->at == b->ranges.count && b->buf_size - used >= closing(b, NULL)) {
        used += closing(b, b->buf + used);
        *last = true;
    }
    *len = used;
    return SK_OK;
}

static void ranges_next(struct exchange *ex, struct byteranges *b)
{
    size_t len;
    bool last;
    if (ranges_fill(b, &len, &last) != SK_OK) {
        ranges_release(b);
        exchange_send(ex, NULL, 0, EXCHANGE_ERROR); /* never a short body as complete */
        return;
    }
    if (last)
        ranges_release(b); /* the bytes are in the arena now */
    struct exchange_buf piece = {b->buf, len};
    exchange_send(ex, &piece, 1, last ? EXCHANGE_FINAL : EXCHANGE_MORE); /* SK_ERROR: stop */
}

static void ranges_proceed(struct exchange *ex, void *arg)
{
    ranges_next(ex, arg);
}

static void ranges_stop(struct exchange *ex, void *arg)
{
    (void)ex;
    ranges_release(arg);
}

static const struct exchange_generator ranges_generator = {ranges_proceed, ranges_stop};

static void make_boundary(char out[BOUNDARY_LEN + 1])
{
    static uint64_t next;
    static bool seeded;
    if (!seeded) {
        if (getrandom(&next, sizeof next, GRND_NONBLOCK) != (ssize_t)sizeof next)
            next = (uint64_t)getpid() << 32; /* no entropy yet: still unique per worker */
        seeded = true;
    }
    snprintf(out, BOUNDARY_LEN + 1, "saker-%016" PRIx64, next++);
}

/* The whole body's length: every part and the closing delimiter. */
static uint64_t body_length(const struct byteranges *b)
{
    uint64_t total = closing(b, NULL);
    for (size_t i = 0; i < b->ranges.count; i++)
        total += part_head(b, i, NULL, 0) + b->ranges.last[i] - b->ranges.first[i] + 1;
    return total;
}

static int ranges_head(struct exchange *ex, const struct byteranges *b)
{
    char type[64], length[24];
    snprintf(type, sizeof type, "multipart/byteranges; boundary=%s", b->boundary);
    snprintf(length, sizeof length, "%" PRIu64, body_length(b));
    ex->status = 206;
    if (exchange_add_header(ex, "Content-Type", type) != SK_OK ||
        exchange_add_header(ex, "Content-Length", length) != SK_OK)
        return SK_ERROR;
    return SK_OK;
}

void static_ranges_respond(struct exchange *ex, struct file_ref *ref, uint64_t size,
                           const char *type, const struct conditional_ranges *ranges)
{
    struct byteranges *b = arena_alloc(ex->arena, sizeof *b);
    if (b == NULL) {
        file_ref_release(ref);
        exchange_respond_error(ex, 500);
        return;
    }
    *b = (struct byteranges){.ref = ref, .type = type, .size = size, .ranges = *ranges};
    b->file = (struct exchange_file){.fd = ref->fd, .contents = file_ref_contents(ref)};
    make_boundary(b->boundary);
    size_t head_max = 0; /* a piece always has room for one part's fields */
    for (size_t i = 0; i < ranges->count; i++) {
        size_t head = part_head(b, i, NULL, 0);
        head_max = head > head_max ? head : head_max;
    }
    b->buf_size = RANGES_PIECE + head_max + closing(b, NULL);
    b->buf = arena_alloc(ex->arena, b->buf_size);
    if (b->buf == NULL || ranges_head(ex, b) != SK_OK) {
        ranges_release(b);
        exchange_respond_error(ex, 500);
        return;
    }
    exchange_set_generator(ex, &ranges_generator, b);
    if (exchange_start(ex) == SK_OK)
        ranges_next(ex, b);
    /* else abandoned: stop gives the file back */
}
