/*
 * route_status.h - `status:`, the instance's own health and metrics, as
 * the config gives it.
 *
 *   status: { kind: liveness }      # or readiness, metrics
 */
#ifndef SAKER_CONF_ROUTE_STATUS_H
#define SAKER_CONF_ROUTE_STATUS_H

#include "conf/handler_schema.h"

enum route_status_kind {
    STATUS_LIVENESS,  /* 200 while the process serves */
    STATUS_READINESS, /* 200 when running, 503 while draining or stopping */
    STATUS_METRICS,   /* Prometheus text exposition of the whole instance */
};

struct route_status {
    enum route_status_kind kind;
};

extern const struct handler_schema route_status_schema;

#endif
