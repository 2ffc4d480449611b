/*
 * cidr.c - address ranges; see cidr.h.
 */
#include "conf/cidr.h"

#include "conf/config_parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static bool host_bits_clear(const struct cidr *c)
{
    size_t bytes = c->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        unsigned keep = c->bits >= (i + 1) * 8 ? 8 : c->bits > i * 8 ? c->bits - i * 8 : 0;
        uint8_t mask = keep == 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        if ((c->addr[i] & (uint8_t)~mask) != 0)
            return false;
    }
    return true;
}

int cidr_parse(const char *text, struct cidr *out, struct err *err)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

    memset(out, 0, sizeof *out);
    if (len == 0 || len >= sizeof addr)
        goto bad;
    memcpy(addr, text, len);
    addr[len] = '\0';
    if (inet_pton(AF_INET, addr, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, out->addr) == 1)
        out->family = AF_INET6;
    else
        goto bad;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash != NULL) {
        char *end;
        unsigned long bits = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || bits > max)
            goto bad;
        out->bits = (unsigned)bits;
    }
    if (!host_bits_clear(out))
        return err_set(err, "'%.80s': address bits are set beyond the /%u prefix", text,
                       out->bits);
    return SK_OK;
bad:
    return err_set(err, "expected an address or a range such as 10.0.0.0/8 or fd00::/8, "
                        "got '%.80s'", text);
}

static bool cidr_match(const struct cidr *c, int family, const uint8_t *addr)
{
    if (c->family != family)
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

bool cidr_list_match(const struct cidr *list, size_t count, const struct sockaddr *peer)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *addr;
    int family = peer->sa_family;

    if (family == AF_INET) {
        addr = (const uint8_t *)&((const struct sockaddr_in *)(const void *)peer)->sin_addr;
    } else if (family == AF_INET6) {
        addr = ((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr.s6_addr;
        if (memcmp(addr, mapped, sizeof mapped) == 0) {
            addr += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < count; i++)
        if (cidr_match(&list[i], family, addr))
            return true;
    return false;
}

int cfg_parse_cidr_list(const struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                        struct cidr **list, size_t *count)
{
    if (node == NULL)
        return SK_OK;
    if (cfg_expect(ctx, node, YAML_SEQUENCE_NODE, what) != SK_OK)
        return SK_ERROR;
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > 0 && (*list = calloc(n, sizeof **list)) == NULL)
        return cfg_fail(ctx, node, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = cfg_node(ctx, node->data.sequence.items.start[i]);
        struct err why = {{0}};
        if (cfg_expect(ctx, item, YAML_SCALAR_NODE, what) != SK_OK)
            return SK_ERROR;
        if (cidr_parse((const char *)item->data.scalar.value, &(*list)[i], &why) != SK_OK)
            return cfg_fail(ctx, item, "%s: %s", what, why.message);
        (*count)++;
    }
    return SK_OK;
}
