/*
 * config_module.h - the `modules:` of a config: shared objects whose
 * handlers routes use with `module: { handler: NAME, ... }`.
 *
 *   modules:
 *     - path: /usr/lib/saker/modules/json_counter.so
 *       config: { start: 100 }        # the module's own options
 *
 * conf/ does not load code itself: the process that may run modules (the
 * saker binary) installs a loader before it loads a config
 * (config_set_module_loader with config_module_dlopen). Each module is then
 * opened, its descriptor checked (ABI, names), its `config:` map parsed
 * with its option table, and its load() run: so `saker -t`, a start and
 * a reload refuse a wrong ABI, a missing symbol or a bad option with the
 * file's place. sakerctl installs none: it reads configs for their
 * shm_path and must not run a module's code as root; there the modules
 * are recorded by path only and a `module:` route's keys are not checked.
 *
 * A config owns its modules: config_free closes them after its routes
 * are freed (a route's options are described by the module's tables).
 */
#ifndef SAKER_CONF_CONFIG_MODULE_H
#define SAKER_CONF_CONFIG_MODULE_H

#include <stddef.h>

#include "common/error.h"

struct saker_module;
struct saker_option;
struct saker_handler;
struct cfg_option;
struct config;

struct config_module {
    char *path;                      /* as written */
    const struct saker_module *desc; /* NULL: not opened (no loader) */
    void *handle;                    /* the loader's */
    void *options;                   /* the `config:` map, desc->config_size bytes */
    int line, column;                /* of the entry, for messages */
};

struct config_module_loader {
    /* Opens the shared object at path and finds its descriptor, checked
     * for the ABI. SK_OK, or SK_ERROR with why (without the place). */
    int (*open)(const char *path, void **handle, const struct saker_module **desc,
                struct err *why);
    void (*close)(void *handle);
};

/* The loader of the saker binary: a private copy of the file in a
 * memfd, dlopen'ed (module_load.c, which says why a copy). */
extern const struct config_module_loader config_module_dlopen;

/* Installs the loader every config loaded afterwards uses (NULL: none). */
void config_set_module_loader(const struct config_module_loader *loader);
/* Whether one is installed. */
int config_module_loader_installed(void);

/* The option rows for a module's table (NULL-name ended), for the
 * config machinery; *count set. NULL when out of memory. The caller
 * frees the rows. extra rows are left zero at the front for the caller. */
struct cfg_option *config_module_rows(const struct saker_option *options, size_t extra,
                                      size_t *count);
/* The handler of that name among config's modules (and *module, its
 * module), or NULL. */
const struct saker_handler *cfg_module_handler(const struct config *config, const char *name,
                                               const struct config_module **module);
/* Frees the strings a module's table parsed into options (not options). */
void config_module_options_release(const struct saker_option *options, void *base);

#endif
