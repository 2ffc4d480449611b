/*
 * handler_static.c - files under a root directory, for GET and HEAD.
 *
 * The route's path prefix is stripped, as ASP.NET Core's UseStaticFiles
 * strips RequestPath: for the route "/static", "/static/css/a.css" is
 * ROOT/css/a.css. The rest is percent-decoded and normalised by
 * path_normalize() and opened beneath a descriptor of the root taken at
 * init(), with openat2(RESOLVE_BENEATH), so neither "..", nor an absolute
 * symlink, nor a symlink climbing out of the root reaches a file outside it
 * (where the kernel lacks openat2, every symlink is refused; see path.h).
 *
 * Only regular files are served. A directory is answered with the first
 * of its index files (`index:`) that exists when the request ends in '/',
 * with a 301 to the '/' form otherwise (relative links in the index then
 * resolve under the directory), and with a listing only when the route
 * has `browse: true` (static_browse.h). Escapes look
 * like missing files (404), so a probe learns nothing about what lies
 * outside the root. So do dotfiles and dot-directories (.git, .env),
 * except .well-known (path_is_hidden), as ASP.NET Core's file provider
 * hides them by default, unless `serve_dotfiles: true`.
 *
 * Responses carry the type (the route's `mime_types:`, the built-in
 * table, then `default_type:`), Last-Modified, a strong ETag built from
 * mtime and size, Accept-Ranges and the route's `cache_control:`;
 * conditional and range requests are decided by conditional.h (RFC 9110
 * sections 13 and 14; several ranges go as multipart/byteranges,
 * static_ranges.h). With `precompressed:`, a sidecar (a.js.br,
 * a.js.gz) answers a client that accepts its coding. The file goes to the
 * exchange as a descriptor, sent by the protocol with sendfile() (or read
 * through a response filter). Nothing here allocates except from the
 * exchange's arena.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/digits.h"
#include "common/log.h"
#include "conf/route_static.h"
#include "worker/compress.h"
#include "worker/compress_negotiate.h"
#include "worker/conditional.h"
#include "worker/file_cache.h"
#include "worker/handler.h"
#include "worker/mime.h"
#include "worker/path.h"
#include "worker/static_browse.h"
#include "worker/static_ranges.h"

struct static_state {
    int root_fd;
    const char *root; /* for log lines; the config outlives the state */
    const struct route_static *files;
};

static const char *const default_index = "index.html";

/* The file being served and its validators. */
struct static_file {
    struct file_ref *ref; /* a hold, given to the exchange or back */
    struct stat st;
    struct conditional_validators rep; /* rep.etag points at etag */
    char etag[64];
    char last_modified[CLOCK_HTTP_DATE_LEN + 1];
    int encoding; /* a precompressed sidecar's coding, or -1: the file itself */
};

/* ---- opening --------------------------------------------------------- */

/* The status for a failed open: escapes and absences alike are 404. */
static int open_error_status(int e, const struct static_state *s)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ELOOP: /* symlink refused (fallback walk) */
    case EXDEV: /* resolution left the root */
        return 404;
    case EACCES:
    case EPERM:
        return 403;
    default:
        log_limited(LOG_ERROR, e, "openat2(beneath %s)", s->root);
        return 500;
    }
}

/* Opens rel beneath the root and fstat()s it (or finds it kept open,
 * see file_cache.h). 0 or a status. */
static int open_file(const struct static_state *s, const char *rel, struct static_file *f)
{
    /* O_NONBLOCK: a FIFO in the tree would otherwise block the worker in
     * open() until a writer came; regular files ignore the flag. */
    int rc = file_cache_open(s->root_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, &f->ref);
    if (rc < 0)
        return open_error_status(-rc, s);
    f->st = f->ref->st;
    return 0;
}

/* Appends "/index" (or "index" at the root) to rel. false if too long. */
static bool append_index(char *rel, size_t size, const char *index)
{
    size_t n = strlen(rel);
    int w = snprintf(rel + n, size - n, "%s%s", n > 0 ? "/" : "", index);
    return w >= 0 && (size_t)w < size - n;
}

/* The directory rel's first index file that is a regular file: rel
 * gets its name. 0 or a status. */
static int open_index(const struct static_state *s, char *rel, size_t rel_size,
                      struct static_file *f)
{
    size_t dir_len = strlen(rel), count = s->files->index_count;
    int status = 404;
    for (size_t i = 0; i < (count > 0 ? count : 1); i++) {
        rel[dir_len] = '\0';
        if (!append_index(rel, rel_size, count > 0 ? s->files->indexes[i] : default_index))
            continue;
        if ((status = open_file(s, rel, f)) != 0)
            continue;
        if (S_ISREG(f->st.st_mode))
            return 0;
        file_ref_release(f->ref);
        status = 404;
    }
    return status;
}

/* What open_target answers for a directory to list (`browse: true`). */
#define STATIC_LIST_DIRECTORY 200

/* Opens the regular file rel names, or its directory's index when the
 * request ended in '/'. 0, 301 (directory without '/'),
 * STATIC_LIST_DIRECTORY (one without an index, rel naming it), or an
 * error. */
static int open_target(const struct static_state *s, char *rel, size_t rel_size,
                       bool trailing_slash, struct static_file *f)
{
    size_t dir_len = strlen(rel);
    int status = open_file(s, rel, f);
    if (status != 0)
        return status;
    if (trailing_slash && !S_ISDIR(f->st.st_mode)) {
        file_ref_release(f->ref); /* "/a.txt/" names a directory that is not there */
        return 404;
    }
    if (S_ISDIR(f->st.st_mode)) {
        file_ref_release(f->ref);
        if (!trailing_slash)
            return 301;
        if ((status = open_index(s, rel, rel_size, f)) != 0) {
            rel[dir_len] = '\0';
            return status == 404 && s->files->browse ? STATIC_LIST_DIRECTORY : status;
        }
    }
    if (!S_ISREG(f->st.st_mode)) {
        file_ref_release(f->ref);
        return 404;
    }
    return 0;
}

/* ---- precompressed sidecars ------------------------------------------- */

/* nginx's gzip_static and h2o's file.send-compressed: for a client that
 * accepts it, rel's "NAME.br" or "NAME.gz" answers in its place, with
 * the original's type (rel keeps its name) and its own length and ETag,
 * as long as it is a regular file no older than the original (a sidecar
 * left behind by a deploy must not answer for a newer file). */
static void open_sidecar(struct exchange *ex, const struct static_state *s, char *rel,
                         size_t rel_size, struct static_file *f)
{
    size_t len, n = strlen(rel);
    const char *accept = compress_accept_encoding(ex, &len);
    int coding = compress_negotiate(accept, len, s->files->precompressed,
                                    s->files->precompressed_count);
    const char *suffix = coding == CODING_BR ? ".br" : ".gz";
    struct static_file side;
    if (coding < 0 || n + 4 > rel_size)
        return;
    memcpy(rel + n, suffix, 4);
    int status = open_file(s, rel, &side);
    rel[n] = '\0';
    if (status != 0)
        return;
    struct timespec a = side.st.st_mtim, b = f->st.st_mtim;
    if (!S_ISREG(side.st.st_mode) || a.tv_sec < b.tv_sec ||
        (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec)) {
        file_ref_release(side.ref);
        return;
    }
    file_ref_release(f->ref);
    f->ref = side.ref;
    f->st = side.st;
    f->encoding = coding;
}

/* ---- responding ------------------------------------------------------ */

/* The file path relative to the root: the request path (already
 * normalised by the protocol, see path_normalize_request) without the
 * route prefix and the leading '/'. A request for the bare prefix
 * ("/static") is its directory without the '/'. */
static int map_request_path(const struct exchange *ex, const struct route *route, char *rel,
                            size_t size, bool *trailing_slash)
{
    size_t strip = route->path_len > 1 ? route->path_len : 0;
    if (strip > ex->path_len)
        strip = ex->path_len; /* the router matched the prefix; be safe anyway */
    const char *p = ex->path + strip;
    size_t n = ex->path_len - strip;
    *trailing_slash = n > 0 && p[n - 1] == '/';
    while (n > 0 && p[0] == '/')
        p++, n--;
    while (n > 0 && p[n - 1] == '/')
        n--;
    if (n >= size)
        return 414;
    if (memchr(p, '\0', n) != NULL)
        return 400;
    memcpy(rel, p, n);
    rel[n] = '\0';
    return 0;
}

static bool is_pchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

/* 301 to the directory with a '/'. The Location is rebuilt from the route
 * prefix and the normalised path, re-encoded, rather than echoing the
 * request: echoing "//evil.example/" would make a protocol-relative open
 * redirect, and echoing dot segments would resolve elsewhere. */
static void redirect_to_directory(struct exchange *ex, const struct route *route,
                                  const char *rel)
{
    size_t prefix = route->path_len > 1 ? route->path_len : 0, n = strlen(rel);
    size_t size = prefix + 1 + 3 * n + 1 + (ex->query != NULL ? 1 + ex->query_len : 0) + 1;
    char *loc = arena_alloc(ex->arena, size), *p = loc;
    if (loc == NULL) {
        exchange_respond_error(ex, 500);
        return;
    }
    memcpy(p, route->path, prefix), p += prefix;
    *p++ = '/';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)rel[i];
        if (is_pchar(c))
            *p++ = (char)c;
        else
            p += sprintf(p, "%%%02X", c);
    }
    if (n > 0)
        *p++ = '/';
    if (ex->query != NULL)
        *p++ = '?', memcpy(p, ex->query, ex->query_len), p += ex->query_len;
    if (exchange_add_header_n(ex, "Location", 8, loc, (size_t)(p - loc)) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    exchange_respond_error(ex, 301);
}

/* Fills the validators. Last-Modified is clamped to now: a date in the
 * future must not be sent (section 8.8.2.1). The ETag includes the
 * nanoseconds so two same-size writes in one second still differ. */
static void describe_file(struct static_file *f)
{
    time_t now = clock_wall_seconds();
    f->rep.last_modified = f->st.st_mtime;
    if (now > 0 && f->rep.last_modified > now)
        f->rep.last_modified = now;
    clock_format_http_date(f->rep.last_modified, f->last_modified);
    char *p = f->etag; /* by hand: one per response, and snprintf showed in profiles */
    *p++ = '"';
    p = digits_hex(p, (uint64_t)f->st.st_mtime);
    *p++ = '.';
    p = digits_hex(p, (uint64_t)f->st.st_mtim.tv_nsec);
    *p++ = '-';
    p = digits_hex(p, (uint64_t)f->st.st_size);
    *p++ = '"';
    *p = '\0';
    f->rep.etag = f->etag;
    f->rep.etag_len = (size_t)(p - f->etag);
    f->rep.size = (uint64_t)f->st.st_size;
}

/* What a 200 and a 304 both carry (RFC 9110 section 15.4.5): the
 * validators, the route's Cache-Control, and the sidecar's coding. */
static int add_validators(struct exchange *ex, const struct static_state *s,
                          const struct static_file *f)
{
    if (exchange_add_header(ex, "Last-Modified", f->last_modified) != SK_OK ||
        exchange_add_header_n(ex, "ETag", 4, f->etag, f->rep.etag_len) != SK_OK ||
        (s->files->cache_control != NULL &&
         exchange_add_header(ex, "Cache-Control", s->files->cache_control) != SK_OK) ||
        (f->encoding >= 0 &&
         exchange_add_header(ex, "Content-Encoding",
                             config_coding_name((enum config_coding)f->encoding)) != SK_OK) ||
        (s->files->precompressed_count > 0 && compress_add_vary(ex) != SK_OK))
        return SK_ERROR;
    return SK_OK;
}

/* 304: no body, but the validators a 200 would carry (section 15.4.5). */
static void respond_not_modified(struct exchange *ex, const struct static_state *s,
                                 struct static_file *f)
{
    file_ref_release(f->ref);
    if (add_validators(ex, s, f) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    ex->status = 304;
    exchange_respond(ex);
}

/* 416 names the current length so the client can retry (section 15.5.17). */
static void respond_unsatisfiable(struct exchange *ex, struct static_file *f)
{
    char value[48];
    snprintf(value, sizeof value, "bytes */%jd", (intmax_t)f->st.st_size);
    file_ref_release(f->ref);
    if (exchange_add_header(ex, "Content-Range", value) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    exchange_respond_error(ex, 416);
}


/* The fields of a 200 or 206: the type (a multipart 206 has its own),
 * the validators, Accept-Ranges and a single range's Content-Range. */
static int add_file_fields(struct exchange *ex, const struct static_state *s,
                           const struct static_file *f, const char *type,
                           enum conditional_range range, const struct conditional_ranges *r)
{
    char content_range[80];
    if (range == CONDITIONAL_RANGE_ONE)
        snprintf(content_range, sizeof content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 r->first[0], r->last[0], (uint64_t)f->st.st_size);
    if ((range != CONDITIONAL_RANGE_MANY && exchange_add_header(ex, "Content-Type", type) != SK_OK) ||
        add_validators(ex, s, f) != SK_OK ||
        exchange_add_header(ex, "Accept-Ranges", "bytes") != SK_OK ||
        (range == CONDITIONAL_RANGE_ONE &&
         exchange_add_header(ex, "Content-Range", content_range) != SK_OK))
        return SK_ERROR;
    return SK_OK;
}

static void respond_file(struct exchange *ex, const struct static_state *s, struct static_file *f,
                         const char *name)
{
    const struct route_static *files = s->files;
    const char *type = mime_type_lookup(name, files->types, files->type_count,
                                        files->default_type != NULL ? files->default_type
                                                                    : "application/octet-stream");
    uint64_t first = 0, last = 0, size = (uint64_t)f->st.st_size;
    struct conditional_ranges ranges;
    enum conditional_range range = conditional_range(ex, &f->rep, &ranges);
    if (range == CONDITIONAL_RANGE_UNSATISFIABLE) {
        respond_unsatisfiable(ex, f);
        return;
    }
    if (add_file_fields(ex, s, f, type, range, &ranges) != SK_OK) {
        file_ref_release(f->ref);
        exchange_respond_error(ex, 500);
        return;
    }
    if (range == CONDITIONAL_RANGE_MANY) {
        static_ranges_respond(ex, f->ref, size, type, &ranges);
        return;
    }
    if (range == CONDITIONAL_RANGE_ONE)
        first = ranges.first[0], last = ranges.last[0];
    ex->status = range == CONDITIONAL_RANGE_ONE ? 206 : 200;
    if (range != CONDITIONAL_RANGE_ONE)
        last = size - 1; /* HEAD too: the length sizes Content-Length */
    const char *contents = ex->method == METHOD_GET ? file_ref_contents(f->ref) : NULL;
    struct exchange_file file = {
        .fd = f->ref->fd,
        .offset = (off_t)first,
        .len = size == 0 ? 0 : (size_t)(last - first + 1),
        .contents = contents != NULL ? contents + first : NULL,
        .release = file_ref_release,
        .arg = f->ref,
    };
    exchange_set_file(ex, &file);
    exchange_respond(ex);
}

static void static_handle(struct exchange *ex, const struct route *route, void *state)
{
    const struct static_state *s = state;
    if (ex->method != METHOD_GET && ex->method != METHOD_HEAD) {
        /* 405 must list what is allowed (RFC 9110 section 15.5.6). */
        if (exchange_add_header(ex, "Allow", "GET, HEAD") != SK_OK)
            exchange_respond_error(ex, 500);
        else
            exchange_respond_error(ex, 405);
        return;
    }
    char rel[PATH_MAX];
    bool trailing_slash;
    struct static_file f;
    int status = map_request_path(ex, route, rel, sizeof rel, &trailing_slash);
    if (status == 0 && !s->files->serve_dotfiles && path_is_hidden(rel))
        status = 404; /* as if absent, like every other refusal here */
    if (status == 0)
        status = open_target(s, rel, sizeof rel, trailing_slash, &f);
    if (status == 301) {
        redirect_to_directory(ex, route, rel);
        return;
    }
    if (status == STATIC_LIST_DIRECTORY) {
        static_browse_respond(ex, s->root_fd, rel, s->files->serve_dotfiles);
        return;
    }
    if (status != 0) {
        exchange_respond_error(ex, status);
        return;
    }
    f.encoding = -1;
    if (s->files->precompressed_count > 0)
        open_sidecar(ex, s, rel, sizeof rel, &f);
    describe_file(&f);
    status = conditional_preconditions(ex, &f.rep);
    if (status == 304) {
        respond_not_modified(ex, s, &f);
    } else if (status != 0) {
        file_ref_release(f.ref);
        exchange_respond_error(ex, status);
    } else {
        respond_file(ex, s, &f, rel);
    }
}

/* ---- lifecycle ------------------------------------------------------- */

/* Runs after privileges are dropped, so the root is opened as the worker
 * user; O_PATH needs only search permission on it. */
static int static_init(const struct route *route, void **state, struct err *err)
{
    const struct route_static *files = route->handler_config;
    struct static_state *s = malloc(sizeof *s);
    if (s == NULL)
        return err_set(err, "static root %s: out of memory", files->root);
    s->root = files->root;
    s->files = files;
    mime_load_system("/etc/mime.types"); /* absent: the built-in table alone */
    s->root_fd = open(files->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        int e = errno;
        free(s);
        return err_set_errno(err, e, "open(%s)", files->root);
    }
    *state = s;
    return SK_OK;
}

static void static_fini(void *state)
{
    struct static_state *s = state;
    if (s == NULL)
        return;
    file_cache_flush(); /* nothing kept may outlive the root it was opened beneath */
    close(s->root_fd);
    free(s);
}

const struct handler_ops handler_static_ops = {
    .schema = &route_static_schema,
    .init = static_init,
    .handle = static_handle,
    .fini = static_fini,
};
