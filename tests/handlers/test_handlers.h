/*
 * test_handlers.h - handlers the test suite drives saker with, compiled
 * into saker only by `configure --enable-test-handlers` (a release build
 * has none) and always into the unit suites. Each is a handler kind
 * registered at run time (worker/handler.h's handler_register), as a
 * module's would be:
 *
 *   test_stream:   answers after `delay`, `bytes` bytes in `piece`-sized
 *                  sends, each after the previous one's proceed (the
 *                  backpressure); byte i of the body is 'a' + i % 26.
 *                  `whole: true` answers with exchange_respond instead;
 *                  `length: true` declares Content-Length; `trailer:
 *                  true` adds "x-checksum: <bytes>"; `abort_after: N`
 *                  sends EXCHANGE_ERROR once N bytes are out;
 *                  `content_type:` its Content-Type (application/octet-stream);
 *                  `lent: true` sends each MORE piece with exchange_send_lent,
 *                  from a copy spoiled and freed at its release.
 *   test_echo:     streams the request body back as it arrives.
 *   test_upgrade:  accepts an upgrade and echoes the tunnel's bytes.
 *
 * Every one counts its stops in test_handler_stops (for the unit suites:
 * an abandoned exchange's producer is told exactly once).
 */
#ifndef SAKER_TESTS_HANDLERS_TEST_HANDLERS_H
#define SAKER_TESTS_HANDLERS_TEST_HANDLERS_H

#include "common/error.h"

/* Registers every test kind. SK_OK or SK_ERROR. */
int test_handlers_register(struct err *err);

/* How many times a test handler's stop was called, in this process. */
extern unsigned test_handler_stops;
/* Pieces test_stream lent, and releases of them (each exactly once). */
extern unsigned test_handler_lent, test_handler_released;

#endif
