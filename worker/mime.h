/*
 * mime.h - Content-Type by file extension.
 *
 * A built-in table of the common web types (html, css, js, json, svg, png,
 * jpg, gif, webp, ico, txt, xml, pdf, wasm, woff/woff2, mp4, ...), matched
 * case-insensitively on the last extension, then the system's table
 * (/etc/mime.types, once mime_load_system has read it). text types of the
 * built-in table carry "; charset=utf-8". Unknown or no extension:
 * "application/octet-stream" (or the route's default_type).
 */
#ifndef SAKER_WORKER_MIME_H
#define SAKER_WORKER_MIME_H

#include <stddef.h>

const char *mime_type_for(const char *file_name);

/* Adds the system's table (/etc/mime.types: "type ext ext ..." lines)
 * behind the built-in one, once per process; its types carry no charset.
 * 0, or -1 when it cannot be read (the built-in table still answers). */
int mime_load_system(const char *path);

/* As mime_type_for, with a route's own extensions first (`mime_types:`,
 * lower case without the dot) and fallback (`default_type:`) for names
 * nothing knows. */
struct route_static_type;
const char *mime_type_lookup(const char *file_name, const struct route_static_type *overrides,
                             size_t count, const char *fallback);

#endif
