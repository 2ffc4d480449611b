/*
 * json_check.c - JSON syntax (RFC 8259); see json_check.h.
 */
#include "tests/json_check.h"

#include <ctype.h>
#include <string.h>

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p != '\\')
            continue;
        p++;
        if (*p == 'u') {
            for (int i = 1; i <= 4; i++)
                if (!isxdigit((unsigned char)p[i]))
                    return NULL;
            p += 4;
        } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
            return NULL;
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    const char *start = p;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p) || (*p == '0' && isdigit((unsigned char)p[1])))
        return NULL;
    while (isdigit((unsigned char)*p) || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' ||
           (*p == '-' && p != start))
        p++;
    return p;
}

static const char *json_list(const char *p, char close, bool object, int depth)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (object) {
            if ((p = json_string(p)) == NULL || *(p = json_ws(p)) != ':')
                return NULL;
            p = json_ws(p + 1);
        }
        if ((p = json_value(p, depth + 1)) == NULL)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = json_ws(p + 1);
    }
}

static const char *json_value(const char *p, int depth)
{
    if (depth > 32)
        return NULL;
    switch (*p) {
    case '{': return json_list(p, '}', true, depth);
    case '[': return json_list(p, ']', false, depth);
    case '"': return json_string(p);
    case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return json_number(p);
    }
}

bool json_check(const char *text)
{
    const char *end = json_value(json_ws(text), 0);
    return end != NULL && *json_ws(end) == '\0';
}
