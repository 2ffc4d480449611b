/*
 * check_module_ws.c - the RFC 6455 helper of the module API
 * (worker/module_ws.c): the RFC's own examples, masking, lengths of
 * each size, and the frames a server must refuse.
 */
#include <string.h>

#include "include/saker/module.h"
#include "tests/unit/unit.h"

/* A masked client frame of payload, into out; its length. */
static size_t client_frame(uint8_t *out, unsigned first, const uint8_t *payload, size_t len)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t at = saker_ws_frame_head(out, first & 0x0f, first & 0x80, len);
    out[0] = (uint8_t)first;
    out[1] |= 0x80;
    memcpy(out + at, mask, 4);
    for (size_t i = 0; i < len; i++)
        out[at + 4 + i] = payload[i] ^ mask[i & 3];
    return at + 4 + len;
}

START_TEST(the_rfc_examples)
{
    char accept[29];
    /* Section 1.3. */
    ck_assert_int_eq(saker_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, accept), SAKER_OK);
    ck_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ck_assert_int_eq(saker_ws_accept("short", 5, accept), SAKER_ERROR);
    ck_assert_int_eq(saker_ws_accept("!!!!!!!!!!!!!!!!!!!!!!!!", 24, accept), SAKER_ERROR);
    /* Section 5.7: a single-frame masked text message "Hello". */
    uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct saker_ws_frame f;
    size_t used;
    ck_assert_int_eq(saker_ws_parse(masked, sizeof masked, 125, &f, &used), SAKER_OK);
    ck_assert_uint_eq(used, sizeof masked);
    ck_assert(f.fin);
    ck_assert_uint_eq(f.opcode, SAKER_WS_TEXT);
    ck_assert_uint_eq(f.len, 5);
    ck_assert_int_eq(memcmp(f.payload, "Hello", 5), 0);
    /* The server's unmasked "Hello". */
    uint8_t head[10];
    ck_assert_uint_eq(saker_ws_frame_head(head, SAKER_WS_TEXT, true, 5), 2);
    ck_assert_int_eq(head[0], 0x81);
    ck_assert_int_eq(head[1], 0x05);
}
END_TEST

START_TEST(every_length_form_and_partial_input)
{
    static uint8_t payload[70000], frame[70016];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    const size_t sizes[] = {0, 125, 126, 65535, 65536, 70000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = client_frame(frame, 0x82, payload, sizes[k]);
        struct saker_ws_frame f;
        size_t used;
        /* Any prefix asks for more, never errs or reads past it. */
        for (size_t cut = 0; cut < n; cut += n / 7 + 1)
            ck_assert_int_eq(saker_ws_parse(frame, cut, 1 << 20, &f, &used), SAKER_DECLINED);
        ck_assert_int_eq(saker_ws_parse(frame, n, 1 << 20, &f, &used), SAKER_OK);
        ck_assert_uint_eq(used, n);
        ck_assert_uint_eq(f.len, sizes[k]);
        ck_assert_int_eq(memcmp(f.payload, payload, sizes[k]), 0);
        uint8_t head[10];
        size_t h = saker_ws_frame_head(head, SAKER_WS_BINARY, true, sizes[k]);
        ck_assert_uint_eq(h, sizes[k] < 126 ? 2 : sizes[k] < 65536 ? 4 : 10);
    }
}
END_TEST

START_TEST(frames_a_server_refuses)
{
    uint8_t frame[300], big[200] = {0};
    struct saker_ws_frame f;
    size_t used;
    uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
    ck_assert_int_eq(saker_ws_parse(unmasked, sizeof unmasked, 125, &f, &used), SAKER_ERROR);
    size_t n = client_frame(frame, 0xC1, (const uint8_t *)"x", 1); /* RSV1 */
    ck_assert_int_eq(saker_ws_parse(frame, n, 125, &f, &used), SAKER_ERROR);
    n = client_frame(frame, 0x83, (const uint8_t *)"x", 1); /* reserved opcode */
    ck_assert_int_eq(saker_ws_parse(frame, n, 125, &f, &used), SAKER_ERROR);
    n = client_frame(frame, 0x89, big, 126); /* a ping over 125 bytes */
    ck_assert_int_eq(saker_ws_parse(frame, n, 1000, &f, &used), SAKER_ERROR);
    n = client_frame(frame, 0x09, (const uint8_t *)"x", 1); /* a fragmented ping */
    ck_assert_int_eq(saker_ws_parse(frame, n, 125, &f, &used), SAKER_ERROR);
    n = client_frame(frame, 0x82, big, 200); /* over max_payload */
    ck_assert_int_eq(saker_ws_parse(frame, n, 199, &f, &used), SAKER_ERROR);
    uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}; /* 64-bit length, top bit set */
    ck_assert_int_eq(saker_ws_parse(huge, sizeof huge, UINT64_MAX, &f, &used), SAKER_ERROR);
}
END_TEST

static Suite *module_ws_suite(void)
{
    Suite *s = suite_create("module_ws");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, the_rfc_examples);
    tcase_add_test(tc, every_length_form_and_partial_input);
    tcase_add_test(tc, frames_a_server_refuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(module_ws_suite());
}
