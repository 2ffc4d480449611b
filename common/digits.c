/* digits.c - numbers written by hand; see digits.h. */
#include "common/digits.h"

#include <stddef.h>

/* n in base (10 or 16), most significant digit first. */
static char *digits_in_base(char *p, uint64_t n, unsigned base)
{
    char reversed[20];
    int count = 0;
    do
        reversed[count++] = "0123456789abcdef"[n % base];
    while ((n /= base) != 0);
    while (count > 0)
        *p++ = reversed[--count];
    return p;
}

/* Base 10 on its own: a division by a constant is a multiply, and the
 * digits go straight to their place, which a Content-Length per
 * response notices. */
char *digits_decimal(char *p, uint64_t n)
{
    size_t len = 1;
    for (uint64_t rest = n; rest >= 10; rest /= 10)
        len++;
    char *end = p + len;
    do
        *--end = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    return p + len;
}

char *digits_hex(char *p, uint64_t n)
{
    return digits_in_base(p, n, 16);
}

char *digits_decimal_padded(char *p, unsigned n, int width)
{
    for (int i = width - 1; i >= 0; i--, n /= 10)
        p[i] = (char)('0' + n % 10);
    return p + width;
}
