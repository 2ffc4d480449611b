/*
 * tls_wbio.c - OpenSSL's records gathered per flush; see tls_wbio.h.
 *
 * Buffers of the standard size are recycled through a spare list
 * (common/spare.h), as the output queue's are: a busy connection fills
 * and empties its buffer once per batch.
 */
#include "worker/tls_wbio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/slab.h"
#include "common/spare.h"

#define WBIO_BUFFER (144 * 1024) /* two 64 KiB batches and their record overhead */
#define WBIO_SPARE_MAX 8
#define WBIO_RECORD_OVERHEAD 256 /* per 16 KiB record: header, tag, padding */

struct wbio {
    int fd;
    char *buffer;
    size_t capacity;
    size_t offset; /* sent from the front */
    size_t len;    /* waiting, after offset */
};

static struct spare_list spare_buffers = {.keep = WBIO_SPARE_MAX};

static void buffer_give_back(struct wbio *w)
{
    spare_give(&spare_buffers, w->buffer, w->capacity == WBIO_BUFFER);
    w->buffer = NULL;
    w->capacity = w->offset = w->len = 0;
}

/* Room for more bytes after what waits: the waiting bytes move to the
 * front, into a larger buffer when they must (a handshake flight or a
 * batch beyond tls_wbio_has_room; the batch loop keeps to it). */
static bool buffer_reserve(struct wbio *w, size_t more)
{
    if (w->buffer == NULL) {
        if ((w->buffer = spare_take(&spare_buffers, WBIO_BUFFER)) == NULL)
            return false;
        w->capacity = WBIO_BUFFER;
    }
    if (w->offset + w->len + more <= w->capacity)
        return true;
    size_t capacity = w->capacity;
    while (w->len + more > capacity)
        capacity *= 2;
    char *moved = capacity == w->capacity ? w->buffer : malloc(capacity);
    if (moved == NULL)
        return false;
    memmove(moved, w->buffer + w->offset, w->len);
    if (moved != w->buffer) {
        size_t len = w->len;
        buffer_give_back(w);
        w->buffer = moved;
        w->capacity = capacity;
        w->len = len;
    }
    w->offset = 0;
    return true;
}

static int wbio_write(BIO *b, const char *data, int len)
{
    struct wbio *w = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (!buffer_reserve(w, (size_t)len)) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(w->buffer + w->offset + w->len, data, (size_t)len);
    w->len += (size_t)len;
    return len;
}

bool tls_wbio_has_room(BIO *b, size_t plaintext)
{
    if (!tls_wbio_is(b))
        return true; /* a socket BIO writes as it goes */
    const struct wbio *w = BIO_get_data(b);
    size_t records = plaintext / (16 * 1024) + 1;
    return w->len + plaintext + records * WBIO_RECORD_OVERHEAD <= WBIO_BUFFER;
}

int tls_wbio_flush(BIO *b)
{
    if (!tls_wbio_is(b))
        return 1;
    struct wbio *w = BIO_get_data(b);
    while (w->len > 0) {
        ssize_t n = send(w->fd, w->buffer + w->offset, w->len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        w->offset += (size_t)n;
        w->len -= (size_t)n;
    }
    buffer_give_back(w);
    return 1;
}

/* Reads go straight to the socket, as a socket BIO's do (an EOF is
 * marked for BIO_eof), so one BIO serves both directions: a second one
 * and its lock cost every connection about 200 bytes. */
static int wbio_read(BIO *b, char *out, int len)
{
    struct wbio *w = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (out == NULL || len <= 0)
        return 0;
    ssize_t n;
    do
        n = read(w->fd, out, (size_t)len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    else if (n == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return (int)n;
}

static long wbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    struct wbio *w = BIO_get_data(b);
    switch (cmd) {
    case BIO_C_GET_FD: /* SSL_get_fd */
        if (ptr != NULL)
            *(int *)ptr = w->fd;
        return w->fd;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_CTRL_FLUSH: {
        BIO_clear_retry_flags(b);
        int rc = tls_wbio_flush(b);
        if (rc == 0)
            BIO_set_retry_write(b);
        return rc > 0 ? 1 : -1;
    }
    case BIO_CTRL_WPENDING:
        return (long)w->len;
    case BIO_CTRL_PENDING:
        return 0;
    default:
        return 0; /* kTLS and the rest: not offered */
    }
}

static int wbio_create(BIO *b)
{
    struct wbio *w = slab_calloc(1, sizeof *w);
    if (w == NULL)
        return 0;
    w->fd = -1;
    BIO_set_data(b, w);
    BIO_set_init(b, 1);
    return 1;
}

static int wbio_destroy(BIO *b)
{
    struct wbio *w = BIO_get_data(b);
    if (w != NULL) {
        buffer_give_back(w);
        slab_free(w);
    }
    BIO_set_data(b, NULL);
    return 1;
}

static int wbio_type;

static BIO_METHOD *wbio_method(void)
{
    static BIO_METHOD *method;
    if (method != NULL)
        return method;
    int index = BIO_get_new_index();
    if (index == -1)
        return NULL;
    wbio_type = index | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
    BIO_METHOD *m = BIO_meth_new(wbio_type, "saker socket");
    if (m == NULL || !BIO_meth_set_write(m, wbio_write) || !BIO_meth_set_read(m, wbio_read) ||
        !BIO_meth_set_ctrl(m, wbio_ctrl) ||
        !BIO_meth_set_create(m, wbio_create) || !BIO_meth_set_destroy(m, wbio_destroy)) {
        BIO_meth_free(m);
        return NULL;
    }
    return method = m;
}

BIO *tls_wbio_new(int fd)
{
    BIO_METHOD *m = wbio_method();
    BIO *b = m != NULL ? BIO_new(m) : NULL;
    if (b != NULL)
        ((struct wbio *)BIO_get_data(b))->fd = fd;
    return b;
}

bool tls_wbio_is(BIO *b)
{
    return b != NULL && wbio_type != 0 && BIO_method_type(b) == wbio_type;
}
