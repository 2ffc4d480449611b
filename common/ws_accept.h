/*
 * ws_accept.h - the Sec-WebSocket-Accept value of a Sec-WebSocket-Key
 * (RFC 6455 section 4.2.2): what a WebSocket server answers (the module
 * API's saker_ws_accept) and what the proxy checks in an upstream's 101
 * when it made the key itself (an HTTP/2 extended CONNECT gone up as an
 * HTTP/1.1 handshake).
 */
#ifndef SAKER_COMMON_WS_ACCEPT_H
#define SAKER_COMMON_WS_ACCEPT_H

#include <stddef.h>

/* The 28 base64 characters of SHA-1(key + the RFC's GUID), NUL-ended,
 * into out. SK_OK, or SK_ERROR when key is not 16 bytes in base64. */
int ws_accept_of(const char *key, size_t key_len, char out[29]);

#endif
