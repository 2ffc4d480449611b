/* check_units.c - sizes and durations as written in the config (conf/units.c). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "conf/units.h"
#include "tests/unit/unit.h"

static uint64_t size_of(const char *text)
{
    uint64_t bytes = 12345;
    struct err err = {{0}};
    ck_assert_msg(units_parse_size(text, &bytes, &err) == SK_OK, "%s: %s", text, err.message);
    return bytes;
}

static uint64_t ms_of(const char *text)
{
    uint64_t ms = 12345;
    struct err err = {{0}};
    ck_assert_msg(units_parse_duration(text, &ms, &err) == SK_OK, "%s: %s", text, err.message);
    return ms;
}

START_TEST(sizes_with_units)
{
    ck_assert_uint_eq(size_of("0"), 0);
    ck_assert_uint_eq(size_of("100"), 100);
    ck_assert_uint_eq(size_of("100B"), 100);
    ck_assert_uint_eq(size_of("8KB"), 8000);
    ck_assert_uint_eq(size_of("30MB"), 30000000);
    ck_assert_uint_eq(size_of("2GB"), 2000000000ULL);
    ck_assert_uint_eq(size_of("1TB"), 1000000000000ULL);
    ck_assert_uint_eq(size_of("8KiB"), 8192);
    ck_assert_uint_eq(size_of("30MiB"), 30ULL << 20);
    ck_assert_uint_eq(size_of("1GiB"), 1ULL << 30);
    ck_assert_uint_eq(size_of("1TiB"), 1ULL << 40);
    ck_assert_uint_eq(size_of("8kib"), 8192);
    ck_assert_uint_eq(size_of("8 KiB"), 8192);
    ck_assert_uint_eq(size_of("18446744073709551615"), UINT64_MAX);
}
END_TEST

START_TEST(bad_sizes)
{
    static const char *const bad[] = {"", "KB", "-1", "1.5MB", "10XB", "10 K", "0x10", " 1",
                                      "1KB ", "+5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err err = {{0}};
        uint64_t bytes = 7;
        ck_assert_msg(units_parse_size(bad[i], &bytes, &err) == SK_ERROR, "'%s'", bad[i]);
        ck_assert_uint_eq(bytes, 7);
    }
    struct err err = {{0}};
    uint64_t bytes;
    ck_assert_int_eq(units_parse_size("10XB", &bytes, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "expected a size such as 8192, 64KB or 30MiB (units B, KB, "
                                  "MB, GB, TB, KiB, MiB, GiB, TiB), got '10XB'");
    ck_assert_int_eq(units_parse_size(NULL, &bytes, &err), SK_ERROR);
}
END_TEST

START_TEST(size_overflow)
{
    struct err err = {{0}};
    uint64_t bytes;
    ck_assert_int_eq(units_parse_size("18446744073709551616", &bytes, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "size '18446744073709551616' is too large");
    ck_assert_int_eq(units_parse_size("20000000TiB", &bytes, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "size '20000000TiB' is too large");
}
END_TEST

START_TEST(durations_with_units)
{
    ck_assert_uint_eq(ms_of("0"), 0);
    ck_assert_uint_eq(ms_of("30"), 30000); /* a bare number is seconds */
    ck_assert_uint_eq(ms_of("500ms"), 500);
    ck_assert_uint_eq(ms_of("30s"), 30000);
    ck_assert_uint_eq(ms_of("2m"), 120000);
    ck_assert_uint_eq(ms_of("1h"), 3600000);
    ck_assert_uint_eq(ms_of("1d"), 86400000);
    ck_assert_uint_eq(ms_of("5 s"), 5000);
    ck_assert_uint_eq(ms_of("10MS"), 10);
}
END_TEST

START_TEST(bad_durations)
{
    static const char *const bad[] = {"", "s", "-1s", "1.5s", "2x", "1m30s", "1w", "ms5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err err = {{0}};
        uint64_t ms = 7;
        ck_assert_msg(units_parse_duration(bad[i], &ms, &err) == SK_ERROR, "'%s'", bad[i]);
        ck_assert_uint_eq(ms, 7);
    }
    struct err err = {{0}};
    uint64_t ms;
    ck_assert_int_eq(units_parse_duration("2x", &ms, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "expected a duration such as 500ms, 30s, 2m or 1h (units ms, "
                                  "s, m, h, d; a bare number is seconds), got '2x'");
    ck_assert_int_eq(units_parse_duration("999999999999999999d", &ms, &err), SK_ERROR);
    ck_assert_str_eq(err.message, "duration '999999999999999999d' is too large");
}
END_TEST

static Suite *units_suite(void)
{
    Suite *s = suite_create("units");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, sizes_with_units);
    tcase_add_test(tc, bad_sizes);
    tcase_add_test(tc, size_overflow);
    tcase_add_test(tc, durations_with_units);
    tcase_add_test(tc, bad_durations);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(units_suite());
}
