/* error.c - formatting of the error object; see error.h. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *err, const char *fmt, ...)
{
    if (err == NULL)
        return SK_ERROR;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return SK_ERROR;
}

int err_set_errno(struct err *err, int errno_value, const char *fmt, ...)
{
    if (err == NULL)
        return SK_ERROR;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->message)
        snprintf(err->message + n, sizeof err->message - (size_t)n, ": %s",
                 strerror(errno_value));
    return SK_ERROR;
}
