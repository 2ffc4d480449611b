/*
 * outq.c - output queue flushed with writev and sendfile; see outq.h.
 */
#include "worker/outq.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/spare.h"

#define OUTQ_IOV_MAX 64
#define OUTQ_MIN_BUFFER 16384
#define OUTQ_MIN_SEGMENTS 32
#define OUTQ_COPY_FILES_BELOW (256 * 1024)
#define OUTQ_SPARE_MAX 64
/* Below this the copy buffer grows (and goes when the queue empties);
 * from it on, sent bytes are dropped first. */
#define OUTQ_COMPACT_FROM (4 * OUTQ_HIGH_WATER)

/*
 * Standard-size buffers and segment arrays are recycled through per-process
 * free lists (a worker is single-threaded), so a connection that fills and
 * empties its queue once per request batch calls malloc only when many
 * connections are blocked at once.
 */
static struct spare_list spare_buffers = {.keep = OUTQ_SPARE_MAX},
                         spare_segments = {.keep = OUTQ_SPARE_MAX};

void outq_init(struct outq *q) { memset(q, 0, sizeof *q); }

void outq_free_spares(void)
{
    spare_free_all(&spare_buffers);
    spare_free_all(&spare_segments);
}

bool outq_empty(const struct outq *q) { return q->head == q->count; }

static void outq_release_memory(struct outq *q)
{
    spare_give(&spare_buffers, q->buffer, q->buffer_capacity == OUTQ_MIN_BUFFER);
    spare_give(&spare_segments, q->segments, q->capacity == OUTQ_MIN_SEGMENTS);
    memset(q, 0, sizeof *q);
}

static void segment_release(struct outq_segment *s)
{
    outq_release_fn *release = s->release;
    if (release != NULL) {
        s->release = NULL;
        release(s->release_arg);
    }
}

void outq_clear(struct outq *q)
{
    for (size_t i = q->head; i < q->count; i++)
        segment_release(&q->segments[i]);
    outq_release_memory(q);
}

/* A queue that never empties (a stream to a reader slower than its
 * source) would otherwise append forever: sent segments at the front are
 * dropped once they are at least half of the array, and sent copies once
 * the buffer is large and at least half of it is sent. Moving the live
 * part costs at most the bytes sent since the last move. */
static void segments_compact(struct outq *q)
{
    if (q->head == 0 || q->head * 2 < q->count)
        return;
    memmove(q->segments, q->segments + q->head, (q->count - q->head) * sizeof *q->segments);
    q->count -= q->head;
    q->head = 0;
}

static void buffer_compact(struct outq *q)
{
    size_t start = q->buffer_used; /* copies are appended in queue order */
    for (size_t i = q->head; i < q->count; i++)
        if (q->segments[i].kind == OUTQ_COPY) {
            start = q->segments[i].offset;
            break;
        }
    size_t live = q->buffer_used - start;
    if (start < live)
        return; /* more to keep than to drop: growing is cheaper */
    memmove(q->buffer, q->buffer + start, live);
    for (size_t i = q->head; i < q->count; i++)
        if (q->segments[i].kind == OUTQ_COPY)
            q->segments[i].offset -= start;
    q->buffer_used = live;
}

static struct outq_segment *segment_append(struct outq *q)
{
    if (q->count == q->capacity)
        segments_compact(q);
    if (q->count == q->capacity) {
        size_t capacity = q->capacity ? q->capacity * 2 : OUTQ_MIN_SEGMENTS;
        struct outq_segment *s =
            q->capacity == 0 ? spare_take(&spare_segments, capacity * sizeof *s)
                             : realloc(q->segments, capacity * sizeof *s);
        if (s == NULL)
            return NULL;
        q->segments = s;
        q->capacity = capacity;
    }
    struct outq_segment *s = &q->segments[q->count++];
    s->release = NULL;
    return s;
}

char *outq_reserve(struct outq *q, size_t max)
{
    if (q->buffer_capacity - q->buffer_used < max && q->buffer_capacity >= OUTQ_COMPACT_FROM)
        buffer_compact(q);
    if (q->buffer_capacity - q->buffer_used < max) {
        size_t capacity = q->buffer_capacity ? q->buffer_capacity : OUTQ_MIN_BUFFER;
        while (capacity - q->buffer_used < max)
            capacity *= 2;
        char *b = q->buffer_capacity == 0 && capacity == OUTQ_MIN_BUFFER
                      ? spare_take(&spare_buffers, capacity)
                      : realloc(q->buffer, capacity);
        if (b == NULL)
            return NULL;
        q->buffer = b;
        q->buffer_capacity = capacity;
    }
    return q->buffer + q->buffer_used;
}

int outq_commit(struct outq *q, size_t used)
{
    if (used == 0)
        return 0;
    /* Bytes that follow the previous copy extend its segment: fewer iovecs. */
    if (q->count > q->head) {
        struct outq_segment *last = &q->segments[q->count - 1];
        if (last->kind == OUTQ_COPY && last->offset + last->len == q->buffer_used) {
            last->len += used;
            q->buffer_used += used;
            q->pending_bytes += used;
            return 0;
        }
    }
    struct outq_segment *s = segment_append(q);
    if (s == NULL)
        return -1;
    s->kind = OUTQ_COPY;
    s->fd = -1;
    s->offset = q->buffer_used;
    s->len = used;
    q->buffer_used += used;
    q->pending_bytes += used;
    return 0;
}

int outq_add_copy(struct outq *q, const void *data, size_t len)
{
    char *p = outq_reserve(q, len);
    if (p == NULL)
        return -1;
    memcpy(p, data, len);
    return outq_commit(q, len);
}

/* A segment of borrowed bytes or a file range; the release runs at once
 * when there is no room for it. */
static int lent_append(struct outq *q, enum outq_segment_kind kind, const void *data, int fd,
                       off_t offset, size_t len, outq_release_fn *release, void *arg)
{
    struct outq_segment *s = segment_append(q);
    if (s == NULL) {
        if (release != NULL)
            release(arg);
        return -1;
    }
    s->kind = kind;
    s->fd = fd;
    if (kind == OUTQ_FILE)
        s->file_offset = offset;
    else
        s->ptr = data;
    s->len = len;
    s->release = release;
    s->release_arg = arg;
    q->pending_bytes += len;
    return 0;
}

int outq_add_stable(struct outq *q, const void *data, size_t len)
{
    return len == 0 ? 0 : lent_append(q, OUTQ_STABLE, data, -1, 0, len, NULL, NULL);
}

int outq_add_ref(struct outq *q, const void *data, size_t len, outq_release_fn *release,
                 void *arg)
{
    if (len == 0)
        return outq_add_release(q, release, arg);
    return lent_append(q, OUTQ_STABLE, data, -1, 0, len, release, arg);
}

int outq_add_release(struct outq *q, outq_release_fn *release, void *arg)
{
    if (release == NULL)
        return 0;
    if (outq_empty(q)) { /* nothing queued before it: its moment is now */
        release(arg);
        return 0;
    }
    struct outq_segment *s = segment_append(q);
    if (s == NULL) {
        /* No room: the last segment without a release takes it, which is
         * as late (what it guards may be referenced before it). */
        for (size_t i = q->count; i > q->head; i--)
            if (q->segments[i - 1].release == NULL) {
                q->segments[i - 1].release = release;
                q->segments[i - 1].release_arg = arg;
                return 0;
            }
        release(arg);
        return -1;
    }
    s->kind = OUTQ_STABLE;
    s->fd = -1;
    s->ptr = "";
    s->len = 0;
    s->release = release;
    s->release_arg = arg;
    return 0;
}

/* Bytes of a small file in memory are copied while the queue is short:
 * they leave with the heads in one write and nothing reads the file
 * again. A long queue (deep pipelining, a client that does not read)
 * gets file segments, which hold no memory. */
int outq_add_file(struct outq *q, int fd, off_t offset, size_t len, const char *contents,
                  outq_release_fn *release, void *arg)
{
    if (len == 0 || (contents != NULL && q->pending_bytes < OUTQ_COPY_FILES_BELOW)) {
        int rc = len == 0 ? 0 : outq_add_copy(q, contents, len);
        if (release != NULL)
            release(arg);
        return rc;
    }
    return lent_append(q, OUTQ_FILE, NULL, fd, offset, len, release, arg);
}

static const char *segment_bytes(const struct outq *q, const struct outq_segment *s)
{
    return s->kind == OUTQ_COPY ? q->buffer + s->offset : s->ptr;
}

/* Marks n bytes sent from the head of the queue. */
static void outq_consume(struct outq *q, size_t n)
{
    q->pending_bytes -= n;
    while (n > 0 && q->head < q->count) {
        struct outq_segment *s = &q->segments[q->head];
        size_t take = n < s->len ? n : s->len;
        if (s->kind == OUTQ_COPY)
            s->offset += take;
        else if (s->kind == OUTQ_STABLE)
            s->ptr += take;
        else
            s->file_offset += (off_t)take;
        s->len -= take;
        n -= take;
        if (s->len == 0) {
            segment_release(s);
            q->head++;
        }
    }
    /* Releases queued alone (and anything empty) are reached now. */
    while (q->head < q->count && q->segments[q->head].len == 0)
        segment_release(&q->segments[q->head++]);
}

void outq_advance(struct outq *q, size_t n)
{
    outq_consume(q, n);
    if (outq_empty(q))
        outq_release_memory(q);
}

static ssize_t flush_bytes(struct outq *q, int fd)
{
    struct iovec iov[OUTQ_IOV_MAX];
    int n = 0;
    for (size_t i = q->head; i < q->count && n < OUTQ_IOV_MAX; i++) {
        const struct outq_segment *s = &q->segments[i];
        if (s->kind == OUTQ_FILE)
            break;
        iov[n].iov_base = (void *)segment_bytes(q, s);
        iov[n].iov_len = s->len;
        n++;
    }
    ssize_t w;
    do
        w = writev(fd, iov, n);
    while (w < 0 && errno == EINTR);
    return w;
}

static ssize_t flush_file(struct outq_segment *s, int fd)
{
    off_t offset = s->file_offset;
    size_t chunk = s->len < (size_t)INT_MAX ? s->len : (size_t)INT_MAX;
    ssize_t w;
    do
        w = sendfile(fd, s->fd, &offset, chunk);
    while (w < 0 && errno == EINTR);
    if (w == 0) {
        /* The file shrank under us: the response can no longer be framed. */
        errno = EIO;
        return -1;
    }
    return w;
}

enum outq_flush_result outq_flush(struct outq *q, int fd, uint64_t *written)
{
    *written = 0;
    while (!outq_empty(q)) {
        struct outq_segment *s = &q->segments[q->head];
        ssize_t w = s->kind == OUTQ_FILE ? flush_file(s, fd) : flush_bytes(q, fd);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return OUTQ_BLOCKED;
            return OUTQ_FAILED;
        }
        *written += (uint64_t)w;
        outq_consume(q, (size_t)w);
    }
    outq_release_memory(q);
    return OUTQ_FLUSHED;
}
