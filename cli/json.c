/*
 * json.c - one JSON string, quoted and escaped (RFC 8259 section 7).
 *
 * The strings come from shm, written by a master we trust but through a
 * mapping we do not: bytes that are not UTF-8 become U+FFFD rather than a
 * document that strict parsers (Python's json, jq) reject.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/utf8.h"

static void escape_byte(FILE *out, unsigned char c)
{
    switch (c) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\r': fputs("\\r", out); break;
    case '\t': fputs("\\t", out); break;
    default:
        if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
}

void cli_json_string(FILE *out, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = s != NULL ? strnlen(s, max) : 0;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_sequence(p + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", out);
            i++;
        } else if (len == 1) {
            escape_byte(out, p[i++]);
        } else {
            fwrite(p + i, 1, len, out);
            i += len;
        }
    }
    fputc('"', out);
}
