/* check_digits.c - common/digits.c: decimal, padded decimal and hex at
 * their edges, compared with what printf writes. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/digits.h"
#include "tests/unit/unit.h"

static const uint64_t values[] = {0, 1, 9, 10, 15, 16, 255, 4096, 1000000007,
                                  UINT64_MAX / 3, UINT64_MAX};

START_TEST(decimal_and_hex_match_printf)
{
    char got[32], want[32];
    char *end = digits_decimal(got, values[_i]);
    *end = '\0';
    snprintf(want, sizeof want, "%" PRIu64, values[_i]);
    ck_assert_str_eq(got, want);
    end = digits_hex(got, values[_i]);
    *end = '\0';
    snprintf(want, sizeof want, "%" PRIx64, values[_i]);
    ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(padded_decimal_has_exactly_its_width)
{
    char got[8] = "xxxxxxx";
    ck_assert_ptr_eq(digits_decimal_padded(got, 7, 2), got + 2);
    ck_assert_int_eq(memcmp(got, "07xxxxx", 7), 0);
    ck_assert_ptr_eq(digits_decimal_padded(got, 1994, 4), got + 4);
    ck_assert_int_eq(memcmp(got, "1994xxx", 7), 0);
    digits_decimal_padded(got, 0, 4);
    ck_assert_int_eq(memcmp(got, "0000xxx", 7), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("digits");
    TCase *t = tcase_create("digits");
    tcase_add_loop_test(t, decimal_and_hex_match_printf, 0,
                        (int)(sizeof values / sizeof values[0]));
    tcase_add_test(t, padded_decimal_has_exactly_its_width);
    suite_add_tcase(s, t);
    return unit_run(s);
}
