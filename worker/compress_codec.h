/*
 * compress_codec.h - one compressed stream: zlib (gzip, deflate) or
 * Brotli behind one interface, with its memory counted.
 *
 * Every allocation the libraries make goes through saker's allocator
 * hooks (zlib's zalloc/zfree, Brotli's alloc_func/free_func), which count
 * the bytes live in this stream (codec->memory) and in the whole process
 * (compress_memory_in_use, the worker's gauge). The window is sized from
 * the body's length when it is known (nginx sizes gzip's the same way),
 * so a 300-byte JSON answer does not cost a 256 KiB deflate state; with an
 * unknown length a stream holds at most about 270 KiB (deflate, window
 * 2^15, memLevel 8) or, with Brotli's window of 2^18, about 1.2 MiB at
 * qualities 1 to 3 and about 7 MiB at 4 and above (its hash tables), as
 * measured by check_compress_codec.
 * compress_codec_end frees everything; nothing is kept between streams.
 */
#ifndef SAKER_WORKER_COMPRESS_CODEC_H
#define SAKER_WORKER_COMPRESS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "conf/config_compression.h"

struct BrotliEncoderStateStruct;

struct compress_codec {
    enum config_coding coding;
    bool live;
    z_stream z;                               /* gzip, deflate */
    struct BrotliEncoderStateStruct *br;      /* br */
    size_t memory; /* bytes the library holds for this stream now */
    size_t memory_peak;
};

/* Input and output windows, advanced by compress_codec_run. */
struct compress_io {
    const uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_left;
};

/* Starts a stream at level (config_compression's range for coding);
 * length: the body's, or -1. SK_OK or SK_ERROR (out of memory). */
int compress_codec_init(struct compress_codec *c, enum config_coding coding, uint64_t level,
                        int64_t length);
/* Compresses io's input into its output until the input is consumed or
 * the output is full. finish: no input follows; *done is set once the
 * whole stream (trailer included) is out. SK_OK or SK_ERROR. */
int compress_codec_run(struct compress_codec *c, struct compress_io *io, bool finish,
                       bool *done);
/* Frees the stream; safe to call twice. */
void compress_codec_end(struct compress_codec *c);

/* Bytes every live stream of this process holds. */
size_t compress_memory_in_use(void);

#endif
