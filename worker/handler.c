/* handler.c - route kind to handler ops; see handler.h. */
#include "worker/handler.h"

const struct handler_ops *handler_for(enum route_handler kind)
{
    switch (kind) {
    case ROUTE_RETURN:
        return &handler_return_ops;
    case ROUTE_STATIC:
        return &handler_static_ops;
    case ROUTE_STATUS:
        return &handler_status_ops;
    case ROUTE_REDIRECT_HTTPS:
        return &handler_redirect_ops;
    }
    return NULL;
}
