/* api.h - the route table and the handlers that need no database. */
#ifndef NP_API_H
#define NP_API_H

#include <stddef.h>

#include "router.h"

/* The application's routes. */
const struct np_route *api_routes(size_t *n);

#endif
