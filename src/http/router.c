/* router.c - match a method and a decoded path against a table of routes with {params}. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "router.h"

/* Whether path matches pattern segment by segment; captures into m when it does. */
static bool router_path_matches(const char *pattern, const char *path, struct np_route_match *m)
{
	const char *p = pattern, *s = path;
	m->nparams = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			if (close == NULL || m->nparams >= ROUTER_MAX_PARAMS)
				return false;
			const char *end = strchr(s, '/');
			size_t vlen = end ? (size_t)(end - s) : strlen(s);
			size_t nlen = (size_t)(close - p - 1);
			if (vlen == 0 || vlen >= ROUTER_PARAM_LEN || nlen >= sizeof(m->names[0]))
				return false;
			memcpy(m->names[m->nparams], p + 1, nlen);
			m->names[m->nparams][nlen] = '\0';
			memcpy(m->values[m->nparams], s, vlen);
			m->values[m->nparams][vlen] = '\0';
			m->nparams++;
			p = close + 1;
			s += vlen;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *p == '\0' && *s == '\0';
}

enum router_result router_match(const struct np_route *routes, size_t n, const char *method,
                                const char *path, struct np_route_match *m)
{
	bool path_seen = false;
	memset(m, 0, sizeof(*m));
	struct np_route_match tmp;
	for (size_t i = 0; i < n; i++) {
		if (!router_path_matches(routes[i].pattern, path, &tmp))
			continue;
		if (strcmp(routes[i].method, method) == 0) {
			char allow[sizeof(m->allow)];
			memcpy(allow, m->allow, sizeof(allow));
			*m = tmp;
			memcpy(m->allow, allow, sizeof(allow));
			m->route = &routes[i];
			return ROUTER_OK;
		}
		/* collect the methods this path does allow, once each */
		if (strstr(m->allow, routes[i].method) == NULL) {
			size_t len = strlen(m->allow);
			snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s", len ? ", " : "",
			         routes[i].method);
		}
		path_seen = true;
	}
	return path_seen ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}

const char *router_param(const struct np_route_match *m, const char *name)
{
	for (int i = 0; i < m->nparams; i++)
		if (strcmp(m->names[i], name) == 0)
			return m->values[i];
	return NULL;
}
