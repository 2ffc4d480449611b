/*
 * compress_codec.c - zlib and Brotli streams with counted memory; see
 * compress_codec.h.
 */
#include "worker/compress_codec.h"

#include <brotli/encode.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static size_t memory_in_use;

size_t compress_memory_in_use(void)
{
    return memory_in_use;
}

/* Each block remembers its size in front of it, so a free can count it. */
#define HOOK_HEADER 16

static void *hook_alloc(struct compress_codec *c, size_t size)
{
    char *p = malloc(size + HOOK_HEADER);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof size);
    c->memory += size;
    memory_in_use += size;
    if (c->memory > c->memory_peak)
        c->memory_peak = c->memory;
    return p + HOOK_HEADER;
}

static void hook_free(struct compress_codec *c, void *address)
{
    size_t size;
    if (address == NULL)
        return;
    char *p = (char *)address - HOOK_HEADER;
    memcpy(&size, p, sizeof size);
    c->memory -= size;
    memory_in_use -= size;
    free(p);
}

static voidpf on_zalloc(voidpf opaque, uInt items, uInt size)
{
    if (size != 0 && items > SIZE_MAX / size)
        return NULL;
    return hook_alloc(opaque, (size_t)items * size);
}

static void on_zfree(voidpf opaque, voidpf address)
{
    hook_free(opaque, address);
}

static void *on_br_alloc(void *opaque, size_t size)
{
    return hook_alloc(opaque, size);
}

static void on_br_free(void *opaque, void *address)
{
    hook_free(opaque, address);
}

/* The smallest power of two, from 2^min to 2^max, that holds length
 * (max for an unknown one). */
static int window_bits(int64_t length, int min, int max)
{
    int bits = max;
    while (length >= 0 && bits > min && length <= ((int64_t)1 << (bits - 1)))
        bits--;
    return bits;
}

static int zlib_init(struct compress_codec *c, uint64_t level, int64_t length)
{
    int bits = window_bits(length, 9, 15);
    int mem_level = bits - 7 < 1 ? 1 : bits - 7 > 8 ? 8 : bits - 7; /* nginx's gzip_hash */
    c->z = (z_stream){.zalloc = on_zalloc, .zfree = on_zfree, .opaque = c};
    /* 16 + bits: a gzip wrapper (RFC 1952); bits alone: zlib's, which is
     * what "deflate" means in HTTP (RFC 9110 section 8.4.1.2). */
    if (deflateInit2(&c->z, (int)level, Z_DEFLATED, c->coding == CODING_GZIP ? 16 + bits : bits,
                     mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
        return SK_ERROR;
    return SK_OK;
}

static int brotli_init(struct compress_codec *c, uint64_t level, int64_t length)
{
    c->br = BrotliEncoderCreateInstance(on_br_alloc, on_br_free, c);
    if (c->br == NULL)
        return SK_ERROR;
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_QUALITY, (uint32_t)level);
    /* 2^18 at most: at quality 4 a 1 MB script compressed as well with it
     * as with 2^19 to 2^22, and faster (the hash tables grow with it). */
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_LGWIN,
                              (uint32_t)window_bits(length, BROTLI_MIN_WINDOW_BITS, 18));
    if (length >= 0 && length <= UINT32_MAX)
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)length);
    return SK_OK;
}

int compress_codec_init(struct compress_codec *c, enum config_coding coding, uint64_t level,
                        int64_t length)
{
    memset(c, 0, sizeof *c);
    c->coding = coding;
    int rc = coding == CODING_BR ? brotli_init(c, level, length) : zlib_init(c, level, length);
    c->live = rc == SK_OK;
    if (rc != SK_OK)
        compress_codec_end(c);
    return rc;
}

static int zlib_run(struct compress_codec *c, struct compress_io *io, bool finish, bool *done)
{
    c->z.next_in = (Bytef *)(uintptr_t)io->in;
    c->z.next_out = io->out;
    /* zlib counts in uInt: feed a huge input in slices. */
    c->z.avail_in = io->in_len > UINT32_MAX ? UINT32_MAX : (uInt)io->in_len;
    c->z.avail_out = io->out_left > UINT32_MAX ? UINT32_MAX : (uInt)io->out_left;
    uInt in_before = c->z.avail_in, out_before = c->z.avail_out;
    bool last_slice = finish && io->in_len == c->z.avail_in;
    int rc = deflate(&c->z, last_slice ? Z_FINISH : Z_NO_FLUSH);
    io->in += in_before - c->z.avail_in;
    io->in_len -= in_before - c->z.avail_in;
    io->out += out_before - c->z.avail_out;
    io->out_left -= out_before - c->z.avail_out;
    *done = rc == Z_STREAM_END;
    return rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR ? SK_OK : SK_ERROR;
}

static int brotli_run(struct compress_codec *c, struct compress_io *io, bool finish, bool *done)
{
    size_t in_len = io->in_len, out_left = io->out_left;
    const uint8_t *in = io->in;
    uint8_t *out = io->out;
    if (!BrotliEncoderCompressStream(c->br, finish ? BROTLI_OPERATION_FINISH
                                                   : BROTLI_OPERATION_PROCESS,
                                     &in_len, &in, &out_left, &out, NULL))
        return SK_ERROR;
    io->in = in, io->in_len = in_len, io->out = out, io->out_left = out_left;
    *done = finish && BrotliEncoderIsFinished(c->br);
    return SK_OK;
}

int compress_codec_run(struct compress_codec *c, struct compress_io *io, bool finish,
                       bool *done)
{
    *done = false;
    if (!c->live)
        return SK_ERROR;
    while (!*done && io->out_left > 0) {
        size_t in_before = io->in_len, out_before = io->out_left;
        int rc = c->coding == CODING_BR ? brotli_run(c, io, finish, done)
                                        : zlib_run(c, io, finish, done);
        if (rc != SK_OK)
            return SK_ERROR;
        if (io->in_len == 0 && !finish)
            break; /* the encoder keeps what it has until more or the end */
        if (io->in_len == in_before && io->out_left == out_before && !*done)
            break; /* no progress: the output is full */
    }
    return SK_OK;
}

void compress_codec_end(struct compress_codec *c)
{
    if (c->coding == CODING_BR && c->br != NULL)
        BrotliEncoderDestroyInstance(c->br);
    else if (c->coding != CODING_BR && c->live)
        deflateEnd(&c->z);
    c->br = NULL;
    c->live = false;
}
