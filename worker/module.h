/*
 * module.h - saker modules inside saker (the public API is
 * include/saker/module.h): the loader the saker binary installs for its
 * configs, the modules of a worker, and the `module` kind's runtime.
 *
 * Loading (module_load.c): the shared object is copied into a memfd and
 * dlopen'ed from there, never from its path. dlopen keeps one copy of an
 * object per name and per device and inode, so a module rebuilt in place
 * (`cp new.so hello.so` keeps the inode) would otherwise come back as the
 * copy already mapped, and a reload would serve the old code. A memfd is
 * a new inode each time: every config load gets the module as the file is
 * now, with its own globals, while an older generation keeps the copy it
 * was forked with. The memfd is closed once mapped, so nothing of it
 * leaks into workers.
 *
 * In a worker (module_worker.c): module_workers_start runs each module's
 * worker_init, after privileges are dropped and before the routes'
 * handler inits; module_workers_stop runs worker_fini after their finis.
 * One worker per process: the `module` kind's init finds its worker's
 * modules through the worker being built.
 */
#ifndef SAKER_WORKER_MODULE_H
#define SAKER_WORKER_MODULE_H

#include <stdbool.h>

#include "common/error.h"
#include "conf/config_module.h"
#include "include/saker/module.h"
#include "worker/handler.h"

struct worker;

/* What a module's handle stands for: the module in one worker. */
struct saker_worker {
    struct worker *worker;
    const struct config_module *module;
    void *state;  /* what worker_init made */
    bool started; /* worker_init succeeded: worker_fini is owed */
};

extern const struct handler_ops handler_module_ops;

/* worker_init of each of the config's modules, in order. SK_OK, or
 * SK_ERROR naming the module (those already started are stopped). */
int module_workers_start(struct worker *w, struct err *err);
/* worker_fini of each started module, last first. */
void module_workers_stop(struct worker *w);

#endif
