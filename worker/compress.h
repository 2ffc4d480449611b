/*
 * compress.h - response compression: a filter (exchange_filter.h) that
 * any handler's response goes through, static files, streamed and
 * proxied bodies alike.
 *
 * request_dispatch attaches it for a route whose `compression:` is on
 * (not over https:// unless enable_for_https: BREACH), having chosen the
 * coding from Accept-Encoding. At the head it decides, as nginx's gzip
 * and ASP.NET Core's ResponseCompression do:
 *  - a response whose media type is in mime_types varies by
 *    Accept-Encoding, compressed or not: Vary gets Accept-Encoding;
 *  - it is compressed when the client accepts a provider, the response
 *    has a body (not HEAD, 204, 304), is not a range (206, or one with
 *    Content-Range), has no Content-Encoding already, does not say
 *    Cache-Control: no-transform, and is not known to be shorter than
 *    min_length. Content-Length and Accept-Ranges go (the body is
 *    streamed: chunked in HTTP/1.1, DATA frames in HTTP/2), the ETag
 *    becomes weak (W/"...": If-None-Match still matches it, If-Match and
 *    If-Range never do), and Content-Encoding names the coding.
 * Otherwise the filter leaves the chain and the response goes out as it
 * would have.
 *
 * The body goes through the codec (compress_codec.h) into a 16 KiB buffer
 * of the exchange's arena, passed on whenever it is full and at the end,
 * one outstanding at a time: a slow client holds the handler through
 * proceed, never memory. When a piece is eaten, what the codec made (even
 * nothing: an empty piece) goes on, and the protocol's proceed asks for
 * the next, never the filter from inside the handler's own send. The codec's state is freed at the end of the
 * body, or at stop when the exchange is abandoned. Bytes in and out and
 * responses are counted per coding in the worker's shm slot.
 */
#ifndef SAKER_WORKER_COMPRESS_H
#define SAKER_WORKER_COMPRESS_H

#include "conf/config_compression.h"
#include "worker/exchange.h"

/* Adds the compression filter to ex when config allows it for this
 * request (config may be NULL: off). Out of memory: the response goes
 * out uncompressed. */
void compress_attach(struct exchange *ex, const struct config_compression *config);

/* The request's Accept-Encoding, its field lines joined into one list
 * (RFC 9110 section 5.3; in the arena when there are several), or NULL
 * with *len 0. */
const char *compress_accept_encoding(struct exchange *ex, size_t *len);

/* Adds "Accept-Encoding" to the response's Vary. SK_OK or SK_ERROR. */
int compress_add_vary(struct exchange *ex);

#endif
