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

const char *mime_type_for(const char *file_name);

#endif
