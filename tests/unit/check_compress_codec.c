/*
 * check_compress_codec.c - one compressed stream's memory, counted through
 * the allocation hooks zlib and Brotli are given: bounded for a long body
 * of unknown length, smaller for a short known one, and all of it given
 * back at the end (or when a stream is dropped half-way); what comes out
 * decodes to what went in, fed in pieces of any size.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/error.h"
#include "tests/unit/unit.h"
#include "worker/compress_codec.h"

#define KIB 1024
#define MIB (1024 * 1024)

/* Text that compresses like a web page, not like one repeated byte. */
static void fill_text(uint8_t *p, size_t n, unsigned seed)
{
    static const char *const words[] = {"saker ", "worker ", "exchange ", "filter ", "{\"id\":",
                                        "\"name\":\"", "</div>\n", "function(", "0.4213, "};
    size_t at = 0;
    while (at < n) {
        seed = seed * 1103515245 + 12345;
        const char *w = words[(seed >> 16) % 9];
        size_t len = strlen(w) < n - at ? strlen(w) : n - at;
        memcpy(p + at, w, len);
        at += len;
    }
}

/* Compresses in (in pieces of `piece` bytes) with the whole output kept;
 * returns its length, the stream's peak memory in *peak. */
static size_t compress_all(enum config_coding coding, uint64_t level, int64_t length,
                           const uint8_t *in, size_t n, size_t piece, uint8_t *out,
                           size_t out_size, size_t *peak)
{
    struct compress_codec c;
    ck_assert_int_eq(compress_codec_init(&c, coding, level, length), SK_OK);
    struct compress_io io = {.out = out, .out_left = out_size};
    bool done = false;
    for (size_t at = 0; !done;) {
        size_t len = n - at < piece ? n - at : piece;
        io.in = in + at, io.in_len = len;
        ck_assert_int_eq(compress_codec_run(&c, &io, at + len == n, &done), SK_OK);
        ck_assert_uint_eq(io.in_len, 0); /* the output has room: everything was taken */
        at += len;
        ck_assert(at < n || done);
    }
    *peak = c.memory_peak;
    ck_assert_uint_gt(compress_memory_in_use(), 0);
    compress_codec_end(&c);
    ck_assert_uint_eq(c.memory, 0);
    ck_assert_uint_eq(compress_memory_in_use(), 0);
    return out_size - io.out_left;
}

static void check_gzip_decodes(const uint8_t *z, size_t zn, const uint8_t *want, size_t n,
                               int window)
{
    uint8_t *back = malloc(n + 1);
    z_stream s = {0};
    ck_assert_int_eq(inflateInit2(&s, window), Z_OK);
    s.next_in = (Bytef *)z, s.avail_in = (uInt)zn;
    s.next_out = back, s.avail_out = (uInt)n + 1;
    ck_assert_int_eq(inflate(&s, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(s.total_out, n);
    ck_assert(memcmp(back, want, n) == 0);
    inflateEnd(&s);
    free(back);
}

START_TEST(test_codec_memory_bounded_and_given_back)
{
    size_t n = 8 * MIB, peak;
    uint8_t *in = malloc(n), *out = malloc(n);
    fill_text(in, n, 1);
    size_t zn = compress_all(CODING_GZIP, 5, -1, in, n, 64 * KIB, out, n, &peak);
    ck_assert_uint_lt(peak, 300 * KIB); /* deflate: 2^15 window, memLevel 8 */
    check_gzip_decodes(out, zn, in, n, 16 + 15);
    size_t bn = compress_all(CODING_BR, 1, -1, in, n, 64 * KIB, out, n, &peak);
    ck_assert_uint_lt(peak, 3 * MIB / 2); /* Brotli 1: a 2^18 window */
    ck_assert_uint_lt(bn, n / 4);
    compress_all(CODING_BR, 4, -1, in, n, 64 * KIB, out, n, &peak);
    ck_assert_uint_lt(peak, 10 * MIB); /* Brotli 4 and up: larger hash tables */
    free(in);
    free(out);
}
END_TEST

START_TEST(test_codec_small_known_length_costs_less)
{
    size_t n = 2000, peak_small, peak_unknown;
    uint8_t in[2000], out[4000];
    fill_text(in, n, 2);
    size_t zn = compress_all(CODING_DEFLATE, 1, (int64_t)n, in, n, n, out, sizeof out,
                             &peak_small);
    check_gzip_decodes(out, zn, in, n, 15);
    compress_all(CODING_DEFLATE, 1, -1, in, n, n, out, sizeof out, &peak_unknown);
    ck_assert_uint_lt(peak_small * 4, peak_unknown);
}
END_TEST

/* Any piece size, even one byte at a time, decodes to the same bytes. */
START_TEST(test_codec_pieces_of_any_size)
{
    static const size_t pieces[] = {1, 3, 4095, 16 * KIB, 16 * KIB + 1, 100 * KIB};
    size_t n = 200 * KIB, peak;
    uint8_t *in = malloc(n), *out = malloc(n);
    fill_text(in, n, 3);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        size_t zn = compress_all(CODING_GZIP, 6, -1, in, n, pieces[i], out, n, &peak);
        check_gzip_decodes(out, zn, in, n, 16 + 15);
    }
    free(in);
    free(out);
}
END_TEST

/* Output that must come out in small windows, and a stream dropped
 * half-way: its memory is given back all the same. */
START_TEST(test_codec_small_output_windows_and_dropped_stream)
{
    size_t n = 300 * KIB;
    uint8_t *in = malloc(n), out[512];
    fill_text(in, n, 4);
    for (int coding = 0; coding < CODING_COUNT; coding++) {
        struct compress_codec c;
        ck_assert_int_eq(compress_codec_init(&c, (enum config_coding)coding, 9, -1), SK_OK);
        struct compress_io io = {.in = in, .in_len = n};
        bool done = false;
        for (int round = 0; round < 50; round++) {
            io.out = out, io.out_left = sizeof out;
            ck_assert_int_eq(compress_codec_run(&c, &io, true, &done), SK_OK);
            ck_assert(done || io.out_left == 0);
        }
        ck_assert(!done);
        compress_codec_end(&c);
        compress_codec_end(&c); /* twice is harmless */
        ck_assert_uint_eq(compress_memory_in_use(), 0);
    }
    free(in);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("compress_codec");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_codec_memory_bounded_and_given_back);
    tcase_add_test(tc, test_codec_small_known_length_costs_less);
    tcase_add_test(tc, test_codec_pieces_of_any_size);
    tcase_add_test(tc, test_codec_small_output_windows_and_dropped_stream);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(codec_suite());
}
