/*
 * shm_metrics.h - the instance's state in Prometheus text exposition
 * format 0.0.4, rendered from the shm segment alone.
 *
 * Used by `sakerctl metrics` (to stdout) and by the worker's `status`
 * handler with kind metrics (into an open_memstream), so a scraper and an
 * operator see the same figures. See shm_metrics.c for the families.
 */
#ifndef SAKER_SHM_METRICS_H
#define SAKER_SHM_METRICS_H

#include <stdio.h>

#include "shm/shm.h"

void shm_metrics_write(const struct shm *shm, FILE *out);
/* A label value of at most max bytes (or up to its NUL) as the format
 * wants it: backslash, quote and newline escaped, and valid UTF-8
 * (U+FFFD for bytes that are not). */
void shm_metrics_label_value(FILE *out, const char *s, size_t max);

#endif
