/*
 * json_check.h - a JSON syntax validator (RFC 8259 grammar, nesting to 32
 * levels), for the tests of what sakerctl status --json writes: the unit
 * suite's documents (check_metrics) and any segment's (fuzz_shm).
 */
#ifndef SAKER_TESTS_JSON_CHECK_H
#define SAKER_TESTS_JSON_CHECK_H

#include <stdbool.h>

/* text is one JSON value, with whitespace around it at most. */
bool json_check(const char *text);

#endif
