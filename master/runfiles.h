/*
 * runfiles.h - the files the master creates outside its segment: the run
 * directory, the pid file and log files.
 *
 * saker usually runs as root, and these live in directories other users
 * may share: nothing here opens an existing name for writing by path.
 *
 *  - The default run directory (/run/saker as root, else $XDG_RUNTIME_DIR
 *    or a private /dev/shm/saker-UID) is made if missing and used only if
 *    it is a real directory of ours that nobody else may write.
 *  - The pid file is made under a random name (O_EXCL) before anything is
 *    bound, which proves the directory writable, filled and renamed into
 *    place only once the instance started, and removed at exit only while
 *    it is still the file this process wrote: a second saker that fails to
 *    start, or the old master after a binary upgrade, leaves the running
 *    master's pid file alone.
 *  - A log file the master creates gets mode 0640 and the workers' user
 *    from the start (fchown on the new descriptor, as nginx gives its logs
 *    to the worker user), so workers can reopen it after a rotation. An
 *    existing file is left as its owner made it.
 */
#ifndef SAKER_MASTER_RUNFILES_H
#define SAKER_MASTER_RUNFILES_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "conf/config.h"

struct pid_file {
    char path[PATH_MAX];    /* "": none configured */
    char temp[PATH_MAX];    /* the random name until committed */
    int fd;                 /* -1 when none is open */
    bool committed;
    uint64_t dev, ino;      /* what was renamed into place */
};

/* Makes the directory of path when it is the default run directory, and
 * checks it (see above). SK_OK for any other directory. */
int runfiles_prepare_dir(const char *path, struct err *err);

/* Opens a temporary file beside path (which may be NULL: nothing to do). */
int pid_file_prepare(struct pid_file *pf, const char *path, struct err *err);
/* Writes getpid() into it and renames it over path. */
int pid_file_commit(struct pid_file *pf, struct err *err);
/* At exit: removes the temporary file, or path if it is still ours. */
void pid_file_release(struct pid_file *pf);

/* Creates the log file at path (not "stderr") if it does not exist, with
 * mode 0640, owned by config's user and group when running as root; it
 * appears at path only once owned and moded (made under a temporary name
 * and linked into place). Errors are left to the open that follows. */
void runfiles_create_log(const char *path, const struct config *config);
/* runfiles_create_log for the error log and the access log of config. */
void runfiles_create_logs(const struct config *config);

#endif
