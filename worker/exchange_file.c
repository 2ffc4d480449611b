/*
 * exchange_file.c - a file body streamed through response filters; see
 * exchange_filter.h.
 *
 * Without filters a file body reaches the protocol as a range of the
 * descriptor (sendfile, or a small file's bytes copied). A filter needs
 * the bytes themselves, so the file becomes the generator of a stream:
 * pieces of FILE_PIECE bytes read into one buffer of the exchange's
 * arena (a small file's cached contents are copied instead of read),
 * one outstanding at a time, the next at proceed. The file's release
 * runs as soon as its last byte is read, or at stop when the exchange is
 * abandoned first; the last piece lives in the arena, so it stays valid
 * until the exchange ends, as a FINAL send's bytes must.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "worker/exchange.h"
#include "worker/exchange_filter.h"

#define FILE_PIECE (32 * 1024)

struct file_source {
    struct exchange_file file; /* fd, offset, len, contents, release */
    size_t done;
    char *buf;
    size_t buf_size;
};

static void source_release(struct file_source *s)
{
    if (s->file.release != NULL)
        s->file.release(s->file.arg);
    s->file.release = NULL;
}

int exchange_file_read(const struct exchange_file *file, char *out, size_t n, uint64_t at)
{
    if (file->contents != NULL) {
        memcpy(out, file->contents + at, n);
        return SK_OK;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(file->fd, out + got, n - got, file->offset + (off_t)(at + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return SK_ERROR;
        got += (size_t)r;
    }
    return SK_OK;
}

static void source_next(struct exchange *ex, struct file_source *s)
{
    size_t left = s->file.len - s->done;
    size_t n = left < s->buf_size ? left : s->buf_size;
    if (exchange_file_read(&s->file, s->buf, n, s->done) != SK_OK) {
        source_release(s);
        exchange_send(ex, NULL, 0, EXCHANGE_ERROR); /* never a short body as complete */
        return;
    }
    s->done += n;
    enum exchange_send_state state = s->done == s->file.len ? EXCHANGE_FINAL : EXCHANGE_MORE;
    if (state == EXCHANGE_FINAL)
        source_release(s); /* the bytes are in the arena now */
    struct exchange_buf buf = {s->buf, n};
    exchange_send(ex, &buf, 1, state); /* SK_ERROR: stop follows */
}

static void source_proceed(struct exchange *ex, void *arg)
{
    source_next(ex, arg);
}

static void source_stop(struct exchange *ex, void *arg)
{
    (void)ex;
    source_release(arg);
}

static const struct exchange_generator file_source_generator = {source_proceed, source_stop};

int exchange_stream_file(struct exchange *ex)
{
    struct file_source *s = arena_alloc(ex->arena, sizeof *s);
    size_t buf_size = ex->body_len < FILE_PIECE ? ex->body_len : FILE_PIECE;
    char *buf = arena_alloc(ex->arena, buf_size > 0 ? buf_size : 1);
    if (s == NULL || buf == NULL) {
        exchange_drop_body(ex);
        return SK_ERROR;
    }
    *s = (struct file_source){
        .file = {.fd = ex->body_fd, .offset = ex->body_offset, .len = ex->body_len,
                 .contents = ex->body, .release = ex->body_release,
                 .arg = ex->body_release_arg},
        .buf = buf,
        .buf_size = buf_size > 0 ? buf_size : 1,
    };
    ex->body_kind = BODY_NONE; /* the source owns the file now */
    ex->body_release = NULL;
    exchange_set_generator(ex, &file_source_generator, s);
    if (exchange_start_filtered(ex) != SK_OK)
        return SK_ERROR; /* abandoned: stop releases the file */
    source_next(ex, s);
    return SK_OK;
}
