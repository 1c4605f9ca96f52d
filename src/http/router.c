/* SPDX-License-Identifier: PostgreSQL */
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

/* Add method to the Allow list of m, once. */
static void router_allow_add(struct np_route_match *m, const char *method)
{
	size_t len = strlen(m->allow), ml = strlen(method);
	for (const char *p = m->allow; (p = strstr(p, method)) != NULL; p += ml)
		if ((p == m->allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
			return;
	snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s", len ? ", " : "", method);
}

enum router_result router_match(const struct np_route *routes, size_t n, const char *method,
                                const char *path, struct np_route_match *m)
{
	bool path_seen = false, head = strcmp(method, "HEAD") == 0;
	const struct np_route *get = NULL;
	struct np_route_match tmp, get_match;
	memset(m, 0, sizeof(*m));
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
		if (head && get == NULL && strcmp(routes[i].method, "GET") == 0) {
			get = &routes[i];
			get_match = tmp;
		}
		/* collect the methods this path does allow, once each; a GET route answers HEAD too */
		router_allow_add(m, routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0)
			router_allow_add(m, "HEAD");
		path_seen = true;
	}
	if (get != NULL) {
		/* HEAD of a GET route is that route (RFC 9110 9.3.2); the worker sends no body */
		get_match.route = get;
		memcpy(get_match.allow, m->allow, sizeof(m->allow));
		*m = get_match;
		return ROUTER_OK;
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
