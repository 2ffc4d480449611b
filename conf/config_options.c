/*
 * config_options.c - applies an option table to a YAML mapping, and the
 * scalar parsers the tables share; see config_parse.h.
 *
 * Order of checks on a map: its keys (unknown, duplicate), then missing
 * required keys, then the section's own rule, then each value in file
 * order, then defaults for what is absent. Values are parsed in file order
 * so that, of two mistakes, the one nearer the top is reported first.
 */
#include "conf/config_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/units.h"

#define MAX_OPTIONS 32

static const struct cfg_option *find_option(const struct cfg_section *section,
                                            const char *name)
{
    for (size_t i = 0; i < section->count; i++)
        if (strcmp(section->options[i].name, name) == 0)
            return &section->options[i];
    return NULL;
}

static int unknown_key(const struct cfg_ctx *ctx, const yaml_node_t *key,
                       const struct cfg_section *section)
{
    const char *names[MAX_OPTIONS];
    const char *word = (const char *)key->data.scalar.value;
    size_t count = section->count < MAX_OPTIONS ? section->count : MAX_OPTIONS;

    for (size_t i = 0; i < count; i++)
        names[i] = section->options[i].name;
    const char *near = cfg_suggest(word, names, count);
    if (near != NULL)
        return cfg_fail(ctx, key, "unknown key '%.80s'; did you mean '%s'?", word, near);
    return cfg_fail(ctx, key, "unknown key '%.80s'", word);
}

static int check_section_keys(const struct cfg_ctx *ctx, const yaml_node_t *map,
                              const struct cfg_section *section, const char *what)
{
    if (cfg_check_keys(ctx, map) != SK_OK)
        return SK_ERROR;
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = cfg_node(ctx, p->key);
        if (find_option(section, (const char *)key->data.scalar.value) == NULL)
            return unknown_key(ctx, key, section);
    }
    for (size_t i = 0; i < section->count; i++) {
        const struct cfg_option *opt = &section->options[i];
        if (opt->required && cfg_is_null(cfg_lookup(ctx, map, opt->name)))
            return cfg_fail(ctx, map, "%s: missing required key '%s'", what, opt->name);
    }
    return section->check ? section->check(ctx, map) : SK_OK;
}

/* Parses a scalar value, or the default when value is NULL. */
static int apply_scalar(const struct cfg_ctx *ctx, const struct cfg_option *opt,
                        const yaml_node_t *value, void *base)
{
    struct err why;
    void *field = (char *)base + opt->offset;

    if (value == NULL) {
        if (opt->def == NULL)
            return SK_OK;
        if (opt->scalar(opt->name, opt->def, strlen(opt->def), field, &why) != SK_OK)
            return cfg_fail(ctx, NULL, "default of %s: %s", opt->name, why.message);
        return SK_OK;
    }
    if (cfg_expect(ctx, value, YAML_SCALAR_NODE, opt->name) != SK_OK)
        return SK_ERROR;
    const char *text = (const char *)value->data.scalar.value;
    size_t len = value->data.scalar.length;
    if (!opt->binary && strlen(text) != len)
        return cfg_fail(ctx, value, "%s: contains a NUL byte", opt->name);
    if (opt->scalar(opt->name, text, len, field, &why) != SK_OK)
        return cfg_fail(ctx, value, "%s", why.message);
    return SK_OK;
}

/* value is NULL for an absent or null key: the default. */
static int apply_option(const struct cfg_ctx *ctx, const struct cfg_option *opt,
                        const yaml_node_t *value, void *base)
{
    if (opt->entry != NULL)
        return opt->entry(ctx, opt, value, base);
    if (opt->node != NULL)
        return opt->node(ctx, value, base);
    return apply_scalar(ctx, opt, value, base);
}

int cfg_apply_section(const struct cfg_ctx *ctx, const yaml_node_t *map,
                      const struct cfg_section *section, void *base, const char *what)
{
    if (map != NULL && cfg_apply_overrides(ctx, map, section, base, what) != SK_OK)
        return SK_ERROR;
    /* What the map did not set gets its default (or fails if required). */
    for (size_t i = 0; i < section->count; i++) {
        const struct cfg_option *opt = &section->options[i];
        if (cfg_is_null(cfg_lookup(ctx, map, opt->name)) &&
            apply_option(ctx, opt, NULL, base) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

int cfg_apply_overrides(const struct cfg_ctx *ctx, const yaml_node_t *map,
                        const struct cfg_section *section, void *base, const char *what)
{
    if (check_section_keys(ctx, map, section, what) != SK_OK)
        return SK_ERROR;
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const char *name = (const char *)cfg_node(ctx, p->key)->data.scalar.value;
        yaml_node_t *value = cfg_node(ctx, p->value);
        if (!cfg_is_null(value) &&
            apply_option(ctx, find_option(section, name), value, base) != SK_OK)
            return SK_ERROR;
    }
    return SK_OK;
}

/* YAML 1.1's spellings, which is what operators write in practice. */
int cfg_parse_bool(const char *key, const char *text, size_t len, void *field,
                   struct err *why)
{
    static const char *const yes[] = {"true", "yes", "on", "True", "Yes", "On", "TRUE"};
    static const char *const no[] = {"false", "no", "off", "False", "No", "Off", "FALSE"};
    bool *out = field;

    (void)len;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcmp(text, yes[i]) == 0)
            return *out = true, SK_OK;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcmp(text, no[i]) == 0)
            return *out = false, SK_OK;
    return err_set(why, "%s: expected true or false, got '%.80s'", key, text);
}

bool cfg_is_off(const char *text)
{
    return strcmp(text, "off") == 0 || strcmp(text, "false") == 0 || strcmp(text, "no") == 0 ||
           strcmp(text, "Off") == 0 || strcmp(text, "False") == 0 || strcmp(text, "No") == 0;
}

int cfg_parse_string(const char *key, const char *text, size_t len, void *field,
                     struct err *why)
{
    char **out = field;

    (void)len;
    if (text[0] == '\0')
        return err_set(why, "%s: expected a non-empty string", key);
    char *copy = strdup(text);
    if (copy == NULL)
        return err_set(why, "out of memory");
    free(*out);
    *out = copy;
    return SK_OK;
}

/* Plain decimal digits only: "+1", "0x10" and "1e3" are refused, as is
 * anything past UINT64_MAX. */
static int parse_digits(const char *text, uint64_t *out)
{
    uint64_t n = 0;

    if (!isdigit((unsigned char)*text))
        return SK_ERROR;
    for (; isdigit((unsigned char)*text); text++) {
        unsigned digit = (unsigned)(*text - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return SK_ERROR;
        n = n * 10 + digit;
    }
    *out = n;
    return *text == '\0' ? SK_OK : SK_ERROR;
}

int cfg_parse_uint(const char *key, const char *text, size_t len, void *field,
                   struct err *why)
{
    (void)len;
    if (parse_digits(text, field) != SK_OK)
        return err_set(why, "%s: expected a non-negative integer, got '%.80s'", key, text);
    return SK_OK;
}

int cfg_parse_positive(const char *key, const char *text, size_t len, void *field,
                       struct err *why)
{
    uint64_t *out = field;

    (void)len;
    if (parse_digits(text, out) != SK_OK || *out == 0)
        return err_set(why, "%s: expected a positive integer, got '%.80s'", key, text);
    return SK_OK;
}

int cfg_parse_size(const char *key, const char *text, size_t len, void *field,
                   struct err *why)
{
    struct err units;

    (void)len;
    if (units_parse_size(text, field, &units) != SK_OK)
        return err_set(why, "%s: %s", key, units.message);
    return SK_OK;
}

int cfg_parse_duration(const char *key, const char *text, size_t len, void *field,
                       struct err *why)
{
    struct err units;

    (void)len;
    if (units_parse_duration(text, field, &units) != SK_OK)
        return err_set(why, "%s: %s", key, units.message);
    return SK_OK;
}

void cfg_join_names(char *out, size_t size, const char *const *names, size_t count,
                    const char *quote)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s%s%s",
                                 i == 0 ? "" : i + 1 == count ? " or " : ", ", quote, names[i],
                                 quote);
}

int cfg_choice(const char *key, const char *text, const char *const *names, size_t count,
               struct err *why)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(text, names[i]) == 0)
            return (int)i;
    char expected[160];
    cfg_join_names(expected, sizeof expected, names, count, "");
    err_set(why, "%s: expected %s, got '%.80s'", key, expected, text);
    return -1;
}
