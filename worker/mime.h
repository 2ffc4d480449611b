/*
 * mime.h - Content-Type by file extension.
 *
 * A built-in table of the common web types (html, css, js, json, svg, png,
 * jpg, gif, webp, ico, txt, xml, pdf, wasm, woff/woff2, mp4, ...), matched
 * case-insensitively on the last extension. text types carry
 * "; charset=utf-8". Unknown or no extension: "application/octet-stream".
 */
#ifndef SAKER_WORKER_MIME_H
#define SAKER_WORKER_MIME_H

#include <stddef.h>

const char *mime_type_for(const char *file_name);

/* As mime_type_for, with a route's own extensions first (`mime_types:`,
 * lower case without the dot) and fallback (`default_type:`) for names
 * nothing knows. */
struct route_static_type;
const char *mime_type_lookup(const char *file_name, const struct route_static_type *overrides,
                             size_t count, const char *fallback);

#endif
