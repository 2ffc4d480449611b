/*
 * check_args.c - sakerctl command options (cli/args.c): flags, durations
 * in the config's syntax plus decimal seconds, counts, and the errors an
 * operator sees for a wrong one.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "conf/units.h"
#include "tests/unit/unit.h"

static bool now;
static uint64_t timeout;
static unsigned count;
static const struct cli_arg args[] = {
    {"--now", CLI_ARG_FLAG, &now},
    {"--timeout", CLI_ARG_DURATION, &timeout},
    {"--iterations", CLI_ARG_UINT, &count},
};

static int parse(int argc, char **argv, struct err *err)
{
    now = false;
    timeout = 12345;
    count = 7;
    return cli_args_parse(argc, argv, args, 3, err);
}

#define PARSE(...)                                                        \
    ({                                                                    \
        char *argv_[] = {"stop", __VA_ARGS__};                            \
        parse((int)(sizeof argv_ / sizeof argv_[0]), argv_, &err);        \
    })

START_TEST(test_defaults_kept_when_absent)
{
    struct err err;
    char *argv[] = {"stop"};
    ck_assert_int_eq(parse(1, argv, &err), SK_OK);
    ck_assert(!now);
    ck_assert_uint_eq(timeout, 12345);
    ck_assert_uint_eq(count, 7);
}
END_TEST

START_TEST(test_durations_in_config_syntax)
{
    struct err err;
    ck_assert_int_eq(PARSE("--timeout", "90"), SK_OK);
    ck_assert_uint_eq(timeout, 90000);
    ck_assert_int_eq(PARSE("--timeout=500ms"), SK_OK);
    ck_assert_uint_eq(timeout, 500);
    ck_assert_int_eq(PARSE("--timeout", "2m", "--now"), SK_OK);
    ck_assert_uint_eq(timeout, 120000);
    ck_assert(now);
    ck_assert_int_eq(PARSE("--timeout", "0.25"), SK_OK);
    ck_assert_uint_eq(timeout, 250);
    ck_assert_int_eq(PARSE("--timeout", "1.5"), SK_OK);
    ck_assert_uint_eq(timeout, 1500);
}
END_TEST

START_TEST(test_counts)
{
    struct err err;
    ck_assert_int_eq(PARSE("--iterations", "3"), SK_OK);
    ck_assert_uint_eq(count, 3);
    ck_assert_int_eq(PARSE("--iterations", "-1"), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "whole number"));
    ck_assert_int_eq(PARSE("--iterations", " 3"), SK_ERROR);
    ck_assert_int_eq(PARSE("--iterations", "3x"), SK_ERROR);
    ck_assert_int_eq(PARSE("--iterations", "99999999999"), SK_ERROR);
}
END_TEST

START_TEST(test_errors_name_the_argument)
{
    struct err err;
    ck_assert_int_eq(PARSE("--bogus"), SK_ERROR);
    ck_assert_str_eq(err.message, "stop: unknown option or argument '--bogus'");
    ck_assert_int_eq(PARSE("--timeout"), SK_ERROR);
    ck_assert_str_eq(err.message, "--timeout needs a value");
    ck_assert_int_eq(PARSE("--timeout", "soon"), SK_ERROR);
    ck_assert_ptr_nonnull(strstr(err.message, "--timeout: expected a duration"));
    ck_assert_int_eq(PARSE("--timeout", ".5"), SK_ERROR);
    ck_assert_int_eq(PARSE("--timeout", "-1"), SK_ERROR);
    ck_assert_int_eq(PARSE("--now=yes"), SK_ERROR);
    ck_assert_str_eq(err.message, "--now takes no value");
    ck_assert_int_eq(PARSE("--no"), SK_ERROR); /* a prefix is not a match */
    ck_assert_int_eq(PARSE("extra"), SK_ERROR);
}
END_TEST

START_TEST(test_format_ms_reads_back)
{
    char buf[32];
    ck_assert_str_eq(cli_format_ms(0, buf, sizeof buf), "0s");
    ck_assert_str_eq(cli_format_ms(60000, buf, sizeof buf), "60s");
    ck_assert_str_eq(cli_format_ms(90000, buf, sizeof buf), "90s");
    ck_assert_str_eq(cli_format_ms(1500, buf, sizeof buf), "1500ms");
    ck_assert_str_eq(cli_format_ms(7200000, buf, sizeof buf), "2h");
    uint64_t values[] = {1, 999, 1000, 61000, 3600000, 3601000, UINT64_C(86400000)};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint64_t back;
        struct err err;
        ck_assert_int_eq(units_parse_duration(cli_format_ms(values[i], buf, sizeof buf), &back,
                                              &err), SK_OK);
        ck_assert_uint_eq(back, values[i]);
    }
}
END_TEST

static Suite *args_suite(void)
{
    Suite *s = suite_create("args");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults_kept_when_absent);
    tcase_add_test(tc, test_durations_in_config_syntax);
    tcase_add_test(tc, test_counts);
    tcase_add_test(tc, test_errors_name_the_argument);
    tcase_add_test(tc, test_format_ms_reads_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(args_suite());
}
