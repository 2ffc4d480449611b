/*
 * config_rate_limits.c - the `rate_limits` map and a route's `rate_limit`;
 * see config.h.
 *
 *   rate_limits:
 *     per_client:                        # a policy's name, for routes and metrics
 *       fixed_window: { permit_limit: 100, window: 1m }
 *       partition: client_address        # the default; or header, or global
 *       ipv4_prefix: 24                  # clients in one /24 share a partition
 *     per_key:
 *       sliding_window: { permit_limit: 600, window: 1m, segments_per_window: 6 }
 *       partition: header
 *       header: X-Api-Key
 *     everyone:
 *       token_bucket: { token_limit: 1000, tokens_per_period: 100,
 *                       replenishment_period: 100ms }
 *       partition: global
 *   routes:
 *     - path: /api
 *       rate_limit: [per_client, everyone]
 *
 * The algorithms and their parameters are ASP.NET Core's rate limiters'
 * (FixedWindowRateLimiterOptions, SlidingWindowRateLimiterOptions,
 * TokenBucketRateLimiterOptions) in snake_case, without the queue: a
 * request over the limit is answered 429 at once. Bounds are those of the
 * shared-memory records that hold the state (shm/rate_table.h): counts in
 * 32 bits, a sliding window's segment counts in 24.
 */
#include "conf/config_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/units.h"

#define POLICY(field) offsetof(struct rate_limit_policy, field)

/* ---- the three algorithms ------------------------------------------------ */

static const struct cfg_option fixed_options[] = {
    {.name = "permit_limit", .offset = POLICY(limit), .scalar = cfg_parse_positive,
     .required = true},
    {.name = "window", .offset = POLICY(period_ms), .scalar = cfg_parse_duration,
     .required = true},
};

static const struct cfg_option sliding_options[] = {
    {.name = "permit_limit", .offset = POLICY(limit), .scalar = cfg_parse_positive,
     .required = true},
    {.name = "window", .offset = POLICY(period_ms), .scalar = cfg_parse_duration,
     .required = true},
    {.name = "segments_per_window", .offset = POLICY(segments), .scalar = cfg_parse_positive,
     .required = true},
};

static const struct cfg_option token_options[] = {
    {.name = "token_limit", .offset = POLICY(limit), .scalar = cfg_parse_positive,
     .required = true},
    {.name = "tokens_per_period", .offset = POLICY(tokens_per_period),
     .scalar = cfg_parse_positive, .required = true},
    {.name = "replenishment_period", .offset = POLICY(period_ms),
     .scalar = cfg_parse_duration, .required = true},
};

#define SECTION(options) {options, sizeof options / sizeof options[0], NULL}

struct algorithm {
    const char *name;
    enum rate_limit_algorithm id;
    struct cfg_section section;
};

static const struct algorithm algorithms[] = {
    {"fixed_window", RATE_LIMIT_FIXED_WINDOW, SECTION(fixed_options)},
    {"sliding_window", RATE_LIMIT_SLIDING_WINDOW, SECTION(sliding_options)},
    {"token_bucket", RATE_LIMIT_TOKEN_BUCKET, SECTION(token_options)},
};
#define ALGORITHM_COUNT (sizeof algorithms / sizeof algorithms[0])

/* The range checks a value's own parser cannot make, at the value. */
static int check_algorithm(const struct cfg_ctx *ctx, const yaml_node_t *map,
                           const struct rate_limit_policy *p)
{
    const char *limit_key = p->algorithm == RATE_LIMIT_TOKEN_BUCKET ? "token_limit"
                                                                     : "permit_limit";
    uint64_t most = p->algorithm == RATE_LIMIT_SLIDING_WINDOW ? CONFIG_SLIDING_LIMIT_MAX
                                                               : CONFIG_RATE_LIMIT_MAX;
    const char *period_key = p->algorithm == RATE_LIMIT_TOKEN_BUCKET ? "replenishment_period"
                                                                      : "window";
    if (p->limit > most)
        return cfg_fail(ctx, cfg_lookup(ctx, map, limit_key), "%s: at most %llu%s", limit_key,
                        (unsigned long long)most,
                        p->algorithm == RATE_LIMIT_SLIDING_WINDOW
                            ? " in a sliding window (segment counts are kept in 24 bits)" : "");
    if (p->period_ms == 0)
        return cfg_fail(ctx, cfg_lookup(ctx, map, period_key), "%s: must be at least 1ms",
                        period_key);
    if (p->tokens_per_period > CONFIG_RATE_LIMIT_MAX)
        return cfg_fail(ctx, cfg_lookup(ctx, map, "tokens_per_period"),
                        "tokens_per_period: at most %u", CONFIG_RATE_LIMIT_MAX);
    if (p->algorithm != RATE_LIMIT_SLIDING_WINDOW)
        return SK_OK;
    const yaml_node_t *segments = cfg_lookup(ctx, map, "segments_per_window");
    if (p->segments > CONFIG_SLIDING_SEGMENTS_MAX)
        return cfg_fail(ctx, segments, "segments_per_window: at most %d",
                        CONFIG_SLIDING_SEGMENTS_MAX);
    if (p->period_ms % p->segments != 0)
        return cfg_fail(ctx, segments, "segments_per_window: the window (%llu ms) must split "
                        "into %llu segments of whole milliseconds",
                        (unsigned long long)p->period_ms, (unsigned long long)p->segments);
    return SK_OK;
}

/* A key naming an algorithm (opt->arg: its struct algorithm). Base: the
 * policy. */
static int parse_algorithm(const struct cfg_ctx *ctx, const struct cfg_option *opt,
                           const yaml_node_t *node, void *base)
{
    struct rate_limit_policy *p = base;
    const struct algorithm *algorithm = opt->arg;

    if (node == NULL)
        return SK_OK; /* another algorithm is the policy's (check_policy) */
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, opt->name) != SK_OK)
        return SK_ERROR;
    p->algorithm = algorithm->id;
    p->segments = 1;
    if (cfg_apply_section(ctx, node, &algorithm->section, p, opt->name) != SK_OK)
        return SK_ERROR;
    return check_algorithm(ctx, node, p);
}

/* ---- the policy ---------------------------------------------------------- */

static int parse_partition(const char *key, const char *text, size_t len, void *field,
                           struct err *why)
{
    static const char *const names[] = {"client_address", "header", "global"}; /* enum order */
    int i = CFG_CHOICE(key, text, names, why);

    (void)len;
    if (i < 0)
        return SK_ERROR;
    *(enum rate_limit_partition *)field = (enum rate_limit_partition)i;
    return SK_OK;
}

static int parse_prefix(const char *key, const char *text, uint64_t most, void *field,
                        struct err *why)
{
    if (cfg_parse_uint(key, text, strlen(text), field, why) != SK_OK ||
        *(uint64_t *)field > most)
        return err_set(why, "%s: expected a prefix length from 0 to %llu, got '%.80s'", key,
                       (unsigned long long)most, text);
    return SK_OK;
}

static int parse_ipv4_prefix(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    (void)len;
    return parse_prefix(key, text, 32, field, why);
}

static int parse_ipv6_prefix(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    (void)len;
    return parse_prefix(key, text, 128, field, why);
}

/* A field name (RFC 9110 section 5.1: a token), kept lower-case. */
static int parse_header_name(const char *key, const char *text, size_t len, void *field,
                             struct err *why)
{
    if (text[0] == '\0' || strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789!#$%&'*+-.^_`|~") != len)
        return err_set(why, "%s: expected a header name, got '%.80s'", key, text);
    if (cfg_parse_string(key, text, len, field, why) != SK_OK)
        return SK_ERROR;
    for (char *c = *(char **)field; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return SK_OK;
}

static int parse_max_partitions(const char *key, const char *text, size_t len, void *field,
                                struct err *why)
{
    if (cfg_parse_positive(key, text, len, field, why) != SK_OK)
        return SK_ERROR;
    if (*(uint64_t *)field > CONFIG_RATE_PARTITIONS_MAX)
        return err_set(why, "%s: at most %u", key, CONFIG_RATE_PARTITIONS_MAX);
    return SK_OK;
}

static const struct cfg_option policy_options[] = {
    {.name = "fixed_window", .entry = parse_algorithm, .arg = &algorithms[0]},
    {.name = "sliding_window", .entry = parse_algorithm, .arg = &algorithms[1]},
    {.name = "token_bucket", .entry = parse_algorithm, .arg = &algorithms[2]},
    {.name = "partition", .offset = POLICY(partition), .scalar = parse_partition,
     .def = "client_address"},
    {.name = "ipv4_prefix", .offset = POLICY(ipv4_prefix), .scalar = parse_ipv4_prefix,
     .def = "32"},
    {.name = "ipv6_prefix", .offset = POLICY(ipv6_prefix), .scalar = parse_ipv6_prefix,
     .def = "64"},
    {.name = "header", .offset = POLICY(header), .scalar = parse_header_name},
    {.name = "max_partitions", .offset = POLICY(max_partitions),
     .scalar = parse_max_partitions, .def = "10000"},
};

/* Exactly one algorithm; `header` with partition: header and only then;
 * prefixes only where there are addresses. */
static int check_policy(const struct cfg_ctx *ctx, const yaml_node_t *map)
{
    const yaml_node_t *first = NULL, *partition = cfg_lookup(ctx, map, "partition");

    for (size_t i = 0; i < ALGORITHM_COUNT; i++) {
        const yaml_node_t *node = cfg_lookup(ctx, map, algorithms[i].name);
        if (node == NULL)
            continue;
        if (cfg_is_null(node))
            return cfg_fail(ctx, node, "%s: expected a mapping, got null", algorithms[i].name);
        if (first != NULL)
            return cfg_fail(ctx, node, "rate limit: has two algorithms; keep one of "
                            "fixed_window, sliding_window and token_bucket");
        first = node;
    }
    if (first == NULL)
        return cfg_fail(ctx, map, "rate limit: no algorithm: add fixed_window, "
                        "sliding_window or token_bucket");
    if (partition != NULL && partition->type != YAML_SCALAR_NODE)
        return SK_OK; /* its parser says what is wrong with it */
    const char *by = cfg_is_null(partition) ? "client_address"
                                            : (const char *)partition->data.scalar.value;
    const yaml_node_t *header = cfg_lookup(ctx, map, "header");
    if (strcmp(by, "header") == 0 && cfg_is_null(header))
        return cfg_fail(ctx, partition, "partition: header needs 'header: NAME'");
    if (strcmp(by, "header") != 0 && header != NULL)
        return cfg_fail(ctx, header, "header: only with 'partition: header'");
    static const char *const prefixes[] = {"ipv4_prefix", "ipv6_prefix"};
    for (size_t i = 0; i < 2; i++) {
        const yaml_node_t *node = cfg_lookup(ctx, map, prefixes[i]);
        if (node != NULL && strcmp(by, "client_address") != 0)
            return cfg_fail(ctx, node, "%s: only with 'partition: client_address'",
                            prefixes[i]);
    }
    return SK_OK;
}

static const struct cfg_section policy_section = {
    policy_options, sizeof policy_options / sizeof policy_options[0], check_policy};

static int parse_policy(const struct cfg_ctx *ctx, const yaml_node_pair_t *pair,
                        struct rate_limit_policy *p)
{
    yaml_node_t *key = cfg_node(ctx, pair->key), *value = cfg_node(ctx, pair->value);
    char what[128];

    p->line = (int)key->start_mark.line + 1;
    p->column = (int)key->start_mark.column + 1;
    if ((p->name = cfg_strdup(ctx, key, (const char *)key->data.scalar.value)) == NULL)
        return SK_ERROR;
    if (strlen(p->name) > 63)
        return cfg_fail(ctx, key, "rate limit '%.80s': a name has at most 63 bytes", p->name);
    snprintf(what, sizeof what, "rate limit '%.80s'", p->name);
    if (cfg_expect(ctx, value, YAML_MAPPING_NODE, what) != SK_OK)
        return SK_ERROR;
    return cfg_apply_section(ctx, value, &policy_section, p, what);
}

int cfg_parse_rate_limits(const struct cfg_ctx *ctx, const yaml_node_t *node, void *base)
{
    struct config *config = base;

    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_MAPPING_NODE, "rate_limits") != SK_OK ||
        cfg_check_keys(ctx, node) != SK_OK)
        return SK_ERROR;
    size_t count = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (count > CONFIG_MAX_RATE_LIMITS)
        return cfg_fail(ctx, node, "rate_limits: %zu policies, at most %d", count,
                        CONFIG_MAX_RATE_LIMITS);
    if (count == 0)
        return SK_OK;
    if ((config->rate_limits = calloc(count, sizeof *config->rate_limits)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    config->rate_limit_count = count;
    for (size_t i = 0; i < count; i++)
        if (parse_policy(ctx, node->data.mapping.pairs.start + i, &config->rate_limits[i]) !=
            SK_OK)
            return SK_ERROR;
    return SK_OK;
}

void cfg_rate_limits_free(struct rate_limit_policy *policies, size_t count)
{
    for (size_t i = 0; policies != NULL && i < count; i++) {
        free(policies[i].name);
        free(policies[i].header);
    }
    free(policies);
}

/* ---- a route's rate_limit -------------------------------------------------- */

static int add_route_policy(const struct cfg_ctx *ctx, const yaml_node_t *item,
                            struct route *route)
{
    if (cfg_expect(ctx, item, YAML_SCALAR_NODE, "rate_limit") != SK_OK)
        return SK_ERROR;
    const char *name = (const char *)item->data.scalar.value;
    for (size_t i = 0; i < route->rate_limit_count; i++)
        if (strcmp(route->rate_limit_names[i], name) == 0)
            return cfg_fail(ctx, item, "rate_limit: '%.80s' is named twice", name);
    char *copy = cfg_strdup(ctx, item, name);
    if (copy == NULL)
        return SK_ERROR;
    route->rate_limit_names[route->rate_limit_count++] = copy;
    return SK_OK;
}

/* `rate_limit: NAME` or `rate_limit: [A, B]`. Base: struct route. */
int cfg_parse_route_rate_limits(const struct cfg_ctx *ctx, const yaml_node_t *node,
                                void *base)
{
    struct route *route = base;
    bool list = node != NULL && node->type == YAML_SEQUENCE_NODE;
    size_t count = list ? (size_t)(node->data.sequence.items.top -
                                   node->data.sequence.items.start)
                        : 1;

    if (node == NULL)
        return SK_OK;
    if (count > CONFIG_MAX_ROUTE_RATE_LIMITS)
        return cfg_fail(ctx, node, "rate_limit: %zu policies, at most %d", count,
                        CONFIG_MAX_ROUTE_RATE_LIMITS);
    if (count == 0)
        return SK_OK;
    route->rate_limit_names = calloc(count, sizeof *route->rate_limit_names);
    route->rate_limits = calloc(count, sizeof *route->rate_limits);
    if (route->rate_limit_names == NULL || route->rate_limits == NULL)
        return cfg_fail(ctx, node, "out of memory");
    if (!list)
        return add_route_policy(ctx, node, route);
    for (size_t i = 0; i < count; i++)
        if (add_route_policy(ctx, cfg_node(ctx, node->data.sequence.items.start[i]), route) !=
            SK_OK)
            return SK_ERROR;
    return SK_OK;
}

static int unknown_policy(const struct config *config, const char *file,
                          const struct route *r, const char *name, struct err *err)
{
    const char *names[CONFIG_MAX_RATE_LIMITS];
    char at[256] = "";

    for (size_t i = 0; i < config->rate_limit_count; i++)
        names[i] = config->rate_limits[i].name;
    if (file != NULL && r->line > 0)
        snprintf(at, sizeof at, "%s:%d:%d: ", file, r->line, r->column);
    if (config->rate_limit_count == 0)
        return err_set(err, "%sroute '%.80s': rate_limit '%.80s': the config has no "
                       "rate_limits", at, r->path, name);
    const char *near = cfg_suggest(name, names, config->rate_limit_count);
    return err_set(err, "%sroute '%.80s': rate_limit '%.80s' is not one of the rate_limits%s%s%s",
                   at, r->path, name, near ? "; did you mean '" : "", near ? near : "",
                   near ? "'?" : "");
}

int cfg_rate_limits_bind(struct config *config, const char *file, struct err *err)
{
    for (size_t i = 0; i < config->route_count; i++) {
        struct route *r = &config->routes[i];
        for (size_t k = 0; k < r->rate_limit_count; k++) {
            size_t p = 0;
            while (p < config->rate_limit_count &&
                   strcmp(config->rate_limits[p].name, r->rate_limit_names[k]) != 0)
                p++;
            if (p == config->rate_limit_count)
                return unknown_policy(config, file, r, r->rate_limit_names[k], err);
            r->rate_limits[k] = (unsigned)p;
        }
    }
    return SK_OK;
}

/* ---- comparing and describing --------------------------------------------- */

bool config_rate_limit_same(const struct rate_limit_policy *a, const struct rate_limit_policy *b)
{
    bool same_header = (a->header == NULL) == (b->header == NULL) &&
                       (a->header == NULL || strcmp(a->header, b->header) == 0);
    return a->algorithm == b->algorithm && a->limit == b->limit &&
           a->period_ms == b->period_ms && a->segments == b->segments &&
           a->tokens_per_period == b->tokens_per_period && a->partition == b->partition &&
           a->ipv4_prefix == b->ipv4_prefix && a->ipv6_prefix == b->ipv6_prefix &&
           same_header && a->max_partitions == b->max_partitions;
}

static void describe_partition(const struct rate_limit_policy *p, char *out, size_t size)
{
    if (p->partition == RATE_PARTITION_GLOBAL)
        snprintf(out, size, "global");
    else if (p->partition == RATE_PARTITION_HEADER)
        snprintf(out, size, "by header %s", p->header);
    else
        snprintf(out, size, "by client_address /%llu /%llu",
                 (unsigned long long)p->ipv4_prefix, (unsigned long long)p->ipv6_prefix);
}

void config_rate_limit_describe(const struct rate_limit_policy *p, char *out, size_t size)
{
    char period[32], partition[160];
    units_format_duration(p->period_ms, period, sizeof period);
    describe_partition(p, partition, sizeof partition);
    if (p->algorithm == RATE_LIMIT_TOKEN_BUCKET)
        snprintf(out, size, "token_bucket %llu, %llu per %s, %s", (unsigned long long)p->limit,
                 (unsigned long long)p->tokens_per_period, period, partition);
    else if (p->algorithm == RATE_LIMIT_SLIDING_WINDOW)
        snprintf(out, size, "sliding_window %llu per %s in %llu segments, %s",
                 (unsigned long long)p->limit, period, (unsigned long long)p->segments,
                 partition);
    else
        snprintf(out, size, "fixed_window %llu per %s, %s", (unsigned long long)p->limit,
                 period, partition);
}
