/*
 * ws_accept.c - RFC 6455's accept value; see ws_accept.h.
 */
#include "common/ws_accept.h"

#include <string.h>

#include <openssl/evp.h>

#include "common/error.h"

int ws_accept_of(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; /* section 1.3 */
    unsigned char decoded[24], digest[EVP_MAX_MD_SIZE];
    char text[24 + sizeof guid];
    unsigned digest_len = 0;

    /* A 16-byte nonce in base64 is 24 characters (section 4.1). */
    if (key_len != 24 || EVP_DecodeBlock(decoded, (const unsigned char *)key, 24) != 18)
        return SK_ERROR;
    memcpy(text, key, 24);
    memcpy(text + 24, guid, sizeof guid - 1);
    if (EVP_Digest(text, 24 + sizeof guid - 1, digest, &digest_len, EVP_sha1(), NULL) != 1 ||
        digest_len != 20)
        return SK_ERROR;
    EVP_EncodeBlock((unsigned char *)out, digest, 20);
    out[28] = '\0';
    return SK_OK;
}
