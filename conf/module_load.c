/*
 * module_load.c - opening a module's shared object for a config: a
 * private copy in a memfd, dlopen'ed, its descriptor found and its ABI
 * checked.
 *
 * Why a copy: dlopen keeps one copy of an object per name and per device
 * and inode, so a module rebuilt in place (`cp new.so hello.so` keeps the
 * inode) would come back as the copy already mapped, and a reload would
 * serve the old code. A memfd is a new inode each time: every config
 * load gets the module as the file is now, with globals of its own,
 * while an older generation keeps the copy it was forked with. The memfd
 * is closed once mapped, so nothing of it leaks into the workers.
 */
#include "conf/config_module.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "include/saker/module.h"

/* Copies the file at path into a new memfd. The fd, or -1 with why. */
static int module_copy(const char *path, struct err *why)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return err_set_errno(why, errno, "cannot open"), -1;
    struct stat st;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int out = fstat(in, &st) == 0 && S_ISREG(st.st_mode) ? memfd_create(base, MFD_CLOEXEC) : -2;
    if (out < 0) {
        if (out == -2)
            err_set(why, "not a regular file");
        else
            err_set_errno(why, errno, "memfd_create");
        close(in);
        return -1;
    }
    for (off_t done = 0; done < st.st_size;) {
        ssize_t n = sendfile(out, in, NULL, (size_t)(st.st_size - done));
        if (n <= 0) {
            err_set_errno(why, n == 0 ? EIO : errno, "copying it");
            close(in), close(out);
            return -1;
        }
        done += n;
    }
    close(in);
    return out;
}

/* dlopen of the copy. Its name, /proc/self/fd/N, is what dlopen matches
 * first: a descriptor number an unloaded object once had must not hand
 * that object back, so the copy moves to a number no loaded object has. */
static void *module_map(int *fd, struct err *why)
{
    char name[64];
    for (int tries = 0; tries < 64; tries++) {
        snprintf(name, sizeof name, "/proc/self/fd/%d", *fd);
        void *loaded = dlopen(name, RTLD_NOW | RTLD_NOLOAD);
        if (loaded == NULL)
            break;
        dlclose(loaded);
        int moved = fcntl(*fd, F_DUPFD_CLOEXEC, *fd + 1);
        if (moved < 0)
            return err_set_errno(why, errno, "fcntl(F_DUPFD)"), NULL;
        close(*fd);
        *fd = moved;
    }
    void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *e = dlerror();
        const char *colon = e ? strstr(e, ": ") : NULL; /* drop the /proc/self/fd name */
        err_set(why, "%s", colon ? colon + 2 : e ? e : "dlopen failed");
    }
    return handle;
}

static int module_open(const char *path, void **handle, const struct saker_module **desc,
                       struct err *why)
{
    int fd = module_copy(path, why);
    if (fd < 0)
        return SK_ERROR;
    *handle = module_map(&fd, why);
    close(fd);
    if (*handle == NULL)
        return SK_ERROR;
    const struct saker_module *d = dlsym(*handle, "saker_module");
    if (d == NULL) {
        dlclose(*handle);
        *handle = NULL;
        return err_set(why, "no symbol 'saker_module': not a saker module (see "
                            "SAKER_MODULE_EXPORT in saker/module.h)");
    }
    if (d->abi != SAKER_MODULE_ABI) {
        err_set(why, "built for module ABI %u, this saker has ABI %d: rebuild it against "
                     "this saker's saker/module.h", d->abi, SAKER_MODULE_ABI);
        dlclose(*handle); /* d is gone with it */
        *handle = NULL;
        return SK_ERROR;
    }
    *desc = d;
    return SK_OK;
}

static void module_close(void *handle)
{
    dlclose(handle);
}

const struct config_module_loader config_module_dlopen = {module_open, module_close};
