/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_router.c - router_match over the real route table, checked against a segment-by-segment reference. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "router.h"
#include "routes.h"

/* The input is "METHOD\nPATH" (no newline: the method is GET and the whole input is the path). The path
 * reaches the router already percent-decoded, so it may hold any byte but NUL. */

static void fuzz_check(int ok)
{
	if (!ok)
		abort();
}

/* Reference: pattern and path split at '/', a {name} segment matches one non-empty segment shorter
 * than ROUTER_PARAM_LEN, a literal segment matches itself; at most ROUTER_MAX_PARAMS captures. Only
 * for patterns whose captures are whole segments (all of the table's). */
static bool fuzz_ref_matches(const char *pattern, const char *path)
{
	const char *p = pattern, *s = path;
	int captures = 0;
	for (;;) {
		const char *pe = strchr(p, '/'), *se = strchr(s, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
		if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
			if (sl == 0 || sl >= ROUTER_PARAM_LEN || ++captures > ROUTER_MAX_PARAMS)
				return false;
		} else if (pl != sl || memcmp(p, s, pl) != 0) {
			return false;
		}
		if (!pe || !se)
			return !pe && !se;
		p = pe + 1;
		s = se + 1;
	}
}

/* Put the captures back into the pattern: the result must be the path matched. */
static void fuzz_rebuild(const char *pattern, const struct np_route_match *m, char *out, size_t n)
{
	size_t o = 0;
	int k = 0;
	for (const char *p = pattern; *p;) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			fuzz_check(close != NULL && k < m->nparams);
			fuzz_check(strlen(m->names[k]) == (size_t)(close - p - 1) &&
			           memcmp(m->names[k], p + 1, strlen(m->names[k])) == 0);
			fuzz_check(router_param(m, m->names[k]) != NULL);
			size_t vl = strlen(m->values[k]);
			fuzz_check(vl > 0 && vl < ROUTER_PARAM_LEN && strchr(m->values[k], '/') == NULL);
			fuzz_check(o + vl < n);
			memcpy(out + o, m->values[k], vl);
			o += vl;
			k++;
			p = close + 1;
			continue;
		}
		fuzz_check(o + 1 < n);
		out[o++] = *p++;
	}
	fuzz_check(k == m->nparams);
	out[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	const char *method = "GET", *path = buf;
	char *nl = strchr(buf, '\n');
	if (nl) {
		*nl = '\0';
		method = buf;
		path = nl + 1;
	}

	struct np_route_match m;
	enum router_result r = router_match(fuzz_routes, FUZZ_NROUTES, method, path, &m);

	/* the reference: the first route whose path and method match (HEAD is a GET route's, RFC 9110
	 * 9.3.2), else whether any path matched */
	const struct np_route *want = NULL;
	bool path_seen = false;
	const char *as = strcmp(method, "HEAD") == 0 ? "GET" : method;
	for (size_t i = 0; i < FUZZ_NROUTES && !want; i++) {
		if (!fuzz_ref_matches(fuzz_routes[i].pattern, path))
			continue;
		path_seen = true;
		if (strcmp(fuzz_routes[i].method, as) == 0)
			want = &fuzz_routes[i];
	}
	if (want) {
		fuzz_check(r == ROUTER_OK && m.route == want);
		char rebuilt[HTTP_MAX_PATH + 64];
		fuzz_rebuild(m.route->pattern, &m, rebuilt, sizeof(rebuilt));
		fuzz_check(strcmp(rebuilt, path) == 0);
	} else if (path_seen) {
		fuzz_check(r == ROUTER_METHOD_NOT_ALLOWED && m.route == NULL);
		fuzz_check(m.allow[0] != '\0' && strnlen(m.allow, sizeof(m.allow)) < sizeof(m.allow));
		/* every method listed is one a route of this path has (HEAD: a GET route's) */
		char allow[sizeof(m.allow)];
		memcpy(allow, m.allow, sizeof(allow));
		for (char *save = NULL, *tok = strtok_r(allow, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
			bool found = false;
			const char *tm = strcmp(tok, "HEAD") == 0 ? "GET" : tok;
			for (size_t i = 0; i < FUZZ_NROUTES && !found; i++)
				found = strcmp(fuzz_routes[i].method, tm) == 0 && fuzz_ref_matches(fuzz_routes[i].pattern, path);
			fuzz_check(found);
		}
	} else {
		fuzz_check(r == ROUTER_NOT_FOUND && m.route == NULL);
	}
	free(buf);
	return 0;
}
