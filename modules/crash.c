/*
 * crash.c - a module that fails the two ways a worker can: `crash`
 * dies of SIGSEGV, as a bad pointer would kill it (the master counts
 * the death and respawns the worker; raised rather than provoked, so
 * that a sanitizer build sees the same crash and no report of a bug), `block` never returns (the watchdog kills the worker). For the
 * tests of what docs/modules.md promises; never for production.
 */
#include <signal.h>
#include <stddef.h>

#include <saker/module.h>

static void crash_handle(saker_exchange *ex, void *state)
{
    (void)ex, (void)state;
    raise(SIGSEGV);
}

static void block_handle(saker_exchange *ex, void *state)
{
    (void)ex, (void)state;
    for (volatile int spin = 1; spin;)
        ;
}

static const struct saker_handler crash_handlers[] = {
    {.name = "crash", .handle = crash_handle},
    {.name = "block", .handle = block_handle},
    {.name = NULL},
};

SAKER_MODULE_EXPORT saker_module = {
    .abi = SAKER_MODULE_ABI,
    .name = "crash",
    .handlers = crash_handlers,
};
