/* SPDX-License-Identifier: PostgreSQL */
/* router.h - match a method and a decoded path against a table of routes with {params}. */
#ifndef NP_ROUTER_H
#define NP_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_PARAM_LEN 128

struct np_request;
struct np_response;
typedef void (*np_handler)(struct np_request *req, struct np_response *resp);

/* Route flags: what a route needs, read by the worker before calling the handler. */
enum { ROUTE_NEEDS_DB = 1u << 0, ROUTE_READ_ONLY = 1u << 1,
       ROUTE_ADMIN = 1u << 2, /* answered only to admin_allow (the worker checks), else 403 */
       ROUTE_CONTENT = 1u << 3, /* the textbook's content: ETag and shared-cache freshness (api_cache.c) */
       ROUTE_ADMIN_DETAIL = 1u << 4 /* answered to all, with more for admin_allow (req->admin) */ };

struct np_route {
	const char *method;   /* "GET", "POST", ... */
	const char *pattern;  /* "/api/v1/books/{id}": literal segments and {name} captures */
	np_handler handler;
	unsigned flags;
	const char *name;     /* stable label for logs and metrics, e.g. "books.get" */
};

enum router_result { ROUTER_OK = 0, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

struct np_route_match {
	const struct np_route *route;
	int nparams;
	char names[ROUTER_MAX_PARAMS][32];
	char values[ROUTER_MAX_PARAMS][ROUTER_PARAM_LEN];
	char allow[64];       /* for ROUTER_METHOD_NOT_ALLOWED: "GET, POST" */
};

/* Match method and path (already percent-decoded, no query) against routes[0..n). HEAD matches a
 * GET route of the path when no HEAD route does (the caller answers it without a body); the Allow
 * list of a 405 names HEAD after every GET. */
enum router_result router_match(const struct np_route *routes, size_t n, const char *method,
                                const char *path, struct np_route_match *m);

/* The value of parameter name in m, or NULL. */
const char *router_param(const struct np_route_match *m, const char *name);

#endif
