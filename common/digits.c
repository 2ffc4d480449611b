/* digits.c - numbers written by hand; see digits.h. */
#include "common/digits.h"

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

char *digits_decimal(char *p, uint64_t n)
{
    return digits_in_base(p, n, 10);
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
