/*
 * test_handlers.c - registers the test handler kinds; see test_handlers.h.
 */
#include "tests/handlers/test_handlers.h"

#include "worker/handler.h"

extern const struct handler_ops handler_test_stream_ops;
extern const struct handler_ops handler_test_echo_ops;
extern const struct handler_ops handler_test_upgrade_ops;

int test_handlers_register(struct err *err)
{
    static const struct handler_ops *const kinds[] = {
        &handler_test_stream_ops,
        &handler_test_echo_ops,
        &handler_test_upgrade_ops,
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (handler_register(kinds[i], err) != SK_OK)
            return SK_ERROR;
    return SK_OK;
}
