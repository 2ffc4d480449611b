/*
 * config_scan.c - the shm_path of a config the loader rejects.
 *
 * `sakerctl -c saker.yaml stop` must still stop the server after someone
 * broke saker.yaml (an init script's stop, a reload that should report the
 * error): the full loader refuses the whole file, so this walks libyaml's
 * event stream for the one top-level key sakerctl needs and stops at the
 * first parse error. A key after the error is not seen; then the caller
 * reports the config error instead of guessing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/cli.h"

struct scan {
    int depth;          /* nesting of mappings and sequences */
    bool want_key;      /* at depth 1: the next scalar is a key */
    bool value_is_ours; /* at depth 1: the key just read was shm_path */
    char *found;
};

/* Returns true when the scan is over (found, or the top level ended). */
static bool scan_event(struct scan *s, const yaml_event_t *e)
{
    bool top = s->depth == 1;
    switch (e->type) {
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        if (top)
            s->want_key = true; /* a collection value of some other key */
        s->depth++;
        s->value_is_ours = false;
        if (s->depth == 1)
            s->want_key = true;
        return false;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        s->depth--;
        return s->depth == 0;
    case YAML_SCALAR_EVENT:
        if (!top)
            return false;
        if (!s->want_key && s->value_is_ours) {
            s->found = strndup((const char *)e->data.scalar.value, e->data.scalar.length);
            return true;
        }
        s->value_is_ours = s->want_key && strcmp((const char *)e->data.scalar.value,
                                                 "shm_path") == 0;
        s->want_key = !s->want_key;
        return false;
    case YAML_STREAM_END_EVENT:
        return true;
    default:
        return false;
    }
}

int cli_scan_shm_path(const char *file, char **path, struct err *err)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return err_set_errno(err, errno, "%s", file);
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    struct scan s = {0};
    bool done = false, broken = false;
    while (!done) {
        yaml_event_t e;
        if (!yaml_parser_parse(&parser, &e)) {
            broken = true;
            break;
        }
        done = scan_event(&s, &e);
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (s.found != NULL) {
        *path = s.found;
        return SK_OK;
    }
    if (broken)
        return err_set(err, "%s: YAML broken before any shm_path", file);
    return SK_DECLINED;
}
