/*
 * error.h - the closed set of return codes and the error object.
 *
 * Functions that can fail return one of the SK_* codes (or NULL) and, when
 * they fail, write a one-line human message into the `struct err` the caller
 * passes in. Only main() decides to exit. Config errors start with
 * "file:line:column: " so an operator can jump to the place.
 */
#ifndef SAKER_COMMON_ERROR_H
#define SAKER_COMMON_ERROR_H

#include <stddef.h>

enum {
    SK_OK = 0,
    SK_ERROR = -1,    /* failed; the err object says why */
    SK_AGAIN = -2,    /* would block; try again when ready */
    SK_DECLINED = -3, /* not mine; let the next one try */
};

#define ERR_MESSAGE_MAX 512

struct err {
    char message[ERR_MESSAGE_MAX];
};

/* Formats the message into err (when err is not NULL). Returns SK_ERROR so
 * callers can write `return err_set(err, "...")`. */
int err_set(struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* As err_set, with ": strerror(errno_value)" appended. */
int err_set_errno(struct err *err, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
