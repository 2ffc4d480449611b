/*
 * static_ranges.h - a file's several ranges as one 206 of
 * multipart/byteranges (RFC 9110 section 14.6).
 *
 * The body is each range as a part (a delimiter, the file's Content-Type
 * and the part's Content-Range, then the bytes), in the order the client
 * asked, and the closing delimiter. Its length is known before the first
 * byte, so it goes with a Content-Length, streamed from the file in pieces
 * of at most 32 KiB of one buffer in the exchange's arena, one
 * outstanding at a time (the exchange's backpressure): a range of
 * gigabytes holds no more memory than a small one. Which ranges are
 * served (caps on their number and overlap) is conditional.h's decision.
 */
#ifndef SAKER_WORKER_STATIC_RANGES_H
#define SAKER_WORKER_STATIC_RANGES_H

#include "worker/conditional.h"
#include "worker/exchange.h"
#include "worker/file_cache.h"

/* Answers ex (status, Content-Type, Content-Length, the body) with
 * ranges (two or more) of the file ref, whose representation has the
 * given size and type. Takes ref's hold: it is given back when the last
 * byte is read or the exchange is abandoned. The validators and other
 * fields are the caller's, added before. */
void static_ranges_respond(struct exchange *ex, struct file_ref *ref, uint64_t size,
                           const char *type, const struct conditional_ranges *ranges);

#endif
