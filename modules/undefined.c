/* undefined.c - a module that calls a function saker does not export:
 * refused at load, since modules are bound at once (RTLD_NOW). */
#include <saker/module.h>

void saker_exchange_no_such_call(saker_exchange *ex);

static void handle(saker_exchange *ex, void *state)
{
    (void)state;
    saker_exchange_no_such_call(ex);
}

static const struct saker_handler handlers[] = {{.name = "undefined", .handle = handle}, {0}};

SAKER_MODULE_EXPORT saker_module = {.abi = SAKER_MODULE_ABI, .name = "undefined",
                                     .handlers = handlers};
