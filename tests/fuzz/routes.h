/* SPDX-License-Identifier: PostgreSQL */
/* routes.h - the route table the fuzz targets match against: the real one, plus shapes it will grow into. */
#ifndef NP_FUZZ_ROUTES_H
#define NP_FUZZ_ROUTES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "http.h"
#include "router.h"

/* The real handlers need libpq: every route gets this stub, which answers 200 with an empty object. */
static void fuzz_route_handler(struct np_request *req, struct np_response *resp)
{
	(void)req;
	http_respond_json(resp, 200, cJSON_CreateObject());
}

static const struct np_route fuzz_routes[] = {
	/* the table of src/api, extracted by run.sh into the build dir */
#include "api_routes.inc"
	/* shapes the API will grow into: several captures, several methods on one path */
	{ "POST", "/api/v1/books", fuzz_route_handler, 0, "fuzz.books.create" },
	{ "PUT", "/api/v1/books/{id}", fuzz_route_handler, 0, "fuzz.books.put" },
	{ "DELETE", "/api/v1/books/{id}", fuzz_route_handler, 0, "fuzz.books.delete" },
	{ "GET", "/api/v1/books/{book}/chapters/{chapter}", fuzz_route_handler, 0, "fuzz.chapter" },
	{ "GET", "/api/v1/books/{book}/chapters/{chapter}/passages/{n}/{form}", fuzz_route_handler, 0, "fuzz.deep" },
	{ "GET", "/api/v1/search", fuzz_route_handler, 0, "fuzz.search" },
};

#define FUZZ_NROUTES (sizeof(fuzz_routes) / sizeof(fuzz_routes[0]))

#endif
