/*
 * args.c - a command's own options: flags, durations, counts.
 *
 * Durations use the config's syntax (units_parse_duration), so
 * `sakerctl stop --timeout 2m` reads like `shutdown_timeout: 2m`, plus
 * decimal seconds ("0.5"). Nothing
 * here prints: the caller turns the error into a usage message.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "conf/units.h"

static const struct cli_arg *arg_find(const char *name, size_t len, const struct cli_arg *args,
                                      size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(args[i].name) == len && strncmp(args[i].name, name, len) == 0)
            return &args[i];
    return NULL;
}

static int parse_uint(const char *text, unsigned *out, struct err *err)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    /* strtoul accepts "-1" and leading blanks; a count is digits only. */
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v > UINT32_MAX)
        return err_set(err, "expected a whole number, got '%s'", text);
    *out = (unsigned)v;
    return SK_OK;
}

/* "0.5": top's users type fractions of a second as top(1) takes them; the
 * config's duration syntax has integers only. */
static int parse_seconds_fraction(const char *text, uint64_t *ms)
{
    char *end;
    if (strchr(text, '.') == NULL || text[0] < '0' || text[0] > '9')
        return SK_ERROR;
    errno = 0;
    double s = strtod(text, &end);
    if (*end != '\0' || errno != 0 || s * 1000.0 > (double)UINT32_MAX)
        return SK_ERROR;
    *ms = (uint64_t)(s * 1000.0 + 0.5);
    return SK_OK;
}

static int parse_duration(const char *text, uint64_t *ms, struct err *err)
{
    if (parse_seconds_fraction(text, ms) == SK_OK)
        return SK_OK;
    return units_parse_duration(text, ms, err);
}

static int set_value(const struct cli_arg *a, const char *text, struct err *err)
{
    struct err why;
    if (a->type == CLI_ARG_STRING) {
        if (text[0] == '\0')
            return err_set(err, "%s: expected a value, got ''", a->name);
        *(const char **)a->value = text;
        return SK_OK;
    }
    int rc = a->type == CLI_ARG_DURATION ? parse_duration(text, a->value, &why)
                                         : parse_uint(text, a->value, &why);
    if (rc != SK_OK)
        return err_set(err, "%s: %s", a->name, why.message);
    return SK_OK;
}

int cli_args_parse(int argc, char **argv, const struct cli_arg *args, size_t count,
                   struct err *err)
{
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        const struct cli_arg *a = arg_find(argv[i], len, args, count);
        if (a == NULL)
            return err_set(err, "%s: unknown option or argument '%s'", argv[0], argv[i]);
        if (a->type == CLI_ARG_FLAG) {
            if (eq != NULL)
                return err_set(err, "%s takes no value", a->name);
            *(bool *)a->value = true;
            continue;
        }
        const char *text = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (text == NULL)
            return err_set(err, "%s needs a value", a->name);
        if (set_value(a, text, err) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

char *cli_format_ms(uint64_t ms, char *buf, size_t size)
{
    return units_format_duration(ms, buf, size);
}
