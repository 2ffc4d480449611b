/*
 * static_browse.h - a directory's listing as HTML, for a static route with
 * `browse: true` (ASP.NET Core's UseDirectoryBrowser, nginx's autoindex),
 * answered for a directory requested with a trailing '/' that has none of
 * the route's index files.
 *
 * The listing names every entry but "." (and ".." at the route's root),
 * sorted byte-wise, directories with a trailing '/'; dotfiles only with
 * `serve_dotfiles: true` (a listing must not show what the route would
 * not serve). Names are percent-encoded in the links and HTML-escaped in
 * the text, so a file called `<script>` or `a"b` is a name, never markup.
 * At most STATIC_BROWSE_MAX entries are listed (the page says how many
 * were left out); the page is built in the exchange's arena.
 */
#ifndef SAKER_WORKER_STATIC_BROWSE_H
#define SAKER_WORKER_STATIC_BROWSE_H

#include <stdbool.h>

#include "worker/exchange.h"

#define STATIC_BROWSE_MAX 10000

/* Answers ex with the listing of rel (a normalised path relative to
 * root_fd, "" for the root), opened beneath root_fd; the page's title
 * and links use the request's path. 404 if the directory cannot be read. */
void static_browse_respond(struct exchange *ex, int root_fd, const char *rel,
                           bool serve_dotfiles);

#endif
