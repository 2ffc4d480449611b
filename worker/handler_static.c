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
 * Only regular files are served. A directory is answered with its index
 * file when the request ends in '/', with a 301 to the '/' form otherwise
 * (relative links in the index then resolve under the directory), and never
 * with a listing. Escapes look like missing files (404), so a probe learns
 * nothing about what lies outside the root.
 *
 * Responses carry Last-Modified, a strong ETag built from mtime and size,
 * and Accept-Ranges; conditional requests follow RFC 9110 section 13.2.2
 * and a single byte range is served as 206 (section 14). The file goes to
 * the exchange as a descriptor, sent by the protocol with sendfile().
 * Nothing here allocates except from the exchange's arena.
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
#include "common/log.h"
#include "worker/handler.h"
#include "worker/mime.h"
#include "worker/path.h"

struct static_state {
    int root_fd;
    const char *root; /* for log lines; the config outlives the state */
};

/* The file being served and its validators. */
struct static_file {
    int fd;
    struct stat st;
    time_t mtime; /* as sent in Last-Modified: never in the future */
    char etag[64];
    size_t etag_len;
    char last_modified[CLOCK_HTTP_DATE_LEN + 1];
};

/* ---- HTTP-date (RFC 9110 section 5.6.7) -------------------------------- */

static const char month_names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static bool parse_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_month(const char *s, int *month)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_names + 3 * i, 3) == 0) {
            *month = i;
            return true;
        }
    return false;
}

/* "HH:MM:SS" */
static bool parse_clock(const char *s, struct tm *tm)
{
    return s[2] == ':' && s[5] == ':' && parse_digits(s, 2, &tm->tm_hour) &&
           parse_digits(s + 3, 2, &tm->tm_min) && parse_digits(s + 6, 2, &tm->tm_sec) &&
           tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec <= 60;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool parse_imf_fixdate(const char *s, size_t len, struct tm *tm)
{
    return len == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' &&
           s[16] == ' ' && memcmp(s + 25, " GMT", 4) == 0 &&
           parse_digits(s + 5, 2, &tm->tm_mday) && parse_month(s + 8, &tm->tm_mon) &&
           parse_digits(s + 12, 4, &tm->tm_year) && parse_clock(s + 17, tm);
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" (obsolete RFC 850 form) */
static bool parse_rfc850(const char *s, size_t len, struct tm *tm)
{
    const char *comma = memchr(s, ',', len);
    if (comma == NULL || (size_t)(s + len - comma) != 24)
        return false;
    const char *d = comma + 2; /* "06-Nov-94 08:49:37 GMT" */
    if (comma[1] != ' ' || d[2] != '-' || d[6] != '-' || d[9] != ' ' ||
        memcmp(d + 18, " GMT", 4) != 0 || !parse_digits(d, 2, &tm->tm_mday) ||
        !parse_month(d + 3, &tm->tm_mon) || !parse_digits(d + 7, 2, &tm->tm_year) ||
        !parse_clock(d + 10, tm))
        return false;
    /* Two-digit years: the recipient picks the century (section 5.6.7). */
    tm->tm_year += tm->tm_year < 70 ? 2000 : 1900;
    return true;
}

/* "Sun Nov  6 08:49:37 1994" (asctime) */
static bool parse_asctime(const char *s, size_t len, struct tm *tm)
{
    char day[2] = {s[8] == ' ' ? '0' : s[8], s[9]};
    return len == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ' &&
           parse_month(s + 4, &tm->tm_mon) && parse_digits(day, 2, &tm->tm_mday) &&
           parse_clock(s + 11, tm) && parse_digits(s + 20, 4, &tm->tm_year);
}

/* Recipients must accept all three forms (section 5.6.7). */
static bool parse_http_date(const char *s, size_t len, time_t *out)
{
    struct tm tm = {0};
    if (len < 24)
        return false;
    if (!parse_imf_fixdate(s, len, &tm) && !parse_rfc850(s, len, &tm) &&
        !parse_asctime(s, len, &tm))
        return false;
    if (tm.tm_mday < 1 || tm.tm_mday > 31)
        return false;
    if (tm.tm_year < 1900)
        return false; /* nothing we serve is that old; ignore the field */
    tm.tm_year -= 1900;
    *out = timegm(&tm);
    return *out != (time_t)-1;
}

/* ---- entity-tags (RFC 9110 section 8.8.3) ------------------------------ */

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

static void trim_ows(const char **s, size_t *len)
{
    while (*len > 0 && is_ows(**s))
        (*s)++, (*len)--;
    while (*len > 0 && is_ows((*s)[*len - 1]))
        (*len)--;
}

/* Does the If-Match / If-None-Match list name our (strong) tag? "*" matches
 * any. `strong` asks for the strong comparison of section 8.8.3.2, which a
 * weak W/ tag never passes; If-None-Match uses the weak one. A malformed
 * list matches nothing. */
static bool etag_list_matches(const char *v, size_t len, const struct static_file *f,
                              bool strong)
{
    trim_ows(&v, &len);
    if (len == 1 && v[0] == '*')
        return true;
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        if (i == len)
            break;
        bool weak = len - i >= 2 && v[i] == 'W' && v[i + 1] == '/';
        if (weak)
            i += 2;
        if (i == len || v[i] != '"')
            return false;
        const char *close_quote = memchr(v + i + 1, '"', len - i - 1);
        if (close_quote == NULL)
            return false;
        size_t n = (size_t)(close_quote - (v + i)) + 1;
        if (!(strong && weak) && n == f->etag_len && memcmp(v + i, f->etag, n) == 0)
            return true;
        i += n;
    }
    return false;
}

/* ---- conditionals (RFC 9110 section 13.2.2) ---------------------------- */

/* 0 to go on, 304 or 412 to answer instead. Steps 1-4 of section 13.2.2;
 * If-None-Match and If-Modified-Since give 304 since only GET and HEAD get
 * here. An invalid date makes its field ignored (section 13.1.3). */
static int evaluate_preconditions(const struct exchange *ex, const struct static_file *f)
{
    size_t len;
    time_t t;
    const char *v;
    if ((v = exchange_header(ex, "If-Match", &len)) != NULL) {
        if (!etag_list_matches(v, len, f, true))
            return 412;
    } else if ((v = exchange_header(ex, "If-Unmodified-Since", &len)) != NULL) {
        if (parse_http_date(v, len, &t) && f->mtime > t)
            return 412;
    }
    if ((v = exchange_header(ex, "If-None-Match", &len)) != NULL) {
        if (etag_list_matches(v, len, f, false))
            return 304;
    } else if ((v = exchange_header(ex, "If-Modified-Since", &len)) != NULL) {
        if (parse_http_date(v, len, &t) && f->mtime <= t)
            return 304;
    }
    return 0;
}

/* If-Range (section 13.1.5): the Range applies only if the validator still
 * matches, strongly. A date counts only when it equals Last-Modified and
 * that is a strong validator: at least a second older than now. */
static bool if_range_allows(const struct exchange *ex, const struct static_file *f)
{
    size_t len;
    const char *v = exchange_header(ex, "If-Range", &len);
    if (v == NULL)
        return true;
    trim_ows(&v, &len);
    if (len > 0 && (v[0] == '"' || v[0] == 'W'))
        return etag_list_matches(v, len, f, true);
    time_t t, now = clock_wall_seconds();
    return parse_http_date(v, len, &t) && t == f->mtime && (now < 0 || f->mtime < now);
}

/* ---- Range (RFC 9110 section 14) --------------------------------------- */

enum range_result { RANGE_NONE, RANGE_ONE, RANGE_UNSATISFIABLE };

/* Digits at s[*i], saturating at UINT64_MAX; false if there are none. */
static bool parse_u64(const char *s, size_t len, size_t *i, uint64_t *out)
{
    size_t start = *i;
    uint64_t v = 0;
    for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
        unsigned d = (unsigned)(s[*i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return *i > start;
}

/* One "a-b", "a-" or "-n" spec, for a representation of size > 0.
 * Invalid syntax (or last < first, section 14.1.1) ignores the Range. */
static enum range_result parse_range_spec(const char *s, size_t len, uint64_t size,
                                          uint64_t *first, uint64_t *last)
{
    size_t i = 0;
    uint64_t a, b;
    if (len > 0 && s[0] == '-') {
        i = 1;
        if (!parse_u64(s, len, &i, &b) || i != len)
            return RANGE_NONE;
        if (b == 0)
            return RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return RANGE_ONE;
    }
    if (!parse_u64(s, len, &i, &a) || i == len || s[i++] != '-')
        return RANGE_NONE;
    b = UINT64_MAX;
    if (i < len && (!parse_u64(s, len, &i, &b) || b < a))
        return RANGE_NONE;
    if (i != len)
        return RANGE_NONE;
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return RANGE_ONE;
}

/* A Range field. More than one range is served whole: a server may ignore
 * Range (section 14.2), and multipart/byteranges is rarely worth its cost. */
static enum range_result parse_range(const char *v, size_t len, uint64_t size,
                                     uint64_t *first, uint64_t *last)
{
    trim_ows(&v, &len);
    if (len < 6 || strncasecmp(v, "bytes=", 6) != 0)
        return RANGE_NONE; /* range units are case-insensitive (section 14.1) */
    v += 6, len -= 6;
    trim_ows(&v, &len);
    if (memchr(v, ',', len) != NULL)
        return RANGE_NONE;
    return parse_range_spec(v, len, size, first, last);
}

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
        log_errno(LOG_ERROR, e, "openat2(beneath %s)", s->root);
        return 500;
    }
}

/* Opens rel beneath the root and fstat()s it. 0 or a status. */
static int open_file(const struct static_state *s, const char *rel, struct static_file *f)
{
    /* O_NONBLOCK: a FIFO in the tree would otherwise block the worker in
     * open() until a writer came; regular files ignore the flag. */
    f->fd = path_open_beneath(s->root_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (f->fd < 0)
        return open_error_status(-f->fd, s);
    if (fstat(f->fd, &f->st) != 0) {
        log_errno(LOG_ERROR, errno, "fstat(beneath %s)", s->root);
        close(f->fd);
        return 500;
    }
    return 0;
}

/* Appends "/index" (or "index" at the root) to rel. false if too long. */
static bool append_index(char *rel, size_t size, const char *index)
{
    size_t n = strlen(rel);
    int w = snprintf(rel + n, size - n, "%s%s", n > 0 ? "/" : "", index);
    return w >= 0 && (size_t)w < size - n;
}

/* Opens the regular file rel names, or its directory's index when the
 * request ended in '/'. 0, 301 (directory without '/'), or an error. */
static int open_target(const struct static_state *s, const struct route *route, char *rel,
                       size_t rel_size, bool trailing_slash, struct static_file *f)
{
    int status = open_file(s, rel, f);
    if (status != 0)
        return status;
    if (trailing_slash && !S_ISDIR(f->st.st_mode)) {
        close(f->fd); /* "/a.txt/" names a directory that is not there */
        return 404;
    }
    if (S_ISDIR(f->st.st_mode)) {
        close(f->fd);
        if (!trailing_slash)
            return 301;
        const char *index = route->files.index != NULL ? route->files.index : "index.html";
        if (!append_index(rel, rel_size, index))
            return 404;
        if ((status = open_file(s, rel, f)) != 0)
            return status;
    }
    if (!S_ISREG(f->st.st_mode)) {
        close(f->fd);
        return 404;
    }
    return 0;
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
    f->mtime = f->st.st_mtime;
    if (now > 0 && f->mtime > now)
        f->mtime = now;
    clock_format_http_date(f->mtime, f->last_modified);
    int n = snprintf(f->etag, sizeof f->etag, "\"%jx.%lx-%jx\"", (uintmax_t)f->st.st_mtime,
                     (unsigned long)f->st.st_mtim.tv_nsec, (uintmax_t)f->st.st_size);
    f->etag_len = (size_t)n;
}

static int add_validators(struct exchange *ex, const struct static_file *f)
{
    if (exchange_add_header(ex, "Last-Modified", f->last_modified) != SK_OK ||
        exchange_add_header_n(ex, "ETag", 4, f->etag, f->etag_len) != SK_OK)
        return SK_ERROR;
    return SK_OK;
}

/* 304: no body, but the validators a 200 would carry (section 15.4.5). */
static void respond_not_modified(struct exchange *ex, struct static_file *f)
{
    close(f->fd);
    if (add_validators(ex, f) != SK_OK) {
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
    close(f->fd);
    if (exchange_add_header(ex, "Content-Range", value) != SK_OK) {
        exchange_respond_error(ex, 500);
        return;
    }
    exchange_respond_error(ex, 416);
}

/* Range applies to GET only (section 14.2), and an empty file has no byte
 * to select, so it is sent whole. */
static enum range_result requested_range(const struct exchange *ex,
                                         const struct static_file *f, uint64_t *first,
                                         uint64_t *last)
{
    size_t len;
    const char *v = exchange_header(ex, "Range", &len);
    if (v == NULL || ex->method != METHOD_GET || f->st.st_size == 0 || !if_range_allows(ex, f))
        return RANGE_NONE;
    return parse_range(v, len, (uint64_t)f->st.st_size, first, last);
}

static void respond_file(struct exchange *ex, struct static_file *f, const char *name)
{
    uint64_t first = 0, last = 0, size = (uint64_t)f->st.st_size;
    enum range_result range = requested_range(ex, f, &first, &last);
    if (range == RANGE_UNSATISFIABLE) {
        respond_unsatisfiable(ex, f);
        return;
    }
    char content_range[80];
    snprintf(content_range, sizeof content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
             first, last, size);
    if (exchange_add_header(ex, "Content-Type", mime_type_for(name)) != SK_OK ||
        add_validators(ex, f) != SK_OK ||
        exchange_add_header(ex, "Accept-Ranges", "bytes") != SK_OK ||
        (range == RANGE_ONE && exchange_add_header(ex, "Content-Range", content_range) != SK_OK)) {
        close(f->fd);
        exchange_respond_error(ex, 500);
        return;
    }
    ex->status = range == RANGE_ONE ? 206 : 200;
    if (range == RANGE_ONE)
        exchange_set_file(ex, f->fd, (off_t)first, (size_t)(last - first + 1));
    else
        exchange_set_file(ex, f->fd, 0, (size_t)size); /* HEAD too: it sizes Content-Length */
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
    if (status == 0)
        status = open_target(s, route, rel, sizeof rel, trailing_slash, &f);
    if (status == 301) {
        redirect_to_directory(ex, route, rel);
        return;
    }
    if (status != 0) {
        exchange_respond_error(ex, status);
        return;
    }
    describe_file(&f);
    status = evaluate_preconditions(ex, &f);
    if (status == 304) {
        respond_not_modified(ex, &f);
    } else if (status != 0) {
        close(f.fd);
        exchange_respond_error(ex, status);
    } else {
        respond_file(ex, &f, rel);
    }
}

/* ---- lifecycle ------------------------------------------------------- */

/* Runs after privileges are dropped, so the root is opened as the worker
 * user; O_PATH needs only search permission on it. */
static int static_init(const struct route *route, void **state, struct err *err)
{
    struct static_state *s = malloc(sizeof *s);
    if (s == NULL)
        return err_set(err, "static root %s: out of memory", route->files.root);
    s->root = route->files.root;
    s->root_fd = open(route->files.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        int e = errno;
        free(s);
        return err_set_errno(err, e, "open(%s)", route->files.root);
    }
    *state = s;
    return SK_OK;
}

static void static_fini(void *state)
{
    struct static_state *s = state;
    if (s == NULL)
        return;
    close(s->root_fd);
    free(s);
}

const struct handler_ops handler_static_ops = {
    .name = "static",
    .init = static_init,
    .handle = static_handle,
    .fini = static_fini,
};
