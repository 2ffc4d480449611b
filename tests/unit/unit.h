/*
 * unit.h - what every Check suite's main() does: run the suite and turn
 * the result into an exit status for the automake test driver.
 *
 * Suites run in Check's fork mode (each test in its own process, so a
 * crash fails one test, not the suite) unless CK_FORK=no asks for one
 * process, e.g. under valgrind. CK_VERBOSITY chooses the output detail.
 */
#ifndef SAKER_TESTS_UNIT_H
#define SAKER_TESTS_UNIT_H

#include <check.h>
#include <stdlib.h>

static inline int unit_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_ENV);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
