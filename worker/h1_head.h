/*
 * h1_head.h - the strict grammar of an HTTP/1.1 request head (RFC 9112).
 *
 * llhttp 8 with every lenient flag off still accepts a few things that
 * other parsers read differently, which is what request smuggling and
 * cache poisoning feed on: a bare LF after the request line or as the last
 * line of the head, HTTP/0.9 request lines, two spaces between method and
 * target, whitespace inside or before a field name, an empty field name,
 * obs-fold in any field. h1 runs this checker over the raw bytes of every
 * request head, ahead of llhttp, and refuses the request (400, close) on
 * the first byte that does not fit:
 *
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   method       = token
 *   target       = 1*( VCHAR except "#" )       ; no fragment, no raw non-ASCII
 *   HTTP-version = "HTTP/" DIGIT "." DIGIT
 *   field-line   = token ":" *( SP / HTAB / VCHAR / obs-text ) CRLF
 *                  ; not starting with SP/HTAB (obs-fold)
 *   head end     = CRLF
 *
 * Sizes are not checked here (h1 does that with the configured limits).
 * The checker is incremental: feed it each read's bytes until it says done.
 */
#ifndef SAKER_WORKER_H1_HEAD_H
#define SAKER_WORKER_H1_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h1_head_check {
    uint8_t state;
    uint8_t version_pos; /* bytes of "HTTP/d.d" seen */
};

enum h1_head_result {
    H1_HEAD_MORE, /* all of it fits; the head continues in the next bytes */
    H1_HEAD_DONE, /* the head ended; *used says where */
    H1_HEAD_BAD,  /* a byte that does not fit the grammar */
};

void h1_head_check_start(struct h1_head_check *check);
/* Starts at the field lines instead: a chunked body's trailer section and
 * the CRLF that ends it (RFC 9112 section 7.1.2). */
void h1_head_check_start_fields(struct h1_head_check *check);
/* Checks len bytes continuing the head; *used gets the bytes that belong
 * to the head (for H1_HEAD_DONE) or the offset of the bad byte. */
enum h1_head_result h1_head_check(struct h1_head_check *check, const char *p, size_t len,
                                  size_t *used);

/* RFC 9110 section 5.6.2: a tchar, a byte of a token. */
bool h1_head_is_token_byte(unsigned char c);
/* True when [p, p + len) continues a request method that fits the grammar
 * (more token bytes, then the rest of the head, whole or cut short). */
bool h1_head_method_rest_ok(const char *p, size_t len);

#endif
