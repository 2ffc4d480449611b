/*
 * runfiles.c - run directory, pid file, log files; see runfiles.h.
 */
#include "master/runfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static int check_dir(const char *dir, struct err *err)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return err_set_errno(err, errno, "run directory %s", dir);
    if (!S_ISDIR(st.st_mode))
        return err_set(err, "run directory %s: not a directory (a symbolic link?): refusing "
                       "to use it", dir);
    if (st.st_uid != geteuid())
        return err_set(err, "run directory %s: owned by uid %u, not by saker's uid %u: "
                       "refusing to use it", dir, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return err_set(err, "run directory %s: writable by others (mode %04o): refusing to "
                       "use it", dir, (unsigned)(st.st_mode & 07777));
    return SK_OK;
}

int runfiles_prepare_dir(const char *path, struct err *err)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    const char *dir = dirname(copy);
    if (strcmp(dir, config_default_run_dir()) != 0)
        return SK_OK;
    /* Readable by operators when root (sakerctl status as another user
     * reads a 0640 segment); private otherwise. */
    if (mkdir(dir, geteuid() == 0 ? 0755 : 0700) != 0 && errno != EEXIST)
        return err_set_errno(err, errno, "mkdir(%s)", dir);
    return check_dir(dir, err);
}

int pid_file_prepare(struct pid_file *pf, const char *path, struct err *err)
{
    memset(pf, 0, sizeof *pf);
    pf->fd = -1;
    if (path == NULL)
        return SK_OK;
    snprintf(pf->path, sizeof pf->path, "%s", path);
    if (snprintf(pf->temp, sizeof pf->temp, "%s.XXXXXX", path) >= (int)sizeof pf->temp)
        return err_set(err, "pid file %s: path too long", path);
    pf->fd = mkostemp(pf->temp, O_CLOEXEC);
    if (pf->fd < 0) {
        pf->temp[0] = '\0';
        return err_set_errno(err, errno, "pid file %s", path);
    }
    if (fchmod(pf->fd, 0644) != 0)
        return err_set_errno(err, errno, "pid file %s: fchmod", path);
    return SK_OK;
}

int pid_file_commit(struct pid_file *pf, struct err *err)
{
    if (pf->fd < 0)
        return SK_OK;
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    struct stat st;
    if (ftruncate(pf->fd, 0) != 0 || pwrite(pf->fd, text, (size_t)n, 0) != n ||
        fstat(pf->fd, &st) != 0)
        return err_set_errno(err, errno, "pid file %s", pf->path);
    if (rename(pf->temp, pf->path) != 0)
        return err_set_errno(err, errno, "pid file: rename(%s, %s)", pf->temp, pf->path);
    close(pf->fd);
    pf->fd = -1;
    pf->committed = true;
    pf->dev = (uint64_t)st.st_dev;
    pf->ino = (uint64_t)st.st_ino;
    return SK_OK;
}

void pid_file_release(struct pid_file *pf)
{
    if (pf->fd >= 0) {
        close(pf->fd);
        pf->fd = -1;
        unlink(pf->temp);
    }
    struct stat st;
    if (pf->committed && stat(pf->path, &st) == 0 && (uint64_t)st.st_dev == pf->dev &&
        (uint64_t)st.st_ino == pf->ino)
        unlink(pf->path);
    pf->committed = false;
}

/* The workers' ids when they differ from ours (root with `user:`). */
static bool worker_ids(const struct config *config, uid_t *uid, gid_t *gid)
{
    if (geteuid() != 0 || config->user == NULL)
        return false;
    struct passwd *pw = getpwnam(config->user);
    if (pw == NULL)
        return false;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    struct group *gr = config->group ? getgrnam(config->group) : NULL;
    if (gr != NULL)
        *gid = gr->gr_gid;
    return true;
}

void runfiles_create_log(const char *path, const struct config *config)
{
    if (path == NULL || strcmp(path, "stderr") == 0)
        return;
    /* Made under a name of its own, owned and moded, then linked into
     * place: a worker reopening the log never finds it root's for a
     * moment, and link() never replaces a file that was there (or a
     * symlink planted at the name), as O_EXCL would not. */
    char temp[PATH_MAX];
    if (snprintf(temp, sizeof temp, "%s.XXXXXX", path) >= (int)sizeof temp)
        return;
    int fd = mkostemp(temp, O_CLOEXEC);
    if (fd < 0)
        return;
    uid_t uid;
    gid_t gid;
    fchmod(fd, 0640);
    if (worker_ids(config, &uid, &gid) && fchown(fd, uid, gid) != 0)
        log_errno(LOG_WARN, errno, "fchown(%s)", path);
    close(fd);
    if (link(temp, path) != 0 && errno != EEXIST)
        log_errno(LOG_WARN, errno, "link(%s)", path);
    unlink(temp);
}

void runfiles_create_logs(const struct config *config)
{
    runfiles_create_log(config->error_log, config);
    runfiles_create_log(config->access_log, config);
}
