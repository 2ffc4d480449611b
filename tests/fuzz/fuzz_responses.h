/*
 * fuzz_responses.h - what an HTTP/1.1 client would make of a connection's
 * output: a check for the fuzz_h1 driver.
 *
 * The bytes are collected as they are taken from the output queue (a
 * fuzz_seen_fn), then read as a sequence of responses: a status line,
 * header lines that each end in CRLF and hold a colon, an empty line, and
 * a body of exactly Content-Length bytes, none for 1xx, 204, 304 or a
 * response to HEAD (recognised by the next status line, or the end of the
 * output, where its body would be: no body the fuzz server sends starts
 * with "HTTP/1.1 "). Every byte must belong to a response. A broken
 * framing (a header that splits, a length that lies) is a finding.
 */
#ifndef SAKER_TESTS_FUZZ_RESPONSES_H
#define SAKER_TESTS_FUZZ_RESPONSES_H

#include <stdbool.h>
#include <stddef.h>

struct fuzz_responses {
    char *bytes;
    size_t len, capacity;
    bool too_much; /* past FUZZ_RESPONSES_MAX: not checked */
};

#define FUZZ_RESPONSES_MAX (4u << 20)

/* A fuzz_seen_fn: ctx is a struct fuzz_responses, zeroed before the
 * first connection. */
void fuzz_responses_take(void *ctx, const char *p, size_t n);
/* Checks what was taken (fuzz_fail on a finding) and empties it for the
 * next connection. The buffer is kept: a connection's output is often
 * tens of KB, and a fresh one each time cost page faults and ASan's
 * mapping and poisoning of it on every input. */
void fuzz_responses_check(struct fuzz_responses *r);

#endif
