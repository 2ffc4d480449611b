/*
 * compress_negotiate.c - Accept-Encoding and the MIME list; see
 * compress_negotiate.h.
 */
#include "worker/compress_negotiate.h"

#include <string.h>
#include <strings.h>

#define Q_UNSET -1

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_ows(**s))
        (*s)++, (*len)--;
    while (*len > 0 && is_ows((*s)[*len - 1]))
        (*len)--;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
 * thousandths; -1 when malformed. */
static int parse_qvalue(const char *s, size_t len)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1') || (len > 1 && s[1] != '.') || len > 5)
        return -1;
    int q = (s[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* The q of one member's parameters (";q=0.5;x=y"): 1000 without one. */
static int member_q(const char *params, size_t len)
{
    int q = 1000;
    while (len > 0) {
        const char *semi = memchr(params, ';', len);
        size_t n = semi != NULL ? (size_t)(semi - params) : len;
        const char *p = params;
        size_t plen = n;
        trim(&p, &plen);
        if (plen >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            const char *v = p + 2;
            size_t vlen = plen - 2;
            trim(&v, &vlen);
            q = parse_qvalue(v, vlen);
        }
        params += n, len -= n;
        if (len > 0)
            params++, len--;
    }
    return q;
}

struct accepted {
    int q[CODING_COUNT];
    int star;
    int identity;
};

static void accept_member(struct accepted *a, const char *m, size_t len)
{
    const char *semi = memchr(m, ';', len);
    size_t name_len = semi != NULL ? (size_t)(semi - m) : len;
    const char *name = m;
    trim(&name, &name_len);
    int q = semi != NULL ? member_q(semi + 1, (size_t)(m + len - semi) - 1) : 1000;
    if (q < 0 || name_len == 0)
        return;
    int coding = config_coding_find(name, name_len);
    if (coding < 0 && name_len == 6 && strncasecmp(name, "x-gzip", 6) == 0)
        coding = CODING_GZIP;
    if (coding >= 0)
        a->q[coding] = q;
    else if (name_len == 1 && name[0] == '*')
        a->star = q;
    else if (name_len == 8 && strncasecmp(name, "identity", 8) == 0)
        a->identity = q;
}

int compress_negotiate(const char *accept, size_t len, const enum config_coding *providers,
                       size_t count)
{
    struct accepted a = {{Q_UNSET, Q_UNSET, Q_UNSET}, Q_UNSET, Q_UNSET};
    if (accept == NULL)
        return -1;
    while (len > 0) {
        const char *comma = memchr(accept, ',', len);
        size_t n = comma != NULL ? (size_t)(comma - accept) : len;
        accept_member(&a, accept, n);
        accept += n, len -= n;
        if (len > 0)
            accept++, len--;
    }
    int best = -1, best_q = 0;
    for (size_t i = 0; i < count; i++) {
        int q = a.q[providers[i]] != Q_UNSET ? a.q[providers[i]] : a.star;
        if (q > best_q)
            best = (int)providers[i], best_q = q;
    }
    if (best >= 0 && a.identity != Q_UNSET && a.identity > best_q)
        return -1;
    return best;
}

bool compress_type_listed(const char *content_type, size_t len, char *const *types,
                          size_t count)
{
    const char *semi = memchr(content_type, ';', len);
    size_t n = semi != NULL ? (size_t)(semi - content_type) : len;
    trim(&content_type, &n);
    const char *slash = memchr(content_type, '/', n);
    if (slash == NULL)
        return false;
    size_t major = (size_t)(slash - content_type) + 1; /* with the '/' */
    for (size_t i = 0; i < count; i++) {
        const char *t = types[i];
        size_t tlen = strlen(t);
        if (strcmp(t, "*/*") == 0)
            return true;
        if (tlen == major + 1 && t[major] == '*' && strncasecmp(t, content_type, major) == 0)
            return true;
        if (tlen == n && strncasecmp(t, content_type, n) == 0)
            return true;
    }
    return false;
}
