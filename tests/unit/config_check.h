/*
 * config_check.h - what the config suites share: load a YAML string that
 * must load, or one that must fail with exactly a message (location and
 * all: the message is what an operator sees).
 */
#ifndef SAKER_TESTS_CONFIG_CHECK_H
#define SAKER_TESTS_CONFIG_CHECK_H

#include <check.h>
#include <string.h>

#include "conf/config.h"

static inline struct config *load_ok(const char *text)
{
    struct err err = {{0}};
    struct config *config = config_load_string(text, strlen(text), "t.yaml", &err);
    ck_assert_msg(config != NULL, "%s", err.message);
    return config;
}

static inline void assert_error(const char *text, const char *message)
{
    struct err err = {{0}};
    struct config *config = config_load_string(text, strlen(text), "t.yaml", &err);
    ck_assert_msg(config == NULL, "loaded: %s", text);
    ck_assert_str_eq(err.message, message);
}

#endif
