/*
 * compress_negotiate.h - which content coding a request accepts (RFC 9110
 * section 12.5.3), and whether a response's type is one to compress.
 *
 * Pure functions of header values, for the compression filter and for
 * the static handler's precompressed files.
 */
#ifndef SAKER_WORKER_COMPRESS_NEGOTIATE_H
#define SAKER_WORKER_COMPRESS_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config_compression.h"

/* The coding to send among providers (in the server's order of
 * preference), for an Accept-Encoding value, or -1 for none:
 *  - the highest q-value wins, the server's order breaks ties; q=0
 *    refuses a coding; "*" stands for every coding not named; "x-gzip"
 *    is gzip (section 8.4.1.3); a malformed q-value drops its member;
 *  - identity named with a higher q-value than the best coding keeps the
 *    response as it is (ASP.NET Core does the same);
 *  - no header (accept NULL), or an empty one, is no coding. */
int compress_negotiate(const char *accept, size_t len, const enum config_coding *providers,
                       size_t count);

/* True when the media type of a Content-Type value (parameters dropped,
 * case-insensitive) is in types: exact, "major/" with a star, or the
 * any-type wildcard. */
bool compress_type_listed(const char *content_type, size_t len, char *const *types,
                          size_t count);

#endif
