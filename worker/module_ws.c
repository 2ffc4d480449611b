/*
 * module_ws.c - RFC 6455 framing for modules (include/saker/module.h):
 * enough for a WebSocket endpoint on an upgraded exchange, where the
 * module owns the messages (reassembly, UTF-8 of text, the close
 * handshake) and saker the bytes. The server side only: client frames
 * must be masked (section 5.1), server frames never are.
 */
#include <string.h>

#include <openssl/evp.h>

#include "include/saker/module.h"

/* Section 5.2: the fixed two bytes, then 0, 2 or 8 bytes of length, then
 * the 4-byte mask. */
static int ws_head(const uint8_t *d, size_t size, uint64_t *len, size_t *head)
{
    if (size < 2)
        return SAKER_DECLINED;
    uint64_t n = d[1] & 0x7f;
    size_t at = 2;
    if (n == 126) {
        if (size < 4)
            return SAKER_DECLINED;
        n = (uint64_t)d[2] << 8 | d[3];
        at = 4;
    } else if (n == 127) {
        if (size < 10)
            return SAKER_DECLINED;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | d[2 + i];
        if (n >> 63)
            return SAKER_ERROR; /* the most significant bit must be 0 */
        at = 10;
    }
    *len = n;
    *head = at + 4;
    return SAKER_OK;
}

int saker_ws_parse(uint8_t *data, size_t size, uint64_t max_payload,
                   struct saker_ws_frame *frame, size_t *used)
{
    if (size < 1)
        return SAKER_DECLINED;
    unsigned opcode = data[0] & 0x0f;
    bool fin = data[0] & 0x80, control = opcode & 0x8;
    if ((data[0] & 0x70) != 0 || (opcode > 0x2 && opcode < 0x8) || opcode > 0xA)
        return SAKER_ERROR; /* reserved bits without an extension, reserved opcodes */
    if (size >= 2 && !(data[1] & 0x80))
        return SAKER_ERROR; /* a client frame must be masked */
    uint64_t len;
    size_t head;
    int rc = ws_head(data, size, &len, &head);
    if (rc != SAKER_OK)
        return rc;
    if ((control && (len > 125 || !fin)) || len > max_payload)
        return SAKER_ERROR;
    if (size < head || size - head < len)
        return SAKER_DECLINED;
    const uint8_t *mask = data + head - 4;
    uint8_t *payload = data + head;
    for (uint64_t i = 0; i < len; i++)
        payload[i] ^= mask[i & 3];
    *frame = (struct saker_ws_frame){.fin = fin, .opcode = opcode, .payload = payload,
                                     .len = len};
    *used = head + (size_t)len;
    return SAKER_OK;
}

size_t saker_ws_frame_head(uint8_t head[10], unsigned opcode, bool fin, uint64_t len)
{
    head[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        head[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        head[1] = 126;
        head[2] = (uint8_t)(len >> 8), head[3] = (uint8_t)len;
        return 4;
    }
    head[1] = 127;
    for (int i = 0; i < 8; i++)
        head[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

int saker_ws_accept(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; /* section 1.3 */
    unsigned char decoded[24], digest[EVP_MAX_MD_SIZE];
    char text[24 + sizeof guid];
    unsigned digest_len = 0;

    /* A 16-byte nonce in base64 is 24 characters (section 4.1). */
    if (key_len != 24 || EVP_DecodeBlock(decoded, (const unsigned char *)key, 24) != 18)
        return SAKER_ERROR;
    memcpy(text, key, 24);
    memcpy(text + 24, guid, sizeof guid - 1);
    if (EVP_Digest(text, 24 + sizeof guid - 1, digest, &digest_len, EVP_sha1(), NULL) != 1 ||
        digest_len != 20)
        return SAKER_ERROR;
    EVP_EncodeBlock((unsigned char *)out, digest, 20);
    out[28] = '\0';
    return SAKER_OK;
}
